"""QRESYNC (RFC 7162 3.2) against the whole server over sockets: transcripts (strict, line by line; format in
``wildduck/testing/transcript.py``), a resynchronizing client written against the RFC (imaplib), and the answer
once the journal no longer reaches back to the client's MODSEQ."""

from __future__ import annotations

import dataclasses
import datetime as dt
import imaplib
import inspect
import re
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.sessions.imap_transcripts import imap_server, run, selected
from wildduck.ports import Backends
from wildduck.testing.server import RunningServer

SIX = "".join(f"@deliver alice\nSubject: m{i}\n\nbody {i}\n@end\n" for i in range(1, 7))
LOGIN = r"""C: a LOGIN alice pw
S: a OK [CAPABILITY {{[^\]]*}}] logged in
"""
LOGIN2 = LOGIN.replace("C: ", "C2: ").replace("S: ", "S2: ")


def resync_select(tag: str, *, exists: int, uidnext: int, lines: str, closed: bool = False,
                  unseen: int | None = 1) -> str:
    """A SELECT INBOX (QRESYNC ...) answer: the mailbox's responses, then ``lines`` (VANISHED (EARLIER), FETCH)."""
    head = "S: * OK [CLOSED] previous mailbox closed\n" if closed else ""
    base = selected(tag, exists=exists, recent=0, unseen=unseen, uidnext=uidnext, validity="<uv>",
                    modseq=r"{{\d+}}")
    body, done = base.rsplit("S: ", 1)
    return head + body + lines + "S: " + done


