"""MULTIAPPEND (RFC 3502) against the whole server over a socket: several messages in one APPEND, all stored or none
(a refusal at any point, the quota checked for their sum, a store that refuses one of them: the others are taken
back), APPENDUID with a UID set, and literals refused before they are sent."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.sessions.imap_transcripts import imap_server, run, selected
from wildduck.domain.messages import prepare
from wildduck.model import NewMessage
from wildduck.ports import Backends
from wildduck.testing.server import RunningServer

TRANSCRIPT = r"""
C: a LOGIN alice pw
S: a OK [CAPABILITY {{[^\]]*}} MULTIAPPEND SORT {{[^\]]*}} SAVEDATE UNAUTHENTICATE COMPRESS=DEFLATE] logged in
C: b SELECT INBOX
""" + selected("b", exists=0, recent=0, uidnext=1, modseq="1", validity=r"{{v:\d+}}") + r"""
# three messages, each with its flags and date, a synchronizing literal among them
C: c APPEND INBOX (\Seen) "14-Nov-2026 10:20:30 +0100" {14+}
C: Subject: a
C:
C:  {14}
S: + Ready for literal data
C: Subject: b
C:
C:  ($Work) {14+}
C: Subject: c
C:
C:
S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Work)
S: * OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Work \*)] flags permitted
S: * 3 EXISTS
S: * 3 RECENT
S: c OK [APPENDUID {{$v}} 1:3] APPEND completed
C: d FETCH 1:* (UID FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])
S: * 1 FETCH (UID 1 INTERNALDATE "14-Nov-2026 09:20:30 +0000" BODY[HEADER.FIELDS (SUBJECT)] {{[{]\d+[}]}}
S: Subject: a
S:
S:  FLAGS (\Seen \Recent))
S: * 2 FETCH (UID 2 INTERNALDATE "{{[^"]+}}" BODY[HEADER.FIELDS (SUBJECT)] {{[{]\d+[}]}}
S: Subject: b
S:
S:  FLAGS (\Recent))
S: * 3 FETCH (UID 3 INTERNALDATE "{{[^"]+}}" BODY[HEADER.FIELDS (SUBJECT)] {{[{]\d+[}]}}
S: Subject: c
S:
S:  FLAGS ($Work \Recent))
S: d OK FETCH completed
# a bad second message: the first is not stored either
C: e APPEND INBOX {14+}
C: Subject: d
C:
C:  (\Bogus) {14+}
C: Subject: e
C:
C:
S: e BAD APPEND: invalid system flag \Bogus
C: f APPEND INBOX {14+}
C: Subject: f
C:
C:  {0+}
C:
S: f NO empty message
# a second literal over the size limit is refused before it is sent; the client abandons the command
C: g APPEND INBOX {14}
S: + Ready for literal data
C: Subject: g
C:
C:  {999999999}
S: g NO [TOOBIG] literal of 999999999 bytes is over the limit of 26214400
C: h APPEND Nowhere {14+}
C: Subject: h
C:
C:  {14+}
C: Subject: i
C:
C:
S: h NO [TRYCREATE] no mailbox Nowhere
C: i STATUS INBOX (MESSAGES UIDNEXT)
S: * STATUS INBOX (MESSAGES 3 UIDNEXT 4)
S: i OK STATUS completed
C: j APPEND Trash {14+}
C: Subject: j
C:
C:  {14+}
C: Subject: k
C:
C:
S: j OK [APPENDUID {{\d+}} 1:2] APPEND completed
C: k LOGOUT
S: * BYE logging out
S: k OK LOGOUT completed
"""

#: each of these fits the quota of QUOTA bytes, two of them do not
BIG = b"Subject: big\r\n\r\n" + b"x" * 600 + b"\r\n"
QUOTA = 1000


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with imap_server(tmp_path, "alice") as srv:
        yield srv


async def test_transcript(server: RunningServer) -> None:
    await run(server, TRANSCRIPT, "MULTIAPPEND")


def _send(raw: bytes) -> str:
    """The transcript lines that send ``raw`` (which ends in CRLF), e.g. a literal's bytes."""
    return "".join(f"C: {line}\n" for line in raw.decode().removesuffix("\r\n").split("\r\n"))


LOGIN = "C: a LOGIN alice pw\nS: a OK [CAPABILITY {{.*}}] logged in\n"


async def test_quota_is_checked_for_the_sum(server: RunningServer) -> None:
    """Each message fits, both do not: with synchronizing literals the second is refused before it is sent, with
    LITERAL+ the command is refused before anything is written. Nothing is stored either way."""
    alice = await server.services.users.find("alice")
    await server.services.users.set_quota(alice, QUOTA)
    n = len(BIG)
    text = (LOGIN
            + f"C: b APPEND INBOX {{{n}}}\nS: + Ready for literal data\n" + _send(BIG) + f"C:  {{{n}}}\n"
            + "S: b NO [OVERQUOTA] mailbox is over quota\n"
            + f"C: c APPEND INBOX {{{n}+}}\n" + _send(BIG) + f"C:  {{{n}+}}\n" + _send(BIG) + "C:\n"
            + "S: c NO [OVERQUOTA] mailbox is over quota\n"
            + "C: d STATUS INBOX (MESSAGES)\nS: * STATUS INBOX (MESSAGES 0)\nS: d OK STATUS completed\n")
    await run(server, text, "quota")
    assert (await server.services.users.find("alice")).storage_used == 0


class _DeliveryBeforeMultiAppend:
    """The real ``Messages`` role, with one message stored (and its room taken) between the domain's quota check
    and the store's own, once: the race in which the store refuses part of a MULTIAPPEND."""

    def __init__(self, backends: Backends) -> None:
        self.inner = backends.messages
        self.armed = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def append_messages(self, items: Sequence[NewMessage]) -> list[Any]:
        if self.armed and len(items) > 1:
            self.armed = False
            await self.inner.append_messages([dataclasses.replace(items[0], prepared=prepare(BIG), flags=())])
        return await self.inner.append_messages(items)  # type: ignore[no-any-return]


async def test_a_refusal_by_the_store_takes_back_the_messages_it_stored(tmp_path: Path) -> None:
    racing: list[_DeliveryBeforeMultiAppend] = []

    def wrap(backends: Backends) -> Backends:
        racing.append(_DeliveryBeforeMultiAppend(backends))
        return dataclasses.replace(backends, messages=racing[0])

    async with imap_server(tmp_path, "alice", wrap=wrap) as srv:
        alice = await srv.services.users.find("alice")
        # room for the four messages, but not once the racing delivery took its part
        await srv.services.users.set_quota(alice, 2 * len(BIG) + 24 + 100)
        # two small messages and two big ones: the small ones and one big one fit after the racing delivery
        small, n = b"Subject: s\r\n", len(BIG)
        text = (LOGIN + "C: b APPEND INBOX {12+}\n" + _send(small) + "C:  {12+}\n" + _send(small)
                + f"C:  {{{n}+}}\n" + _send(BIG) + f"C:  {{{n}+}}\n" + _send(BIG) + "C:\n"
                "S: b NO [OVERQUOTA] user {{.+}} is over quota\n"
                "C: c SELECT INBOX\n"
                + selected("c", exists=1, recent=1, unseen=1, uidnext=5) +
                "C: d UID FETCH 1:* (RFC822.SIZE)\n"
                f"S: * 1 FETCH (UID 1 RFC822.SIZE {len(BIG)})\n"
                "S: d OK UID FETCH completed\n")
        await run(srv, text, "race")
        assert not racing[0].armed
        assert (await srv.services.users.find("alice")).storage_used == len(BIG)  # only the racing delivery's
