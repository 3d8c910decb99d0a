"""BINARY (RFC 3516) against the whole server over a socket: APPEND of a ``literal8`` holding NUL bytes, FETCH
BINARY / BINARY.PEEK / BINARY.SIZE with partial ranges and literal8 answers, UNKNOWN-CTE, and the size limit of a
literal8 (refused before it is sent)."""

from __future__ import annotations

import imaplib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from tests.sessions.imap_transcripts import runner
from wildduck.testing.server import RunningServer, running_server

BINARY_MESSAGE = (b"From: a@example.com\r\nSubject: binary\r\nMIME-Version: 1.0\r\n"
                  b"Content-Type: multipart/mixed; boundary=xx\r\n\r\n--xx\r\nContent-Type: text/plain\r\n"
                  b"Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 =\r\nau lait\r\n--xx\r\n"
                  b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                  b"\x00\x01\x02\xff\r\n\x00end\r\n--xx--\r\n")
UUENCODED = (b"Subject: uu\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
             b"begin 644 x\r\n`\r\nend\r\n")


class Raw:
    """Commands written byte for byte over an imaplib connection, answers read as bytes."""

    def __init__(self, m: imaplib.IMAP4) -> None:
        self.m = m
        self.n = 0

    def command(self, *pieces: bytes) -> bytes:
        """Send ``pieces`` (each after the first follows a literal announcement: waits for ``+``); the answer up
        to the tagged line. A refused literal ends the command early."""
        self.n += 1
        tag = b"t%d" % self.n
        out = b""
        for i, piece in enumerate(pieces):
            self.m.send((tag + b" " if i == 0 else b"") + piece)
            if i + 1 < len(pieces):
                line = self.m.readline()
                if not line.startswith(b"+"):
                    return out + line
        while True:
            line = self.m.readline()
            out += line
            literal = re.search(rb"~?\{(\d+)\}\r\n$", line)
            if literal:
                out += self.m.read(int(literal.group(1)))
                continue
            if line.startswith(tag + b" "):
                return out


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    config = {"imap": {"enabled": True}, "pop3": {"port": 0, "tls_port": 0}, "limits": {"max_message_size": 4096}}
    async with running_server(tmp_path, config) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")
        yield srv


def connect(server: RunningServer) -> tuple[imaplib.IMAP4, Raw]:
    m = imaplib.IMAP4(*server.address("imap"))
    m.login("alice", "pw")
    assert "BINARY" in m.capabilities
    return m, Raw(m)


async def test_append_literal8_and_fetch_binary(server: RunningServer) -> None:
    def go() -> None:
        m, raw = connect(server)
        try:
            answer = raw.command(b"APPEND INBOX ~{%d}\r\n" % len(BINARY_MESSAGE), BINARY_MESSAGE + b"\r\n")
            assert re.search(rb"t1 OK \[APPENDUID \d+ 1\]", answer), answer
            raw.command(b"SELECT INBOX\r\n")
            # BODY[2] cannot carry NUL: the part was stored in base64
            answer = raw.command(b"FETCH 1 (BODY.PEEK[2.MIME] BODY.PEEK[2])\r\n")
            assert b"Content-Transfer-Encoding: base64" in answer and b"\x00" not in answer
            assert b"BODY[2] {16}\r\nAAEC/w0KAGVuZA==" in answer
            answer = raw.command(b"FETCH 1 (BINARY.SIZE[1] BINARY.SIZE[2] BINARY.PEEK[1] BINARY.PEEK[2])\r\n")
            assert answer.startswith(b"* 1 FETCH (BINARY.SIZE[1] 13 BINARY.SIZE[2] 10 BINARY[1] ~{13}\r\n"
                                     b"caf\xc3\xa9 au lait BINARY[2] ~{10}\r\n\x00\x01\x02\xff\r\n\x00end)\r\n")
            answer = raw.command(b"FETCH 1 (BINARY.PEEK[2]<5.3> BINARY.PEEK[2]<1.2> FLAGS)\r\n")
            assert answer.startswith(b"* 1 FETCH (BINARY[2]<5> ~{3}\r\n\n\x00e BINARY[2]<1> ~{2}\r\n\x01\x02 "
                                     b"FLAGS (\\Recent))")
            # BINARY without .PEEK sets \Seen, like BODY[]
            answer = raw.command(b"FETCH 1 (BINARY[1]<0.4>)\r\n")
            assert answer.startswith(b"* 1 FETCH (BINARY[1]<0> ~{4}\r\ncaf\xc3 FLAGS (\\Seen \\Recent))"), answer
            # the whole message with every part decoded: the client's own bytes but for the encoding names
            answer = raw.command(b"FETCH 1 (BINARY.PEEK[])\r\n")
            decoded = BINARY_MESSAGE.replace(b"quoted-printable", b"binary").replace(
                b"caf=C3=A9 =\r\nau lait", "café au lait".encode())
            assert answer.startswith(b"* 1 FETCH (BINARY[] ~{%d}\r\n%s)" % (len(decoded), decoded)), answer
        finally:
            m.logout()

    await trio.to_thread.run_sync(go)


async def test_unknown_transfer_encoding(server: RunningServer) -> None:
    def go() -> None:
        runner(server).run("@deliver alice\n" + UUENCODED.decode().replace("\r\n", "\n") + "@end\n", "deliver")
        m, raw = connect(server)
        try:
            raw.command(b"SELECT INBOX\r\n")
            answer = raw.command(b"FETCH 1 (BINARY.PEEK[1])\r\n")
            assert answer == b"t2 NO [UNKNOWN-CTE] unknown Content-Transfer-Encoding in part 1\r\n"
            assert raw.command(b"FETCH 1 BINARY.SIZE[1]\r\n").startswith(b"t3 NO [UNKNOWN-CTE]")
            assert raw.command(b"FETCH 1 BODY.PEEK[1]\r\n").startswith(b"* 1 FETCH (BODY[1] {")  # BODY still works
            assert raw.command(b"FETCH 1 BINARY[TEXT]\r\n").startswith(b"t5 BAD")
        finally:
            m.logout()

    await trio.to_thread.run_sync(go)


async def test_literal8_over_the_limit_is_refused_before_it_is_sent(server: RunningServer) -> None:
    def go() -> None:
        m, raw = connect(server)
        try:
            answer = raw.command(b"APPEND INBOX ~{5000}\r\n", b"never sent")
            assert answer.startswith(b"t1 NO [TOOBIG]"), answer
            assert raw.command(b"NOOP\r\n") == b"t2 OK NOOP completed\r\n"
            # a literal8 where a string is expected is a syntax error
            assert raw.command(b"SELECT ~{5}\r\n", b"INBOX\r\n").startswith(b"t3 BAD")
        finally:
            m.logout()

    await trio.to_thread.run_sync(go)
