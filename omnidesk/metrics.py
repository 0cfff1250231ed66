"""`/metrics` in the Prometheus text format: one endpoint per process.

    [metrics]
    token_env = "OMNIDESK_METRICS_TOKEN"   # /metrics on the web port, `Authorization: Bearer`
    port = 9464                            # and/or: a listener of its own (every role)
    host = "127.0.0.1"                     # the address of that listener

Every process exports its own counters (what it ingested, routed, delivered) and is one
Prometheus target; sums over processes are PromQL's. Gauges of shared state (the waiting
queue, the outbox) are read from the store when scraped, so every process reports the
same values and a dashboard takes their `max`. Without a [metrics] table nothing is served.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from inbox import metrics
from inbox.config import Config
from inbox.store import metrics as metrics_repo
from inbox.store import outbox as outbox_repo
from inbox.web.http import listen
from omnidesk.services import Services

log = logging.getLogger("omnidesk.metrics")

MIN_TOKEN = 16


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    token: str | None = None  # required on the web port; checked on `port` too when set
    host: str = "127.0.0.1"
    port: int | None = None  # a listener of its own; 0 picks a free port (tests)


def read_metrics_settings(config: Config) -> MetricsSettings | None:
    """The [metrics] table, or None when it is absent (no /metrics anywhere)."""
    if "metrics" not in config.root:
        return None
    section = config.section("metrics")
    token = section.secret("token", None)
    if token is not None and len(token) < MIN_TOKEN:
        raise section.error(
            "token", "is too short", fix=f"use at least {MIN_TOKEN} random characters"
        )
    host = section.str("host", "127.0.0.1")
    port = section.int("port", None, min=0, max=65535)
    section.reject_unknown({"token", "token_env", "host", "port"})
    if token is None and port is None:
        raise section.error(
            None,
            "serves nothing: give a token (for /metrics on the web port) or a port",
            fix='token_env = "OMNIDESK_METRICS_TOKEN", or port = 9464 on a private address',
        )
    return MetricsSettings(token, host, port)


Refresh = Callable[[], Awaitable[None]]


class MetricsEndpoint:
    """Answers GET /metrics: checks the token, sets the scrape-time gauges, renders."""

    def __init__(self, settings: MetricsSettings, refreshers: list[Refresh]) -> None:
        self.settings = settings
        self.refreshers = refreshers

    def _refused(self, request: web.Request) -> web.Response | None:
        token = self.settings.token
        if token is None:
            return None
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return web.Response(
                status=401,
                text="missing metrics token: send Authorization: Bearer <token>\n",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        if not hmac.compare_digest(given.strip().encode(), token.encode()):
            return web.Response(status=403, text="wrong metrics token\n")
        return None

    async def handle(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        for refresh in self.refreshers:
            try:
                await refresh()
            except Exception as exc:  # a store that cannot answer leaves the last values
                log.warning("metrics: a scrape-time gauge failed: %s", exc)
        body = generate_latest(metrics.REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/metrics", self.handle)]


def refreshers(services: Services) -> list[Refresh]:
    """The scrape-time gauges of one process: queue and outbox from the store, sockets
    from the namespaces this process serves, and what the enabled parts add (IMAP)."""
    store, inboxes = services.store, services.config.inboxes

    async def queue() -> None:
        waiting = await store.read(metrics_repo.waiting_by_inbox)
        metrics.set_waiting(inboxes, waiting, datetime.now(UTC))

    async def outbox() -> None:
        now = datetime.now(UTC)
        metrics.set_outbox(await store.read(lambda conn: outbox_repo.counts(conn, now)))

    sio = services.sio
    handlers = getattr(sio, "namespace_handlers", {}) if sio is not None else {}

    async def sockets() -> None:
        agents, visitors = handlers.get("/agent"), handlers.get("/widget")
        metrics.SOCKETS.labels("agent").set(len(getattr(agents, "conns", ())))
        metrics.SOCKETS.labels("visitor").set(len(getattr(visitors, "visitors", ())))

    return [queue, outbox, sockets, *services.parts.scrapes]


def endpoint(services: Services) -> MetricsEndpoint | None:
    settings = read_metrics_settings(services.config)
    if settings is None:
        return None
    return MetricsEndpoint(settings, refreshers(services))


def add_routes(app: web.Application, services: Services) -> None:
    """/metrics on the web port, when a token protects it."""
    found = endpoint(services)
    if found is not None and found.settings.token is not None:
        app.add_routes(found.routes())


async def start_listener(services: Services) -> web.AppRunner | None:
    """The [metrics] port's own listener (any role), or None when none is configured."""
    found = endpoint(services)
    if found is None or found.settings.port is None:
        return None
    app = web.Application()
    app.add_routes(found.routes())
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        host, port = found.settings.host, found.settings.port
        await listen(runner, host, port, what="metrics", key="metrics.port")
    except OSError:
        await runner.cleanup()
        raise
    log.info("metrics listening on %s", runner.addresses)
    return runner
