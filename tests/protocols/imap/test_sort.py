"""SORT, sans-I/O (wildduck.protocols.imap.sort): the collation, the ENVELOPE reader, each key of a message, the
ordering with REVERSE and the sequence-number tie-break, and the SORT grammar."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.protocols.imap.test_grammar import parse
from wildduck.protocols.imap import grammar as g
from wildduck.protocols.imap import sort
from wildduck.protocols.imap.receiver import CommandRejected
from wildduck.protocols.mime import envelope, headers, imapform


def _envelope(header: bytes) -> bytes:
    """ENVELOPE in the IMAP form the store keeps, from a header block."""
    return imapform.envelope(envelope.envelope_of_fields(headers.fields(header)))


def _record(uid: int, header: bytes = b"", *, arrival: float = 0.0, sent: float | None = None, size: int = 0,
            subject: str = "") -> sort.SortRecord:
    return sort.record(uid, arrival=arrival, sent=sent, size=size, subject=subject, envelope=_envelope(header),
                       addresses=True)


# --- the collation -----------------------------------------------------------------------------------------------
def test_collation_maps_case_to_titlecase_then_code_points() -> None:
    """i;unicode-casemap: letters compare as their titlecase (upper case for ASCII), so "a" sorts before "_" (as
    "A", 0x41, before 0x5F), which a lower-casing comparison would get the other way."""
    assert sort.collate("abc") == sort.collate("ABC") == "ABC"
    assert sorted(["_b", "a", "B", "c"], key=sort.collate) == ["a", "B", "c", "_b"]


def test_collation_decomposes() -> None:
    assert sort.collate("\u00e9") == sort.collate("E\u0301") == "E\u0301"
    assert sort.collate("\ufb01x") == "FIX"  # a compatibility ligature
    assert sort.collate("\u00df") == "\u00df"  # no single-character titlecase: kept
    assert sorted(["caf\u00e9", "cafe", "cafd"], key=sort.collate) == ["cafd", "cafe", "caf\u00e9"]


# --- reading ENVELOPE --------------------------------------------------------------------------------------------
def test_parse_data_reads_quoted_literal_nil_and_nesting() -> None:
    data = b'("a \\"q\\" b" NIL {5}\r\nx\r\nyz (("n" NIL "box" "host")) ATOM)'
    assert sort.parse_data(data) == [b'a "q" b', None, b"x\r\nyz", [[b"n", None, b"box", b"host"]], b"ATOM"]


def test_parse_data_is_iterative() -> None:
    deep = b"(" * 50000 + b")" * 50000
    value = sort.parse_data(deep)
    for _ in range(49999):
        value = value[0]  # type: ignore[assignment]
    assert value == []


@pytest.mark.parametrize("bad", [b"", b"(", b"())", b"()()", b"(a))", b"x", b'("unterminated)'])
def test_parse_data_refuses_what_is_not_one_list(bad: bytes) -> None:
    with pytest.raises(ValueError):
        sort.parse_data(bad)


@pytest.mark.parametrize("broken", [b"(broken", b"({3}\r\nab", b"", b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"])
def test_a_record_whose_envelope_does_not_parse_has_empty_address_keys(broken: bytes) -> None:
    r = sort.record(1, arrival=5.0, sent=None, size=3, subject="Re: x", envelope=broken, addresses=True)
    assert (r.subject, r.from_, r.display_from, r.date, r.addresses) == ("X", "", "", 5.0, True)


@pytest.mark.parametrize("header", [
    b"From: Zed Zimmer <zed@example.net>, ann@example.net\r\nTo: \"B \\\"q\\\"\" <b@example.com>\r\n",
    b"From: =?UTF-8?Q?=C3=89mile?= <e@example.net>\r\nCc: a@b, c@d\r\nTo: undisclosed-recipients:;\r\n",
    b"From: \"" + b"x" * 2000 + b"\" <long@example.net>\r\nCc: \"\xc3\xa9\" <e@example.com>\r\n",
    b"Subject: no addresses\r\n",
    b"From: \"a\r\n b\" <folded@example.net>\r\nTo: <@route:x@y>\r\n",
])
def test_first_addresses_equals_a_full_parse(header: bytes) -> None:
    """The fast reading (one tokenization, for envelopes without literals) and the full parse agree; the long and
    the 8-bit names are literals."""
    env = _envelope(header)
    full = sort.parse_data(env)
    expected = []
    for index in (2, 5, 6):
        first = full[index][0] if isinstance(full[index], list) else None
        expected.append(first)
    assert sort.first_addresses(env) == expected


# --- the keys of one message ---------------------------------------------------------------------------------------
def test_address_keys_are_the_first_addresses() -> None:
    r = _record(1, b"From: Zed Zimmer <zed@example.net>, ann@example.net\r\nTo: \"Bob\" <Bob@example.com>\r\n"
                   b"Cc: carol@example.com\r\nCc: dave@example.com\r\n")
    assert (r.from_, r.to, r.cc) == ("ZED", "BOB", "CAROL")
    assert (r.display_from, r.display_to) == ("ZED ZIMMER", "BOB")


@pytest.mark.parametrize(("from_", "display"), [
    (b"=?UTF-8?Q?=C3=89mile?= Blanc <emile@example.net>", "E\u0301MILE BLANC"),  # decoded, then collated
    (b'"Adams, Ann" <ann@example.net>', "ADAMS, ANN"),
    (b'"" <erin@example.net>', "ERIN@EXAMPLE.NET"),  # an empty display name: the address
    (b"<dave@example.net>", "DAVE@EXAMPLE.NET"),
    (b"dave@example.net (Dave D)", "DAVE D"),  # a trailing comment is the name, as in ENVELOPE
    (b'"=?UTF-8?Q?_?=" <x@example.net>', "X@EXAMPLE.NET"),  # decodes to white space only
])
def test_display_names(from_: bytes, display: str) -> None:
    assert _record(1, b"From: " + from_ + b"\r\n").display_from == display


def test_missing_fields_sort_as_empty_strings() -> None:
    r = _record(1, b"Subject: x\r\n")
    assert (r.from_, r.to, r.cc, r.display_from, r.display_to) == ("", "", "", "", "")
    group = _record(1, b"To: undisclosed-recipients:;\r\n")
    assert group.display_to == "UNDISCLOSED-RECIPIENTS"  # a group's name, where its first address would be


def test_date_falls_back_to_the_internal_date() -> None:
    assert _record(1, arrival=100.0, sent=None).date == 100.0
    assert _record(1, arrival=100.0, sent=50.0).date == 50.0


def test_address_keys_only_when_asked_for() -> None:
    r = sort.record(1, arrival=0.0, sent=None, size=0, subject="Re: x",
                    envelope=_envelope(b"From: a@example.net\r\n"), addresses=False)
    assert (r.subject, r.from_, r.addresses) == ("X", "", False)


# --- the order -----------------------------------------------------------------------------------------------------
def _criteria(text: str) -> tuple[g.SortCriterion, ...]:
    cmd = parse(b"t SORT (" + text.encode() + b") UTF-8 ALL")
    assert isinstance(cmd, g.Sort), cmd
    return cmd.keys


def test_order_ties_in_mailbox_order_even_reversed() -> None:
    records = [_record(n, size=s) for n, s in [(1, 20), (2, 20), (3, 10), (4, 10), (5, 5)]]
    assert [r.uid for r in sort.order(records, _criteria("SIZE"))] == [5, 3, 4, 1, 2]
    assert [r.uid for r in sort.order(records, _criteria("REVERSE SIZE"))] == [1, 2, 3, 4, 5]


def test_order_by_several_keys_reverses_each_alone() -> None:
    records = [_record(1, size=1, subject="b", arrival=3.0), _record(2, size=2, subject="Re: a", arrival=1.0),
               _record(3, size=3, subject="B", arrival=2.0), _record(4, size=4, subject="a", arrival=1.0)]
    assert [r.uid for r in sort.order(records, _criteria("SUBJECT ARRIVAL"))] == [2, 4, 3, 1]
    assert [r.uid for r in sort.order(records, _criteria("SUBJECT REVERSE ARRIVAL"))] == [2, 4, 1, 3]
    assert [r.uid for r in sort.order(records, _criteria("REVERSE SUBJECT REVERSE SIZE"))] == [3, 1, 4, 2]
    assert [r.uid for r in sort.order(records, _criteria("REVERSE DATE SIZE"))] == [1, 3, 2, 4]


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=30), st.booleans(), st.booleans())
def test_order_is_a_lexicographic_sort_with_the_mailbox_order_last(pairs: list[tuple[int, int]], rev1: bool,
                                                                  rev2: bool) -> None:
    records = [_record(n, size=a, arrival=float(b)) for n, (a, b) in enumerate(pairs, 1)]
    criteria = (g.SortCriterion("SIZE", rev1), g.SortCriterion("ARRIVAL", rev2))
    expected = sorted(records, key=lambda r: ((-r.size if rev1 else r.size), (-r.arrival if rev2 else r.arrival),
                                              r.uid))
    assert sort.order(records, criteria) == expected


# --- the grammar ---------------------------------------------------------------------------------------------------
def test_sort_grammar() -> None:
    cmd = parse(b"t sort (reverse Date subject displayFROM) utf-8 SUBJECT x UNSEEN")
    assert isinstance(cmd, g.Sort)
    assert cmd.keys == (g.SortCriterion("DATE", True), g.SortCriterion("SUBJECT"), g.SortCriterion("DISPLAYFROM"))
    assert (cmd.uid, cmd.charset, cmd.return_options) == (False, "UTF-8", ())
    assert [k.op for k in cmd.criteria.args] == ["SUBJECT", "UNSEEN"]
    uid = parse(b't UID SORT RETURN (MIN MAX MIN) (SIZE) "US-ASCII" ALL')
    assert isinstance(uid, g.Sort)
    assert (uid.name, uid.uid, uid.charset, uid.return_options) == ("UID SORT", True, "US-ASCII", ("MIN", "MAX"))
    assert parse(b"t SORT RETURN () (ARRIVAL) UTF-8 ALL").return_options == ("ALL",)  # type: ignore[attr-defined]
    literal = parse(b"t SORT (TO) {5}\r\nUTF-8 ALL")
    assert isinstance(literal, g.Sort) and literal.charset == "UTF-8"


@pytest.mark.parametrize(("line", "error"), [
    (b"t SORT (FOO) UTF-8 ALL", "SORT: unknown sort key FOO"),
    (b"t SORT () UTF-8 ALL", "SORT: empty list of sort criteria"),
    (b"t SORT SUBJECT UTF-8 ALL", "SORT: expected a parenthesized list of sort criteria"),
    (b"t SORT (REVERSE) UTF-8 ALL", "SORT: expected sort key after REVERSE"),
    (b"t SORT (REVERSE REVERSE DATE) UTF-8 ALL", "SORT: unknown sort key REVERSE"),
    (b"t SORT (SUBJECT) UTF-8", "SORT: missing search criteria"),
    (b"t SORT (SUBJECT)", "SORT: missing charset"),
    (b"t SORT", "SORT: expected a parenthesized list of sort criteria"),
    (b"t SORT (SUBJECT) UTF-8 NOSUCHKEY", "SORT: unknown search key NOSUCHKEY"),
    (b"t SORT RETURN (FOO) (SUBJECT) UTF-8 ALL", "SORT: unknown search return option FOO"),
    (b"t SORT RETURN MIN (SUBJECT) UTF-8 ALL", "SORT: expected RETURN (...)"),
    (b"t SORT (SUBJECT (DATE)) UTF-8 ALL", "SORT: expected sort key"),
    (b"t UID SORT (SUBJECT) UTF-8", "UID: missing search criteria"),
])
def test_sort_grammar_errors(line: bytes, error: str) -> None:
    assert parse(line) == CommandRejected("t", error)
