"""The durable outbox: an outbound message and its delivery job are written in one
transaction; a worker leases due jobs, sends them through the channel's `Sender`, and
records the provider id. A message that already has a provider id is never sent again.

Delivery is at-least-once towards the provider only in one window (sent, then the process
died before recording the id); senders pass the message id as an idempotency key where the
provider supports one (Twilio, our own SMTP Message-ID) to close it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inbox import metrics
from inbox.bus.backends import EventBus
from inbox.errors import (
    BusError,
    DeliveryError,
    NotFound,
    PermanentDeliveryError,
    RecipientAway,
)
from inbox.events import DeliveryChanged, Event, EventName
from inbox.identity import SENDER_KIND
from inbox.ports import Outbound, Sender
from inbox.store import schema as t
from inbox.store.backends import Store
from inbox.tasks import cancel_and_wait
from inbox.types import AuthorKind, Channel, DeliveryStatus, Direction, IdentityKind

log = logging.getLogger("omnidesk.outbox")

MAX_ATTEMPTS = 8
LEASE = timedelta(seconds=60)


def backoff(attempt: int) -> timedelta:
    """5 s, 10 s, 20 s ... capped at 30 min."""
    return timedelta(seconds=min(5 * 2 ** max(attempt - 1, 0), 1800))


def enqueue(
    conn: Connection,
    *,
    conversation_id: int,
    text: str,
    author_kind: AuthorKind,
    author_id: int | None = None,
    html: str | None = None,
    subject: str | None = None,
    auto_reply: bool = False,
    channel: Channel | None = None,
    now: datetime | None = None,
) -> int:
    """Write an outbound message and its delivery job; returns the message id."""
    now = now or datetime.now(UTC)
    conv = conn.execute(
        sa.select(t.conversations.c.channel, t.conversations.c.first_response_at).where(
            t.conversations.c.id == conversation_id
        )
    ).first()
    if conv is None:
        raise NotFound(f"no conversation {conversation_id}")
    send_channel = channel.value if channel else conv.channel
    message_id = conn.execute(
        sa.insert(t.messages)
        .values(
            conversation_id=conversation_id,
            direction=Direction.OUTBOUND.value,
            author_kind=author_kind.value,
            author_id=author_id,
            channel=send_channel,
            subject=subject,
            text=text,
            html=html,
            attachments=[],
            delivery_status=DeliveryStatus.QUEUED.value,
            meta={"auto_reply": auto_reply},
            needs_triage=False,
            created_at=now,
        )
        .returning(t.messages.c.id)
    ).scalar_one()
    conn.execute(
        sa.insert(t.outbox).values(
            message_id=message_id,
            channel=send_channel,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    values: dict[str, Any] = {"last_message_at": now}
    if author_kind is AuthorKind.AGENT and conv.first_response_at is None:
        values["first_response_at"] = now
    conn.execute(
        sa.update(t.conversations).where(t.conversations.c.id == conversation_id).values(**values)
    )
    return int(message_id)


def _claim(conn: Connection, now: datetime, limit: int) -> list[int]:
    o = t.outbox.c
    query = (
        sa.select(o.id)
        .where(
            o.status.in_(("pending", "sending")),
            o.next_attempt_at <= now,
            sa.or_(o.lease_until.is_(None), o.lease_until < now),
        )
        .order_by(o.next_attempt_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = [row.id for row in conn.execute(query)]
    if ids:
        conn.execute(
            sa.update(t.outbox)
            .where(o.id.in_(ids))
            .values(status="sending", lease_until=now + LEASE, attempts=o.attempts + 1)
        )
    return ids


def claim_message(
    conn: Connection, message_id: int, now: datetime, lease: timedelta = LEASE
) -> int | None:
    """Lease one message's delivery job if it is due and nobody holds it; its outbox id,
    or None (already sent, failed, not yet due, or leased by another worker).

    One conditional UPDATE: on PostgreSQL a concurrent claimer blocks on the row and then
    re-checks the lease it just saw set, so exactly one of them gets the row."""
    o = t.outbox.c
    return conn.execute(
        sa.update(t.outbox)
        .where(
            o.message_id == message_id,
            o.status.in_(("pending", "sending")),
            o.next_attempt_at <= now,
            sa.or_(o.lease_until.is_(None), o.lease_until < now),
        )
        .values(status="sending", lease_until=now + lease, attempts=o.attempts + 1)
        .returning(o.id)
    ).scalar()


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


def thread_ids(
    conn: Connection, conversation_id: int, before: int, keep: int = 19
) -> tuple[tuple[str, ...], str | None]:
    """The Message-IDs of a conversation's earlier messages, for an outbound message's
    References: the customers' (external ids) and ours (provider ids), oldest first, the
    first one and the latest `keep`; and the latest customer's one, for In-Reply-To."""
    tm = t.messages.c
    query = sa.select(tm.direction, tm.channel, tm.external_id, tm.provider_id).where(
        tm.conversation_id == conversation_id,
        tm.id < before,
        sa.or_(tm.external_id.is_not(None), tm.provider_id.is_not(None)),
    )
    first = conn.execute(query.order_by(tm.id).limit(1)).all()
    latest = conn.execute(query.order_by(tm.id.desc()).limit(keep * 3)).all()[::-1]
    seen: dict[str, bool] = {}  # id -> the customer's
    for row in (*first, *latest):
        inbound = row.direction == Direction.INBOUND.value
        value = row.external_id if inbound else row.provider_id
        emailed = inbound and row.channel == Channel.EMAIL.value
        if _mail_id(value, emailed) and value not in seen:
            seen[value] = inbound
    ids = list(seen)
    if len(ids) > keep + 1:
        ids = [ids[0], *ids[-keep:]]
    customers = [value for value, inbound in seen.items() if inbound]
    return tuple(ids), customers[-1] if customers else None


