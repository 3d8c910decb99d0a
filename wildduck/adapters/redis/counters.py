"""The ``Counters`` role on Redis, shared by every instance of a scaled-out deployment.

Each method is one Redis round trip (a Lua script, atomic on the server) on one of the adapter's worker threads;
the connection pool has one connection per thread. Keys (after the configured prefix):

* ``w:<key>``: a rate-limit window, a hash ``{n: count, e: closes at}``. The first ``increment`` opens it, later
  ones ``HINCRBY`` it: N concurrent increments from any number of instances return 1..N, each once.
* ``s:<key>``: connection slots, a sorted set of tokens scored by their expiry; a script drops the expired ones
  and adds a token only while fewer than ``limit`` remain, so the limit holds across instances.
* ``l:<name>``: a named lease, a hash ``{o: owner, e: expires at}``, taken when absent or expired, extended by
  its owner, released only by its owner.

Times are milliseconds of the Redis server's clock (``TIME``, read inside the scripts), the one clock every
instance agrees on; tests inject a clock of their own (``clock``), whose time the scripts then receive. Every key
also gets a Redis expiry (``PEXPIRE``) no shorter than the life of what it holds, so nothing is left behind.

Errors: a call that cannot reach Redis, or gets no answer within ``call_timeout`` seconds, raises ``StoreError``.
A call is never retried (an increment sent twice would count twice). Cancellation waits for the call to finish (at
most ``call_timeout`` seconds): its effect is known.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import redis

from wildduck.adapters._threads import WorkerThreads
from wildduck.adapters.redis.client import close, connect, mapped
from wildduck.adapters.redis.urls import describe
from wildduck.errors import StoreError
from wildduck.ports.counters import Window

log = logging.getLogger(__name__)

#: the current time in milliseconds: the caller's (ARGV[1]) or, when it passes -1, the server's
_NOW = """
local function now_ms()
  local given = tonumber(ARGV[1])
  if given >= 0 then return given end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function keep_for(key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end
"""

# KEYS[1] window; ARGV: now, window ms -> {count, ms until it closes}
_INCREMENT = _NOW + """
local now, span = now_ms(), tonumber(ARGV[2])
local v = redis.call('HMGET', KEYS[1], 'n', 'e')
local closes = tonumber(v[2])
if closes and closes > now then
  return {redis.call('HINCRBY', KEYS[1], 'n', 1), closes - now}
end
redis.call('HSET', KEYS[1], 'n', 1, 'e', now + span)
redis.call('PEXPIRE', KEYS[1], span)
return {1, span}
"""

# KEYS[1] window; ARGV: now -> {count, ms until it closes}, {0, 0} when closed
_WINDOW = _NOW + """
local now = now_ms()
local v = redis.call('HMGET', KEYS[1], 'n', 'e')
local closes = tonumber(v[2])
if closes and closes > now then return {tonumber(v[1]), closes - now} end
return {0, 0}
"""

# KEYS[1] window; ARGV: now
_DECREMENT = _NOW + """
local now = now_ms()
local v = redis.call('HMGET', KEYS[1], 'n', 'e')
local closes = tonumber(v[2])
if closes and closes > now and tonumber(v[1]) > 0 then redis.call('HINCRBY', KEYS[1], 'n', -1) end
return 0
"""

# KEYS[1] slots; ARGV: now, limit, ttl ms, token -> 1 taken, 0 all held
_ACQUIRE_SLOT = _NOW + """
local now, ttl = now_ms(), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[4])
keep_for(KEYS[1], ttl)
return 1
"""

# KEYS[1] slots; ARGV: now, ttl ms, token -> 1 renewed, 0 expired (lost)
_RENEW_SLOT = _NOW + """
local now, ttl = now_ms(), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[3])
keep_for(KEYS[1], ttl)
return 1
"""

# KEYS[1] slots; ARGV: now -> slots held
_SLOTS = _NOW + """
return redis.call('ZCOUNT', KEYS[1], string.format('(%d', now_ms()), '+inf')
"""

# KEYS[1] lease; ARGV: now, owner, ttl ms -> 1 held by owner now, 0 held by another
_ACQUIRE_LEASE = _NOW + """
local now, ttl = now_ms(), tonumber(ARGV[3])
local v = redis.call('HMGET', KEYS[1], 'o', 'e')
if v[1] and v[1] ~= ARGV[2] and tonumber(v[2]) > now then return 0 end
redis.call('HSET', KEYS[1], 'o', ARGV[2], 'e', now + ttl)
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
"""

# KEYS[1] lease; ARGV: owner
_RELEASE_LEASE = """
if redis.call('HGET', KEYS[1], 'o') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""


def _ms(seconds: float) -> int:
    """A duration in whole milliseconds, at least 1 (Redis refuses an expiry of 0)."""
    return max(1, round(seconds * 1000))


