"""The ``Counters`` role on SQLite, for the single node with several processes (``wildduck serve --workers N``, the
administrative CLI): rate-limit windows, connection slots and named leases in a small database file of their own
beside the store, so that every process of the node shares them.

Counters are soft state: they live in their own file (``counters.sqlite3``), not in the mail store, so a login never
waits behind a message write and no count costs an fsync (WAL with ``synchronous = NORMAL``: a commit is consistent,
only a power loss may forget the last ones, which is harmless for a failed-login window or a slot that expires by
itself). The tables are created if missing; there is nothing to migrate.

Each method is one transaction on the counters' own thread, its reads and writes inside ``BEGIN IMMEDIATE`` (the
file's write lock, taken after the ``flock`` of ``writer.FileLock`` as the store's writer does), so concurrent calls
from any number of processes are atomic: N increments give the counts 1..N, and no more than ``limit`` slots are
ever held. Times are wall-clock seconds (``time.time``, injectable), the one
clock every process agrees on. A slot or lease of a process that died is gone when its TTL runs out.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import trio

from wildduck.adapters._threads import WorkerThreads
from wildduck.adapters.sqlite.base import mapped
from wildduck.adapters.sqlite.writer import FileLock
from wildduck.ports.counters import Window

T = TypeVar("T")

#: expired windows and slots are deleted every this many writes
_SWEEP_EVERY = 256
#: how long a call waits for another process's transaction on the file, in milliseconds
_BUSY_TIMEOUT_MS = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rate_windows (key TEXT PRIMARY KEY, count INTEGER NOT NULL, closes REAL NOT NULL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS slots (key TEXT NOT NULL, token TEXT NOT NULL, expires REAL NOT NULL,
    PRIMARY KEY (key, token)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL) WITHOUT ROWID
"""