TRANSCRIPT = SIX + LOGIN + r"""
# the QRESYNC parameter, and VANISHED, before ENABLE QRESYNC: BAD (RFC 7162 3.2.5, 3.2.6)
C: b SELECT INBOX (QRESYNC (1 1))
S: b BAD the QRESYNC parameter needs ENABLE QRESYNC first
C: c SELECT INBOX
""" + selected("c", exists=6, recent=6, unseen=1, uidnext=7, validity="<uv>", modseq="7") + r"""
C: d UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)
S: d BAD VANISHED needs ENABLE QRESYNC first
C: e EXPUNGE
S: e OK EXPUNGE completed
# ENABLE QRESYNC implies CONDSTORE: the HIGHESTMODSEQ of the selected mailbox is said at once
C: f ENABLE QRESYNC
S: * OK [HIGHESTMODSEQ 7] highest
S: * ENABLED QRESYNC
S: f OK ENABLE completed
# every untagged FETCH carries the UID and the MODSEQ (RFC 7162 3.2.4)
C: g STORE 2 +FLAGS (\Flagged)
S: * 2 FETCH (UID 2 FLAGS (\Flagged \Recent) MODSEQ ({{\d+}}))
S: g OK STORE completed
C: h STORE 3,5 +FLAGS.SILENT (\Deleted)
S: h OK STORE completed
# expunges are VANISHED, never EXPUNGE (RFC 7162 3.2.10)
C: i EXPUNGE
S: * VANISHED 3,5
S: i OK EXPUNGE completed
""" + LOGIN2 + r"""
C2: b SELECT INBOX
""" + selected("b", exists=4, recent=0, unseen=1, uidnext=7).replace("S: ", "S2: ") + r"""
C2: c UID STORE 6 +FLAGS.SILENT (\Deleted)
S2: c OK UID STORE completed
C2: d UID EXPUNGE 6
S2: * 4 EXPUNGE
S2: d OK UID EXPUNGE completed
C2: e STORE 1 +FLAGS.SILENT (\Answered)
S2: e OK STORE completed
# another session's expunge too, and its flag change with the UID
C: j NOOP
S: * 4 FETCH (UID 6 FLAGS (\Deleted \Recent) MODSEQ ({{\d+}}))
S: * VANISHED 6
S: * 1 FETCH (UID 1 FLAGS (\Answered \Recent) MODSEQ ({{\d+}}))
S: j OK NOOP completed
# UID FETCH ... (CHANGEDSINCE n VANISHED): the expunged UIDs of the set first, then what changed
C: k UID FETCH 1:* (FLAGS) (CHANGEDSINCE 7 VANISHED)
S: * VANISHED (EARLIER) 3,5:6
S: * 1 FETCH (UID 1 MODSEQ ({{\d+}}) FLAGS (\Answered \Recent))
S: * 2 FETCH (UID 2 MODSEQ ({{\d+}}) FLAGS (\Flagged \Recent))
S: k OK UID FETCH completed
C: l UID FETCH 4:5 (FLAGS) (CHANGEDSINCE 7 VANISHED)
S: * VANISHED (EARLIER) 5
S: l OK UID FETCH completed
C: m FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)
S: m BAD FETCH: VANISHED is only allowed with UID FETCH
C: n UID FETCH 1:* (FLAGS) (VANISHED)
S: n BAD UID: VANISHED needs CHANGEDSINCE
# SELECT with what the client knew: [CLOSED] first, then the mailbox, VANISHED (EARLIER) and the changed messages
C: o SELECT INBOX (QRESYNC (<uv> 7 1:6))
""" + resync_select("o", exists=3, uidnext=7, closed=True, lines=r"""S: * VANISHED (EARLIER) 3,5:6
S: * 1 FETCH (UID 1 MODSEQ ({{\d+}}) FLAGS (\Answered))
S: * 2 FETCH (UID 2 MODSEQ ({{\d+}}) FLAGS (\Flagged))
""") + r"""
# known UIDs limit both answers
C: p EXAMINE INBOX (QRESYNC (<uv> 7 2:5))
S: * OK [CLOSED] previous mailbox closed
""" + resync_select("p", exists=3, uidnext=7, lines=r"""S: * VANISHED (EARLIER) 3,5
S: * 2 FETCH (UID 2 MODSEQ ({{\d+}}) FLAGS (\Flagged))
""").replace("[READ-WRITE] SELECT", "[READ-ONLY] EXAMINE") + r"""
# a MODSEQ the client is up to date with: nothing to tell
C: q SELECT INBOX (QRESYNC (<uv> 999999))
""" + resync_select("q", exists=3, uidnext=7, closed=True, lines="") + r"""
# another UIDVALIDITY: the client must start over, it is told nothing of what it knew (RFC 7162 3.2.5)
C: r SELECT INBOX (QRESYNC (4294967295 1 1:6))
""" + resync_select("r", exists=3, uidnext=7, closed=True, lines="") + r"""
# malformed parameters: BAD, the mailbox stays selected
C: s SELECT INBOX (QRESYNC (0 1))
S: s BAD SELECT: UIDVALIDITY out of range
C: t SELECT INBOX (QRESYNC (<uv> 1 1:*))
S: t BAD SELECT: known UIDs may not use $ or *
C: u SELECT INBOX (QRESYNC (<uv> 1 1:6 (1:2 1)))
S: u BAD SELECT: the known sequence set and UID set differ in size
C: v SELECT INBOX (QRESYNC (<uv>))
S: v BAD SELECT: expected mod-sequence
C: w SELECT INBOX (QRESYNC (<uv> 1) QRESYNC (<uv> 1))
S: w BAD SELECT: unknown select parameter QRESYNC
C: x FETCH 1 (FLAGS)
S: * 1 FETCH (FLAGS (\Answered))
S: x OK FETCH completed
"""

