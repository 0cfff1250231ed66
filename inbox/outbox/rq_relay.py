"""Outbound delivery on RQ (cluster mode): the enqueue side and the sweeper.

The outbox table stays the source of truth and the DB lease stays the only thing that
decides who sends; RQ only carries "look at message N now" between processes.

    relay = RqRelay(store, "redis://...", func="omnidesk.jobs.deliver")
    relay.poke(message_id)     # after the transaction writing the outbox row committed
    sweeper = Sweeper(store, relay)
    sweeper.start()            # worker role: re-enqueue what is due and owned by no job

A job id is `outbox-m<message id>-a<attempts so far>`, enqueued with RQ's `unique=True`
(rq >= 3.0): one attempt of one message is queued at most once, however many processes
poke or sweep it. (Before that flag, a second enqueue of an existing id ran it twice:
rq/rq#1701, #1521.) A retry after the backoff, or a takeover after a killed worker's lease
expired, is a later attempt and so a new id. Jobs run `claim_message` first: a duplicate,
late or replayed job finds the row leased, sent or failed and does nothing.
What is due is read from the outbox repository (`inbox.store.outbox`).

RQ alone may lose a job (a worker killed after taking it) or hold a dead one ("started"
by a process that is gone). The sweeper covers both from the table: rows due and not
leased, or whose lease expired, get a job if none stands for them; a job that has stood
for a due row longer than `stale` without claiming it (dead, or stuck outside any queue)
is replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from inbox.store import outbox as outbox_repo
from inbox.store.backends import Store
from inbox.store.outbox import Due
from inbox.tasks import Repeating, cancel_and_wait

try:
    import redis
    from rq import Queue
    from rq.exceptions import DuplicateJobError, NoSuchJobError
    from rq.job import Job, JobStatus
except ImportError as exc:  # pragma: no cover - both are core dependencies today
    raise ImportError("outbound delivery on RQ needs: pip install 'rq>=3.0' 'redis>=5.0'") from exc

log = logging.getLogger("omnidesk.outbox")

QUEUE = "omnidesk-outbox"


def job_id(message_id: int, attempts: int) -> str:
    return f"outbox-m{message_id}-a{attempts}"


class RqRelay:
    """Enqueues delivery jobs. `poke` is cheap and never blocks the loop: RQ's client is
    synchronous, so enqueues run on one thread of their own, batched per wake-up."""

    def __init__(
        self,
        store: Store,
        url: str,
        func: str,
        *,
        queue: str = QUEUE,
        job_timeout: int = 120,
    ) -> None:
        self.store = store
        self.func = func
        self.job_timeout = job_timeout
        self.redis = redis.Redis.from_url(url)
        self.queue = Queue(queue, connection=self.redis)
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="outbox-relay")
        self._ids: set[int] = set()
        self._scan = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def poke(self, *message_ids: int) -> None:
        """These messages' outbox rows committed (none named: look for fresh rows)."""
        if message_ids:
            self._ids.update(message_ids)
        else:
            self._scan = True
        self._wake.set()
        self.start()

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            if self._ids or self._scan:  # enqueue what was poked before going
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._pass(), 5)
            await cancel_and_wait(self._task)
            self._task = None
        self.executor.shutdown(wait=True)
        self.redis.close()

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._pass()
            except Exception:  # the rows are durable: the sweeper enqueues them later
                log.exception("outbox relay pass failed")

    async def _pass(self) -> None:
        ids, self._ids = self._ids, set()
        scan, self._scan = self._scan, False
        if scan:
            now = datetime.now(UTC)
            ids.update(await self.store.read(lambda conn: outbox_repo.fresh_jobs(conn, now)))
        if ids:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self.executor, self._enqueue_first, sorted(ids))

    def _enqueue_first(self, message_ids: Sequence[int]) -> None:
        for message_id in message_ids:
            self.enqueue(message_id, 0)

    def enqueue(self, message_id: int, attempts: int) -> bool:
        """One job for this attempt of this message; False if one already exists."""
        try:
            self.queue.enqueue_call(
                self.func,
                args=(message_id,),
                job_id=job_id(message_id, attempts),
                unique=True,
                timeout=self.job_timeout,
                result_ttl=0,  # done: gone, so nothing stale blocks a later attempt's id
                failure_ttl=24 * 3600,
                description=f"deliver message {message_id} (attempt {attempts + 1})",
            )
        except DuplicateJobError:
            return False
        return True

    def enqueue_missing(self, due: Sequence[Due], stale: float) -> int:
        """Sweeper: a job for each due row no live job stands for; how many were enqueued."""
        ids = [job_id(d.message_id, d.attempts) for d in due]
        with self.redis.pipeline(transaction=False) as pipe:
            for jid in ids:
                pipe.exists(Job.key_for(jid))
            exists = pipe.execute()
        enqueued = 0
        for item, jid, found in zip(due, ids, exists, strict=True):
            if found and (item.overdue < stale or not self._replace_stale(jid, item)):
                continue
            if self.enqueue(item.message_id, item.attempts):
                enqueued += 1
        return enqueued

    def _replace_stale(self, jid: str, item: Due) -> bool:
        """A job has stood `stale` seconds for a due row without claiming it: delete it if
        it is dead (started by a process that is gone, failed) or out of every queue."""
        try:
            job = Job.fetch(jid, connection=self.redis)
            status = job.get_status()
        except NoSuchJobError:
            return True  # finished meanwhile
        if status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED) and (
            self.queue.get_job_position(jid) is not None
        ):
            return False  # waiting its turn behind other jobs
        log.warning(
            "outbox job %s is %s and has not claimed message=%d in %.0f s: replacing it",
            jid,
            status.value if status is not None else "unknown",
            item.message_id,
            item.overdue,
        )
        job.delete()
        return True


class Sweeper(Repeating):
    """Re-enqueues outbox work no RQ job stands for: due retries, rows whose writer died
    before enqueueing, leases of killed workers that expired. Every worker may run one:
    unique job ids and the DB claim keep them from doing anything twice."""

    task_name = "outbox-sweeper"
    failure = "outbox sweep failed"
    log = log

    def __init__(
        self,
        store: Store,
        relay: RqRelay,
        *,
        interval: float = 1.0,
        fresh: float = 5.0,
        stale: float = 30.0,
        batch: int = 500,
    ) -> None:
        self.store = store
        self.relay = relay
        self.interval = interval
        self.fresh = fresh
        self.stale = stale
        self.batch = batch

    async def pause(self, done: int) -> None:
        await asyncio.sleep(self.interval)

    async def run_once(self) -> int:
        now = datetime.now(UTC)
        due = await self.store.read(
            lambda conn: outbox_repo.due_jobs(conn, now, fresh=self.fresh, limit=self.batch)
        )
        if not due:
            return 0
        loop = asyncio.get_running_loop()
        n = await loop.run_in_executor(
            self.relay.executor, self.relay.enqueue_missing, due, self.stale
        )
        if n:
            log.info("outbox sweeper enqueued %d of %d due jobs", n, len(due))
        return int(n)
