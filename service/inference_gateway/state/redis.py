"""The Redis back end: every operation is one Lua script, run atomically by the server.

Scripts go by EVALSHA and are loaded again when the server has lost them (a restart, a
failover, SCRIPT FLUSH): redis-py's `Script` does exactly that. Times come from the
server's TIME, so replicas with skewed clocks agree. Every key is
`<prefix>:{<name>}`: each operation touches one key, and the braces are a Redis Cluster
hash tag, so a key's slot never depends on the prefix. This back end talks to one
server (a primary, or a proxy in front of one); see the README on Cluster and Sentinel.
"""

from __future__ import annotations

import math
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from inference_gateway.state._store import Claim, ClaimOutcome, StoreError, window_retry_after

__all__ = ["RedisStore", "redacted_url"]

# Shared by every script: the server's clock in seconds, and a TTL helper in ms.
_PRELUDE = """
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function expire(key, seconds)
  redis.call('PEXPIRE', key, math.max(1, math.ceil(seconds * 1000)))
end
"""

# KEYS[1] bucket; ARGV op, rate, capacity, x, y. Returns the wait, as a string (Lua
# numbers would be truncated to integers on the way out).
_BUCKET = (
    _PRELUDE
    + """
local t = now()
local rate, cap = tonumber(ARGV[2]), tonumber(ARGV[3])
local s = redis.call('HMGET', KEYS[1], 't', 'u', 'b')
local tokens, updated, blocked = tonumber(s[1]) or cap, tonumber(s[2]) or t, tonumber(s[3]) or 0
tokens = math.min(cap, tokens + math.max(0, t - updated) * rate)
local op, wait = ARGV[1], 0
if op == 'reserve' then
  tokens = tokens - 1
  wait = math.max(0, -tokens / rate, blocked - t)
elseif op == 'refund' then
  tokens = math.min(cap, tokens + 1)
elseif op == 'lower' then
  local left = tonumber(ARGV[4])
  if left <= 0 then blocked = math.max(blocked, t + math.max(0, tonumber(ARGV[5]))) end
  tokens = math.min(tokens, left)
else
  blocked = math.max(blocked, t + tonumber(ARGV[4]))
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'u', tostring(t), 'b', tostring(blocked))
-- A bucket that is full again and unblocked is the same as no bucket.
expire(KEYS[1], math.max((cap - tokens) / rate, blocked - t) + 1)
return tostring(wait)
"""
)

# KEYS[1] lease set (holder -> expiry); ARGV op, holder, limit, ttl. Returns 1 or 0.
_LEASE = (
    _PRELUDE
    + """
local t = now()
local op, holder = ARGV[1], ARGV[2]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t)
if op == 'release' then
  redis.call('ZREM', KEYS[1], holder)
  return 1
end
local held = redis.call('ZSCORE', KEYS[1], holder)
if op == 'refresh' and not held then return 0 end
if op == 'acquire' and not held and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
local ttl = tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], tostring(t + ttl), holder)
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
expire(KEYS[1], tonumber(last[2]) - t)
return 1
"""
)

# KEYS[1] window counter; ARGV limit, window. Returns {admitted, previous, current, elapsed}.
_WINDOW = (
    _PRELUDE
    + """
local t = now()
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local index = math.floor(t / window)
local s = redis.call('HMGET', KEYS[1], 'i', 'c', 'p')
local i, c, p = tonumber(s[1]), tonumber(s[2]) or 0, tonumber(s[3]) or 0
if i == nil or i < index - 1 then
  c, p = 0, 0
elseif i == index - 1 then
  p, c = c, 0
end
local elapsed = t / window - index
local admitted = 0
if p * (1 - elapsed) + c + 1 <= limit then
  c = c + 1
  admitted = 1
end
redis.call('HSET', KEYS[1], 'i', tostring(index), 'c', c, 'p', p)
expire(KEYS[1], 2 * window)
return {admitted, p, c, tostring(elapsed)}
"""
)

