"""Runs a process role (`omnidesk serve --role ...`) and builds its web app. Nothing
imports this module."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from agent_ui import api as read_api
from agent_ui import bulk_api, cases_api, ownership_api, priority_api, routing_api, transfer_api
from agent_ui import web as agent_web
from channels import api as inbound_api
from inbox.accounts.token_cache import TokenCache, stamp_path
from inbox.config import Config
from inbox.health import Check, Readiness, bus_check, store_check, writer_check
from inbox.ports import IngestFn
from inbox.tasks import cancel_and_wait
from inbox.web.http import (
    MAX_BODY_KEY,
    STORE_KEY,
    TOKENS_KEY,
    errors_middleware,
    listen,
    log_bad_requests_as_warnings,
)
from omnidesk import metrics, worker
from omnidesk.services import Services, name_of
from omnidesk.sockets import attach_socketio
from omnidesk.wiring import build_router, build_services, case_policies, routing_settings

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


def ready_checks(services: Services, extra: dict[str, Check] | None = None) -> dict[str, Check]:
    """What /readyz asks: a real write, the writer process, the bus, then the parts' and
    `extra`."""
    checks = {"store": store_check(services.store), "bus": bus_check(services.bus)}
    writer = writer_check(services.store)
    if writer is not None:
        checks["writer"] = writer
    return {**checks, **services.parts.checks, **(extra or {})}


async def security_headers(_request: web.Request, response: web.StreamResponse) -> None:
    """On every response, errors and static files too (on_response_prepare: a signal costs
    each request less than a middleware)."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")


def make_web_app(services: Services, checks: dict[str, Check] | None = None) -> web.Application:
    """The web app of a process: the agent workspace, the APIs, the channels' routes and
    the socket.io server. `checks`: more readiness checks for /readyz."""
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
    app[read_api.READINESS_KEY] = Readiness(ready_checks(services, checks))
    policies = case_policies(config)
    # the agent workspace: "/", sign-in, queue, conversations, the /agent socket namespace
    agent_web.setup(
        app,
        config=config,
        store=services.store,
        bus=services.bus,
        outbox=services.outbox,
        triage=services.triage,
        sio=services.sio,
        presence=services.presence,
        policies=policies,
        accept_timeout=routing_settings(config).accept_timeout_seconds,
    )
    app.add_routes(ownership_api.api_routes())
    app.add_routes(inbound_api.routes())
    app.add_routes(read_api.routes())
    app[routing_api.ROUTING_KEY] = routing_api.RoutingApi(
        routing_api.RoutingClient(services.bus), services.bus, config.priorities
    )
    app.add_routes(routing_api.routes())
    cases_api.setup(app, policies)  # status, escalation (issue 17)
    app.add_routes(priority_api.api_routes())
    app[transfer_api.CASES_KEY] = transfer_api.CaseSettings(policies, config.inboxes)
    app[bulk_api.BUS_KEY] = services.bus
    app.add_routes(bulk_api.routes())
    app.add_routes(services.parts.routes)
    metrics.add_routes(app, services)  # /metrics, when [metrics] gives a token
    attach_socketio(app, services.sio, GRACE_SECONDS)
    return app


async def run_roles(
    config: Config, role: str = "all", on_ready: Callable[[], None] | None = None
) -> None:
    """Run a process role until SIGINT/SIGTERM; `on_ready()` once the role is serving."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    # Redis configured (cluster): outbound on RQ, triage in workers only, scheduled work
    # under the worker-duties lease (omnidesk.worker)
    cluster = bool(config.redis_url)
    services = await build_services(config, role, write_process=True, cluster=cluster)
    runner: web.AppRunner | None = None
    try:
        await _start_triage(services, role, cluster)
        if role in {"all", "router"}:
            router = build_router(config, services)
            await router.start()
            services.closers.append(router.close)
        if role in {"all", "worker"}:
            await _start_delivery(services)
        if role in {"all", "web"}:
            runner = await _start_web(services)
        for startup in services.parts.startups:  # the channels' listeners for this role
            await startup()
        metrics_runner = await metrics.start_listener(services)  # [metrics] port, any role
        if metrics_runner is not None:
            services.closers.append(metrics_runner.cleanup)
        await _serve(services, role, on_ready)
    finally:
        started = _loop_time()
        await _stop_listening(runner, services.parts.drains)
        await services.close(within=STOP_SECONDS - (_loop_time() - started))
        log.info("stopped in %.1f s", _loop_time() - started)


async def _start_triage(services: Services, role: str, cluster: bool) -> None:
    """Auto-answers and routing of new messages: in workers (and, embedded, the router)."""
    if not (role in {"all", "worker"} or (role == "router" and not cluster)):
        return
    services.pipeline.attach()
    if cluster:  # in a cluster the duties-lease holder recovers, periodically
        return
    recovered = await services.pipeline.recover()
    if recovered:
        log.info("recovered %d messages stored before the last stop", recovered)
    # and here too, periodically: a triage that failed (disk full) is retried
    interval = worker.read_outbox_settings(services.config).recover_interval_seconds
    recover = worker.RecoverLoop(services.pipeline, interval)
    await recover.start()
    services.closers.append(recover.stop)


async def _start_delivery(services: Services) -> None:
    """Outbound delivery and scheduled work: on RQ under leases when scaled out, else the
    in-process outbox worker and the channels' duties."""
    if services.relay is not None:
        await worker.start_worker(services, services.relay)
        return
    services.outbox.start()
    services.closers.append(services.outbox.stop)
    for start, stop in services.parts.duties:
        await start()
        services.closers.append(stop)


async def _start_web(services: Services) -> web.AppRunner:
    # /readyz also reports outbox work not done
    app = make_web_app(services, {"outbox": worker.outbox_check(services.store)})
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=GRACE_SECONDS
    )
    await runner.setup()
    config = services.config
    host, port = config.server.host, config.server.port
    site = await listen(runner, host, port, what="HTTP", key="server.port")
    log.info("web listening on %s (public URL %s)", _site_url(site), config.server.public_url)
    return runner


async def _serve(services: Services, role: str, on_ready: Callable[[], None] | None) -> None:
    """Serve until SIGINT or SIGTERM (the rules reload on SIGHUP or a file change)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    reloader = services.reloader
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

    jobs = [timed(name_of(drain), drain(GRACE_SECONDS)) for drain in drains]
    if runner is not None:  # its sites first, then requests in flight, then the app
        jobs.append(timed("web", runner.cleanup()))
    for result in await asyncio.gather(*jobs, return_exceptions=True):
        if isinstance(result, Exception):
            log.error("error while shutting down", exc_info=result)


def _site_url(site: web.TCPSite) -> str:
    # asyncio's Server has `sockets`; its AbstractServer (what aiohttp declares) does not
    sockets: Sequence[socket.socket] | None = getattr(site._server, "sockets", None)
    if sockets:
        host, port = sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"
    return site.name
