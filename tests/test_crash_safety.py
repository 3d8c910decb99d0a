"""kill -9 the server while deliveries are in flight: every acknowledged message survives intact, nothing
half-stored is visible, no blob is orphaned or missing."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading
from pathlib import Path

import trio

from wildduck.adapters.sqlite import open_sqlite_store
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


def test_kill_minus_nine_during_deliveries(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    config = tmp_path / "wildduck.toml"
    config.write_text(f'[server]\ndata_dir = "{data_dir}"\n[lmtp]\nport = 0\n[imap]\nenabled = false\n'
                      "[pop3]\nenabled = false\n[metrics]\nenabled = false\n")
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
        store = await open_sqlite_store(data_dir / "wildduck.db")
        try:
            assert await store.check_integrity() == []
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
