"""`inbox.tasks`: `cancel_and_wait`, the one way our services stop a background task, and
`Repeating`, a service that runs rounds of work on a task of its own."""

from __future__ import annotations

import asyncio

import pytest

from inbox.tasks import Repeating, cancel_and_wait


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


class Rounds(Repeating):
    task_name = "test-rounds"
    failure = "test round failed"

    def __init__(self) -> None:
        self.rounds = 0
        self.pauses: list[int] = []
        self.enough = asyncio.Event()

    async def run_once(self) -> int:
        self.rounds += 1
        if self.rounds == 2:
            raise RuntimeError("a broken round")
        return self.rounds

    async def pause(self, done: int) -> None:
        self.pauses.append(done)
        if len(self.pauses) >= 4:
            self.enough.set()
        await asyncio.sleep(0)


async def test_a_repeating_service_survives_a_failed_round_and_stops(caplog) -> None:
    rounds = Rounds()
    rounds.start()
    rounds.start()  # once started, starting again changes nothing
    await asyncio.wait_for(rounds.enough.wait(), 5)
    await rounds.stop()
    assert rounds.pauses[:4] == [1, 0, 3, 4]  # the failed round did nothing
    assert "test round failed" in caplog.text and "a broken round" in caplog.text
    seen = rounds.rounds
    await asyncio.sleep(0.01)
    assert rounds.rounds == seen  # stopped: no more rounds
    await rounds.stop()  # twice is harmless
