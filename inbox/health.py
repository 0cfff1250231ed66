"""Readiness: checks that tell whether this process can do its work now, kept cheap.

A check is `async () -> (ok, detail)`. `Readiness` runs a set of them for /readyz: all at
once, each within `timeout` seconds (one that hangs counts as failed), and keeps the answer
for `ttl` seconds, so a load balancer polling many times a second costs one round of
checks per `ttl`; callers arriving while a round runs wait for that round.

`store_check` asks for a real write, not a read: a database that reads fine but cannot
write ("database or disk is full") must not be ready. It writes a heartbeat row (at most
every `every` seconds, through the same path ingest writes take: on SQLite the writer
process) and also looks at whether the store's own writes failed lately (`WriteOutcomes`),
since a one-row heartbeat may still fit where a message does not.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from inbox.store import health as health_repo

Check = Callable[[], Awaitable[tuple[bool, str]]]


@dataclass
class WriteOutcomes:
    """How the store's write transactions failed lately. A write that failed for a storage
    reason (disk full, I/O error, read-only, connection lost; not a constraint) marks the
    store as failing for `hold` seconds. Not cleared by a write that succeeds meanwhile: on
    a full disk small writes (a heartbeat, a claim that changes nothing) still fit where a
    message does not."""

    hold: float = 10.0
    failed_at: float | None = None  # time.monotonic()
    error: str | None = None

    def failed(self, error: str) -> None:
        self.failed_at, self.error = time.monotonic(), error

    def failing(self) -> str | None:
        """The last storage error, if it happened within `hold` seconds."""
        if self.failed_at is None or time.monotonic() - self.failed_at > self.hold:
            return None
        return self.error


def store_check(store: Any, *, every: float = 2.0) -> Check:
    """Ready when a heartbeat write commits and no write failed for a storage reason in
    the last few seconds. The heartbeat (`inbox.store.health`) is written at most every
    `every` seconds."""
    state: dict[str, Any] = {"at": None, "ok": False, "detail": "not checked yet"}

    async def check() -> tuple[bool, str]:
        now = time.monotonic()
        if state["at"] is None or now - state["at"] >= every:
            state["at"] = now
            try:
                await store.call(health_repo.heartbeat, datetime.now(UTC))
            except Exception as exc:
                state["ok"], state["detail"] = False, f"cannot write: {exc}"
            else:
                state["ok"], state["detail"] = True, "writable"
        if not state["ok"]:
            return False, str(state["detail"])
        error = store.outcomes.failing()
        if error is not None:
            return False, f"writes failing: {error}"
        return True, str(state["detail"])

    return check


def writer_check(store: Any) -> Check | None:
    """The SQLite writer process, where the store has one (else None: no check)."""
    process = getattr(store, "process", None)
    if process is None:
        return None

    async def check() -> tuple[bool, str]:
        return process.health()  # type: ignore[no-any-return]

    return check


def bus_check(bus: Any) -> Check:
    async def check() -> tuple[bool, str]:
        return await bus.health()  # type: ignore[no-any-return]

    return check


class Readiness:
    """Runs `checks` for /readyz; see the module docstring."""

    def __init__(self, checks: dict[str, Check], *, ttl: float = 1.0, timeout: float = 2.0):
        self.checks = checks
        self.ttl = ttl
        self.timeout = timeout
        self._at: float | None = None
        self._result: dict[str, dict[str, Any]] = {}
        self._lock = asyncio.Lock()

    async def results(self) -> dict[str, dict[str, Any]]:
        """name -> {"ok": bool, "detail": str}, at most `ttl` seconds old."""
        async with self._lock:
            if self._at is None or time.monotonic() - self._at >= self.ttl:
                names = list(self.checks)
                answers = await asyncio.gather(*(self._run(self.checks[n]) for n in names))
                self._result = {
                    name: {"ok": ok, "detail": detail}
                    for name, (ok, detail) in zip(names, answers, strict=True)
                }
                self._at = time.monotonic()
            return self._result

    async def _run(self, check: Check) -> tuple[bool, str]:
        try:
            ok, detail = await asyncio.wait_for(check(), self.timeout)
        except TimeoutError:
            return False, f"no answer within {self.timeout:g} s"
        except Exception as exc:  # a broken check is an unhealthy component, not a crash
            return False, f"{type(exc).__name__}: {exc}"
        return bool(ok), str(detail)
