"""Worker threads: results, exceptions, cancellation that waits for the worker, a bounded number of threads."""

from __future__ import annotations

import threading
import time

import pytest
import trio
import trio.lowlevel

from wildduck.adapters._threads import WorkerThreads


async def test_result_exception_and_thread() -> None:
    runner = WorkerThreads(2, "test")
    main = threading.get_ident()
    assert await runner.run(lambda a, b=0: (a + b, threading.get_ident() != main), 1, b=2) == (3, True)
    with pytest.raises(ZeroDivisionError):
        await runner.run(lambda: 1 / 0)


async def test_cancellation_waits_for_the_worker() -> None:
    runner = WorkerThreads(1, "test")
    done = []

    def slow() -> str:
        time.sleep(0.3)
        done.append(True)
        return "committed"

    results = []
    with trio.move_on_after(0.05) as scope:
        results.append(await runner.run(slow))  # the call finishes and its result is delivered...
        await trio.lowlevel.checkpoint()  # ...and the cancellation takes effect at the next checkpoint
    assert scope.cancelled_caught and done == [True] and results == ["committed"]


async def test_thread_count_bounds_concurrency() -> None:
    runner = WorkerThreads(2, "test")
    active, peak = 0, 0
    lock = threading.Lock()

    def job() -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.02)
        with lock:
            active -= 1

    async with trio.open_nursery() as n:
        for _ in range(10):
            n.start_soon(runner.run, job)
    assert peak <= 2
