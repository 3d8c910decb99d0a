"""One helper per store to run blocking storage calls in worker threads.

Each call is one thread hop. Writes are never abandoned on cancellation (``abandon_on_cancel=False``): trio waits
for the worker to finish, so a transaction that started always completes or rolls back inside the worker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

import trio

P = ParamSpec("P")
T = TypeVar("T")


class ThreadRunner:
    """Runs blocking callables in trio worker threads under a capacity limiter."""

    def __init__(self, limit: int) -> None:
        self.limiter = trio.CapacityLimiter(limit)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` in a worker thread. Cancellation waits for the call to finish."""
        if kwargs:
            return await trio.to_thread.run_sync(lambda: fn(*args, **kwargs), limiter=self.limiter)
        return await trio.to_thread.run_sync(fn, *args, limiter=self.limiter)