IDLE = SIX + LOGIN + r"""
C: b ENABLE QRESYNC
S: * ENABLED QRESYNC
S: b OK ENABLE completed
C: c SELECT INBOX
""" + selected("c", exists=6, recent=6, unseen=1, uidnext=7) + LOGIN2 + r"""
C2: b SELECT INBOX
""" + selected("b", exists=6, recent=0, unseen=1, uidnext=7).replace("S: ", "S2: ") + r"""
C2: c STORE 2:4 +FLAGS.SILENT (\Deleted)
S2: c OK STORE completed
C: c2 NOOP
S: * 2 FETCH (UID 2 FLAGS (\Deleted \Recent) MODSEQ (8))
S: * 3 FETCH (UID 3 FLAGS (\Deleted \Recent) MODSEQ (9))
S: * 4 FETCH (UID 4 FLAGS (\Deleted \Recent) MODSEQ (10))
S: c2 OK NOOP completed
# an expunge by another session reaches an idling client as VANISHED
C: d IDLE
S: + idling
C2: d EXPUNGE
S2: * 2 EXPUNGE
S2: * 2 EXPUNGE
S2: * 2 EXPUNGE
S2: d OK EXPUNGE completed
S: * VANISHED 2:4
C: DONE
S: d OK IDLE terminated
C: e UID EXPUNGE 1
S: e OK UID EXPUNGE completed
C2: e MOVE 1 Trash
S2: * OK [COPYUID {{\d+}} 1 1] moved
S2: * 1 EXPUNGE
S2: e OK MOVE completed
C: f NOOP
S: * VANISHED 1
S: f OK NOOP completed
# an expunge held back during a STORE by sequence number (RFC 7162 3.2): the MODSEQ told is above it, so a
# HIGHESTMODSEQ below it follows, from which a resynchronizing client would learn of it
C2: g STORE 1 +FLAGS.SILENT (\Deleted)
S2: g OK STORE completed
C2: h EXPUNGE
S2: * 1 EXPUNGE
S2: h OK EXPUNGE completed
C: g STORE 2 +FLAGS (\Seen)
S: * 1 FETCH (UID 5 FLAGS (\Deleted \Recent) MODSEQ ({{flagged:\d+}}))
S: * 2 FETCH (UID 6 FLAGS (\Seen \Recent) MODSEQ ({{\d+}}))
S: * OK [HIGHESTMODSEQ {{$flagged}}] expunges are pending
S: g OK STORE completed
C: h FETCH 2 (FLAGS)
S: * 2 FETCH (FLAGS (\Seen \Recent))
S: * OK [HIGHESTMODSEQ {{$flagged}}] expunges are pending
S: h OK FETCH completed
C: i NOOP
S: * VANISHED 5
S: i OK NOOP completed
# UNAUTHENTICATE turns QRESYNC off: EXPUNGE again, the parameter refused
C: j UNAUTHENTICATE
S: j OK UNAUTHENTICATE completed
C: k LOGIN alice pw
S: k OK [CAPABILITY {{[^\]]*}}] logged in
C: l SELECT INBOX (QRESYNC (<uv> 1))
S: l BAD the QRESYNC parameter needs ENABLE QRESYNC first
"""


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with imap_server(tmp_path, "alice") as srv:
        yield srv


def uid_validity(srv: RunningServer) -> int:
    """INBOX's UIDVALIDITY (a transcript's C: lines take no captured values)."""
    with imaplib.IMAP4(*srv.address("imap")) as m:
        m.login("alice", "pw")
        typ, data = m.status("INBOX", "(UIDVALIDITY)")
        hit = re.search(rb"UIDVALIDITY (\d+)", data[0] or b"")
        assert typ == "OK" and hit is not None
        return int(hit.group(1))


@pytest.mark.parametrize("name", ["TRANSCRIPT", "IDLE"])
async def test_transcript(server: RunningServer, name: str) -> None:
    uv = await trio.to_thread.run_sync(uid_validity, server)
    text = {"TRANSCRIPT": TRANSCRIPT, "IDLE": IDLE}[name].replace("<uv>", str(uv))
    await run(server, text, name)


TEN = "".join(f"@deliver alice\nSubject: m{i}\n\nbody {i}\n@end\n" for i in range(1, 11))

