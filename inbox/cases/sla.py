"""SLA clocks: first response, next response and resolution, with pauses, warnings and
breaches (pure).

A clock counts *counted* time (`inbox.cases.hours`: every second, or the inbox's open
hours) towards its target. It runs, is paused (the case is in a status the config names
in `sla.pause_in`), or is done (the response was given, the case was solved). Its due
time is when the counted time reaches the target; the warning comes when it reaches the
configured fraction. A breach is noted once and stays noted whatever happens after
(a later change of target does not undo it).

The clocks of one case (`CaseSla`):

* opening a case starts first response and resolution;
* an agent's public reply ends first response and next response;
* a customer's message after an agent's reply starts next response;
* solving ends every clock; reopening resumes resolution where it stopped;
* entering a pausing status pauses the running clocks, leaving it resumes them;
* a change of priority or inbox gives the clocks not done and not breached the new
  targets, counting what they used so far.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from inbox.cases.hours import ZERO, Calendar

__all__ = ["CaseSla", "SlaClock", "SlaEvent", "SlaMetric", "SlaState", "SlaTargets"]


class SlaMetric(enum.StrEnum):
    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"


class SlaState(enum.StrEnum):
    RUNNING = "running"
    WARNING = "warning"  # past the warning fraction of its target
    PAUSED = "paused"
    BREACHED = "breached"  # the target passed without the response / solve
    MET = "met"  # done within its target


@dataclass(frozen=True, slots=True)
class SlaTargets:
    """One priority's targets in one inbox (None: no target for that metric)."""

    first_response: timedelta | None = None
    next_response: timedelta | None = None
    resolution: timedelta | None = None

    def of(self, metric: SlaMetric) -> timedelta | None:
        target: timedelta | None = getattr(self, metric.value)
        return target


NO_TARGETS = SlaTargets()


@dataclass(frozen=True, slots=True)
class SlaEvent:
    metric: SlaMetric
    state: SlaState  # WARNING or BREACHED
    at: datetime  # when it happened (the due instant; `now` when that is unknown)


@dataclass(frozen=True, slots=True)
class SlaClock:
    metric: SlaMetric
    target: timedelta
    used: timedelta = ZERO  # counted time before `since` (all of it unless running)
    since: datetime | None = None  # counting since then; None while paused or done
    done_at: datetime | None = None
    warned: bool = False  # the warning was noted
    breached: bool = False  # the breach was noted

    @property
    def running(self) -> bool:
        return self.since is not None

    def used_at(self, now: datetime, calendar: Calendar) -> timedelta:
        if self.since is None:
            return self.used
        return self.used + calendar.between(self.since, now)

    def _reached(self, amount: timedelta, calendar: Calendar) -> datetime | None:
        if self.since is None:
            return None
        return calendar.add(self.since, max(amount - self.used, ZERO))

    def due(self, calendar: Calendar) -> datetime | None:
        """When the target is reached, while the clock runs."""
        return self._reached(self.target, calendar)

    def warn_due(self, calendar: Calendar, fraction: float) -> datetime | None:
        return self._reached(self.target * fraction, calendar)

    def state(self, now: datetime, calendar: Calendar, fraction: float) -> SlaState:
        used = self.used_at(now, calendar)
        if self.breached or used >= self.target:
            return SlaState.BREACHED
        if self.done_at is not None:
            return SlaState.MET
        if self.since is None:
            return SlaState.PAUSED
        return SlaState.WARNING if used >= self.target * fraction else SlaState.RUNNING

    # -- changes ---------------------------------------------------------------------------
    def pause(self, at: datetime, calendar: Calendar) -> SlaClock:
        if self.since is None:
            return self
        return dataclasses.replace(self, used=self.used_at(at, calendar), since=None)

    def resume(self, at: datetime) -> SlaClock:
        if self.since is not None or self.done_at is not None:
            return self
        return dataclasses.replace(self, since=at)

    def stop(self, at: datetime, calendar: Calendar) -> SlaClock:
        if self.done_at is not None:
            return self
        return dataclasses.replace(self, used=self.used_at(at, calendar), since=None, done_at=at)

    def reopen(self, at: datetime) -> SlaClock:
        return dataclasses.replace(self, since=at, done_at=None)

    def retarget(
        self, target: timedelta, at: datetime, calendar: Calendar, fraction: float
    ) -> SlaClock:
        """The new target, counting what was used under the old calendar until `at`. A
        warning given stays given while the new target's warning point has passed too."""
        if self.done_at is not None or self.breached:
            return self
        used = self.used_at(at, calendar)
        return dataclasses.replace(
            self,
            target=target,
            used=used,
            since=None if self.since is None else at,
            warned=self.warned and used >= target * fraction,
        )

    def tick(
        self, now: datetime, calendar: Calendar, fraction: float
    ) -> tuple[SlaClock, list[SlaEvent]]:
        """Note the warning and the breach that are due by `now`, each once. A clock that
        went past its target while nobody looked (paused or stopped late before a tick)
        is noted as breached at `now`."""
        if self.breached:
            return self, []
        events: list[SlaEvent] = []
        warn, due = self.warn_due(calendar, fraction), self.due(calendar)
        if not self.warned and warn is not None and warn <= now:
            events.append(SlaEvent(self.metric, SlaState.WARNING, warn))
        if due is not None and due <= now:
            events.append(SlaEvent(self.metric, SlaState.BREACHED, due))
        elif due is None and self.used >= self.target:
            events.append(SlaEvent(self.metric, SlaState.BREACHED, now))
        if not events:
            return self, events
        breached = events[-1].state is SlaState.BREACHED
        return dataclasses.replace(self, warned=True, breached=breached), events

    def next_check(self, calendar: Calendar, fraction: float) -> datetime | None:
        """When `tick` next has something to note (None: nothing while nothing changes)."""
        if self.breached or self.since is None:
            return None
        if not self.warned:
            return self.warn_due(calendar, fraction)
        return self.due(calendar)

    # -- storage ---------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric.value,
            "target": self.target.total_seconds(),
            "used": self.used.total_seconds(),
            "since": None if self.since is None else self.since.isoformat(),
            "done_at": None if self.done_at is None else self.done_at.isoformat(),
            "warned": self.warned,
            "breached": self.breached,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SlaClock:
        def when(key: str) -> datetime | None:
            raw = data.get(key)
            return None if raw is None else datetime.fromisoformat(str(raw))

        return cls(
            metric=SlaMetric(data["metric"]),
            target=timedelta(seconds=float(data["target"])),
            used=timedelta(seconds=float(data.get("used") or 0)),
            since=when("since"),
            done_at=when("done_at"),
            warned=bool(data.get("warned")),
            breached=bool(data.get("breached")),
        )


