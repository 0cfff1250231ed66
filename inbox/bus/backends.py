"""The event bus: one interface, an in-process backend and a Redis backend.

As in python-socketio's pub/sub managers, the base class does the local fan-out and a
backend fills in only `_send` (deliver a batch of events to every listener, in order) and
`_listen` (yield the batches that arrive). The in-process backend is a production
backend, not a test double.

`publish_many(events)` publishes a batch as one unit: one Redis message, one queue entry
in-process, and one handler call per subscriber per batch that walks the batch in order
(rather than a task per handler per event). Handlers get an immutable view of an event's
data, equal to what crosses a process boundary as JSON: on the in-process backend a flat
payload of strings, numbers, booleans and None is not serialized at all.

A backend that loses its server keeps trying: the Redis listener reconnects with a capped,
jittered backoff and subscribes again. Whatever was published while it was away is lost to
it, so once it listens again the bus calls the handlers of `EventName.BUS_RESUMED` in this
process (never published, never given to "*" handlers): each catches up from the store,
the source of truth. While Redis is down a publish fails with `BusError` after a short
retry; a caller that committed first answers from its commit: the event it could not
publish is covered by the resume of every listener, which can only happen after Redis is
back, so after the failed publish.
"""

from __future__ import annotations

import abc
import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, NoReturn

from inbox import metrics
from inbox.errors import BusError
from inbox.events import Event, EventName
from inbox.tasks import cancel_and_wait

log = logging.getLogger("omnidesk.bus")

Handler = Callable[[Event], Awaitable[None]]

# json.dumps with non-default separators builds a new encoder on every call: make one
_encode = json.JSONEncoder(separators=(",", ":")).encode

# one Redis message carries at most this many events
MAX_BATCH = 500


class FrozenData(dict[str, Any]):
    """An event's data as handlers see it: a dict (JSON encoders and `dict(...)` take it as
    one) that refuses changes, since every handler of a process shares it."""

    __slots__ = ()

    def _refuse(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        raise TypeError("event data is read-only: copy it with dict(event.data)")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self),))  # copies are plain dicts


_SCALARS = (str, int, float, bool, type(None))


def _as_received(event: Event) -> Event:
    """`event` as a listener in another process would get it: name a plain str, data
    read-only and equal to its JSON round trip (raises if it is not JSON-able). An event
    made received-shaped by its producer (`received_event`) passes as it is."""
    data = event.data
    if type(data) is FrozenData and type(event.name) is str:
        return event
    if all(type(k) is str and type(v) in _SCALARS for k, v in data.items()):
        frozen = FrozenData(data)  # nothing JSON would change: a copy is the round trip
    else:
        frozen = FrozenData(json.loads(_encode(dict(data))))
    if not isinstance(event.at, datetime):
        raise TypeError(f"event time must be a datetime, not {type(event.at).__name__}")
    return Event(str(event.name), frozen, event.at)


Scalar = str | int | float | bool | None


def received_event(name: str, data: dict[str, Scalar], at: datetime) -> Event:
    """An event already in the shape listeners get (see `_as_received`; `data` holds JSON
    scalars only, as its type says), for the ingest hot path: the in-process bus hands it
    on without a check or a copy."""
    return Event(str(name), FrozenData(data), at)


def encode_batch(events: Sequence[Event]) -> str:
    """One event as a JSON object, several as a JSON array of them (one message)."""
    if len(events) == 1:
        return _encode(events[0].to_json())
    return _encode([event.to_json() for event in events])


def decode_batch(raw: str | bytes) -> list[Event]:
    """The events of one message (see encode_batch); malformed ones are dropped."""
    try:
        decoded = json.loads(raw)
    except ValueError:
        log.warning("dropping a malformed message from the bus")
        return []
    out = []
    for item in decoded if isinstance(decoded, list) else (decoded,):
        try:
            out.append(
                Event(
                    str(item["name"]),
                    FrozenData(item.get("data") or {}),
                    datetime.fromisoformat(str(item["at"])),
                )
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("dropping a malformed event from the bus")
    return out


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
        await self.publish_many((event,))

    async def publish_many(self, events: Iterable[Event]) -> None:
        """Publish `events` in order, as one unit: every listening process gets them in this
        order, and each handler is called for them one after another."""
        batch = tuple(events)
        if not batch:
            return
        if self._listener is None:
            await self.start()
        for start in range(0, len(batch), MAX_BATCH):
            chunk = batch[start : start + MAX_BATCH]
            try:
                await self._send(chunk)
            except BusError:
                raise
            except Exception as exc:
                names = ", ".join(sorted({str(e.name) for e in chunk}))
                raise BusError(f"cannot publish {names}: {exc}") from exc

    async def health(self) -> tuple[bool, str]:
        """For /readyz: (ok, detail) about this process's connection to the bus."""
        if self._listener is not None and self._listener.done():
            return False, "the listener has stopped"
        return True, "listening" if self._listener is not None else "not started"

    async def close(self) -> None:
        if self._listener is not None:
            await cancel_and_wait(self._listener)
            self._listener = None
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        await self._close()

    async def drain(self) -> None:
        """Wait until every event published so far has been handled (tests, shutdown)."""
        await self._flush()
        while self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)

    @property
    def connected(self) -> bool:
        """Whether the listener hears the backend now (for /readyz)."""
        return self._listener is not None and not self._listener.done()

    async def _listen_loop(self, ready: asyncio.Event) -> None:
        async for batch in self._listen(ready):
            self._dispatch(batch)

    def _resumed(self) -> None:
        """The listener hears the backend again after a gap: tell this process's
        BUS_RESUMED handlers (only them: it is no event of the domain)."""
        event = Event(EventName.BUS_RESUMED, FrozenData())
        for handler in self._handlers.get(EventName.BUS_RESUMED, ()):
            task = asyncio.create_task(self._call(handler, [event]))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    def _dispatch(self, batch: Sequence[Event]) -> None:
        """One task per handler per batch; the handler takes the batch's events in order."""
        calls: dict[Handler, list[Event]] = {}
        everything = self._handlers.get("*", ())
        for event in batch:
            for handler in (*self._handlers.get(event.name, ()), *everything):
                calls.setdefault(handler, []).append(event)
        for handler, events in calls.items():
            task = asyncio.create_task(self._call(handler, events))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def _call(self, handler: Handler, events: list[Event]) -> None:
        for event in events:
            try:
                await handler(event)
            except Exception:
                log.exception(
                    "handler %s failed on %s",
                    getattr(handler, "__qualname__", handler),
                    event.name,
                )

    @abc.abstractmethod
    async def _send(self, events: Sequence[Event]) -> None:
        """Deliver one batch (at most MAX_BATCH events) to every listener, in order."""

    @abc.abstractmethod
    def _listen(self, ready: asyncio.Event) -> AsyncIterator[Sequence[Event]]: ...

    async def _flush(self) -> None:
        """Wait until published events reached the listener (backends may override)."""
        await asyncio.sleep(0)

    async def _close(self) -> None:
        return None


