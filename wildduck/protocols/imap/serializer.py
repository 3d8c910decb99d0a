"""IMAP response serialization: strings as atom, quoted or literal; nested data; streamed FETCH responses."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from wildduck import _speedups
from wildduck.protocols.mime.imapform import MAX_QUOTED as MAX_QUOTED
from wildduck.protocols.mime.imapform import _raw
from wildduck.protocols.mime.imapform import body_structure as body_structure
from wildduck.protocols.mime.imapform import data as data
from wildduck.protocols.mime.imapform import envelope as envelope
from wildduck.protocols.mime.imapform import human_string as human_string
from wildduck.protocols.mime.imapform import nstring as nstring
from wildduck.protocols.mime.imapform import string as string

_ATOM_SPECIALS = frozenset(b'(){ %*"\\]') | frozenset(range(0, 32)) | {127}
_fmt = _speedups.load("imapfmt")
#: ``fetch_line(seq, items)``: ``* seq FETCH (item ...)`` and CRLF, each item ``LABEL value`` bytes
fetch_line = _fmt.fetch_line


def uidfetch_line(uid: int, items: list[bytes]) -> bytes:
    """``* uid UIDFETCH (item ...)`` and CRLF (RFC 9586, after ENABLE UIDONLY): ``fetch_line``'s twin."""
    return b"* %d UIDFETCH (" % uid + b" ".join(items) + b")\r\n"


def astring(value: Any, *, utf8: bool = False) -> bytes:
    """An atom when every byte is an atom character, else a string."""
    data = _raw(value)
    if data and not any(c in _ATOM_SPECIALS or c > 127 for c in data) and data.upper() != b"NIL":
        return data
    return string(data, utf8=utf8)


def number_set(numbers: Sequence[int]) -> str:
    """``1:3,7`` for [1, 2, 3, 7]: a sequence set with runs merged, in the order given (COPYUID, APPENDUID,
    ESEARCH ALL)."""
    runs: list[tuple[int, int]] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], -1]:
        if n == prev + 1:
            prev = n
            continue
        runs.append((start, prev))
        start = prev = n
    return range_set(runs)


def range_set(ranges: Iterable[tuple[int, int]]) -> str:
    """``1:3,7`` for [(1, 3), (7, 7)]: (low, high) ranges as a sequence set, in the order given."""
    return ",".join(f"{lo}:{hi}" if hi != lo else f"{lo}" for lo, hi in ranges)


def vanished(ranges: Iterable[tuple[int, int]], *, earlier: bool = False) -> bytes:
    """``* VANISHED [(EARLIER)] uid-set`` (RFC 7162 3.2.10) for ascending UID ranges (nothing when there are
    none)."""
    uids = range_set(ranges)
    if not uids:
        return b""
    return (b"* VANISHED (EARLIER) " if earlier else b"* VANISHED ") + uids.encode("ascii") + b"\r\n"


def esearch(tag: str, uid: bool, options: Iterable[str], numbers: Sequence[int], modseq: int | None) -> bytes:
    """``* ESEARCH (TAG "t") [UID] MIN n MAX n ALL set COUNT n [MODSEQ m]`` (RFC 4731) for the ``numbers`` found,
    ascending (SEARCH) or in the sort order (ESORT, RFC 5267 4.2: MIN and MAX are the first and last of it, ALL keeps
    it): of these items the ones in ``options``, always in this order (Dovecot's, whatever the client's); MIN, MAX
    and ALL only when something was found."""
    wanted = set(options)
    parts = [b"* ESEARCH (TAG " + string(tag) + b")"]
    if uid:
        parts.append(b"UID")
    if numbers:
        if "MIN" in wanted:
            parts.append(b"MIN %d" % numbers[0])
        if "MAX" in wanted:
            parts.append(b"MAX %d" % numbers[-1])
        if "ALL" in wanted:
            parts.append(b"ALL " + number_set(numbers).encode("ascii"))
    if "COUNT" in wanted:
        parts.append(b"COUNT %d" % len(numbers))
    if modseq is not None:
        parts.append(b"MODSEQ %d" % modseq)
    return b" ".join(parts) + b"\r\n"


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
    """A FETCH body item sent as a literal of ``size`` bytes produced by ``chunks`` (never one big bytes); a
    ``literal8`` (``~{n}``, RFC 3516) when ``binary``."""

    size: int
    chunks: Iterable[bytes]
    binary: bool = False


def iter_fetch(seq: int, items: Iterable[tuple[str, bytes | Streamed]], *,
               kind: bytes = b"FETCH") -> Iterator[bytes]:
    """``* seq FETCH (label value ...)``: serialized values are bytes, bodies are :class:`Streamed` literals;
    ``kind=b"UIDFETCH"`` (RFC 9586) with a UID for ``seq``: ``* uid UIDFETCH (...)``."""
    head = b"* %d %s (" % (seq, kind)
    pending = bytearray(head)
    first = True
    for label, value in items:
        if not first:
            pending += b" "
        first = False
        pending += label.encode("ascii") + b" "
        if isinstance(value, Streamed):
            pending += b"~{%d}\r\n" % value.size if value.binary else b"{%d}\r\n" % value.size
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
