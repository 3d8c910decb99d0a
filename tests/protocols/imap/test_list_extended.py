"""LIST-EXTENDED (RFC 5258) and CREATE-SPECIAL-USE (RFC 6154 3) as parsed: options, pattern lists, errors."""

from __future__ import annotations

import pytest

from tests.protocols.imap.test_grammar import parse
from wildduck.protocols.imap import grammar as g
from wildduck.protocols.imap.receiver import CommandRejected


def test_basic_list_is_not_extended() -> None:
    assert parse(b'a LIST "" *') == g.ListCommand("a", "LIST", b"", (b"*",))


def test_selection_patterns_and_return_options() -> None:
    cmd = parse(b'a LIST (SUBSCRIBED RECURSIVEMATCH) "" ("INBOX" Sent* {3}\r\nA/%) '
                b"RETURN (CHILDREN special-use STATUS (MESSAGES SIZE))")
    assert cmd == g.ListCommand("a", "LIST", b"", (b"INBOX", b"Sent*", b"A/%"), ("SUBSCRIBED", "RECURSIVEMATCH"),
                                ("CHILDREN", "SPECIAL-USE", "STATUS"), ("MESSAGES", "SIZE"), extended=True)


@pytest.mark.parametrize("line", [b'a LIST () "" %', b'a LIST "" (%)', b'a LIST "" % RETURN ()'])
def test_any_extended_syntax_is_extended(line: bytes) -> None:
    cmd = parse(line)
    assert isinstance(cmd, g.ListCommand) and cmd.extended


@pytest.mark.parametrize(("line", "text"), [
    (b'a LIST (IMAPTEST) "" ""', "unknown selection option IMAPTEST"),
    (b'a LIST (RECURSIVEMATCH) "" ""', "RECURSIVEMATCH needs another selection option"),
    (b'a LIST (RECURSIVEMATCH REMOTE) "" ""', "RECURSIVEMATCH needs another selection option"),
    (b'a LIST "" "" RETURN (IMAPTEST)', "unknown return option IMAPTEST"),
    (b'a LIST "" () ', "empty pattern list"),
    (b'a LIST "" % RETURN (STATUS (FOO))', "unknown status item FOO"),
    (b'a LIST "" % RETURN CHILDREN', "expected RETURN (...)"),
    (b'a LSUB (SUBSCRIBED) "" %', "LSUB"),
])
def test_refused(line: bytes, text: str) -> None:
    cmd = parse(line)
    assert isinstance(cmd, CommandRejected) and text in cmd.text


def test_create_with_use() -> None:
    assert parse(b"a CREATE Archive (USE (\\Archive))") == g.Create("a", "CREATE", b"Archive", ("\\Archive",))
    assert parse(b"a CREATE x (USE ())") == g.Create("a", "CREATE", b"x")
    assert parse(b"a CREATE x (USE (\\Sent \\Sent \\Trash))") == g.Create("a", "CREATE", b"x", ("\\Sent", "\\Trash"))
    for bad in (b"a CREATE x (FOO (\\Sent))", b"a CREATE x (USE \\Sent)", b"a CREATE x (USE (Sent))",
                b"a CREATE x (USE (\\Sent)) y"):
        assert isinstance(parse(bad), CommandRejected), bad
