"""The Counters role (rate-limit windows, connection slots as leases, named leases): every adapter must pass these.

An adapter joins by adding a parameter to ``env``: it yields the adapter and a way to move its clock forward
(every adapter takes an injected clock; nothing here sleeps). The Redis adapter runs against a private redis-server
(missing: skipped, failed in CI), each test under a key prefix of its own.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import trio

from wildduck.adapters.local.counters import LocalCounters
from wildduck.adapters.sqlite.counters import open_sqlite_counters
from wildduck.ports.counters import Counters, Window
from wildduck.testing.redis import RedisServer, private_redis

if TYPE_CHECKING:
    from wildduck.adapters.redis.counters import RedisCounters
    from wildduck.adapters.sqlite.counters import SqliteCounters


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Env:
    counters: Counters
    #: move the adapter's clock forward by this many seconds
    advance: Callable[[float], None]


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with private_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(params=["local", "sqlite", "redis"])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    kind = request.param
    clock = Clock()

    def advance(seconds: float) -> None:
        clock.now += seconds

    if kind == "local":
        yield Env(LocalCounters(clock), advance)
        return
    counters: SqliteCounters | RedisCounters
    if kind == "redis":
        from wildduck.adapters.redis.counters import open_redis_counters

        url = request.getfixturevalue("redis_server").url  # started only when a Redis test runs
        counters = await open_redis_counters(url, prefix=f"test-{secrets.token_hex(4)}:", clock=clock)
    else:
        counters = await open_sqlite_counters(tmp_path / "counters.sqlite3", clock)
    try:
        yield Env(counters, advance)
    finally:
        await counters.close()


async def test_fixed_window(env: Env) -> None:
    counters = env.counters
    assert await counters.window("k") == Window(0, 0.0)
    assert await counters.increment("k", 120) == Window(1, 120.0)
    env.advance(30)
    assert await counters.increment("k", 120) == Window(2, 90.0)  # the window does not slide
    assert await counters.window("k") == Window(2, 90.0)
    assert await counters.window("other") == Window(0, 0.0)
    env.advance(90)
    assert await counters.window("k") == Window(0, 0.0)  # closed
    assert await counters.increment("k", 60) == Window(1, 60.0)  # a new window
    await counters.reset("k")
    assert await counters.window("k") == Window(0, 0.0)


async def test_decrement_takes_one_event_back(env: Env) -> None:
    counters = env.counters
    await counters.decrement("k")  # nothing counted: nothing happens, no window opens
    assert await counters.window("k") == Window(0, 0.0)
    await counters.increment("k", 120)
    await counters.increment("k", 120)
    env.advance(20)
    await counters.decrement("k")
    assert await counters.window("k") == Window(1, 100.0)  # the window keeps its end
    await counters.decrement("k")
    await counters.decrement("k")
    assert (await counters.window("k")).count == 0  # never below 0
    assert (await counters.increment("k", 120)).count == 1


async def test_concurrent_increments_and_decrements_balance(env: Env) -> None:
    """Logins that count first and take their count back when the password was right leave nothing behind."""
    counters = env.counters
    peaks: list[int] = []

    async def login() -> None:
        peaks.append((await counters.increment("k", 120)).count)
        await counters.decrement("k")

    async with trio.open_nursery() as nursery:
        for _ in range(100):
            nursery.start_soon(login)
    assert (await counters.window("k")).count == 0
    assert max(peaks) <= 100


async def test_concurrent_increments_count_each_event_once(env: Env) -> None:
    counts: list[int] = []

    async def one() -> None:
        counts.append((await env.counters.increment("burst", 60)).count)

    async with trio.open_nursery() as n:
        for _ in range(50):
            n.start_soon(one)
    assert sorted(counts) == list(range(1, 51))


async def test_slots_are_limited_leases(env: Env) -> None:
    counters = env.counters
    a = await counters.acquire_slot("u", 2, 60)
    b = await counters.acquire_slot("u", 2, 60)
    assert a and b and a != b and await counters.slots("u") == 2
    assert await counters.acquire_slot("u", 2, 60) is None  # refused, and holds nothing
    assert await counters.slots("u") == 2
    assert await counters.acquire_slot("v", 2, 60)  # keys are independent
    await counters.release_slot("u", a)
    assert await counters.slots("u") == 1
    await counters.release_slot("u", a)  # twice: nothing happens
    await counters.release_slot("u", "not-a-token")
    assert await counters.slots("u") == 1
    c = await counters.acquire_slot("u", 2, 60)
    assert c and await counters.slots("u") == 2


async def test_an_expired_slot_is_freed_and_cannot_be_renewed(env: Env) -> None:
    counters = env.counters
    dead = await counters.acquire_slot("u", 2, 30)  # its holder dies: never renewed
    live = await counters.acquire_slot("u", 2, 30)
    assert dead and live
    env.advance(20)
    assert await counters.renew_slot("u", live, 30)  # now lives until 50
    env.advance(15)  # 35: the dead one has expired, the renewed one has not
    assert await counters.slots("u") == 1
    assert not await counters.renew_slot("u", dead, 30)  # lost
    assert await counters.slots("u") == 1
    other = await counters.acquire_slot("u", 2, 30)  # the expired slot is free again
    assert other and await counters.acquire_slot("u", 2, 30) is None
    env.advance(100)
    assert await counters.slots("u") == 0
    assert not await counters.renew_slot("u", live, 30)


async def test_slots_are_renewed_in_one_call(env: Env) -> None:
    counters = env.counters
    a = await counters.acquire_slot("u", 5, 30)
    b = await counters.acquire_slot("v", 5, 30)
    dead = await counters.acquire_slot("u", 5, 30)
    assert a and b and dead
    env.advance(20)
    assert await counters.renew_slots([("u", a), ("v", b)], 30) == [True, True]  # both now live until 50
    env.advance(15)  # 35: the one left out has expired
    assert await counters.renew_slots([("u", a), ("u", dead), ("v", "not-a-token"), ("v", b)], 30) == \
        [True, False, False, True]
    assert await counters.slots("u") == 1 and await counters.slots("v") == 1
    assert await counters.renew_slots([], 30) == []


async def test_concurrent_slot_acquisitions_never_exceed_the_limit(env: Env) -> None:
    tokens: list[str | None] = []

    async def one() -> None:
        tokens.append(await env.counters.acquire_slot("busy", 5, 60))

    async with trio.open_nursery() as n:
        for _ in range(20):
            n.start_soon(one)
    assert sum(t is not None for t in tokens) == 5 and await env.counters.slots("busy") == 5


async def test_a_lease_has_one_holder(env: Env) -> None:
    counters = env.counters
    assert await counters.acquire_lease("gc", "a", 60)
    assert not await counters.acquire_lease("gc", "b", 60)
    assert await counters.acquire_lease("other", "b", 60)  # names are independent
    await counters.release_lease("gc", "b")  # not the holder: nothing happens
    assert not await counters.acquire_lease("gc", "b", 60)
    await counters.release_lease("gc", "a")
    assert await counters.acquire_lease("gc", "b", 60)
    assert not await counters.acquire_lease("gc", "a", 60)


async def test_a_lease_expires_unless_its_owner_extends_it(env: Env) -> None:
    counters = env.counters
    assert await counters.acquire_lease("gc", "a", 30)
    env.advance(20)
    assert await counters.acquire_lease("gc", "a", 30)  # re-acquiring extends: until 50
    env.advance(20)  # 40
    assert not await counters.acquire_lease("gc", "b", 30)
    env.advance(11)  # 51: expired
    assert await counters.acquire_lease("gc", "b", 30)
    assert not await counters.acquire_lease("gc", "a", 30)
    await counters.release_lease("gc", "a")  # the old owner cannot release the new owner's lease
    assert not await counters.acquire_lease("gc", "a", 30)


async def test_concurrent_lease_acquisitions_have_one_winner(env: Env) -> None:
    won: list[str] = []

    async def one(owner: str) -> None:
        if await env.counters.acquire_lease("maintenance", owner, 60):
            won.append(owner)

    async with trio.open_nursery() as n:
        for i in range(10):
            n.start_soon(one, f"instance-{i}")
    assert len(won) == 1
