"""IMAP response serialization: strings as atom, quoted or literal; nested data; streamed FETCH responses."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

#: strings longer than this are sent as literals even when they could be quoted
MAX_QUOTED = 1024
_ATOM_SPECIALS = frozenset(b'(){ %*"\\]') | frozenset(range(0, 32)) | {127}


def _raw(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and "b" in value:  # lossless marker for non-UTF-8 header bytes
        return base64.b64decode(value["b"])
    raise TypeError(f"not a string: {value!r}")


_REPLACEMENT = "\ufffd".encode()
_BLANKS = re.compile(rb"[ \t]+")


def _literal(data: bytes) -> bytes:
    return b"{%d}\r\n" % len(data) + data


def string(value: Any, *, utf8: bool = False) -> bytes:
    """A string as quoted when safe, else as a literal (CR, LF, 8-bit without UTF8=ACCEPT, long). A NUL, which
    no IMAP string may hold, is sent as U+FFFD (as Dovecot does)."""
    data = _raw(value).replace(b"\x00", _REPLACEMENT)
    needs_literal = (
        len(data) > MAX_QUOTED
        or b"\r" in data
        or b"\n" in data
        or (not utf8 and not data.isascii())
    )
    if needs_literal:
        return _literal(data)
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def human_string(value: Any, *, utf8: bool = False) -> bytes:
    """A string meant for people (ENVELOPE subject and display names), as Dovecot writes it: line breaks
    removed, runs of blanks made one space, trimmed; sent as a literal when that changed it or when it holds a
    quote or a backslash (so that it never needs escaping)."""
    data = _raw(value).replace(b"\x00", _REPLACEMENT)
    clean = _BLANKS.sub(b" ", data.replace(b"\r", b"").replace(b"\n", b"")).strip(b" ")
    if clean != data or b'"' in clean or b"\\" in clean:
        return _literal(clean)
    return string(clean, utf8=utf8)


def astring(value: Any, *, utf8: bool = False) -> bytes:
    """An atom when every byte is an atom character, else a string."""
    data = _raw(value)
    if data and not any(c in _ATOM_SPECIALS or c > 127 for c in data) and data.upper() != b"NIL":
        return data
    return string(data, utf8=utf8)


def nstring(value: Any, *, utf8: bool = False) -> bytes:
    return b"NIL" if value is None else string(value, utf8=utf8)


def data(value: Any, *, utf8: bool = False) -> bytes:
    """JSON-able nested data (ENVELOPE, BODYSTRUCTURE): None → NIL, int → number, list → parenthesized.

    Items are separated by a space, except the lists a list starts with, which follow each other directly: that
    is how RFC 3501 writes the addresses of an address list (``((...)(...))``) and the parts of a multipart body
    (``(...)(...) "mixed"``); no other list of ENVELOPE or BODYSTRUCTURE data starts with a list.
    """
    if value is None:
        return b"NIL"
    if isinstance(value, bool):
        raise TypeError("booleans have no IMAP form")
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, list | tuple):
        lead = 0
        while lead < len(value) and isinstance(value[lead], list | tuple):
            lead += 1
        head = b"".join(data(v, utf8=utf8) for v in value[:lead])
        rest = [data(v, utf8=utf8) for v in value[lead:]]
        return b"(" + b" ".join([head, *rest] if lead else rest) + b")"
    return string(value, utf8=utf8)


def _address_list(value: Any, utf8: bool) -> bytes:
    if not value:
        return b"NIL"
    out = []
    for name, adl, mailbox, host in value:
        first = b"NIL" if name is None else human_string(name, utf8=utf8)
        out.append(b"(" + b" ".join([first, nstring(adl, utf8=utf8), nstring(mailbox, utf8=utf8),
                                     nstring(host, utf8=utf8)]) + b")")
    return b"(" + b"".join(out) + b")"


def envelope(value: Any, *, utf8: bool = False) -> bytes:
    """ENVELOPE data ``[date, subject, from, sender, reply-to, to, cc, bcc, in-reply-to, message-id]``: the
    subject and display names as :func:`human_string`, the rest as :func:`data`."""
    date, subject, *lists, in_reply_to, message_id = value
    items = [nstring(date, utf8=utf8), b"NIL" if subject is None else human_string(subject, utf8=utf8),
             *(_address_list(a, utf8) for a in lists), nstring(in_reply_to, utf8=utf8), nstring(message_id, utf8=utf8)]
    return b"(" + b" ".join(items) + b")"


def body_structure(value: Any, *, utf8: bool = False) -> bytes:
    """BODY / BODYSTRUCTURE data: :func:`data`, except that the envelope of a message/rfc822 part is written by
    :func:`envelope`."""
    if value and isinstance(value[0], list):  # multipart: the parts, then the rest
        lead = 0
        while lead < len(value) and isinstance(value[lead], list):
            lead += 1
        head = b"".join(body_structure(v, utf8=utf8) for v in value[:lead])
        return b"(" + b" ".join([head, *(data(v, utf8=utf8) for v in value[lead:])]) + b")"
    typ, sub = value[0], value[1]
    if (len(value) >= 10 and isinstance(typ, str) and isinstance(sub, str) and typ.lower() == "message"
            and sub.lower() in ("rfc822", "global") and isinstance(value[7], list) and isinstance(value[8], list)):
        items = [data(v, utf8=utf8) for v in value[:7]]
        items += [envelope(value[7], utf8=utf8), body_structure(value[8], utf8=utf8)]
        items += [data(v, utf8=utf8) for v in value[9:]]
        return b"(" + b" ".join(items) + b")"
    return data(value, utf8=utf8)


def flag_list(flags: Iterable[str]) -> bytes:
    return b"(" + b" ".join(f.encode("utf-8") for f in flags) + b")"


def tagged(tag: str, status: str, text: str, code: str | None = None) -> bytes:
    """``tag OK [CODE] text``."""
    return f"{tag} {status} {'[' + code + '] ' if code else ''}{text}\r\n".encode("utf-8", "replace")


def untagged(text: str | bytes) -> bytes:
    body = text if isinstance(text, bytes) else text.encode("utf-8", "replace")
    return b"* " + body + b"\r\n"


def continuation(text: str = "") -> bytes:
    return b"+ " + text.encode("utf-8", "replace") + b"\r\n"


@dataclass(frozen=True, slots=True)
class Streamed:
    """A FETCH body item sent as a literal of ``size`` bytes produced by ``chunks`` (never one big bytes)."""

    size: int
    chunks: Iterable[bytes]


def iter_fetch(seq: int, items: Iterable[tuple[str, bytes | Streamed]]) -> Iterator[bytes]:
    """``* seq FETCH (label value ...)``: serialized values are bytes, bodies are :class:`Streamed` literals."""
    head = b"* %d FETCH (" % seq
    pending = bytearray(head)
    first = True
    for label, value in items:
        if not first:
            pending += b" "
        first = False
        pending += label.encode("ascii") + b" "
        if isinstance(value, Streamed):
            pending += b"{%d}\r\n" % value.size
            yield bytes(pending)
            pending.clear()
            sent = 0
            for chunk in value.chunks:
                sent += len(chunk)
                yield chunk
            if sent != value.size:
                raise ValueError(f"streamed body produced {sent} bytes, announced {value.size}")
        else:
            pending += value
    pending += b")\r\n"
    yield bytes(pending)
