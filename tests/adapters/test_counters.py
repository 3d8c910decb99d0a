"""The Counters role (rate-limit windows, connection slots): every adapter must pass these."""

from __future__ import annotations

import pytest

from wildduck.adapters.local.counters import LocalCounters
from wildduck.ports.counters import Window


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["local"])
def counters(request: pytest.FixtureRequest, clock: Clock) -> LocalCounters:
    return LocalCounters(clock)


async def test_fixed_window(counters: LocalCounters, clock: Clock) -> None:
    assert await counters.window("k") == Window(0, 0.0)
    assert await counters.increment("k", 120) == Window(1, 120.0)
    clock.now += 30
    assert await counters.increment("k", 120) == Window(2, 90.0)  # the window does not slide
    assert await counters.window("k") == Window(2, 90.0)
    assert await counters.window("other") == Window(0, 0.0)
    clock.now += 90
    assert await counters.window("k") == Window(0, 0.0)  # closed
    assert await counters.increment("k", 60) == Window(1, 60.0)  # a new window
    await counters.reset("k")
    assert await counters.window("k") == Window(0, 0.0)


async def test_connection_slots(counters: LocalCounters) -> None:
    async with counters.connection("u", 2) as a, counters.connection("u", 2) as b:
        assert a and b and await counters.connections("u") == 2
        async with counters.connection("u", 2) as c:
            assert not c and await counters.connections("u") == 2  # refused, and holds nothing
        async with counters.connection("v", 2) as d:
            assert d
    assert await counters.connections("u") == 0
    with pytest.raises(RuntimeError):
        async with counters.connection("u", 1) as e:
            assert e
            raise RuntimeError("the slot is released even when the session fails")
    assert await counters.connections("u") == 0
