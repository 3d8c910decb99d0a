"""Connections to Redis: one sync redis-py client per adapter with a pool sized to its threads, for the URL forms
of :mod:`wildduck.adapters.redis.urls`, and the mapping of driver errors to :class:`~wildduck.errors.StoreError`.

Every connection has a socket timeout and a connect timeout, and no automatic retry: a call fails once, as a
``StoreError``, instead of being silently sent twice (an increment must count once) or waiting on a dead server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import redis
import redis.sentinel
from redis.backoff import NoBackoff
from redis.retry import Retry

from wildduck.adapters.redis.urls import SENTINEL_SCHEMES, parse_sentinel_url
from wildduck.errors import StoreError

T = TypeVar("T")


def connect(url: str, *, connections: int, timeout: float) -> redis.Redis:
    """A client for ``url`` whose pool holds at most ``connections`` connections (one per thread that uses it),
    each with ``timeout`` seconds to connect and to answer, strings decoded as UTF-8, no automatic retries."""
    scheme = urlsplit(url).scheme
    options: dict[str, Any] = {
        "socket_timeout": timeout, "socket_connect_timeout": timeout, "retry": Retry(NoBackoff(), 0),
        "decode_responses": True, "encoding_errors": "replace", "max_connections": max(1, connections),
    }
    if scheme != "unix":
        options["socket_keepalive"] = True  # a peer that vanished is noticed by the kernel too
    if scheme not in SENTINEL_SCHEMES:
        return redis.Redis(connection_pool=redis.ConnectionPool.from_url(url, **options))
    parsed = parse_sentinel_url(url)
    sentinel_options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        parsed.sentinels, sentinel_kwargs=sentinel_options, **sentinel_options)
    if parsed.tls:
        options["ssl"] = True
    master: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        parsed.service, db=parsed.db, username=parsed.username, password=parsed.password, **options)
    return master


def close(client: redis.Redis) -> None:
    """Close every connection of ``client``'s pool (``Redis.close`` leaves a pool it was given open)."""
    client.close()
    client.connection_pool.disconnect()


def mapped(fn: Callable[[], T]) -> T:
    """``fn()``, with every redis-py error raised as a :class:`StoreError` (the boundary of the adapter)."""
    try:
        return fn()
    except redis.RedisError as exc:
        raise StoreError(f"Redis: {exc or type(exc).__name__}") from exc
