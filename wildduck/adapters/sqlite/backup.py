"""Backing up, verifying and restoring the store's database file (the whole state of a single node).

* :func:`backup_database` copies a live database with SQLite's online backup API. The copy is taken inside one
  read transaction of the source, so it is one consistent snapshot even while a server keeps committing (WAL:
  the server's writers are not blocked; the backup never restarts), and it is checked with
  ``PRAGMA integrity_check`` before it is renamed into place. The copy is a single self-contained file
  (rollback journal mode, nothing in a ``-wal`` beside it).
* :func:`verify_database` checks a file: SQLite's integrity check, a wildduck schema this version can open.
* :func:`restore_database` puts a verified copy in place of the database, keeping the previous one aside, and
  refuses while any process has the database open (:func:`database_holder`).

These are synchronous functions for the CLI: they run in their own process, outside any event loop.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import sqlite3
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from wildduck.adapters.sqlite.schema import SCHEMA_VERSION
from wildduck.errors import StoreError

#: ``progress(done_pages, total_pages)``, called after each step of a copy
Progress = Callable[[int, int], None]

#: a copy runs in about this many steps (a progress bar moves in percent), each at least ``_MIN_STEP`` pages
_STEPS = 100
_MIN_STEP = 256
#: SQLite's unix VFS: every connection to a WAL database holds a shared lock on this byte of the ``-shm`` file
#: (the "DMS" slot, after the eight WAL lock bytes at offset 120) for as long as it is open
_SHM_DMS_OFFSET = 128


@dataclass(frozen=True, slots=True)
class DatabaseInfo:
    """What :func:`verify_database` found in a database file."""

    path: Path
    #: ``PRAGMA user_version``: the wildduck schema version
    schema_version: int
    #: bytes of the file (the ``-wal`` beside it not counted)
    size: int
    users: int
    messages: int


def _connect(path: Path, mode: str) -> sqlite3.Connection:
    """A connection to an existing file (``mode`` ``ro`` or ``rw``: SQLite never creates it)."""
    uri = f"file:{quote(str(path.absolute()))}?mode={mode}"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)
        conn.execute("PRAGMA busy_timeout = 30000")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path}: {exc}") from exc
    return conn


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with path.open("rb+") as f:
        os.fsync(f.fileno())


def database_holder(path: Path) -> int | None:
    """The process id of a process that has the WAL database at ``path`` open (a running server, another
    command), or None when no process has.

    Reads the lock every SQLite connection holds on its database's ``-shm`` file with ``F_GETLK``, which takes no
    lock itself; the calling process's own connections are not seen.
    """
    try:
        fd = os.open(f"{path}-shm", os.O_RDWR)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot tell whether {path} is in use: {exc}") from exc
    try:
        query = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, _SHM_DMS_OFFSET, 1, 0)
        kind, _whence, _start, _len, pid = struct.unpack("hhqqi", fcntl.fcntl(fd, fcntl.F_GETLK, query))
    finally:
        os.close(fd)
    return None if kind == fcntl.F_UNLCK else pid


def _copy(source: sqlite3.Connection, target: sqlite3.Connection, progress: Progress | None) -> None:
    """Copy ``source`` (which is inside a read transaction, so the copy is one snapshot) into ``target``."""
    total = source.execute("PRAGMA page_count").fetchone()[0]
    step = max(_MIN_STEP, total // _STEPS)

    def report(_status: int, remaining: int, pages: int) -> None:
        if progress is not None:
            progress(pages - remaining, pages)

    source.backup(target, pages=step, progress=report, sleep=0)


def _check(conn: sqlite3.Connection, path: Path) -> None:
    """StoreError unless ``PRAGMA integrity_check`` finds nothing wrong."""
    try:
        problems = [row[0] for row in conn.execute("PRAGMA integrity_check(10)")]
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a usable database: {exc}") from exc
    if problems != ["ok"]:
        raise StoreError(f"{path} fails the integrity check: {'; '.join(problems)}")


def _info(conn: sqlite3.Connection, path: Path) -> DatabaseInfo:
    """The schema version and contents of a checked database; StoreError unless this wildduck can use it."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if version == 0 or not {"users", "messages"} <= tables:
        raise StoreError(f"{path} is not a wildduck database")
    if version > SCHEMA_VERSION:
        raise StoreError(f"{path} has schema version {version}, newer than this wildduck ({SCHEMA_VERSION})")
    users = conn.execute("SELECT count(*) FROM users").fetchone()[0]
    messages = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    return DatabaseInfo(path, version, path.stat().st_size, users, messages)


