"""Wiring: the services of one process built from the config, the enabled channels opened
through `channels.registry`, the auto-answer engine and the router.

A section that is absent leaves its part off: no [sms] means no SMS webhook or sender,
no [forms] no form endpoint, [autoreply] enabled = false no auto-answers.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from channels import registry
from channels.protocol import ChannelServices, Closer, CursorFn, Duty
from inbox.bus.backends import EventBus, open_bus
from inbox.bus.presence import open_presence
from inbox.config import Config
from inbox.ingest import Ingestor, IngestSettings
from inbox.outbox.durable import OutboxWorker
from inbox.outbox.rq_relay import RqRelay
from inbox.pipeline import Pipeline
from inbox.ports import Sender, Triage
from inbox.store import cursors
from inbox.store.backends import Store, open_store
from inbox.store.files import FileStore
from omnidesk import jobs, worker
from omnidesk.services import Parts, Services, close_all
from omnidesk.sockets import close_socketio, make_socketio

if TYPE_CHECKING:
    from autoreply import Engine, Reloader
    from routing.service import RouterService
    from routing.settings import RoutingSettings


def ingest_settings(config: Config) -> IngestSettings:
    return IngestSettings(
        priorities=config.priorities,
        default_priority=config.default_priority,
        thread_window=timedelta(seconds=config.ingest.thread_window_seconds),
        reopen_window=timedelta(seconds=config.ingest.reopen_window_seconds),
        default_country=config.ingest.default_country,
        batch_max=config.ingest.batch_max,
    )


async def build_services(
    config: Config, role: str = "all", *, write_process: bool = False, cluster: bool = False
) -> Services:
    """The services of a process playing `role`, with the enabled channels opened (nothing
    started but the store and presence). `write_process`: on SQLite, ingest writes in a
    child process (what `serve` runs; in-process tests keep them on the store's writer
    thread, the same transactions). `cluster` (`serve` with Redis): outbound delivery
    goes to RQ, and a worker counts auto-replies once per message across workers."""
    engine, reloader = autoreply_engine(config)
    store = open_store(config.database_url, write_process=write_process)
    bus = open_bus(config.redis_url)
    await bus.start()
    ingest = Ingestor(store, bus, ingest_settings(config))
    relay = RqRelay(store, config.redis_url, jobs.DELIVER) if cluster and config.redis_url else None
    delivers = relay is not None and role in {"all", "worker"}  # this process sends
    senders: dict[str, Sender] = {}  # filled below from the channels, once they are open
    outbox = OutboxWorker(
        store,
        bus,
        senders,
        relay=relay.poke if relay is not None else None,
        send_timeout=worker.send_timeout(config) if delivers else None,
    )
    triage: Triage | None = engine
    if delivers and engine is not None:
        triage = worker.PerMessage(engine)
    pipeline = Pipeline(
        store,
        bus,
        triage,
        priorities=config.priorities,
        on_outbound=outbox.poke,
        policies=case_policies(config),
        inboxes=config.inboxes,
    )
    sio = make_socketio(config, role)
    presence = open_presence(config.redis_url)
    closers: list[Closer] = [store.close, bus.close, ingest.close, pipeline.close]
    closers += [presence.close, lambda: close_socketio(sio)]
    try:
        if role in {"all", "web", "smtp"}:  # roles taking inbound messages: ready at once
            await store.start()
        await presence.start()
        lent = ChannelServices(
            config=config,
            role=role,
            store=store,
            bus=bus,
            ingest=ingest,
            files=FileStore(config.data_dir / "attachments"),
            presence=presence,
            sio=sio,
            poke=outbox.poke,
            cursor=cursor_reader(store),
        )
        parts = open_channels(lent)
    except BaseException:
        await close_all([*closers, *([relay.stop] if relay is not None else [])])
        raise
    senders.update(parts.senders)
    parts.duties.append(_case_sweeper(store, bus, config))
    closers += parts.closers
    if relay is not None:
        closers.append(relay.stop)
    return Services(
        config,
        store,
        bus,
        ingest,
        pipeline,
        outbox,
        sio=sio,
        presence=presence,
        senders=senders,
        parts=parts,
        triage=engine,
        reloader=reloader,
        relay=relay,
        closers=closers,
    )


def open_channels(lent: ChannelServices) -> Parts:
    """Open every channel the config turns on (`channels.registry`), in its order."""
    parts = Parts()
    for adapter in registry.enabled(lent.config):
        opened = adapter.open(lent)
        for namespace in opened.namespaces:
            lent.sio.register_namespace(namespace)
        parts.add(opened)
    return parts


def cursor_reader(store: Store) -> CursorFn:
    """Where an IMAP poller reads back the position of the last message it ingested."""

    async def cursor(source: str) -> str | None:
        return await store.read(lambda conn: cursors.position(conn, source))

    return cursor


def autoreply_engine(config: Config) -> tuple[Engine, Reloader] | tuple[None, None]:
    """(engine, reloader), or (None, None) when auto-answers are off."""
    if "autoreply" not in config.root:
        return None, None
    from autoreply import Engine, Reloader, read_settings

    settings = read_settings(
        config.section("autoreply"),
        priorities=config.priorities,
        base_dir=Path(config.path).resolve().parent,
        inboxes=config.inboxes,
    )
    if not settings.enabled:
        return None, None
    limiter = None
    if config.redis_url:  # several workers: one count per contact across all of them
        from autoreply.limiter import RedisReplyLimiter

        limiter = RedisReplyLimiter(
            config.redis_url,
            settings.per_contact_max,
            settings.per_contact_window_seconds,
            settings.global_max_per_minute,
            settings.breaker_cooldown_seconds,
        )
    engine = Engine.from_settings(settings, limiter)
    return engine, Reloader(engine)


def check_sections(config: Config) -> None:
    """Validate every optional section a config has (`omnidesk config check`)."""
    autoreply_engine(config)
    case_policies(config)
    routing_settings(config)
    for adapter in registry.enabled(config):
        adapter.read_settings(config)
    from agent_ui.settings import read_ui_settings

    read_ui_settings(config)
    from omnidesk.metrics import read_metrics_settings

    read_metrics_settings(config)


# --- routing (issue 3): settings, the router service ---------------------------------------
def routing_settings(config: Config) -> RoutingSettings:
    """[routing] read by its own reader; the defaults when the section is absent."""
    from routing.settings import RoutingSettings

    if "routing" not in config.root:
        return RoutingSettings(priorities=config.priorities)
    return RoutingSettings.from_section(config.section("routing"), config.priorities)


def build_router(config: Config, services: Services) -> RouterService:
    """The router service: with Redis, one active router among processes (a lease)."""
    import os
    import socket

    from routing.lease import RedisLease
    from routing.service import RouterService

    lease = None
    if config.redis_url:
        lease = RedisLease(config.redis_url, f"{socket.gethostname()}:{os.getpid()}", ttl=3.0)
    from inbox.cases import AssignmentMode

    policies = case_policies(config)
    pull_only = frozenset(
        inbox
        for inbox in config.inboxes
        if policies.for_inbox(inbox).assignment is AssignmentMode.PULL
    )
    return RouterService(
        services.store,
        services.bus,
        dataclasses.replace(routing_settings(config), pull_only=pull_only),
        lease=lease,
        sockets=services.presence,  # agents' sockets over every web process
    )


# --- end routing ------------------------------------------------------------------------


if TYPE_CHECKING:  # here rather than at the top: one block for issue 17's wiring
    from inbox.cases import CasePolicies


def _case_sweeper(store: Store, bus: EventBus, config: Config) -> Duty:
    """Snooze ends, auto-close and SLA timers (`inbox.sweeper`), a worker duty."""
    from inbox.sweeper import CaseSweeper

    sweeper = CaseSweeper(store, bus, case_policies(config))

    async def start() -> None:
        sweeper.start()

    return start, sweeper.stop


def case_policies(config: Config) -> CasePolicies:
    """[cases] read by its own reader (`inbox.cases.CasePolicies`; the defaults when the
    section is absent); [routing.sla_seconds] gives the first-response targets it leaves out."""
    from inbox.cases import read_case_policies

    return read_case_policies(
        config.section("cases"),
        priorities=config.priorities,
        inboxes=config.inboxes,
        reopen_window_seconds=config.ingest.reopen_window_seconds,
        first_response_defaults=routing_settings(config).sla_seconds,
    )
