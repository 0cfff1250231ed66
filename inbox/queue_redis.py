"""The Redis backend of the priority queue: sorted sets and Lua, one round trip per call.

Layout under one hash-tagged prefix (all keys in one cluster slot):

    P:all                zset of every waiting conversation (for order and positions)
    P:e                  hash  member -> entry JSON
    P:bk                 hash  member -> bucket name
    P:buckets            set of non-empty bucket names
    P:b:<bucket>         zset per bucket; a bucket name is JSON ``[channel, [skills]]``

Score = rank * 1e13 + enqueued milliseconds (exact in a double); members are zero-padded
ids, so equal scores order by id, as in the in-process backend. ``claim`` runs as one Lua
script: it compares the tops of the buckets the claimant qualifies for and removes the
winner, so concurrent claimers never get the same entry.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

try:
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError
except ImportError as exc:  # pragma: no cover - exercised only without redis installed
    raise ImportError(
        "RedisQueue needs the redis package: pip install 'redis>=5.0' (or use memory://)"
    ) from exc

from inbox.config import DEFAULT_PRIORITIES
from inbox.errors import QueueError
from inbox.queue import PriorityQueue, QueueEntry, QueuePosition

_RANK_SCALE = 10**13

_PUSH = """
local old = redis.call('HGET', KEYS[3], ARGV[1])
if old and old ~= ARGV[4] then
  redis.call('ZREM', ARGV[5] .. old, ARGV[1])
  if redis.call('ZCARD', ARGV[5] .. old) == 0 then redis.call('SREM', KEYS[4], old) end
end
redis.call('ZADD', ARGV[5] .. ARGV[4], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
redis.call('SADD', KEYS[4], ARGV[4])
return 1
"""

_REMOVE = """
local b = redis.call('HGET', KEYS[3], ARGV[1])
if not b then return 0 end
redis.call('ZREM', ARGV[2] .. b, ARGV[1])
if redis.call('ZCARD', ARGV[2] .. b) == 0 then redis.call('SREM', KEYS[4], b) end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"""

_CLAIM = """
local have = nil
if ARGV[2] ~= '' then
  have = {}
  for _, s in ipairs(cjson.decode(ARGV[2])) do have[s] = true end
end
local chans = nil
if ARGV[3] ~= '' then
  chans = {}
  for _, c in ipairs(cjson.decode(ARGV[3])) do chans[c] = true end
end
local best_b, best_m, best_s = nil, nil, nil
for _, b in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  local meta = cjson.decode(b)
  local ok = (chans == nil) or (chans[meta[1]] == true)
  if ok and have then
    for _, s in ipairs(meta[2]) do
      if not have[s] then ok = false break end
    end
  end
  if ok then
    local top = redis.call('ZRANGE', ARGV[1] .. b, 0, 0, 'WITHSCORES')
    if top[1] then
      local sc = tonumber(top[2])
      if best_s == nil or sc < best_s or (sc == best_s and top[1] < best_m) then
        best_b, best_m, best_s = b, top[1], sc
      end
    end
  end
end
if not best_b then return false end
local raw = redis.call('HGET', KEYS[2], best_m)
redis.call('ZREM', ARGV[1] .. best_b, best_m)
if redis.call('ZCARD', ARGV[1] .. best_b) == 0 then redis.call('SREM', KEYS[4], best_b) end
redis.call('ZREM', KEYS[1], best_m)
redis.call('HDEL', KEYS[2], best_m)
redis.call('HDEL', KEYS[3], best_m)
return raw
"""

_LIST = """
local members
if tonumber(ARGV[1]) < 0 then
  members = redis.call('ZRANGE', KEYS[1], 0, -1)
else
  members = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
end
if #members == 0 then return {} end
return redis.call('HMGET', KEYS[2], unpack(members))
"""

_CLEAR = """
for _, b in ipairs(redis.call('SMEMBERS', KEYS[4])) do redis.call('DEL', ARGV[1] .. b) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return 1
"""


def _member(conversation_id: int) -> str:
    return f"{conversation_id:020d}"


class RedisQueue(PriorityQueue):
    def __init__(
        self,
        url: str,
        levels: Sequence[str] = DEFAULT_PRIORITIES,
        *,
        prefix: str = "{omnidesk:queue}",
        client: Any = None,
    ) -> None:
        super().__init__(levels)
        self._client = client or aioredis.Redis.from_url(url)
        self._own_client = client is None
        self._keys = [f"{prefix}:all", f"{prefix}:e", f"{prefix}:bk", f"{prefix}:buckets"]
        self._bucket_prefix = f"{prefix}:b:"
        self._push = self._client.register_script(_PUSH)
        self._remove = self._client.register_script(_REMOVE)
        self._claim = self._client.register_script(_CLAIM)
        self._list = self._client.register_script(_LIST)
        self._clear = self._client.register_script(_CLEAR)

    def _score(self, entry: QueueEntry) -> int:
        return self.rank(entry.priority) * _RANK_SCALE + entry.enqueued_ms

    async def _call(self, what: str, coro: Any) -> Any:
        try:
            return await coro
        except RedisError as exc:
            raise QueueError(f"redis queue {what} failed: {exc}") from exc

    async def push(self, entry: QueueEntry) -> None:
        bucket = json.dumps([entry.channel, list(entry.skills)], separators=(",", ":"))
        args: list[str | int] = [
            _member(entry.conversation_id),
            self._score(entry),
            entry.to_json(),
            bucket,
            self._bucket_prefix,
        ]
        await self._call("push", self._push(keys=self._keys, args=args))

    async def remove(self, conversation_id: int) -> bool:
        args = [_member(conversation_id), self._bucket_prefix]
        return bool(await self._call("remove", self._remove(keys=self._keys, args=args)))

    async def claim(
        self, skills: Iterable[str] | None = None, channels: Iterable[str] | None = None
    ) -> QueueEntry | None:
        args = [
            self._bucket_prefix,
            "" if skills is None else json.dumps(sorted(set(skills))),
            "" if channels is None else json.dumps(sorted(set(channels))),
        ]
        raw = await self._call("claim", self._claim(keys=self._keys, args=args))
        return QueueEntry.from_json(raw) if raw else None

    async def get(self, conversation_id: int) -> QueueEntry | None:
        raw = await self._call("get", self._client.hget(self._keys[1], _member(conversation_id)))
        return QueueEntry.from_json(raw) if raw else None

    async def position(self, conversation_id: int) -> int | None:
        member = _member(conversation_id)
        rank = await self._call("position", self._client.zrank(self._keys[0], member))
        return None if rank is None else int(rank) + 1

    async def list(self, limit: int | None = None) -> list[QueuePosition]:
        if limit is not None and limit <= 0:
            return []
        raws = await self._call(
            "list", self._list(keys=self._keys, args=[-1 if limit is None else limit])
        )
        entries = [QueueEntry.from_json(raw) for raw in raws if raw]
        return [QueuePosition(n, entry) for n, entry in enumerate(entries, start=1)]

    async def count(self) -> int:
        return int(await self._call("count", self._client.zcard(self._keys[0])))

    async def clear(self) -> None:
        await self._call("clear", self._clear(keys=self._keys, args=[self._bucket_prefix]))

    async def close(self) -> None:
        if self._own_client:
            await self._client.aclose()
