"""POP3 over real sockets against the whole server (real store, real MIME code) on each deployment: WildDuck's
semantics, the interplay with IMAP sessions of the same user, limits, failures and hostile clients."""

from __future__ import annotations

import dataclasses
import poplib
import ssl
import tracemalloc
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio
import trio.testing

from tests.deployments import Deployment
from tests.sessions.test_session_lifecycle import Client as IMAPClient
from tests.sessions.test_session_lifecycle import LineClient
from wildduck.domain.maildrop import MaildropService
from wildduck.errors import StoreError
from wildduck.ports import Backends
from wildduck.sessions.pop3 import POP3Services, POP3Settings, serve_pop3_connection
from wildduck.testing.server import RunningServer, free_port, running_server

T = TypeVar("T")


def message(n: int, body: bytes = b"") -> bytes:
    return (b"From: s@example.net\r\nTo: alice@example.com\r\nSubject: message %d\r\n"
            b"Message-ID: <m%d@example.net>\r\n\r\n.a line starting with a dot\r\nbody %d\r\n" % (n, n, n)) + body


class POP3(LineClient):
    """A bare POP3 client: one command, its status line, and the lines of a multi-line answer (dot-unstuffed)
    when asked for."""

    @classmethod
    async def connect(cls, srv: RunningServer, name: str = "pop3") -> POP3:
        c = cls(await trio.open_tcp_stream(*srv.address(name)))
        assert (await c.line()).startswith(b"+OK")
        return c

    async def command(self, text: str) -> bytes:
        await self.send(text.encode() + b"\r\n")
        return await self.line()

    async def multi(self, text: str) -> tuple[bytes, list[bytes]]:
        status = await self.command(text)
        if not status.startswith(b"+OK"):
            return status, []
        lines = []
        while (line := await self.line()) != b".":
            lines.append(line[1:] if line.startswith(b".") else line)
        return status, lines

    async def login(self, user: str = "alice", password: str = "pw") -> bytes:
        assert (await self.command(f"USER {user}")).startswith(b"+OK")
        return await self.command(f"PASS {password}")


async def deliver(srv: RunningServer, *raws: bytes, to: str = "alice@example.com") -> None:
    recipient = await srv.services.delivery.resolve(to)
    for raw in raws:
        (outcome,) = await srv.services.delivery.deliver(raw, [recipient])
        assert not isinstance(outcome, Exception), outcome


async def flags_in(srv: RunningServer, path: str, user: str = "alice") -> dict[bytes, tuple[str, ...]]:
    """Message-ID -> flags of every message in ``path``."""
    s = srv.services
    u = await s.users.find(user)
    box = await s.mailboxes.get(u.id, path)
    records = await s.messages.records(box.id, [m.uid for m in await s.messages.summaries(box.id)], content=False)
    return {(r.message_id or "").encode(): r.flags for r in records}


@pytest.fixture
async def server(tmp_path: Path, deployment: Deployment) -> AsyncIterator[RunningServer]:
    pop3 = {"idle_timeout": 2.0, "max_connections_per_user": 3}
    async with running_server(tmp_path, deployment.overrides({"pop3": pop3})) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")
        yield srv