EXPUNGE_3_THEN_8 = TEN + LOGIN + r"""
C: b SELECT INBOX
""" + selected("b", exists=10, recent=10, unseen=1, uidnext=11, modseq="11") + r"""
C: c STORE 3 +FLAGS.SILENT (\Deleted)
S: c OK STORE completed
C: d EXPUNGE
S: * 3 EXPUNGE
S: d OK EXPUNGE completed
C: e STATUS INBOX (HIGHESTMODSEQ)
S: * STATUS INBOX (HIGHESTMODSEQ 13)
S: e OK STATUS completed
C: f STORE 7 +FLAGS.SILENT (\Deleted)
S: f OK STORE completed
C: g EXPUNGE
S: * 7 EXPUNGE
S: g OK EXPUNGE completed
C: h ENABLE QRESYNC
S: * OK [HIGHESTMODSEQ 15] highest
S: * ENABLED QRESYNC
S: h OK ENABLE completed
# the journal goes back to MODSEQ 13: exactly what was expunged since
C: i SELECT INBOX (QRESYNC (<uv> 13 1:10))
""" + resync_select("i", exists=8, uidnext=11, closed=True, lines="S: * VANISHED (EARLIER) 8\n") + r"""
C: j SELECT INBOX (QRESYNC (<uv> 13))
""" + resync_select("j", exists=8, uidnext=11, closed=True, lines="S: * VANISHED (EARLIER) 8\n")

PRUNED = LOGIN + r"""
C: b ENABLE QRESYNC
S: * ENABLED QRESYNC
S: b OK ENABLE completed
# the journal no longer reaches MODSEQ 13: every known UID not in the mailbox (3 too, a superset)
C: c SELECT INBOX (QRESYNC (<uv> 13 1:10))
""" + resync_select("c", exists=8, uidnext=11, lines="S: * VANISHED (EARLIER) 3,8\n") + r"""
C: d SELECT INBOX (QRESYNC (<uv> 13))
""" + resync_select("d", exists=8, uidnext=11, closed=True, lines="S: * VANISHED (EARLIER) 3,8\n") + r"""
# the sequence match data: seq 1-4 still hold UIDs 1, 2, 4, 5, so nothing up to UID 5 vanished since
C: e SELECT INBOX (QRESYNC (<uv> 13 1:10 (1:4 1:2,4:5)))
""" + resync_select("e", exists=8, uidnext=11, closed=True, lines="S: * VANISHED (EARLIER) 8\n") + r"""
# only the pairs up to the first that no longer holds count (seq 7 now has UID 9)
C: f SELECT INBOX (QRESYNC (<uv> 13 1:10 (2,7 2,8)))
""" + resync_select("f", exists=8, uidnext=11, closed=True, lines="S: * VANISHED (EARLIER) 3,8\n") + r"""
C: g UID FETCH 1:* (FLAGS) (CHANGEDSINCE 13 VANISHED)
S: * VANISHED (EARLIER) 3,8
S: g OK UID FETCH completed
"""


async def test_pruned_journal_falls_back_to_the_known_uids(server: RunningServer) -> None:
    uv = await trio.to_thread.run_sync(uid_validity, server)
    await run(server, EXPUNGE_3_THEN_8.replace("<uv>", str(uv)), "EXPUNGE_3_THEN_8")
    journal = server.services.backends.journal
    assert await journal.prune_journal(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)) > 0
    await run(server, PRUNED.replace("<uv>", str(uv)), "PRUNED")


_UID = re.compile(rb"\bUID (\d+)")
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")
_MODSEQ = re.compile(rb"\bMODSEQ \((\d+)\)")


def uid_set(text: bytes) -> set[int]:
    out: set[int] = set()
    for part in text.decode().split(","):
        lo, _, hi = part.partition(":")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


