"""BINARY (RFC 3516) without a server: ``~{n}`` literal8 framing in the receiver, APPEND's parse, the transfer
decoders, the re-encoding of NUL parts, and the FETCH values."""

from __future__ import annotations

import binascii
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.protocols.imap.test_grammar import parse
from wildduck import _speedups
from wildduck.protocols import mime
from wildduck.protocols.imap import grammar as g
from wildduck.protocols.imap import serializer
from wildduck.protocols.imap.fetch import MessageView, UnknownCTE, binary_item, binary_size, body_item
from wildduck.protocols.imap.receiver import LITERAL, LITERAL8, CommandRejected, LiteralAnnounced, RawCommand, Receiver
from wildduck.protocols.mime import transfer


@pytest.mark.parametrize("tokenizer", sorted(_speedups.implementations("imaptok")))
def test_literal8_is_announced_and_framed_like_a_literal(tokenizer: str) -> None:
    r = Receiver(max_literal=100, tokenizer=_speedups.implementations("imaptok")[tokenizer])
    r.receive_data(b"a APPEND INBOX ~{5}\r\n")
    assert r.next_event() == LiteralAnnounced("a", 5)
    r.accept_literal()
    r.receive_data(b"\x00\x01\r\n\xff\r\n")
    assert r.next_event() == RawCommand("a", "APPEND", [(0, b"INBOX"), (LITERAL8, b"\x00\x01\r\n\xff")])


def test_literal8_over_the_limit_is_refused_before_it_is_read() -> None:
    r = Receiver(max_literal=100)
    r.receive_data(b"a APPEND INBOX ~{101}\r\n")
    event = r.next_event()
    assert isinstance(event, CommandRejected) and (event.status, event.code) == ("NO", "TOOBIG")
    r.receive_data(b"b NOOP\r\n")  # the client did not send the literal: the next line is a command
    assert r.next_event() == RawCommand("b", "NOOP", [])


def test_nonsynchronizing_literal8_over_the_limit_is_skipped() -> None:
    r = Receiver(max_literal=4)
    r.receive_data(b"a APPEND INBOX ~{6+}\r\n\x00\x00\x00\x00\x00\x00\r\nb NOOP\r\n")
    event = r.next_event()
    assert isinstance(event, CommandRejected) and event.code == "TOOBIG"
    assert r.next_event() == RawCommand("b", "NOOP", [])


def test_a_tilde_atom_before_a_literal_is_not_literal8() -> None:
    r = Receiver()
    r.receive_data(b"a LOGIN ~ {2+}\r\npw\r\n")
    assert r.next_event() == RawCommand("a", "LOGIN", [(0, b"~"), (LITERAL, b"pw")])


def test_append_takes_literal8_and_other_commands_do_not() -> None:
    cmd = parse(b"a APPEND INBOX (\\Seen) ~{3+}\r\n\x00ab {2+}\r\nxy")
    assert isinstance(cmd, g.Append)
    assert [(m.message, m.binary) for m in cmd.messages] == [(b"\x00ab", True), (b"xy", False)]
    assert isinstance(parse(b"a LOGIN alice ~{2+}\r\npw"), CommandRejected)
    assert isinstance(parse(b"a SELECT ~{5+}\r\nINBOX"), CommandRejected)


@pytest.mark.parametrize(("encoded", "decoded"), [
    (b"a=3Db", b"a=b"),
    (b"soft=\r\nbreak", b"softbreak"),
    (b"soft= \t\r\nbreak", b"softbreak"),  # white space after the "=" (RFC 2045 6.7 rule 5)
    (b"trailing  \r\nspace\t\r\n", b"trailing\r\nspace\r\n"),
    (b"lf=\nonly\n", b"lfonly\n"),
    (b"low=3d=0a=00", b"low=\n\x00"),
    (b"broken =ZZ and =4", b"broken =ZZ and =4"),
    (b"end=", b"end"),
])
def test_quoted_printable(encoded: bytes, decoded: bytes) -> None:
    assert transfer.decode_quoted_printable(encoded) == decoded


@given(st.binary(max_size=300))
def test_base64_body_round_trip(data: bytes) -> None:
    body = transfer.base64_body(data)
    assert all(len(line) <= 76 for line in body.split(b"\r\n"))
    assert transfer.decode(body, "base64") == data


def test_decode_knows_its_encodings() -> None:
    assert transfer.decode(b"x", "binary") == b"x"
    assert transfer.decode(b"aGk=", "base64") == b"hi"
    assert transfer.decode(b"x", "x-uuencode") is None


