"""The outbox repository: outbound messages and their delivery jobs (`outbox` rows).

An outbound message and its job are written in one transaction (`enqueue`); a worker
leases due jobs (`claim_due`, `claim_message`), reads what to send (`build_outbound`) and
records the outcome (`finish`); provider delivery reports move a message's status
(`record_delivery`); the RQ sweeper and the gauges read what is due (`due_jobs`,
`fresh_jobs`, `counts`). The rules (retries, leases, reply routes, references, status
order) are `inbox.outbox.policy`'s. Plain functions of a Connection, run by
`inbox.store.backends.Store`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inbox.errors import NotFound
from inbox.outbox.policy import LEASE, advances, reply_route, thread_ids_of
from inbox.ports import Outbound
from inbox.store import schema as t
from inbox.types import AuthorKind, Channel, DeliveryStatus, Direction, IdentityKind

__all__ = [
    "Due",
    "build_outbound",
    "claim_due",
    "claim_message",
    "counts",
    "due_jobs",
    "enqueue",
    "finish",
    "fresh_jobs",
    "mark_done",
    "record_delivery",
    "thread_ids",
]

o = t.outbox.c


def _claimable(now: datetime) -> tuple[Any, ...]:
    """Due and leased by nobody (or by a worker whose lease expired)."""
    return (
        o.status.in_(("pending", "sending")),
        o.next_attempt_at <= now,
        sa.or_(o.lease_until.is_(None), o.lease_until < now),
    )


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
    """Write an outbound message and its delivery job, due now; returns the message id.
    An agent's first answer stamps the conversation's first response. NotFound for an
    unknown conversation."""
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


def claim_due(conn: Connection, now: datetime, limit: int, lease: timedelta = LEASE) -> list[int]:
    """Lease up to `limit` due jobs nobody holds, the longest due first; their outbox ids.
    On PostgreSQL rows another worker is claiming are skipped, not waited for."""
    query = sa.select(o.id).where(*_claimable(now)).order_by(o.next_attempt_at).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = [row.id for row in conn.execute(query)]
    if ids:
        conn.execute(
            sa.update(t.outbox)
            .where(o.id.in_(ids))
            .values(status="sending", lease_until=now + lease, attempts=o.attempts + 1)
        )
    return ids


def claim_message(
    conn: Connection, message_id: int, now: datetime, lease: timedelta = LEASE
) -> int | None:
    """Lease one message's delivery job if it is due and nobody holds it; its outbox id,
    or None (already sent, failed, not yet due, or leased by another worker).

    One conditional UPDATE: on PostgreSQL a concurrent claimer blocks on the row and then
    re-checks the lease it just saw set, so exactly one of them gets the row."""
    found = conn.execute(
        sa.update(t.outbox)
        .where(o.message_id == message_id, *_claimable(now))
        .values(status="sending", lease_until=now + lease, attempts=o.attempts + 1)
        .returning(o.id)
    ).scalar()
    return None if found is None else int(found)


def thread_ids(
    conn: Connection, conversation_id: int, before: int, keep: int = 19
) -> tuple[tuple[str, ...], str | None]:
    """The Message-IDs of a conversation's messages before message `before`, for an
    outbound message's References, and the latest customer's one for In-Reply-To (the
    rule: `inbox.outbox.policy.thread_ids_of`)."""
    tm = t.messages.c
    query = sa.select(tm.direction, tm.channel, tm.external_id, tm.provider_id).where(
        tm.conversation_id == conversation_id,
        tm.id < before,
        sa.or_(tm.external_id.is_not(None), tm.provider_id.is_not(None)),
    )
    first = conn.execute(query.order_by(tm.id).limit(1)).all()
    latest = conn.execute(query.order_by(tm.id.desc()).limit(keep * 3)).all()[::-1]
    return thread_ids_of((tuple(row) for row in (*first, *latest)), keep)


def build_outbound(conn: Connection, outbox_id: int) -> tuple[Outbound | None, Any]:
    """The job's message as its sender needs it, and the job's row; None for the message
    if it was already sent (it has a provider id)."""
    job = conn.execute(sa.select(t.outbox).where(o.id == outbox_id)).mappings().one()
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
            subject=m["subject"] or conv["subject"],
            from_name=author,
            in_reply_to=in_reply_to,
            references=refs,
            auto_reply=bool((m["meta"] or {}).get("auto_reply")),
            inbox=conv["inbox"],
            followup_email=followup if isinstance(followup, str) else None,
        ),
        job,
    )


def _set_job(conn: Connection, outbox_id: int, **values: Any) -> None:
    """Release a job's lease and set `values` on it."""
    conn.execute(sa.update(t.outbox).where(o.id == outbox_id).values(lease_until=None, **values))


