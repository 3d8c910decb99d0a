"""SORT (RFC 5256), ESORT (RFC 5267 4), SORT=DISPLAY (RFC 5957) and SORT with SEARCHRES (RFC 5182) against the
whole server over a socket: transcripts (strict, line by line; format in ``wildduck/testing/transcript.py``) and
imaplib. Dovecot's answers on a corpus of its own are compared in tests/protocols/imap/test_esearch_oracle.py."""

from __future__ import annotations

import imaplib
from collections.abc import Callable
from pathlib import Path

import trio

from tests.sessions.imap_transcripts import imap_server, run, selected
from wildduck.protocols.imap import sort
from wildduck.sessions.imap.sort import SortKeys
from wildduck.testing.server import RunningServer

#: five messages delivered in this order: subjects around one base subject, senders, sizes that differ
FIVE = "".join(f"@deliver alice\nFrom: {sender}\nSubject: {subject}\nDate: {date}\n\n{body}\n@end\n"
               for sender, subject, date, body in [
                   ("Zed <zed@example.net>", "Re: budget", "Mon, 02 Nov 2026 10:00:00 +0000", "a" * 10),
                   ("ann@example.net", "agenda", "Mon, 02 Nov 2026 09:00:00 +0000", "b" * 400),
                   ("\"Bob B\" <bob@example.net>", "[list] Fwd: Budget (fwd)", "Sun, 01 Nov 2026 10:00:00 -0300",
                    "c" * 200),
                   ("=?UTF-8?Q?=C3=85sa?= <asa@example.net>", "=?UTF-8?B?YnVkZ2V0?=", "not a date", "d" * 50),
                   ("carol@example.net", "Agenda", "Sun, 01 Nov 2026 12:00:00 +0000", "e" * 300),
               ])

LOGIN = r"""
C: a LOGIN alice pw
S: a OK [CAPABILITY {{[^\]]*}} MULTIAPPEND SORT {{[^\]]*}} SAVEDATE UNAUTHENTICATE COMPRESS=DEFLATE] logged in
"""

