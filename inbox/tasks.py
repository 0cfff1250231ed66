"""Stopping a background task: `cancel_and_wait`, the one shutdown step every service's
`close`/`stop` shares; and `Background`, one named task with `start`/`stop`."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["Background", "cancel_and_wait"]


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


class Background:
    """One named task: `start()` runs `run()` (once, however often called), `stop()`
    cancels it and waits for it to end. Subclasses give `run` and `name`."""

    name = "background"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
