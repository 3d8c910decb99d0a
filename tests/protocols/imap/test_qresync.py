"""QRESYNC's grammar (RFC 7162 3.2.5 and 3.2.6: SELECT/EXAMINE's QRESYNC parameter, UID FETCH's VANISHED modifier)
and the VANISHED response; the malformed forms of those and of PREVIEW (RFC 8970)."""

from __future__ import annotations

import pytest

from tests.protocols.imap.test_grammar import parse
from wildduck.protocols.imap import grammar as g
from wildduck.protocols.imap import serializer
from wildduck.protocols.imap.receiver import CommandRejected


def test_select_with_qresync() -> None:
    cmd = parse(b"a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))")
    assert isinstance(cmd, g.Select) and cmd.qresync is not None and not cmd.readonly
    q = cmd.qresync
    assert (q.uid_validity, q.modseq, q.match) == (67890007, 20050715194045000, None)
    assert q.known_uids is not None and q.known_uids.normalized == ((41, 41), (43, 211), (214, 541))
    bare = parse(b"a examine INBOX (qresync (1 0))")
    assert isinstance(bare, g.Select) and bare.readonly and bare.qresync == g.Qresync(1, 0)
    both = parse(b"a SELECT INBOX (CONDSTORE QRESYNC (5 9 1:9 (1:3,5 1,3:4,9)))")
    assert isinstance(both, g.Select) and both.condstore and both.qresync is not None
    assert both.qresync.match is not None
    seqs, uids = both.qresync.match
    assert seqs.normalized == ((1, 3), (5, 5)) and uids.normalized == ((1, 1), (3, 4), (9, 9))
    # sequence match data without known UIDs (RFC 7162's ABNF has both optional)
    alone = parse(b"a SELECT INBOX (QRESYNC (5 9 (2 3)))")
    assert isinstance(alone, g.Select) and alone.qresync is not None and alone.qresync.known_uids is None


#: each malformed command and the end of its BAD text
MALFORMED = {
    b"a SELECT INBOX (QRESYNC)": "expected QRESYNC (...)",
    b"a SELECT INBOX (QRESYNC ())": "expected UIDVALIDITY",
    b"a SELECT INBOX (QRESYNC (0 1))": "UIDVALIDITY out of range",
    b"a SELECT INBOX (QRESYNC (1 9223372036854775808))": "mod-sequence out of range",
    b"a SELECT INBOX (QRESYNC (1 1 1:*))": "known UIDs may not use $ or *",
    b"a SELECT INBOX (QRESYNC (1 1 $))": "known UIDs may not use $ or *",
    b"a SELECT INBOX (QRESYNC (1 1 1:5 (1:2 3:5)))": "the known sequence set and UID set differ in size",
    b"a SELECT INBOX (QRESYNC (1 1 1:5 (1:2)))": "expected known UID set",
    b"a SELECT INBOX (QRESYNC (1 1 1:5 (1 1) 7))": "expected )",
    b"a SELECT INBOX (QRESYNC (1 1) QRESYNC (1 1))": "unknown select parameter QRESYNC",
    b"a FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)": "VANISHED is only allowed with UID FETCH",
    b"a UID FETCH 1:* (FLAGS) (VANISHED)": "VANISHED needs CHANGEDSINCE",
    # PREVIEW (RFC 8970 3.1)
    b"a FETCH 1 (PREVIEW (FOO))": "unknown preview modifier FOO",
    b"a FETCH 1 (PREVIEW ())": "empty preview modifier list",
    b"a FETCH 1 (PREVIEW (LAZY)": "unbalanced parenthesis",
    b"a FETCH 1 PREVIEW.LAZY": "unknown fetch attribute PREVIEW.LAZY",
    b"a FETCH 1 PREVIEW (LAZY) (FOO)": "unknown fetch modifier FOO",
}


@pytest.mark.parametrize(("line", "error"), MALFORMED.items())
def test_malformed(line: bytes, error: str) -> None:
    rejected = parse(line)
    assert isinstance(rejected, CommandRejected) and rejected.text.endswith(error), rejected


def test_uid_fetch_vanished() -> None:
    cmd = parse(b"a UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)")
    assert isinstance(cmd, g.Fetch) and cmd.uid and cmd.vanished and cmd.changedsince == 12345
    plain = parse(b"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1)")
    assert isinstance(plain, g.Fetch) and not plain.vanished


def test_vanished_response() -> None:
    assert serializer.vanished([(3, 3), (5, 9)]) == b"* VANISHED 3,5:9\r\n"
    assert serializer.vanished([(1, 4)], earlier=True) == b"* VANISHED (EARLIER) 1:4\r\n"
    assert serializer.vanished([]) == b""
    assert serializer.range_set([(1, 1), (2, 7)]) == "1,2:7"
    assert serializer.number_set([1, 2, 3, 7, 9, 10]) == "1:3,7,9:10"