def build_outbound(conn: Connection, outbox_id: int) -> tuple[Outbound | None, Any]:
    """The job's message as its sender needs it; None if it was already sent."""
    job = conn.execute(sa.select(t.outbox).where(t.outbox.c.id == outbox_id)).mappings().one()
    m = (
        conn.execute(sa.select(t.messages).where(t.messages.c.id == job["message_id"]))
        .mappings()
        .one()
    )
    if m["provider_id"]:
        return None, job
    conv = (
        conn.execute(sa.select(t.conversations).where(t.conversations.c.id == m["conversation_id"]))
        .mappings()
        .one()
    )
    idents = conn.execute(
        sa.select(t.identities.c.kind, t.identities.c.value)
        .where(t.identities.c.contact_id == conv["contact_id"])
        .order_by(t.identities.c.verified.desc(), t.identities.c.id)
    ).all()
    channel, to = reply_route(Channel(m["channel"]), [(IdentityKind(k), v) for k, v in idents])
    refs, in_reply_to = thread_ids(conn, conv["id"], m["id"])
    author = None
    if m["author_kind"] == AuthorKind.AGENT.value and m["author_id"]:
        author = conn.execute(
            sa.select(t.agents.c.name).where(t.agents.c.id == m["author_id"])
        ).scalar()
    subject = m["subject"] or conv["subject"]
    followup = None
    if channel is Channel.CHAT:
        attrs = conn.execute(
            sa.select(t.contacts.c.attributes).where(t.contacts.c.id == conv["contact_id"])
        ).scalar()
        followup = (attrs or {}).get("email_for_followup") if isinstance(attrs, dict) else None
    return (
        Outbound(
            message_id=m["id"],
            conversation_id=conv["id"],
            channel=channel.value,
            to=to or "",
            text=m["text"],
            conversation_token=conv["token"],
            html=m["html"],
            subject=subject,
            from_name=author,
            in_reply_to=in_reply_to,
            references=refs,
            auto_reply=bool((m["meta"] or {}).get("auto_reply")),
            inbox=conv["inbox"],
            followup_email=followup if isinstance(followup, str) else None,
        ),
        job,
    )


def _finish(
    conn: Connection,
    outbox_id: int,
    message_id: int,
    *,
    provider_id: str | None = None,
    error: str | None = None,
    permanent: bool = False,
    attempts: int = 0,
    now: datetime,
) -> DeliveryStatus | None:
    if provider_id is not None:
        conn.execute(
            sa.update(t.outbox)
            .where(t.outbox.c.id == outbox_id)
            .values(status="done", lease_until=None, last_error=None)
        )
        conn.execute(
            sa.update(t.messages)
            .where(t.messages.c.id == message_id, t.messages.c.provider_id.is_(None))
            .values(provider_id=provider_id, delivery_status=DeliveryStatus.SENT.value)
        )
        return DeliveryStatus.SENT
    if permanent or attempts >= MAX_ATTEMPTS:
        conn.execute(
            sa.update(t.outbox)
            .where(t.outbox.c.id == outbox_id)
            .values(status="failed", lease_until=None, last_error=error)
        )
        conn.execute(
            sa.update(t.messages)
            .where(t.messages.c.id == message_id)
            .values(delivery_status=DeliveryStatus.FAILED.value, failure_reason=error)
        )
        return DeliveryStatus.FAILED
    conn.execute(
        sa.update(t.outbox)
        .where(t.outbox.c.id == outbox_id)
        .values(
            status="pending",
            lease_until=None,
            last_error=error,
            next_attempt_at=now + backoff(attempts),
        )
    )
    return None


