"""Connections, transactions and error mapping shared by every role of the SQLite store.

One writer connection on its own thread (group commit, ``writer.py``) and a pool of reader connections on worker
threads. Each port method is one thread hop and one transaction: ``_write`` for a write transaction, ``_read`` for a
read transaction (a consistent snapshot of the WAL database).
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from wildduck import metrics
from wildduck.adapters._threads import WorkerThreads
from wildduck.adapters.sqlite.schema import migrate
from wildduck.adapters.sqlite.writer import FileLock, GroupCommitWriter
from wildduck.errors import AlreadyExists, StoreError

T = TypeVar("T")

_BUSY_TIMEOUT_MS = 30_000
def mapped(fn: Callable[[], T]) -> T:
    """Run ``fn``, turning driver errors into ``StoreError`` (a unique constraint into ``AlreadyExists``)."""
    try:
        return fn()
    except sqlite3.IntegrityError as exc:
        if "UNIQUE" in str(exc):
            raise AlreadyExists(str(exc)) from exc
        raise StoreError(f"integrity error: {exc}") from exc
    except sqlite3.Error as exc:
        raise StoreError(f"sqlite: {exc}") from exc


class StoreBase:
    """The database file and its connections; every role mixin of ``SqliteStore`` builds on it."""

    def __init__(self, path: Path, *, synchronous: str, readers: int, fsync_all: bool = False) -> None:
        if synchronous not in ("full", "normal"):
            raise ValueError(f"synchronous must be 'full' or 'normal', not {synchronous!r}")
        self.path = path
        self.synchronous = synchronous
        self._write_lock: FileLock | None = None
        self._group_writer = GroupCommitWriter(lambda: self._writer, mapped, lambda: self._write_lock,
                                               relaxed=synchronous == "full" and not fsync_all)
        self._reader_count = max(1, readers)
        self._reader_threads = WorkerThreads(self._reader_count, "wildduck-sqlite-reader")
        self._writer: sqlite3.Connection | None = None
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all: list[sqlite3.Connection] = []

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                               timeout=_BUSY_TIMEOUT_MS / 1000)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
        conn.execute("PRAGMA foreign_keys = ON")
        self._all.append(conn)
        return conn

    def _open_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = FileLock(f"{self.path}.lock")
        with self._write_lock:  # two processes opening a new file must not both switch it to WAL or migrate it
            self._writer = self._connect()
            migrate(self._writer)
        for _ in range(self._reader_count):
            self._readers.put(self._connect())

    async def open(self) -> None:
        """Open the connections and bring the schema up to date (StoreError if the file cannot be used)."""
        try:
            await self._group_writer.call(self._open_sync)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        except StoreError as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from None

    async def close(self) -> None:
        """Close every connection (after the running calls finish) and end the threads."""
        def close_all() -> None:
            for conn in self._all:
                conn.close()
            self._all.clear()
            self._writer = None
            if self._write_lock is not None:
                self._write_lock.close()
                self._write_lock = None

        await self._group_writer.call(close_all)
        await self._group_writer.stop()
        self._reader_threads.stop()

    async def _write(self, fn: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> T:
        """Run ``fn`` in a write transaction on the writer connection; returns once it is committed (possibly
        together with other writers' transactions: see ``writer.py``). ``durable=False``: for a change that only
        sets flags or removes messages, which may reach the disk with the next durable commit (``writer.py``).

        Cancellation: the transaction runs to its end (commit or rollback) on the writer thread.
        """
        with metrics.STORE_CALLS.labels("write").time():
            return await self._group_writer.transaction(fn, durable=durable)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on a reader connection inside one read transaction (a consistent snapshot).

        Cancellation abandons the read at once and interrupts its query (a cancelled SEARCH stops using CPU)."""
        using: list[sqlite3.Connection] = []
        guard = threading.Lock()  # an interrupt reaches this call's connection only while this call uses it

        def tx() -> T:
            conn = self._readers.get()
            with guard:
                using.append(conn)
            try:
                conn.execute("BEGIN")
                try:
                    return fn(conn)
                finally:
                    conn.execute("COMMIT")
            finally:
                with guard:
                    using.clear()
                if conn.in_transaction:  # an interrupted COMMIT
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                self._readers.put(conn)

        def interrupt() -> None:
            with guard:
                for conn in using:
                    conn.interrupt()

        with metrics.STORE_CALLS.labels("read").time():
            return await self._reader_threads.run_abandonable(lambda: mapped(tx), interrupt)
