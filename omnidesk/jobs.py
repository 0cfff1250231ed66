"""The worker role's RQ side: the delivery job and the RQ worker that runs it.

    omnidesk serve --role worker        # with [redis] url set; nothing else to start

The process keeps its one asyncio loop in the main thread (triage pipeline, IMAP pollers
under their lease, the outbox sweeper, signals) holding the built services: store, bus,
channel senders. An RQ `SimpleWorker` (no fork per job) runs in a thread beside it, with
RQ's signal handlers left out (the loop owns SIGTERM/SIGINT) and thread-safe job timeouts.
Each job, `deliver(message_id)`, hands the message to that loop, which claims the outbox
row with the DB lease and starts sending; the job returns once the claim is decided, so
one RQ worker keeps up to `concurrency` sends in flight while the provider answers. A send
runs under its lease: if the process dies, the lease expires and the sweeper enqueues the
next attempt. A plain `rq worker` process has no services and cannot run these jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from datetime import UTC, datetime, timedelta

from rq import Queue, SimpleWorker
from rq.timeouts import TimerDeathPenalty

from inbox.outbox.durable import OutboxWorker
from inbox.outbox.rq_relay import QUEUE
from inbox.store import outbox as outbox_repo
from inbox.store.backends import Store

log = logging.getLogger("omnidesk.jobs")

DELIVER = "omnidesk.jobs.deliver"  # the job function, by name, for the enqueuing side

_runtime: Runtime | None = None


def deliver(message_id: int) -> str:
    """RQ job: claim this message's outbox row and start sending it (at most once)."""
    runtime = _runtime
    if runtime is None:
        raise RuntimeError(
            "omnidesk delivery jobs run inside `omnidesk serve --role worker`, not `rq worker`"
        )
    return "claimed" if runtime.submit(message_id) else "skipped"


def wake() -> None:
    """RQ job: nothing; lets a stopping worker leave its blocking wait at once."""


class Runtime:
    """What jobs running on the RQ thread reach: the loop and the services it holds."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        store: Store,
        outbox: OutboxWorker,
        *,
        lease: timedelta,
        concurrency: int = 20,
    ) -> None:
        self.loop = loop
        self.store = store
        self.outbox = outbox
        self.lease = lease
        self.slots = threading.BoundedSemaphore(concurrency)
        self._sending: set[asyncio.Task[None]] = set()

    def submit(self, message_id: int) -> bool:
        """On the RQ thread: wait for a free slot, then for the claim; True if claimed."""
        self.slots.acquire()
        try:
            claimed = asyncio.run_coroutine_threadsafe(
                self._claim_and_send(message_id), self.loop
            ).result(timeout=60)
        except BaseException:
            self.slots.release()
            raise
        if not claimed:
            self.slots.release()
        return claimed

    async def _claim_and_send(self, message_id: int) -> bool:
        now = datetime.now(UTC)
        outbox_id = await self.store.write(
            lambda conn: outbox_repo.claim_message(conn, message_id, now, self.lease)
        )
        if outbox_id is None:
            log.debug("message=%d not claimable (sent, failed, not due or leased)", message_id)
            return False
        task = asyncio.create_task(self.outbox.deliver(outbox_id), name=f"send:{message_id}")
        self._sending.add(task)
        task.add_done_callback(self._sent)
        return True

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        self.slots.release()
        if not task.cancelled() and task.exception() is not None:
            # the row keeps its lease; when it expires the sweeper enqueues a new attempt
            log.error("delivery crashed", exc_info=task.exception())

    async def drain(self, seconds: float) -> None:
        """Let sends in flight finish (shutdown); what does not is retried after its lease."""
        if self._sending:
            await asyncio.wait(list(self._sending), timeout=seconds)


class _ThreadWorker(SimpleWorker):
    """SimpleWorker for a non-main thread: no signal handlers, timer-based job timeouts."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        return None


class RqWorkerThread:
    """Runs an RQ worker for the outbox queue in a thread of this process."""

    def __init__(self, redis_url: str, runtime: Runtime, *, queue: str = QUEUE) -> None:
        import redis

        self.runtime = runtime
        self.redis = redis.Redis.from_url(redis_url)
        name = f"omnidesk-{socket.gethostname()}-{os.getpid()}"
        # a queue only this worker listens on: a job put there wakes it up to stop
        self._control = Queue(f"omnidesk-control-{os.getpid()}", connection=self.redis)
        self.worker = _ThreadWorker(
            [Queue(queue, connection=self.redis), self._control],
            connection=self.redis,
            name=name,
            worker_ttl=60,
        )
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        global _runtime
        _runtime = self.runtime
        self._loop = asyncio.get_running_loop()
        self._ended = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="rq-worker", daemon=True)
        self._thread.start()
        log.info("RQ worker %s listening on %s", self.worker.name, QUEUE)

    def _run(self) -> None:
        try:
            self.worker.work(logging_level="WARNING")
        except BaseException:
            log.exception("RQ worker stopped on an error")
        finally:
            with contextlib.suppress(RuntimeError):  # the loop may be closed already
                self._loop.call_soon_threadsafe(self._ended.set)

    async def stop(self, drain: float = 10.0) -> None:
        global _runtime
        thread = self._thread
        if thread is not None:
            self.worker._stop_requested = True
            loop = asyncio.get_running_loop()
            with contextlib.suppress(Exception):
                await loop.run_in_executor(
                    None, lambda: self._control.enqueue(wake, result_ttl=0, failure_ttl=60)
                )
            # polled, not joined in the default executor: asyncio.run waits for that
            # executor's threads at exit, so a join there would outlast a bounded shutdown
            # that abandoned this closer (the thread is a daemon: it never holds the exit)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ended.wait(), 15)
            if thread.is_alive():
                log.warning("RQ worker did not stop in time")
            self._thread = None
        await self.runtime.drain(drain)
        with contextlib.suppress(Exception):
            self._control.delete(delete_jobs=True)
        self.redis.close()
        _runtime = None
