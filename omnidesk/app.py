"""Wiring: builds each process role from the config. Nothing imports this module."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import socketio
from aiohttp import web

from agent_ui import api as read_api
from agent_ui import routing_api
from agent_ui import web as agent_web
from channels import api as inbound_api
from inbox.accounts.token_cache import TokenCache, stamp_path
from inbox.bus.backends import EventBus, open_bus
from inbox.bus.presence import MemoryPresence, SocketPresence, open_presence
from inbox.config import Config
from inbox.health import Check, Readiness, bus_check, store_check, writer_check
from inbox.ingest import Ingestor, IngestSettings
from inbox.outbox.durable import OutboxWorker
from inbox.pipeline import Pipeline
from inbox.ports import IngestFn, Sender
from inbox.store.backends import Store, open_store
from inbox.tasks import cancel_and_wait
from inbox.web.http import (
    MAX_BODY_KEY,
    STORE_KEY,
    TOKENS_KEY,
    errors_middleware,
    listen,
    log_bad_requests_as_warnings,
)
from inbox.web.untrusted import SocketJson
from omnidesk import metrics, worker
from omnidesk.wiring import Parts, build_parts, build_router

log = logging.getLogger("omnidesk")

ROLES = ("all", "web", "router", "worker", "smtp")

# SIGTERM/SIGINT: every listener closes at once; HTTP requests and SMTP transactions in
# flight get GRACE_SECONDS to be answered (then are cut: nothing unanswered was
# acknowledged, so clients retry; aiohttp may wait as long again for a cut handler to
# end, as an open socket.io websocket's does); then the rest stops, within what is left of
# STOP_SECONDS (a part that overruns is left behind, named in the log), so the process is
# gone within 10 s and its ports are free for the next start
GRACE_SECONDS = 2.5
STOP_SECONDS = 8.0


@dataclass
class Services:
    config: Config
    store: Store
    bus: EventBus
    ingest: Ingestor
    pipeline: Pipeline
    outbox: OutboxWorker
    senders: dict[str, Sender] = field(default_factory=dict)
    parts: Parts = field(default_factory=Parts)
    # one socket.io server for every namespace (/widget for visitors, /agent for CSRs);
    # with Redis configured its emits reach clients connected to any web process
    sio: socketio.AsyncServer | None = None
    # who is connected where (agent sockets, visitors in rooms, viewers): in this process,
    # or with Redis configured over every web process (inbox.bus.presence)
    presence: SocketPresence = field(default_factory=MemoryPresence)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def close(self, within: float | None = None) -> None:
        """Run the closers, last added first; with `within`, each gets what is left of
        that many seconds (at least a moment) and one that overruns is abandoned."""
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        for closer in reversed(self.closers):
            try:
                if deadline is None:
                    await closer()
                    continue
                began = loop.time()
                async with asyncio.timeout_at(max(deadline, loop.time() + 0.1)):
                    await closer()
                log.debug("shutdown: %s stopped in %.2f s", _name(closer), loop.time() - began)
            except TimeoutError:
                log.warning("shutdown: %s did not stop in time; left behind", _name(closer))
            except Exception:
                log.exception("error while shutting down")


def ingest_settings(config: Config) -> IngestSettings:
    return IngestSettings(
        priorities=config.priorities,
        default_priority=config.default_priority,
        thread_window=timedelta(seconds=config.ingest.thread_window_seconds),
        default_country=config.ingest.default_country,
        batch_max=config.ingest.batch_max,
    )


async def build_services(
    config: Config, role: str = "all", *, write_process: bool = False
) -> Services:
    """`write_process`: on SQLite, ingest writes in a child process (what `serve` runs;
    in-process tests keep them on the store's writer thread, the same transactions)."""
    store = open_store(config.database_url, write_process=write_process)
    bus = open_bus(config.redis_url)
    await bus.start()
    ingest = Ingestor(store, bus, ingest_settings(config))
    senders: dict[str, Sender] = {}
    outbox = OutboxWorker(store, bus, senders)
    pipeline = Pipeline(store, bus, None, priorities=config.priorities, on_outbound=outbox.poke)
    services = Services(config, store, bus, ingest, pipeline, outbox, senders)
    services.sio = make_socketio(config, role)
    services.presence = open_presence(config.redis_url)
    services.closers += [store.close, bus.close, ingest.close, pipeline.close]
    services.closers += [services.presence.close, lambda: close_socketio(services.sio)]
    try:
        if role in {"all", "web", "smtp"}:  # roles taking inbound messages: ready at once
            await store.start()
        await services.presence.start()
        parts = build_parts(config, services, role)
    except BaseException:
        await services.close()
        raise
    services.parts = parts
    pipeline.triage = parts.triage
    senders.update(parts.senders)
    services.closers += parts.closers
    return services


class GuardedPacket(socketio.packet.Packet):  # type: ignore[misc]  # socketio is untyped
    """socket.io packets read with `inbox.web.untrusted.SocketJson`: a payload too deep, with
    a huge integer or a lone surrogate reaches its handler as `Refused` (and is answered)
    rather than raising inside the server, which would only log it and never answer."""

    json = SocketJson


def make_socketio(config: Config, role: str = "all") -> socketio.AsyncServer:
    """One socket.io server per process. With Redis, an emit from any process reaches the
    clients of every web process through python-socketio's Redis manager; processes that
    serve no sockets (router, worker, smtp) get a write-only manager (no listener).

    Emits driven by a bus event pass `ignore_queue=True` (every web process hears the event
    and serves its own clients); emits that start in one process go through the manager."""
    manager = None
    if config.redis_url:
        # pub/sub channels are server-wide, not per database (as for the event bus)
        from redis.connection import parse_url

        # redis-py leaves parse_url unannotated
        db = parse_url(config.redis_url).get("db", 0)  # type: ignore[no-untyped-call]
        from omnidesk.socket_manager import RedisSocketManager

        manager = RedisSocketManager(
            config.redis_url,
            channel=f"omnidesk:{db}:socketio",
            write_only=role not in {"all", "web"},
            logger=logging.getLogger("omnidesk.socketio"),
        )
    return socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=manager,
        # each namespace checks Origin itself against its own allow-list
        cors_allowed_origins="*",
        max_http_buffer_size=256 * 1024,
        serializer=GuardedPacket,
        logger=False,
        engineio_logger=False,
    )


