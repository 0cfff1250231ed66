"""The `when` table of a rule: each documented key becomes a condition (`autoreply.rules`).

    when = { channel = ["email"], text_any = ["refund", "money back"], business_hours = "outside" }

Every key is checked as it is read, with an error naming the key and the fix (an unknown
channel or language gets a did-you-mean). Phrases go into the ruleset's shared
`PhraseIndex`, so each message is scanned for all rules' phrases at once; the first list
of phrases that must occur becomes the rule's keywords, by which `Ruleset.candidates`
finds the rules worth evaluating.
"""

from __future__ import annotations

import re2

from autoreply.fields import Table, did_you_mean
from autoreply.lang import LANGUAGES
from autoreply.rules import (
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
)
from autoreply.text import PhraseIndex, fold
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


def read_when(
    table: Table, phrases: PhraseIndex, *, has_faq: bool, has_business_hours: bool
) -> tuple[list[Condition], set[int]]:
    """The conditions of one `when` table, checked key by key, and the rule's keyword ids.

    The key groups are read in the order of `WHEN_KEYS`, so a table with several bad keys
    always reports the same one first.
    """
    table.reject_unknown(WHEN_KEYS)
    conditions = _arrival(table)
    text, keyword_ids = _phrases(table, phrases)
    conditions += text
    conditions += _regexes(table)
    conditions += _faq(table, has_faq)
    conditions += _moment(table, has_business_hours)
    conditions += _contact(table)
    conditions += _language(table)
    return conditions, keyword_ids


def _arrival(table: Table) -> list[Condition]:
    """Where the message came in: `channel`, `inbox`, `recipient`."""
    conditions: list[Condition] = []
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
    return conditions


def _phrases(table: Table, phrases: PhraseIndex) -> tuple[list[Condition], set[int]]:
    """`subject_any`, `body_all`, `text_none`, ...; each phrase is added to `phrases`.

    The ids of the first list that must occur (any or all, not none) are the rule's
    keywords: the rule can only hold if one of them occurs, so it is indexed by them.
    """
    conditions: list[Condition] = []
    keyword_ids: set[int] = set()
    nominating = False
    for key, (where, mode) in PHRASE_KEYS.items():
        if key not in table:
            continue
        values = table.str_list(key)
        if not values:
            raise table.error(key, "is an empty list", fix=f'{key} = ["word", "a phrase"]')
        ids = {_phrase_id(table, key, value, phrases) for value in values}
        conditions.append(Phrases(where, mode, frozenset(ids), tuple(values)))
        if mode != "none" and not nominating:
            keyword_ids, nominating = ids, True
    return conditions, keyword_ids


def _phrase_id(table: Table, key: str, value: str, phrases: PhraseIndex) -> int:
    try:
        return phrases.add(value)
    except ValueError:
        raise table.error(
            key, f"phrase {value!r} has no letters or digits", fix="remove it"
        ) from None


def _regexes(table: Table) -> list[Condition]:
    """`subject_regex`, `body_regex`, `text_regex`, compiled by RE2 (linear time)."""
    conditions: list[Condition] = []
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
    return conditions


def _faq(table: Table, configured: bool) -> list[Condition]:
    """`faq = true` (with an optional `faq_min_score`), only when FAQ files are configured."""
    if "faq_min_score" in table and not table.bool("faq", False):
        raise table.error(
            "faq_min_score",
            "only applies with faq = true",
            fix="add faq = true or remove faq_min_score",
        )
    if not table.bool("faq", False):
        return []
    if not configured:
        raise table.error(
            "faq", "no FAQ file is configured", fix="list FAQ files under [autoreply] faq"
        )
    return [FaqHit(table.number("faq_min_score", None, low=0, high=100))]


def _moment(table: Table, has_hours: bool) -> list[Condition]:
    """When the message came: `business_hours` (inside/outside), `first_message`."""
    conditions: list[Condition] = []
    if "business_hours" in table:
        value = table.str("business_hours", choices=["inside", "outside"])
        if not has_hours:
            raise table.error(
                "business_hours",
                "no business hours are configured",
                fix="add [autoreply.business_hours] to the config",
            )
        conditions.append(Hours(value == "inside"))
    if "first_message" in table:
        conditions.append(FirstMessage(table.bool("first_message")))
    return conditions


def _contact(table: Table) -> list[Condition]:
    """Who wrote: `contact_tags_any`, `contact_tags_all`, `contact_attributes`."""
    conditions: list[Condition] = []
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
    return conditions


def _language(table: Table) -> list[Condition]:
    """`language`: languages the detector knows."""
    if "language" not in table:
        return []
    languages = table.str_list("language")
    for lang in languages:
        if lang not in LANGUAGES:
            raise table.error(
                "language",
                f"cannot detect language {lang!r}",
                fix=did_you_mean(lang, LANGUAGES),
            )
    return [Language(frozenset(languages))]
