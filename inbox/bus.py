"""The event bus: one interface, an in-process backend and a Redis backend.

As in python-socketio's pub/sub managers, the base class does the local fan-out and a
backend fills in only `_publish` (send one serialized event) and `_listen` (yield the
events that arrive). The in-process backend is a production backend, not a test double.
"""

from __future__ import annotations

import abc
import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from inbox.errors import BusError
from inbox.events import Event

log = logging.getLogger("omnidesk.bus")

Handler = Callable[[Event], Awaitable[None]]

# json.dumps with non-default separators builds a new encoder on every call: make one
_encode = json.JSONEncoder(separators=(",", ":")).encode


class EventBus(abc.ABC):
    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._listener: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()

    def subscribe(self, name: str, handler: Handler) -> None:
        """Call `handler` for every event called `name` ("*" for all)."""
        self._handlers[name].append(handler)

    async def start(self) -> None:
        if self._listener is None:
            ready = asyncio.Event()
            self._listener = asyncio.create_task(self._listen_loop(ready), name="bus-listener")
            await ready.wait()

    async def publish(self, event: Event) -> None:
        if self._listener is None:
            await self.start()
        try:
            await self._publish(_encode(event.to_json()))
        except BusError:
            raise
        except Exception as exc:
            raise BusError(f"cannot publish {event.name}: {exc}") from exc

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            try:
                await self._listener
            except asyncio.CancelledError:
                pass
            self._listener = None
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        await self._close()

    async def drain(self) -> None:
        """Wait until every event published so far has been handled (tests, shutdown)."""
        await self._flush()
        while self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)

    async def _listen_loop(self, ready: asyncio.Event) -> None:
        async for raw in self._listen(ready):
            try:
                event = Event.from_json(json.loads(raw))
            except (ValueError, KeyError, TypeError):
                log.warning("dropping a malformed event from the bus")
                continue
            for handler in (*self._handlers.get(event.name, ()), *self._handlers.get("*", ())):
                task = asyncio.create_task(self._call(handler, event))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)

    async def _call(self, handler: Handler, event: Event) -> None:
        try:
            await handler(event)
        except Exception:
            log.exception(
                "handler %s failed on %s", getattr(handler, "__qualname__", handler), event.name
            )

    @abc.abstractmethod
    async def _publish(self, payload: str) -> None: ...

    @abc.abstractmethod
    def _listen(self, ready: asyncio.Event) -> AsyncIterator[str]: ...

    async def _flush(self) -> None:
        """Wait until published events reached the listener (backends may override)."""
        await asyncio.sleep(0)

    async def _close(self) -> None:
        return None


class MemoryBus(EventBus):
    """In-process fan-out: the embedded default."""

    def __init__(self) -> None:
        super().__init__()
        self._queue: asyncio.Queue[str] = asyncio.Queue()

    async def _publish(self, payload: str) -> None:
        self._queue.put_nowait(payload)

    async def _listen(self, ready: asyncio.Event) -> AsyncIterator[str]:
        ready.set()
        while True:
            payload = await self._queue.get()
            yield payload
            self._queue.task_done()

    async def _flush(self) -> None:
        await self._queue.join()


class RedisBus(EventBus):
    """Events across processes over Redis pub/sub."""

    def __init__(self, url: str, channel: str | None = None) -> None:
        super().__init__()
        try:
            import redis.asyncio as aioredis
        except ImportError as exc:  # pragma: no cover - redis is a runtime dependency
            raise BusError(
                "the Redis event bus needs the redis package: pip install redis"
            ) from exc
        self._redis: Any = aioredis.Redis.from_url(url)
        # pub/sub channels are server-wide, not per database: name the database in it so
        # two deployments sharing one Redis server do not hear each other
        db = self._redis.connection_pool.connection_kwargs.get("db", 0)
        self._channel = channel or f"omnidesk:{db}:events"
        self._published = 0
        self._seen = 0

    async def _publish(self, payload: str) -> None:
        await self._redis.publish(self._channel, payload)

    async def _listen(self, ready: asyncio.Event) -> AsyncIterator[str]:
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(self._channel)
        ready.set()
        try:
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    data = message["data"]
                    yield data.decode() if isinstance(data, bytes) else data
        finally:
            await pubsub.aclose()

    async def _close(self) -> None:
        await self._redis.aclose()


def open_bus(url: str | None) -> EventBus:
    """The one resolver: `memory://` (or nothing) vs `redis://...`."""
    if not url or url.startswith("memory:"):
        return MemoryBus()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisBus(url)
    raise BusError(f"no event bus backend for {url.split(':', 1)[0]!r} URLs")
