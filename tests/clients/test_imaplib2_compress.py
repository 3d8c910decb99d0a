"""COMPRESS=DEFLATE with a third-party client: imaplib2 (Debian's python3-imaplib2, which offlineimap3 uses).

imaplib2 lives in the system Python, so the client runs in /usr/bin/python3 as a subprocess. Responses stay under
32 KiB: imaplib2 waits for the socket to become readable while inflated data it has not handed out yet is still
pending (a client bug that stalls it on larger compressed responses, whatever the server)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import trio

from tests.clients import client_binary
from wildduck.testing.lmtp_client import LMTPClient
from wildduck.testing.server import RunningServer

CLIENT = r"""
import json, sys, imaplib2
host, port = sys.argv[1], int(sys.argv[2])
m = imaplib2.IMAP4(host, port)
m.login("alice", "pw")
typ, data = m.capability()  # imaplib2 keeps the list from before LOGIN: ask again
advertised = b"COMPRESS=DEFLATE" in data[0]
m.enable_compression()
out = {"advertised": advertised, "compressing": m.compressor is not None}
typ, data = m.select("INBOX")
out["exists"] = int(data[0])
typ, data = m.fetch("1", "(BODY.PEEK[])")
out["body"] = data[0][1].decode("latin-1")
typ, data = m.append("INBOX", None, None, b"Subject: up\r\n\r\n" + b"sent compressed\r\n" * 1000)
out["append"] = typ
typ, data = m.select("INBOX")
out["after"] = int(data[0])
m.logout()
print(json.dumps(out))
"""


def system_python_with_imaplib2() -> str:
    client_binary("offlineimap", "offlineimap3")  # python3-imaplib2 comes with it
    python = "/usr/bin/python3"
    if subprocess.run([python, "-c", "import imaplib2"], capture_output=True).returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("imaplib2 (Debian package python3-imaplib2) is not installed")
        pytest.skip("imaplib2 is not installed")
    return python


async def test_imaplib2_with_compression(server: RunningServer) -> None:
    python = system_python_with_imaplib2()
    body = b"Subject: words\r\n\r\n" + b"".join(b"line %d of a message sent through a deflated stream\r\n" % i
                                                 for i in range(400))

    def deliver() -> None:
        with LMTPClient(*server.address("lmtp")) as c:
            c.lhlo()
            assert c.send_message("s@example.net", ["alice@example.com"], body)[1][0][0] == 250

    await trio.to_thread.run_sync(deliver)
    host, port = server.address("imap")
    done = await trio.to_thread.run_sync(lambda: subprocess.run(
        [python, "-c", CLIENT, host, str(port)], capture_output=True, timeout=60))
    assert done.returncode == 0, done.stderr.decode()
    out = json.loads(done.stdout)
    assert out["advertised"] and out["compressing"]
    assert out["exists"] == 1 and out["body"].encode("latin-1") == body
    assert out["append"] == "OK" and out["after"] == 2