async def test_a_session_reads_marks_seen_and_moves_deleted_mail_to_trash_at_quit(server: RunningServer) -> None:
    await deliver(server, *(message(n) for n in range(1, 5)))
    with trio.fail_after(30):
        c = await POP3.connect(server)
        assert (await c.login()).startswith(b"+OK")
        assert await c.command("STAT") == b"+OK 4 %d" % sum(len(message(n)) for n in range(1, 5))
        _, uidls = await c.multi("UIDL")
        status, lines = await c.multi("RETR 1")
        assert status == b"+OK %d octets" % len(message(1))
        assert b"\r\n".join(lines) + b"\r\n" == message(1)  # byte for byte, dot-unstuffed
        _, top = await c.multi("TOP 2 0")
        assert top[-1] == b"" and top[0] == b"From: s@example.net"
        assert (await c.command("DELE 3")).startswith(b"+OK")
        # before QUIT nothing has changed
        assert all("\\Seen" not in f for f in (await flags_in(server, "INBOX")).values())
        assert (await c.command("QUIT")).startswith(b"+OK")
        assert await c.closed()
    inbox, trash = await flags_in(server, "INBOX"), await flags_in(server, "Trash")
    assert set(inbox) == {b"<m1@example.net>", b"<m2@example.net>", b"<m4@example.net>"}
    assert inbox[b"<m1@example.net>"] == ("\\Seen",)  # RETR marks seen
    assert inbox[b"<m2@example.net>"] == ()  # TOP does not
    assert trash == {b"<m3@example.net>": ("\\Seen",)}
    # UIDLs are stable across sessions (the moved message is gone from the listing)
    c = await POP3.connect(server)
    await c.login()
    _, again = await c.multi("UIDL")
    assert [u.split()[1] for u in again] == [u.split()[1] for n, u in enumerate(uidls) if n != 2]


async def test_a_dropped_connection_changes_nothing(server: RunningServer) -> None:
    await deliver(server, message(1), message(2))
    with trio.fail_after(30):
        c = await POP3.connect(server)
        await c.login()
        await c.multi("RETR 1")
        await c.command("DELE 2")
        await c.stream.aclose()
        await trio.sleep(0.2)
    assert await flags_in(server, "INBOX") == {b"<m1@example.net>": (), b"<m2@example.net>": ()}
    assert await flags_in(server, "Trash") == {}


async def test_the_maildrop_is_a_snapshot_of_the_newest_messages(tmp_path: Path, deployment: Deployment) -> None:
    async with running_server(tmp_path, deployment.overrides({"pop3": {"max_messages": 3}})) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")
        await deliver(srv, *(message(n) for n in range(1, 6)))
        with trio.fail_after(30):
            c = await POP3.connect(srv)
            await c.login()
            _, listing = await c.multi("LIST")
            assert len(listing) == 3
            status, first = await c.multi("RETR 1")
            assert b"Subject: message 3" in first  # the newest three, oldest first
            await deliver(srv, message(6))
            assert (await c.command("STAT")).startswith(b"+OK 3 ")  # new mail waits for the next login
            assert (await c.command("QUIT")).startswith(b"+OK")
            c = await POP3.connect(srv)
            await c.login()
            _, listing = await c.multi("LIST")
            assert len(listing) == 3
            _, first = await c.multi("TOP 1 0")
            assert b"Subject: message 4" in first


async def test_imap_sees_the_quit_at_once(server: RunningServer) -> None:
    """QUIT's changes are nudged: an IDLEing IMAP session of the user gets the \\Seen flag and the EXPUNGE."""
    await deliver(server, message(1), message(2))
    with trio.fail_after(30):
        imap = await IMAPClient.connect(server)
        await imap.login()
        await imap.command("s", "SELECT INBOX")
        await imap.send(b"i IDLE\r\n")
        assert (await imap.line()).startswith(b"+ ")
        c = await POP3.connect(server)
        await c.login()
        await c.multi("RETR 1")
        await c.command("DELE 2")
        assert (await c.command("QUIT")).startswith(b"+OK")
        pushed = await imap.until(b"* 2 EXPUNGE")
        assert pushed[0].startswith(b"* 1 FETCH") and b"\\Seen" in pushed[0], pushed
        await imap.send(b"DONE\r\n")
        assert (await imap.line()).startswith(b"i OK")


