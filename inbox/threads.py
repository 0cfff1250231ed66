"""Threading: which conversation an inbound message belongs to (pure).

The rule, strongest evidence first:

1. an explicit conversation token (a signed `support+TOKEN@` address, a widget session):
   it joins that conversation, whoever the sender is (the token is a secret we handed out);
2. the latest stored message that In-Reply-To or References names, looked for only among
   the messages of the same channel (received on it, or sent through it: an email header
   never names a chat or SMS message) in conversations of the message's inbox. When that
   conversation is the sender's contact's own, the message joins it; when it is another
   contact's, the message starts a new conversation flagged `refers_to` that conversation,
   for agents to judge, and no other rule is tried;
3. the contact's latest conversation on the same channel, in the message's inbox, whose
   last message is within the thread window (and that is not closed);
4. otherwise a new conversation.

A message threaded into a resolved (solved) conversation reopens it when it was solved
within the reopen window (`inbox.cases.on_customer_reply`, the one rule); solved longer
ago, the message starts a new conversation linked (`linked_to`) to it. A closed
conversation is never reopened (evidence naming it counts as none, and the next rule
applies; the store links a new conversation to it).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from inbox.cases.status import CaseStatus, on_customer_reply
from inbox.types import ConversationStatus


@dataclass(frozen=True, slots=True)
class Candidate:
    """A conversation the store found for one kind of evidence."""

    conversation_id: int
    status: ConversationStatus
    last_message_at: datetime
    contact_id: int | None = None  # whose conversation (header evidence carries it)
    solved_at: datetime | None = None  # when it was resolved (its `resolved_at`)


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
    refers_to: int | None = None  # headers named this conversation of another contact
    linked_to: int | None = None  # a new conversation following this solved/closed one


def choose(
    *,
    by_token: Candidate | None,
    by_headers: Candidate | None,
    recent: Candidate | None,
    now: datetime,
    window: timedelta,
    contact_id: int | None = None,
    reopen_window: timedelta | None = None,
) -> ThreadChoice:
    """`contact_id` is the sender's contact; `by_headers` must carry its own contact.
    `reopen_window`: how long after it was solved a conversation reopens (None: always)."""
    if by_token is not None and by_token.status is not ConversationStatus.CLOSED:
        return _joins(by_token, Via.TOKEN, now, reopen_window)
    if by_headers is not None:
        if by_headers.contact_id is None or by_headers.contact_id != contact_id:
            return ThreadChoice(None, Via.NEW, refers_to=by_headers.conversation_id)
        if by_headers.status is not ConversationStatus.CLOSED:
            return _joins(by_headers, Via.HEADERS, now, reopen_window)
    if (
        recent is not None
        and recent.status is not ConversationStatus.CLOSED
        and now - recent.last_message_at <= window
    ):
        return _joins(recent, Via.RECENT, now, reopen_window)
    return ThreadChoice(None, Via.NEW)


def _joins(
    found: Candidate, via: Via, now: datetime, reopen_window: timedelta | None
) -> ThreadChoice:
    """The message joins `found` (reopening it if solved), or, solved longer ago than the
    reopen window, starts a new conversation linked to it."""
    if found.status is not ConversationStatus.RESOLVED:
        return ThreadChoice(found.conversation_id, via)
    if reopen_window is not None:
        outcome = on_customer_reply(
            CaseStatus.SOLVED, solved_at=found.solved_at, now=now, reopen_window=reopen_window
        )
        if not outcome.joins:
            return ThreadChoice(None, Via.NEW, linked_to=found.conversation_id)
    return ThreadChoice(found.conversation_id, via, reopen=True)


def next_status(current: ConversationStatus, choice: ThreadChoice) -> ConversationStatus:
    """The status a conversation takes when the customer writes into it: open, if it was
    resolved (and is reopened) or set aside (pending, on hold, snoozed)."""
    if choice.reopen or current in _SET_ASIDE:
        return ConversationStatus.OPEN
    return current


_SET_ASIDE = frozenset(
    {ConversationStatus.PENDING, ConversationStatus.ON_HOLD, ConversationStatus.SNOOZED}
)
