"""A logout nudge (``UserService.logout``) over real sockets: IMAP sessions end with ``* BYE <reason>`` (in IDLE
and between commands), POP3 sessions with a plain ``-ERR <reason>``, the other users' sessions go on; the nudge
survives the string form that Redis and the node sockets carry."""

from __future__ import annotations

import imaplib
import poplib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

import pytest
import trio

from wildduck.model import Nudge
from wildduck.model.nudges import MAX_REASON
from wildduck.testing.clients import idling, pop3_session
from wildduck.testing.server import RunningServer, running_server

T = TypeVar("T")


async def in_thread(fn: Callable[[], T]) -> T:
    with trio.fail_after(60):
        return await trio.to_thread.run_sync(fn)






@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    # idle timeouts far beyond the test's deadlines: only the logout can end the sessions in time
    async with running_server(tmp_path, {"pop3": {"idle_timeout": 300.0}}) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")
        await srv.services.users.create("bob", "pw", address="bob@example.com")
        yield srv


def test_the_nudge_survives_its_string_form() -> None:
    nudge = Nudge.logout("maintenance: please log in again")
    back = Nudge.decode(nudge.encode())
    assert back == nudge
    assert back.is_logout and back.ends_account and back.reason == "maintenance: please log in again"
    # the other nudges are as before, and none of them is a logout
    for other in (Nudge.account_gone(), Nudge("m1", 7, "imap#3"), Nudge("m1", gone=True)):
        assert Nudge.decode(other.encode()) == other
        assert not other.is_logout
    assert Nudge.decode(Nudge.account_gone().encode()).ends_account
    assert Nudge.decode("m1") == Nudge("m1")  # older senders


def test_a_reason_is_one_line_of_text() -> None:
    assert Nudge.logout("").reason == "logout requested"
    assert Nudge.logout("  two\r\nlines\tand\x00more  ").reason == "two lines and more"
    assert Nudge.logout("[ALERT] not a code").reason == "ALERT] not a code"
    assert len(Nudge.logout("x" * 500).reason) == MAX_REASON
    # a reason with spaces (and what Redis and the node sockets would make of it) decodes whole
    assert Nudge.decode(Nudge.logout("a  b c").encode()).reason == "a b c"


async def test_logout_ends_imap_and_pop3_sessions_with_the_reason(server: RunningServer) -> None:
    users = server.services.users
    alice_idle = await in_thread(lambda: idling(server.address("imap"), "alice", "pw"))
    alice_busy = await in_thread(lambda: imaplib.IMAP4(*server.address("imap"), timeout=10))
    await in_thread(lambda: alice_busy.login("alice", "pw"))
    alice_pop = await in_thread(lambda: pop3_session(server.address("pop3"), "alice", "pw"))
    bob_idle = await in_thread(lambda: idling(server.address("imap"), "bob", "pw"))
    bob_pop = await in_thread(lambda: pop3_session(server.address("pop3"), "bob", "pw"))
    try:
        await users.logout(await users.find("alice"), "moving your mailbox")
        with trio.fail_after(10):  # far before any idle timeout
            assert await in_thread(alice_idle.readline) == b"* BYE moving your mailbox\r\n"
            assert await in_thread(alice_idle.readline) == b""  # closed
            # POP3 waiting for the client between commands: the goodbye comes at once, with no response code
            assert await in_thread(alice_pop._getline) == (b"-ERR moving your mailbox", 26)  # type: ignore[attr-defined]
            with pytest.raises(poplib.error_proto, match="EOF"):  # closed
                await in_thread(alice_pop._getline)  # type: ignore[attr-defined]
            # IMAP waiting for the client between commands: the goodbye comes at once too
            assert await in_thread(alice_busy.readline) == b"* BYE moving your mailbox\r\n"
            assert await in_thread(alice_busy.readline) == b""
        # bob's sessions go on
        bob_idle.send(b"DONE\r\n")
        assert (await in_thread(bob_idle.readline)).endswith(b"OK IDLE terminated\r\n")
        assert (await in_thread(bob_idle.noop))[0] == "OK"
        assert (await in_thread(bob_pop.noop)).startswith(b"+OK")
        # the account is still there: alice logs in again
        again = await in_thread(lambda: pop3_session(server.address("pop3"), "alice", "pw"))
        assert (await in_thread(again.quit)).startswith(b"+OK")
    finally:
        for client in (alice_idle, alice_busy, bob_idle):
            await in_thread(client.shutdown)
        for pop in (alice_pop, bob_pop):
            await in_thread(pop.close)


async def test_the_account_gone_nudge_is_unchanged(server: RunningServer) -> None:
    users = server.services.users
    alice_pop = await in_thread(lambda: pop3_session(server.address("pop3"), "alice", "pw"))
    try:
        await users.set_disabled(await users.find("alice"), True)
        with trio.fail_after(10):
            line, _ = await in_thread(alice_pop._getline)  # type: ignore[attr-defined]
            assert line == b"-ERR [SYS/PERM] this account is no longer available"
    finally:
        await in_thread(alice_pop.close)