class ResyncingClient:
    """A client that keeps a mailbox offline as RFC 7162 3.2.5 has it: UIDVALIDITY, HIGHESTMODSEQ, and each
    message's flags by UID; it resynchronizes with one SELECT (QRESYNC (...)), without known UIDs (so new
    messages come with their flags too) or with them and the sequence match data of what it holds."""

    def __init__(self) -> None:
        self.validity = 0
        self.highest = 0
        self.flags: dict[int, frozenset[str]] = {}

    def _take(self, m: imaplib.IMAP4) -> None:
        """Apply what the server said (VANISHED first: a FETCH of the same command is about a live message)."""
        # imaplib files response codes under their names ([HIGHESTMODSEQ n] as "HIGHESTMODSEQ")
        for highest in m.untagged_responses.pop("HIGHESTMODSEQ", []):
            self.highest = int(highest)
        for validity in m.untagged_responses.pop("UIDVALIDITY", []):
            self.validity = int(validity)
        for vanished in m.untagged_responses.pop("VANISHED", []):
            for uid in uid_set(vanished.removeprefix(b"(EARLIER) ")):
                self.flags.pop(uid, None)  # UIDs it never had are ignored (RFC 7162 3.2.10)
        for fetch in m.untagged_responses.pop("FETCH", []):
            uid, flags, modseq = _UID.search(fetch), _FLAGS.search(fetch), _MODSEQ.search(fetch)
            assert uid is not None and flags is not None and modseq is not None, fetch  # RFC 7162 3.2.4
            self.flags[int(uid.group(1))] = frozenset(flags.group(1).decode().split()) - {"\\Recent"}
            self.highest = max(self.highest, int(modseq.group(1)))

    def first_sync(self, m: imaplib.IMAP4) -> None:
        assert m._simple_command("ENABLE", "QRESYNC")[0] == "OK"
        assert m.untagged_responses.pop("ENABLED") == [b"QRESYNC"]
        assert m.select("INBOX")[0] == "OK"
        typ, data = m.uid("FETCH", "1:*", "(FLAGS MODSEQ)")  # imaplib hands back the FETCH responses
        assert typ == "OK"
        m.untagged_responses["FETCH"] = [d for d in data if isinstance(d, bytes)]
        self._take(m)

    def resync(self, m: imaplib.IMAP4, *, known: bool) -> list[bytes]:
        """One SELECT; returns its VANISHED (EARLIER) data."""
        assert m._simple_command("ENABLE", "QRESYNC")[0] == "OK"
        params = f"{self.validity} {self.highest}"
        if known and self.flags:
            uids = sorted(self.flags)
            seqs = list(range(1, len(uids) + 1))[::3]
            match = [uids[n - 1] for n in seqs]
            params += (f" {','.join(map(str, uids))} ({','.join(map(str, seqs))} {','.join(map(str, match))})")
        m.untagged_responses.clear()
        typ, _data = m._simple_command("SELECT", "INBOX", f"(QRESYNC ({params}))")
        assert typ == "OK"
        vanished = list(m.untagged_responses.get("VANISHED", []))
        assert all(v.startswith(b"(EARLIER) ") for v in vanished)
        self._take(m)
        return vanished


def server_flags(m: imaplib.IMAP4) -> dict[int, frozenset[str]]:
    typ, data = m.uid("FETCH", "1:*", "(FLAGS)")
    assert typ == "OK"
    out = {}
    for line in data:
        if isinstance(line, bytes) and (uid := _UID.search(line)) and (flags := _FLAGS.search(line)):
            out[int(uid.group(1))] = frozenset(flags.group(1).decode().split()) - {"\\Recent"}
    return out


def offline_changes(srv: RunningServer) -> None:
    """Another session flags, expunges and appends while the client is away."""
    with imaplib.IMAP4(*srv.address("imap")) as other:
        other.login("alice", "pw")
        other.select("INBOX")
        other.uid("STORE", "2,9", "+FLAGS", "(\\Flagged $Later)")
        other.uid("STORE", "4", "-FLAGS", "(\\Seen)")
        other.uid("STORE", "3,5:6,10", "+FLAGS.SILENT", "(\\Deleted)")
        other.expunge()
        other.append("INBOX", "(\\Seen $New)", None, b"Subject: new 1\r\n\r\nhi\r\n")
        other.append("INBOX", None, None, b"Subject: new 2\r\n\r\nhi\r\n")
        other.uid("STORE", "7", "+FLAGS", "(\\Answered)")