SORT = FIVE + r"""
# not before SELECT
C: x0 SORT (SUBJECT) UTF-8 ALL
S: x0 BAD SORT is not allowed in the not authenticated state
""" + LOGIN + r"""C: x1 SORT (SUBJECT) UTF-8 ALL
S: x1 BAD SORT is not allowed in the authenticated state
C: x2 UID SORT (SUBJECT) UTF-8 ALL
S: x2 BAD UID is not allowed in the authenticated state
C: b SELECT INBOX
""" + selected("b", exists=5, recent=5, unseen=1, uidnext=6, modseq="6") + r"""C: c STORE 2,4 +FLAGS.SILENT (\Seen)
S: c OK STORE completed
# the base subjects: "agenda" (2, 5) before "budget" (1, 3, 4): ties in mailbox order
C: d SORT (SUBJECT) UTF-8 ALL
S: * SORT 2 5 1 3 4
S: d OK SORT completed
C: e SORT (REVERSE SUBJECT) UTF-8 ALL
S: * SORT 1 3 4 2 5
S: e OK SORT completed
# DATE: the Date header as an instant (3 is 13:00 UTC); 4 has none that parses: its internal date, the latest
C: f SORT (DATE) US-ASCII ALL
S: * SORT 5 3 2 1 4
S: f OK SORT completed
C: g SORT (SUBJECT REVERSE DATE) UTF-8 ALL
S: * SORT 2 5 4 1 3
S: g OK SORT completed
C: h SORT (SIZE) UTF-8 ALL
S: * SORT 1 4 3 5 2
S: h OK SORT completed
# FROM: the local part; DISPLAYFROM: the decoded display name, else the address
C: i SORT (FROM) UTF-8 ALL
S: * SORT 2 4 3 5 1
S: i OK SORT completed
C: j SORT (DISPLAYFROM FROM) UTF-8 1:*
S: * SORT 2 4 3 5 1
S: j OK SORT completed
C: k SORT (REVERSE DISPLAYFROM) UTF-8 ALL
S: * SORT 1 5 3 4 2
S: k OK SORT completed
# equal keys everywhere: mailbox order, also under REVERSE
C: l SORT (ARRIVAL) UTF-8 ALL
S: * SORT 1 2 3 4 5
S: l OK SORT completed
C: m UID SORT (TO CC DISPLAYTO) US-ASCII ALL
S: * SORT 1 2 3 4 5
S: m OK UID SORT completed
C: n SORT RETURN (ALL) (REVERSE CC) UTF-8 ALL
S: * ESEARCH (TAG "n") ALL 1:5
S: n OK SORT completed
# the search criteria, the UID form
C: o SORT (SUBJECT) UTF-8 UNSEEN
S: * SORT 5 1 3
S: o OK SORT completed
C: p UID SORT (REVERSE SIZE) UTF-8 2:4
S: * SORT 2 3 4
S: p OK UID SORT completed
C: q SORT (DATE) UTF-8 DELETED
S: * SORT
S: q OK SORT completed
# ESORT: MIN and MAX are the first and last in the sort order, ALL in that order
C: r SORT RETURN (MIN MAX COUNT ALL) (SUBJECT) UTF-8 ALL
S: * ESEARCH (TAG "r") MIN 2 MAX 4 ALL 2,5,1,3:4 COUNT 5
S: r OK SORT completed
C: s UID SORT RETURN () (REVERSE DATE) UTF-8 ALL
S: * ESEARCH (TAG "s") UID ALL 4,1:3,5
S: s OK UID SORT completed
C: t SORT RETURN (COUNT) (SIZE) UTF-8 DELETED
S: * ESEARCH (TAG "t") COUNT 0
S: t OK SORT completed
# SAVE (RFC 5182 2.4): the matches, or only the MIN/MAX ones without ALL or COUNT
C: u SORT RETURN (SAVE) (DATE) UTF-8 SUBJECT budget
S: u OK SORT completed
C: v SEARCH $
S: * SEARCH 1 3 4
S: v OK SEARCH completed
C: w SORT (REVERSE SIZE) UTF-8 $
S: * SORT 3 4 1
S: w OK SORT completed
C: y SORT RETURN (SAVE MAX) (SIZE) UTF-8 ALL
S: * ESEARCH (TAG "y") MAX 2
S: y OK SORT completed
C: z SEARCH $
S: * SEARCH 2
S: z OK SEARCH completed
# MODSEQ in the criteria: the highest MODSEQ of the messages found (RFC 7162 3.1.5)
C: z1 SORT (SUBJECT) UTF-8 MODSEQ 6
S: * OK [HIGHESTMODSEQ 8] highest
S: * SORT 2 5 4 (MODSEQ 8)
S: z1 OK SORT completed
# errors: BAD for the syntax, NO [BADCHARSET] for a charset other than UTF-8 and US-ASCII (a SAVE empties "$")
C: e1 SORT (FOO) UTF-8 ALL
S: e1 BAD SORT: unknown sort key FOO
C: e2 SORT () UTF-8 ALL
S: e2 BAD SORT: empty list of sort criteria
C: e3 SORT SUBJECT UTF-8 ALL
S: e3 BAD SORT: expected a parenthesized list of sort criteria
C: e4 SORT (REVERSE) UTF-8 ALL
S: e4 BAD SORT: expected sort key after REVERSE
C: e5 SORT (REVERSE REVERSE DATE) UTF-8 ALL
S: e5 BAD SORT: unknown sort key REVERSE
C: e6 SORT (SUBJECT) UTF-8
S: e6 BAD SORT: missing search criteria
C: e7 SORT (SUBJECT)
S: e7 BAD SORT: missing charset
C: e8 SORT (SUBJECT) UTF-8 NOSUCHKEY
S: e8 BAD SORT: unknown search key NOSUCHKEY
C: e9 SORT RETURN (FOO) (SUBJECT) UTF-8 ALL
S: e9 BAD SORT: unknown search return option FOO
C: f1 UID SORT (SUBJECT UTF-8 ALL
S: f1 BAD unbalanced parenthesis
C: f2 SORT (SUBJECT) KOI8-R ALL
S: f2 NO [BADCHARSET (UTF-8 US-ASCII)] unsupported charset
C: f3 SORT RETURN (SAVE) (SUBJECT) ISO-8859-1 ALL
S: f3 NO [BADCHARSET (UTF-8 US-ASCII)] unsupported charset
C: f4 SEARCH $
S: * SEARCH
S: f4 OK SEARCH completed
"""


async def test_transcript(tmp_path: Path) -> None:
    async with imap_server(tmp_path, "alice") as srv:
        await run(srv, SORT, "SORT")


def _session(srv: RunningServer, steps: Callable[[imaplib.IMAP4], None]) -> None:
    """Log alice in over imaplib, run ``steps``, log out."""
    m = imaplib.IMAP4(*srv.address("imap"))
    try:
        m.login("alice", "pw")
        steps(m)
    finally:
        m.logout()


def _append(m: imaplib.IMAP4, date: str, message: bytes) -> None:
    typ, data = m.append("INBOX", "", f'"{date}"', message)
    assert typ == "OK", data


async def _over_imaplib(tmp_path: Path, steps: Callable[[imaplib.IMAP4], None]) -> None:
    async with imap_server(tmp_path, "alice") as srv:
        with trio.fail_after(60):
            await trio.to_thread.run_sync(_session, srv, steps)


