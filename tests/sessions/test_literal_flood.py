"""Literal floods: huge announcements are refused before any byte is read; refused non-synchronizing literals are
skipped without being stored; the session stays usable and server memory does not follow what the client sends."""

from __future__ import annotations

import socket
from pathlib import Path

import trio

from wildduck.testing.server import running_server


async def test_literal_flood(tmp_path: Path) -> None:
    overrides = {"imap": {"enabled": True}, "limits": {"max_message_size": 100_000}}
    async with running_server(tmp_path, overrides) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")

        def go() -> list[bytes]:
            with socket.create_connection(srv.address("imap"), timeout=30) as s:
                f = s.makefile("rb")
                f.readline()
                s.sendall(b"a LOGIN alice pw\r\n")
                f.readline()
                out = []
                s.sendall(b"b APPEND INBOX {99999999999}\r\n")
                out.append(f.readline())
                # a non-synchronizing literal over the limit: the client sends it anyway (10 MB)
                s.sendall(b"c APPEND INBOX {10000000+}\r\n")
                chunk = b"x" * 65536
                sent = 0
                while sent < 10_000_000:
                    n = min(len(chunk), 10_000_000 - sent)
                    s.sendall(chunk[:n])
                    sent += n
                s.sendall(b"\r\nd NOOP\r\n")
                out.append(f.readline())
                out.append(f.readline())
                # many small literals in one command
                s.sendall(b"e LOGIN " + b"{1+}\r\nx " * 200 + b"\r\nf NOOP\r\n")
                out.append(f.readline())
                out.append(f.readline())
                return out

        lines = await trio.to_thread.run_sync(go)
    assert lines[0].startswith(b"b NO [TOOBIG]")
    assert lines[1].startswith(b"c NO [TOOBIG]")
    assert lines[2].startswith(b"d OK")
    assert lines[3].startswith(b"e BAD") and b"too many literals" in lines[3]
    assert lines[4].startswith(b"f OK")
