"""The test suite's MongoDB-protocol server (``wildduck/testing/ferretdb.py``): it builds, serves pymongo, and
never outlives what started it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wildduck.testing import ferretdb

try:
    import pymongo
except ImportError:  # pragma: no cover - the dev extra installs it
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("pymongo is not installed", allow_module_level=True)

if (reason := ferretdb.unavailable()) is not None:
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI=true: {reason}")
    pytest.skip(reason, allow_module_level=True)


def test_it_serves_pymongo_and_keeps_data_in_its_directory(tmp_path: Path) -> None:
    with ferretdb.running(tmp_path) as server:
        client = pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=10_000)
        try:
            assert client.admin.command("ping")["ok"] == 1.0
            client.t.c.insert_one({"_id": 1, "a": [1, 2]})
            assert client.t.c.find_one({"_id": 1}) == {"_id": 1, "a": [1, 2]}
        finally:
            client.close()
    assert server.process.returncode is not None
    assert any((tmp_path / "data").iterdir()), "the SQLite handler's files are in the directory given"


def test_it_stops_when_the_process_that_started_it_is_gone(tmp_path: Path) -> None:
    script = ("import sys, pathlib; from wildduck.testing import ferretdb; "
              "s = ferretdb.start(pathlib.Path(sys.argv[1])); print(s.process.pid, flush=True)")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout.split()[0])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            return  # exited; only its reaping is left to init
        time.sleep(0.1)
    raise AssertionError(f"FerretDB (pid {pid}) still runs after its parent exited")
