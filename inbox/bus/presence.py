"""Who is connected, and where: agent sockets, visitors in conversation rooms, agents
viewing a conversation. One interface, an in-memory backend (one process: the embedded
default) and a Redis backend (several web processes), chosen by `open_presence(url)`.

    presence = open_presence(config.redis_url)       # None/memory:// or redis://...
    await presence.start()
    await presence.agent_connected(7)                # the socket layer, on connect
    await presence.agent_sockets()                   # the router: {7: 1}, across processes
    await presence.room_occupied("c:tok")            # a chat sender: is the visitor here?
    await presence.set_viewer(42, sid, {"id": 7, "name": "Ann", "typing": False})
    await presence.viewers(42)                       # every process's viewers of 42

The base class keeps this process's own state; a backend fills in how other processes'
state is shared and read. With Redis each process owns one hash
`omnidesk:presence:proc:<id>` with a TTL, rewritten from its own state every `ttl / 4`
seconds and written through on every change. A process that dies stops refreshing it:
after at most `ttl` seconds its agents' sockets, visitors and viewers are gone for every
reader. Agents that had a socket are also remembered in a set until the router has set
them offline (`forget_agents`), so a router taking over sees an agent whose last socket
died with its process as "had sockets, now none" and not as "never connected".

Redis failures raise `BusError` (presence travels with the event bus).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import logging
import os
import socket
import uuid
from collections.abc import Iterable
from typing import Any

from inbox.errors import BusError
from inbox.tasks import cancel_and_wait

log = logging.getLogger("omnidesk.presence")

Viewer = dict[str, Any]  # {"id": agent id, "name": str, "typing": bool}
DEFAULT_TTL = 10.0


class SocketPresence(abc.ABC):
    def __init__(self) -> None:
        self._agents: dict[int, int] = {}  # this process: agent id -> open sockets
        self._rooms: dict[str, int] = {}  # this process: room -> visitor sockets in it
        self._viewers: dict[int, dict[str, Viewer]] = {}  # conversation -> sid -> viewer

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    # -- agents -----------------------------------------------------------------------
    async def agent_connected(self, agent_id: int) -> None:
        self._agents[agent_id] = self._agents.get(agent_id, 0) + 1
        await self._agent_changed(agent_id, connected=True)

    async def agent_disconnected(self, agent_id: int) -> None:
        left = self._agents.get(agent_id, 0) - 1
        if left > 0:
            self._agents[agent_id] = left
        else:
            self._agents.pop(agent_id, None)
        await self._agent_changed(agent_id, connected=False)

    @abc.abstractmethod
    async def agent_sockets(self) -> dict[int, int]:
        """Open sockets per agent over every live process: each agent with a socket, and
        (with 0) each that had one and was not forgotten since."""

    @abc.abstractmethod
    async def forget_agents(self, agent_ids: Iterable[int]) -> None:
        """The router set these agents offline: stop reporting them with 0 sockets."""

    # -- visitors in conversation rooms -----------------------------------------------
    async def room_joined(self, room: str) -> None:
        self._rooms[room] = self._rooms.get(room, 0) + 1
        await self._room_changed(room)

    async def room_left(self, room: str) -> None:
        left = self._rooms.get(room, 0) - 1
        if left > 0:
            self._rooms[room] = left
        else:
            self._rooms.pop(room, None)
        await self._room_changed(room)

    async def room_occupied(self, room: str) -> bool:
        """Whether a visitor socket is in `room` in any live process."""
        return room in self._rooms or await self._room_elsewhere(room)

    # -- agents viewing a conversation (the collision notice) -------------------------
    async def set_viewer(self, conversation_id: int, sid: str, viewer: Viewer) -> None:
        self._viewers.setdefault(conversation_id, {})[sid] = dict(viewer)
        await self._viewer_changed(conversation_id, sid)

    async def drop_viewer(self, conversation_id: int, sid: str) -> None:
        viewers = self._viewers.get(conversation_id)
        if viewers is None or viewers.pop(sid, None) is None:
            return
        if not viewers:
            del self._viewers[conversation_id]
        await self._viewer_changed(conversation_id, sid)

    @abc.abstractmethod
    async def viewers(self, conversation_id: int) -> list[Viewer]:
        """Every live process's viewers of the conversation, one entry per socket."""

    # -- what a backend fills in ------------------------------------------------------
    async def _agent_changed(self, agent_id: int, *, connected: bool) -> None:
        return None

    async def _room_changed(self, room: str) -> None:
        return None

    async def _room_elsewhere(self, room: str) -> bool:
        return False

    async def _viewer_changed(self, conversation_id: int, sid: str) -> None:
        return None


