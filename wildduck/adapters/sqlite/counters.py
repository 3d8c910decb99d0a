"""The ``Counters`` role on SQLite, for the single node: rate-limit windows live in the database, so every process
on the machine shares them (``wildduck user unlock`` in a shell clears a lockout the running server counted, and a
lockout survives a restart); connection slots and leases stay in the process (``LocalCounters``), because they
belong to the process that holds them and end with it.

Windows are kept in wall-clock seconds (``time.time``, injectable), the one clock every process agrees on. Each
``increment`` is one write transaction (its read and its write inside it, so concurrent increments from any
process count each event exactly once); ``window`` is one read.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from wildduck.adapters.local.counters import LocalCounters
from wildduck.adapters.sqlite.base import StoreBase
from wildduck.ports.counters import Window

#: expired windows are deleted every this many increments
_SWEEP_EVERY = 256


class CountersRole(StoreBase):
    """``Counters``: fixed windows in the ``rate_windows`` table; slots and leases in-process."""

    #: the clock of the windows (seconds since the epoch), also the slots' and leases'; tests replace it
    counters_clock: Callable[[], float] = time.time
    _local_counters: LocalCounters | None = None
    _increments = 0

    @property
    def _in_process(self) -> LocalCounters:
        if self._local_counters is None:
            self._local_counters = LocalCounters(lambda: self.counters_clock())
        return self._local_counters

    async def window(self, key: str) -> Window:
        """The current count of ``key`` (0 once its window has closed)."""
        clock = self.counters_clock

        def q(conn: sqlite3.Connection) -> Window:
            now = clock()
            row = conn.execute("SELECT count, closes FROM rate_windows WHERE key = ? AND closes > ?",
                               (key, now)).fetchone()
            return Window(row[0], row[1] - now) if row else Window(0, 0.0)

        return await self._read(q)

    async def increment(self, key: str, window: float) -> Window:
        """Count one event and return the count including it (the first event opens a window of ``window``
        seconds). Cancellation: the increment is committed anyway."""
        clock = self.counters_clock
        self._increments += 1
        sweep = self._increments % _SWEEP_EVERY == 0

        def tx(conn: sqlite3.Connection) -> Window:
            now = clock()
            if sweep:
                conn.execute("DELETE FROM rate_windows WHERE closes <= ?", (now,))
            row = conn.execute("SELECT count, closes FROM rate_windows WHERE key = ? AND closes > ?",
                               (key, now)).fetchone()
            count, closes = (row[0] + 1, row[1]) if row else (1, now + window)
            conn.execute("INSERT OR REPLACE INTO rate_windows (key, count, closes) VALUES (?, ?, ?)",
                         (key, count, closes))
            return Window(count, closes - now)

        return await self._write(tx)

    async def reset(self, key: str) -> None:
        """Close the window of ``key`` (its count is 0 again)."""
        def tx(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM rate_windows WHERE key = ?", (key,))

        await self._write(tx)

    async def acquire_slot(self, key: str, limit: int, ttl: float) -> str | None:
        """One of ``limit`` slots of ``key`` held by this process for ``ttl`` seconds, or None."""
        return await self._in_process.acquire_slot(key, limit, ttl)

    async def renew_slot(self, key: str, token: str, ttl: float) -> bool:
        return await self._in_process.renew_slot(key, token, ttl)

    async def release_slot(self, key: str, token: str) -> None:
        await self._in_process.release_slot(key, token)

    async def slots(self, key: str) -> int:
        """Slots of ``key`` this process holds now."""
        return await self._in_process.slots(key)

    async def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        """Take or extend the lease ``name`` (in this process) for ``ttl`` seconds."""
        return await self._in_process.acquire_lease(name, owner, ttl)

    async def release_lease(self, name: str, owner: str) -> None:
        await self._in_process.release_lease(name, owner)


if TYPE_CHECKING:
    from wildduck.ports.counters import Counters

    def _fills_the_role(c: CountersRole) -> Counters:
        """mypy checks here that ``CountersRole`` implements the port."""
        return c
