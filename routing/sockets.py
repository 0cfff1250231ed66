"""Which agents still have a socket open, and when to set offline an agent whose last
socket went away: `offline_grace_seconds` later, unless one connects meanwhile.

The router service owns one `AgentSockets` (see its docstring, **Presence**). Without a
`SocketPresence` the counts come from `agent.connection` events (`connected` /
`disconnected`); with one they are read from it (`sync`): every process's sockets, or in
Redis where each web process's agents expire with its heartbeat.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from inbox.bus.presence import SocketPresence
from inbox.errors import OmnideskError

log = logging.getLogger("omnidesk.routing")

SYNC_SECONDS = 1.0  # how often the counts are re-read from a SocketPresence


class AgentSockets:
    def __init__(
        self, source: SocketPresence | None, grace_seconds: float, clock: Callable[[], float]
    ) -> None:
        self.source = source  # where the counts are read from (None: counted from events)
        self.grace_seconds = grace_seconds
        self.clock = clock
        self.counts: dict[int, int] = {}
        self.grace: dict[int, float] = {}  # agent -> when to set it offline
        self.next_sync = 0.0  # when to re-read `source`

    def connected(self, agent_id: int) -> None:
        self.counts[agent_id] = self.counts.get(agent_id, 0) + 1
        self.grace.pop(agent_id, None)

    def disconnected(self, agent_id: int) -> bool:
        """True when that was its last socket: its grace period starts."""
        left = max(0, self.counts.get(agent_id, 0) - 1)
        self.counts[agent_id] = left
        if left:
            return False
        self.grace[agent_id] = self.clock() + self.grace_seconds
        return True

    def reset(self) -> None:
        self.counts, self.grace = {}, {}

    def expired(self, now: float) -> list[int]:
        """The agents whose grace period is over by `now` (no longer in grace)."""
        expired = [a for a, due in self.grace.items() if due <= now]
        for agent_id in expired:
            del self.grace[agent_id]
        return expired

    async def sync(self) -> None:
        """Take the counts from `source`; start or stop grace periods."""
        assert self.source is not None
        try:
            counts = await self.source.agent_sockets()
        except OmnideskError as exc:  # keep what we had rather than guess
            log.warning("cannot read agents' sockets (retrying): %s", exc.message)
            self.next_sync = self.clock() + SYNC_SECONDS
            return
        now = self.clock()
        self.next_sync = now + SYNC_SECONDS
        for agent_id in set(counts) | set(self.counts):
            if counts.get(agent_id, 0) > 0:
                self.grace.pop(agent_id, None)
            elif agent_id not in self.grace and (
                agent_id in counts or self.counts.get(agent_id, 0) > 0
            ):
                self.grace[agent_id] = now + self.grace_seconds
        self.counts = counts

    async def forget(self, agent_ids: list[int]) -> None:
        """Set offline: no longer "had sockets" (unless one connected meanwhile)."""
        assert self.source is not None
        gone = [a for a in agent_ids if self.counts.get(a, 0) == 0]
        try:
            await self.source.forget_agents(gone)
        except OmnideskError as exc:  # forgotten at the next expiry instead
            log.warning("cannot forget agents' sockets: %s", exc.message)
        for agent_id in gone:
            self.counts.pop(agent_id, None)