class MemoryPresence(SocketPresence):
    """One process: its own state is everyone's. The embedded default."""

    def __init__(self) -> None:
        super().__init__()
        self._had: set[int] = set()

    async def _agent_changed(self, agent_id: int, *, connected: bool) -> None:
        self._had.add(agent_id)

    async def agent_sockets(self) -> dict[int, int]:
        counts = dict.fromkeys(self._had, 0)
        counts.update(self._agents)
        return counts

    async def forget_agents(self, agent_ids: Iterable[int]) -> None:
        for agent_id in agent_ids:
            if agent_id not in self._agents:
                self._had.discard(agent_id)

    async def viewers(self, conversation_id: int) -> list[Viewer]:
        return [dict(v) for v in self._viewers.get(conversation_id, {}).values()]


class RedisPresence(SocketPresence):
    """Several processes: each publishes its own state in a hash with a TTL."""

    def __init__(
        self,
        url: str,
        *,
        ttl: float = DEFAULT_TTL,
        prefix: str = "omnidesk:presence",
        process_id: str | None = None,
    ) -> None:
        super().__init__()
        try:
            import redis.asyncio as aioredis
        except ImportError as exc:  # pragma: no cover - redis is a runtime dependency
            raise BusError("Redis presence needs the redis package: pip install redis") from exc
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.ttl = ttl
        unique = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.process_id = process_id or unique
        self._redis: Any = aioredis.Redis.from_url(url)
        self._p = prefix
        self._key = f"{prefix}:proc:{self.process_id}"
        self._lock = asyncio.Lock()  # one writer at a time: writes land in order
        self._beat: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def _ttl_ms(self) -> int:
        return max(1, int(self.ttl * 1000))

    def _vkey(self, conversation_id: int) -> str:
        return f"{self._p}:viewers:{conversation_id}"

    def _field(self, sid: str) -> str:
        return f"{self.process_id}|{sid}"

    # -- life cycle -------------------------------------------------------------------
    async def start(self) -> None:
        if self._beat is None:
            await self._write_all()
            self._beat = asyncio.create_task(self._heartbeat(), name="presence-heartbeat")

    async def close(self) -> None:
        """A clean stop: this process's sockets are gone now, not after the TTL."""
        if self._beat is not None:
            self._closing = True
            await cancel_and_wait(self._beat)
            self._beat = None

            async def forget() -> None:
                async with self._lock:
                    pipe = self._redis.pipeline(transaction=True)
                    pipe.delete(self._key)
                    pipe.srem(f"{self._p}:procs", self.process_id)
                    for cid, sids in self._viewers.items():
                        pipe.hdel(self._vkey(cid), *[self._field(s) for s in sids])
                    await pipe.execute()

            # bounded: a connection whose command was cancelled mid-reply by the heartbeat's
            # cancel can leave the next reply waiting forever; the TTL cleans up anyway
            with contextlib.suppress(Exception):
                await asyncio.wait_for(forget(), 2.0)
        await self._redis.aclose()

    async def _heartbeat(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.ttl / 4)
            try:
                await self._write_all()
            except BusError as exc:
                # redis-py may turn a cancel that lands mid-command into a connection
                # error: the flag, not the CancelledError, says we are stopping
                if self._closing:
                    return
                log.warning("presence heartbeat failed (retrying): %s", exc.message)

    async def _write_all(self) -> None:
        """Rewrite this process's whole state (heals a key lost to a Redis restart)."""
        mapping: dict[str, Any] = {"_": "1"}
        mapping.update({f"a:{a}": n for a, n in self._agents.items()})
        mapping.update({f"r:{r}": n for r, n in self._rooms.items()})
        async with self._lock:
            pipe = self._redis.pipeline(transaction=True)
            pipe.delete(self._key)
            pipe.hset(self._key, mapping=mapping)
            pipe.pexpire(self._key, self._ttl_ms)
            pipe.sadd(f"{self._p}:procs", self.process_id)
            for cid, sids in self._viewers.items():
                vkey = self._vkey(cid)
                pipe.hset(vkey, mapping={self._field(s): json.dumps(v) for s, v in sids.items()})
                pipe.pexpire(vkey, self._ttl_ms)
            await self._run(pipe)

    async def _run(self, pipe: Any) -> list[Any]:
        try:
            return await pipe.execute()  # type: ignore[no-any-return]
        except Exception as exc:
            raise BusError(f"presence: Redis failed: {exc}") from exc

    # -- write through ------------------------------------------------------------------
    async def _agent_changed(self, agent_id: int, *, connected: bool) -> None:
        async with self._lock:
            pipe = self._redis.pipeline(transaction=True)
            count = self._agents.get(agent_id, 0)
            if count:
                pipe.hset(self._key, f"a:{agent_id}", count)
            else:
                pipe.hdel(self._key, f"a:{agent_id}")
            pipe.pexpire(self._key, self._ttl_ms)
            pipe.sadd(f"{self._p}:agents", agent_id)
            await self._run(pipe)

    async def _room_changed(self, room: str) -> None:
        async with self._lock:
            pipe = self._redis.pipeline(transaction=True)
            count = self._rooms.get(room, 0)
            if count:
                pipe.hset(self._key, f"r:{room}", count)
            else:
                pipe.hdel(self._key, f"r:{room}")
            pipe.pexpire(self._key, self._ttl_ms)
            await self._run(pipe)

    async def _viewer_changed(self, conversation_id: int, sid: str) -> None:
        vkey = self._vkey(conversation_id)
        viewer = self._viewers.get(conversation_id, {}).get(sid)
        async with self._lock:
            pipe = self._redis.pipeline(transaction=True)
            if viewer is None:
                pipe.hdel(vkey, self._field(sid))
            else:
                pipe.hset(vkey, self._field(sid), json.dumps(viewer))
                pipe.pexpire(vkey, self._ttl_ms)
            await self._run(pipe)

    # -- reads across processes ---------------------------------------------------------
    async def _live(self) -> dict[str, dict[bytes, bytes]]:
        """process id -> its hash, for every process whose key has not expired."""
        try:
            pids = [p.decode() for p in await self._redis.smembers(f"{self._p}:procs")]
        except Exception as exc:
            raise BusError(f"presence: Redis failed: {exc}") from exc
        pipe = self._redis.pipeline(transaction=False)
        for pid in pids:
            pipe.hgetall(f"{self._p}:proc:{pid}")
        hashes = await self._run(pipe) if pids else []
        live = {pid: h for pid, h in zip(pids, hashes, strict=True) if h}
        dead = [pid for pid in pids if pid not in live]
        if dead:  # expired: a process that died (or stopped without cleaning up)
            with contextlib.suppress(Exception):
                await self._redis.srem(f"{self._p}:procs", *dead)
        return live

    async def agent_sockets(self) -> dict[int, int]:
        live = await self._live()
        try:
            had = await self._redis.smembers(f"{self._p}:agents")
        except Exception as exc:
            raise BusError(f"presence: Redis failed: {exc}") from exc
        counts = {int(a): 0 for a in had}
        for fields in live.values():
            for name, value in fields.items():
                if name.startswith(b"a:"):
                    agent_id = int(name[2:])
                    counts[agent_id] = counts.get(agent_id, 0) + int(value)
        return counts

    async def forget_agents(self, agent_ids: Iterable[int]) -> None:
        ids = list(agent_ids)
        if not ids:
            return
        pipe = self._redis.pipeline(transaction=False)
        pipe.srem(f"{self._p}:agents", *ids)
        await self._run(pipe)

    async def _room_elsewhere(self, room: str) -> bool:
        try:
            pids = [p.decode() for p in await self._redis.smembers(f"{self._p}:procs")]
        except Exception as exc:
            raise BusError(f"presence: Redis failed: {exc}") from exc
        if not pids:
            return False
        pipe = self._redis.pipeline(transaction=False)
        for pid in pids:
            pipe.hget(f"{self._p}:proc:{pid}", f"r:{room}")
        return any(v is not None and int(v) > 0 for v in await self._run(pipe))

    async def viewers(self, conversation_id: int) -> list[Viewer]:
        try:
            raw = await self._redis.hgetall(self._vkey(conversation_id))
        except Exception as exc:
            raise BusError(f"presence: Redis failed: {exc}") from exc
        entries = [(k.decode().rpartition("|")[0], v) for k, v in raw.items()]
        others = sorted({pid for pid, _ in entries if pid != self.process_id})
        alive = {self.process_id}
        if others:
            pipe = self._redis.pipeline(transaction=False)
            for pid in others:
                pipe.exists(f"{self._p}:proc:{pid}")
            alive |= {pid for pid, ok in zip(others, await self._run(pipe), strict=True) if ok}
        return [json.loads(v) for pid, v in entries if pid in alive]


def open_presence(url: str | None, **options: Any) -> SocketPresence:
    """The one resolver: `memory://` (or nothing) vs `redis://...`."""
    if not url or url.startswith("memory:"):
        return MemoryPresence()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisPresence(url, **options)
    raise BusError(f"no presence backend for {url.split(':', 1)[0]!r} URLs")
