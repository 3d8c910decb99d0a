"""One helper per store to run blocking storage calls in worker threads.

Each call is one thread hop, taken through trio's thread cache directly (``trio.lowlevel.start_thread_soon``):
``trio.to_thread.run_sync`` would also rename the OS thread for every job, which costs more than many of our
queries. Calls are never abandoned on cancellation: a cancelled caller waits for its worker to finish (the
cancellation is delivered at its next checkpoint), so a transaction that started always completes or rolls back
inside the worker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import trio

if TYPE_CHECKING:
    import outcome

P = ParamSpec("P")
T = TypeVar("T")


def _never_abort(_raise_cancel: Any) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.FAILED


async def wait_for_thread(start: Callable[[Callable[[outcome.Outcome[T]], None]], None]) -> T:
    """Call ``start(deliver)``, which hands work to another thread; that thread calls ``deliver`` with the outcome
    once. Returns the outcome's value (or raises its error). Cancellation waits for the outcome."""
    token = trio.lowlevel.current_trio_token()
    task = trio.lowlevel.current_task()

    def deliver(result: outcome.Outcome[T]) -> None:
        token.run_sync_soon(trio.lowlevel.reschedule, task, result)

    start(deliver)
    value: T = await trio.lowlevel.wait_task_rescheduled(_never_abort)
    return value


class ThreadRunner:
    """Runs blocking callables in trio worker threads under a capacity limiter."""

    def __init__(self, limit: int) -> None:
        self.limiter = trio.CapacityLimiter(limit)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` in a worker thread. Cancellation waits for the call to finish."""
        async with self.limiter:
            return await wait_for_thread(
                lambda deliver: trio.lowlevel.start_thread_soon(lambda: fn(*args, **kwargs), deliver))
