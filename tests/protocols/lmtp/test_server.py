"""The sans-I/O LMTP server: every command and state, fed in one chunk and byte by byte."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wildduck.protocols.lmtp import server as lmtp
from wildduck.testing.lmtp_client import dot_stuff

Feeder = Callable[[lmtp.LMTPServer, bytes], list[object]]


def _drain(p: lmtp.LMTPServer, accept: bool) -> list[object]:
    """Pull events, answering each as a session would (accepting senders and recipients if ``accept``)."""
    events: list[object] = []
    while True:
        e = p.next_event()
        if e is lmtp.NEED_DATA:
            return events
        assert e is not lmtp.PAUSED, "a reply is owed"
        events.append(e)
        if isinstance(e, (lmtp.MailFrom, lmtp.RcptTo)):
            p.send(lmtp.Reply(250, "2.1.0", "OK") if accept else lmtp.Reply(550, "5.1.1", "No"))
        elif isinstance(e, lmtp.DataStart):
            p.data_go_ahead()
        if isinstance(e, (lmtp.ConnectionClosed, lmtp.Quit)):
            return events


def whole(p: lmtp.LMTPServer, data: bytes, accept: bool = True) -> list[object]:
    p.receive_data(data)
    return _drain(p, accept)


def bytewise(p: lmtp.LMTPServer, data: bytes, accept: bool = True) -> list[object]:
    events: list[object] = []
    for i in range(len(data)):
        p.receive_data(data[i:i + 1])
        events.extend(_drain(p, accept))
    return events


@pytest.fixture(params=[whole, bytewise], ids=["whole", "bytewise"])
def feed(request: pytest.FixtureRequest) -> Feeder:
    return request.param  # type: ignore[no-any-return]


def new(**kw: int) -> lmtp.LMTPServer:
    return lmtp.LMTPServer("mx.example", max_message_size=kw.get("size", 1000), max_recipients=kw.get("rcpts", 3),
                           max_line_length=kw.get("line", 512))


def rejected(e: object) -> bytes:
    assert isinstance(e, lmtp.CommandRejected), e
    return e.reply


def test_full_transaction(feed: Feeder) -> None:
    p = new()
    events = feed(p, b"LHLO client.example\r\nMAIL FROM:<a@b.c> SIZE=100 BODY=8BITMIME\r\n"
                     b"RCPT TO:<x@y.z>\r\nRCPT TO:<Q@Y.Z>\r\nDATA\r\n"
                     b"Subject: t\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n")
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["Lhlo", "MailFrom", "RcptTo", "RcptTo", "DataStart", "MessageData", "Quit"]
    mail = events[1]
    assert isinstance(mail, lmtp.MailFrom) and mail.size == 100 and mail.params["BODY"] == "8BITMIME"
    data = events[5]
    assert isinstance(data, lmtp.MessageData) and data.error is None
    assert data.data == b"Subject: t\r\n\r\n.leading dot\r\n"


def test_lhlo_reply_advertises_extensions() -> None:
    p = new(size=5000)
    reply = p.lhlo_reply().decode()
    for ext in ("PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "SMTPUTF8", "SIZE 5000"):
        assert f"250-{ext}" in reply or f"250 {ext}" in reply
    assert "STARTTLS" not in reply
    tls = lmtp.LMTPServer("h", max_message_size=1, tls_available=True)
    assert "STARTTLS" in tls.lhlo_reply().decode()
    assert reply.endswith("\r\n") and reply.count("250 ") == 1


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"HELO x\r\n", b"500 5.5.1"),
        (b"EHLO x\r\n", b"500 5.5.1"),
        (b"FOO\r\n", b"500 5.5.1"),
        (b"\r\n", b"500 5.5.2"),
        (b"LHLO\r\n", b"501 5.5.4"),
        (b"NOOP\n", b"500 5.5.2 Syntax error: lines must end with CRLF"),
        (b"NO\x00OP\r\n", b"500 5.5.2 Syntax error: NUL byte"),
        (b"\xff\xfe\r\n", b"500 5.5.2"),
        (b"MAIL FROM:<a@b.c>\r\n", b"503 5.5.1 Send LHLO first"),
    ],
)
def test_bad_commands(line: bytes, expected: bytes) -> None:
    p = new()
    (event,) = whole(p, line)
    assert rejected(event).startswith(expected)
    assert whole(p, b"NOOP\r\n") == [lmtp.Noop()]  # the connection goes on


@pytest.mark.parametrize(
    ("commands", "expected"),
    [
        (b"RCPT TO:<a@b.c>\r\n", b"503 5.5.1 Need MAIL"),
        (b"DATA\r\n", b"503 5.5.1 Need MAIL"),
        (b"MAIL FROM:<a@b.c>\r\nMAIL FROM:<a@b.c>\r\n", b"503 5.5.1 Nested MAIL"),
        (b"MAIL FROM:<a@b.c>\r\nDATA\r\n", b"554 5.5.1 No valid recipients"),
        (b"MAIL FROM:a@b.c\r\n", b"501 5.1.7"),
        (b"MAIL FROM:<a@b.c> SIZE=abc\r\n", b"501 5.5.4"),
        (b"MAIL FROM:<a@b.c> SIZE=999999\r\n", b"552 5.3.4"),
        (b"MAIL FROM:<a@b.c> BODY=BINARYMIME\r\n", b"555 5.5.4"),
        (b"MAIL FROM:<a@b.c> FOO=BAR\r\n", b"555 5.5.4 Unsupported parameter FOO"),
        (b"MAIL FROM:<j\xc3\xbcrgen@b.c>\r\n", b"553 5.6.7"),
        (b"MAIL FROM:<a@b.c>\r\nRCPT TO:<>\r\n", b"501 5.1.3"),
        (b"MAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z> NOTIFY=NEVER\r\n", b"555 5.5.4"),
        (b"DATA extra\r\n", b"501 5.5.4"),
        (b"STARTTLS\r\n", b"502 5.5.1"),
    ],
)
def test_sequencing_and_syntax_errors(commands: bytes, expected: bytes) -> None:
    p = new()
    whole(p, b"LHLO c\r\n")
    events = whole(p, commands)
    assert rejected(events[-1]).startswith(expected)


def test_null_sender_and_smtputf8() -> None:
    p = new()
    events = whole(p, b"LHLO c\r\nMAIL FROM:<> SMTPUTF8\r\nRCPT TO:<j\xc3\xbcrgen@b\xc3\xbccher.example>\r\n")
    assert isinstance(events[1], lmtp.MailFrom) and events[1].address == "" and events[1].smtputf8
    assert isinstance(events[2], lmtp.RcptTo) and events[2].address == "jürgen@bücher.example"


def test_recipient_limit() -> None:
    p = new(rcpts=2)
    events = whole(p, b"LHLO c\r\nMAIL FROM:<a@b.c>\r\n" + b"RCPT TO:<x@y.z>\r\n" * 3)
    assert rejected(events[-1]).startswith(b"452 4.5.3")


def test_rset_ends_the_transaction(feed: Feeder) -> None:
    p = new()
    events = feed(p, b"LHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nRSET\r\nDATA\r\n")
    assert isinstance(events[-2], lmtp.Rset)
    assert rejected(events[-1]).startswith(b"503")


def test_overlong_line_is_not_buffered(feed: Feeder) -> None:
    p = new(line=512)
    events = feed(p, b"NOOP " + b"x" * 10_000 + b"\r\nNOOP\r\n")
    assert rejected(events[0]).startswith(b"500 5.5.2 Line too long")
    assert events[1:] == [lmtp.Noop()]
    assert p.buffered == 0


def test_oversize_message_is_discarded_while_reading() -> None:
    p = new(size=1000)
    whole(p, b"LHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nDATA\r\n")
    peak = 0
    for _ in range(200):
        p.receive_data(b"y" * 998 + b"\r\n")
        assert p.next_event() is lmtp.NEED_DATA
        peak = max(peak, p.buffered)
    assert peak < 5000  # bounded by the limit, not by what was sent
    (event,) = whole(p, b".\r\n")
    assert isinstance(event, lmtp.MessageData) and event.error and event.error.startswith(b"552 5.3.4")
    assert whole(p, b"NOOP\r\n") == [lmtp.Noop()]


@pytest.mark.parametrize(("body", "reason"), [(b"a\nb\r\n", b"bare LF"), (b"a\rb\r\n", b"bare LF or CR"),
                                              (b"a\x00b\r\n", b"NUL")])
def test_ambiguous_data_is_refused(body: bytes, reason: bytes) -> None:
    p = new()
    whole(p, b"LHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nDATA\r\n")
    (event,) = whole(p, body + b".\r\n")
    assert isinstance(event, lmtp.MessageData) and event.error is not None
    assert event.error.startswith(b"550 5.6.0") and reason in event.error


def test_bare_lf_dot_does_not_end_data() -> None:
    """SMTP smuggling: only CRLF.CRLF ends the message."""
    p = new()
    whole(p, b"LHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nDATA\r\n")
    assert whole(p, b"x\r\n\n.\nMAIL FROM:<evil@x.y>\r\n") == []
    (event,) = whole(p, b"\r\n.\r\n")
    assert isinstance(event, lmtp.MessageData) and event.error is not None  # refused whole, nothing smuggled


def test_empty_message_and_pipelined_commands_after_data(feed: Feeder) -> None:
    p = new()
    events = feed(p, b"LHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nDATA\r\n.\r\nNOOP\r\n")
    assert events[-2] == lmtp.MessageData(b"")
    assert events[-1] == lmtp.Noop()


def test_eof_closes(feed: Feeder) -> None:
    p = new()
    p.receive_data(b"NOOP")
    p.receive_data(b"")
    assert p.next_event() == lmtp.ConnectionClosed()


def test_discard_buffer_after_starttls() -> None:
    p = lmtp.LMTPServer("h", max_message_size=100, tls_available=True)
    events = whole(p, b"LHLO c\r\nSTARTTLS\r\nMAIL FROM:<injected@x.y>\r\n")
    assert isinstance(events[1], lmtp.StartTLS)
    p.discard_buffer()
    p.tls_started()
    assert whole(p, b"MAIL FROM:<a@b.c>\r\n")[0] == lmtp.CommandRejected(
        lmtp.reply_bytes(503, "5.5.1", "Send LHLO first"))


@settings(max_examples=200)
@given(st.binary(max_size=2000))
def test_dot_stuffing_round_trip(body: bytes) -> None:
    body = body.replace(b"\r", b"").replace(b"\n", b"\r\n").replace(b"\x00", b"")
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    p = new(size=10_000)
    whole(p, b"LHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nDATA\r\n")
    (event,) = whole(p, dot_stuff(body))
    assert event == lmtp.MessageData(body)


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=300), max_size=10))
def test_arbitrary_bytes_never_crash(chunks: list[bytes]) -> None:
    p = new(line=512, size=2000)
    for chunk in chunks:
        p.receive_data(chunk)
        for e in _drain(p, accept=True):
            assert isinstance(e, (lmtp.Lhlo, lmtp.MailFrom, lmtp.RcptTo, lmtp.DataStart, lmtp.MessageData,
                                  lmtp.Rset, lmtp.Noop, lmtp.Quit, lmtp.Vrfy, lmtp.StartTLS, lmtp.CommandRejected,
                                  lmtp.ConnectionClosed))
        assert p.buffered <= 2000 + 512 + 300 + 8


def test_replies_drive_the_state_machine() -> None:
    """``send`` renders the reply and advances the state: the session never tells the protocol twice."""
    p = new()
    p.receive_data(b"LHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nRCPT TO:<q@y.z>\r\nDATA\r\n")
    assert isinstance(p.next_event(), lmtp.Lhlo)
    p.send(lmtp.Reply(250, None, "hi"))
    assert isinstance(p.next_event(), lmtp.MailFrom)
    assert p.next_event() is lmtp.PAUSED  # the RCPT waits until MAIL FROM is answered
    assert p.send(lmtp.Reply(250, "2.1.0", "Sender OK")) == b"250 2.1.0 Sender OK\r\n"
    assert p.in_transaction
    assert isinstance(p.next_event(), lmtp.RcptTo)
    p.send(lmtp.Reply(550, "5.1.1", "Unknown"))  # refused: not counted
    assert isinstance(p.next_event(), lmtp.RcptTo)
    p.send(lmtp.Reply(250, "2.1.5", "OK"))
    assert p.recipients == 1
    assert p.next_event() == lmtp.DataStart()
    p.receive_data(b"body\r\n.\r\n")
    assert p.next_event() is lmtp.PAUSED  # the data is not read before the 354
    assert p.data_go_ahead().startswith(b"354 ")
    assert p.next_event() == lmtp.MessageData(b"body\r\n")
    assert not p.in_transaction  # the message ends the transaction


def test_refused_data_returns_to_commands() -> None:
    p = new()
    whole(p, b"LHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\n")
    p.receive_data(b"DATA\r\nNOOP\r\n")
    assert p.next_event() == lmtp.DataStart()
    p.send(lmtp.Reply(451, "4.3.0", "Try later"))
    assert p.next_event() == lmtp.Noop()


def test_quit_closes_once_answered() -> None:
    p = new()
    p.receive_data(b"QUIT\r\nNOOP\r\n")
    assert p.next_event() == lmtp.Quit()
    assert p.next_event() is lmtp.PAUSED
    assert p.send(lmtp.Reply(221, "2.0.0", "bye")) == b"221 2.0.0 bye\r\n"
    assert p.next_event() is lmtp.NEED_DATA and p.buffered == 0  # nothing after QUIT is read
    p.receive_data(b"")
    assert p.next_event() == lmtp.ConnectionClosed()


def test_events_are_the_shared_ones() -> None:
    from wildduck.protocols import _base

    assert lmtp.NEED_DATA is _base.NEED_DATA and lmtp.PAUSED is _base.PAUSED
    assert lmtp.ConnectionClosed is _base.ConnectionClosed
