"""What an agent's action sends, checked before it reaches the store: texts, tags, skills,
presence, notes, and the subject of a reply. Each raises ValidationError (a 400) naming
the field; the change itself is a function of the store's repositories
(`inbox.store.conversations`, `messages`, `contacts`, `agents`)."""

from __future__ import annotations

import re

from inbox.errors import ValidationError
from inbox.types import Channel, Conversation, Presence

MAX_TEXT = 20_000
_TAG = re.compile(r"[\w][\w .:/-]{0,39}", re.UNICODE)
_SKILL = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_SUBJECTED = {Channel.EMAIL, Channel.FORM, Channel.API}
_PRESENCES = {p.value for p in Presence}


def clean_text(text: object, what: str = "text") -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValidationError(f"'{what}' must be a non-empty string", field=what)
    if len(text) > MAX_TEXT:
        raise ValidationError(f"'{what}' is longer than {MAX_TEXT} characters", field=what)
    return text.replace("\r\n", "\n")


def reply_subject(subject: str | None, given: object = None) -> str | None:
    if isinstance(given, str) and given.strip():
        return given.strip()[:998]
    if not subject:
        return None
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"[:998]


def subject_for(conv: Conversation, given: object = None) -> str | None:
    """The subject of an agent's reply in `conv`: the one given, else "Re: " and the
    conversation's; none on channels without subjects (chat, SMS)."""
    return reply_subject(conv.subject, given) if conv.channel in _SUBJECTED else None


def clean_tags(raw: object) -> list[str]:
    if not isinstance(raw, list) or len(raw) > 20:
        raise ValidationError("'tags' must be a list of at most 20 tags", field="tags")
    out: list[str] = []
    for tag in raw:
        if not isinstance(tag, str) or not _TAG.fullmatch(tag.strip()):
            raise ValidationError(
                "a tag is 1-40 letters, digits, spaces or . : / - _", field="tags"
            )
        if tag.strip() not in out:
            out.append(tag.strip())
    return out


def clean_skills(raw: object) -> list[str]:
    if not isinstance(raw, list) or not raw or len(raw) > 10:
        raise ValidationError("'skills' must be a list of 1 to 10 skill names", field="skills")
    if not all(isinstance(s, str) and _SKILL.fullmatch(s) for s in raw):
        raise ValidationError("a skill is lower-case letters, digits, . _ -", field="skills")
    return sorted(set(raw))


def clean_presence(raw: object) -> Presence:
    if isinstance(raw, str) and raw in _PRESENCES:
        return Presence(raw)
    raise ValidationError("presence is online, away or offline", field="presence")


def clean_notes(notes: object) -> str:
    if not isinstance(notes, str):
        raise ValidationError("'notes' must be a string", field="notes")
    if len(notes) > MAX_TEXT:
        raise ValidationError(f"notes are longer than {MAX_TEXT} characters", field="notes")
    return notes