async def test_mail_expunged_through_imap_meanwhile(server: RunningServer) -> None:
    """RETR of a message expunged elsewhere answers -ERR and the session goes on, also for a message read before
    (whose content is cached: the nudge about INBOX makes RETR ask the store again); QUIT does not fail for it."""
    await deliver(server, message(1), message(2), message(3))
    with trio.fail_after(30):
        c = await POP3.connect(server)
        await c.login()
        status, lines = await c.multi("RETR 1")  # read once: kept in the content cache
        assert status.startswith(b"+OK") and b"body 1" in lines
        imap = await IMAPClient.connect(server)
        await imap.login()
        await imap.command("s", "SELECT INBOX")
        await imap.command("d", "STORE 1:2 +FLAGS.SILENT (\\Deleted)")
        await imap.command("e", "EXPUNGE")
        status = await c.command("RETR 1")
        assert status.startswith(b"-ERR") and b"deleted" in status
        assert (await c.command("DELE 2")).startswith(b"+OK")
        status, lines = await c.multi("RETR 3")
        assert status.startswith(b"+OK") and b"body 3" in lines
        assert (await c.command("QUIT")).startswith(b"+OK")
    assert await flags_in(server, "INBOX") == {b"<m3@example.net>": ("\\Seen",)}
    assert await flags_in(server, "Trash") == {}


async def test_two_sessions_deleting_the_same_message(server: RunningServer) -> None:
    await deliver(server, message(1), message(2))
    with trio.fail_after(30):
        a, b = await POP3.connect(server), await POP3.connect(server)
        for c in (a, b):
            assert (await c.login()).startswith(b"+OK")
            assert (await c.command("DELE 1")).startswith(b"+OK")
        assert (await a.command("QUIT")).startswith(b"+OK")
        assert (await b.command("QUIT")).startswith(b"+OK")
    assert list(await flags_in(server, "Trash")) == [b"<m1@example.net>"]
    assert list(await flags_in(server, "INBOX")) == [b"<m2@example.net>"]


async def test_pop3_and_imap_changing_the_mailbox_at_once(server: RunningServer) -> None:
    """Three POP3 sessions reading and deleting while IMAP flags and moves messages away and new mail arrives:
    every QUIT succeeds and every message ends in exactly one mailbox (none lost, none duplicated)."""
    total = 40
    await deliver(server, *(message(n) for n in range(1, total + 1)))
    alice = await server.services.users.find("alice")
    await server.services.mailboxes.create(alice.id, "Archive")

    async def pop3_worker(k: int) -> None:
        c = await POP3.connect(server)
        assert (await c.login()).startswith(b"+OK")
        _, listing = await c.multi("LIST")
        for n in range(1 + k, len(listing) + 1, 3):
            await c.multi(f"RETR {n}")
            if n % 2:
                assert (await c.command(f"DELE {n}")).startswith(b"+OK")
        assert (await c.command("QUIT")).startswith(b"+OK")

    async def imap_worker() -> None:
        imap = await IMAPClient.connect(server)
        await imap.login()
        await imap.command("s", "SELECT INBOX")
        for _ in range(5):
            assert (await imap.command("f", "STORE 1:* +FLAGS.SILENT (\\Flagged)"))[-1].startswith(b"f OK")
            assert (await imap.command("m", "MOVE 1:2 Archive"))[-1].startswith(b"m OK")
        await imap.command("o", "LOGOUT")

    with trio.fail_after(60):
        async with trio.open_nursery() as n:
            for k in range(3):
                n.start_soon(pop3_worker, k)
            n.start_soon(imap_worker)
            n.start_soon(deliver, server, *(message(n) for n in range(total + 1, total + 11)))
    places = [await flags_in(server, path) for path in ("INBOX", "Trash", "Archive")]
    everywhere = [mid for place in places for mid in place]
    assert sorted(everywhere) == sorted(b"<m%d@example.net>" % n for n in range(1, total + 11))
    assert places[1] and all("\\Seen" in f for f in places[1].values())  # deleted through POP3: seen
    assert 0 < len(places[2]) <= 10  # fewer when POP3 had moved a message IMAP was about to move


async def test_too_many_connections_answer_in_use(server: RunningServer) -> None:
    with trio.fail_after(30):
        held = [await POP3.connect(server) for _ in range(3)]
        for c in held:
            assert (await c.login()).startswith(b"+OK")
        extra = await POP3.connect(server)
        assert (await extra.login()).startswith(b"-ERR [IN-USE]")
        await held[0].command("QUIT")
        await trio.sleep(0.1)
        again = await POP3.connect(server)
        assert (await again.login()).startswith(b"+OK")


