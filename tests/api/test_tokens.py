"""User access tokens (``TokenService``): sliding TTL, maximum lifetime, revocation, password change, and what the
counters hold (never the token), over the in-process counters, the node's SQLite counters file and Redis (the
scaled-out deployment's counters: the session's redis-server)."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.adapters.test_counters import Clock
from wildduck.adapters.local.counters import LocalCounters
from wildduck.adapters.sqlite import open_sqlite_store
from wildduck.adapters.sqlite.counters import open_sqlite_counters
from wildduck.domain.tokens import TokenPolicy, TokenService, token_fingerprint
from wildduck.domain.users import UserService
from wildduck.model import User
from wildduck.testing.redis import RedisServer

POLICY = TokenPolicy(ttl=100.0, lifetime=1000.0)


@dataclass
class Env:
    users: UserService
    tokens: TokenService
    clock: Clock
    user: User
    counters: Any
    kind: str


@pytest.fixture(params=["local", "sqlite", "redis"])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    store = await open_sqlite_store(tmp_path / "wd.db")
    clock = Clock()
    shared = await open_sqlite_counters(tmp_path / "counters.sqlite3", clock)
    counters: Any = LocalCounters(clock) if request.param == "local" else shared
    if request.param == "redis":
        from wildduck.adapters.redis.counters import open_redis_counters

        server: RedisServer = request.getfixturevalue("session_redis")
        counters = await open_redis_counters(server.url, prefix=f"tokens-{secrets.token_hex(4)}:", clock=clock)
    users = UserService(store, email_domain="example.com")
    try:
        user = await users.create("alice", "secret-pass")
        yield Env(users, TokenService(users, counters, POLICY, clock=clock), clock, user, counters, request.param)
    finally:
        if request.param == "redis":
            await counters.close()
        await shared.close()
        await store.close()


async def test_each_use_extends_the_ttl(env: Env) -> None:
    token = await env.tokens.issue(env.user)
    for _ in range(5):  # 5 x 80 s: beyond one TTL in all, but never 100 s unused
        env.clock.now += 80
        use = await env.tokens.check(token)
        assert use is not None and use.user.id == env.user.id
    env.clock.now += 101
    assert await env.tokens.check(token) is None


async def test_a_token_ends_at_its_lifetime_however_often_it_is_used(env: Env) -> None:
    token = await env.tokens.issue(env.user)
    for _ in range(11):
        env.clock.now += 90
        assert await env.tokens.check(token) is not None
    env.clock.now += 10  # 1000 s after issue
    assert await env.tokens.check(token) is None


async def test_revoked_and_password_changed_tokens_are_refused(env: Env) -> None:
    first, second = await env.tokens.issue(env.user), await env.tokens.issue(env.user)
    use = await env.tokens.check(first)
    assert use is not None
    await env.tokens.revoke(use)
    assert await env.tokens.check(first) is None
    assert await env.tokens.check(second) is not None
    await env.users.set_password(env.user, "another-pass")
    assert await env.tokens.check(second) is None


async def test_malformed_tokens_are_refused(env: Env) -> None:
    for bad in ("", "x", "a" * 40, "." * 3, "6b0f02f1868429e259842015.1.2.3",
                "6b0f02f1868429e259842015.1800000000." + "0" * 40 + "." + "0" * 16):
        assert await env.tokens.check(bad) is None


async def test_the_counters_never_hold_the_token(env: Env, tmp_path: Path) -> None:
    token = await env.tokens.issue(env.user)
    _user, _issued, secret, _lease = token.split(".")
    if env.kind == "local":
        kept = repr(env.counters._slots)
    elif env.kind == "redis":  # every key of the prefix, and what each holds
        import redis

        client = redis.Redis.from_url(env.counters.url)
        keys = client.keys(env.counters.prefix + "*")
        kept = repr([(key, client.zrange(key, 0, -1, withscores=True) if client.type(key) == b"zset"
                      else client.dump(key)) for key in keys])
        client.close()
    else:
        with sqlite3.connect(tmp_path / "counters.sqlite3") as conn:
            kept = repr(conn.execute("SELECT * FROM slots").fetchall())
    assert "api-token:" in kept
    assert secret not in kept and token not in kept
    assert token_fingerprint(token) == hashlib.sha256(token.encode()).hexdigest()[:12]


async def test_a_token_works_in_every_process_sharing_the_counters_file(tmp_path: Path) -> None:
    store = await open_sqlite_store(tmp_path / "wd.db")
    a = await open_sqlite_counters(tmp_path / "counters.sqlite3")
    b = await open_sqlite_counters(tmp_path / "counters.sqlite3")
    try:
        users = UserService(store, email_domain="example.com")
        user = await users.create("alice", "secret-pass")
        token = await TokenService(users, a).issue(user)
        assert await TokenService(users, b).check(token) is not None
    finally:
        await a.close()
        await b.close()
        await store.close()
