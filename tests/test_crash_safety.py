"""kill -9 the server while deliveries are in flight, on each deployment: every acknowledged message survives
intact, nothing half-stored is visible, no blob is orphaned or missing."""

from __future__ import annotations

import base64
import datetime as dt
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import trio

from tests.deployments import Deployment
from wildduck.app import open_store
from wildduck.config import load_config
from wildduck.protocols import mime
from wildduck.testing.lmtp_client import LMTPClient
from wildduck.testing.server import ServerProcess

SHARED = os.urandom(30_000)  # the same attachment in every message: deduplicated
CLIENTS = 4


def make_message(n: int) -> bytes:
    unique = os.urandom(2000 + n % 5000)  # and one attachment of its own, so blobs are created in flight
    parts = []
    for name, data in (("shared.bin", SHARED), (f"own-{n}.bin", unique)):
        b64 = base64.encodebytes(data).replace(b"\n", b"\r\n")
        parts.append(b"--b\r\nContent-Type: application/octet-stream; name=" + name.encode()
                     + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64)
    return (b"From: s@example.net\r\nTo: crash@example.com\r\nSubject: crash test %d\r\n"
            b"Message-ID: <crash-%d@example.net>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
            b"--b\r\nContent-Type: text/plain\r\n\r\nmessage number %d\r\n" % (n, n, n)
            + b"".join(parts) + b"--b--\r\n")


#: what a writer killed between its steps leaves in the MongoDB store (no transactions there: the steps of
#: ``adapters/mongodb/messages.py``), all of it repaired by the maintenance and by ``recount_storage``
DEAD_WRITERS_LEFTOVERS = ("references of no message", "bytes by its ledger")


async def _repair_dead_writers(store: Any, users: list[Any]) -> None:
    """What maintenance does after an instance died mid-delivery: the collector drops references older than its
    cutoff that belong to no message (with their blobs), storage is recounted."""
    await store.collect_garbage(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    for user in users:
        await store.recount_storage(user.id)


def test_kill_minus_nine_during_deliveries(tmp_path: Path, deployment: Deployment) -> None:
    data_dir = tmp_path / "data"
    config = tmp_path / "wildduck.toml"
    config.write_text(f'[server]\ndata_dir = "{data_dir}"\n[lmtp]\nport = 0\n[imap]\nenabled = false\n'
                      "[pop3]\nenabled = false\n[metrics]\nenabled = false\n" + deployment.toml())
    subprocess.run([sys.executable, "-m", "wildduck", "--config", str(config), "init"], check=True, capture_output=True)
    for user in ("crash", "other"):
        subprocess.run([sys.executable, "-m", "wildduck", "--config", str(config), "user", "create", user,
                        "--password", "pw", "--address", f"{user}@example.com"], check=True, capture_output=True)

    acknowledged: dict[str, set[int]] = {"crash": set(), "other": set()}
    sent: dict[int, bytes] = {}
    lock = threading.Lock()
    enough = threading.Event()
    counter = iter(range(1_000_000))

    server = ServerProcess(config).start()
    host, port = server.address("lmtp")

    def client() -> None:
        try:
            with LMTPClient(host, port, timeout=20) as c:
                c.lhlo()
                while True:
                    with lock:
                        n = next(counter)
                    msg = make_message(n)
                    with lock:
                        sent[n] = msg
                    _rcpts, replies = c.send_message("s@example.net", ["crash@example.com", "other@example.com"], msg)
                    with lock:
                        for user, reply in zip(("crash", "other"), replies, strict=False):
                            if reply[0] == 250:
                                acknowledged[user].add(n)
                        if len(acknowledged["crash"]) >= 40:
                            enough.set()
        except (OSError, ConnectionError):
            return  # the server was killed under us

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        assert enough.wait(120), "deliveries did not get going:\n" + "\n".join(server.log[-20:])
    finally:
        server.kill()  # SIGKILL while the clients are still delivering
        for t in threads:
            t.join(60)
    assert sum(len(v) for v in acknowledged.values()) >= 40

    async def verify() -> None:
        store = await open_store(load_config(config))
        try:
            problems = await store.check_integrity()
            if deployment.scaled_out:  # a dead writer's steps, none of them visible: repaired, then none left
                assert all(any(kind in p for kind in DEAD_WRITERS_LEFTOVERS) for p in problems), problems
                assert (await store.blob_stats()).unreferenced == 0  # references come before their blobs
                await _repair_dead_writers(store, [await store.find_user(name) for name in acknowledged])
                problems = await store.check_integrity()
            assert problems == []
            for username, acked in acknowledged.items():
                user = await store.find_user(username)
                assert user is not None
                inbox = await store.find_mailbox(user.id, "INBOX")
                assert inbox is not None
                found: set[int] = set()
                for summary in await store.list_messages(inbox.id):
                    record = await store.get_message(inbox.id, summary.uid)
                    blobs = await store.get_blobs({p.blob for p in record.parts})  # none missing
                    raw = mime.compose(record.skeleton, record.parts, blobs)
                    n = int(record.subject.rsplit(" ", 1)[1])
                    assert raw == sent[n], f"message {n} of {username} is not intact"
                    found.add(n)
                missing = acked - found
                assert not missing, f"acknowledged but lost for {username}: {sorted(missing)}"
            stats = await store.blob_stats()
            assert stats.unreferenced == 0  # nothing orphaned: every stored blob belongs to a stored message
        finally:
            await store.close()

    trio.run(verify)

    # the server starts again on the same data after the crash
    again = ServerProcess(config).start()
    try:
        with LMTPClient(*again.address("lmtp")) as c:
            c.lhlo()
            _r, replies = c.send_message("s@example.net", ["crash@example.com"], make_message(999_999))
            assert replies[0][0] == 250
    finally:
        assert again.terminate() == 0
