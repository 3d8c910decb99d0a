from __future__ import annotations

import trio

from wildduck.adapters.local.pubsub import LocalPubSub


async def test_fan_out_and_isolation() -> None:
    ps = LocalPubSub()
    async with ps.subscribe("a") as s1, ps.subscribe("a") as s2, ps.subscribe("b") as s3:
        await ps.publish("a", "x")
        assert s1.receive_nowait() == "x" and s2.receive_nowait() == "x"
        try:
            s3.receive_nowait()
            raise AssertionError("channel b got a's message")
        except trio.WouldBlock:
            pass
    assert ps.subscriber_count("a") == 0
    await ps.aclose()


async def test_overflow_drops_and_counts_instead_of_growing() -> None:
    ps = LocalPubSub(buffer_size=4)
    async with ps.subscribe("c") as sub:
        for i in range(10):
            await ps.publish("c", str(i))
        assert sub.dropped == 6
        assert [sub.receive_nowait() for _ in range(4)] == ["0", "1", "2", "3"]
    await ps.aclose()


async def test_close_ends_subscriptions() -> None:
    ps = LocalPubSub()
    got: list[str] = []

    async def reader(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with ps.subscribe("d") as sub:
            task_status.started()
            async for item in sub:
                got.append(item)

    with trio.fail_after(5):
        async with trio.open_nursery() as n:
            await n.start(reader)
            await ps.publish("d", "1")
            await trio.testing.wait_all_tasks_blocked()
            await ps.aclose()
    assert got == ["1"]