def verify_database(path: Path) -> DatabaseInfo:
    """Check the database file at ``path`` (read only): SQLite's integrity check passes and it holds a wildduck
    schema this version opens (older ones are migrated on start). Raises StoreError saying what is wrong."""
    if not path.is_file():
        raise StoreError(f"{path} does not exist")
    with contextlib.closing(_connect(path, "ro")) as conn:
        _check(conn, path)
        return _info(conn, path)


@contextlib.contextmanager
def _partial(final: Path) -> Iterator[Path]:
    """A temporary file beside ``final`` (removed unless the block renames it into place)."""
    partial = final.with_name(final.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        yield partial
    finally:
        partial.unlink(missing_ok=True)


def _install(partial: Path, final: Path) -> None:
    """Make ``partial`` durable and rename it to ``final`` (atomic on one file system)."""
    _fsync_file(partial)
    partial.replace(final)
    _fsync_dir(final.parent)


@contextlib.contextmanager
def _snapshot_copy(source: Path, mode: str, partial: Path, progress: Progress | None) -> Iterator[sqlite3.Connection]:
    """Copy one snapshot of ``source`` (opened ``mode``) into the new single-file database ``partial``; the block
    gets the copy's connection."""
    with contextlib.closing(_connect(source, mode)) as src, \
            contextlib.closing(sqlite3.connect(partial, isolation_level=None)) as out:
        src.execute("BEGIN")
        src.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot starts here
        try:
            _copy(src, out, progress)
        except sqlite3.Error as exc:
            raise StoreError(f"copying {source} failed: {exc}") from exc
        finally:
            src.execute("COMMIT")
        out.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
        yield out


def backup_database(source: Path, dest: Path, *, progress: Progress | None = None) -> DatabaseInfo:
    """Copy the (possibly live) database at ``source`` to the new file ``dest``, consistently, and verify it.

    The copy is written beside ``dest`` and renamed into place only once ``PRAGMA integrity_check`` passed on it,
    so ``dest`` is either a complete, checked backup or untouched. The server keeps running meanwhile: the copy
    reads one snapshot (its WAL cannot be checkpointed past that snapshot until the copy ends).
    """
    if not source.is_file():
        raise StoreError(f"{source} does not exist")
    if not dest.parent.is_dir():
        raise StoreError(f"cannot write {dest}: {dest.parent} is not a directory")
    with _partial(dest) as partial:
        # "rw" (nothing is written) so that a live WAL database opens without fuss
        with _snapshot_copy(source, "rw", partial, progress) as out:
            _check(out, dest)
            info = _info(out, partial)
        _install(partial, dest)
    return DatabaseInfo(dest, info.schema_version, dest.stat().st_size, info.users, info.messages)


def aside_name(path: Path, now: dt.datetime | None = None) -> Path:
    """Where :func:`restore_database` keeps the database it replaces: ``NAME.before-restore-YYYYmmddTHHMMSS``."""
    stamp = (now or dt.datetime.now()).strftime("%Y%m%dT%H%M%S")
    return path.with_name(f"{path.name}.before-restore-{stamp}")


def restore_database(source: Path, target: Path, *, progress: Progress | None = None,
                     verified: bool = False) -> Path | None:
    """Replace the database at ``target`` with a copy of the backup ``source``; returns where the previous
    database was kept (None if there was none).

    ``source`` is verified first (:func:`verify_database`; ``verified``: the caller just did) and nothing changes
    if it fails. Refuses (StoreError) while any process has ``target`` open. The previous database keeps its
    ``-wal`` (renamed along with it), so the file kept aside opens with every transaction it had committed.
    """
    if not verified:
        verify_database(source)
    holder = database_holder(target)
    if holder is not None:
        raise StoreError(f"{target} is in use by process {holder} (a running server?); stop it first")
    target.parent.mkdir(parents=True, exist_ok=True)
    with _partial(target) as partial:
        with _snapshot_copy(source, "ro", partial, progress):
            pass
        aside = None
        if target.exists():
            aside = aside_name(target)
            target.replace(aside)
            for suffix in ("-wal", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    Path(f"{target}{suffix}").replace(f"{aside}{suffix}")
            Path(f"{target}-shm").unlink(missing_ok=True)  # derived from the -wal; nobody has it open
        _install(partial, target)
    return aside
