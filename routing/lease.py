"""A Redis lease electing one active router among several processes.

    lease = RedisLease(redis_url, holder="router-host-1234", ttl=5.0)
    token = await lease.acquire()        # None: someone else holds it (stand by)
    ok = await lease.renew()             # False: we lost it (stop routing at once)
    await lease.release()                # on shutdown, so a standby takes over now

`acquire` is SET NX PX of a value "<fencing token>:<holder>", the token taken from INCR
of a counter, so every new holder's token is higher than all before it. A write made on
behalf of the leader can carry the token and be refused when a higher one has been seen.
`renew` and `release` are Lua compare-and-extend / compare-and-delete on that exact value,
so a stale leader (paused, partitioned, expired) can neither extend nor delete a lease
that is now someone else's. `run` loops: acquire, renew every ttl/3, stand by and retry
every ttl/3 while another holds it; a standby takes over within about ttl + ttl/3 of the
leader's death, at once after a clean release.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

try:
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError
except ImportError as exc:  # pragma: no cover - redis is a core dependency today
    raise ImportError("the router lease needs the redis package: pip install 'redis>=5.0'") from exc

from inbox.errors import QueueError

_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local token = redis.call('INCR', KEYS[2])
local value = token .. ':' .. ARGV[1]
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return token
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


_ADVANCE = """
local seen = tonumber(redis.call('GET', KEYS[2]) or '0')
if seen < tonumber(ARGV[1]) then redis.call('SET', KEYS[2], ARGV[1]) end
return 1
"""


class LeaseError(QueueError):
    """Redis failed while taking or keeping the lease."""


class RedisLease:
    def __init__(
        self,
        url: str,
        holder: str,
        *,
        name: str = "router",
        ttl: float = 5.0,
        prefix: str = "{omnidesk:lease}",
        client: Any = None,
    ) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.holder = holder
        self.ttl = ttl
        self.token: int | None = None  # fencing token while held
        self._client = client or aioredis.Redis.from_url(url)
        self._own_client = client is None
        self._keys = [f"{prefix}:{name}", f"{prefix}:{name}:fence"]
        self._acquire = self._client.register_script(_ACQUIRE)
        self._renew = self._client.register_script(_RENEW)
        self._release = self._client.register_script(_RELEASE)
        self._advance = self._client.register_script(_ADVANCE)

    @property
    def held(self) -> bool:
        return self.token is not None

    @property
    def _value(self) -> str:
        return f"{self.token}:{self.holder}"

    @property
    def _ttl_ms(self) -> int:
        return max(1, int(self.ttl * 1000))

    async def acquire(self) -> int | None:
        """Take the lease if free; the new fencing token, or None."""
        try:
            token = await self._acquire(keys=self._keys, args=[self.holder, self._ttl_ms])
        except RedisError as exc:
            raise LeaseError(f"lease acquire failed: {exc}") from exc
        self.token = int(token) if token else None
        return self.token

    async def renew(self) -> bool:
        """Extend the lease if still ours; False (and not held) when it is lost."""
        if self.token is None:
            return False
        try:
            ok = await self._renew(keys=self._keys, args=[self._value, self._ttl_ms])
        except RedisError as exc:
            raise LeaseError(f"lease renew failed: {exc}") from exc
        if not ok:
            self.token = None
        return bool(ok)

    async def release(self) -> None:
        if self.token is None:
            return
        try:
            await self._release(keys=self._keys, args=[self._value])
        except RedisError as exc:
            raise LeaseError(f"lease release failed: {exc}") from exc
        finally:
            self.token = None

    async def advance(self, token: int) -> None:
        """Make every later token higher than `token`, a token the database has seen: a
        Redis restarted without its data counts from 1 again."""
        try:
            await self._advance(keys=self._keys, args=[token])
        except RedisError as exc:
            raise LeaseError(f"lease advance failed: {exc}") from exc

    async def current(self) -> tuple[int, str] | None:
        """Who holds it now: (fencing token, holder), or None."""
        raw = await self._client.get(self._keys[0])
        if raw is None:
            return None
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        token, _, holder = text.partition(":")
        return int(token), holder

    async def run(
        self,
        on_elected: Callable[[int], Awaitable[None]],
        on_lost: Callable[[], Awaitable[None]],
        stop: asyncio.Event,
    ) -> None:
        """Campaign until `stop` is set: call `on_elected(token)` when we become leader and
        `on_lost()` when the lease is lost (or Redis fails while leading)."""
        interval = self.ttl / 3
        try:
            while not stop.is_set():
                try:
                    if self.token is None:
                        if await self.acquire() is not None:
                            await on_elected(self.token)  # type: ignore[arg-type]
                    elif not await self.renew():
                        await on_lost()
                except LeaseError:
                    if self.token is not None:
                        self.token = None
                        await on_lost()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)
        finally:
            if self.token is not None:
                with contextlib.suppress(LeaseError):
                    await self.release()
                await on_lost()

    async def close(self) -> None:
        if self._own_client:
            await self._client.aclose()