@dataclass(frozen=True, slots=True)
class CaseSla:
    """The current clock of each metric (a metric without a target has none), and whether
    the customer waits for an answer (next response starts only when they did not)."""

    clocks: tuple[SlaClock, ...] = ()
    awaiting: bool = True

    def clock(self, metric: SlaMetric) -> SlaClock | None:
        return next((c for c in self.clocks if c.metric is metric), None)

    def _map(self, change: Any) -> CaseSla:
        return dataclasses.replace(self, clocks=tuple(change(c) for c in self.clocks))

    def _with(self, clock: SlaClock) -> CaseSla:
        others = tuple(c for c in self.clocks if c.metric is not clock.metric)
        ordered = sorted((*others, clock), key=lambda c: list(SlaMetric).index(c.metric))
        return dataclasses.replace(self, clocks=tuple(ordered))

    @classmethod
    def opened(cls, at: datetime, targets: SlaTargets, *, running: bool = True) -> CaseSla:
        sla = cls()
        for metric in (SlaMetric.FIRST_RESPONSE, SlaMetric.RESOLUTION):
            target = targets.of(metric)
            if target is not None:
                sla = sla._with(SlaClock(metric, target, since=at if running else None))
        return sla

    def agent_replied(self, at: datetime, calendar: Calendar) -> CaseSla:
        responses = (SlaMetric.FIRST_RESPONSE, SlaMetric.NEXT_RESPONSE)
        sla = self._map(lambda c: c.stop(at, calendar) if c.metric in responses else c)
        return dataclasses.replace(sla, awaiting=False)

    def customer_wrote(self, at: datetime, targets: SlaTargets, *, running: bool) -> CaseSla:
        if self.awaiting:
            return self
        sla = dataclasses.replace(self, awaiting=True)
        target = targets.of(SlaMetric.NEXT_RESPONSE)
        if target is None:
            return sla
        return sla._with(SlaClock(SlaMetric.NEXT_RESPONSE, target, since=at if running else None))

    def paused(self, at: datetime, calendar: Calendar) -> CaseSla:
        return self._map(lambda c: c.pause(at, calendar))

    def resumed(self, at: datetime) -> CaseSla:
        return self._map(lambda c: c.resume(at))

    def solved(self, at: datetime, calendar: Calendar) -> CaseSla:
        """Solving fulfils every clock; the customer no longer waits."""
        return dataclasses.replace(self._map(lambda c: c.stop(at, calendar)), awaiting=False)

    def reopened(self, at: datetime) -> CaseSla:
        """Resolution counts on from where the solve stopped it."""
        return self._map(lambda c: c.reopen(at) if c.metric is SlaMetric.RESOLUTION else c)

    def retargeted(
        self, targets: SlaTargets, at: datetime, calendar: Calendar, fraction: float
    ) -> CaseSla:
        """New targets for the clocks there are. A clock whose metric the new targets
        leave out ends unless it is done or breached (those stay on record); a metric
        without a clock gets one only when it next starts."""
        kept: list[SlaClock] = []
        for clock in self.clocks:
            target = targets.of(clock.metric)
            if target is not None:
                kept.append(clock.retarget(target, at, calendar, fraction))
            elif clock.done_at is not None or clock.breached:
                kept.append(clock)
        return dataclasses.replace(self, clocks=tuple(kept))

    def tick(
        self, now: datetime, calendar: Calendar, fraction: float
    ) -> tuple[CaseSla, list[SlaEvent]]:
        events: list[SlaEvent] = []
        sla = self
        for clock in self.clocks:
            ticked, happened = clock.tick(now, calendar, fraction)
            if happened:
                sla = sla._with(ticked)
                events += happened
        return sla, sorted(events, key=lambda e: e.at)

    def next_check(self, calendar: Calendar, fraction: float) -> datetime | None:
        checks = (c.next_check(calendar, fraction) for c in self.clocks)
        return min((at for at in checks if at is not None), default=None)

    def due_at(self, calendar: Calendar) -> datetime | None:
        """The earliest due time of the running clocks (what the queue shows and sorts by)."""
        dues = (c.due(calendar) for c in self.clocks)
        return min((at for at in dues if at is not None), default=None)

    def __iter__(self) -> Iterator[SlaClock]:
        return iter(self.clocks)

    def to_json(self) -> dict[str, Any]:
        return {"awaiting": self.awaiting, "clocks": [c.to_json() for c in self.clocks]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> CaseSla:
        if not data:
            return cls()
        clocks = tuple(SlaClock.from_json(c) for c in data.get("clocks") or ())
        return cls(clocks=clocks, awaiting=bool(data.get("awaiting", True)))