# KEYS[1] record: f fingerprint, h holder, l lease end, p prediction id, d done, r response.
_CLAIM = (
    _PRELUDE
    + """
local t = now()
local fingerprint, holder, lease, retention = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local s = redis.call('HMGET', KEYS[1], 'f', 'h', 'l', 'p', 'd', 'r')
if not s[1] then
  redis.call('HSET', KEYS[1], 'f', fingerprint, 'h', holder, 'l', tostring(t + lease))
  expire(KEYS[1], retention)
  return {'claimed'}
end
if s[1] ~= fingerprint then return {'mismatch'} end
if s[5] == '1' then return {'done', s[4] or '', s[6]} end
if s[2] ~= holder and s[2] ~= '' and tonumber(s[3]) > t then return {'running', s[4] or ''} end
redis.call('HSET', KEYS[1], 'h', holder, 'l', tostring(t + lease))
if not s[4] then return {'claimed'} end
return {'adopted', s[4]}
"""
)

# KEYS[1] record; ARGV op, holder, seconds (lease, retention or grace), prediction id or
# response. Returns 1, or 0 when `holder` does not own an unfinished record.
_RECORD = (
    _PRELUDE
    + """
local t = now()
local op, holder, seconds = ARGV[1], ARGV[2], tonumber(ARGV[3])
local s = redis.call('HMGET', KEYS[1], 'h', 'd')
if s[1] ~= holder or s[2] == '1' then return 0 end
if op == 'renew' then
  redis.call('HSET', KEYS[1], 'l', tostring(t + seconds))
  if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'p', ARGV[4]) end
  if redis.call('PTTL', KEYS[1]) < seconds * 1000 then expire(KEYS[1], seconds) end
elseif op == 'complete' then
  redis.call('HSET', KEYS[1], 'd', '1', 'r', ARGV[4])
  expire(KEYS[1], seconds)
elseif op == 'abandon' then
  redis.call('HSET', KEYS[1], 'h', '', 'l', tostring(t + seconds))
  if redis.call('PTTL', KEYS[1]) < seconds * 1000 then expire(KEYS[1], seconds) end
else
  redis.call('DEL', KEYS[1])
end
return 1
"""
)

# KEYS[1] index: a hash member -> "added expiry"; ARGV op, member, ttl. Members expire
# one by one (a sorted set's scores could order them, or expire them, not both).
_INDEX = (
    _PRELUDE
    + """
local t = now()
local op = ARGV[1]
if op == 'add' then
  local old = redis.call('HGET', KEYS[1], ARGV[2])
  local added = old and string.match(old, '^(%S+)') or tostring(t)
  local until_ = t + tonumber(ARGV[3])
  redis.call('HSET', KEYS[1], ARGV[2], added .. ' ' .. tostring(until_))
  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) * 1000 then expire(KEYS[1], ARGV[3]) end
  return {}
end
if op == 'remove' then
  redis.call('HDEL', KEYS[1], ARGV[2])
  return {}
end
local live = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local added, until_ = string.match(all[i + 1], '^(%S+) (%S+)$')
  if tonumber(until_) > t then
    table.insert(live, {tonumber(added), all[i]})
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
table.sort(live, function(a, b) return a[1] < b[1] end)
local names = {}
for i, entry in ipairs(live) do names[i] = entry[2] end
return names
"""
)


