"""Agent passwords: argon2id (argon2-cffi's tuned defaults), hashed and checked off the
event loop.

One argon2 check costs tens of milliseconds of CPU and some 64 MiB of memory: run on the
event loop, 30 parallel sign-ins would stall every other request for seconds. So
`PasswordWorker` runs them on a few threads (argon2-cffi releases the GIL while it
hashes), and refuses at once with `Busy` when more are already waiting than it allows,
instead of piling up work that would only time out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from inbox.errors import OmnideskError

T = TypeVar("T")

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


class Busy(OmnideskError):
    status = 503
    code = "busy"


class PasswordWorker:
    """At most `threads` argon2 operations at once and `queue` more waiting; beyond that
    `Busy` (the caller answers "try again in a moment" without waiting)."""

    def __init__(self, threads: int = 2, queue: int = 16) -> None:
        self.threads = threads
        self.queue = queue
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="argon2")
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
