"""ESEARCH (RFC 4731) and SEARCHRES (RFC 5182) without a server: the RETURN options as parsed, ``$`` as a sequence
set, the ESEARCH line as serialized."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.protocols.imap.test_grammar import parse
from wildduck.protocols.imap import grammar as g
from wildduck.protocols.imap import serializer
from wildduck.protocols.imap.receiver import CommandRejected


def search(line: bytes) -> g.Search:
    cmd = parse(line)
    assert isinstance(cmd, g.Search), cmd
    return cmd


def test_return_options_are_parsed_once_each_and_empty_means_all() -> None:
    assert search(b"a SEARCH ALL").return_options == ()
    assert search(b"a SEARCH RETURN () ALL").return_options == ("ALL",)
    assert search(b"a SEARCH RETURN (min Max COUNT min) SEEN").return_options == ("MIN", "MAX", "COUNT")
    cmd = search(b"a UID SEARCH RETURN (SAVE) CHARSET UTF-8 SUBJECT x")
    assert cmd.uid and cmd.return_options == ("SAVE",) and cmd.charset == "UTF-8"


@pytest.mark.parametrize("line", [
    b"a SEARCH RETURN (FOO) ALL",  # unknown option: BAD (RFC 4466 2.6)
    b"a SEARCH RETURN ALL",  # not a list
    b"a SEARCH RETURN (MIN)",  # no criteria
    b"a SEARCH RETURN (PARTIAL 1:10) ALL",  # RFC 9394 is not offered
])
def test_bad_return_options(line: bytes) -> None:
    assert isinstance(parse(line), CommandRejected)


def test_dollar_is_a_sequence_set_of_its_own() -> None:
    assert g.parse_sequence_set(b"$").last_result
    assert not g.parse_sequence_set(b"1:*").last_result
    for bad in (b"$,1", b"1:$", b"$:*", b"$$"):
        with pytest.raises(g.ParseError):
            g.parse_sequence_set(bad)
    fetch = parse(b"a UID FETCH $ FLAGS")
    assert isinstance(fetch, g.Fetch) and fetch.sequence.last_result
    key = search(b"a SEARCH $ UID $ NOT $").criteria
    assert [k.op for k in key.args] == ["SEQ", "UID", "NOT"]
    for cmd in (b"a COPY $ Trash", b"a MOVE $ Trash", b"a STORE $ +FLAGS (\\Seen)", b"a UID EXPUNGE $"):
        assert not isinstance(parse(cmd), CommandRejected), cmd


def test_sets_of_numbers_merge_runs() -> None:
    s = g.SequenceSet.of_numbers([7, 1, 3, 2, 9, 10])
    assert s.normalized == ((1, 3), (7, 7), (9, 10)) and not s.last_result
    assert s.select_uids([1, 2, 4, 7, 10, 11]) == [0, 1, 3, 4]
    assert g.SequenceSet.of_numbers([]).select_uids([1, 2]) == []
    assert serializer.number_set([1, 2, 3, 7, 9, 10]) == "1:3,7,9:10"
    assert serializer.number_set([5]) == "5"


@given(st.lists(st.integers(1, 200), min_size=1, unique=True))
def test_number_set_round_trips_through_the_parser(numbers: list[int]) -> None:
    ordered = sorted(numbers)
    text = serializer.number_set(ordered).encode()
    assert g.parse_sequence_set(text).numbers(200) == ordered
    assert g.SequenceSet.of_numbers(numbers).numbers(200) == ordered


def test_esearch_line() -> None:
    assert serializer.esearch("t1", False, ("COUNT", "ALL", "MAX", "MIN"), [1, 2, 3, 5], None) == (
        b'* ESEARCH (TAG "t1") MIN 1 MAX 5 ALL 1:3,5 COUNT 4\r\n')  # fixed order, as Dovecot
    assert serializer.esearch("t2", True, ("ALL",), [4, 8], 12) == b'* ESEARCH (TAG "t2") UID ALL 4,8 MODSEQ 12\r\n'
    # nothing found: no MIN, MAX or ALL; COUNT 0 (RFC 4731 3.1)
    assert serializer.esearch("t3", False, ("MIN", "MAX", "ALL"), [], None) == b'* ESEARCH (TAG "t3")\r\n'
    assert serializer.esearch("t4", True, ("COUNT", "MIN"), [], None) == b'* ESEARCH (TAG "t4") UID COUNT 0\r\n'