async def test_failed_logins_are_limited_and_closed(tmp_path: Path, deployment: Deployment) -> None:
    async with running_server(tmp_path, deployment.overrides({"limits": {"auth_failures": 2}})) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")
        srv.services.login.policy = dataclasses.replace(srv.services.login.policy, failure_penalty=0.0)
        with trio.fail_after(30):
            c = await POP3.connect(srv)
            assert (await c.login(password="wrong")).startswith(b"-ERR [AUTH]")
            assert (await c.login(password="wrong")).startswith(b"-ERR [AUTH]")
            assert (await c.login()).startswith(b"-ERR [LOGIN-DELAY]")  # locked, right password or not
            assert await c.closed()  # three failures end the connection
            imap = await IMAPClient.connect(srv)  # the lock is the account's, shared with IMAP
            assert b"NO [ALERT]" in (await imap.command("l", "LOGIN alice pw"))[-1]


async def test_plaintext_login_is_refused_off_loopback_without_tls(server: RunningServer) -> None:
    s = server.services
    services = POP3Services(s.login, MaildropService(s.mailboxes, s.messages), s.messages)
    client, stream = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as n:
        n.start_soon(lambda: serve_pop3_connection(stream, services, POP3Settings("h"), peer="192.0.2.7:4000"))
        c = POP3(client)
        assert (await c.line()).startswith(b"+OK")
        _, caps = await c.multi("CAPA")
        assert b"USER" not in caps and b"SASL PLAIN" not in caps
        assert (await c.command("USER alice")).startswith(b"-ERR [AUTH]")
        assert (await c.command("AUTH PLAIN AGFsaWNlAHB3")).startswith(b"-ERR [AUTH]")
        assert (await c.command("QUIT")).startswith(b"+OK")


async def test_auth_plain_and_utf8(server: RunningServer) -> None:
    await server.services.users.create("jörg", "pässwörd", address="jorg@example.com")
    with trio.fail_after(30):
        c = await POP3.connect(server)
        assert (await c.command("UTF8")).startswith(b"+OK")
        assert (await c.command("USER jörg")).startswith(b"+OK")
        assert (await c.command("PASS pässwörd")).startswith(b"+OK")
        assert (await c.command("UTF8")).startswith(b"-ERR")  # only before logging in
        c = await POP3.connect(server)
        assert (await c.command("AUTH PLAIN AGFsaWNlAHB3")).startswith(b"+OK")  # \0alice\0pw
        c = await POP3.connect(server)
        assert await c.command("AUTH PLAIN") == b"+ "
        assert (await c.command("AGFsaWNlAHB3")).startswith(b"+OK")


async def test_implicit_tls_and_stls(tmp_path: Path, deployment: Deployment) -> None:
    tls_port = free_port()
    async with running_server(tmp_path, deployment.overrides({"pop3": {"tls_port": tls_port}})) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")
        await deliver(srv, message(1))
        context = ssl.create_default_context(cafile=str(tmp_path / "tls-selfsigned-cert.pem"))
        context.check_hostname = False
        host, port = srv.address("pop3")

        def clients() -> list[Any]:
            implicit = poplib.POP3_SSL(host, tls_port, context=context, timeout=30)
            implicit.user("alice")
            implicit.pass_("pw")
            answers: list[Any] = [implicit.stat(), implicit.retr(1)[1]]
            implicit.quit()
            plain = poplib.POP3(host, port, timeout=30)
            assert "STLS" in plain.capa()
            plain.stls(context)
            assert "STLS" not in plain.capa()
            plain.user("alice")
            plain.pass_("pw")
            answers.append(plain.stat())
            plain.quit()
            return answers

        with trio.fail_after(60):
            first, lines, again = await trio.to_thread.run_sync(clients)
        assert first == again == (1, len(message(1)))
        assert b"\r\n".join(lines) + b"\r\n" == message(1)