async def test_imaplib_sort_arrival_keeps_copies_in_mailbox_order(tmp_path: Path) -> None:
    """imaplib's ``sort``: ARRIVAL is the internal date (APPEND's date, kept by COPY), not the order of arrival;
    copies sharing an internal date stay in mailbox order, REVERSE or not; an expunge renumbers the answer, and the
    keys the process keeps follow the mailbox (new messages, keys of another kind)."""
    def steps(m: imaplib.IMAP4) -> None:
        for i, date in enumerate(["03-Nov-2026 10:00:00 +0000", "01-Nov-2026 10:00:00 +0000",
                                  "02-Nov-2026 10:00:00 +0100"]):
            _append(m, date, b"Subject: s%d\r\nFrom: x@example.net\r\n\r\nbody\r\n" % i)
        m.select("INBOX")
        assert m.copy("1", "INBOX")[0] == "OK"  # 4: the internal date of 1
        assert m.sort("(ARRIVAL)", "UTF-8", "ALL") == ("OK", [b"2 3 1 4"])
        assert m.sort("(REVERSE ARRIVAL)", "UTF-8", "ALL") == ("OK", [b"1 4 3 2"])
        assert m.uid("SORT", "(REVERSE ARRIVAL)", "UTF-8", "ALL") == ("OK", [b"1 4 3 2"])
        m.store("2", "+FLAGS.SILENT", "(\\Deleted)")
        m.expunge()
        assert m.sort("(ARRIVAL)", "UTF-8", "ALL") == ("OK", [b"2 1 3"])
        assert m.uid("SORT", "(ARRIVAL)", "UTF-8", "ALL") == ("OK", [b"3 1 4"])
        # a message appended after the keys were kept, then a key of another kind (the addresses are read now)
        _append(m, "02-Nov-2026 12:00:00 +0000", b"Subject: s9\r\nFrom: a@example.net\r\n\r\nbody\r\n")
        m.noop()
        assert m.uid("SORT", "(ARRIVAL)", "UTF-8", "ALL") == ("OK", [b"3 5 1 4"])
        assert m.uid("SORT", "(FROM REVERSE ARRIVAL)", "UTF-8", "ALL") == ("OK", [b"5 1 4 3"])

    await _over_imaplib(tmp_path, steps)


async def test_imaplib_sort_of_an_empty_mailbox_and_a_utf8_search(tmp_path: Path) -> None:
    """An empty mailbox answers ``* SORT`` alone; a UTF-8 search string (a literal) finds the decoded subject."""
    def steps(m: imaplib.IMAP4) -> None:
        m.select("INBOX")
        assert m.sort("(SUBJECT)", "UTF-8", "ALL") == ("OK", [b""])
        _append(m, "01-Nov-2026 10:00:00 +0000", b"Subject: =?UTF-8?Q?Re=3A_caf=C3=A9?=\r\n\r\nx\r\n")
        _append(m, "01-Nov-2026 10:00:00 +0000", b"Subject: cafe\r\n\r\nx\r\n")
        m.select("INBOX")
        m.literal = "caf\u00e9".encode()
        assert m.sort("(SUBJECT)", "UTF-8", "SUBJECT") == ("OK", [b"1"])
        # "café" decomposes to "CAFE" and a combining accent: after "CAFE"
        assert m.sort("(SUBJECT)", "UTF-8", "ALL") == ("OK", [b"2 1"])

    await _over_imaplib(tmp_path, steps)


def _keys(uid: int) -> sort.SortRecord:
    return sort.SortRecord(uid, 0.0, 0.0, 0)


def test_the_kept_keys_drop_the_least_recently_sorted_mailbox() -> None:
    kept = SortKeys(limit=3)
    a = kept.of(("a", 1))
    a.update({1: _keys(1), 2: _keys(2)})
    kept.keep(("a", 1), a, None)
    b = kept.of(("b", 7))
    b.update({1: _keys(1)})
    kept.keep(("b", 7), b, None)
    assert kept.of(("a", 1)) is a and kept.size == 3  # "a" is now the most recent
    kept.of(("b", 7))[2] = _keys(2)
    kept.keep(("b", 7), kept.of(("b", 7)), None)
    assert list(kept.mailboxes) == [("b", 7)] and kept.size == 2
    assert kept.of(("b", 8)) == {}  # another UIDVALIDITY: other messages


def test_the_kept_keys_forget_expunged_messages() -> None:
    kept = SortKeys()
    keys = kept.of(("a", 1))
    keys.update({u: _keys(u) for u in range(1, 1501)})
    kept.keep(("a", 1), keys, frozenset({1, 2, 3}))
    assert sorted(keys) == [1, 2, 3] and kept.size == 3