class MemoryBus(EventBus):
    """In-process fan-out: the embedded default. Events are not serialized: listeners get
    them as `_as_received` makes them, equal to what a Redis listener decodes."""

    def __init__(self) -> None:
        super().__init__()
        self._queue: asyncio.Queue[tuple[Event, ...]] = asyncio.Queue()

    async def _send(self, events: Sequence[Event]) -> None:
        self._queue.put_nowait(tuple(_as_received(event) for event in events))

    async def _listen(self, ready: asyncio.Event) -> AsyncIterator[Sequence[Event]]:
        ready.set()
        while True:
            batch = await self._queue.get()
            yield batch
            self._queue.task_done()

    async def _flush(self) -> None:
        await self._queue.join()


class RedisBus(EventBus):
    """Events across processes over Redis pub/sub. The listener outlives Redis outages:
    it reconnects (backoff from BACKOFF_BASE doubling, with jitter, capped at BACKOFF_CAP),
    subscribes again and announces BUS_RESUMED."""

    BACKOFF_BASE = 0.1
    BACKOFF_CAP = 2.0

    def __init__(self, url: str, channel: str | None = None) -> None:
        super().__init__()
        try:
            import redis.asyncio as aioredis
            from redis.asyncio.retry import Retry
            from redis.backoff import EqualJitterBackoff
            from redis.exceptions import RedisError
        except ImportError as exc:  # pragma: no cover - redis is a runtime dependency
            raise BusError(
                "the Redis event bus needs the redis package: pip install redis"
            ) from exc
        # a publish retries briefly (a pooled connection that died with the last Redis is
        # replaced at once), then fails: the caller answers while Redis is away
        retry = Retry(EqualJitterBackoff(cap=0.5, base=0.05), 2)
        self._redis: Any = aioredis.Redis.from_url(url, retry=retry, socket_connect_timeout=5)
        self._failed: tuple[type[BaseException], ...] = (RedisError, OSError)
        self._backoff = EqualJitterBackoff(cap=self.BACKOFF_CAP, base=self.BACKOFF_BASE)
        # pub/sub channels are server-wide, not per database: name the database in it so
        # two deployments sharing one Redis server do not hear each other
        db = self._redis.connection_pool.connection_kwargs.get("db", 0)
        self._channel = channel or f"omnidesk:{db}:events"
        self._subscribed = False
        self.reconnects = 0  # times the listener came back after losing Redis

    @property
    def connected(self) -> bool:
        return self._subscribed and super().connected

    async def _send(self, events: Sequence[Event]) -> None:
        # one message per batch: one PUBLISH, and one message to parse in each listener
        await self._redis.publish(self._channel, encode_batch(events))

    async def _listen(self, ready: asyncio.Event) -> AsyncIterator[Sequence[Event]]:
        failures = 0
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                self._subscribed = True
                if failures:
                    self.reconnects += 1
                    metrics.BUS_RECONNECTS.inc()
                    log.warning("event bus: Redis is back; listeners catch up from the store")
                    self._resumed()
                failures = 0
                ready.set()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        batch = decode_batch(message["data"])
                        if batch:
                            yield batch
            except self._failed as exc:
                if failures == 0:
                    log.warning("event bus: lost Redis (%s); reconnecting", exc)
            finally:
                self._subscribed = False
                try:
                    await pubsub.aclose()
                except self._failed:
                    pass
            failures += 1
            ready.set()  # started: events flow once Redis answers (then BUS_RESUMED)
            await asyncio.sleep(self._backoff.compute(failures))

    async def health(self) -> tuple[bool, str]:
        try:
            await self._redis.ping()
        except Exception as exc:
            return False, f"redis unreachable: {type(exc).__name__}: {exc}"
        if self._listener is not None and not self._listener.done() and not self._subscribed:
            return False, "the listener is reconnecting to Redis"
        return await super().health()

    async def _close(self) -> None:
        await self._redis.aclose()


def open_bus(url: str | None) -> EventBus:
    """The one resolver: `memory://` (or nothing) vs `redis://...`."""
    if not url or url.startswith("memory:"):
        return MemoryBus()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisBus(url)
    raise BusError(f"no event bus backend for {url.split(':', 1)[0]!r} URLs")