class OutboxWorker:
    """Leases due jobs and sends them. Several workers may run; leases keep them apart."""

    def __init__(
        self,
        store: Store,
        bus: EventBus,
        senders: Mapping[str, Sender],
        *,
        poll_interval: float = 0.5,
        batch: int = 20,
        send_timeout: float | None = None,
        relay: Callable[..., None] | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        # kept, not copied: the composition root adds senders as it wires the channels
        self.senders = senders
        self.poll_interval = poll_interval
        self.batch = batch
        # with a short lease (cluster), a send must end before another worker may claim it
        self.send_timeout = send_timeout
        # cluster mode: pokes go to the RQ relay (inbox.outbox.rq_relay); this loop is not started
        self.relay = relay
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def poke(self, *message_ids: int) -> None:
        """New work was committed (these messages): look now rather than at the next poll,
        or, with a relay set (cluster: RQ), hand it to the relay."""
        if self.relay is not None:
            self.relay(*message_ids)
        else:
            self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="outbox-worker")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                done = await self.run_once()
            except Exception:
                log.exception("outbox pass failed")
                done = 0
            if done:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            except TimeoutError:
                pass
            self._wake.clear()

    async def run_once(self) -> int:
        now = datetime.now(UTC)
        ids = await self.store.write(lambda conn: _claim(conn, now, self.batch))
        await asyncio.gather(*(self.deliver(i) for i in ids))
        return len(ids)

    async def _send(self, sender: Sender, item: Outbound) -> str:
        """Send; a recipient who is away and left an email address gets it by email too."""
        try:
            return await sender.send(item)
        except RecipientAway as away:
            email = self.senders.get(Channel.EMAIL.value)
            if not item.followup_email or email is None:
                return away.held_id  # kept for when they come back
            followed = await email.send(
                replace(item, channel=Channel.EMAIL.value, to=item.followup_email)
            )
            log.info("message=%d followed up by email (recipient away)", item.message_id)
            return followed

    async def deliver(self, outbox_id: int) -> None:
        """Send one job this worker has leased and record the outcome."""
        item, job = await self.store.read(lambda conn: build_outbound(conn, outbox_id))
        now = datetime.now(UTC)
        if item is None:  # already has a provider id: never send twice
            await self.store.write(
                lambda conn: conn.execute(
                    sa.update(t.outbox)
                    .where(t.outbox.c.id == outbox_id)
                    .values(status="done", lease_until=None)
                )
            )
            return
        sender = self.senders.get(item.channel)
        provider_id: str | None = None
        error: str | None = None
        permanent = False
        if sender is None:
            error, permanent = f"no sender configured for channel {item.channel}", True
        elif not item.to:
            error, permanent = f"the contact has no {item.channel} address", True
        else:
            try:
                async with asyncio.timeout(self.send_timeout):
                    provider_id = await self._send(sender, item)
            except TimeoutError:
                error = f"the {item.channel} provider did not answer in time"
            except PermanentDeliveryError as exc:
                error, permanent = exc.message, True
            except DeliveryError as exc:
                error = exc.message
            except Exception as exc:  # a sender bug must not kill the worker
                log.exception("sender %s crashed on message %d", item.channel, item.message_id)
                error = f"{type(exc).__name__}: {exc}"
        status = await self.store.write(
            lambda conn: _finish(
                conn,
                outbox_id,
                item.message_id,
                provider_id=provider_id,
                error=error,
                permanent=permanent,
                attempts=int(job["attempts"]),
                now=now,
            )
        )
        metrics.count_delivery(item.channel, status.value if status else "retry", job["created_at"])
        if status is not None:
            log.info(
                "outbound message=%d conversation=%d %s%s",
                item.message_id,
                item.conversation_id,
                status.value,
                f" ({error})" if error else "",
            )
            try:
                await self.bus.publish(
                    Event(
                        EventName.MESSAGE_DELIVERY_CHANGED,
                        DeliveryChanged(
                            message_id=item.message_id,
                            conversation_id=item.conversation_id,
                            status=status.value,
                            reason=error,
                        ),
                    )
                )
            except BusError as exc:  # recorded; pages re-read it when the bus resumes
                log.warning("delivery of message=%d not announced: %s", item.message_id, exc)
        else:
            log.warning("outbound message=%d will retry: %s", item.message_id, error)


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


def record_delivery(
    conn: Connection, provider_id: str, status: DeliveryStatus, reason: str | None = None
) -> tuple[int, int] | None:
    """Apply a provider's delivery report; returns (message id, conversation id) if it
    changed anything."""
    row = conn.execute(
        sa.select(
            t.messages.c.id, t.messages.c.conversation_id, t.messages.c.delivery_status
        ).where(t.messages.c.provider_id == provider_id)
    ).first()
    if row is None:
        return None
    current = DeliveryStatus(row.delivery_status)
    if _RANK.get(status, -1) <= _RANK.get(current, -1) or current is DeliveryStatus.FAILED:
        return None
    values: dict[str, Any] = {"delivery_status": status.value}
    if status is DeliveryStatus.FAILED:
        values["failure_reason"] = reason or "the provider reported a failure"
    conn.execute(sa.update(t.messages).where(t.messages.c.id == row.id).values(**values))
    return int(row.id), int(row.conversation_id)
