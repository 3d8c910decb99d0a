"""UNAUTHENTICATE (RFC 8437) against the whole server over a socket: back to the not-authenticated state on the same
connection, the selected mailbox left without an expunge, ENABLE undone, the connection slot and the nudge
subscription released."""

from __future__ import annotations

import imaplib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from tests.sessions.imap_transcripts import imap_server, run, selected
from wildduck.model import user_channel
from wildduck.testing.server import RunningServer

TRANSCRIPT = r"""
@deliver alice
Subject: one

1
@end
C: a CAPABILITY
S: * CAPABILITY {{[^\]]*}} MULTIAPPEND SORT {{[^\]]*}} SAVEDATE STARTTLS AUTH=PLAIN
S: a OK CAPABILITY completed
C: b UNAUTHENTICATE
S: b BAD UNAUTHENTICATE is not allowed in the not authenticated state
C: c LOGIN alice pw
S: c OK [CAPABILITY {{[^\]]*}} MULTIAPPEND SORT {{[^\]]*}} SAVEDATE UNAUTHENTICATE COMPRESS=DEFLATE] logged in
C: d ENABLE CONDSTORE UTF8=ACCEPT
S: * ENABLED CONDSTORE UTF8=ACCEPT
S: d OK ENABLE completed
C: e SELECT INBOX
""" + selected("e", exists=1, recent=1, unseen=1, uidnext=2, modseq="2") + r"""C: f STORE 1 +FLAGS.SILENT (\Deleted)
S: f OK STORE completed
C: g UNAUTHENTICATE extra
S: g BAD UNAUTHENTICATE: unexpected extra arguments
C: h UNAUTHENTICATE
S: h OK UNAUTHENTICATE completed
# not authenticated again: no selected mailbox, the capabilities of that state
C: i FETCH 1 FLAGS
S: i BAD FETCH is not allowed in the not authenticated state
C: j CAPABILITY
S: * CAPABILITY {{[^\]]*}} MULTIAPPEND SORT {{[^\]]*}} SAVEDATE STARTTLS AUTH=PLAIN
S: j OK CAPABILITY completed
C: k LOGIN bob pw
S: k OK [CAPABILITY {{[^\]]*}} MULTIAPPEND SORT {{[^\]]*}} SAVEDATE UNAUTHENTICATE COMPRESS=DEFLATE] logged in
C: l STATUS INBOX (MESSAGES)
S: * STATUS INBOX (MESSAGES 0)
S: l OK STATUS completed
C: m UNAUTHENTICATE
S: m OK UNAUTHENTICATE completed
# alice's message was not expunged (no implicit CLOSE), and ENABLE is undone (no MODSEQ without CONDSTORE)
C: n LOGIN alice pw
S: n OK [CAPABILITY {{[^\]]*}} MULTIAPPEND SORT {{[^\]]*}} SAVEDATE UNAUTHENTICATE COMPRESS=DEFLATE] logged in
C: o EXAMINE INBOX
""" + selected("o", exists=1, recent=0, unseen=1, uidnext=2, modseq="3", readonly=True) + r"""C: p FETCH 1 (FLAGS)
S: * 1 FETCH (FLAGS (\Deleted))
S: p OK FETCH completed
C: q LOGOUT
S: * BYE logging out
S: q OK LOGOUT completed
"""


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with imap_server(tmp_path, "alice", "bob", imap={"max_connections_per_user": 1}) as srv:
        yield srv


async def test_transcript(server: RunningServer) -> None:
    await run(server, TRANSCRIPT, "UNAUTHENTICATE")


async def test_a_second_connection_gets_the_slot(server: RunningServer) -> None:
    """With one connection allowed per user, a second connection gets in once the first has unauthenticated."""
    text = """
C: a LOGIN alice pw
S: a OK [CAPABILITY {{.*}}] logged in
C2: a LOGIN alice pw
S2: a NO [ALERT] too many simultaneous connections for this account (at most 1)
C: b UNAUTHENTICATE
S: b OK UNAUTHENTICATE completed
C2: b LOGIN alice pw
S2: b OK [CAPABILITY {{.*}}] logged in
C: c LOGIN alice pw
S: c NO [ALERT] too many simultaneous connections for this account (at most 1)
"""
    await run(server, text, "slots")


async def test_the_slot_and_the_subscription_are_released_at_once(server: RunningServer) -> None:
    """Counted while the connection stays open: UNAUTHENTICATE itself releases them, not the disconnect."""
    alice = await server.services.users.find("alice")
    pubsub = server.services.backends.pubsub
    channel = user_channel(alice.id)

    async def held() -> tuple[int, int]:
        return await server.services.login.connections(alice, "imap"), pubsub.subscriber_count(channel)  # type: ignore[attr-defined]

    def go() -> None:
        imaplib.Commands.setdefault("UNAUTHENTICATE", ("AUTH", "SELECTED"))  # imaplib does not know it
        m = imaplib.IMAP4(*server.address("imap"))
        m.login("alice", "pw")
        m.select("INBOX")
        assert trio.from_thread.run(held) == (1, 1)
        assert m._simple_command("UNAUTHENTICATE") == ("OK", [b"UNAUTHENTICATE completed"])
        assert trio.from_thread.run(held) == (0, 0)
        m.logout()

    await trio.to_thread.run_sync(go)
