"""The sans-I/O IMAP receiver and tokenizer: framing, literals, limits, modes; fed whole and byte by byte."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wildduck._speedups import implementations
from wildduck.protocols.imap import receiver as rx
from wildduck.protocols.imap.receiver import (
    ATOM,
    LITERAL,
    LPAREN,
    QUOTED,
    RPAREN,
    CommandRejected,
    IdleDone,
    LiteralAnnounced,
    Mode,
    RawCommand,
    Receiver,
    SaslResponse,
)

TOKENIZERS = implementations("imaptok")


def drain(r: Receiver, accept: bool = True) -> list[object]:
    out: list[object] = []
    while True:
        e = r.next_event()
        if e is rx.NEED_DATA or e is rx.PAUSED:
            return out
        out.append(e)
        if isinstance(e, LiteralAnnounced) and accept:
            r.accept_literal()
        if isinstance(e, rx.ConnectionClosed):
            return out


def feed_whole(r: Receiver, data: bytes, accept: bool = True) -> list[object]:
    r.receive_data(data)
    return drain(r, accept)


def feed_bytewise(r: Receiver, data: bytes, accept: bool = True) -> list[object]:
    out: list[object] = []
    for i in range(len(data)):
        r.receive_data(data[i:i + 1])
        out.extend(drain(r, accept))
    return out


Feeder = Callable[..., list[object]]


@pytest.fixture(params=[(f, t) for f in ("whole", "bytewise") for t in sorted(TOKENIZERS)],
                ids=lambda p: f"{p[0]}-{p[1]}")
def setup(request: pytest.FixtureRequest) -> tuple[Feeder, ModuleType]:
    feeder = feed_whole if request.param[0] == "whole" else feed_bytewise
    return feeder, TOKENIZERS[request.param[1]]


def test_simple_commands_and_tokens(setup: tuple[Feeder, ModuleType]) -> None:
    feed, tok = setup
    r = Receiver(tokenizer=tok)
    events = feed(r, b'a1 NOOP\r\nA2 login "us\\"er" pass\r\nt3 fetch 1:* (FLAGS BODY[HEADER.FIELDS (A B)]<0.5>)\n')
    assert events == [
        RawCommand("a1", "NOOP", []),
        RawCommand("A2", "LOGIN", [(QUOTED, b'us"er'), (ATOM, b"pass")]),
        RawCommand("t3", "FETCH", [(ATOM, b"1:*"), (LPAREN, None), (ATOM, b"FLAGS"),
                                   (ATOM, b"BODY[HEADER.FIELDS (A B)]<0.5>"), (RPAREN, None)]),
    ]


def test_synchronizing_literal_pauses_until_accepted(setup: tuple[Feeder, ModuleType]) -> None:
    feed, tok = setup
    r = Receiver(tokenizer=tok)
    events = feed(r, b"a APPEND INBOX {5}\r\n", accept=False)
    assert events == [LiteralAnnounced("a", 5)]
    r.receive_data(b"hello\r\n")
    assert r.next_event() is rx.PAUSED  # nothing is read before the session decides; not "need more bytes"
    assert r.next_event() is rx.PAUSED
    r.accept_literal()
    assert drain(r) == [RawCommand("a", "APPEND", [(ATOM, b"INBOX"), (LITERAL, b"hello")])]


def test_paused_until_refused_too() -> None:
    r = Receiver()
    r.receive_data(b"a APPEND INBOX {5}\r\n")
    assert r.next_event() == LiteralAnnounced("a", 5)
    assert r.next_event() is rx.PAUSED  # with nothing buffered as well
    r.refuse_literal()
    assert r.next_event() is rx.NEED_DATA
    assert feed_whole(r, b"b NOOP\r\n") == [RawCommand("b", "NOOP", [])]


def test_sentinels_are_the_shared_ones() -> None:
    from wildduck.protocols import _base

    assert rx.NEED_DATA is _base.NEED_DATA and rx.PAUSED is _base.PAUSED
    assert rx.ConnectionClosed is _base.ConnectionClosed


def test_refused_literal_abandons_the_command() -> None:
    r = Receiver(max_literal=10)
    refused = CommandRejected("a", "literal of 11 bytes is over the limit of 10", "NO", "TOOBIG")
    assert feed_whole(r, b"a APPEND INBOX {11}\r\n", accept=False) == [refused]
    r2 = Receiver()
    feed_whole(r2, b"b APPEND INBOX {3}\r\n", accept=False)
    r2.refuse_literal()
    assert feed_whole(r2, b"c NOOP\r\n") == [RawCommand("c", "NOOP", [])]


def test_nonsync_literals_and_multiple_literals(setup: tuple[Feeder, ModuleType]) -> None:
    feed, tok = setup
    r = Receiver(tokenizer=tok)
    events = feed(r, b"a LOGIN {4+}\r\nuser {3+}\r\npwd\r\nb NOOP\r\n")
    assert events == [RawCommand("a", "LOGIN", [(LITERAL, b"user"), (LITERAL, b"pwd")]), RawCommand("b", "NOOP", [])]


def test_refused_nonsync_literal_is_skipped_by_counting(setup: tuple[Feeder, ModuleType]) -> None:
    feed, tok = setup
    r = Receiver(max_literal=100, tokenizer=tok)
    big = b"x" * 500 + b"\r\nEVIL INJECTED\r\n"  # bytes inside the literal must never run as commands
    events = feed(r, b"a APPEND INBOX {%d+}\r\n" % len(big) + big + b" more\r\nb NOOP\r\n")
    assert events == [CommandRejected("a", "literal of 517 bytes is over the limit of 100", "NO", "TOOBIG"),
                      RawCommand("b", "NOOP", [])]
    assert r.buffered == 0


def test_literal_minus_limits_nonsync_literals() -> None:
    r = Receiver(literal_minus=True)
    (event, after) = feed_whole(r, b"a APPEND INBOX {5000+}\r\n" + b"y" * 5000 + b"\r\nb NOOP\r\n")
    assert isinstance(event, CommandRejected) and "LITERAL-" in event.text
    assert after == RawCommand("b", "NOOP", [])


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"a FETCH 1 (FLAGS\r\n", "unbalanced parenthesis"),
        (b"a FETCH 1 FLAGS)\r\n", "unbalanced parenthesis"),
        (b'a LOGIN "unterminated\r\n', "unterminated quoted string"),
        (b'a LOGIN "bad \\x escape" p\r\n', "invalid escape"),
        (b"a NO\x00OP\r\n", "invalid character"),
        (b"a NOOP\rX\r\n", "invalid character CR"),
        (b"+bad NOOP\r\n", "missing or invalid tag"),
        (b"a\r\n", "missing command"),
        (b"a LOGIN {abc}\r\n", "invalid literal size"),
        (b"a LOGIN {5} x\r\n", "literal announcement must end the line"),
    ],
)
def test_syntax_errors_are_values_and_the_receiver_goes_on(line: bytes, reason: str) -> None:
    for tok in TOKENIZERS.values():
        r = Receiver(tokenizer=tok)
        events = feed_whole(r, line + b"z NOOP\r\n")
        assert isinstance(events[0], CommandRejected) and reason in events[0].text, events
        assert events[-1] == RawCommand("z", "NOOP", [])


def test_deep_nesting_is_refused() -> None:
    r = Receiver(max_depth=8)
    (event, ok) = feed_whole(r, b"a SEARCH " + b"(" * 50 + b"ALL" + b")" * 50 + b"\r\nb NOOP\r\n")
    assert isinstance(event, CommandRejected) and "nested" in event.text
    assert ok == RawCommand("b", "NOOP", [])


def test_overlong_line_is_refused_without_buffering() -> None:
    r = Receiver(max_line=1000)
    events = []
    r.receive_data(b"a LOGIN ")
    for _ in range(200):
        r.receive_data(b"x" * 1000)
        events.extend(drain(r))
        assert r.buffered <= 2000
    events.extend(feed_whole(r, b"\r\nb NOOP\r\n"))
    assert isinstance(events[0], CommandRejected) and events[0].text == "line too long"
    assert events[-1] == RawCommand("b", "NOOP", [])


def test_too_many_literals_and_command_size() -> None:
    r = Receiver(max_literals=2)
    data = b"a X {1+}\r\na {1+}\r\nb {1+}\r\nc\r\nz NOOP\r\n"
    events = feed_whole(r, data)
    assert isinstance(events[0], CommandRejected) and "too many literals" in events[0].text
    assert events[-1] == RawCommand("z", "NOOP", [])


def test_idle_and_sasl_modes() -> None:
    r = Receiver()
    r.set_mode(Mode.IDLE)
    assert feed_whole(r, b"done\r\n") == [IdleDone(True)]
    assert feed_whole(r, b"NOOP\r\n") == [IdleDone(False)]
    r.set_mode(Mode.SASL)
    assert feed_whole(r, b"AGFsaWNlAHB3\r\n") == [SaslResponse(b"AGFsaWNlAHB3")]
    r.set_mode(Mode.NORMAL)
    assert feed_whole(r, b"a NOOP\r\n") == [RawCommand("a", "NOOP", [])]


def test_starttls_discards_pipelined_plaintext() -> None:
    r = Receiver()
    events = feed_whole(r, b"a STARTTLS\r\nb LOGIN user pass\r\n")[:1]
    assert events == [RawCommand("a", "STARTTLS", [])]
    # the session sends OK, then discards what is buffered before the handshake
    r2 = Receiver()
    r2.receive_data(b"a STARTTLS\r\nb LOGIN user pass\r\n")
    assert r2.next_event() == RawCommand("a", "STARTTLS", [])
    r2.discard_buffer()
    assert r2.next_event() is rx.NEED_DATA


def test_eof() -> None:
    r = Receiver()
    r.receive_data(b"a NOO")
    r.receive_data(b"")
    assert r.next_event() == rx.ConnectionClosed()


segments = st.lists(st.sampled_from([b"a", b" ", b"(", b")", b'"', b"\\", b"{", b"}", b"[", b"]", b"1", b"+",
                                     b"\x00", b"\xff", b"<", b">", b"NIL", b"{3}", b"{2+}"]), max_size=30).map(b"".join)


@settings(max_examples=300)
@given(st.one_of(st.binary(max_size=120), segments), st.integers(0, 3))
def test_tokenizers_agree(line: bytes, depth: int) -> None:
    results = {name: tok.tokenize(line, 0, len(line), depth, 8) for name, tok in TOKENIZERS.items()}
    assert results["python"] == results["cython"]


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=200), max_size=12))
def test_arbitrary_input_never_raises_and_stays_bounded(chunks: list[bytes]) -> None:
    r = Receiver(max_line=256, max_literal=300, max_command=2000)
    for chunk in chunks:
        r.receive_data(chunk)
        for event in drain(r):
            assert isinstance(event, (RawCommand, LiteralAnnounced, CommandRejected, rx.ConnectionClosed))
        assert r.buffered <= 256 + 300 + 200 + 2
