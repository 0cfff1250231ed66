"""The outbox's rules, as plain functions: how often and how long a job is retried and
leased, which channel and address a reply goes to, which earlier messages it references,
and in which order delivery reports may move a message's status.

The outbox repository (`inbox.store.outbox`) applies them in its transactions; the worker
(`inbox.outbox.durable`) decides with them what a send's outcome means.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from inbox.identity import SENDER_KIND
from inbox.types import Channel, DeliveryStatus, Direction, IdentityKind

__all__ = [
    "LEASE",
    "MAX_ATTEMPTS",
    "advances",
    "backoff",
    "reply_route",
    "retry_at",
    "thread_ids_of",
]

MAX_ATTEMPTS = 8
LEASE = timedelta(seconds=60)


def backoff(attempt: int) -> timedelta:
    """5 s, 10 s, 20 s ... capped at 30 min."""
    return timedelta(seconds=min(5 * 2 ** max(attempt - 1, 0), 1800))


def retry_at(now: datetime, attempts: int, permanent: bool) -> datetime | None:
    """When a failed send is tried again, or None: it has failed for good (a permanent
    error, or the last of MAX_ATTEMPTS)."""
    if permanent or attempts >= MAX_ATTEMPTS:
        return None
    return now + backoff(attempts)


# Channels with no outbound of their own answer through another: a web form is answered
# by email; the generic API channel through email or SMS, whichever address it has.
_REPLY_VIA: dict[Channel, tuple[Channel, ...]] = {
    Channel.FORM: (Channel.EMAIL,),
    Channel.API: (Channel.EMAIL, Channel.SMS),
}


def reply_route(
    channel: Channel, identities: list[tuple[IdentityKind, str]]
) -> tuple[Channel, str]:
    """The channel an outbound message goes through and the contact's address on it."""
    for via in _REPLY_VIA.get(channel, (channel,)):
        kind = SENDER_KIND[via]
        for ident_kind, value in identities:
            if ident_kind == kind:
                return via, value
    return channel, ""


def _mail_id(value: str | None, emailed: bool) -> bool:
    """An id for References: a mail's own (`emailed`: what came in by email, its
    Message-ID or, without one, the content hash it was stored under) or one shaped as a
    Message-ID (`left@right`: what we sent by email), never a chat or SMS id."""
    return bool(value) and (emailed or "@" in str(value))


def thread_ids_of(
    earlier: Iterable[tuple[str, str, str | None, str | None]], keep: int
) -> tuple[tuple[str, ...], str | None]:
    """From a conversation's earlier messages, oldest first, as (direction, channel,
    external id, provider id): the Message-IDs for References (the customers' external ids
    and our provider ids, each once, the first one and the latest `keep`) and the latest
    customer's one, for In-Reply-To."""
    seen: dict[str, bool] = {}  # id -> the customer's
    for direction, channel, external_id, provider_id in earlier:
        inbound = direction == Direction.INBOUND.value
        value = external_id if inbound else provider_id
        emailed = inbound and channel == Channel.EMAIL.value
        if value is not None and _mail_id(value, emailed) and value not in seen:
            seen[value] = inbound
    ids = list(seen)
    if len(ids) > keep + 1:
        ids = [ids[0], *ids[-keep:]]
    customers = [value for value, inbound in seen.items() if inbound]
    return tuple(ids), customers[-1] if customers else None


# Provider delivery reports may arrive out of order (sent after delivered): a status only
# ever moves forward along this order; failure is final.
_RANK = {
    DeliveryStatus.QUEUED: 0,
    DeliveryStatus.SENDING: 1,
    DeliveryStatus.SENT: 2,
    DeliveryStatus.DELIVERED: 3,
    DeliveryStatus.READ: 4,
    DeliveryStatus.FAILED: 5,
}


def advances(current: DeliveryStatus, reported: DeliveryStatus) -> bool:
    """Whether a delivery report of `reported` moves a message now at `current`."""
    if current is DeliveryStatus.FAILED:
        return False
    return _RANK.get(reported, -1) > _RANK.get(current, -1)
