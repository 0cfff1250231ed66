"""The outbox repository (inbox.store.outbox) on SQLite and PostgreSQL: a message and its
job are written together, leases keep claimers apart, outcomes and delivery reports land
as the rules say, and the sweeper's and the gauges' reads see what is due."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from inbox.errors import NotFound
from inbox.outbox.policy import LEASE
from inbox.store import agents
from inbox.store import outbox as repo
from inbox.store import schema as t
from inbox.types import AuthorKind, Channel, DeliveryStatus, Role
from tests.store import seed

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def _job(conn, message_id: int) -> dict:
    found = conn.execute(sa.select(t.outbox).where(t.outbox.c.message_id == message_id))
    return dict(found.mappings().one())


def _message(conn, message_id: int) -> dict:
    found = conn.execute(sa.select(t.messages).where(t.messages.c.id == message_id))
    return dict(found.mappings().one())


async def _conversation(store, channel: str = "email", **contact) -> int:
    identities = (("email", "ann@a.test"), ("phone", "+15550100"))
    who = await seed.contact(store, identities=identities, **contact)
    return await seed.conversation(store, who, channel=channel, subject="Order 7")


async def _enqueue(store, conv: int, **kw) -> int:
    values = {"conversation_id": conv, "text": "hi", "author_kind": AuthorKind.BOT, "now": T0}
    values.update(kw)
    return await store.write(lambda c: repo.enqueue(c, **values))


async def test_enqueue_writes_the_message_and_its_job_together(store):
    conv = await _conversation(store)
    agent = await store.write(lambda c: agents.add(c, "Ann", "a@desk.test", Role.AGENT, {}, {}))
    mid = await _enqueue(store, conv, author_kind=AuthorKind.AGENT, author_id=agent.id)
    later = await _enqueue(store, conv, author_kind=AuthorKind.AGENT, now=T0 + timedelta(1))
    message = await store.read(lambda c: _message(c, mid))
    assert (message["direction"], message["delivery_status"], message["channel"]) == (
        "outbound", "queued", "email",
    )  # fmt: skip
    job = await store.read(lambda c: _job(c, mid))
    assert (job["status"], job["attempts"], job["next_attempt_at"]) == ("pending", 0, T0)
    assert await store.read(lambda c: _job(c, later)) is not None
    conv_row = await store.read(
        lambda c: (
            c.execute(sa.select(t.conversations).where(t.conversations.c.id == conv))
            .mappings()
            .one()
        )
    )
    assert conv_row["first_response_at"] == T0  # the first answer's, not the later one's
    assert conv_row["last_message_at"] == T0 + timedelta(1)
    with pytest.raises(NotFound):
        await _enqueue(store, 999999)
    assert (await store.read(lambda c: repo.counts(c, T0)))["pending"] == 2


async def test_a_claimed_job_is_leased_once_until_its_lease_expires(store):
    conv = await _conversation(store)
    first = await _enqueue(store, conv)
    second = await _enqueue(store, conv, now=T0 + timedelta(seconds=1))
    claimed = await store.write(lambda c: repo.claim_due(c, T0 + timedelta(seconds=5), 1))
    assert len(claimed) == 1  # the longest due first
    job = await store.read(lambda c: _job(c, first))
    assert job["id"] == claimed[0] and job["status"] == "sending" and job["attempts"] == 1
    assert job["lease_until"] == T0 + timedelta(seconds=5) + LEASE
    now = T0 + timedelta(seconds=6)
    # leased: neither claim takes it again; the other job is still free
    assert await store.write(lambda c: repo.claim_message(c, first, now)) is None
    assert await store.write(lambda c: repo.claim_due(c, now, 10)) == [
        (await store.read(lambda c: _job(c, second)))["id"]
    ]
    # not due yet, then due and leased by nobody once the lease expired
    assert await store.write(lambda c: repo.claim_due(c, now, 10)) == []
    expired = now + LEASE + timedelta(seconds=1)
    again = await store.write(lambda c: repo.claim_message(c, first, expired))
    assert again == claimed[0]
    assert (await store.read(lambda c: _job(c, first)))["attempts"] == 2


async def test_parallel_claims_of_one_message_leave_it_to_one(store):
    conv = await _conversation(store)
    mid = await _enqueue(store, conv)
    now = T0 + timedelta(seconds=1)
    got = await asyncio.gather(
        *(store.write(lambda c: repo.claim_message(c, mid, now)) for _ in range(8))
    )
    assert len([g for g in got if g is not None]) == 1


async def test_outcomes_sent_retry_and_failed(store):
    conv = await _conversation(store)
    sent, retried, failed = [await _enqueue(store, conv) for _ in range(3)]
    jobs = await store.write(lambda c: repo.claim_due(c, T0, 10))
    ids = {m: (await store.read(lambda c, m=m: _job(c, m)))["id"] for m in (sent, retried, failed)}
    assert sorted(jobs) == sorted(ids.values())

    assert (
        await store.write(lambda c: repo.finish(c, ids[sent], sent, "prov-1", None, None))
        is DeliveryStatus.SENT
    )
    retry = T0 + timedelta(minutes=1)
    assert (
        await store.write(lambda c: repo.finish(c, ids[retried], retried, None, "busy", retry))
        is None
    )
    assert (
        await store.write(lambda c: repo.finish(c, ids[failed], failed, None, "bad address", None))
        is DeliveryStatus.FAILED
    )

    job, msg = [await store.read(lambda c, f=f: f(c, sent)) for f in (_job, _message)]
    assert (job["status"], job["lease_until"], msg["provider_id"]) == ("done", None, "prov-1")
    assert msg["delivery_status"] == "sent"
    job = await store.read(lambda c: _job(c, retried))
    assert (job["status"], job["last_error"], job["next_attempt_at"]) == ("pending", "busy", retry)
    job, msg = [await store.read(lambda c, f=f: f(c, failed)) for f in (_job, _message)]
    assert (job["status"], msg["delivery_status"], msg["failure_reason"]) == (
        "failed", "failed", "bad address",
    )  # fmt: skip
    # a provider id is set once: a late second send does not replace it
    await store.write(lambda c: repo.finish(c, ids[sent], sent, "prov-2", None, None))
    assert (await store.read(lambda c: _message(c, sent)))["provider_id"] == "prov-1"
    counts = await store.read(lambda c: repo.counts(c, retry + timedelta(seconds=30)))
    assert counts == {"pending": 1, "sending": 0, "failed": 1, "oldest_due_seconds": 30.0}


async def test_build_outbound_routes_the_reply_and_threads_it(store):
    conv = await _conversation(store, channel="form")
    agent = await store.write(lambda c: agents.add(c, "Ann Agent", "a@d.test", Role.AGENT, {}, {}))

    await seed.message(store, conv, channel="form", external_id="form-submission-1")
    await seed.message(store, conv, external_id="<first@customer.test>")
    await seed.message(store, conv, channel="sms", external_id="SM123")  # never a mail id
    mid = await _enqueue(
        store, conv, author_kind=AuthorKind.AGENT, author_id=agent.id, html="<p>hi</p>"
    )
    [job_id] = await store.write(lambda c: repo.claim_due(c, T0, 10))
    item, job = await store.read(lambda c: repo.build_outbound(c, job_id))
    assert job["message_id"] == mid and job["attempts"] == 1
    assert (item.channel, item.to) == ("email", "ann@a.test")  # a form is answered by email
    assert (item.subject, item.from_name, item.html) == ("Order 7", "Ann Agent", "<p>hi</p>")
    assert item.references == ("<first@customer.test>",)
    assert item.in_reply_to == "<first@customer.test>"
    assert await store.read(lambda c: repo.thread_ids(c, conv, mid)) == (
        ("<first@customer.test>",),
        "<first@customer.test>",
    )
    # once sent, there is nothing to send: the job is closed
    await store.write(lambda c: repo.finish(c, job_id, mid, "<ours@desk.test>", None, None))
    assert (await store.read(lambda c: repo.build_outbound(c, job_id)))[0] is None
    await store.write(lambda c: repo.mark_done(c, job_id))
    assert (await store.read(lambda c: _job(c, mid)))["status"] == "done"
    # and our own sent Message-ID threads the next answer
    after = await _enqueue(store, conv)
    assert await store.read(lambda c: repo.thread_ids(c, conv, after)) == (
        ("<first@customer.test>", "<ours@desk.test>"),
        "<first@customer.test>",
    )


async def test_a_chat_reply_carries_the_visitors_followup_address(store):
    conv = await _conversation(
        store, channel=Channel.CHAT.value, attributes={"email_for_followup": "v@x.test"}
    )
    await _enqueue(store, conv)
    [job_id] = await store.write(lambda c: repo.claim_due(c, T0, 10))
    item, _job_row = await store.read(lambda c: repo.build_outbound(c, job_id))
    assert (item.channel, item.to, item.followup_email) == ("chat", "", "v@x.test")


async def test_delivery_reports_only_move_a_status_forward(store):
    conv = await _conversation(store)
    mid = await _enqueue(store, conv)
    [job_id] = await store.write(lambda c: repo.claim_due(c, T0, 10))
    await store.write(lambda c: repo.finish(c, job_id, mid, "prov-9", None, None))

    async def report(status, reason=None):
        return await store.write(lambda c: repo.record_delivery(c, "prov-9", status, reason))

    assert await report(DeliveryStatus.DELIVERED) == (mid, conv)
    assert await report(DeliveryStatus.SENT) is None  # late and out of order
    assert (await store.read(lambda c: _message(c, mid)))["delivery_status"] == "delivered"
    assert await report(DeliveryStatus.FAILED) == (mid, conv)
    message = await store.read(lambda c: _message(c, mid))
    assert message["failure_reason"] == "the provider reported a failure"
    assert await report(DeliveryStatus.READ) is None  # failure is final
    assert (
        await store.write(lambda c: repo.record_delivery(c, "unknown", DeliveryStatus.DELIVERED))
        is None
    )


async def test_the_sweeper_reads_what_is_due_and_what_is_fresh(store):
    conv = await _conversation(store)
    old = await _enqueue(store, conv, now=T0 - timedelta(seconds=20))
    new = await _enqueue(store, conv, now=T0 - timedelta(seconds=2))
    assert await store.read(lambda c: repo.fresh_jobs(c, T0, 30.0)) == [old, new]
    assert await store.read(lambda c: repo.fresh_jobs(c, T0, 10.0)) == [new]
    # a first attempt younger than `fresh` is left to the job its writer enqueued
    due = await store.read(lambda c: repo.due_jobs(c, T0, 5.0, 10))
    assert due == [repo.Due(old, 0, 20.0)]
    assert await store.read(lambda c: repo.due_jobs(c, T0, 5.0, 0)) == []
    # a lease that expired counts from its end
    await store.write(lambda c: repo.claim_message(c, old, T0))
    later = T0 + LEASE + timedelta(seconds=3)
    assert await store.read(lambda c: repo.fresh_jobs(c, later, 300.0)) == [new]  # not old
    due = await store.read(lambda c: repo.due_jobs(c, later, 5.0, 10))
    assert due == [repo.Due(old, 1, 3.0), repo.Due(new, 0, LEASE.total_seconds() + 5.0)]