def start_socketio(sio: socketio.AsyncServer) -> None:
    """Subscribe to the Redis manager's channel now rather than at the first client's
    connect (python-socketio's default), so no cross-process emit is missed meanwhile."""
    if not sio.manager_initialized:
        sio.manager_initialized = True
        sio.manager.initialize()


async def close_socketio(sio: socketio.AsyncServer | None) -> None:
    """Stop the Redis manager's listener and close its connection (python-socketio never
    does): a process hosting two servers (tests) or restarting cleanly leaks nothing."""
    manager = getattr(sio, "manager", None)
    task = getattr(manager, "thread", None)
    if isinstance(task, asyncio.Task):
        await cancel_and_wait(task)
    redis = getattr(manager, "redis", None)
    if redis is not None:
        await redis.aclose()


def ready_checks(services: Services) -> dict[str, Check]:
    """What /readyz asks: a real write, the writer process, the bus, then the parts'."""
    checks = {"store": store_check(services.store), "bus": bus_check(services.bus)}
    writer = writer_check(services.store)
    if writer is not None:
        checks["writer"] = writer
    return {**checks, **services.parts.checks}


async def security_headers(_request: web.Request, response: web.StreamResponse) -> None:
    """On every response, errors and static files too (on_response_prepare: a signal costs
    each request less than a middleware)."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")


def make_web_app(services: Services) -> web.Application:
    config = services.config
    log_bad_requests_as_warnings()
    app = web.Application(
        middlewares=[errors_middleware],
        # aiohttp's own ceiling; handlers enforce the configured limit before reading
        client_max_size=config.server.max_body_bytes + 1,
    )
    app.on_response_prepare.append(security_headers)
    app[STORE_KEY] = services.store
    app[MAX_BODY_KEY] = config.server.max_body_bytes
    tokens = TokenCache(services.store, stamp=stamp_path(config.data_dir))
    tokens.listen(services.bus)  # revocations by any process forget cached tokens at once
    app[TOKENS_KEY] = tokens
    ingest: IngestFn = services.ingest
    app[inbound_api.INGEST_KEY] = ingest
    app[read_api.READINESS_KEY] = Readiness(ready_checks(services))
    # the agent workspace: "/", sign-in, queue, conversations, the /agent socket namespace
    agent_web.setup(app, services)
    app.add_routes(inbound_api.routes())
    app.add_routes(read_api.routes())
    app[routing_api.ROUTING_KEY] = routing_api.RoutingApi(
        routing_api.RoutingClient(services.bus), services.bus, config.priorities
    )
    app.add_routes(routing_api.routes())
    app.add_routes(services.parts.routes)
    metrics.add_routes(app, services)  # /metrics, when [metrics] gives a token
    if services.sio is not None:
        sio = services.sio
        sio.attach(app, socketio_path="socket.io")

        async def on_startup(_app: web.Application) -> None:
            start_socketio(sio)

        async def on_shutdown(_app: web.Application) -> None:
            # open sockets are requests in flight to aiohttp: end them (the clients
            # reconnect, to this server's next start or another web process) instead of
            # letting them hold the shutdown. Each is told and closed without waiting for
            # its send queue: a client already gone never drains it, and engine.io's own
            # disconnect-all would wait for that for ever
            sockets = list(sio.eio.sockets.values())
            sio.eio.sockets = {}
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(GRACE_SECONDS):
                    await asyncio.gather(
                        *(
                            s.close(wait=False, reason=sio.eio.reason.SERVER_DISCONNECT)
                            for s in sockets
                        ),
                        return_exceptions=True,
                    )

        app.on_startup.append(on_startup)
        app.on_shutdown.append(on_shutdown)
    return app


async def run_roles(
    config: Config, role: str = "all", on_ready: Callable[[], None] | None = None
) -> None:
    """Run a process role until SIGINT/SIGTERM; `on_ready()` once the role is serving."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    services = await build_services(config, role, write_process=True)
    runner: web.AppRunner | None = None
    # Redis configured (cluster): outbound on RQ, triage in workers only, scheduled work
    # under the worker-duties lease (omnidesk.worker)
    cluster = bool(config.redis_url)
    try:
        relay = worker.attach_relay(services) if cluster else None
        services.parts.checks.setdefault("outbox", worker.outbox_check(services.store))
        if role in {"all", "worker"} or (role == "router" and not cluster):
            if cluster:
                worker.count_per_message(services.pipeline)
            services.pipeline.attach()
            if not cluster:  # in a cluster the duties-lease holder recovers, periodically
                recovered = await services.pipeline.recover()
                if recovered:
                    log.info("recovered %d messages stored before the last stop", recovered)
                # and here too, periodically: a triage that failed (disk full) is retried
                interval = worker.read_outbox_settings(config).recover_interval_seconds
                recover = worker.RecoverLoop(services.pipeline, interval)
                await recover.start()
                services.closers.append(recover.stop)
        if role in {"all", "router"}:
            router = build_router(config, services)
            await router.start()
            services.closers.append(router.close)
        if role in {"all", "worker"}:
            if relay is not None:
                await worker.start_worker(services, relay)
            else:
                services.outbox.start()
                services.closers.append(services.outbox.stop)
                for start, stop in services.parts.duties:
                    await start()
                    services.closers.append(stop)
        if role in {"all", "web"}:
            app = make_web_app(services)
            runner = web.AppRunner(
                app, access_log=None, handle_signals=False, shutdown_timeout=GRACE_SECONDS
            )
            await runner.setup()
            host, port = config.server.host, config.server.port
            site = await listen(runner, host, port, what="HTTP", key="server.port")
            log.info(
                "web listening on %s (public URL %s)", _site_url(site), config.server.public_url
            )
        for startup in services.parts.startups:  # added by build_parts for this role
            await startup()
        metrics_runner = await metrics.start_listener(services)  # [metrics] port, any role
        if metrics_runner is not None:
            services.closers.append(metrics_runner.cleanup)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        reloader = services.parts.reloader
        if reloader is not None and role in {"all", "worker", "router"}:
            reloader.install_sighup(loop)
            if reloader.settings.watch:
                watcher = asyncio.create_task(reloader.watch(stop), name="rules-watch")
                services.closers.append(lambda: cancel_and_wait(watcher))
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        log.info("omnidesk %s role started", role)
        # what is alive now (modules, config, rules, the app) lives as long as the process:
        # freeze it out of the collector's full passes, which otherwise re-walk ~10^5
        # objects for a few ms now and then in the middle of serving requests
        gc.collect()
        gc.freeze()
        if on_ready is not None:
            on_ready()
        await stop.wait()
        log.info("shutting down")
    finally:
        started = _loop_time()
        await _stop_listening(runner, services.parts.drains)
        await services.close(within=STOP_SECONDS - (_loop_time() - started))
        log.info("stopped in %.1f s", _loop_time() - started)


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