# KEYS[1] spend record: s settled (an integer, by HINCRBY), r:<holder> "amount expiry" per
# reservation, d:<holder> "0 expiry" per settle-once marker; ARGV op, holder, amount, limit,
# hold (for settle: the marker's seconds, 0 for none), ttl. Returns {granted (settle: 0 for
# a repeat), settled, reserved} as decimal strings (Lua's tostring would write 1e+15).
_SPEND = (
    _PRELUDE
    + """
local t = now()
local op, holder = ARGV[1], ARGV[2]
local held = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local kind = string.sub(all[i], 1, 2)
  if (kind == 'r:' and all[i] ~= 'r:' .. holder) or kind == 'd:' then
    local n, e = string.match(all[i + 1], '^(%S+) (%S+)$')
    if tonumber(e) <= t then
      redis.call('HDEL', KEYS[1], all[i])
    elseif kind == 'r:' then
      held = held + tonumber(n)
    end
  end
end
local mine = redis.call('HGET', KEYS[1], 'r:' .. holder)
local settled = tonumber(redis.call('HGET', KEYS[1], 's') or '0')
local granted = 1
if op == 'reserve' then
  local amount = tonumber(ARGV[3])
  if settled + held + amount > tonumber(ARGV[4]) then
    granted = 0
  else
    redis.call('HSET', KEYS[1], 'r:' .. holder, ARGV[3] .. ' ' .. tostring(t + tonumber(ARGV[5])))
    held = held + amount
  end
elseif op == 'settle' then
  local once = tonumber(ARGV[5])
  if once > 0 and redis.call('HEXISTS', KEYS[1], 'd:' .. holder) == 1 then
    granted = 0
  else
    redis.call('HDEL', KEYS[1], 'r:' .. holder)
    settled = redis.call('HINCRBY', KEYS[1], 's', ARGV[3])
    if once > 0 then
      redis.call('HSET', KEYS[1], 'd:' .. holder, '0 ' .. tostring(t + once))
    end
  end
elseif mine then
  local n, e = string.match(mine, '^(%S+) (%S+)$')
  if tonumber(e) > t then held = held + tonumber(n) end
end
if op ~= 'read' and redis.call('PTTL', KEYS[1]) < tonumber(ARGV[6]) * 1000 then
  expire(KEYS[1], tonumber(ARGV[6]))
end
return {granted, string.format('%.0f', settled), string.format('%.0f', held)}
"""
)


