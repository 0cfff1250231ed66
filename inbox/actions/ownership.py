"""Who holds a conversation, as the agents' actions (issue 17): accept an offer, claim a
waiting conversation, and the claim a reply makes.

Each is `inbox.cases.ownership`'s operation in `run_case_op`'s frame: of two agents
accepting or claiming at once, the store's version-guarded write lets exactly one win,
and the other is refused with the holder's name (`holder_conflict`). The router hears of
it from the events announced after the commit (`conversation.assigned` /
`conversation.updated`) and takes the conversation as the database now has it; its own
take-back of an offer loses to an accept (`inbox.store.router_rows.U_TAKE_BACK`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from inbox.actions.announce import events_for
from inbox.actions.run import Clock, apply_case_op, run_case_op
from inbox.bus.backends import EventBus
from inbox.cases import Actor, Case, CasePolicies, Change
from inbox.cases import ownership as core
from inbox.cases.ownership import HOLDABLE
from inbox.errors import Conflict, NotFound
from inbox.events import Event
from inbox.store import agents, messages
from inbox.store import cases as repo
from inbox.store.backends import Store

__all__ = ["accept", "claim", "holder_conflict", "reply_claiming"]


def _accept_op(agent_id: int) -> Any:
    def op(case: Case, /, *, actor: Actor, at: datetime, policies: CasePolicies) -> Change:
        return core.accept(case, agent_id, at=at, policies=policies)

    return op


def _claim_op(agent_id: int, reason: str) -> Any:
    def op(case: Case, /, *, actor: Actor, at: datetime, policies: CasePolicies) -> Change:
        return core.claim(case, agent_id, at=at, policies=policies, reason=reason)

    return op


def holder_conflict(conn: Any, cid: int, agent_id: int) -> Conflict | None:
    """The refusal to give `agent_id` as it reads now: another agent holds the conversation
    (named), or nobody offered it to them; None when they hold it (or may take it)."""
    case = repo.load_case(conn, cid)
    if case.assignee_id is None or case.assignee_id == agent_id:
        return None
    try:
        name = agents.get(conn, case.assignee_id).name
    except NotFound:
        name = f"agent {case.assignee_id}"
    return Conflict(f"{name} already has this conversation", field="agent_id")


async def _named(store: Store, cid: int, agent_id: int, exc: Conflict) -> Conflict:
    found = await store.read(lambda conn: holder_conflict(conn, cid, agent_id))
    return found or exc


async def accept(
    store: Store, bus: EventBus, policies: CasePolicies, cid: int, agent_id: int,
    *, clock: Clock | None = None,
) -> Change:  # fmt: skip
    """The agent accepts the offer of `cid` (again: nothing changes). Conflict naming the
    holder when the offer went to someone else, or was taken back."""
    extra = {} if clock is None else {"clock": clock}
    try:
        return await run_case_op(
            store, bus, policies, cid, _accept_op(agent_id), Actor.agent(agent_id), **extra
        )
    except Conflict as exc:
        raise await _named(store, cid, agent_id, exc) from None


async def claim(
    store: Store, bus: EventBus, policies: CasePolicies, cid: int, agent_id: int,
    *, reason: str = "claimed", clock: Clock | None = None,
) -> Change:  # fmt: skip
    """The agent takes `cid` (waiting, or offered to them). Conflict naming the holder."""
    extra = {} if clock is None else {"clock": clock}
    op = _claim_op(agent_id, reason)
    try:
        return await run_case_op(store, bus, policies, cid, op, Actor.agent(agent_id), **extra)
    except Conflict as exc:
        raise await _named(store, cid, agent_id, exc) from None


def _claims(case: Case, agent_id: int) -> bool:
    """Whether a reply by `agent_id` claims the case: it is holdable and nobody holds it,
    or it is offered to them (then the reply accepts)."""
    if case.status not in HOLDABLE:
        return False
    return case.assignee_id is None or (case.assignee_id == agent_id and case.accepted_at is None)


def reply_claiming(
    conn: Any,
    cid: int,
    agent_id: int,
    text: str,
    subject: str | None,
    *,
    policies: CasePolicies,
    over_holder: bool,
    announced: list[Event],
) -> int:
    """An agent's reply that claims the conversation, in the caller's write transaction,
    claim first: nobody holds it, it becomes theirs; offered to them, accepted. Held by
    another agent: Conflict with the holder's name and nothing is enqueued, unless
    `over_holder` (a supervisor replies over the holder, who keeps it). The events of the
    claim are appended to `announced`, to publish after the commit. Returns the reply's
    message id."""
    case = repo.load_case(conn, cid)
    if case.assignee_id is not None and case.assignee_id != agent_id and not over_holder:
        refusal = holder_conflict(conn, cid, agent_id)
        if refusal is not None:
            raise refusal
    if _claims(case, agent_id):
        op = _claim_op(agent_id, "replied")
        change, at = apply_case_op(conn, cid, op, Actor.agent(agent_id), policies)
        announced.extend(events_for(change, at))
    return messages.reply(conn, cid, agent_id, text, subject)
