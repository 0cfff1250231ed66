"""The process's one socket.io server: made, started and closed here."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import socketio
from aiohttp import web

from inbox.config import Config
from inbox.tasks import cancel_and_wait
from inbox.web.untrusted import SocketJson


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


def attach_socketio(app: web.Application, sio: socketio.AsyncServer, grace: float) -> None:
    """Serve `sio` at /socket.io on `app`: its Redis manager subscribed at startup, its
    sockets ended at shutdown within `grace` seconds."""
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
            async with asyncio.timeout(grace):
                await asyncio.gather(
                    *(
                        s.close(wait=False, reason=sio.eio.reason.SERVER_DISCONNECT)
                        for s in sockets
                    ),
                    return_exceptions=True,
                )

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
