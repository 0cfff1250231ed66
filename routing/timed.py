"""The router's timers firing: relaxation steps, first-response SLA breaches, offers not
accepted in time, and the end of an agent's exclusion from a conversation. Mixed into
`routing.core.Router`; same conventions (take `now`, return the decisions caused)."""

from __future__ import annotations

from routing.decisions import Decision, Relaxed, SlaBreached
from routing.engine import ACCEPT, RELAX, SLA, UNEXCLUDE, Engine
from routing.model import ASSIGNED, NOBODY, WAITING, Conv


class TimedMoves(Engine):
    def tick(self, now: float) -> list[Decision]:
        """Fire every timer due by `now`: relaxation, SLA, accept timeouts, exclusions."""
        pop_due = self._timers.pop_due
        while (timer := pop_due(now)) is not None:
            due, _, kind, cid = timer
            conv = self._convs.get(cid)
            if conv is None:  # resolved; a timer of an earlier life of this id fires only
                continue  # at the very due the current one has, which then finds it done
            if kind == RELAX and conv.state == WAITING and conv.relax_due == due:
                self._relax(conv, now)
            elif kind == SLA and conv.state == WAITING and conv.sla_due == due:
                self._breach(conv, now)
            elif kind == ACCEPT and conv.state == ASSIGNED and conv.accept_due == due:
                self._accept_timeout(conv, now)
            elif kind == UNEXCLUDE and conv.excl_due == due:
                conv.excluded = NOBODY
                conv.excl_due = None
                if conv.state == WAITING:
                    self._offer(conv, now)
        return self._flush()

    def next_due(self) -> float | None:
        """When `tick` next has something to do (a lower bound), or None."""
        return self._timers.next_due()

    def _relax(self, conv: Conv, now: float) -> None:
        rules = conv.rules
        after = rules.required_at(
            conv.skills, conv.optional, rules.stage_at(now - conv.waiting_since)
        )
        if after != conv.required:
            self._out.append(Relaxed(conv.id, now, tuple(sorted(after))))
        conv.bucket.drop_conv(conv)  # type: ignore[union-attr]
        self._place(conv, now)

    def _breach(self, conv: Conv, now: float) -> None:
        target = self._sla[conv.rank] or 0.0
        old = conv.rank
        conv.rank = max(0, old - 1)
        conv.sla_base = now
        self._out.append(
            SlaBreached(
                conv.id,
                now,
                self._levels[old],
                self._levels[conv.rank],
                now - conv.enqueued_at,
                target,
            )
        )
        conv.bucket.drop_conv(conv)  # type: ignore[union-attr]
        if old == 0:
            conv.responded = True  # at the top level: one event, then no more SLA timers
        self._place(conv, now)

    def _accept_timeout(self, conv: Conv, now: float) -> None:
        agent = self._agents[conv.agent_id]  # type: ignore[index]
        self._release(conv, agent, now, "accept_timeout")
        self._exclude(conv, agent.id, now)
        self._requeue(conv, now, "accept_timeout")
        self._settle(agent, now)
