"""The ``Counters`` role: rate-limit windows, connection slots and maintenance leases shared by every instance of
the deployment (in-process for the single node, Redis when scaled out).

Contracts (tested by the conformance suite):

* ``increment`` is the atomic primitive: count first, then decide. N concurrent increments yield the counts
  1..N, each exactly once, so a limit checked on the returned count can never be overrun.
* A connection slot is a lease with a TTL: an instance that dies without releasing its slots loses them within
  ``ttl`` seconds; a live holder renews (``renew_slot``) well before the TTL runs out.
* A named lease (``acquire_lease``) is held by one owner at a time; maintenance jobs run under one, so that only
  one instance does them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Window:
    """A fixed-window counter: ``count`` events since the window opened, ``retry_after`` seconds until it closes
    (0 when no window is open)."""

    count: int
    retry_after: float


class Counters(Protocol):
    async def window(self, key: str) -> Window:
        """The current count of ``key`` (0 once its window has closed)."""
        ...

    async def increment(self, key: str, window: float) -> Window:
        """Count one event atomically and return the count including it; the first event opens a window of
        ``window`` seconds."""
        ...

    async def decrement(self, key: str) -> None:
        """Take back one event counted by ``increment`` in the open window (never below 0; no window opens)."""
        ...

    async def reset(self, key: str) -> None:
        ...

    async def acquire_slot(self, key: str, limit: int, ttl: float) -> str | None:
        """Take one of ``limit`` slots of ``key`` for ``ttl`` seconds: a token, or None when all are held."""
        ...

    async def renew_slot(self, key: str, token: str, ttl: float) -> bool:
        """Extend a held slot by ``ttl`` seconds from now; False if it had expired (and was lost)."""
        ...

    async def renew_slots(self, held: Sequence[tuple[str, str]], ttl: float) -> list[bool]:
        """:meth:`renew_slot` for each ``(key, token)``, in one round trip to the counters' server."""
        ...

    async def release_slot(self, key: str, token: str) -> None:
        ...

    async def slots(self, key: str) -> int:
        """Slots of ``key`` held (unexpired) right now."""
        ...

    async def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        """Take the lease ``name`` for ``ttl`` seconds, or extend it if ``owner`` holds it already; False while
        another owner holds it."""
        ...

    async def release_lease(self, name: str, owner: str) -> None:
        """Give the lease up (nothing happens unless ``owner`` holds it)."""
        ...
