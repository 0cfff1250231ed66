"""Ownership against the router (issue 17), on both backends: an accepted offer is never
taken back (also when the router has not heard of the accept yet: the database refuses
its take-back), an offer not accepted is, a claim and a take-next are the router's
knowledge at once, and a reply claims in its own transaction, claim first."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from agent_ui.routing_api import RoutingClient
from inbox.actions import ownership
from inbox.errors import Conflict
from inbox.store import schema as t
from routing import commands as cmd
from tests.store.factories import POLICIES


async def _row(desk, cid):
    c = t.conversations.c
    return await desk.store.read(
        lambda conn: conn.execute(
            sa.select(c.assignee_id, c.accepted_at, c.version).where(c.id == cid)
        ).one()
    )


def _taken_back(desk, cid):
    return [
        e for e in desk.named("conversation.unassigned")
        if e["conversation_id"] == cid and e["reason"] == "accept_timeout"
    ]  # fmt: skip


async def test_an_accepted_offer_stays_and_one_not_accepted_goes_back(desk):
    await desk.start(accept_timeout_seconds=1.0)
    ann = await desk.agent("ann")
    kept = await desk.message()
    lost = await desk.message()
    assert await desk.assigned() == {kept: ann, lost: ann}
    await ownership.accept(desk.store, desk.bus, POLICIES, kept, ann)
    await desk.settle()
    assert desk.service.router.conversation(kept).accepted

    async def back() -> bool:
        return lost in await desk.waiting() or bool(_taken_back(desk, lost))

    await desk.wait_for(back)
    assert (await desk.assigned()).get(kept) == ann and not _taken_back(desk, kept)
    assert (await _row(desk, lost)).assignee_id != ann or _taken_back(desk, lost)


async def test_the_database_refuses_a_take_back_the_router_decided_after_an_accept(desk):
    """The accept committed, its event not applied yet: the take-back loses the write, the
    router re-reads the row and keeps the conversation with its agent."""
    await desk.start(accept_timeout_seconds=0.5)
    ann = await desk.agent("ann")
    bob = await desk.agent("bob")
    cid = await desk.message()
    holder = (await desk.assigned())[cid]
    c = t.conversations.c
    await desk.store.write(  # as the accept writes it, with no event for the router
        lambda conn: conn.execute(
            sa.update(t.conversations).where(c.id == cid)
            .values(accepted_at=sa.func.now(), version=c.version + 1)
        )
    )  # fmt: skip

    async def reread() -> bool:
        view = desk.service.router.conversation(cid)
        return view is not None and view.accepted

    await desk.wait_for(reread)
    assert (await desk.assigned()) == {cid: holder} and holder in (ann, bob)
    assert not _taken_back(desk, cid)


async def test_a_claim_of_a_waiting_conversation_is_the_routers_at_once(desk):
    await desk.start()
    ann = await desk.agent("ann", presence="away")
    cid = await desk.message()
    assert cid in await desk.waiting()
    change = await ownership.claim(desk.store, desk.bus, POLICIES, cid, ann)
    assert change.case.assignee_id == ann and change.case.accepted_at is not None
    await desk.settle()
    view = desk.service.router.conversation(cid)
    assert (view.state, view.agent_id, view.accepted) == ("assigned", ann, True)
    assert ann in {a.agent_id for a in desk.service.router.agents() if cid in a.assigned}


async def test_a_claim_over_another_agent_is_refused_with_their_name(desk):
    await desk.start()
    ann = await desk.agent("ann")
    cid = await desk.message()
    bob = await desk.agent("bob")
    try:
        await ownership.claim(desk.store, desk.bus, POLICIES, cid, bob)
    except Conflict as exc:
        assert exc.message == "ann already has this conversation"
    else:
        raise AssertionError("the claim went through")
    assert (await _row(desk, cid)).assignee_id == ann


async def test_take_next_gives_the_best_waiting_conversation_accepted(desk):
    await desk.start()
    ann = await desk.agent("ann", presence="away")  # away: nothing is pushed to her
    low = await desk.message(priority="low")
    high = await desk.message(priority="high")
    assert await desk.waiting() == {low, high}
    client = RoutingClient(desk.bus)
    answer = await client.command(cmd.TAKE_NEXT, 0, agent_id=ann)
    assert answer["conversation_id"] == high
    row = await _row(desk, high)
    assert row.assignee_id == ann and row.accepted_at is not None
    assert await desk.waiting() == {low}


async def test_a_reply_claims_a_waiting_conversation_and_not_anothers(desk):
    await desk.start()
    cid = await desk.message()
    ann = await desk.agent("ann", presence="away")
    bob = await desk.agent("bob", presence="away")
    events: list = []
    mid = await desk.store.write(
        lambda conn: ownership.reply_claiming(
            conn, cid, ann, "hello", None, policies=POLICIES, over_holder=False, announced=events
        )
    )
    assert mid > 0 and (await _row(desk, cid)).assignee_id == ann
    assert {e.name for e in events} >= {"conversation.assigned"}
    count = len(await desk.store.read(lambda conn: conn.execute(sa.select(t.outbox)).all()))
    try:
        await desk.store.write(
            lambda conn: ownership.reply_claiming(
                conn, cid, bob, "me too", None, policies=POLICIES, over_holder=False,
                announced=[],
            )
        )  # fmt: skip
    except Conflict as exc:
        assert exc.message == "ann already has this conversation"
    else:
        raise AssertionError("the reply went through")
    after = len(await desk.store.read(lambda conn: conn.execute(sa.select(t.outbox)).all()))
    assert after == count  # nothing enqueued


async def test_two_agents_claiming_at_once_one_wins_the_other_is_told(desk):
    await desk.start()
    ann = await desk.agent("ann", presence="away")
    bob = await desk.agent("bob", presence="away")
    for _ in range(3):
        cid = await desk.message()
        results = await asyncio.gather(
            ownership.claim(desk.store, desk.bus, POLICIES, cid, ann),
            ownership.claim(desk.store, desk.bus, POLICIES, cid, bob),
            return_exceptions=True,
        )
        won = [r for r in results if not isinstance(r, BaseException)]
        lost = [r for r in results if isinstance(r, Conflict)]
        assert len(won) == 1 and len(lost) == 1, results
        holder = won[0].case.assignee_id
        assert (
            lost[0].message == f"{'ann' if holder == ann else 'bob'} already has this conversation"
        )
        assert (await _row(desk, cid)).assignee_id == holder


async def test_an_accept_and_a_claim_at_once_one_wins(desk):
    await desk.start(accept_timeout_seconds=30)
    ann = await desk.agent("ann")
    cid = await desk.message()
    bob = await desk.agent("bob", presence="away")
    assert (await desk.assigned())[cid] == ann
    results = await asyncio.gather(
        ownership.accept(desk.store, desk.bus, POLICIES, cid, ann),
        ownership.claim(desk.store, desk.bus, POLICIES, cid, bob),
        return_exceptions=True,
    )
    assert not isinstance(results[0], BaseException)
    assert isinstance(results[1], Conflict) and results[1].message.startswith("ann ")
    row = await _row(desk, cid)
    assert row.assignee_id == ann and row.accepted_at is not None


async def test_a_pull_only_inbox_is_never_offered_and_taken_on_request(desk):
    await desk.start(pull_only=frozenset({"sales"}))
    ann = await desk.agent("ann", teams=("default", "sales"))
    pulled = await desk.message(inbox="sales")
    pushed = await desk.message()
    assert await desk.assigned() == {pushed: ann}
    assert await desk.waiting() == {pulled}
    await desk.presence(ann, "online")  # settling the agent again does not pull it either
    assert await desk.waiting() == {pulled}
    answer = await RoutingClient(desk.bus).command(cmd.TAKE_NEXT, 0, agent_id=ann)
    assert answer["conversation_id"] == pulled
    assert (await desk.assigned()) == {pushed: ann, pulled: ann}