@pytest.mark.parametrize("known", [False, True])
@pytest.mark.parametrize("pruned", [False, True])
async def test_a_client_resynchronizes_in_one_select(server: RunningServer, known: bool, pruned: bool) -> None:
    """The client caches the mailbox, goes away while another session changes it, and comes back with one SELECT:
    it then holds exactly the server's UIDs and flags (with the journal pruned too: a fuller VANISHED (EARLIER))."""
    await run(server, TEN, "deliveries")
    client = ResyncingClient()

    def before() -> None:
        with imaplib.IMAP4(*server.address("imap")) as m:
            m.login("alice", "pw")
            m.select("INBOX")
            m.uid("STORE", "1:4", "+FLAGS", "(\\Seen)")
        with imaplib.IMAP4(*server.address("imap")) as m:
            m.login("alice", "pw")
            client.first_sync(m)
        assert sorted(client.flags) == list(range(1, 11)) and client.flags[4] == {"\\Seen"}
        offline_changes(server)

    await trio.to_thread.run_sync(before)
    if pruned:
        await server.services.backends.journal.prune_journal(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))

    def after() -> None:
        with imaplib.IMAP4(*server.address("imap")) as m:
            m.login("alice", "pw")
            vanished = client.resync(m, known=known)
            assert set().union(*(uid_set(v.removeprefix(b"(EARLIER) ")) for v in vanished)) >= {3, 5, 6, 10}
            with imaplib.IMAP4(*server.address("imap")) as fresh:
                fresh.login("alice", "pw")
                fresh.select("INBOX", readonly=True)
                truth = server_flags(fresh)
        if not known:  # new messages came with the SELECT; a client naming its UIDs fetches those above them
            assert client.flags == truth
        else:
            assert {u: f for u, f in client.flags.items() if u <= 10} == {u: f for u, f in truth.items() if u <= 10}
        assert truth[2] == {"\\Seen", "\\Flagged", "$Later"} and truth[4] == frozenset() and 3 not in truth

    await trio.to_thread.run_sync(after)


class _Counting:
    """A storage role that records the name of every call made to it (and does it)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return await attr(*args, **kwargs)

        return counted


async def test_a_resynchronizing_select_costs_one_journal_read_more(tmp_path: Path) -> None:
    """SELECT (QRESYNC ...) makes the store calls of a plain SELECT and one journal read (for the expunges): the
    changed messages come from the view's MODSEQs, no message is read."""
    counting: list[_Counting] = []

    def wrap(backends: Backends) -> Backends:
        counting.append(_Counting(backends.messages))
        return dataclasses.replace(backends, messages=counting[0], journal=counting[0])

    async with imap_server(tmp_path, "alice", wrap=wrap) as srv:
        await run(srv, TEN, "deliveries")
        calls = counting[0].calls

        def go() -> tuple[Counter[str], Counter[str]]:
            with imaplib.IMAP4(*srv.address("imap")) as m, imaplib.IMAP4(*srv.address("imap")) as other:
                m.login("alice", "pw")
                other.login("alice", "pw")
                assert m._simple_command("ENABLE", "QRESYNC")[0] == "OK"
                m.select("INBOX")
                validity = int(m.untagged_responses["UIDVALIDITY"][-1])
                m.unselect()
                other.select("INBOX")
                other.uid("STORE", "2", "+FLAGS", "(\\Seen)")
                other.uid("STORE", "4:5", "+FLAGS.SILENT", "(\\Deleted)")
                other.expunge()
                calls.clear()
                assert m.select("INBOX")[0] == "OK"
                plain = Counter(calls)
                m.unselect()
                calls.clear()
                m.untagged_responses.clear()
                typ, _data = m._simple_command("SELECT", "INBOX", f"(QRESYNC ({validity} 11))")
                assert typ == "OK" and m.untagged_responses["VANISHED"] == [b"(EARLIER) 4:5"]
                return plain, Counter(calls)

        plain, resync = await trio.to_thread.run_sync(go)
    assert resync - plain == Counter({"read_journal": 1}) and not plain - resync
    assert "records" not in resync
