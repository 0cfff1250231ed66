"""The visitor sockets one web process holds, and the rooms they are in.

A visitor (one browser, one visitor id) may have several tabs, each its own socket; every
tab joins the room of each of the visitor's chat conversations (`room(token)`), so a
reply or the visitor's own message shows on all of them.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from channels.webchat.settings import WidgetSettings
from inbox.errors import ValidationError
from inbox.identity import normalize_email
from inbox.web.untrusted import surrogate_path

NAMESPACE = "/widget"


def room(token: str) -> str:
    """The socket.io room of a conversation (its token)."""
    return f"c:{token}"


@dataclass(slots=True)
class Visitor:
    """One visitor socket (a tab)."""

    sid: str
    widget: WidgetSettings
    visitor_id: str
    token: str
    address: str
    external_id: str | None = None  # verified host-site user id
    name: str | None = None
    email: str | None = None
    consent: bool | None = None
    email_saved: bool = False
    conversations: dict[int, str] = field(default_factory=dict)  # id -> token
    acked: OrderedDict[str, None] = field(default_factory=OrderedDict)  # client ids
    typing_sent: float = 0.0

    @property
    def followup_unsaved(self) -> bool:
        """The visitor left an email for follow-ups that is not stored yet."""
        return bool(self.email) and not self.email_saved

    def apply_profile(self, data: dict[str, Any]) -> str | None:
        """Take name, email and consent from `data`; what is wrong with them, if anything."""
        name, email, consent = data.get("name"), data.get("email"), data.get("consent")
        for value in (name, email):
            if isinstance(value, str) and surrogate_path(value) is not None:
                return "The name or email contains characters that are not valid text."
        if isinstance(name, str) and name.strip():
            self.name = name.strip()[:200]
        if isinstance(consent, bool):
            self.consent = consent
        if isinstance(email, str) and email.strip():
            try:
                address = normalize_email(email)
            except ValidationError:
                return "That does not look like an email address."
            if address != self.email:
                self.email, self.email_saved = address, False
        return None


class Visitors:
    """The visitor sockets of this process: by socket id, and the tabs of each visitor."""

    def __init__(self) -> None:
        self._by_sid: dict[str, Visitor] = {}
        self._sids: dict[str, set[str]] = {}  # visitor id -> connected sids

    def __len__(self) -> int:
        return len(self._by_sid)

    def get(self, sid: str) -> Visitor | None:
        return self._by_sid.get(sid)

    def add(self, visitor: Visitor) -> None:
        self._by_sid[visitor.sid] = visitor
        self._sids.setdefault(visitor.visitor_id, set()).add(visitor.sid)

    def remove(self, sid: str) -> Visitor | None:
        visitor = self._by_sid.pop(sid, None)
        if visitor is None:
            return None
        sids = self._sids.get(visitor.visitor_id)
        if sids is not None:
            sids.discard(sid)
            if not sids:
                del self._sids[visitor.visitor_id]
        return visitor

    def tabs(self, visitor_id: str) -> list[str]:
        """The socket ids of one visitor in this process (look each up when its turn
        comes: a tab may disconnect meanwhile)."""
        return list(self._sids.get(visitor_id, ()))
