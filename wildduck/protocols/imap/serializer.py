"""IMAP response serialization: strings as atom, quoted or literal; nested data; streamed FETCH responses."""

from __future__ import annotations

import base64
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


def string(value: Any, *, utf8: bool = False) -> bytes:
    """A string as quoted when safe, else as a literal (CR, LF, NUL, 8-bit without UTF8=ACCEPT, long)."""
    data = _raw(value)
    needs_literal = (
        len(data) > MAX_QUOTED
        or b"\r" in data
        or b"\n" in data
        or b"\x00" in data
        or (not utf8 and not data.isascii())
    )
    if needs_literal:
        return b"{%d}\r\n" % len(data) + data
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def astring(value: Any, *, utf8: bool = False) -> bytes:
    """An atom when every byte is an atom character, else a string."""
    data = _raw(value)
    if data and not any(c in _ATOM_SPECIALS or c > 127 for c in data) and data.upper() != b"NIL":
        return data
    return string(data, utf8=utf8)


def nstring(value: Any, *, utf8: bool = False) -> bytes:
    return b"NIL" if value is None else string(value, utf8=utf8)


def data(value: Any, *, utf8: bool = False) -> bytes:
    """JSON-able nested data (ENVELOPE, BODYSTRUCTURE): None → NIL, int → number, list → parenthesized."""
    if value is None:
        return b"NIL"
    if isinstance(value, bool):
        raise TypeError("booleans have no IMAP form")
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, list | tuple):
        return b"(" + b" ".join(data(v, utf8=utf8) for v in value) + b")"
    return string(value, utf8=utf8)


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