async def test_commands_pipelined_behind_stls_are_never_executed(tmp_path: Path, deployment: Deployment) -> None:
    async with running_server(tmp_path, deployment.overrides()) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")
        with trio.fail_after(30):
            stream = await trio.open_tcp_stream(*srv.address("pop3"))
            c = POP3(stream)
            await c.line()
            await c.send(b"STLS\r\nUSER alice\r\nPASS pw\r\n")
            assert (await c.line()).startswith(b"+OK")
            context = ssl.create_default_context(cafile=str(tmp_path / "tls-selfsigned-cert.pem"))
            context.check_hostname = False
            tls = trio.SSLStream(stream, context, server_hostname="localhost")
            await tls.do_handshake()
            c = POP3(tls)
            # the pipelined USER/PASS were dropped: PASS now has no USER before it
            assert (await c.command("PASS pw")).startswith(b"-ERR")
            assert (await c.login()).startswith(b"+OK")


async def test_an_idle_client_is_disconnected(server: RunningServer) -> None:
    with trio.fail_after(30):
        c = await POP3.connect(server)
        await c.login()
        assert (await c.line()).startswith(b"-ERR")  # [pop3] idle_timeout is 2 s here
        assert await c.closed()


async def test_a_deleted_account_ends_its_sessions_at_once(tmp_path: Path, deployment: Deployment) -> None:
    async with running_server(tmp_path, deployment.overrides({"pop3": {"idle_timeout": 60.0}})) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")
        with trio.fail_after(30):
            c = await POP3.connect(srv)
            await c.login()
            await srv.services.users.delete(await srv.services.users.find("alice"))
            with trio.fail_after(10):  # well before the idle timeout
                assert (await c.line()).startswith(b"-ERR [SYS/PERM]")
                assert await c.closed()


async def test_shutdown_says_goodbye(tmp_path: Path, deployment: Deployment) -> None:
    async with running_server(tmp_path, deployment.overrides()) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")
        with trio.fail_after(30):
            c = await POP3.connect(srv)
            await c.login()
            srv.stop()
            assert (await c.line()).startswith(b"-ERR [SYS/TEMP]")
            assert await c.closed()


async def test_hostile_input_gets_errors_and_is_never_buffered(server: RunningServer) -> None:
    with trio.fail_after(60):
        c = await POP3.connect(server)
        chunk = b"A" * 65536
        for _ in range(160):  # a 10 MB line
            await c.send(chunk)
        await c.send(b"\r\n")
        assert (await c.line()).startswith(b"-ERR")
        assert (await c.command("US\x00ER alice")).startswith(b"-ERR")
        assert (await c.command("STAT")).startswith(b"-ERR")  # not before logging in
        assert (await c.login()).startswith(b"+OK")  # the session survived all of it
        for _ in range(19):
            assert (await c.command("BOGUS")).startswith(b"-ERR")
        assert b"too many" in await c.command("BOGUS")
        assert await c.closed()


