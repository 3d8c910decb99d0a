"""The connection lifecycle every session shares (the runner): IDLE's end of life, send deadlines, the goodbye on
shutdown, storage failures, one connection id, TLS overload. Each test is named after the defect it pins down."""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from wildduck.log import ConnectionFilter
from wildduck.testing.server import RunningServer, free_port, running_server

MESSAGE = b"From: a@example.net\r\nTo: alice@example.com\r\nSubject: hi\r\n\r\nhello\r\n"


class LineClient:
    """A bare line client over a trio stream (the IMAP and POP3 test clients build on it)."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buf = b""

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            data = await self.stream.receive_some(65536)
            if not data:
                raise EOFError(self.buf)
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    async def closed(self) -> bool:
        """True once the server closed the connection (reads EOF)."""
        try:
            while True:
                if not await self.stream.receive_some(65536):
                    return True
        except trio.BrokenResourceError:
            return True


class Client(LineClient):
    """A bare IMAP client: send lines, read until a tagged reply."""

    @classmethod
    async def connect(cls, srv: RunningServer, name: str = "imap") -> Client:
        c = cls(await trio.open_tcp_stream(*srv.address(name)))
        await c.line()  # greeting
        return c

    async def until(self, prefix: bytes) -> list[bytes]:
        lines = []
        while True:
            line = await self.line()
            lines.append(line)
            if line.startswith(prefix):
                return lines

    async def command(self, tag: str, text: str) -> list[bytes]:
        await self.send(f"{tag} {text}\r\n".encode())
        return await self.until(tag.encode() + b" ")

    async def login(self, user: str = "alice") -> None:
        assert (await self.command("l", f"LOGIN {user} pw"))[-1].startswith(b"l OK")



@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path, {"imap": {"idle_timeout": 1.0}, "server": {"shutdown_timeout": 30.0}}) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")
        yield srv


async def test_idle_timeout_says_bye(server: RunningServer) -> None:
    """Defect: ``raise Bye`` inside IDLE's helper nursery arrived as an ExceptionGroup, so the BYE of an IDLE
    timeout was never sent. [imap] idle_timeout (1 s here) is the IDLE limit; [limits] idle_timeout is LMTP's."""
    with trio.fail_after(20):
        c = await Client.connect(server)
        await c.login()
        await c.command("s", "SELECT INBOX")
        await c.send(b"i IDLE\r\n")
        assert (await c.line()).startswith(b"+ ")
        lines = await c.until(b"* BYE")
        assert lines[-1] == b"* BYE IDLE timed out"
        assert await c.closed()


