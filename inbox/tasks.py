"""Background tasks: `cancel_and_wait`, the one shutdown step every service's
`close`/`stop` shares, and `Repeating`, a service that runs one round of work after
another on a task of its own."""

from __future__ import annotations

import abc
import asyncio
import logging
from typing import Any

__all__ = ["Repeating", "cancel_and_wait"]


async def cancel_and_wait(task: asyncio.Future[Any] | None) -> None:
    """Cancel `task` and wait until it has ended; its own cancellation is not an error.

    A cancellation aimed at the caller (a bounded shutdown timing out) still propagates:
    only the task's CancelledError is swallowed, never the caller's.
    """
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise


class Repeating(abc.ABC):
    """Runs `run_once` again and again on a task of its own, from `start` until `stop`. A
    round that raises is logged (`failure`, on `log`) and counts as having done nothing;
    `pause(done)` waits before the next round."""

    task_name = "repeating"
    failure = "background round failed"
    log = logging.getLogger("omnidesk")
    _task: asyncio.Task[None] | None = None

    @abc.abstractmethod
    async def run_once(self) -> int:
        """One round of work; how much it did."""

    @abc.abstractmethod
    async def pause(self, done: int) -> None:
        """Wait before the next round (`done`: what the last one did)."""

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=self.task_name)

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                done = await self.run_once()
            except Exception:
                self.log.exception(self.failure)
                done = 0
            await self.pause(done)