def mark_done(conn: Connection, outbox_id: int) -> None:
    """Close a job whose message needs no send (it was sent already)."""
    _set_job(conn, outbox_id, status="done")


def finish(
    conn: Connection,
    outbox_id: int,
    message_id: int,
    provider_id: str | None,
    error: str | None,
    retry_at: datetime | None,
) -> DeliveryStatus | None:
    """Record a send's outcome: sent (`provider_id`, set once on the message), failed for
    good (`retry_at` None) or due again at `retry_at`. The message's new status, or None
    when it waits for a retry."""
    m = t.messages.c
    if provider_id is not None:
        _set_job(conn, outbox_id, status="done", last_error=None)
        conn.execute(
            sa.update(t.messages)
            .where(m.id == message_id, m.provider_id.is_(None))
            .values(provider_id=provider_id, delivery_status=DeliveryStatus.SENT.value)
        )
        return DeliveryStatus.SENT
    if retry_at is None:
        _set_job(conn, outbox_id, status="failed", last_error=error)
        conn.execute(
            sa.update(t.messages)
            .where(m.id == message_id)
            .values(delivery_status=DeliveryStatus.FAILED.value, failure_reason=error)
        )
        return DeliveryStatus.FAILED
    _set_job(conn, outbox_id, status="pending", last_error=error, next_attempt_at=retry_at)
    return None


def record_delivery(
    conn: Connection, provider_id: str, status: DeliveryStatus, reason: str | None = None
) -> tuple[int, int] | None:
    """Apply a provider's delivery report to the message it names, if it moves the
    message's status forward (`inbox.outbox.policy.advances`); returns (message id,
    conversation id) if it changed anything."""
    tm = t.messages.c
    row = conn.execute(
        sa.select(tm.id, tm.conversation_id, tm.delivery_status).where(
            tm.provider_id == provider_id
        )
    ).first()
    if row is None or not advances(DeliveryStatus(row.delivery_status), status):
        return None
    values: dict[str, Any] = {"delivery_status": status.value}
    if status is DeliveryStatus.FAILED:
        values["failure_reason"] = reason or "the provider reported a failure"
    conn.execute(sa.update(t.messages).where(tm.id == row.id).values(**values))
    return int(row.id), int(row.conversation_id)


# -- what the RQ sweeper and the gauges read ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Due:
    """A job a worker could claim now."""

    message_id: int
    attempts: int
    overdue: float  # seconds since it became claimable


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def due_jobs(conn: Connection, now: datetime, fresh: float, limit: int) -> list[Due]:
    """Jobs a worker could claim now, the longest due first; first attempts younger than
    `fresh` seconds are left to the job their writer enqueued."""
    rows = conn.execute(
        sa.select(o.message_id, o.attempts, o.next_attempt_at, o.lease_until)
        .where(
            *_claimable(now),
            sa.not_(sa.and_(o.attempts == 0, o.next_attempt_at > now - timedelta(seconds=fresh))),
        )
        .order_by(o.next_attempt_at)
        .limit(limit)
    ).all()
    out = []
    for r in rows:
        since = max(_utc(r.next_attempt_at), _utc(r.lease_until) if r.lease_until else _EPOCH)
        out.append(Due(r.message_id, r.attempts, (now - since).total_seconds()))
    return out


def fresh_jobs(conn: Connection, now: datetime, window: float = 30.0) -> list[int]:
    """First attempts written in the last `window` seconds and not yet claimed: what a
    writer that does not say which message it wrote just committed (message ids)."""
    return [
        r.message_id
        for r in conn.execute(
            sa.select(o.message_id).where(
                o.status == "pending",
                o.attempts == 0,
                o.lease_until.is_(None),
                o.next_attempt_at <= now,
                o.next_attempt_at > now - timedelta(seconds=window),
            )
        )
    ]


def counts(conn: Connection, now: datetime) -> dict[str, Any]:
    """Work not done yet, for /readyz and the gauges: jobs by status (pending, sending,
    failed) and the oldest pending job's seconds past due (`oldest_due_seconds`)."""
    by_status = {"pending": 0, "sending": 0, "failed": 0}
    for status, n in conn.execute(
        sa.select(o.status, sa.func.count())
        .where(o.status.in_(tuple(by_status)))
        .group_by(o.status)
    ):
        by_status[status] = int(n)
    oldest = conn.execute(
        sa.select(sa.func.min(o.next_attempt_at)).where(o.status == "pending")
    ).scalar()
    overdue = (now - _utc(oldest)).total_seconds() if oldest is not None else 0.0
    return {**by_status, "oldest_due_seconds": round(max(overdue, 0.0), 1)}
