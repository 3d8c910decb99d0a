"""STARTTLS command injection (CVE-2011-0411 class): plaintext pipelined after STARTTLS must never run."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import trio
import trustme

from wildduck.testing.server import running_server


async def test_imap_starttls_injection(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    cert_file, key_file = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    overrides = {"imap": {"enabled": True, "cert": str(cert_file), "key": str(key_file)}}
    async with running_server(tmp_path / "data", overrides) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")
        ctx = ssl.create_default_context()
        ca.configure_trust(ctx)

        def go() -> list[bytes]:
            raw = socket.create_connection(srv.address("imap"), timeout=20)
            f = raw.makefile("rb")
            f.readline()
            raw.sendall(b"a STARTTLS\r\nb LOGIN alice pw\r\n")  # the LOGIN is injected plaintext
            assert f.readline().startswith(b"a OK")
            tls = ctx.wrap_socket(raw, server_hostname="localhost")
            tf = tls.makefile("rb")
            tls.sendall(b"c SELECT INBOX\r\n")
            first = tf.readline()
            tls.sendall(b"d LOGOUT\r\n")
            rest = [tf.readline(), tf.readline()]
            tls.close()
            return [first, *rest]

        lines = await trio.to_thread.run_sync(go)
    # the injected LOGIN never ran: still not authenticated, so SELECT is refused
    assert lines[0].startswith(b"c BAD SELECT is not allowed in the not authenticated state")
    assert lines[1].startswith(b"* BYE")
