"""LMTP over real TCP sockets against the whole server (real store, real MIME parser), on each deployment."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio
import trustme

from tests.deployments import Deployment
from wildduck.protocols import mime
from wildduck.testing.lmtp_client import LMTPClient
from wildduck.testing.server import RunningServer, running_server

T = TypeVar("T")

MESSAGE = (b"From: s@example.net\r\nTo: alice@example.com\r\nSubject: hello\r\n"
           b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\n"
           b".a line starting with a dot\r\n--zz\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\nAAECAwQFBgcICQoLDA0ODw==\r\n--zz--\r\n")


async def in_thread(fn: Callable[[], T]) -> T:
    with trio.fail_after(60):
        return await trio.to_thread.run_sync(fn)


@pytest.fixture
async def server(tmp_path: Path, deployment: Deployment) -> AsyncIterator[RunningServer]:
    limits = {"max_message_size": 200_000, "max_line_length": 1024}
    async with running_server(tmp_path, deployment.overrides({"limits": limits})) as srv:
        users = srv.services.users
        await users.create("alice", "pw", address="alice@example.com")
        await users.create("bob", "pw", address="bob@example.com")
        await users.create("full", "pw", address="full@example.com", quota=100)
        yield srv


async def stored(srv: RunningServer, username: str) -> list[bytes]:
    store = srv.store
    user = await srv.services.users.find(username)
    inbox = await store.find_mailbox(user.id, "INBOX")
    assert inbox is not None
    out = []
    for m in await store.list_messages(inbox.id):
        record = await store.get_message(inbox.id, m.uid)
        out.append(mime.compose(record.skeleton, record.parts, await store.get_blobs({p.blob for p in record.parts})))
    return out


def client(srv: RunningServer) -> LMTPClient:
    return LMTPClient(*srv.address("lmtp"))


async def test_delivery_reads_back_byte_exact(server: RunningServer) -> None:
    def go() -> Any:
        with client(server) as c:
            assert c.greeting[0] == 220
            assert c.lhlo()[0] == 250 and "PIPELINING" in c.capabilities
            assert c.mail("s@example.net", f"SIZE={len(MESSAGE)}")[0] == 250
            assert c.rcpt("alice@example.com")[0] == 250
            replies = c.data(MESSAGE, accepted=1)
            c.quit()
            return replies

    replies = await in_thread(go)
    assert replies[0][0] == 250 and "2.0.0" in replies[0][1]
    assert await stored(server, "alice") == [MESSAGE]


async def test_one_reply_per_recipient(server: RunningServer) -> None:
    def go() -> Any:
        with client(server) as c:
            c.lhlo()
            return c.send_message("s@example.net", ["alice@example.com", "nobody@example.com",
                                                     "full@example.com", "B.O.B+tag@example.com",
                                                     "alice@example.com"], MESSAGE, f"SIZE={len(MESSAGE)}")

    rcpt_replies, data_replies = await in_thread(go)
    assert [r[0] for r in rcpt_replies] == [250, 550, 452, 250, 250]
    assert "5.1.1" in rcpt_replies[1][1] and "4.2.2" in rcpt_replies[2][1]
    assert [r[0] for r in data_replies] == [250, 250, 250]  # alice, bob, alice again: each gets its reply
    assert await stored(server, "alice") == [MESSAGE]  # the duplicate recipient is stored once
    assert await stored(server, "bob") == [MESSAGE]
    assert (await server.store.blob_stats()).count == 1  # the attachment once for both users


async def test_pipelining_several_transactions_in_one_write(server: RunningServer) -> None:
    def go() -> Any:
        with client(server) as c:
            c.lhlo()
            msg = b"Subject: p\r\n\r\nbody\r\n.\r\n"
            c.send_raw(b"MAIL FROM:<a@b.c>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n")
            first = [c.read_reply() for _ in range(3)]
            c.send_raw(msg + b"MAIL FROM:<a@b.c>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
            second = [c.read_reply() for _ in range(4)]
            c.send_raw(msg + b"NOOP\r\nQUIT\r\n")
            third = [c.read_reply() for _ in range(3)]
            return first, second, third

    first, second, third = await in_thread(go)
    assert [r[0] for r in first] == [250, 250, 354]
    assert [r[0] for r in second] == [250, 250, 250, 354]
    assert [r[0] for r in third] == [250, 250, 221]
    assert len(await stored(server, "alice")) == len(await stored(server, "bob")) == 1


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"GARBAGE COMMAND\r\n", b"500 5.5.1"),
        (b"LHLO x\n", b"500 5.5.2"),
        (b"NO\x00OP\r\n", b"500 5.5.2"),
        (b"\xff\xfe\xfd\r\n", b"500 5.5.2"),
        (b"HELO x\r\n", b"500 5.5.1"),
    ],
)
async def test_bad_input_gets_a_clear_error_and_the_server_stays_up(server: RunningServer, raw: bytes,
                                                                    expected: bytes) -> None:
    def go() -> Any:
        with client(server) as c:
            c.send_raw(raw)
            reply = c.read_reply()
            return reply, c.noop()

    reply, noop = await in_thread(go)
    assert f"{reply[0]} {reply[1]}".encode().startswith(expected)
    assert noop[0] == 250


async def test_ten_megabyte_line(server: RunningServer) -> None:
    def go() -> Any:
        with client(server) as c:
            chunk = b"A" * 65536
            for _ in range(160):  # 10 MiB without a line break
                c.send_raw(chunk)
            c.send_raw(b"\r\n")
            reply = c.read_reply()
            return reply, c.noop()

    reply, noop = await in_thread(go)
    assert reply[0] == 500 and "Line too long" in reply[1]
    assert noop[0] == 250


async def test_oversize_message_gets_552_for_each_recipient(server: RunningServer) -> None:
    def go() -> Any:
        with client(server) as c:
            c.lhlo()
            big = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 400  # 400 KB > 200 KB limit
            return c.send_message("s@x.y", ["alice@example.com", "bob@example.com"], big), c.noop()

    (rcpts, replies), noop = await in_thread(go)
    assert [r[0] for r in replies] == [552, 552] and all("5.3.4" in r[1] for r in replies)
    assert noop[0] == 250
    assert await stored(server, "alice") == []


async def test_quota_reached_during_delivery_is_permanent_for_that_recipient(server: RunningServer) -> None:
    store = server.store
    user = await server.services.users.find("bob")
    await store.set_quota(user.id, len(MESSAGE) + 10)

    def go() -> Any:
        with client(server) as c:
            c.lhlo()
            # no SIZE: the recipient is accepted, the store finds the quota exceeded for the second copy
            first = c.send_message("s@x.y", ["bob@example.com"], MESSAGE)
            second = c.send_message("s@x.y", ["bob@example.com"], MESSAGE)
            return first, second

    first, second = await in_thread(go)
    assert first[1][0][0] == 250
    assert second[0][0][0] == 452 or second[1][0][0] == 552


async def test_starttls_and_injection(tmp_path: Path, deployment: Deployment) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    overrides = {"lmtp": {"starttls": True, "cert": str(cert_file), "key": str(key_file)}}
    async with running_server(tmp_path / "data", deployment.overrides(overrides)) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")
        ctx = ssl.create_default_context()
        ca.configure_trust(ctx)

        def go() -> Any:
            with client(srv) as c:
                c.lhlo()
                assert "STARTTLS" in c.capabilities
                # plaintext pipelined after STARTTLS must never be executed
                c.send_raw(b"STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n")
                assert c.read_reply()[0] == 220
                c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost")
                after = c.mail("a@b.c")  # LHLO state was reset by TLS: 503, not "nested MAIL"
                c.lhlo()
                assert "STARTTLS" not in c.capabilities
                result = c.send_message("a@b.c", ["alice@example.com"], MESSAGE)
                return after, result

        after, result = await in_thread(go)
        assert after[0] == 503 and "LHLO" in after[1]
        assert result[1][0][0] == 250


async def test_idle_connections_are_closed(tmp_path: Path, deployment: Deployment) -> None:
    async with running_server(tmp_path, deployment.overrides({"limits": {"idle_timeout": 0.5}})) as srv:
        def go() -> bytes:
            with socket.create_connection(srv.address("lmtp"), timeout=30) as s:
                data = b""
                while True:
                    chunk = s.recv(1024)
                    if not chunk:
                        return data
                    data += chunk

        data = await in_thread(go)
        assert data.startswith(b"220 ") and b"421 4.4.2" in data


async def test_swaks_black_box(server: RunningServer) -> None:
    swaks = shutil.which("swaks")
    if swaks is None:
        if os.environ.get("CI") == "true":
            pytest.fail("swaks is not installed (scripts/dev.sh test installs it)")
        pytest.skip("swaks is not installed")
    host, port = server.address("lmtp")

    def go() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [swaks, "--protocol", "LMTP", "--server", host, "--port", str(port), "--from", "s@example.net",
             "--to", "alice@example.com,nobody@example.com", "--header", "Subject: swaks"],
            capture_output=True, text=True, timeout=60)

    proc = await in_thread(go)
    assert "<** 550 5.1.1" in proc.stdout  # the unknown recipient
    assert "<-  250 2.0.0 <alice@example.com> Delivered" in proc.stdout
    messages = await stored(server, "alice")
    assert len(messages) == 1 and b"Subject: swaks" in messages[0]