class RedisCounters:
    """``Counters`` in Redis: every instance that uses the same server and prefix shares them."""

    def __init__(self, url: str, *, prefix: str = "wildduck:", threads: int = 4, call_timeout: float = 2.0,
                 clock: Callable[[], float] | None = None) -> None:
        self.url = url
        self.prefix = prefix
        #: seconds since the epoch for windows, slots and leases; None: the Redis server's clock
        self.clock = clock
        self._client = connect(url, connections=threads, timeout=call_timeout)
        self._threads = WorkerThreads(threads, "wildduck-redis")
        script = self._client.register_script
        self._increment, self._window, self._decrement = script(_INCREMENT), script(_WINDOW), script(_DECREMENT)
        self._acquire_slot, self._renew_slot, self._slots = script(_ACQUIRE_SLOT), script(_RENEW_SLOT), \
            script(_SLOTS)
        self._acquire_lease, self._release_lease = script(_ACQUIRE_LEASE), script(_RELEASE_LEASE)

    async def open(self) -> None:
        """Check that Redis answers; when it does not, log it and carry on (every call fails until it does)."""
        try:
            await self._call(self._client.ping)
        except StoreError as exc:  # the server starts anyway
            log.warning("Redis at %s does not answer (%s): counters fail until it does", describe(self.url), exc)

    async def close(self) -> None:
        await self._threads.run(close, self._client)
        self._threads.stop()

    def _now(self) -> int:
        return -1 if self.clock is None else round(self.clock() * 1000)

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` on a worker thread; redis-py errors become ``StoreError``."""
        return await self._threads.run(lambda: mapped(lambda: fn(*args, **kwargs)))

    async def _run(self, script: redis.commands.core.Script, key: str, *args: Any) -> Any:
        return await self._call(script, keys=[self.prefix + key], args=[self._now(), *args])

    async def window(self, key: str) -> Window:
        """The current count of ``key`` (0 once its window has closed)."""
        count, left = await self._run(self._window, "w:" + key)
        return Window(int(count), left / 1000)

    async def increment(self, key: str, window: float) -> Window:
        """Count one event and return the count including it (the first event opens a window of ``window``
        seconds). Cancellation waits for the answer: the event is counted."""
        count, left = await self._run(self._increment, "w:" + key, _ms(window))
        return Window(int(count), left / 1000)

    async def decrement(self, key: str) -> None:
        """Take back one event of the open window of ``key`` (never below 0)."""
        await self._run(self._decrement, "w:" + key)

    async def reset(self, key: str) -> None:
        """Close the window of ``key`` (its count is 0 again)."""
        await self._call(self._client.delete, self.prefix + "w:" + key)

    async def acquire_slot(self, key: str, limit: int, ttl: float) -> str | None:
        """One of ``limit`` slots of ``key`` for ``ttl`` seconds (a token), or None while all are held."""
        token = secrets.token_hex(8)
        return token if await self._run(self._acquire_slot, "s:" + key, limit, _ms(ttl), token) else None

    async def renew_slot(self, key: str, token: str, ttl: float) -> bool:
        """Extend a held slot to ``ttl`` seconds from now; False if it had expired (the slot is lost)."""
        return bool(await self._run(self._renew_slot, "s:" + key, _ms(ttl), token))

    async def renew_slots(self, held: Sequence[tuple[str, str]], ttl: float) -> list[bool]:
        """Every renewal in one pipeline (one round trip)."""
        if not held:
            return []

        def run() -> list[bool]:
            now, pipe = self._now(), self._client.pipeline(transaction=False)
            for key, token in held:
                self._renew_slot(keys=[self.prefix + "s:" + key], args=[now, _ms(ttl), token], client=pipe)
            return [bool(r) for r in pipe.execute()]

        result: list[bool] = await self._threads.run(lambda: mapped(run))
        return result

    async def release_slot(self, key: str, token: str) -> None:
        await self._call(self._client.zrem, self.prefix + "s:" + key, token)

    async def slots(self, key: str) -> int:
        """Slots of ``key`` held (unexpired) now, by any instance."""
        return int(await self._run(self._slots, "s:" + key))

    async def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        """Take or extend the lease ``name`` for ``ttl`` seconds; False while another owner holds it."""
        return bool(await self._run(self._acquire_lease, "l:" + name, owner, _ms(ttl)))

    async def release_lease(self, name: str, owner: str) -> None:
        """Give the lease up if ``owner`` holds it; otherwise nothing happens."""
        await self._call(self._release_lease, keys=[self.prefix + "l:" + name], args=[owner])


async def open_redis_counters(url: str, *, prefix: str = "wildduck:", threads: int = 4, call_timeout: float = 2.0,
                              clock: Callable[[], float] | None = None) -> RedisCounters:
    """Counters in the Redis server at ``url`` (see :mod:`wildduck.adapters.redis.client` for the URL forms)."""
    counters = RedisCounters(url, prefix=prefix, threads=threads, call_timeout=call_timeout, clock=clock)
    await counters.open()
    return counters


if TYPE_CHECKING:
    from wildduck.ports.counters import Counters

    def _fills_the_role(c: RedisCounters) -> Counters:
        """mypy checks here that ``RedisCounters`` implements the port."""
        return c
