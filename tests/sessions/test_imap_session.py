"""IMAP over real sockets with real clients (imaplib, imapclient), against the whole server."""

from __future__ import annotations

import base64
import imaplib
import re
import socket
import ssl
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import imapclient
import pytest
import trio
import trustme

from tests.protocols.mime.test_structure import MULTI
from wildduck.testing.lmtp_client import LMTPClient
from wildduck.testing.server import RunningServer, running_server

T = TypeVar("T")


async def in_thread(fn: Callable[[], T]) -> T:
    with trio.fail_after(60):
        return await trio.to_thread.run_sync(fn)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path, {"imap": {"enabled": True}}) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")
        await srv.services.users.create("bob", "pw", address="bob@example.com")
        yield srv


def deliver(srv: RunningServer, message: bytes, to: str = "alice@example.com") -> None:
    with LMTPClient(*srv.address("lmtp")) as c:
        c.lhlo()
        _r, replies = c.send_message("s@example.net", [to], message)
        assert replies[0][0] == 250


def login(srv: RunningServer, user: str = "alice") -> imaplib.IMAP4:
    m = imaplib.IMAP4(*srv.address("imap"))
    m.login(user, "pw")
    return m


async def test_login_select_fetch_round_trip(server: RunningServer) -> None:
    def go() -> None:
        deliver(server, MULTI)
        m = login(server)
        assert "IDLE" in m.capabilities and "UIDPLUS" in m.capabilities
        typ, data = m.select("INBOX")
        assert (typ, data) == ("OK", [b"1"])
        typ, data = m.fetch("1", "(BODY.PEEK[] RFC822.SIZE)")
        assert data[0][1] == MULTI and f"RFC822.SIZE {len(MULTI)}".encode() in data[1]
        typ, data = m.fetch("1", "(BODY.PEEK[1.1] BODY.PEEK[3.HEADER] BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert data[0][1] == b"Hello =\r\nworld \r\nagain"
        assert data[1][1] == b"Subject: inner\r\nFrom: x@y.z\r\n\r\n"
        assert data[2][1] == b"Subject: =?iso-8859-1?q?caf=E9?= time\r\n\r\n"
        typ, data = m.fetch("1", "(FLAGS)")
        assert data == [b"1 (FLAGS (\\Recent))"]  # PEEK did not set \Seen; this session saw it first
        typ, data = m.fetch("1", "(BODY[TEXT]<0.8>)")
        assert data[0][1] == b"preamble" and b"\\Seen" in data[1]
        m.logout()

    await in_thread(go)


async def test_bad_input_and_state_checks(server: RunningServer) -> None:
    def go() -> list[bytes]:
        with socket.create_connection(server.address("imap"), timeout=20) as s:
            f = s.makefile("rb")
            f.readline()
            s.sendall(b"a1 FETCH 1 FLAGS\r\na2 FROB\r\na3 LOGIN alice\r\n* x\r\na4 NO\x00OP\r\na5 NOOP\r\n")
            return [f.readline() for _ in range(5)]

    lines = await in_thread(go)
    assert lines[0].startswith(b"a1 BAD FETCH is not allowed in the not authenticated state")
    assert lines[1].startswith(b"a2 BAD unknown command")
    assert lines[2].startswith(b"a3 BAD LOGIN: missing password")
    assert lines[3].startswith(b"* BAD missing or invalid tag")
    assert lines[4].startswith(b"a4 BAD invalid character")


async def test_wrong_password(server: RunningServer) -> None:
    def go() -> str:
        m = imaplib.IMAP4(*server.address("imap"))
        try:
            m.login("alice", "nope")
        except imaplib.IMAP4.error as exc:
            return str(exc)
        return "logged in"

    assert "AUTHENTICATIONFAILED" in await in_thread(go)


async def test_store_search_copy_move_expunge(server: RunningServer) -> None:
    def go() -> None:
        for i in range(5):
            deliver(server, b"Subject: message %d\r\nFrom: sender%d@example.net\r\n\r\nbody number %d\r\n" % (i, i, i))
        c = imapclient.IMAPClient(*server.address("imap"), ssl=False)
        c.login("alice", "pw")
        c.select_folder("INBOX")
        assert c.search(["ALL"]) == [1, 2, 3, 4, 5]
        c.add_flags([2, 4], [imapclient.SEEN, b"$Important"])
        assert c.search(["SEEN"]) == [2, 4]
        assert c.search(["UNSEEN", "NOT", "SUBJECT", "message 0"]) == [3, 5]
        assert c.search(["BODY", "number 3"]) == [4]  # sequence 4 holds message 3
        assert c.search(["KEYWORD", "$Important", "FROM", "sender3"]) == [4]
        assert c.search(["OR", "LARGER", 10_000, "UID", "5"]) == [5]
        c.create_folder("Archive")
        c.copy([1, 2], "Archive")
        c.move([3], "Trash")
        assert c.search(["ALL"]) == [1, 2, 4, 5]
        c.set_flags([1], [imapclient.DELETED])
        c.expunge()
        assert c.search(["ALL"]) == [2, 4, 5]  # imapclient works with UIDs
        status = c.folder_status("Archive", ["MESSAGES", "UIDNEXT"])
        assert status[b"MESSAGES"] == 2 and status[b"UIDNEXT"] == 3
        assert c.folder_status("Trash", ["MESSAGES"])[b"MESSAGES"] == 1
        c.rename_folder("Archive", "Old/Archive")
        names = [f[2] for f in c.list_folders()]
        assert "Old/Archive" in names and "Archive" not in names
        c.delete_folder("Old/Archive")
        c.logout()

    await in_thread(go)


async def test_condstore_and_unchangedsince(server: RunningServer) -> None:
    def go() -> None:
        deliver(server, b"Subject: a\r\n\r\nx\r\n")
        deliver(server, b"Subject: b\r\n\r\ny\r\n")
        c = imapclient.IMAPClient(*server.address("imap"), ssl=False)
        c.login("alice", "pw")
        info = c.select_folder("INBOX", readonly=False)
        assert info[b"HIGHESTMODSEQ"] == 3  # 1 for the new mailbox, then two arrivals
        c.add_flags([1], [imapclient.FLAGGED])
        fetched = c.fetch([1, 2], ["MODSEQ", "FLAGS"])
        assert fetched[1][b"MODSEQ"] == (4,) and fetched[2][b"MODSEQ"] == (3,)
        assert list(c.fetch([1, 2], ["FLAGS"], modifiers=["CHANGEDSINCE 3"])) == [1]
        typ, data = c._imap._simple_command("STORE", "1,2", "(UNCHANGEDSINCE 3)", "+FLAGS", "(\\Seen)")
        assert typ == "OK" and b"MODIFIED 1" in c._imap.untagged_responses.get("OK", [b""])[-1] + data[-1]
        c.logout()

    await in_thread(go)


async def test_append_with_literal_and_appenduid(server: RunningServer) -> None:
    def go() -> None:
        m = login(server)
        typ, data = m.append("Drafts", "(\\Draft)", imaplib.Time2Internaldate(time.time()), MULTI)
        assert typ == "OK" and b"APPENDUID" in data[0]
        m.select("Drafts")
        typ, data = m.fetch("1", "(FLAGS BODY.PEEK[])")
        assert data[0][1] == MULTI and b"\\Draft" in data[1]
        m.logout()

    await in_thread(go)


async def test_oversize_literal_is_refused_before_it_is_sent(tmp_path: Path) -> None:
    async with running_server(tmp_path, {"imap": {"enabled": True}, "limits": {"max_message_size": 1000}}) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")

        def go() -> list[bytes]:
            with socket.create_connection(srv.address("imap"), timeout=20) as s:
                f = s.makefile("rb")
                f.readline()
                s.sendall(b"a LOGIN alice pw\r\n")
                f.readline()
                s.sendall(b"b APPEND INBOX {5000}\r\n")
                first = f.readline()
                s.sendall(b"c NOOP\r\n")
                return [first, f.readline()]

        first, after = await in_thread(go)
        assert first.startswith(b"b NO [TOOBIG]") and after.startswith(b"c OK")


async def test_idle_pushes_a_delivery(server: RunningServer) -> None:
    ready = threading.Event()

    def idler() -> tuple[list[Any], float]:
        c = imapclient.IMAPClient(*server.address("imap"), ssl=False)
        c.login("alice", "pw")
        c.select_folder("INBOX")
        c.idle()
        ready.set()
        started = time.monotonic()
        responses = c.idle_check(timeout=10)
        elapsed = time.monotonic() - started
        c.idle_done()
        c.logout()
        return responses, elapsed

    async def delivery() -> None:
        await trio.to_thread.run_sync(ready.wait)
        await trio.sleep(0.2)
        await trio.to_thread.run_sync(deliver, server, b"Subject: pushed\r\n\r\nnow\r\n")

    async with trio.open_nursery() as n:
        n.start_soon(delivery)
        responses, _elapsed = await in_thread(idler)
    assert (1, b"EXISTS") in responses


async def test_two_sessions_see_each_others_changes(server: RunningServer) -> None:
    def go() -> None:
        deliver(server, b"Subject: one\r\n\r\n1\r\n")
        deliver(server, b"Subject: two\r\n\r\n2\r\n")
        a, b = login(server), login(server)
        a.select("INBOX")
        b.select("INBOX")
        a.store("1", "+FLAGS", "(\\Deleted)")
        a.expunge()
        deliver(server, b"Subject: three\r\n\r\n3\r\n")
        # FETCH must not report the expunge (RFC 3501 7.4.1); NOOP does
        typ, data = b.fetch("2", "(FLAGS)")
        assert typ == "OK"
        b.noop()
        assert b.untagged_responses.get("EXPUNGE") == [b"1"]
        assert b.untagged_responses.get("EXISTS")[-1] == b"2"
        typ, data = b.fetch("1:*", "(UID)")
        assert [d for d in data] == [b"1 (UID 2)", b"2 (UID 3)"]
        a.logout()
        b.logout()

    await in_thread(go)


async def test_starttls_and_logindisabled(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_file, key_file = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    overrides = {"imap": {"enabled": True, "cert": str(cert_file), "key": str(key_file)}}
    async with running_server(tmp_path / "data", overrides) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")
        ctx = ssl.create_default_context()
        ca.configure_trust(ctx)

        def go() -> None:
            m = imaplib.IMAP4(*srv.address("imap"))
            assert "STARTTLS" in m.capabilities
            m.starttls(ssl_context=ctx)
            m.login("alice", "pw")
            m.select("INBOX")
            m.logout()

        await in_thread(go)


async def test_recent_belongs_to_the_first_session(server: RunningServer) -> None:
    def go() -> None:
        deliver(server, b"Subject: r\r\n\r\nx\r\n")
        a = login(server)
        a.select("INBOX")
        assert a.untagged_responses.get("RECENT") == [b"1"]
        b = login(server)
        b.select("INBOX")
        assert b.untagged_responses.get("RECENT") == [b"0"]
        assert b.search(None, "RECENT") == ("OK", [b""])
        assert a.search(None, "NEW") == ("OK", [b"1"]), a.search(None, "NEW")
        deliver(server, b"Subject: s\r\n\r\ny\r\n")
        a.noop()
        assert a.untagged_responses.get("RECENT")[-1] == b"2"
        a.logout()
        b.logout()

    await in_thread(go)


async def test_move_reports_expunge_to_the_mover_and_to_others(server: RunningServer) -> None:
    def go() -> None:
        deliver(server, b"Subject: m\r\n\r\nx\r\n")
        a, b = login(server), login(server)
        a.select("INBOX")
        b.select("INBOX")
        typ, data = a._simple_command("MOVE", "1", "Trash")
        assert typ == "OK" and a.untagged_responses.get("EXPUNGE") == [b"1"]
        b.noop()
        assert b.untagged_responses.get("EXPUNGE") == [b"1"]
        a.logout()
        b.logout()

    await in_thread(go)


async def test_search_body_and_text_through_the_index(server: RunningServer) -> None:
    messages = [
        b"Subject: Invoice =?utf-8?q?f=C3=BCr?= May\r\nFrom: Billing <bill@shop.example>\r\n\r\nPlease pay 42 EUR.\r\n",
        b"Subject: lunch\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes("Grüße, the INVOICE is paid".encode()).replace(b"\n", b"\r\n"),
        b"Subject: other\r\n\r\nnothing\r\n",
    ]

    def go() -> None:
        for raw in messages:
            deliver(server, raw)
        c = imapclient.IMAPClient(*server.address("imap"), ssl=False)
        c.login("alice", "pw")
        c.select_folder("INBOX")
        assert c.search(["BODY", "invoice"]) == [2]  # decoded base64, any case; not the subject
        assert c.search(["TEXT", "invoice"]) == [1, 2]  # the header counts for TEXT
        assert c.search(["TEXT", "invoice für"], charset="UTF-8") == [1]  # encoded words decoded
        assert c.search(["BODY", "grüße"], charset="UTF-8") == [2]
        assert c.search(["OR", "BODY", "42", "BODY", "nothing"]) == [1, 3]  # short needle
        assert c.search(["NOT", "TEXT", "invoice"]) == [3]
        assert c.search(["BODY", "invoice", "SUBJECT", "lunch"]) == [2]
        c.delete_messages([2])
        c.expunge()
        assert c.search(["BODY", "invoice"]) == []
        c.logout()

    await in_thread(go)


class _Deflated:
    """A raw IMAP client socket that switches to COMPRESS=DEFLATE (imaplib has no COMPRESS)."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=10)
        self.buf = b""
        self.deflate: Any = None
        self.inflate: Any = None

    def send(self, data: bytes) -> None:
        if self.deflate is not None:
            data = self.deflate.compress(data) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def start(self) -> bytes:
        """Compressed bytes from here on (both directions)."""
        self.deflate, self.inflate = zlib.compressobj(6, zlib.DEFLATED, -15), zlib.decompressobj(-15)
        rest, self.buf = self.buf, b""
        return self.inflate.decompress(rest) if rest else b""

    def until(self, tag: bytes) -> bytes:
        while not re.search(rb"(^|\r\n)" + tag + rb" [A-Z]+ [^\r\n]*\r\n", self.buf):
            chunk = self.sock.recv(65536)
            assert chunk, self.buf
            self.buf += self.inflate.decompress(chunk) if self.inflate is not None else chunk
        head, _, self.buf = self.buf.partition(tag + b" ")
        line, _, self.buf = self.buf.partition(b"\r\n")
        return head + tag + b" " + line + b"\r\n"


async def test_compress_deflate(server: RunningServer) -> None:
    body = b"Subject: big\r\n\r\n" + b"compressible line of text\r\n" * 4000

    def go() -> None:
        deliver(server, body)
        c = _Deflated(server.address("imap"))
        c.send(b"a CAPABILITY\r\n")
        assert b"COMPRESS=DEFLATE" not in c.until(b"a")  # only once authenticated
        c.send(b"b COMPRESS DEFLATE\r\n")
        assert b"b BAD" in c.until(b"b")
        c.send(b"c LOGIN alice pw\r\n")
        assert b"COMPRESS=DEFLATE" in c.until(b"c")
        c.send(b"d COMPRESS LZMA\r\n")
        assert b"d BAD" in c.until(b"d")
        # pipelined: the compressed SELECT follows the COMPRESS command in the same packet
        deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        select = deflate.compress(b"f SELECT INBOX\r\n") + deflate.flush(zlib.Z_SYNC_FLUSH)
        c.sock.sendall(b"e COMPRESS DEFLATE\r\n" + select)
        reply = c.until(b"e")
        assert reply.endswith(b"e OK DEFLATE active\r\n"), reply
        c.start()
        c.deflate = deflate
        assert b"f OK [READ-WRITE]" in c.until(b"f")
        c.send(b"g FETCH 1 BODY.PEEK[]\r\n")
        fetched = c.until(b"g")
        assert body in fetched and b"g OK" in fetched
        c.send(b"h COMPRESS DEFLATE\r\n")
        assert b"h NO [COMPRESSIONACTIVE]" in c.until(b"h")
        c.send(b"i LOGOUT\r\n")
        assert b"i OK" in c.until(b"i")
        c.sock.close()

    await in_thread(go)


async def test_compress_bomb_is_inflated_in_bounded_steps(server: RunningServer) -> None:
    """A few KB of deflate that inflate to 100 MB of one overlong line: refused, server memory stays flat."""
    def go() -> None:
        c = _Deflated(server.address("imap"))
        c.send(b"a LOGIN alice pw\r\n")
        c.until(b"a")
        c.send(b"b COMPRESS DEFLATE\r\n")
        c.until(b"b")
        c.start()
        c.send(b"c NOOP " + b"x" * 100_000_000 + b"\r\nd NOOP\r\n")
        reply = c.until(b"c")
        assert reply.startswith(b"c BAD") and b"line too long" in reply, reply
        assert b"d OK" in c.until(b"d")  # the session went on after skipping the line
        c.sock.close()

    await in_thread(go)
    await in_thread(lambda: login(server).logout())


async def test_connection_cap_and_login_rate_limit(tmp_path: Path) -> None:
    overrides = {"imap": {"enabled": True, "max_connections_per_user": 2},
                 "limits": {"auth_failures": 2, "auth_failure_window": 300.0}}
    async with running_server(tmp_path, overrides) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")
        await srv.services.users.create("bob", "pw", address="bob@example.com")

        def go() -> None:
            a, b = login(srv), login(srv)
            c = imaplib.IMAP4(*srv.address("imap"))
            with pytest.raises(imaplib.IMAP4.error, match=r"\[ALERT\] too many simultaneous connections"):
                c.login("alice", "pw")
            login(srv, "bob").logout()  # other users are not affected
            a.logout()
            assert c.login("alice", "pw")[0] == "OK"  # a slot was freed; the refused session may retry
            b.logout()
            c.logout()
            d = imaplib.IMAP4(*srv.address("imap"))
            for _ in range(2):
                with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
                    d.login("bob", "guess")
            with pytest.raises(imaplib.IMAP4.error, match=r"\[ALERT\] too many failed logins, try again in"):
                d.login("bob", "pw")  # even the right password, until the window closes
            d.logout()

        await in_thread(go)


async def test_hierarchy_and_subscriptions(server: RunningServer) -> None:
    def go() -> None:
        m = login(server)
        assert m.create("A/B/C")[0] == "OK"  # superior levels are created too
        listed = m.list('""', "A*")[1]
        assert listed == [b'(\\HasChildren) "/" A', b'(\\HasChildren) "/" A/B', b'(\\HasNoChildren) "/" A/B/C']
        assert m.create("D/")[0] == "OK"  # a trailing separator names the level itself
        assert m.list('""', "D")[1] == [b'(\\HasNoChildren) "/" D']
        assert m.subscribe("A/B")[0] == "OK"
        assert m.subscribe("Nope")[0] == "NO"
        assert m.delete("A/B")[0] == "OK"
        # the deleted level still leads to A/B/C; its subscription outlives it
        assert m.list('""', "A/%")[1] == [b'(\\Noselect \\HasChildren) "/" A/B']
        assert m.lsub('""', "A*")[1] == [b'(\\Noselect) "/" A/B']
        typ, _ = m._simple_command("LIST", "(SUBSCRIBED)", '""', '"A*"')
        assert m.untagged_responses.pop("LIST") == [b'(\\NonExistent \\Subscribed) "/" A/B']
        assert m.select("A/B")[0] == "NO"
        assert m.create("A/B")[0] == "OK"
        assert m.lsub('""', "A*")[1] == [b'() "/" A/B']  # the name was subscribed all along
        assert m.unsubscribe("A/B")[0] == "OK"
        assert m.unsubscribe("A/B")[0] == "NO"
        assert m.rename("A", "Z")[0] == "OK"
        assert [x for x in m.list('""', "*")[1] if b"A" in x or b"Z" in x] == [
            b'(\\HasChildren) "/" Z', b'(\\HasChildren) "/" Z/B', b'(\\HasNoChildren) "/" Z/B/C']
        m.logout()

    await in_thread(go)


async def test_flag_searches_answered_from_memory_agree_with_the_store(server: RunningServer) -> None:
    """SEARCH keys on flags, UIDs and MODSEQs are answered from the session's state; adding a key that needs the
    store (LARGER 0 matches every message) must not change the answer."""
    def go() -> None:
        for i in range(6):
            deliver(server, b"Subject: m%d\r\n\r\nbody\r\n" % i)
        c = imapclient.IMAPClient(*server.address("imap"), ssl=False)
        c.login("alice", "pw")
        c.select_folder("INBOX")
        c.add_flags([2, 4], [imapclient.SEEN])
        c.add_flags([3], ["$Work"])
        c.add_flags([5], [imapclient.DELETED])
        c.expunge()
        for criteria in (["UNSEEN"], ["SEEN"], ["KEYWORD", "$Work"], ["NOT", "KEYWORD", "$Work"], ["RECENT"],
                         ["OR", "SEEN", "KEYWORD", "$Work"], ["2:*"], ["UID", "4:*"], ["MODSEQ", "8"]):
            from_memory = c.search(criteria)
            assert c.search([*criteria, "LARGER", "0"]) == from_memory, criteria
        assert c.search(["UNSEEN"]) == [1, 3, 6] and c.search(["SEEN"]) == [2, 4]  # UIDs; 5 was expunged
        c.logout()

    await in_thread(go)


async def test_status_size_is_the_sum_of_the_message_sizes(server: RunningServer) -> None:
    """STATUS=SIZE (RFC 8438): the total RFC822.SIZE of the mailbox's messages, kept with every change."""
    small, big = b"Subject: a\r\n\r\nhello\r\n", MULTI

    def go() -> None:
        for raw in (small, big, small):
            deliver(server, raw)
        m = login(server)
        assert "STATUS=SIZE" in m.capabilities
        m.select("INBOX")
        fetched = b" ".join(d for d in m.fetch("1:*", "(RFC822.SIZE)")[1] if isinstance(d, bytes))
        sizes = [int(x) for x in re.findall(rb"RFC822\.SIZE (\d+)", fetched)]
        assert sizes == [len(small), len(big), len(small)]
        assert m.status("INBOX", "(SIZE MESSAGES)")[1] == [b"INBOX (SIZE %d MESSAGES 3)" % sum(sizes)]
        m.store("2", "+FLAGS", "(\\Deleted)")
        m.expunge()
        m.copy("1", "Trash")
        assert m.status("INBOX", "(SIZE)")[1] == [b"INBOX (SIZE %d)" % (2 * len(small))]
        assert m.status("Trash", "(SIZE)")[1] == [b"Trash (SIZE %d)" % len(small)]
        m.logout()

    await in_thread(go)