async def test_disconnect_during_idle_is_not_a_crash(server: RunningServer,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """Defect: every client that closed or reset during IDLE was logged at ERROR with a traceback (20 of 20)."""
    caplog.set_level(logging.INFO)
    with trio.fail_after(30):
        clients = []
        for _ in range(10):
            c = await Client.connect(server)
            await c.login()
            await c.command("s", "SELECT INBOX")
            await c.send(b"i IDLE\r\n")
            assert (await c.line()).startswith(b"+ ")
            clients.append(c)
        for n, c in enumerate(clients):
            if n % 2:  # a reset: RST instead of FIN
                sock = c.stream.socket  # type: ignore[attr-defined]
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            await c.stream.aclose()
        alice = await server.services.users.find("alice")
        while await server.services.login.connections(alice, "imap"):  # noqa: ASYNC110 - polls from outside
            await trio.sleep(0.05)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert all(r.exc_info is None for r in caplog.records)


async def test_client_that_stops_reading_is_cut_at_the_send_deadline(tmp_path: Path) -> None:
    """Defect: a client that stopped reading kept its task, connection slot and subscription forever."""
    big = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 2000  # 2 MB
    overrides = {"limits": {"send_timeout": 1.0}}
    async with running_server(tmp_path, overrides) as srv:
        alice = await srv.services.users.create("alice", "pw", address="alice@example.com")
        inbox = await srv.services.mailboxes.get(alice.id, "INBOX")
        await srv.services.messages.append(alice, inbox, big)
        with trio.fail_after(60):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window fills at once
            await trio.to_thread.run_sync(sock.connect, srv.address("imap"))
            c = Client(trio.SocketStream(trio.socket.from_stdlib_socket(sock)))
            await c.line()
            await c.login()
            await c.command("s", "SELECT INBOX")
            assert await srv.services.login.connections(alice, "imap") == 1
            await c.send(b"".join(b"f%d FETCH 1 BODY.PEEK[]\r\n" % n for n in range(20)))  # 40 MB, never read
            while await srv.services.login.connections(alice, "imap"):  # noqa: ASYNC110 - polls from outside
                await trio.sleep(0.1)
            # the slot is free again and the server closed the connection
            assert await c.closed()


async def test_shutdown_says_goodbye_at_once(server: RunningServer) -> None:
    """Defect: idle and IDLE sessions sat out shutdown_timeout (30 s here) and were cut without a BYE. Now every
    session waiting for its client gets its protocol's goodbye at once."""
    idle = await Client.connect(server)
    await idle.login()
    idling = await Client.connect(server)
    await idling.login()
    await idling.command("s", "SELECT INBOX")
    await idling.send(b"i IDLE\r\n")
    assert (await idling.line()).startswith(b"+ ")
    lmtp = await trio.open_tcp_stream(*server.address("lmtp"))
    assert (await lmtp.receive_some(1024)).startswith(b"220 ")
    with trio.fail_after(10):  # far below shutdown_timeout
        server.stop()
        assert (await idle.until(b"* BYE"))[-1] == b"* BYE server shutting down"
        assert (await idling.until(b"* BYE"))[-1] == b"* BYE server shutting down"
        assert (await lmtp.receive_some(1024)).startswith(b"421 4.3.2 ")
        assert server.stopped is not None
        await server.stopped.wait()


class _FullDisk:
    """Makes the real SQLite store's writes fail as on a full disk (SQLITE_FULL through max_page_count)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    async def fill(self) -> None:
        await self.store._write(lambda conn: conn.execute(
            "PRAGMA max_page_count = " + str(conn.execute("PRAGMA page_count").fetchone()[0])))

    async def empty(self) -> None:
        await self.store._write(lambda conn: conn.execute("PRAGMA max_page_count = 1073741823"))


async def test_storage_failure_is_a_tagged_no_unavailable(server: RunningServer) -> None:
    """Defect: a StoreError (disk full, I/O) dropped the IMAP connection without a tagged reply. It is answered
    ``NO [UNAVAILABLE]`` (RFC 5530) and the session goes on."""
    disk = _FullDisk(server.store)
    big = b"Subject: x\r\n\r\n" + b"y" * 200_000 + b"\r\n"
    with trio.fail_after(30):
        c = await Client.connect(server)
        await c.login()
        await disk.fill()
        try:
            await c.send(b"a APPEND INBOX {%d+}\r\n" % len(big) + big + b"\r\n")
            reply = (await c.until(b"a "))[-1]
            assert reply.startswith(b"a NO [UNAVAILABLE] "), reply
        finally:
            await disk.empty()
        assert (await c.command("n", "NOOP"))[-1].startswith(b"n OK")
        await c.send(b"b APPEND INBOX {%d+}\r\n" % len(MESSAGE) + MESSAGE + b"\r\n")
        assert (await c.until(b"b "))[-1].startswith(b"b OK [APPENDUID ")


async def test_one_connection_id_in_every_line(server: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    """Defect: the listener and the session logged different numbers for one connection."""
    caplog.set_level(logging.DEBUG)
    caplog.handler.addFilter(ConnectionFilter())
    with trio.fail_after(20):
        c = await Client.connect(server)
        await c.login()
        await c.command("o", "LOGOUT")
        assert await c.closed()
        await trio.sleep(0.2)  # let the listener log the end of the connection
    ours = [r for r in caplog.records if getattr(r, "conn", "").startswith(" [imap#")]
    names = {r.name for r in ours}
    assert any(n.startswith("wildduck.net") for n in names) and any(n.startswith("wildduck.sessions") for n in names)
    ids = {r.conn.strip(" []").split()[0] for r in ours}  # type: ignore[attr-defined]
    assert len(ids) == 1, ids
    assert any("alice" in r.conn for r in ours)  # type: ignore[attr-defined]  # the user, once known


async def test_imaps_overload_refuses_inside_tls(tmp_path: Path) -> None:
    """Defect: IMAPS overload wrote a plaintext ``* BYE`` before the TLS handshake."""
    port = free_port()
    async with running_server(tmp_path, {"imap": {"tls_port": port}, "limits": {"max_connections": 1}}) as srv:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with trio.fail_after(20):
            first = trio.SSLStream(await trio.open_tcp_stream("127.0.0.1", port), ctx)
            await first.do_handshake()
            assert (await first.receive_some(4096)).startswith(b"* OK")
            second = trio.SSLStream(await trio.open_tcp_stream("127.0.0.1", port), ctx)
            await second.do_handshake()  # a plaintext BYE here would break the handshake
            assert (await second.receive_some(4096)).startswith(b"* BYE too many connections")
            await first.aclose()
        del srv
