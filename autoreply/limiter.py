"""Auto-reply rate limits: per contact per window, and a global circuit breaker.

A small in-process object the service owns; `decide` only reads it (`check`), the
engine records a reply it is about to send with `acquire` (check and record under one
lock, so two concurrent decisions cannot both take the last slot).

Several processes (`RedisReplyLimiter`, when [redis] is configured): the same two methods
over Redis, so the limits hold across workers. `acquire` is one Lua script, one round trip:
per contact a sorted set of reply times (ZREMRANGEBYSCORE old, ZCARD, ZADD, PEXPIRE window),
globally one sorted set of the last minute's replies, the breaker a key SET PX cooldown.
`check` stays local (the breaker as last seen): only `acquire` decides. An entry is named
by the message being answered when the caller says which (`answering(message_id)`), so
two workers deciding the same message (both heard its event; the database lets one of
them apply it) count one reply, not two. If Redis fails, no
auto-reply goes out (the message goes to a person): a loop guard must fail closed.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
from collections import deque
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import datetime
from typing import Any, Protocol

log = logging.getLogger("omnidesk.autoreply")

# the message whose auto-reply is being decided, for limiters that count per message
_answering: ContextVar[int | None] = ContextVar("answering", default=None)


@contextlib.contextmanager
def answering(message_id: int) -> Iterator[None]:
    """Decisions made inside count under this message's id (see RedisReplyLimiter)."""
    token = _answering.set(message_id)
    try:
        yield
    finally:
        _answering.reset(token)


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


# KEYS: contact set, global set, breaker. ARGV: now ms, window ms, per contact, global per
# minute, cool-down ms, entry name. Returns 0 (allowed, recorded), 1 breaker open,
# 2 breaker tripped now, 3 contact at its limit.
_ACQUIRE = """
local now = tonumber(ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[6]) then return 0 end
if redis.call('EXISTS', KEYS[3]) == 1 then return 1 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 60000)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then
  if tonumber(ARGV[5]) > 0 then redis.call('SET', KEYS[3], '1', 'PX', ARGV[5]) end
  return 2
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 3 end
redis.call('ZADD', KEYS[1], now, ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], now, ARGV[6])
redis.call('PEXPIRE', KEYS[2], 60000)
return 0
"""


class RedisReplyLimiter:
    """The same limits as `ReplyLimiter`, shared by every process on one Redis."""

    def __init__(
        self,
        url: str,
        per_contact: int = 3,
        window_seconds: float = 3600.0,
        global_per_minute: int = 120,
        breaker_cooldown_seconds: float = 300.0,
        *,
        prefix: str = "{omnidesk:autoreply}",
        client: Any = None,
    ) -> None:
        import redis

        self.per_contact = per_contact
        self.window = window_seconds
        self.global_per_minute = global_per_minute
        self.cooldown = breaker_cooldown_seconds
        self.prefix = prefix
        self._client = client or redis.Redis.from_url(url, socket_timeout=2.0)
        self._script = self._client.register_script(_ACQUIRE)
        self._seq = itertools.count()
        self._me = f"{os.getpid()}:{id(self):x}"
        self._lock = threading.Lock()
        self._open_until = 0.0  # the breaker, as last seen

    def check(self, contact: str, now: datetime) -> str | None:
        t = now.timestamp()
        with self._lock:
            if t < self._open_until:
                return self._breaker_open()
        return None

    def acquire(self, contact: str, now: datetime) -> str | None:
        from redis.exceptions import RedisError

        t = now.timestamp()
        message_id = _answering.get()
        entry = f"m{message_id}" if message_id is not None else f"{self._me}:{next(self._seq)}"
        keys = [f"{self.prefix}:c:{contact}", f"{self.prefix}:g", f"{self.prefix}:breaker"]
        args: list[Any] = [
            int(t * 1000),
            int(self.window * 1000),
            self.per_contact,
            self.global_per_minute,
            int(self.cooldown * 1000),
            entry,
        ]
        try:
            code = int(self._script(keys=keys, args=args))
        except RedisError as exc:
            log.error("auto-reply limiter unavailable (%s): not answering automatically", exc)
            return "rate limiter unavailable"
        with self._lock:
            if code in (1, 2):
                self._open_until = t + min(self.cooldown, 5.0)  # re-asked after 5 s at most
                if code == 2:
                    log.warning("auto-reply circuit breaker tripped: %s", self._breaker_open())
                return self._breaker_open()
        if code == 3:
            return self._contact_full()
        return None

    def _breaker_open(self) -> str:
        return f"circuit breaker open: more than {self.global_per_minute} auto-replies a minute"

    def _contact_full(self) -> str:
        return f"rate limit: {self.per_contact} auto-replies to this contact in {self.window:g} s"

    def close(self) -> None:
        self._client.close()
