"""One case operation against the store: read the case, ask the core, write the change
with its activity entries, and announce it after the commit.

Read, operation and write run in one write transaction. The write is conditional on the
version read (`inbox.store.cases.save_change`); when another change was committed in
between, the case is read again and the operation asked once more: the core then refuses
with the reason (`Conflict`: "agent 7 already has this conversation"), finds nothing left
to do, or makes its change over the new version. A second lost race in a row is reported
as a `Conflict` to try again. A refusal writes nothing and announces nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from inbox.actions.announce import announce, events_for
from inbox.bus.backends import EventBus
from inbox.cases import Actor, Case, CasePolicies, Change
from inbox.cases.due import summary
from inbox.errors import Conflict
from inbox.store import cases as repo
from inbox.store.backends import Store

__all__ = ["CaseOp", "Clock", "apply_case_op", "run_case_op"]

Clock = Callable[[], datetime]


class CaseOp(Protocol):
    """An operation of `inbox.cases` with its own arguments bound, e.g.
    `functools.partial(cases.set_status, to=CaseStatus.PENDING, reason="asked for logs")`.
    It returns the change, or raises `Conflict` / `ValidationError` with the reason."""

    def __call__(
        self, case: Case, /, *, actor: Actor, at: datetime, policies: CasePolicies
    ) -> Change: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


async def run_case_op(
    store: Store,
    bus: EventBus,
    policies: CasePolicies,
    conversation_id: int,
    op: CaseOp,
    actor: Actor,
    *,
    clock: Clock = utc_now,
) -> Change:
    """Apply `op` by `actor` to the conversation and return the change as committed (its
    case at the version it was written at). Raises `NotFound`, or the core's refusal."""
    change, at = await store.write(
        lambda conn: apply_case_op(conn, conversation_id, op, actor, policies, clock)
    )
    await announce(bus, events_for(change, at))
    return change


def apply_case_op(
    conn: Any, cid: int, op: CaseOp, actor: Actor, policies: CasePolicies, clock: Clock = utc_now
) -> tuple[Change, datetime]:
    """`run_case_op` inside a write transaction the caller holds (the pipeline moves a
    conversation in the transaction that triaged it; a reply claims in the transaction that
    queues it): the change as written and when. The caller announces
    `events_for(change, at)` after its commit."""
    for _ in range(2):
        case = repo.load_case(conn, cid)
        at = clock()
        change = op(case, actor=actor, at=at, policies=policies)
        if repo.save_change(conn, change, summary(change.case, at, policies), at=at):
            return _written(change), at
    raise Conflict("the conversation changed twice while this was being done; try again")


def _written(change: Change) -> Change:
    """`change` with its case at the version the store moved it to (if it wrote it)."""
    if not change.changed and not change.entries:
        return change
    case = dataclasses.replace(change.case, version=change.before.version + 1)
    return dataclasses.replace(change, case=case)
