"""Hostile command input over a real socket: NUL bytes, deep nesting, overlong lines, command floods. Each gets a
tagged BAD with a reason, nothing is stored, and the session goes on, up to 50 BADs in a row."""

from __future__ import annotations

import socket
from pathlib import Path

import trio

from wildduck.testing.server import running_server


def exchange(s: socket.socket, f: object, data: bytes, lines: int = 1) -> list[bytes]:
    s.sendall(data)
    return [f.readline() for _ in range(lines)]  # type: ignore[attr-defined]


async def test_nul_bytes_deep_nesting_overlong_lines(tmp_path: Path) -> None:
    async with running_server(tmp_path, {"imap": {"enabled": True}}) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")

        def go() -> None:
            with socket.create_connection(srv.address("imap"), timeout=30) as s:
                f = s.makefile("rb")
                f.readline()
                assert exchange(s, f, b"a LOGIN alice pw\r\n")[0].startswith(b"a OK")
                # NUL bytes: in an atom, after a command, in a quoted string
                assert exchange(s, f, b"b SELECT IN\x00BOX\r\n") == [b"b BAD invalid character\r\n"]
                assert exchange(s, f, b"c NOOP\x00\r\n") == [b"c BAD invalid character\r\n"]
                assert exchange(s, f, b'd CREATE "x\x00y"\r\n')[0].startswith(b"d BAD invalid character")
                # nesting: refused while tokenizing, not after building the tree
                assert exchange(s, f, b"e FETCH 1 " + b"(" * 10_000 + b"\r\n") == [b"e BAD too deeply nested\r\n"]
                # overlong lines: refused without buffering them (10 MB here)
                s.sendall(b"f NOOP ")
                for _ in range(160):
                    s.sendall(b"x" * 65536)
                assert exchange(s, f, b"\r\n") == [b"f BAD line too long\r\n"]
                lines = exchange(s, f, b'g LIST "" *\r\n', 6)
                assert lines[-1].startswith(b"g OK")
                assert not any(b"x" in line.split(b'"/"')[-1] for line in lines[:-1])  # nothing was created
                # a flood of bad commands is answered in order, up to 50 in a row; then the server hangs up
                flood = b"".join(b"h%d \x00\r\n" % i for i in range(2000))
                s.sendall(flood)
                answers = f.read().splitlines()
                assert [a.split()[0] for a in answers[:50]] == [b"h%d" % i for i in range(50)]
                assert all(a.split()[1] == b"BAD" for a in answers[:50])
                assert answers[50:] == [b"* BYE too many invalid commands"]

        await trio.to_thread.run_sync(go)
