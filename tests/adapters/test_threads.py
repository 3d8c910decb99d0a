"""Worker threads: results, exceptions, cancellation that waits for the worker, a bounded number of threads."""

from __future__ import annotations

import threading
import time
from pathlib import Path

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


async def test_abandoned_read_returns_at_once_and_is_interrupted() -> None:
    """A cancelled read does not hold its caller (a client that went away) until the worker finishes."""
    runner = WorkerThreads(1, "test")
    release = threading.Event()
    interrupted = []

    def blocked() -> str:
        release.wait(30)
        return "late"

    with trio.move_on_after(0.05) as scope:
        await runner.run_abandonable(blocked, lambda: interrupted.append(True))
    assert scope.cancelled_caught and interrupted == [True] and not release.is_set()
    release.set()
    assert await runner.run(lambda: "next") == "next"  # the thread goes on with the next job
    runner.stop()


async def test_cancelled_sqlite_read_is_interrupted(tmp_path: Path) -> None:
    from wildduck.adapters.sqlite import open_sqlite_store

    store = await open_sqlite_store(tmp_path / "i.db", readers=1)
    try:
        # a query that runs for a long time unless interrupted
        slow = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000000000) "
                "SELECT count(*) FROM n")
        with trio.move_on_after(0.2) as scope:
            await store._read(lambda conn: conn.execute(slow).fetchone())
        assert scope.cancelled_caught
        # the reader connection was interrupted and handed back clean: the next read works at once
        with trio.fail_after(10):
            assert await store._read(lambda conn: conn.execute("SELECT 42").fetchone()[0]) == 42
    finally:
        await store.close()
