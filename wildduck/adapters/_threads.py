"""Blocking storage calls on worker threads.

Each call is one thread hop to a dedicated thread. Writes are never abandoned on cancellation: a cancelled caller
waits for its worker to finish (the cancellation is delivered at its next checkpoint), so a transaction that
started always completes or rolls back inside the worker. Reads may be abandoned (``abandon_on_cancel``): the
caller returns at once, the worker's result is dropped, and ``on_abandon`` may stop the work early (SQLite's
``interrupt``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import outcome
import trio

P = ParamSpec("P")
T = TypeVar("T")


async def wait_for_thread(start: Callable[[Callable[[outcome.Outcome[T]], None]], None], *,
                          abandon_on_cancel: bool = False, on_abandon: Callable[[], None] | None = None) -> T:
    """Call ``start(deliver)``, which hands work to another thread; that thread calls ``deliver`` with the outcome
    once. Returns the outcome's value (or raises its error). Cancellation waits for the outcome, unless
    ``abandon_on_cancel``: then the caller is cancelled at once and ``on_abandon`` is called (from this thread)."""
    token = trio.lowlevel.current_trio_token()
    task = trio.lowlevel.current_task()
    abandoned = False

    def deliver(result: outcome.Outcome[T]) -> None:
        def resume() -> None:
            if not abandoned:
                trio.lowlevel.reschedule(task, result)

        token.run_sync_soon(resume)

    def abort(_raise_cancel: Any) -> trio.lowlevel.Abort:
        nonlocal abandoned
        if not abandon_on_cancel:
            return trio.lowlevel.Abort.FAILED
        abandoned = True
        if on_abandon is not None:
            on_abandon()
        return trio.lowlevel.Abort.SUCCEEDED

    start(deliver)
    value: T = await trio.lowlevel.wait_task_rescheduled(abort)
    return value


class WorkerThreads:
    """``count`` dedicated threads that take blocking calls from one queue, in order.

    Dedicated threads rather than trio's thread cache: a job costs a queue put and one wake-up of the event loop,
    no per-job thread naming or limiter bookkeeping, and a busy thread runs queued jobs back to back.
    """

    def __init__(self, count: int, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Callable[[outcome.Outcome[Any]], None]] | None] = \
            queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._loop, name=f"{name}-{i}", daemon=True)
                         for i in range(max(1, count))]
        for thread in self._threads:
            thread.start()

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, deliver = job
            deliver(outcome.capture(fn))

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` on one of the threads. Cancellation waits for the call to finish."""
        return await wait_for_thread(lambda deliver: self._jobs.put((lambda: fn(*args, **kwargs), deliver)))

    async def run_abandonable(self, fn: Callable[[], T], on_abandon: Callable[[], None] | None = None) -> T:
        """Run ``fn()`` on one of the threads; a cancelled caller returns at once (the result is dropped and
        ``on_abandon`` may stop the work). For reads only: a write must never be abandoned."""
        return await wait_for_thread(lambda deliver: self._jobs.put((fn, deliver)), abandon_on_cancel=True,
                                     on_abandon=on_abandon)

    def stop(self) -> None:
        """Let the threads end after the queued jobs."""
        for _ in self._threads:
            self._jobs.put(None)
