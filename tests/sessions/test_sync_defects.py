"""What one session's change tells the others: named after the defects they pin down."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.sessions.test_session_lifecycle import Client
from wildduck.domain.messages import MessageService
from wildduck.ports import Backends
from wildduck.testing.server import RunningServer, running_server

MESSAGE = b"From: a@example.net\r\nTo: alice@example.com\r\nSubject: hi\r\n\r\nhello\r\n"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")
        yield srv


async def _append(srv: RunningServer, raw: bytes = MESSAGE, path: str = "INBOX") -> None:
    alice = await srv.services.users.find("alice")
    await srv.services.messages.append(alice, await srv.services.mailboxes.get(alice.id, path), raw)


async def _idle(srv: RunningServer, mailbox: str = "INBOX") -> Client:
    c = await Client.connect(srv)
    await c.login()
    await c.command("s", f"SELECT {mailbox}")
    await c.send(b"i IDLE\r\n")
    assert (await c.line()).startswith(b"+ ")
    return c


async def test_fetch_that_sets_seen_nudges_other_sessions(server: RunningServer) -> None:
    """Defect: FETCH BODY[] set \\Seen without a nudge; another session idling on the mailbox never saw it."""
    await _append(server)
    with trio.fail_after(20):
        watcher = await _idle(server)
        reader = await Client.connect(server)
        await reader.login()
        await reader.command("s", "SELECT INBOX")
        reply = await reader.command("f", "FETCH 1 BODY[]")
        assert b"\\Seen" in b"".join(reply)
        # the watcher selected first, so the message is \\Recent in its session
        assert (await watcher.until(b"* 1 FETCH"))[-1] == b"* 1 FETCH (FLAGS (\\Seen \\Recent))"


async def test_fetch_binary_sets_seen_and_reports_flags(server: RunningServer) -> None:
    """Defect: two "does this FETCH set \\Seen" predicates disagreed on BINARY[] (one set the flag, the other
    did not report it)."""
    await _append(server)
    with trio.fail_after(20):
        c = await Client.connect(server)
        await c.login()
        await c.command("s", "SELECT INBOX")
        peek = b"".join(await c.command("p", "FETCH 1 BINARY.PEEK[]"))
        assert b"FLAGS" not in peek
        reply = b"".join(await c.command("b", "FETCH 1 BINARY[]"))
        assert b"FLAGS (\\Seen \\Recent)" in reply
        assert b"FLAGS (\\Seen \\Recent)" in b"".join(await c.command("f", "FETCH 1 FLAGS"))


class _DeliveryDuringSnapshot:
    """The real ``Messages`` role, with one delivery committed (and nudged) right after the first SELECT
    snapshot is read: the race a busy mailbox runs every day."""

    def __init__(self, backends: Backends) -> None:
        self.inner = backends.messages
        self.backends = backends
        self.armed = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def mailbox_snapshot(self, mailbox_id: str) -> Any:
        snapshot = await self.inner.mailbox_snapshot(mailbox_id)
        if self.armed:
            self.armed = False
            b = self.backends
            messages = MessageService(self.inner, b.accounts, b.blobs, b.pubsub, default_quota=1 << 30,
                                      max_message_size=1 << 20)
            user = await b.accounts.get_user(snapshot.mailbox.user_id)
            await messages.append(user, snapshot.mailbox, MESSAGE)
        return snapshot


async def test_delivery_during_select_is_reported_by_select(tmp_path: Path) -> None:
    """Defect: a nudge drained while the SELECT snapshot was read was discarded; the delivery committed during
    SELECT was reported only at the next NOOP."""
    racing: list[_DeliveryDuringSnapshot] = []

    def wrap(backends: Backends) -> Backends:
        racing.append(_DeliveryDuringSnapshot(backends))
        return dataclasses.replace(backends, messages=racing[0])

    async with running_server(tmp_path, wrap=wrap) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")
        with trio.fail_after(20):
            c = await Client.connect(srv)
            await c.login()
            lines = await c.command("s", "SELECT INBOX")
        assert b"* 0 EXISTS" in lines and b"* 1 EXISTS" in lines, lines
        assert lines.index(b"* 1 EXISTS") < len(lines) - 1  # before the tagged OK
        assert not racing[0].armed


async def _watch_work(srv: RunningServer) -> Client:
    """A mailbox "Work" with one message, and a session idling on it."""
    alice = await srv.services.users.find("alice")
    await srv.services.mailboxes.create(alice.id, "Work")
    await _append(srv, path="Work")
    return await _idle(srv, "Work")


async def test_delete_of_a_mailbox_selected_elsewhere_ends_that_session(server: RunningServer) -> None:
    """Defect: DELETE of a mailbox another session had selected told nobody; that session kept serving it."""
    with trio.fail_after(20):
        watcher = await _watch_work(server)
        other = await Client.connect(server)
        await other.login()
        await other.command("s", "SELECT Work")
        deleter = await Client.connect(server)
        await deleter.login()
        assert (await deleter.command("d", "DELETE Work"))[-1].startswith(b"d OK")
        assert (await watcher.until(b"* BYE"))[-1].startswith(b"* BYE the selected mailbox was deleted")
        assert await watcher.closed()
        # a session not idling learns it at its next command, and is served nothing of the deleted mailbox
        await other.send(b"f FETCH 1 BODY[]\r\n")
        lines = await other.until(b"* BYE")
        assert all(b"hello" not in line for line in lines)
        assert await other.closed()


async def test_rename_of_a_mailbox_selected_elsewhere_is_told(server: RunningServer) -> None:
    with trio.fail_after(20):
        watcher = await _watch_work(server)
        renamer = await Client.connect(server)
        await renamer.login()
        assert (await renamer.command("r", "RENAME Work Play"))[-1].startswith(b"r OK")
        assert (await watcher.until(b"* NO"))[-1] == b"* NO the selected mailbox was renamed by another session"
        await watcher.send(b"DONE\r\n")
        assert (await watcher.until(b"i "))[-1].startswith(b"i OK")
        reply = b"".join(await watcher.command("f", "FETCH 1 BODY.PEEK[TEXT]"))  # same messages, same UIDs
        assert b"hello" in reply
