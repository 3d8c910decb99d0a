"""ESEARCH (RFC 4731) and SEARCHRES (RFC 5182) against the whole server over a socket: transcripts (strict, line by
line; format in ``wildduck/testing/transcript.py``) and imaplib."""

from __future__ import annotations

import imaplib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from tests.sessions.imap_transcripts import imap_server, run, runner, selected
from wildduck.testing.server import RunningServer

SIX = "".join(f"@deliver alice\nSubject: m{i}\n\nbody {i}\n@end\n" for i in range(1, 7))

LOGIN_SELECT = r"""
C: a LOGIN alice pw
S: a OK [CAPABILITY {{[^\]]*}} SEARCHRES {{[^\]]*}} UNAUTHENTICATE COMPRESS=DEFLATE] logged in
C: b SELECT INBOX
""" + selected("b", exists=6, recent=6, unseen=1, uidnext=7, modseq="7") + r"""C: c STORE 2,4 +FLAGS.SILENT (\Seen)
S: c OK STORE completed
"""

ESEARCH = SIX + LOGIN_SELECT + r"""
C: d SEARCH RETURN (MIN MAX COUNT ALL) ALL
S: * ESEARCH (TAG "d") MIN 1 MAX 6 ALL 1:6 COUNT 6
S: d OK SEARCH completed
C: e SEARCH RETURN () 1:3,5
S: * ESEARCH (TAG "e") ALL 1:3,5
S: e OK SEARCH completed
C: f UID SEARCH RETURN (COUNT) SEEN
S: * ESEARCH (TAG "f") UID COUNT 2
S: f OK UID SEARCH completed
C: g SEARCH RETURN (ALL) UNSEEN
S: * ESEARCH (TAG "g") ALL 1,3,5:6
S: g OK SEARCH completed
C: h UID SEARCH RETURN (MAX MIN) 2:5
S: * ESEARCH (TAG "h") UID MIN 2 MAX 5
S: h OK UID SEARCH completed
# nothing found: no MIN, MAX or ALL, but COUNT 0
C: i SEARCH RETURN (ALL) DELETED
S: * ESEARCH (TAG "i")
S: i OK SEARCH completed
C: j SEARCH RETURN (MIN MAX COUNT) DELETED
S: * ESEARCH (TAG "j") COUNT 0
S: j OK SEARCH completed
# MODSEQ: the highest of the messages returned (only the MIN/MAX ones without ALL or COUNT)
C: k SEARCH RETURN (MIN) MODSEQ 1
S: * OK [HIGHESTMODSEQ 9] highest
S: * ESEARCH (TAG "k") MIN 1 MODSEQ 2
S: k OK SEARCH completed
C: l SEARCH RETURN (MIN MAX) MODSEQ 1
S: * ESEARCH (TAG "l") MIN 1 MAX 6 MODSEQ 7
S: l OK SEARCH completed
C: m SEARCH RETURN (COUNT) MODSEQ 1
S: * ESEARCH (TAG "m") COUNT 6 MODSEQ {{hi:\d+}}
S: m OK SEARCH completed
C: n UID SEARCH RETURN (ALL) MODSEQ 8
S: * ESEARCH (TAG "n") UID ALL 2,4 MODSEQ {{$hi}}
S: n OK UID SEARCH completed
C: o SEARCH RETURN (MIN) MODSEQ 999
S: * ESEARCH (TAG "o")
S: o OK SEARCH completed
# errors: an unknown option, a RETURN that is not a list, no criteria
C: p SEARCH RETURN (FOO) ALL
S: p BAD SEARCH: unknown search return option FOO
C: q SEARCH RETURN MIN ALL
S: q BAD SEARCH: expected RETURN (...)
C: r UID SEARCH RETURN (MIN)
S: r BAD UID: missing search criteria
# without RETURN: the classic answer
C: s SEARCH SEEN
S: * SEARCH 2 4
S: s OK SEARCH completed
"""

