"""The PubSub role: typed nudges, bounded lossy fan-out, one Resync after a loss. Every adapter must pass these;
an adapter joins by adding a parameter to ``make_pubsub``.

Redis runs twice, against a private redis-server (missing: skipped, failed in CI): ``redis``, one instance that
publishes and subscribes, and ``redis-pair``, two instances (two connections, as two servers would have) where
every nudge goes through Redis: it is published on one and received on the other, ``publish`` returning once the
other has it (``flush`` and ``sync``: no timing).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager

import pytest
import trio
import trio.testing

from tests.adapters.test_counters import redis_server  # noqa: F401 - the fixture, one server per module
from wildduck.adapters.local.pubsub import LocalPubSub
from wildduck.model import Nudge, Resync
from wildduck.ports.pubsub import PubSub, Subscription

MakePubSub = Callable[[int], Awaitable[PubSub]]


class PublishThroughRedis:
    """A ``PubSub`` that publishes on instance ``a`` and subscribes on instance ``b``."""

    def __init__(self, a: PubSub, b: PubSub) -> None:
        from wildduck.adapters.redis.pubsub import RedisPubSub

        assert isinstance(a, RedisPubSub) and isinstance(b, RedisPubSub)
        self.a, self.b = a, b

    async def publish(self, channel: str, nudge: Nudge) -> None:
        await self.a.publish(channel, nudge)
        assert await self.a.flush()  # Redis has it
        assert await self.b.sync()  # and so do b's subscribers

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[Subscription]:
        return self.b.subscribe(channel)

    async def aclose(self) -> None:
        await self.a.aclose()
        await self.b.aclose()


@pytest.fixture(params=["local", "redis", "redis-pair"])
async def make_pubsub(request: pytest.FixtureRequest) -> AsyncIterator[MakePubSub]:
    """A factory of pub/sub adapters with a given subscriber buffer size."""
    kind = request.param
    made: list[PubSub] = []
    prefix = f"test-{secrets.token_hex(4)}:"

    async def make(size: int) -> PubSub:
        if kind == "local":
            return LocalPubSub(buffer_size=size)
        from wildduck.adapters.redis.pubsub import open_redis_pubsub

        url = request.getfixturevalue("redis_server").url  # started only when a Redis test runs
        instances = [await open_redis_pubsub(url, prefix=prefix, buffer_size=size) for _ in range(2)]
        made.extend(instances)
        with trio.fail_after(30):
            for ps in instances:
                await ps.wait_connected()
        return instances[0] if kind == "redis" else PublishThroughRedis(*instances)

    yield make
    for ps in made:
        await ps.aclose()


def drain(sub: Subscription) -> list[Nudge | Resync]:
    items: list[Nudge | Resync] = []
    while True:
        try:
            items.append(sub.receive_nowait())
        except trio.WouldBlock:
            return items


def nudge(i: int) -> Nudge:
    return Nudge("m", modseq=i, origin="o")


async def test_fan_out_and_isolation(make_pubsub: MakePubSub) -> None:
    ps = await make_pubsub(16)
    async with ps.subscribe("a") as s1, ps.subscribe("a") as s2, ps.subscribe("b") as s3:
        await ps.publish("a", nudge(1))
        await ps.publish("a", Nudge("gone", gone=True))
        assert drain(s1) == drain(s2) == [nudge(1), Nudge("gone", gone=True)]
        assert drain(s3) == []
    await ps.aclose()


async def test_the_alarm_hears_each_nudge_as_it_is_queued(make_pubsub: MakePubSub) -> None:
    ps = await make_pubsub(16)
    heard: list[Nudge] = []
    async with ps.subscribe("a") as sub, ps.subscribe("b") as other:
        sub.alarm = heard.append
        await ps.publish("a", nudge(1))
        await ps.publish("b", nudge(2))
        await ps.publish("a", Nudge("gone", gone=True))
        assert drain(sub) == heard == [nudge(1), Nudge("gone", gone=True)]
        assert drain(other) == [nudge(2)]
    await ps.aclose()


async def test_overflow_gives_one_resync_before_later_nudges(make_pubsub: MakePubSub) -> None:
    ps = await make_pubsub(4)
    async with ps.subscribe("c") as sub:
        for i in range(10):
            await ps.publish("c", nudge(i))
        assert sub.receive_nowait() == nudge(0)  # room for one more: but the loss is reported first
        await ps.publish("c", nudge(10))
        await ps.publish("c", nudge(11))  # full again: lost too, counted on the marker still queued
        assert drain(sub) == [nudge(1), nudge(2), nudge(3), Resync(lost=7), nudge(10)]
        await ps.publish("c", nudge(12))
        assert drain(sub) == [nudge(12)]  # no loss since: no marker
    await ps.aclose()


async def test_async_iteration_sees_the_resync_too(make_pubsub: MakePubSub) -> None:
    ps = await make_pubsub(2)
    got: list[Nudge | Resync] = []
    async with ps.subscribe("d") as sub:
        for i in range(5):
            await ps.publish("d", nudge(i))
        with trio.fail_after(5):
            async for item in sub:
                got.append(item)
                if len(got) == 3:
                    await ps.publish("d", nudge(5))
                if len(got) == 4:
                    break
    assert got == [nudge(0), nudge(1), Resync(lost=3), nudge(5)]
    await ps.aclose()


async def test_close_ends_subscriptions(make_pubsub: MakePubSub) -> None:
    ps = await make_pubsub(16)
    got: list[Nudge | Resync] = []

    async def reader(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with ps.subscribe("e") as sub:
            task_status.started()
            async for item in sub:
                got.append(item)

    with trio.fail_after(5):
        async with trio.open_nursery() as n:
            await n.start(reader)
            await ps.publish("e", nudge(1))
            await trio.testing.wait_all_tasks_blocked()
            await ps.aclose()
    assert got == [nudge(1)]


async def test_a_waiting_subscriber_wakes_for_each_nudge(make_pubsub: MakePubSub) -> None:
    ps = await make_pubsub(16)
    got: list[Nudge | Resync] = []
    async with ps.subscribe("f") as sub:
        async def reader() -> None:
            async for item in sub:
                got.append(item)
                if len(got) == 3:
                    return

        with trio.fail_after(5):
            async with trio.open_nursery() as n:
                n.start_soon(reader)
                for i in range(3):
                    await trio.testing.wait_all_tasks_blocked()
                    await ps.publish("f", nudge(i))
    assert got == [nudge(0), nudge(1), nudge(2)]
    await ps.aclose()
