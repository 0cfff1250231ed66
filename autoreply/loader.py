"""Rule files -> a compiled `Ruleset`, with errors naming file, line, key and fix.

A rule file holds reply templates and an ordered list of rules:

    [templates.order_status]
    subject = "Re: {{ message.subject }}"
    text = \"\"\"Hi {{ contact.name or "there" }}, you can follow your order at ...\"\"\"
    html = \"\"\"<p>Hi {{ contact.name or "there" }}, ...</p>\"\"\"   # optional, autoescaped

    [[rule]]
    name = "order-status"
    when = { channel = ["email", "chat"], text_any = ["where is my order", "tracking"] }
    then = { reply = "order_status", tags = ["order-status"], stop = true }

Rules from several files are evaluated in the order the files are given, then in file
order. Templates are shared by all files; the built-in template `faq` answers with the
matched FAQ entry and how to reach a person.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import re2

from autoreply.fields import Table, did_you_mean
from autoreply.lang import LANGUAGES
from autoreply.rules import (
    Actions,
    Condition,
    ContactAttribute,
    ContactTags,
    FaqHit,
    FirstMessage,
    Hours,
    InSet,
    Language,
    Phrases,
    Regex,
    Rule,
    Ruleset,
)
from autoreply.templates import ReplyTemplate, TemplateCheckError, compile_template
from autoreply.text import PhraseIndex, fold
from inbox.config import DEFAULT_PRIORITIES
from inbox.errors import ConfigError
from inbox.tomlpos import TomlSource
from inbox.types import Channel

PHRASE_KEYS = {
    f"{where}_{mode}": (where, mode)
    for where in ("subject", "body", "text")
    for mode in ("any", "all", "none")
}
REGEX_KEYS = {"subject_regex": "subject", "body_regex": "body", "text_regex": "text"}
WHEN_KEYS = {
    "channel",
    "inbox",
    "recipient",
    *PHRASE_KEYS,
    *REGEX_KEYS,
    "faq",
    "faq_min_score",
    "business_hours",
    "first_message",
    "contact_tags_any",
    "contact_tags_all",
    "contact_attributes",
    "language",
}
THEN_KEYS = {"reply", "priority", "skills", "queue", "tags", "assign_to", "resolve", "stop"}
RULE_KEYS = {"name", "description", "enabled", "when", "then"}
TEMPLATE_KEYS = {"text", "html", "subject"}
TOP_KEYS = {"rule", "templates"}

BUILTIN_TEMPLATES = {
    "faq": {"text": "{{ faq.answer }}\n\n{{ handoff_hint }}"},
}


@dataclass(frozen=True, slots=True)
class LoadOptions:
    priorities: tuple[str, ...] = DEFAULT_PRIORITIES
    has_business_hours: bool = False
    has_faq: bool = False


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "rule file not found", file=path, fix="check the path in [autoreply] rules"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read rule file: {exc}", file=path) from None


def load_rules(
    paths: Sequence[str | Path], options: LoadOptions | None = None, *, version: int = 0
) -> Ruleset:
    """Load and compile rule files (in order). Raises ConfigError for the first problem."""
    return load_rules_texts([(str(p), _read(str(p))) for p in paths], options, version=version)


def load_rules_texts(
    files: Iterable[tuple[str, str]], options: LoadOptions | None = None, *, version: int = 0
) -> Ruleset:
    """Like `load_rules`, from (name, text) pairs."""
    opts = options or LoadOptions()
    parsed: list[tuple[TomlSource, dict[str, Any]]] = []
    for name, text in files:
        source = TomlSource(name, text)
        data = source.parse()
        root = Table(data, (), source)
        if "faq" in data:
            raise root.error(
                "faq",
                "FAQ entries do not belong in a rule file",
                fix="list this file under [autoreply] faq instead of rules",
            )
        root.reject_unknown(TOP_KEYS)
        parsed.append((source, data))

    templates: dict[str, ReplyTemplate] = {
        name: compile_template(name, **parts) for name, parts in BUILTIN_TEMPLATES.items()
    }
    defined_in: dict[str, str] = {}
    for source, data in parsed:
        root = Table(data, (), source)
        table = root.table("templates")
        for name in table.data:
            entry = table.table(name, label=f"template {name!r}: ")
            if name in defined_in:
                raise entry.error(
                    None, f"already defined in {defined_in[name]}", fix="rename one of them"
                )
            entry.reject_unknown(TEMPLATE_KEYS)
            parts = {key: entry.str(key, None) for key in TEMPLATE_KEYS}
            if parts["text"] is None:
                raise entry.error(
                    "text",
                    "is required (the plain-text reply)",
                    fix='text = """Hello {{ contact.name }} ..."""',
                )
            try:
                templates[name] = compile_template(
                    name, parts["text"], parts["html"], parts["subject"]
                )
            except TemplateCheckError as exc:
                raise entry.error(exc.part, exc.message, exc.fix) from None
            defined_in[name] = source.name

    phrases = PhraseIndex()
    rules: list[Rule] = []
    names: dict[str, str] = {}
    for source, data in parsed:
        raw = data.get("rule", [])
        if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
            raise Table(data, (), source).error(
                "rule", "expected an array of tables", fix="write each rule under [[rule]]"
            )
        for index, item in enumerate(raw):
            rule = _rule(Table(item, ("rule", index), source), phrases, templates, opts)
            if rule is None:
                continue
            if rule.name in names:
                raise Table(item, ("rule", index), source).error(
                    "name",
                    f"duplicate rule name {rule.name!r} (first in {names[rule.name]})",
                    fix="give each rule its own name",
                )
            names[rule.name] = rule.where
            rules.append(rule)
    return Ruleset.build(rules, phrases, templates, tuple(s.name for s, _ in parsed), version)


def _rule(
    table: Table, phrases: PhraseIndex, templates: dict[str, ReplyTemplate], opts: LoadOptions
) -> Rule | None:
    name = table.str("name")
    if not name.strip():
        raise table.error("name", "is empty", fix='name = "order-status"')
    table.label = f"rule {name!r}: "
    table.reject_unknown(RULE_KEYS)
    description = table.str("description", "")
    enabled = table.bool("enabled", True)
    if "then" not in table:
        raise table.error(
            "then", "is required (what the rule does)", fix='then = { tags = ["..."] }'
        )
    conditions, keyword_ids = _when(table.table("when"), phrases, opts)
    actions = _then(table.table("then"), templates, opts, conditions)
    if not enabled:
        return None
    conditions.sort(key=lambda c: c.cost)
    return Rule(
        name,
        tuple(conditions),
        actions,
        table.source.name,
        table.source.line_of(table.path),
        description,
        frozenset(keyword_ids),
    )


def _when(
    table: Table, phrases: PhraseIndex, opts: LoadOptions
) -> tuple[list[Condition], set[int]]:
    table.reject_unknown(WHEN_KEYS)
    conditions: list[Condition] = []
    keyword_ids: set[int] = set()
    nominating = False
    if "channel" in table:
        values = table.str_list("channel")
        allowed = [c.value for c in Channel]
        for value in values:
            if value not in allowed:
                raise table.error(
                    "channel", f"unknown channel {value!r}", fix=did_you_mean(value, allowed)
                )
        conditions.append(InSet("channel", frozenset(values)))
    for key in ("inbox", "recipient"):
        if key in table:
            conditions.append(InSet(key, frozenset(fold(v) for v in table.str_list(key))))
    for key, (where, mode) in PHRASE_KEYS.items():
        if key not in table:
            continue
        values = table.str_list(key)
        if not values:
            raise table.error(key, "is an empty list", fix=f'{key} = ["word", "a phrase"]')
        ids: set[int] = set()
        for value in values:
            try:
                ids.add(phrases.add(value))
            except ValueError:
                raise table.error(
                    key, f"phrase {value!r} has no letters or digits", fix="remove it"
                ) from None
        conditions.append(Phrases(where, mode, frozenset(ids), tuple(values)))
        if mode != "none" and not nominating:
            # the rule can only hold if one of these phrases occurs: index it by them
            keyword_ids, nominating = ids, True
    for key, where in REGEX_KEYS.items():
        if key in table:
            pattern = table.str(key)
            try:
                compiled = re2.compile(pattern)
            except re2.error as exc:
                raise table.error(
                    key,
                    f"RE2 cannot compile /{pattern}/: {exc}",
                    fix="RE2 has no backreferences or lookaround; simplify the pattern",
                ) from None
            conditions.append(Regex(where, pattern, compiled))
    if "faq_min_score" in table and not table.bool("faq", False):
        raise table.error(
            "faq_min_score",
            "only applies with faq = true",
            fix="add faq = true or remove faq_min_score",
        )
    if table.bool("faq", False):
        if not opts.has_faq:
            raise table.error(
                "faq", "no FAQ file is configured", fix="list FAQ files under [autoreply] faq"
            )
        conditions.append(FaqHit(table.number("faq_min_score", None, low=0, high=100)))
    if "business_hours" in table:
        value = table.str("business_hours", choices=["inside", "outside"])
        if not opts.has_business_hours:
            raise table.error(
                "business_hours",
                "no business hours are configured",
                fix="add [autoreply.business_hours] to the config",
            )
        conditions.append(Hours(value == "inside"))
    if "first_message" in table:
        conditions.append(FirstMessage(table.bool("first_message")))
    for key, mode in (("contact_tags_any", "any"), ("contact_tags_all", "all")):
        if key in table:
            conditions.append(ContactTags(mode, frozenset(fold(t) for t in table.str_list(key))))
    if "contact_attributes" in table:
        attrs = table.table("contact_attributes")
        for attr in attrs.data:
            value = attrs.data[attr]
            values = value if isinstance(value, list) else [value]
            if not all(isinstance(v, str | int | float | bool) for v in values):
                raise attrs.error(
                    attr,
                    "expected a value or a list of values",
                    fix=f'{attr} = ["gold", "platinum"]',
                )
            conditions.append(ContactAttribute(attr, frozenset(fold(str(v)) for v in values)))
    if "language" in table:
        languages = table.str_list("language")
        for lang in languages:
            if lang not in LANGUAGES:
                raise table.error(
                    "language",
                    f"cannot detect language {lang!r}",
                    fix=did_you_mean(lang, LANGUAGES),
                )
        conditions.append(Language(frozenset(languages)))
    return conditions, keyword_ids


def _then(
    table: Table,
    templates: dict[str, ReplyTemplate],
    opts: LoadOptions,
    conditions: list[Condition],
) -> Actions:
    table.reject_unknown(THEN_KEYS)
    reply = table.str("reply", None)
    if reply is not None:
        if reply not in templates:
            raise table.error(
                "reply", f"unknown template {reply!r}", fix=did_you_mean(reply, templates)
            )
        if reply == "faq" and not any(isinstance(c, FaqHit) for c in conditions):
            raise table.error(
                "reply", "the faq template needs a matched FAQ entry", fix="add faq = true to when"
            )
    priority = table.str("priority", None, choices=opts.priorities)
    queue = table.str("queue", None)
    assign_to = table.str("assign_to", None)
    return Actions(
        reply=reply,
        priority=priority,
        skills=tuple(table.str_list("skills", [])),
        queue=queue,
        tags=tuple(table.str_list("tags", [])),
        assign_to=assign_to,
        resolve=table.bool("resolve", False),
        stop=table.bool("stop", True),
    )