SEARCHRES = SIX + LOGIN_SELECT + r"""
# SAVE alone: no untagged answer; "$" then names the messages in every command, UID forms too
C: d SEARCH RETURN (SAVE) SEEN
S: d OK SEARCH completed
C: e FETCH $ (FLAGS)
S: * 2 FETCH (FLAGS (\Seen \Recent))
S: * 4 FETCH (FLAGS (\Seen \Recent))
S: e OK FETCH completed
C: f UID FETCH $ (FLAGS)
S: * 2 FETCH (UID 2 FLAGS (\Seen \Recent))
S: * 4 FETCH (UID 4 FLAGS (\Seen \Recent))
S: f OK UID FETCH completed
C: g SEARCH $
S: * SEARCH 2 4
S: g OK SEARCH completed
C: h SEARCH RETURN (ALL) NOT $
S: * ESEARCH (TAG "h") ALL 1,3,5:6
S: h OK SEARCH completed
# with MIN (no ALL or COUNT) only that message is kept
C: i SEARCH RETURN (SAVE MIN) UNSEEN
S: * ESEARCH (TAG "i") MIN 1
S: i OK SEARCH completed
C: j FETCH $ (FLAGS)
S: * 1 FETCH (FLAGS (\Recent))
S: j OK FETCH completed
# a BAD search changes nothing; a NO one leaves "$" empty (RFC 5182 2.1)
C: k SEARCH RETURN (SAVE) BADKEY
S: k BAD SEARCH: unknown search key BADKEY
C: l FETCH $ (FLAGS)
S: * 1 FETCH (FLAGS (\Recent))
S: l OK FETCH completed
C: m SEARCH RETURN (SAVE) CHARSET KOI8-R ALL
S: m NO [BADCHARSET (UTF-8 US-ASCII)] unsupported charset
C: n FETCH $ (FLAGS)
S: n OK FETCH completed
C: o UID SEARCH $
S: * SEARCH
S: o OK UID SEARCH completed
# MIN and MAX: both kept; the search that saves sees the "$" before it
C: p SEARCH RETURN (SAVE MIN MAX) ALL
S: * ESEARCH (TAG "p") MIN 1 MAX 6
S: p OK SEARCH completed
C: q UID SEARCH RETURN (SAVE COUNT) $
S: * ESEARCH (TAG "q") UID COUNT 2
S: q OK UID SEARCH completed
C: r UID SEARCH $
S: * SEARCH 1 6
S: r OK UID SEARCH completed
# with ALL (or COUNT) every match is kept, MIN or not
C: s SEARCH RETURN (SAVE MIN ALL) 2:4
S: * ESEARCH (TAG "s") MIN 2 ALL 2:4
S: s OK SEARCH completed
C: t STORE $ +FLAGS.SILENT (\Deleted)
S: t OK STORE completed
C: u UID STORE $ -FLAGS (\Seen)
S: * 2 FETCH (UID 2 FLAGS (\Deleted \Recent))
S: * 3 FETCH (UID 3 FLAGS (\Deleted \Recent))
S: * 4 FETCH (UID 4 FLAGS (\Deleted \Recent))
S: u OK UID STORE completed
# "$" holds UIDs: an expunged message drops out, the others keep their identity as numbers shift
C: v UID EXPUNGE 3
S: * 3 EXPUNGE
S: v OK UID EXPUNGE completed
C: w UID SEARCH $
S: * SEARCH 2 4
S: w OK UID SEARCH completed
C: x SEARCH $
S: * SEARCH 2 3
S: x OK SEARCH completed
C: y COPY $ Trash
S: y OK [COPYUID {{\d+}} 2,4 1:2] COPY completed
C: z UID MOVE $ Trash
S: * OK [COPYUID {{\d+}} 2,4 3:4] moved
S: * 2 EXPUNGE
S: * 2 EXPUNGE
S: z OK UID MOVE completed
C: z1 FETCH $ (FLAGS)
S: z1 OK FETCH completed
# SELECT, EXAMINE, UNSELECT and CLOSE empty "$"
C: z2 SEARCH RETURN (SAVE) ALL
S: z2 OK SEARCH completed
C: z3 UNSELECT
S: z3 OK UNSELECT completed
C: z4 FETCH $ (FLAGS)
S: z4 BAD FETCH is not allowed in the authenticated state
C: z5 EXAMINE INBOX
""" + selected("z5", exists=3, recent=0, unseen=1, uidnext=7, readonly=True) + r"""C: z6 FETCH $ (FLAGS)
S: z6 OK FETCH completed
C: z7 SEARCH RETURN (SAVE) ALL
S: z7 OK SEARCH completed
C: z8 SELECT INBOX
""" + selected("z8", exists=3, recent=0, unseen=1, uidnext=7) + r"""C: z9 UID SEARCH $
S: * SEARCH
S: z9 OK UID SEARCH completed
C: za SEARCH RETURN (SAVE) ALL
S: za OK SEARCH completed
C: zb CLOSE
S: zb OK CLOSE completed
C: zc SELECT INBOX
""" + selected("zc", exists=3, recent=0, unseen=1, uidnext=7) + r"""C: zd FETCH $ (FLAGS)
S: zd OK FETCH completed
"""


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with imap_server(tmp_path, "alice") as srv:
        yield srv


@pytest.mark.parametrize("name", ["ESEARCH", "SEARCHRES"])
async def test_transcript(server: RunningServer, name: str) -> None:
    text = {"ESEARCH": ESEARCH, "SEARCHRES": SEARCHRES}[name]
    await run(server, text, name)


async def test_saved_result_with_another_session_expunging(server: RunningServer) -> None:
    """``$`` keeps UIDs: messages another session expunged are no longer named, even before this session was told
    (a FETCH does not report expunges, RFC 3501 7.4.1), and a sequence-number command after the expunge names the
    right messages."""
    def go() -> None:
        runner(server).run(SIX, "deliveries")
        m = imaplib.IMAP4(*server.address("imap"))
        other = imaplib.IMAP4(*server.address("imap"))
        try:
            m.login("alice", "pw")
            other.login("alice", "pw")
            m.select("INBOX")
            other.select("INBOX")
            assert m._simple_command("SEARCH", "RETURN", "(SAVE)", "3:5")[0] == "OK"
            other.store("4", "+FLAGS.SILENT", "(\\Deleted)")
            other.expunge()
            typ, data = m.uid("FETCH", "$", "(FLAGS)")
            answers = [hit.group(1) for d in data if (hit := re.search(rb"UID (\d+)", d))]
            assert typ == "OK" and answers == [b"3", b"5"]  # UID 4 is gone (data also has its unsolicited FLAGS)
            assert m.untagged_responses.pop("EXPUNGE") == [b"4"]  # told before the FETCH answers (UID FETCH)
            typ, data = m._simple_command("SEARCH", "RETURN", "(ALL)", "$")
            assert typ == "OK" and m.untagged_responses.pop("ESEARCH")[-1].endswith(b"ALL 3:4")
        finally:
            m.logout()
            other.logout()

    await trio.to_thread.run_sync(go)