async def _stop_listening(
    runner: web.AppRunner | None, drains: list[Callable[[float], Awaitable[None]]]
) -> None:
    """Close every listener at once and let what is in flight end (GRACE_SECONDS)."""
    loop = asyncio.get_running_loop()
    began = loop.time()

    async def timed(name: str, job: Awaitable[None]) -> None:
        await job
        log.debug("shutdown: %s stopped in %.2f s", name, loop.time() - began)

    jobs = [timed(_name(drain), drain(GRACE_SECONDS)) for drain in drains]
    if runner is not None:  # its sites first, then requests in flight, then the app
        jobs.append(timed("web", runner.cleanup()))
    for result in await asyncio.gather(*jobs, return_exceptions=True):
        if isinstance(result, Exception):
            log.error("error while shutting down", exc_info=result)


def _name(fn: Callable[..., Any]) -> str:
    owner = getattr(fn, "__self__", None)
    name = getattr(fn, "__qualname__", repr(fn))
    return f"{type(owner).__name__}.{fn.__name__}" if owner is not None else name


def _site_url(site: web.TCPSite) -> str:
    # asyncio's Server has `sockets`; its AbstractServer (what aiohttp declares) does not
    sockets: Sequence[socket.socket] | None = getattr(site._server, "sockets", None)
    if sockets:
        host, port = sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"
    return site.name
