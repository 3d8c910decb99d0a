"""Typed parsing of every command, sequence sets, FETCH attributes, SEARCH keys; serializer and mUTF-7."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wildduck.protocols.imap import grammar as g
from wildduck.protocols.imap import mutf7, serializer
from wildduck.protocols.imap.receiver import CommandRejected, LiteralAnnounced, RawCommand, Receiver
from wildduck.sessions.imap import registry


def parse(line: bytes) -> object:
    r = Receiver()
    r.receive_data(line + b"\r\n")
    while True:
        e = r.next_event()
        if isinstance(e, LiteralAnnounced):
            r.accept_literal()
            continue
        assert isinstance(e, (RawCommand, CommandRejected)), e
        return registry.parse(e) if isinstance(e, RawCommand) else e


def test_sequence_sets() -> None:
    s = g.parse_sequence_set(b"1:3,7,9:*,*")
    assert s.resolve(10) == [(1, 3), (7, 7), (9, 10)]  # merged
    assert g.parse_sequence_set(b"5:2").resolve(9) == [(2, 5)]
    assert g.parse_sequence_set(b"*:4").resolve(3) == [(3, 4)]
    assert s.numbers(10) == [1, 2, 3, 7, 9, 10]
    assert s.contains(8, 10) is False
    for bad in (b"0", b"1:", b"a", b"1,,2", b"4294967296", b""):
        with pytest.raises(g.ParseError):
            g.parse_sequence_set(bad)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"a CAPABILITY", g.Simple("a", "CAPABILITY")),
        (b"a LOGIN alice {3+}\r\npw!", g.Login("a", "LOGIN", b"alice", b"pw!")),
        (b"a AUTHENTICATE PLAIN AGEAYg==", g.Authenticate("a", "AUTHENTICATE", "PLAIN", b"AGEAYg==")),
        (b"a EXAMINE INBOX (CONDSTORE)", g.Select("a", "EXAMINE", b"INBOX", True, True)),
        (b'a CREATE "New &AOQ-"', g.Create("a", "CREATE", b"New &AOQ-")),
        (b"a RENAME a b", g.Rename("a", "RENAME", b"a", b"b")),
        (b'a LSUB "" *', g.ListCommand("a", "LSUB", b"", (b"*",))),
        (b'a LIST (SUBSCRIBED) "" %', g.ListCommand("a", "LIST", b"", (b"%",), ("SUBSCRIBED",), extended=True)),
        (b"a STATUS INBOX (MESSAGES UNSEEN HIGHESTMODSEQ)",
         g.Status("a", "STATUS", b"INBOX", ("MESSAGES", "UNSEEN", "HIGHESTMODSEQ"))),
        (b"a UID EXPUNGE 1:5", g.UidExpunge("a", "UID EXPUNGE", g.SequenceSet(((1, 5),)))),
        (b"a UID MOVE 3 Trash", g.CopyMove("a", "UID MOVE", True, g.SequenceSet(((3, 3),)), b"Trash")),
        (b'a ID ("name" "x" "version" NIL)', g.Id("a", "ID", (("name", "x"), ("version", None)))),
        (b"a ID NIL", g.Id("a", "ID", None)),
        (b"a ENABLE CONDSTORE utf8=accept", g.Enable("a", "ENABLE", ("CONDSTORE", "UTF8=ACCEPT"))),
        (b'a GETQUOTAROOT INBOX', g.MailboxCommand("a", "GETQUOTAROOT", b"INBOX")),
        (b'a SETQUOTA "" (STORAGE 512)', g.QuotaCommand("a", "SETQUOTA", b"", (("STORAGE", 512),))),
        (b"a COMPRESS DEFLATE", g.Compress("a", "COMPRESS", "DEFLATE")),
    ],
)
def test_commands(line: bytes, expected: object) -> None:
    assert parse(line) == expected


def test_append() -> None:
    cmd = parse(b'a APPEND Drafts (\\Draft \\seen) "14-Jul-2026 02:44:25 -0700" {11}\r\nhello world')
    assert isinstance(cmd, g.Append) and len(cmd.messages) == 1
    (first,) = cmd.messages
    assert first.flags == ("\\Draft", "\\Seen") and first.message == b"hello world"
    assert first.date == dt.datetime(2026, 7, 14, 2, 44, 25, tzinfo=dt.timezone(-dt.timedelta(hours=7)))


def test_fetch_items() -> None:
    cmd = parse(b"a FETCH 1:* ALL")
    assert isinstance(cmd, g.Fetch) and [i.name for i in cmd.items] == ["FLAGS", "INTERNALDATE", "RFC822.SIZE",
                                                                        "ENVELOPE"]
    item = g.parse_fetch_item(b"body.peek[1.2.HEADER.FIELDS.NOT (Subject \"x-y\")]<10.20>")
    assert (item.name, item.section, item.fields, item.peek, item.partial) == (
        "BODY", "1.2.HEADER.FIELDS.NOT (SUBJECT X-Y)", ("SUBJECT", "X-Y"), True, (10, 20))
    assert item.label == "BODY[1.2.HEADER.FIELDS.NOT (SUBJECT X-Y)]<10>"
    assert g.parse_fetch_item(b"BODY[]").label == "BODY[]"
    assert g.parse_fetch_item(b"BODY[3.MIME]").section == "3.MIME"
    for bad in (b"BODY[MIME]", b"BODY[HEADER.FIELDS]", b"BODY[0]", b"BODY[1.TEXTX]", b"FOO", b"BINARY[TEXT]"):
        with pytest.raises(g.ParseError):
            g.parse_fetch_item(bad)
    changed = parse(b"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 5)")
    assert isinstance(changed, g.Fetch) and changed.uid and changed.changedsince == 5


def test_store() -> None:
    cmd = parse(b"a STORE 1,3 (UNCHANGEDSINCE 9) -FLAGS.SILENT (\\Seen $Junk)")
    assert cmd == g.Store("a", "STORE", False, g.SequenceSet(((1, 1), (3, 3))), "-", True, ("\\Seen", "$Junk"), 9)
    assert isinstance(parse(b"a STORE 1 FLAGS \\Seen \\Flagged"), g.Store)
    assert isinstance(parse(b"a STORE 1 LABELS (x)"), CommandRejected)


def test_search() -> None:
    cmd = parse(b'a UID SEARCH CHARSET UTF-8 OR (FROM "a b" UNSEEN) NOT HEADER X-Y z 2:* UID 5 YOUNGER 60 '
                b"MODSEQ 7 KEYWORD $x SENTBEFORE 1-Feb-2026")
    assert isinstance(cmd, g.Search) and cmd.uid and cmd.charset == "UTF-8"
    ops = [k.op for k in cmd.criteria.args]
    assert ops == ["OR", "SEQ", "UID", "YOUNGER", "MODSEQ", "KEYWORD", "SENTBEFORE"]
    assert [k.op for k in cmd.criteria.args[0].args] == ["AND", "NOT"]  # OR takes the next two keys
    assert cmd.criteria.args[6].args == (dt.date(2026, 2, 1),)
    for bad in (b"a SEARCH", b"a SEARCH FOO", b"a SEARCH SINCE 31-Feb-2026", b"a SEARCH OR SEEN"):
        assert isinstance(parse(bad), CommandRejected)


def test_unknown_and_malformed() -> None:
    assert parse(b"a FROBNICATE") == CommandRejected("a", "unknown command FROBNICATE")
    rejected = parse(b"a SELECT")
    assert isinstance(rejected, CommandRejected) and "SELECT: missing mailbox" in rejected.text
    assert isinstance(parse(b"a NOOP extra"), CommandRejected)
    assert isinstance(parse(b"a UID FOO 1"), CommandRejected)


def test_one_registry_row_per_command() -> None:
    rows = registry.REGISTRY
    assert g.NOT_AUTHENTICATED not in rows["SELECT"].states
    assert rows["FETCH"].states == {g.SELECTED} and rows["FETCH"].parser is g.parse_fetch
    assert all(e.handler is not None for name, e in rows.items() if name != "UID")
    assert isinstance(registry.parse(RawCommand("a", "FROB", [])), CommandRejected)


def test_serializer_strings() -> None:
    assert serializer.string("plain") == b'"plain"'
    assert serializer.string('a"b\\c') == b'"a\\"b\\\\c"'
    assert serializer.string("line\r\nbreak") == b"{11}\r\nline\r\nbreak"
    assert serializer.string("jürgen") == b"{7}\r\nj\xc3\xbcrgen"
    assert serializer.string("jürgen", utf8=True) == b'"j\xc3\xbcrgen"'
    assert serializer.string({"b": "/w=="}) == b"{1}\r\n\xff"
    assert serializer.astring("INBOX") == b"INBOX" and serializer.astring("a b") == b'"a b"'
    assert serializer.astring("NIL") == b'"NIL"'
    assert serializer.data([None, 5, "x", ["y", None]]) == b'(NIL 5 "x" ("y" NIL))'


@settings(max_examples=200)
@given(st.binary(max_size=200))
def test_strings_round_trip_through_the_receiver(value: bytes) -> None:
    line = b"a LOGIN " + serializer.string(value) + b" x"
    cmd = parse(line)
    if b"\x00" in value:  # NUL is refused in quoted strings and in the IMAP4rev1 literal form
        return
    assert isinstance(cmd, g.Login) and cmd.username == value


@settings(max_examples=300)
@given(st.text(max_size=40))
def test_mutf7_round_trip(name: str) -> None:
    encoded = mutf7.encode(name)
    assert encoded.isascii()
    assert mutf7.decode(encoded) == name


@pytest.mark.parametrize("bad", [b"&", b"&Jjo", b"&AGE-", b"&2D3eAQ-x&", b"\xc3\xa4", b"&Jjo!-"])
def test_mutf7_rejects_invalid(bad: bytes) -> None:
    with pytest.raises(ValueError):
        mutf7.decode(bad)


def test_structure_serialization_as_dovecot_writes_it() -> None:
    env = ["d ", "a\tb  c ", [["x  y", None, "m", "h"], [None, None, "g", None]], None, None, None, None, None,
           None, "<a\"b>"]
    # subject and display names normalized for humans (then as literals); other strings as written
    assert serializer.envelope(env) == (b'("d " {5}\r\na b c (({3}\r\nx y NIL "m" "h")(NIL NIL "g" NIL)) NIL NIL NIL '
                                        b'NIL NIL NIL "<a\\"b>")')
    assert serializer.human_string('q"uote') == b'{6}\r\nq"uote'
    assert serializer.string("a\x00b") == b"{5}\r\na\xef\xbf\xbdb"
    multi = [["text", "plain", None, None, None, "7bit", 1, 0], ["text", "html", None, None, None, "7bit", 2, 1],
             "mixed"]
    assert serializer.body_structure(multi) == (b'(("text" "plain" NIL NIL NIL "7bit" 1 0)'
                                                b'("text" "html" NIL NIL NIL "7bit" 2 1) "mixed")')
