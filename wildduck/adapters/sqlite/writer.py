"""The writer connection's own thread, with group commit.

Write transactions that queue up while one is committing run together in the next transaction, each inside its
own savepoint (a failing one rolls back alone), and are committed with one COMMIT, so one fsync. Every caller gets
its outcome only after that COMMIT: nothing is acknowledged before it is durable. If SQLite abandons the whole
transaction (an I/O error, a full disk) or the COMMIT fails, every job of the batch fails.

Several processes may write one database (the workers of ``wildduck serve --workers N``, a ``wildduck deliver``).
SQLite lets a writer that finds the file locked poll (its busy handler sleeps 1, 2, 5, ... up to 100 ms between
tries), so under contention a write waits milliseconds for a lock that was free after microseconds. Each writer
therefore takes an exclusive ``flock`` on a lock file beside the database (:class:`FileLock`) around its
transaction: a blocked writer sleeps in the kernel and wakes the moment the holder lets go, and SQLite's own lock is
then always free for it.

Durability: with ``synchronous = FULL`` every COMMIT waits for an fsync of the write-ahead log. A commit that only
changes flags or takes messages away (STORE, EXPUNGE, a \\Recent claim: ``durable=False``) need not: its frames
reach the disk with the next durable commit (the log is appended in order, and one fsync covers everything before
it) or checkpoint, so a process crash never undoes it and a power loss may undo the last of them, as with
Dovecot's default ``mail_fsync = optimized``. A message, a copy, a move, a mailbox change is always durable
before it is acknowledged. ``[store] fsync_all = true`` makes every commit durable.
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import outcome

from wildduck.adapters._threads import wait_for_thread
from wildduck.errors import StoreError

log = logging.getLogger(__name__)
T = TypeVar("T")

#: jobs committed together at most
MAX_BATCH = 64


class FileLock:
    """An exclusive ``flock`` on ``path`` (created if missing), held by one thread at a time of this process and by
    one process at a time of the machine; blocking, so only for the threads that write."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._threads = threading.Lock()

    def __enter__(self) -> None:
        self._threads.acquire()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def try_acquire(self) -> bool:
        """Take the lock if no thread or process holds it; never waits (release with ``__exit__``)."""
        if not self._threads.acquire(blocking=False):
            return False
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._threads.release()
            return False
        except BaseException:
            self._threads.release()
            raise
        return True

    def close(self) -> None:
        os.close(self._fd)


@dataclass(slots=True)
class _Job:
    fn: Callable[..., Any]
    deliver: Callable[[outcome.Outcome[Any]], None]
    #: True: a write transaction on the connection (``fn`` is given it); False: run ``fn`` as it is
    transaction: bool
    #: the transaction must survive power loss before its caller hears of it (see ``GroupCommitWriter``)
    durable: bool = True


class GroupCommitWriter:
    def __init__(self, conn: Callable[[], sqlite3.Connection | None],
                 mapped: Callable[[Callable[[], T]], T], lock: Callable[[], FileLock | None] = lambda: None, *,
                 relaxed: bool = False) -> None:
        """``conn`` gives the writer connection; ``mapped`` runs a job, turning driver errors into ours; ``lock``
        the lock that every process's writer of this database holds around a transaction. ``relaxed`` (for a
        connection in ``synchronous = FULL``): a batch of jobs none of which is ``durable`` commits without an
        fsync (``synchronous = NORMAL`` for that commit)."""
        self._conn = conn
        self._lock = lock
        self._relaxed = relaxed
        self._synchronous_full = True
        self._mapped = mapped
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="wildduck-sqlite-writer", daemon=True)
        self._thread.start()

    async def transaction(self, fn: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> T:
        """Run ``fn(conn)`` inside a write transaction; returns once it is committed (``durable``: and on disk,
        with the writer in ``synchronous = FULL``; otherwise it may wait for the next durable commit or WAL
        checkpoint to reach the disk, which a process crash does not undo but a power loss may)."""
        return await wait_for_thread(lambda deliver: self._jobs.put(_Job(fn, deliver, True, durable)))

    async def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` on the writer thread, outside any transaction (open, close, migrations)."""
        return await wait_for_thread(lambda deliver: self._jobs.put(_Job(fn, deliver, False)))

    async def stop(self) -> None:
        """End the thread once the queued jobs are done."""
        await self.call(lambda: None)
        self._jobs.put(None)

    def _loop(self) -> None:
        held: deque[_Job | None] = deque()
        while True:
            job = held.popleft() if held else self._jobs.get()
            if job is None:
                return
            if not job.transaction:
                job.deliver(outcome.capture(job.fn))
                continue
            batch = [job]
            while len(batch) < MAX_BATCH:
                try:
                    nxt = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if nxt is None or not nxt.transaction:
                    held.append(nxt)
                    break
                batch.append(nxt)
            self._commit(batch)

    def _commit(self, batch: list[_Job]) -> None:
        conn = self._conn()
        if conn is None:
            for job in batch:
                job.deliver(outcome.Error(StoreError("store is closed")))
            return
        lock = self._lock()
        if lock is None:
            self._commit_locked(conn, batch)
            return
        with lock:
            self._commit_locked(conn, batch)

    def _commit_locked(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        results: list[outcome.Outcome[Any]] = []
        try:
            if self._relaxed:
                full = any(job.durable for job in batch)
                if full != self._synchronous_full:  # the level cannot change inside a transaction
                    conn.execute(f"PRAGMA synchronous = {'FULL' if full else 'NORMAL'}")
                    self._synchronous_full = full
            conn.execute("BEGIN IMMEDIATE")
            for job in batch:
                conn.execute("SAVEPOINT job")
                try:
                    value = self._mapped(lambda job=job: job.fn(conn))  # type: ignore[misc]
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    if not conn.in_transaction:
                        raise StoreError(f"the transaction was abandoned: {exc}") from exc
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    results.append(outcome.Error(exc))
                else:
                    conn.execute("RELEASE job")
                    results.append(outcome.Value(value))
            conn.execute("COMMIT")
        except BaseException as exc:  # noqa: BLE001 - every job of the batch fails with it
            log.error("write transaction of %d jobs failed: %s", len(batch), exc)
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    log.exception("rollback failed")
            error = exc if isinstance(exc, StoreError) else StoreError(f"write failed: {exc}")
            results = [outcome.Error(error) for _ in batch]
        for job, result in zip(batch, results, strict=True):
            job.deliver(result)
