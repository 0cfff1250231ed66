"""Which optional parts a config turns on, built from their own settings readers.

A section that is absent leaves its part off: no [sms] means no SMS webhook or sender,
no [forms] no form endpoint, [autoreply] enabled = false no auto-answers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from inbox import metrics
from inbox.config import Config
from inbox.events import DeliveryChanged, Event, EventName
from inbox.optouts import SqlOptOuts
from inbox.store import cursors
from inbox.store.files import FileStore
from inbox.store.outbox import enqueue, record_delivery
from inbox.types import AuthorKind, Channel, DeliveryStatus, IngestResult
from inbox.web.ratelimit import rate_limiter

log = logging.getLogger("omnidesk")


@dataclass
class Parts:
    """Route tables, senders and background jobs the enabled parts contribute."""

    routes: list[web.RouteDef] = field(default_factory=list)
    senders: dict[str, Any] = field(default_factory=dict)
    startups: list[Any] = field(default_factory=list)
    closers: list[Any] = field(default_factory=list)
    # listeners besides the web server, `async (grace seconds) -> None`: at shutdown,
    # stopped first and together (no new connections; what is in flight may end within
    # the grace), before the closers
    drains: list[Any] = field(default_factory=list)
    triage: Any = None
    reloader: Any = None
    # readiness checks for /readyz: name -> async () -> (ok, detail)
    checks: dict[str, Any] = field(default_factory=dict)
    # (start, stop) of scheduled work one worker runs at a time: with Redis under the
    # worker-duties lease (omnidesk.worker), else started with the process
    duties: list[tuple[Any, Any]] = field(default_factory=list)
    # async () -> None, run at each /metrics scrape to set gauges (omnidesk.metrics)
    scrapes: list[Any] = field(default_factory=list)


def autoreply_engine(config: Config) -> tuple[Any, Any]:
    """(engine, reloader), or (None, None) when auto-answers are off."""
    if "autoreply" not in config.root:
        return None, None
    from autoreply import Engine, Reloader, read_settings

    settings = read_settings(
        config.section("autoreply"),
        priorities=config.priorities,
        base_dir=Path(config.path).resolve().parent,
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


def build_parts(config: Config, services: Any, role: str = "all") -> Parts:
    parts = Parts()
    files = FileStore(config.data_dir / "attachments")
    store, bus, ingest = services.store, services.bus, services.ingest
    parts.triage, parts.reloader = autoreply_engine(config)

    if "sms" in config.root:
        from channels.sms import SmsWebhook, TwilioSender, read_sms_settings

        sms = read_sms_settings(
            config.section("sms"),
            public_url=config.server.public_url,
            default_country=config.ingest.default_country,
        )
        optouts = SqlOptOuts(store)

        async def on_status(provider_id: str, status: DeliveryStatus, error: str | None) -> None:
            changed = await store.write(
                lambda conn: record_delivery(conn, provider_id, status, error)
            )
            if changed is not None:
                await bus.publish(
                    Event(
                        EventName.MESSAGE_DELIVERY_CHANGED,
                        DeliveryChanged(
                            message_id=changed[0],
                            conversation_id=changed[1],
                            status=status.value,
                        ),
                    )
                )

        hook = SmsWebhook(
            ingest=ingest, settings=sms, optouts=optouts, media_store=files, on_status=on_status
        )
        parts.routes += hook.routes()
        parts.closers.append(hook.close)
        sender = TwilioSender(sms, optouts)
        parts.senders["sms"] = sender
        parts.closers.append(sender.stop)

    if "forms" in config.root:
        from channels.webform import FormEndpoint, read_forms_settings

        forms = read_forms_settings(
            config.section("forms"), priorities=config.priorities, inboxes=config.inboxes
        )

        async def confirm(email: str, form: Any, result: IngestResult) -> None:
            text = (
                f"Thank you for contacting us through “{form.title}”. We received your message "
                "and will answer by email; reply to this email to add anything."
            )
            message_id = await store.write(
                lambda conn: enqueue(
                    conn,
                    conversation_id=result.conversation_id,
                    text=text,
                    subject=f"We received your message: {form.title}",
                    author_kind=AuthorKind.BOT,
                    auto_reply=True,
                    channel=Channel.EMAIL,
                )
            )
            services.outbox.poke(message_id)

        form_limits = rate_limiter(config.redis_url)  # one count across web processes
        parts.closers.append(form_limits.close)
        endpoint = FormEndpoint(
            ingest=ingest,
            settings=forms,
            public_url=config.server.public_url,
            attachment_store=files,
            confirm=confirm,
            default_country=config.ingest.default_country,
            limiter=form_limits,
        )
        parts.routes += endpoint.routes()

    # --- email (issue 7): SMTP listener (role smtp), IMAP pollers (role worker), sender ---
    if "email" in config.root:
        from channels.email.capture import captured_mail_dir
        from channels.email.channel import EmailChannel
        from channels.email.files import put_store
        from channels.email.settings import read_settings as read_email_settings

        email_settings = read_email_settings(
            config.section("email"), config.section("smtp"), config.section("imap")
        )

        async def get_cursor(source: str) -> str | None:
            found: str | None = await store.read(lambda conn: cursors.position(conn, source))
            return found

        # with Redis the IMAP pollers run in one worker at a time (the worker-duties lease)
        imap = role in {"all", "worker"}
        leased_imap = imap and bool(config.redis_url) and bool(email_settings.mailboxes)
        email = EmailChannel(
            email_settings,
            config.secret_key,
            ingest,
            store=put_store(files),
            get_cursor=get_cursor,
            smtp=role in {"all", "smtp"},
            imap=imap and not leased_imap,
            capture_dir=captured_mail_dir(config.data_dir),  # used without [email.relay]
        )
        parts.senders["email"] = email.sender
        if role in {"all", "smtp", "worker"}:
            parts.startups.append(email.start)
            parts.closers.append(email.stop)
            parts.drains.append(email.stop_listening)
        if leased_imap:
            parts.duties.append(leased_pollers(email, email_settings, ingest, files, get_cursor))

        async def email_ready() -> tuple[bool, str]:
            health = email.health()
            broken = [m for m in health["mailboxes"] if not m["healthy"]]
            if not broken:
                return True, "ok"
            why = "; ".join(f"{m['name']}: {m['last_error'] or 'not synced yet'}" for m in broken)
            return False, f"unhealthy mailboxes: {why}"

        parts.checks["email"] = email_ready
        parts.scrapes.append(lambda: _async(metrics.set_mailboxes, email.health()["mailboxes"]))
    # --- end email ------------------------------------------------------------------------

    # --- webchat (issue 5): /widget namespace, chat sender, /widget.js, demo page -------
    if "webchat" in config.root:
        from channels.webchat import (
            DemoSite,
            WebchatSender,
            WidgetHttp,
            WidgetNamespace,
            read_webchat_settings,
        )

        chat = read_webchat_settings(config.section("webchat"), inboxes=config.inboxes)
        secret, public_url = config.secret_key, config.server.public_url
        presence = services.presence  # visitors in conversation rooms, every web process
        chat_limits = rate_limiter(config.redis_url)  # one count across web processes
        parts.closers.append(chat_limits.close)
        namespace = WidgetNamespace(
            chat,
            secret=secret,
            ingest=ingest,
            store=store,
            bus=bus,
            presence=presence,
            limiter=chat_limits,
        )
        chat_http = WidgetHttp(namespace, secret=secret, files=files, public_url=public_url)
        namespace.file_url = chat_http.file_url  # both halves sign file links alike
        if role in {"all", "web"}:  # only processes serving sockets emit bus events to them
            namespace.attach(bus)
        services.sio.register_namespace(namespace)
        parts.routes += chat_http.routes()
        chat_sender = WebchatSender(services.sio, presence)
        parts.senders["chat"] = chat_sender
        if chat.demo_port is not None and chat.demo_widget is not None and role in {"all", "web"}:
            demo = DemoSite(config.server.host, chat.demo_port, public_url, chat.demo_widget)
            parts.startups.append(demo.start)
            parts.closers.append(demo.stop)
            parts.drains.append(lambda _grace: demo.stop())
    # --- end webchat ---------------------------------------------------------------------
    return parts


async def _async(function: Any, *args: Any) -> None:
    function(*args)


def leased_pollers(
    email: Any, settings: Any, ingest: Any, files: FileStore, get_cursor: Any
) -> tuple[Any, Any]:
    """(start, stop) of the IMAP pollers for the worker-duties lease. Each election builds
    fresh pollers, which read their position from the database (the last holder moved it);
    `email.pollers` names the running ones, so /readyz reports mailboxes where they run."""
    from channels.email.files import put_store
    from channels.email.imap import IMAPPoller

    async def start() -> None:
        email.pollers = [
            IMAPPoller(box, ingest, get_cursor, put_store(files), email.options)
            for box in settings.mailboxes
        ]
        for poller in email.pollers:
            await poller.start()
        log.info("IMAP polling %d mailbox(es) in this worker", len(email.pollers))

    async def stop() -> None:
        pollers, email.pollers = email.pollers, []
        for poller in pollers:
            await poller.stop()

    return start, stop


def check_sections(config: Config) -> None:
    """Validate every optional section a config has (`omnidesk config check`)."""
    autoreply_engine(config)
    routing_settings(config)
    if "sms" in config.root:
        from channels.sms import read_sms_settings

        read_sms_settings(config.section("sms"), public_url=config.server.public_url)
    if "forms" in config.root:
        from channels.webform import read_forms_settings

        read_forms_settings(
            config.section("forms"), priorities=config.priorities, inboxes=config.inboxes
        )
    if "email" in config.root:
        from channels.email.settings import read_settings as read_email_settings

        read_email_settings(config.section("email"), config.section("smtp"), config.section("imap"))
    if "webchat" in config.root:
        from channels.webchat import read_webchat_settings

        read_webchat_settings(config.section("webchat"), inboxes=config.inboxes)
    from agent_ui.settings import read_ui_settings

    read_ui_settings(config)
    from omnidesk.metrics import read_metrics_settings

    read_metrics_settings(config)


# --- routing (issue 3): settings, the router service ---------------------------------------
def routing_settings(config: Config) -> Any:
    """[routing] read by its own reader; the defaults when the section is absent."""
    from routing.settings import RoutingSettings

    if "routing" not in config.root:
        return RoutingSettings(priorities=config.priorities)
    return RoutingSettings.from_section(config.section("routing"), config.priorities)


def build_router(config: Config, services: Any) -> Any:
    """The router service: with Redis, one active router among processes (a lease)."""
    import os
    import socket

    from routing.lease import RedisLease
    from routing.service import RouterService

    lease = None
    if config.redis_url:
        lease = RedisLease(config.redis_url, f"{socket.gethostname()}:{os.getpid()}", ttl=3.0)
    return RouterService(
        services.store,
        services.bus,
        routing_settings(config),
        lease=lease,
        sockets=services.presence,  # agents' sockets over every web process
    )


# --- end routing ------------------------------------------------------------------------