class SqliteCounters:
    """``Counters`` in one SQLite file shared by every process that opens it."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        #: the clock of windows, slots and leases (seconds since the epoch); tests replace it
        self.clock = clock
        self._thread = WorkerThreads(1, "wildduck-counters")
        self._conn: sqlite3.Connection | None = None
        self._lock: FileLock | None = None
        self._writes = 0

    async def open(self) -> None:
        def connect() -> None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = FileLock(f"{self.path}.lock")
            # under the lock: several processes creating the file at once would make SQLite refuse the switch to
            # WAL of all but one ("database is locked", without waiting)
            with self._lock:
                conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                       timeout=_BUSY_TIMEOUT_MS / 1000)
                conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute("PRAGMA wal_autocheckpoint = 0")  # checkpoints (fsyncs) run on the thread: see _tx
                conn.executescript(_SCHEMA)
            self._conn = conn

        await self._thread.run(lambda: mapped(connect))

    async def close(self) -> None:
        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._lock is not None:
                self._lock.close()
                self._lock = None

        await self._thread.run(close)
        self._thread.stop()

    async def _tx(self, fn: Callable[[sqlite3.Connection, float], T]) -> T:
        """Run ``fn(connection, now)`` in one write transaction. Cancellation waits for it to commit.

        A counter transaction is a few indexed rows (about 20 µs) where a hop to a thread and back costs about
        100 µs, and a login makes several. So when the lock is free (no other thread or process is in a counter
        transaction: nothing to wait for) it runs right here, on the event loop's thread; otherwise, or when it is
        time for a WAL checkpoint (an fsync), on the counters' thread."""
        self._writes += 1
        sweep = self._writes % _SWEEP_EVERY == 0
        conn, lock = self._conn, self._lock
        assert conn is not None and lock is not None, "counters are not open"
        if not sweep and lock.try_acquire():
            try:
                result = mapped(lambda: self._locked(conn, fn, sweep=False))
            finally:
                lock.__exit__()
            await trio.lowlevel.checkpoint()
            return result

        def tx() -> T:
            with lock:  # see writer.py: a blocked process wakes when the holder is done, SQLite's lock is free
                result = self._locked(conn, fn, sweep=sweep)
                if sweep:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                return result

        return await self._thread.run(lambda: mapped(tx))

    def _locked(self, conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection, float], T], *, sweep: bool) -> T:
        conn.execute("BEGIN IMMEDIATE")
        try:
            now = self.clock()
            if sweep:
                conn.execute("DELETE FROM rate_windows WHERE closes <= ?", (now,))
                conn.execute("DELETE FROM slots WHERE expires <= ?", (now,))
            result = fn(conn, now)
            conn.execute("COMMIT")
            return result
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def window(self, key: str) -> Window:
        """The current count of ``key`` (0 once its window has closed)."""
        def q(conn: sqlite3.Connection, now: float) -> Window:
            row = conn.execute("SELECT count, closes FROM rate_windows WHERE key = ? AND closes > ?",
                               (key, now)).fetchone()
            return Window(row[0], row[1] - now) if row else Window(0, 0.0)

        return await self._tx(q)

    async def increment(self, key: str, window: float) -> Window:
        """Count one event and return the count including it (the first event opens a window of ``window``
        seconds). Cancellation: the increment is committed anyway."""
        def tx(conn: sqlite3.Connection, now: float) -> Window:
            row = conn.execute("SELECT count, closes FROM rate_windows WHERE key = ? AND closes > ?",
                               (key, now)).fetchone()
            count, closes = (row[0] + 1, row[1]) if row else (1, now + window)
            conn.execute("INSERT OR REPLACE INTO rate_windows (key, count, closes) VALUES (?, ?, ?)",
                         (key, count, closes))
            return Window(count, closes - now)

        return await self._tx(tx)

    async def decrement(self, key: str) -> None:
        """Take back one event of the open window of ``key`` (never below 0)."""
        await self._tx(lambda conn, now: conn.execute(
            "UPDATE rate_windows SET count = count - 1 WHERE key = ? AND closes > ? AND count > 0", (key, now)))

    async def reset(self, key: str) -> None:
        """Close the window of ``key`` (its count is 0 again)."""
        await self._tx(lambda conn, _now: conn.execute("DELETE FROM rate_windows WHERE key = ?", (key,)))

    async def acquire_slot(self, key: str, limit: int, ttl: float) -> str | None:
        """One of ``limit`` slots of ``key`` for ``ttl`` seconds (a token), or None while all are held."""
        def tx(conn: sqlite3.Connection, now: float) -> str | None:
            conn.execute("DELETE FROM slots WHERE key = ? AND expires <= ?", (key, now))
            held = conn.execute("SELECT COUNT(*) FROM slots WHERE key = ?", (key,)).fetchone()[0]
            if held >= limit:
                return None
            token = secrets.token_hex(8)
            conn.execute("INSERT INTO slots (key, token, expires) VALUES (?, ?, ?)", (key, token, now + ttl))
            return token

        return await self._tx(tx)

    async def renew_slot(self, key: str, token: str, ttl: float) -> bool:
        """Extend a held slot to ``ttl`` seconds from now; False if it had expired (the slot is lost)."""
        return (await self.renew_slots([(key, token)], ttl))[0]

    async def renew_slots(self, held: Sequence[tuple[str, str]], ttl: float) -> list[bool]:
        """Every renewal in one transaction."""
        def tx(conn: sqlite3.Connection, now: float) -> list[bool]:
            return [conn.execute("UPDATE slots SET expires = ? WHERE key = ? AND token = ? AND expires > ?",
                                 (now + ttl, key, token, now)).rowcount == 1 for key, token in held]

        return await self._tx(tx) if held else []

    async def release_slot(self, key: str, token: str) -> None:
        await self._tx(lambda conn, _now: conn.execute("DELETE FROM slots WHERE key = ? AND token = ?", (key, token)))

    async def slots(self, key: str) -> int:
        """Slots of ``key`` held (unexpired) now, by any process."""
        def q(conn: sqlite3.Connection, now: float) -> int:
            return int(conn.execute("SELECT COUNT(*) FROM slots WHERE key = ? AND expires > ?",
                                    (key, now)).fetchone()[0])

        return await self._tx(q)

    async def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        """Take or extend the lease ``name`` for ``ttl`` seconds; False while another owner holds it."""
        def tx(conn: sqlite3.Connection, now: float) -> bool:
            row = conn.execute("SELECT owner, expires FROM leases WHERE name = ?", (name,)).fetchone()
            if row is not None and row[0] != owner and row[1] > now:
                return False
            conn.execute("INSERT OR REPLACE INTO leases (name, owner, expires) VALUES (?, ?, ?)",
                         (name, owner, now + ttl))
            return True

        return await self._tx(tx)

    async def release_lease(self, name: str, owner: str) -> None:
        """Give the lease up if ``owner`` holds it; otherwise nothing happens."""
        await self._tx(lambda conn, _now: conn.execute("DELETE FROM leases WHERE name = ? AND owner = ?",
                                                       (name, owner)))


async def open_sqlite_counters(path: Path, clock: Callable[[], float] = time.time) -> SqliteCounters:
    """Open (creating if needed) the counters file at ``path``."""
    counters = SqliteCounters(path, clock)
    await counters.open()
    return counters


if TYPE_CHECKING:
    from wildduck.ports.counters import Counters

    def _fills_the_role(c: SqliteCounters) -> Counters:
        """mypy checks here that ``SqliteCounters`` implements the port."""
        return c
