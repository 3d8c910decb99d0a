"""MULTIAPPEND (RFC 3502) without a server: several messages in one APPEND as parsed, and the receiver's account of
the literals a command already carries (the session checks the quota for their sum before the next one is sent)."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.protocols.imap.test_grammar import parse
from wildduck.protocols.imap import grammar as g
from wildduck.protocols.imap.receiver import NEED_DATA, CommandRejected, LiteralAnnounced, RawCommand, Receiver


def test_several_messages_each_with_its_flags_and_date() -> None:
    cmd = parse(b'a APPEND Drafts (\\Seen) {1}\r\nx "14-Jul-2026 02:44:25 +0000" {2}\r\nyy (\\Draft $K) {1+}\r\nz')
    assert isinstance(cmd, g.Append) and cmd.mailbox == b"Drafts"
    assert cmd.messages == (
        g.AppendMessage(("\\Seen",), None, b"x"),
        g.AppendMessage((), dt.datetime(2026, 7, 14, 2, 44, 25, tzinfo=dt.UTC), b"yy"),
        g.AppendMessage(("\\Draft", "$K"), None, b"z"),
    )


@pytest.mark.parametrize("line", [
    b"a APPEND INBOX {1}\r\nx (\\Seen)",  # flags without a message after them
    b'a APPEND INBOX {1}\r\nx "14-Jul-2026 02:44:25 +0000"',  # a date without a message
    b'a APPEND INBOX "just a quoted string"',  # a message is a literal
    b"a APPEND INBOX {1}\r\nx {1}\r\ny extra",
    b"a APPEND INBOX {1}\r\nx (\\Bogus) {1}\r\ny",  # a bad flag on the second message fails the whole command
    b"a APPEND INBOX",
])
def test_malformed(line: bytes) -> None:
    assert isinstance(parse(line), CommandRejected)


def test_each_announcement_says_how_much_the_command_already_holds() -> None:
    r = Receiver()
    r.receive_data(b"a APPEND INBOX {3}\r\n")
    first = r.next_event()
    assert first == LiteralAnnounced("a", 3, 0)
    r.accept_literal()
    r.receive_data(b"abc (\\Seen) {4+}\r\ndefg {5}\r\n")
    second = r.next_event()
    assert second == LiteralAnnounced("a", 5, 7)  # 3 synchronizing + 4 non-synchronizing before it
    r.accept_literal()
    r.receive_data(b"hijkl\r\n")
    done = r.next_event()
    assert isinstance(done, RawCommand) and [t[1] for t in done.args if t[0] == 4] == [b"abc", b"defg", b"hijkl"]
    assert r.next_event() is NEED_DATA


def test_literals_beyond_what_one_command_may_hold_are_refused_before_they_are_sent() -> None:
    r = Receiver(max_literal=100, max_command=250)
    r.receive_data(b"a APPEND INBOX {100+}\r\n" + b"x" * 100 + b" {100+}\r\n" + b"y" * 100 + b" {100}\r\n")
    refused = r.next_event()
    assert isinstance(refused, CommandRejected) and (refused.status, refused.code) == ("NO", "TOOBIG")
    r.receive_data(b"b NOOP\r\n")
    assert r.next_event() == RawCommand("b", "NOOP", [])
