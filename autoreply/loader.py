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
matched FAQ entry and how to reach a person. The keys of `when` are read by
`autoreply.when`; this module reads the files, the templates, the rules and `then`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autoreply.fields import Table, did_you_mean
from autoreply.rules import Actions, Condition, FaqHit, Rule, Ruleset
from autoreply.settings import AutoreplySettings
from autoreply.templates import ReplyTemplate, TemplateCheckError, compile_template
from autoreply.text import PhraseIndex
from autoreply.when import read_when
from inbox.config import DEFAULT_PRIORITIES
from inbox.errors import ConfigError
from inbox.tomlpos import TomlSource

THEN_KEYS = {"reply", "priority", "skills", "queue", "tags", "assign_to", "resolve", "stop"}
RULE_KEYS = {"name", "description", "enabled", "when", "then"}
TEMPLATE_KEYS = {"text", "html", "subject"}
TOP_KEYS = {"rule", "templates"}

BUILTIN_TEMPLATES = {
    "faq": {"text": "{{ faq.answer }}\n\n{{ handoff_hint }}"},
}


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """What the rest of the config defines that rules may name. `inboxes`, `teams` and
    `agents` (emails) are checked only when given: `omnidesk rules check` on a file alone
    knows none of them, the server knows its inboxes (agents live in the database)."""

    priorities: tuple[str, ...] = DEFAULT_PRIORITIES
    has_business_hours: bool = False
    has_faq: bool = False
    inboxes: frozenset[str] | None = None
    teams: frozenset[str] | None = None
    agents: frozenset[str] | None = None


def queue_options(settings: AutoreplySettings | None) -> dict[str, frozenset[str]]:
    """The `LoadOptions` fields that check `queue`/`assign_to`: the config's inboxes,
    which are its teams too (agents are given teams from them). Agents are not named:
    they live in the database, and an unknown email is reported when a rule is applied."""
    if settings is None or settings.inboxes is None:
        return {}
    names = frozenset(settings.inboxes)
    return {"inboxes": names, "teams": names}


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
    conditions, keyword_ids = read_when(
        table.table("when"),
        phrases,
        has_faq=opts.has_faq,
        has_business_hours=opts.has_business_hours,
    )
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
    queue = _queue(table, opts)
    assign_to = _assign_to(table, opts)
    resolve = table.bool("resolve", False)
    if resolve and (queue or assign_to):
        raise table.error(
            "queue" if queue else "assign_to",
            "a resolved conversation waits in no queue and goes to nobody",
            fix="drop resolve = true, or move the conversation in a rule of its own",
        )
    return Actions(
        reply=reply,
        priority=priority,
        skills=tuple(table.str_list("skills", [])),
        queue=queue,
        tags=tuple(table.str_list("tags", [])),
        assign_to=assign_to,
        resolve=resolve,
        stop=table.bool("stop", True),
    )


def _queues(opts: LoadOptions) -> frozenset[str] | None:
    """The inboxes and teams a rule may send a conversation to (None: not known here)."""
    if opts.inboxes is None and opts.teams is None:
        return None
    return (opts.inboxes or frozenset()) | (opts.teams or frozenset())


def _queue(table: Table, opts: LoadOptions) -> str | None:
    """`queue`: an inbox or a team the config knows."""
    queue: str | None = table.str("queue", None)
    known = _queues(opts)
    if queue is not None and known is not None and queue not in known:
        raise table.error(
            "queue", f"unknown inbox or team {queue!r}", fix=did_you_mean(queue, known)
        )
    return queue


def _assign_to(table: Table, opts: LoadOptions) -> str | None:
    """`assign_to`: an agent's email (it has an "@"), or a team."""
    target: str | None = table.str("assign_to", None)
    if target is None:
        return None
    if "@" in target:
        if opts.agents is not None and target.lower() not in opts.agents:
            raise table.error(
                "assign_to",
                f"no agent has the email {target!r}",
                fix=did_you_mean(target.lower(), opts.agents)
                + " (add the agent with `omnidesk agents add`)",
            )
        return target.lower()
    known = _queues(opts)
    if known is not None and target not in known:
        raise table.error(
            "assign_to",
            f"unknown team {target!r} (an agent is named by email)",
            fix=did_you_mean(target, known),
        )
    return target
