"""A private MongoDB-protocol server for the tests: FerretDB v1.24.2 embedded in a small Go program of the
project's own (``tests/servers/ferretdb/``), with its SQLite handler in a temporary directory, on a loopback port.

The program is built with ``go build`` on first use (about two minutes from empty Go caches, seconds after) into
``build/servers/ferretdb-test`` of the checkout, and rebuilt when its sources change. Several processes may ask at
once (a lock file serializes the build). No MongoDB server is obtainable here; FerretDB differs from MongoDB in ways
the MongoDB adapter must survive (not atomic ``$inc``, no transactions, no TTL or text indexes: issue 11 lists them).
"""

from __future__ import annotations

import fcntl
import hashlib
import select
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "tests" / "servers" / "ferretdb"
BINARY = ROOT / "build" / "servers" / "ferretdb-test"
#: seconds a build may take (empty caches, a slow machine) and a start
BUILD_TIMEOUT = 900.0
START_TIMEOUT = 60.0


def _go() -> str | None:
    """The ``go`` command: on PATH, else where the Go toolchain installs by default."""
    return shutil.which("go") or shutil.which("go", path="/usr/local/go/bin")


def unavailable() -> str | None:
    """Why the server cannot be had here (None when it can: built, or buildable with ``go``)."""
    if not SOURCE.is_dir():
        return f"the FerretDB test program's sources are not at {SOURCE} (not a checkout?)"
    if _fresh() or _go():
        return None
    return "FerretDB test server: no `go` (1.24 or later) to build tests/servers/ferretdb"


def _source_hash() -> str:
    digest = hashlib.sha256()
    for name in ("main.go", "go.mod", "go.sum"):
        digest.update(name.encode() + b"\0" + (SOURCE / name).read_bytes())
    return digest.hexdigest()


def _stamp() -> Path:
    return BINARY.with_name(BINARY.name + ".sources")


def _fresh() -> bool:
    try:
        return BINARY.is_file() and _stamp().read_text() == _source_hash()
    except OSError:
        return False


def build() -> Path:
    """The built program (building it when missing or out of date)."""
    BINARY.parent.mkdir(parents=True, exist_ok=True)
    with open(BINARY.parent / ".ferretdb-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _fresh():
            go = _go()
            if go is None:
                raise RuntimeError(unavailable())
            partial = BINARY.with_name(BINARY.name + ".partial")
            done = subprocess.run([go, "build", "-o", str(partial), "."], cwd=SOURCE, capture_output=True,
                                  text=True, timeout=BUILD_TIMEOUT)
            if done.returncode != 0:
                raise RuntimeError(f"go build of {SOURCE} failed:\n{done.stderr[-4000:]}")
            partial.replace(BINARY)
            _stamp().write_text(_source_hash())
    return BINARY


@dataclass
class FerretDB:
    """One running server: ``uri`` for pymongo; :meth:`kill` for crash tests."""

    uri: str
    process: subprocess.Popen[bytes]
    directory: Path

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def start(directory: Path, listen: str = "127.0.0.1:0") -> FerretDB:
    """Start a server whose databases live under ``directory``; it stops with :meth:`FerretDB.stop`, or by itself
    when this process exits (its standard input, a pipe we hold, reads end-of-file)."""
    binary = build()
    log = open(directory / "ferretdb.log", "ab")  # noqa: SIM115 - the child writes to it until it stops
    try:
        proc = subprocess.Popen([str(binary), "-dir", str(directory / "data"), "-listen", listen],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
    finally:
        log.close()
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT)
    line = proc.stdout.readline().decode() if ready else ""
    if not line.startswith("ready "):
        proc.kill()
        proc.wait()
        tail = (directory / "ferretdb.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"FerretDB did not start (said {line!r}); its log ends:\n{tail}")
    return FerretDB(line.split()[1], proc, directory)


@contextmanager
def running(directory: Path) -> Iterator[FerretDB]:
    server = start(directory)
    try:
        yield server
    finally:
        server.stop()