MESSAGE = (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n"
           b"Content-Transfer-Encoding: quoted-printable\r\n\r\nh=C3=A9llo=\r\n world\r\n--b\r\n"
           b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + transfer.base64_body(b"\x00\x01\x02 binary") + b"\r\n--b\r\nContent-Type: text/plain\r\n"
           b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n--b--\r\n")


def view_of(raw: bytes) -> MessageView:
    a = mime.analyze(raw)
    return MessageView(a.skeleton, a.parts, a.tree, a.blobs.__getitem__)


def test_binary_items() -> None:
    view = view_of(MESSAGE)
    text = binary_item(view, g.parse_fetch_item(b"BINARY[1]"))
    # decoded: a literal8, as Dovecot sends it, NUL or not
    assert (text.size, b"".join(text.chunks), text.binary) == (12, "héllo world".encode(), True)
    data = binary_item(view, g.parse_fetch_item(b"BINARY.PEEK[2]<1.4>"))
    assert (b"".join(data.chunks), data.binary) == (b"\x01\x02 b", True)
    assert binary_size(view, g.parse_fetch_item(b"BINARY.SIZE[2]")) == b"10"
    assert binary_item(view, g.parse_fetch_item(b"BINARY[9]")).size == 0
    for item in (b"BINARY[3]", b"BINARY[]"):  # the part, and the message that holds it
        with pytest.raises(UnknownCTE):
            binary_item(view, g.parse_fetch_item(item))
    with pytest.raises(UnknownCTE):
        binary_size(view, g.parse_fetch_item(b"BINARY.SIZE[3]"))


def test_binary_of_a_whole_message_decodes_every_part() -> None:
    raw = (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nas is\r\n"
           b"--b\r\ncontent-transfer-encoding: BASE64\r\nContent-Type: text/plain\r\n\r\naGk=\r\n--b--\r\n")
    whole = binary_item(view_of(raw), g.parse_fetch_item(b"BINARY[]"))
    assert b"".join(whole.chunks) == raw.replace(b"BASE64", b"binary").replace(b"aGk=", b"hi") and whole.binary
    plain = b"Subject: x\r\n\r\nnothing to decode\r\n"
    same = binary_item(view_of(plain), g.parse_fetch_item(b"BINARY[]"))
    assert (b"".join(same.chunks), same.binary) == (plain, False)
    assert binary_size(view_of(plain), g.parse_fetch_item(b"BINARY.SIZE[]")) == b"%d" % len(plain)


def test_literal8_in_responses() -> None:
    out = b"".join(serializer.iter_fetch(1, [("BINARY[1]", serializer.Streamed(2, [b"\x00a"], binary=True))]))
    assert out == b"* 1 FETCH (BINARY[1] ~{2}\r\n\x00a)\r\n"


def test_nul_parts_are_stored_as_base64() -> None:
    raw = (b"Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
           b"plain\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n"
           b" (folded comment)\r\n\r\n\x00\xff\x00 data\r\n--b--\r\n")
    stored = transfer.nul_parts_as_base64(raw, mime.scanner())
    assert b"\x00" not in stored and b"Content-Transfer-Encoding: binary" not in stored
    view = view_of(stored)
    assert b"".join(body_item(view, g.parse_fetch_item(b"BODY[1]")).chunks) == b"plain"
    assert b"".join(body_item(view, g.parse_fetch_item(b"BODY[2]")).chunks) == binascii.b2a_base64(
        b"\x00\xff\x00 data", newline=False)
    assert b"".join(binary_item(view, g.parse_fetch_item(b"BINARY[2]")).chunks) == b"\x00\xff\x00 data"
    assert transfer.nul_parts_as_base64(b"no nul here", mime.scanner()) == b"no nul here"
    single = transfer.nul_parts_as_base64(b"Subject: y\r\n\r\n\x00", mime.scanner())
    assert single == b"Subject: y\r\nContent-Transfer-Encoding: base64\r\n\r\nAA=="


@given(st.binary(max_size=400))
def test_decoders_never_raise(data: bytes) -> None:
    """Any bytes: quoted-printable decodes, a message re-encodes and decodes (parts in unknown encodings: None)."""
    transfer.decode_quoted_printable(data)
    stored = transfer.nul_parts_as_base64(data, mime.scanner())
    view = view_of(stored)
    try:
        binary_item(view, g.parse_fetch_item(b"BINARY[]"))
    except UnknownCTE:
        pass


@given(st.binary(max_size=200))
def test_quoted_printable_of_plain_text_is_the_text(data: bytes) -> None:
    """Bytes without "=" or white space before a line break decode to themselves."""
    text, before = data.replace(b"=", b""), b""
    while text != before:  # white space ending a line (or the data) goes; removing some may expose more
        before, text = text, re.sub(rb"[ \t]+(?=\r?\n|\Z)", b"", text)
    assert transfer.decode_quoted_printable(text) == text
