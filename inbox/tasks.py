"""Stopping a background task: `cancel_and_wait`, the one shutdown step every service's
`close`/`stop` shares."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["cancel_and_wait"]


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