class _FailingQuit:
    """The real ``Messages`` role whose QUIT update fails as a lost database would."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def flag_and_move(self, *args: Any, **kwargs: Any) -> Any:
        raise StoreError("database is locked")


async def test_a_failed_quit_answers_sys_temp_and_changes_nothing(tmp_path: Path, deployment: Deployment) -> None:
    def wrap(backends: Backends) -> Backends:
        return dataclasses.replace(backends, messages=_FailingQuit(backends.messages))

    async with running_server(tmp_path, deployment.overrides(), wrap=wrap) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")
        await deliver(srv, message(1), message(2))
        with trio.fail_after(30):
            c = await POP3.connect(srv)
            await c.login()
            await c.multi("RETR 1")
            await c.command("DELE 2")
            assert (await c.command("QUIT")).startswith(b"-ERR [SYS/TEMP]")
            assert await c.closed()
        assert await flags_in(srv, "INBOX") == {b"<m1@example.net>": (), b"<m2@example.net>": ()}


async def test_a_slow_reader_of_a_big_message_is_cut_off_with_flat_memory(tmp_path: Path,
                                                                          deployment: Deployment) -> None:
    """A 20 MB RETR to a client that stops reading: the send deadline ends the session; the server holds the
    message once (its blobs) plus one write, never the whole dot-stuffed answer."""
    overrides = {"limits": {"send_timeout": 1.0, "max_message_size": 40 << 20}, "pop3": {"idle_timeout": 30.0}}
    async with running_server(tmp_path, deployment.overrides(overrides)) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")
        line = b"." + b"x" * 76 + b"\r\n"  # every line dot-stuffed: the answer is bigger than the message
        big = b"From: s@example.net\r\nSubject: big\r\n\r\n" + line * (20_000_000 // len(line))
        await deliver(srv, big)
        with trio.fail_after(60):
            c = await POP3.connect(srv)
            await c.login()
            tracemalloc.start()
            try:
                await c.send(b"RETR 1\r\n")
                await trio.sleep(3)  # read nothing: the server's writes stall, the deadline passes
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            received = len(c.buf)
            try:
                while data := await c.stream.receive_some(1 << 20):
                    received += len(data)
            except trio.BrokenResourceError:
                pass
        assert received < len(big)  # cut off: the socket buffers held only part of it
        assert peak < 1.5 * len(big), f"{peak} bytes traced for a {len(big)} byte message"


async def in_thread(fn: Callable[[], T]) -> T:
    with trio.fail_after(60):
        return await trio.to_thread.run_sync(fn)


async def test_poplib(server: RunningServer) -> None:
    """The standard library's client: every command it has."""
    await deliver(server, message(1), message(2, b"\r\n.\r\n..\r\n"))
    host, port = server.address("pop3")

    def run() -> dict[str, Any]:
        p = poplib.POP3(host, port, timeout=30)
        out: dict[str, Any] = {"capa": p.capa()}
        p.user("alice")
        p.pass_("pw")
        out.update(stat=p.stat(), list=p.list()[1], uidl=p.uidl()[1], uidl1=p.uidl(1), retr=p.retr(2)[1],
                   top=p.top(2, 1)[1], noop=p.noop(), dele=p.dele(1), rset=p.rset(), quit=p.quit())
        return out

    out = await in_thread(run)
    assert {"TOP", "UIDL", "USER", "SASL", "RESP-CODES", "PIPELINING", "UTF8", "AUTH-RESP-CODE"} <= set(out["capa"])
    assert out["stat"] == (2, len(message(1)) + len(message(2, b"\r\n.\r\n..\r\n")))
    assert out["list"] == [b"1 %d" % len(message(1)), b"2 %d" % len(message(2, b"\r\n.\r\n..\r\n"))]
    assert b"\r\n".join(out["retr"]) + b"\r\n" == message(2, b"\r\n.\r\n..\r\n")
    assert out["top"][-1] == b".a line starting with a dot"
    assert out["uidl1"].split()[2] == out["uidl"][0].split()[1]
    assert all(out[k].startswith(b"+OK") for k in ("noop", "dele", "rset", "quit"))


async def test_pipelined_commands_are_answered_in_order(server: RunningServer) -> None:
    await deliver(server, message(1), message(2))
    with trio.fail_after(30):
        c = await POP3.connect(server)
        await c.send(b"USER alice\r\nPASS pw\r\nSTAT\r\nRETR 1\r\nLIST 2\r\nTOP 2 0\r\nDELE 1\r\nQUIT\r\n")
        lines = []
        while True:
            lines.append(await c.line())
            if lines[-1].startswith(b"+OK localhost closing"):
                break
    statuses = [line.split()[0] for line in lines if line.startswith((b"+OK", b"-ERR"))]
    assert statuses == [b"+OK"] * 8
    assert lines[2].startswith(b"+OK 2 ") and lines[3] == b"+OK %d octets" % len(message(1))
    retr_end = lines.index(b".")
    assert lines[retr_end + 1] == b"+OK 2 %d" % len(message(2))
    assert lines[retr_end + 2].startswith(b"+OK") and lines[-2].startswith(b"+OK message 1 deleted")