def redacted_url(url: str) -> str:
    """The URL without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.partition(":")[0]
    return f"{scheme}{sep}{user}:***@{host}" if user else f"{scheme}{sep}***@{host}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStore:
    """Shared state on one Redis server (redis:// or rediss://, with password or ACL user)."""

    backend = "redis"

    def __init__(self, url: str, *, prefix: str, timeout: float) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError(f"the Redis key prefix may not contain braces, got {prefix!r}")
        # Connection and socket timeouts bound each attempt; the caller's deadline bounds
        # the whole call (SharedState). redis-py's own retries would only stretch it.
        self._redis = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            health_check_interval=30,
            retry=Retry(NoBackoff(), 0),
        )
        self._prefix = prefix
        self._bucket = self._redis.register_script(_BUCKET)
        self._lease = self._redis.register_script(_LEASE)
        self._window = self._redis.register_script(_WINDOW)
        self._claim = self._redis.register_script(_CLAIM)
        self._record = self._redis.register_script(_RECORD)
        self._spend = self._redis.register_script(_SPEND)
        self._index = self._redis.register_script(_INDEX)

    def _key(self, name: str) -> str:
        return f"{self._prefix}:{{{name}}}"

    async def _run(self, script: Any, name: str, *args: object) -> Any:
        try:
            return await script(keys=[self._key(name)], args=list(args))
        except (RedisError, OSError) as exc:
            raise StoreError(f"{type(exc).__name__}: {exc}") from exc

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            raise StoreError(f"{type(exc).__name__}: {exc}") from exc

    async def reserve(self, key: str, rate: float, capacity: float) -> float:
        return float(_text(await self._run(self._bucket, key, "reserve", rate, capacity)))

    async def refund(self, key: str, rate: float, capacity: float) -> None:
        await self._run(self._bucket, key, "refund", rate, capacity)

    async def lower(
        self, key: str, rate: float, capacity: float, remaining: float, reset: float
    ) -> None:
        await self._run(self._bucket, key, "lower", rate, capacity, remaining, reset)

    async def block(self, key: str, rate: float, capacity: float, seconds: float) -> None:
        await self._run(self._bucket, key, "block", rate, capacity, seconds)

    async def acquire_lease(self, key: str, holder: str, limit: int, ttl: float) -> bool:
        return bool(await self._run(self._lease, key, "acquire", holder, limit, ttl))

    async def refresh_lease(self, key: str, holder: str, ttl: float) -> bool:
        return bool(await self._run(self._lease, key, "refresh", holder, 0, ttl))

    async def release_lease(self, key: str, holder: str) -> None:
        await self._run(self._lease, key, "release", holder, 0, 0)

    async def hit_window(self, key: str, limit: int, window: float) -> float:
        admitted, previous, current, elapsed = await self._run(self._window, key, limit, window)
        if admitted:
            return 0.0
        return window_retry_after(int(previous), int(current), limit, float(_text(elapsed)), window)

    async def claim(
        self, key: str, fingerprint: str, holder: str, lease: float, retention: float
    ) -> Claim:
        reply = await self._run(self._claim, key, fingerprint, holder, lease, retention)
        outcome = ClaimOutcome(_text(reply[0]))
        prediction_id = _text(reply[1]) or None if len(reply) > 1 else None
        response = bytes(reply[2]) if len(reply) > 2 else None
        return Claim(outcome, prediction_id, response)

    async def renew_claim(
        self, key: str, holder: str, lease: float, prediction_id: str | None = None
    ) -> bool:
        return bool(await self._run(self._record, key, "renew", holder, lease, prediction_id or ""))

    async def complete(self, key: str, holder: str, response: bytes, retention: float) -> None:
        await self._run(self._record, key, "complete", holder, retention, response)

    async def release_claim(self, key: str, holder: str) -> bool:
        return bool(await self._run(self._record, key, "release", holder, 0, ""))

    async def abandon_claim(self, key: str, holder: str, grace: float) -> bool:
        return bool(await self._run(self._record, key, "abandon", holder, grace, ""))

    async def _set(self, key: str, value: bytes, ttl: float, *, new: bool) -> bool:
        try:
            done = await self._redis.set(
                self._key(key), value, px=max(1, math.ceil(ttl * 1000)), nx=new
            )
        except (RedisError, OSError) as exc:
            raise StoreError(f"{type(exc).__name__}: {exc}") from exc
        return bool(done)

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        await self._set(key, value, ttl, new=False)

    async def put_new(self, key: str, value: bytes, ttl: float) -> bool:
        return await self._set(key, value, ttl, new=True)

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._redis.get(self._key(key))
        except (RedisError, OSError) as exc:
            raise StoreError(f"{type(exc).__name__}: {exc}") from exc
        if value is None:
            return None
        return value if isinstance(value, bytes) else value.encode()

    async def index_add(self, key: str, member: str, ttl: float) -> None:
        await self._run(self._index, key, "add", member, ttl)

    async def index_remove(self, key: str, member: str) -> None:
        await self._run(self._index, key, "remove", member, 0)

    async def index_members(self, key: str) -> list[str]:
        return [_text(name) for name in await self._run(self._index, key, "list", "", 0)]

    async def spend_reserve(
        self, key: str, holder: str, amount: int, limit: int, hold: float, ttl: float
    ) -> tuple[bool, int, int]:
        granted, settled, held = await self._run(
            self._spend, key, "reserve", holder, amount, limit, hold, ttl
        )
        return bool(granted), int(_text(settled)), int(_text(held))

    async def spend_settle(
        self, key: str, holder: str, amount: int, ttl: float, once: float = 0.0
    ) -> bool:
        granted, _, _ = await self._run(self._spend, key, "settle", holder, amount, 0, once, ttl)
        return bool(int(granted))

    async def spend_read(self, key: str) -> tuple[int, int]:
        _, settled, held = await self._run(self._spend, key, "read", "", 0, 0, 0, 0)
        return int(_text(settled)), int(_text(held))

    async def close(self) -> None:
        await self._redis.aclose()
