"""`inbox.tasks.cancel_and_wait`, the one way our services stop a background task."""

from __future__ import annotations

import asyncio

import pytest

from inbox.tasks import cancel_and_wait


async def test_cancels_the_task_and_waits_for_its_cleanup() -> None:
    cleaned: list[str] = []

    async def loop() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0)  # cleanup that itself awaits
            cleaned.append("done")

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.cancelled() and cleaned == ["done"]
    await cancel_and_wait(task)  # twice is harmless
    await cancel_and_wait(None)


async def test_an_error_the_task_ended_with_is_not_swallowed() -> None:
    async def broken() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(broken())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="boom"):
        await cancel_and_wait(task)


async def test_a_cancellation_of_the_caller_is_not_swallowed() -> None:
    """A bounded shutdown (`asyncio.wait_for(close(), t)`) must still end at its bound."""
    started = asyncio.Event()

    async def stubborn() -> None:
        while True:  # ignores the first cancel: a slow cleanup
            try:
                started.set()
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                await asyncio.sleep(3600)

    worker = asyncio.create_task(stubborn())
    await started.wait()
    after: list[str] = []

    async def close() -> None:
        await cancel_and_wait(worker)
        after.append("went on as if stopped")

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(close(), 0.2)
    assert after == []
    worker.cancel()
    with pytest.raises(asyncio.CancelledError):
        await worker
