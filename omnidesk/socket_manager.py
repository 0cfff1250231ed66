"""python-socketio's Redis manager, made to outlive a Redis outage quickly.

The installed python-socketio (5.x) `AsyncRedisManager` does reconnect, but its listener
waits 1, 2, 4, ... up to 60 s between attempts (after a 15 s outage, cross-process emits
stayed lost for up to 16 s more; after a minute, for up to a minute), and each attempt, its
listener's or a failed publish's, builds a new Redis client without closing the previous,
shared by the publisher and the listener. Here the two hooks its base leaves to backends
(`_publish`, `_listen`) are filled in again: one publishing client (redis-py reconnects it
for each command), one pubsub per listening attempt, closed after it, and the event bus's
capped, jittered backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import socketio
from redis.backoff import EqualJitterBackoff
from redis.exceptions import RedisError

from inbox.bus.backends import RedisBus


class RedisSocketManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    redis: Any  # the redis.asyncio client, None until first used (set by the base class)

    def __init__(self, url: str, channel: str, *, write_only: bool, logger: Any) -> None:
        super().__init__(url, channel=channel, write_only=write_only, logger=logger)
        self._backoff = EqualJitterBackoff(cap=RedisBus.BACKOFF_CAP, base=RedisBus.BACKOFF_BASE)
        self.reconnects = 0

    def _client(self) -> Any:
        if self.redis is None:
            self.redis = self._get_redis_module().Redis.from_url(
                self.redis_url, **self.redis_options
            )
            self.connected = True
        return self.redis

    async def _publish(self, data: Any) -> Any:
        try:
            return await self._client().publish(self.channel, self.json.dumps(data))
        except (RedisError, OSError) as exc:
            # an emit to other processes is lost; pages resync when the event bus resumes
            self._get_logger().warning("socket.io: cannot publish to Redis: %s", exc)
            return None

    async def _listen(self) -> AsyncIterator[Any]:
        channel = self.channel.encode("utf-8")
        failures = 0
        while True:
            pubsub = self._client().pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                if failures:
                    self.reconnects += 1
                    self._get_logger().warning("socket.io: Redis is back; listening again")
                failures = 0
                async for message in pubsub.listen():
                    if (
                        message.get("channel") == channel
                        and message.get("type") == "message"
                        and "data" in message
                    ):
                        yield message["data"]
            except (RedisError, OSError) as exc:
                if failures == 0:
                    self._get_logger().warning("socket.io: lost Redis (%s); reconnecting", exc)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            failures += 1
            await asyncio.sleep(self._backoff.compute(failures))
