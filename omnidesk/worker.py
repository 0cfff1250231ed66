"""The worker role on Redis: outbound delivery on RQ, the outbox sweeper, and scheduled
work that must run in one worker at a time.

    omnidesk serve --role worker     # [redis] url set; start as many as you like

Every process that writes outbox rows (web: agent replies and form confirmations; worker:
auto-replies) gets an `RqRelay` (`omnidesk.wiring.build_services`): `outbox.poke(message_id)`
enqueues the delivery job after the row committed. Workers (roles all/worker) also run:

* an RQ worker thread for the outbox queue (omnidesk.jobs), delivering through this
  process's channel senders;
* the sweeper (inbox.outbox.rq_relay), re-enqueueing due retries, rows whose writer died before
  enqueueing, and rows whose lease expired with a killed worker;
* the worker-duties lease (a RedisLease like the router's): its holder polls the IMAP
  mailboxes and re-runs triage recovery every `recover_interval_seconds`; a standby takes
  over within about ttl + ttl/3 of the holder's death, at once after a clean stop.

Without Redis none of this runs but the `RecoverLoop`: the embedded process runs the
OutboxWorker and pollers itself, recovers at start, then every `recover_interval_seconds`
(a triage that failed, e.g. on a full disk, is retried without a restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from channels.protocol import Duty
from inbox.config import Config
from inbox.outbox.rq_relay import RqRelay, Sweeper
from inbox.pipeline import Pipeline
from inbox.ports import Triage, TriageDecision
from inbox.store import outbox as outbox_repo
from inbox.store.backends import Store
from inbox.tasks import cancel_and_wait
from inbox.types import Message
from omnidesk import jobs
from omnidesk.services import Services

log = logging.getLogger("omnidesk.worker")


@dataclass(frozen=True, slots=True)
class OutboxSettings:
    """[outbox]: delivery in cluster mode (ignored without [redis] but for
    recover_interval_seconds, which the embedded process uses too)."""

    lease_seconds: float = 60.0
    concurrency: int = 20
    sweep_interval_seconds: float = 1.0
    recover_interval_seconds: float = 10.0
    duties_lease_seconds: float = 3.0


def read_outbox_settings(config: Config) -> OutboxSettings:
    section = config.section("outbox")
    d = OutboxSettings()
    settings = OutboxSettings(
        lease_seconds=section.float("lease_seconds", d.lease_seconds, min=2.0),
        concurrency=section.int("concurrency", d.concurrency, min=1, max=1000),
        sweep_interval_seconds=section.float(
            "sweep_interval_seconds", d.sweep_interval_seconds, min=0.1
        ),
        recover_interval_seconds=section.float(
            "recover_interval_seconds", d.recover_interval_seconds, min=1.0
        ),
        duties_lease_seconds=section.float("duties_lease_seconds", d.duties_lease_seconds, min=0.5),
    )
    section.reject_unknown()
    return settings


def send_timeout(config: Config) -> float:
    """A send must end within its lease, or another worker could claim it meanwhile."""
    return max(read_outbox_settings(config).lease_seconds - 1.0, 1.0)


async def start_worker(services: Services, relay: RqRelay) -> None:
    """Roles all/worker on Redis: RQ worker thread, sweeper, leased duties."""
    config, store = services.config, services.store
    settings = read_outbox_settings(config)
    lease = timedelta(seconds=settings.lease_seconds)
    runtime = jobs.Runtime(
        asyncio.get_running_loop(),
        store,
        services.outbox,
        lease=lease,
        concurrency=settings.concurrency,
    )
    assert config.redis_url is not None  # (cluster mode: the relay needs it too)
    rq_worker = jobs.RqWorkerThread(config.redis_url, runtime)
    rq_worker.start()
    services.closers.append(rq_worker.stop)

    sweeper = Sweeper(
        store, relay, interval=settings.sweep_interval_seconds, stale=settings.lease_seconds / 2
    )
    sweeper.start()
    services.closers.append(sweeper.stop)

    recover = RecoverLoop(services.pipeline, settings.recover_interval_seconds)
    duties = LeasedDuties(
        config.redis_url,
        [*services.parts.duties, (recover.start, recover.stop)],
        ttl=settings.duties_lease_seconds,
    )
    await duties.start()
    services.closers.append(duties.stop)


def outbox_check(store: Store) -> Callable[[], Awaitable[tuple[bool, str]]]:
    """/readyz detail: outbox work not done (always ready: failed rows are shown to agents)."""

    async def check() -> tuple[bool, str]:
        now = datetime.now(UTC)
        counts = await store.read(lambda conn: outbox_repo.counts(conn, now))
        return True, " ".join(f"{k}={v}" for k, v in counts.items())

    return check


class RecoverLoop:
    """Triage what a killed process or a failed triage left untriaged, every `interval`
    seconds (messages older than the interval: younger ones are still in some live
    worker's batch)."""

    def __init__(self, pipeline: Pipeline, interval: float) -> None:
        self.pipeline = pipeline
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="triage-recover")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)

    async def _loop(self) -> None:
        while True:
            try:
                n = await self.pipeline.recover(older_than=self.interval)
                if n:
                    log.warning(
                        "triaged %d messages a stopped process had left or whose triage failed", n
                    )
            except Exception:
                log.exception("triage recovery failed")
            await asyncio.sleep(self.interval)


class LeasedDuties:
    """Runs `duties` (start, stop) in the one worker holding the worker-duties lease."""

    def __init__(self, redis_url: str, duties: list[Duty], *, ttl: float) -> None:
        from routing.lease import RedisLease

        self.duties = duties
        holder = f"{socket.gethostname()}:{os.getpid()}"
        self.lease = RedisLease(redis_url, holder, name="worker-duties", ttl=ttl)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(
            self.lease.run(self._elected, self._lost, self._stop), name="worker-duties"
        )

    async def _elected(self, token: int) -> None:
        log.info("worker duties taken (lease token %d): IMAP polling, triage recovery", token)
        for start, _stop in self.duties:
            try:
                await start()
            except Exception:
                log.exception("a worker duty failed to start")

    async def _lost(self) -> None:
        log.info("worker duties released")
        for _start, stop in reversed(self.duties):
            try:
                await stop()
            except Exception:
                log.exception("a worker duty failed to stop")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 10)
            self._task = None
        await self.lease.close()


class PerMessage:
    """The triage port, each decision made `answering(message id)`: a Redis limiter then
    counts one reply per message however many workers decide it (a cluster's workers)."""

    def __init__(self, triage: Triage) -> None:
        self.triage = triage

    def decide(self, message: Message, *args: Any, **kwargs: Any) -> TriageDecision:
        """`Triage.decide` of the engine, within `answering(message.id)`."""
        from autoreply.limiter import answering

        with answering(message.id):
            return self.triage.decide(message, *args, **kwargs)
