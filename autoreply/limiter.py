"""Auto-reply rate limits: per contact per window, and a global circuit breaker.

A small in-process object the service owns; `decide` only reads it (`check`), the
engine records a reply it is about to send with `acquire` (check and record under one
lock, so two concurrent decisions cannot both take the last slot).

Several processes: the same two methods over Redis. Per contact, a sorted set
`autoreply:c:<contact>` of send times (ZREMRANGEBYSCORE old, ZCARD, ZADD, EXPIRE window) in
one Lua script; globally, `INCR autoreply:g:<minute>` + EXPIRE 120 summed over the last
two minute-buckets, and the breaker a key `autoreply:breaker` SET with EX cooldown. The
engine takes any object with `check`/`acquire`, so only a `RedisReplyLimiter` is needed.
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime
from typing import Protocol


class Limiter(Protocol):
    def check(self, contact: str, now: datetime) -> str | None: ...

    def acquire(self, contact: str, now: datetime) -> str | None: ...


class ReplyLimiter:
    def __init__(
        self,
        per_contact: int = 3,
        window_seconds: float = 3600.0,
        global_per_minute: int = 120,
        breaker_cooldown_seconds: float = 300.0,
    ) -> None:
        self.per_contact = per_contact
        self.window = window_seconds
        self.global_per_minute = global_per_minute
        self.cooldown = breaker_cooldown_seconds
        self._contacts: dict[str, deque[float]] = {}
        self._global: deque[float] = deque()
        self._open_until = 0.0
        self._lock = threading.Lock()
        self._since_sweep = 0

    def _prune(self, t: float) -> None:
        while self._global and self._global[0] <= t - 60.0:
            self._global.popleft()

    def _reason(self, contact: str, t: float) -> str | None:
        if t < self._open_until:
            return f"circuit breaker open: more than {self.global_per_minute} auto-replies a minute"
        self._prune(t)
        if len(self._global) >= self.global_per_minute:
            self._open_until = t + self.cooldown  # trip: stay open for the cool-down
            return f"circuit breaker: {self.global_per_minute} auto-replies in the last minute"
        sent = self._contacts.get(contact)
        if sent is not None:
            while sent and sent[0] <= t - self.window:
                sent.popleft()
            if len(sent) >= self.per_contact:
                return (
                    f"rate limit: {self.per_contact} auto-replies to this contact "
                    f"in {self.window:g} s"
                )
        return None

    def check(self, contact: str, now: datetime) -> str | None:
        with self._lock:
            return self._reason(contact, now.timestamp())

    def acquire(self, contact: str, now: datetime) -> str | None:
        t = now.timestamp()
        with self._lock:
            reason = self._reason(contact, t)
            if reason is not None:
                return reason
            self._global.append(t)
            self._contacts.setdefault(contact, deque()).append(t)
            self._since_sweep += 1
            if self._since_sweep >= 1000:
                self._sweep(t)
            return None

    def _sweep(self, t: float) -> None:
        self._since_sweep = 0
        for key in [k for k, v in self._contacts.items() if not v or v[-1] <= t - self.window]:
            del self._contacts[key]

    def stats(self) -> dict[str, float]:
        with self._lock:
            return {
                "contacts": len(self._contacts),
                "last_minute": len(self._global),
                "breaker_open_until": self._open_until,
            }
