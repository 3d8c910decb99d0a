"""curl as an IMAP client: list mailboxes, fetch a message by UID, over plain IMAP and implicit TLS."""

from __future__ import annotations

import subprocess
from pathlib import Path

import trio

from tests.clients import client_binary
from wildduck.testing.lmtp_client import LMTPClient
from wildduck.testing.server import free_port, running_server

MESSAGE = b"Subject: via curl\r\nFrom: s@example.net\r\n\r\nhello curl\r\n"


async def test_curl_lists_and_fetches(tmp_path: Path) -> None:
    curl = client_binary("curl", "curl")
    overrides = {"imap": {"enabled": True, "tls_port": free_port()}}
    async with running_server(tmp_path, overrides) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")
        imaps_port = srv.address("imaps")[1]

        def go() -> tuple[str, bytes, bytes]:
            with LMTPClient(*srv.address("lmtp")) as c:
                c.lhlo()
                assert c.send_message("s@x.y", ["alice@example.com"], MESSAGE)[1][0][0] == 250
            host, port = srv.address("imap")
            listing = subprocess.run([curl, "-s", "--user", "alice:pw", f"imap://{host}:{port}/"],
                                     capture_output=True, timeout=60, check=True).stdout.decode()
            message = subprocess.run([curl, "-s", "--user", "alice:pw", f"imap://{host}:{port}/INBOX;UID=1"],
                                     capture_output=True, timeout=60, check=True).stdout
            secure = subprocess.run([curl, "-sk", "--user", "alice:pw", f"imaps://{host}:{imaps_port}/INBOX;UID=1"],
                                    capture_output=True, timeout=60, check=True).stdout
            return listing, message, secure

        listing, message, secure = await trio.to_thread.run_sync(go)
    assert '(\\HasNoChildren \\Sent) "/" "Sent Mail"' in listing
    assert message == MESSAGE and secure == MESSAGE
