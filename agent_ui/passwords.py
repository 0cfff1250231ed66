"""Agent passwords: argon2id (argon2-cffi's tuned defaults), hashed and checked off the
event loop.

One argon2 check costs tens of milliseconds of CPU and some 64 MiB of memory: run on the
event loop, 30 parallel sign-ins would stall every other request for seconds. So
`PasswordWorker` runs them on a few threads (argon2-cffi releases the GIL while it
hashes), and refuses at once with `Busy` when more are already waiting than it allows,
instead of piling up work that would only time out. The threads run at a lower CPU
priority than the event loop, so a burst of sign-ins slows other sign-ins, not every
other request.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from inbox.errors import OmnideskError

T = TypeVar("T")

NICE = 10  # how much lower than the event loop the hashing threads run

_hasher = PasswordHasher()
# a fixed hash to verify against for unknown users, so timing does not tell them apart
_DUMMY = _hasher.hash("omnidesk-no-such-user")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def _lower_priority() -> None:
    """On Linux, where nice is per thread (and argon2's lane threads inherit it): let the
    event loop's thread win the CPU over password hashing."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
    except (AttributeError, OSError):  # not Linux, or not allowed: run as is
        pass


class Busy(OmnideskError):
    status = 503
    code = "busy"


class PasswordWorker:
    """At most `threads` argon2 operations at once and `queue` more waiting; beyond that
    `Busy` (the caller answers "try again in a moment" without waiting)."""

    def __init__(self, threads: int = 2, queue: int = 16) -> None:
        self.threads = threads
        self.queue = queue
        self._pool = ThreadPoolExecutor(
            threads, thread_name_prefix="argon2", initializer=_lower_priority
        )
        self._in_flight = 0

    async def _run(self, fn: Callable[..., T], *args: str | None) -> T:
        if self._in_flight >= self.threads + self.queue:
            raise Busy("the server is busy checking passwords; try again in a moment")
        self._in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        finally:
            self._in_flight -= 1

    async def verify(self, stored: str | None, password: str) -> bool:
        return await self._run(verify_password, stored, password)

    async def hash(self, password: str) -> str:
        return await self._run(hash_password, password)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
