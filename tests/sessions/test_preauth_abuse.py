"""Before authentication: every mailbox command is refused, an overlong line is refused without buffering, failed
logins are slowed down, and plaintext login off loopback is disabled."""

from __future__ import annotations

import socket
from pathlib import Path

import trio
import trio.testing

from wildduck.sessions._runner import Connection, Lifecycle
from wildduck.testing.server import running_server


async def test_preauth_abuse(tmp_path: Path) -> None:
    async with running_server(tmp_path, {"imap": {"enabled": True}}) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")

        def go() -> list[bytes]:
            with socket.create_connection(srv.address("imap"), timeout=30) as s:
                f = s.makefile("rb")
                f.readline()
                out = []
                for cmd in (b"a SELECT INBOX", b"b FETCH 1 FLAGS", b"c APPEND INBOX {30000}", b"d IDLE"):
                    s.sendall(cmd + b"\r\n")
                    out.append(f.readline())
                s.sendall(b"e LOGIN " + b"A" * 10_000_000 + b"\r\nf NOOP\r\n")
                out.append(f.readline())
                out.append(f.readline())
                return out

        lines = await trio.to_thread.run_sync(go)
    for line in lines[:2] + lines[3:4]:
        assert b"BAD" in line and b"not allowed in the not authenticated state" in line
    assert lines[2].startswith(b"c NO [TOOBIG] log in before sending large literals")
    assert lines[4].startswith(b"e BAD line too long") or lines[4].startswith(b"* BAD line too long")


def _from_loopback(peer: str) -> bool:
    stream = trio.testing.memory_stream_pair()[0]
    return Connection(stream, peer, send_timeout=1, lifecycle=Lifecycle()).from_loopback


def test_loopback_detection() -> None:
    assert _from_loopback("127.0.0.1:1234") and _from_loopback("[::1]:99")
    assert not _from_loopback("192.0.2.1:143") and not _from_loopback("garbage")
