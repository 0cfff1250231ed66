"""Threading: which conversation an inbound message belongs to (pure).

The rule, strongest evidence first:

1. an explicit conversation token (a signed `support+TOKEN@` address, a widget session);
2. for email, In-Reply-To then References naming a message of a conversation;
3. the contact's latest conversation on the same channel whose last message is within
   the thread window (and that is not closed);
4. otherwise a new conversation.

A message threaded into a resolved conversation reopens it; a closed conversation is never
reopened (it starts a new one).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from inbox.types import ConversationStatus


@dataclass(frozen=True, slots=True)
class Candidate:
    """A conversation the store found for one kind of evidence."""

    conversation_id: int
    status: ConversationStatus
    last_message_at: datetime


class Via(enum.StrEnum):
    TOKEN = "token"  # noqa: S105 - the kind of evidence, not a secret
    HEADERS = "headers"
    RECENT = "recent"
    NEW = "new"


@dataclass(frozen=True, slots=True)
class ThreadChoice:
    conversation_id: int | None  # None: start a new conversation
    via: Via
    reopen: bool = False


def choose(
    *,
    by_token: Candidate | None,
    by_headers: Candidate | None,
    recent: Candidate | None,
    now: datetime,
    window: timedelta,
) -> ThreadChoice:
    for candidate, via in ((by_token, Via.TOKEN), (by_headers, Via.HEADERS)):
        if candidate is not None and candidate.status is not ConversationStatus.CLOSED:
            return ThreadChoice(
                candidate.conversation_id,
                via,
                reopen=candidate.status is ConversationStatus.RESOLVED,
            )
    if (
        recent is not None
        and recent.status is not ConversationStatus.CLOSED
        and now - recent.last_message_at <= window
    ):
        return ThreadChoice(
            recent.conversation_id,
            Via.RECENT,
            reopen=recent.status is ConversationStatus.RESOLVED,
        )
    return ThreadChoice(None, Via.NEW)


def next_status(current: ConversationStatus, choice: ThreadChoice) -> ConversationStatus:
    """The status a conversation takes when the customer writes into it."""
    if choice.reopen or current is ConversationStatus.PENDING:
        return ConversationStatus.OPEN
    return current
