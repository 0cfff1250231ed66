"""The case sweeper: what time does to conversations (a snooze ends, a solved conversation
closes after `auto_close_after`, an SLA clock warns or breaches and the case escalates),
fired durably and once.

Each pass is one write transaction: the conversations whose `wake_at` has come
(`inbox.store.cases.due_ids`: on PostgreSQL locked with SKIP LOCKED, so a second sweeper
takes other rows), then for each the core's `tick` and the version-guarded
`save_change`. A change an agent committed in between wins: the row is left for the next
pass, which reads it again and finds what is still due. After the commit the changes are
announced (`conversation.queued` when a snooze ends and the case waits for an agent,
`conversation.status_changed` when it closes, `sla.warning` / `sla.breached` /
`conversation.escalated` at a breach).

Durable: `wake_at` lives in the row, so the first pass after a restart fires everything
that came due while the process was down. Fired once: the process holding the
worker-duties lease runs the sweeper, and the version guard settles the rest (a tick that
was saved leaves nothing due). Between passes it sleeps until the earliest `wake_at`, at
most `max_sleep` seconds (a change committed by another process may bring it forward).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from inbox.actions.announce import announce, events_for
from inbox.actions.run import Clock
from inbox.bus.backends import EventBus
from inbox.cases import CasePolicies, Change, tick
from inbox.cases.due import summary
from inbox.store import cases as repo
from inbox.store.backends import Store
from inbox.tasks import Repeating

__all__ = ["CaseSweeper"]

log = logging.getLogger("omnidesk.sweeper")


def _now() -> datetime:
    return datetime.now(UTC)


class CaseSweeper(Repeating):
    """`sweep()` runs one pass; `start()`/`stop()` run passes until stopped (a worker duty)."""

    task_name = "case-sweeper"
    failure = "case sweep failed"
    log = log

    def __init__(
        self,
        store: Store,
        bus: EventBus,
        policies: CasePolicies,
        *,
        clock: Clock = _now,
        max_sleep: float = 1.0,
        batch: int = 200,
    ) -> None:
        self.store, self.bus, self.policies = store, bus, policies
        self.clock = clock
        self.max_sleep = max_sleep
        self.batch = batch

    async def sweep(self) -> list[Change]:
        """One pass: tick every due conversation (up to `batch`), commit, announce; the
        changes written."""
        now = self.clock()
        written = await self.store.write(lambda conn: self._pass(conn, now))
        for change in written:
            await announce(self.bus, events_for(change, now))
        return written

    def _pass(self, conn: Any, now: datetime) -> list[Change]:
        written = []
        for cid in repo.due_ids(conn, now, self.batch):
            case = repo.load_case(conn, cid)
            change = tick(case, now, self.policies)
            due = summary(change.case, now, self.policies)
            if not change.changed and not change.entries:
                # nothing was due after all (e.g. the targets changed): the next time
                repo.reschedule(conn, cid, case.version, due.wake_at)
            elif repo.save_change(conn, change, due, at=now):
                written.append(change)
        return written

    async def run_once(self) -> int:
        return len(await self.sweep())

    async def pause(self, done: int) -> None:
        """None if a full batch was done (more may be due now), else until the earliest
        `wake_at`, at most `max_sleep`."""
        if done >= self.batch:
            return
        try:
            when = await self.store.read(repo.earliest_wake)
        except Exception:  # the store is away: the next round fails and logs it
            when = None
        wait = self.max_sleep
        if when is not None:
            wait = max(0.0, min(self.max_sleep, (when - self.clock()).total_seconds()))
        await asyncio.sleep(wait)
