"""Splitting a message for storage (skeleton + blobs) and recomposing its exact bytes.

A *cut* removes the body of one leaf entity from the message: the bytes go to the blob store under the SHA-256
of the stored form, and the skeleton keeps everything else. base64 bodies whose wrapping can be reproduced are
stored decoded (``{"kind": "base64", "line": 76, "nl": "\\r\\n", "final_nl": true}``) and re-encoded on the way
out; anything else is stored as it was (``{"kind": "raw"}``). ``compose(split(m)) == m`` for every input.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from wildduck import _speedups
from wildduck.protocols.mime import headers
from wildduck.protocols.mime.tree import Node, leaves, node_fields

RAW: dict[str, Any] = {"kind": "raw"}
MAX_B64_LINE = 998

#: the base64 line writer (Cython when built, see ``wildduck/_speedups/compose.py``)
_compose = _speedups.load("compose")
_NEWLINES = {"\r\n": b"\r\n", "\n": b"\n"}


class CutLike(Protocol):
    """Anything that describes a cut: :class:`Cut`, or the storage layer's ``StoredPart``."""

    @property
    def offset(self) -> int: ...

    @property
    def length(self) -> int: ...

    @property
    def blob(self) -> str: ...

    @property
    def encoding(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class Cut:
    """A body cut out of the message: where it was, and the blob that holds it."""

    offset: int
    length: int
    blob: str
    encoding: dict[str, Any]


def _base64_form(body: bytes) -> tuple[bytes, dict[str, Any]] | None:
    """(decoded bytes, parameters) when re-encoding the decoded bytes reproduces ``body`` exactly."""
    first = body.find(b"\n")
    if first < 0:
        nl, line, final_nl = b"\r\n", len(body), False
    else:
        nl = b"\r\n" if first > 0 and body[first - 1] == 13 else b"\n"
        line = first - (len(nl) - 1)
        final_nl = body.endswith(nl)
    if line <= 0 or line > MAX_B64_LINE or line % 4:
        return None
    try:
        decoded = binascii.a2b_base64(body)
    except binascii.Error:
        return None
    params = {"kind": "base64", "line": line, "nl": nl.decode(), "final_nl": final_nl}
    if not decoded or _encode_base64(decoded, params) != body:
        return None
    return decoded, params


def _encode_base64(data: bytes, params: Mapping[str, Any]) -> bytes:
    nl = params["nl"]
    out: bytes = _compose.encode_base64(data, int(params["line"]), _NEWLINES.get(nl) or str(nl).encode(),
                                        bool(params["final_nl"]))
    return out


def materialize(stored: bytes, encoding: Mapping[str, Any]) -> bytes:
    """The original body bytes from the stored blob bytes."""
    kind = encoding.get("kind")
    if kind == "raw":
        return stored
    if kind == "base64":
        return _encode_base64(stored, encoding)
    raise ValueError(f"unknown stored encoding {kind!r}")


def _is_inline_text(buf: bytes, node: Node) -> bool:
    if node["ct"][0] != "text":
        return False
    return headers.content_disposition(node_fields(buf, node))[0] != "attachment"


def split(buf: bytes, root: Node, inline_text_limit: int) -> tuple[list[Cut], dict[str, bytes]]:
    """Decide which bodies go to the blob store; returns the cuts (by offset) and the blobs by hash."""
    cuts: list[Cut] = []
    blobs: dict[str, bytes] = {}
    for node in leaves(root):
        bs, be = node["bs"], node["be"]
        if be <= bs or node is root and node["ct"][0] == "text":
            continue
        if _is_inline_text(buf, node) and be - bs <= inline_text_limit:
            continue
        body = buf[bs:be]
        stored: bytes = body
        encoding: dict[str, Any] = RAW
        if headers.transfer_encoding(node_fields(buf, node)) == "base64":
            form = _base64_form(body)
            if form is not None:
                stored, encoding = form
        key = hashlib.sha256(stored).hexdigest()
        blobs.setdefault(key, stored)
        cuts.append(Cut(bs, be - bs, key, encoding))
    cuts.sort(key=lambda c: c.offset)
    return cuts, blobs


def skeleton(buf: bytes, cuts: Sequence[CutLike]) -> bytes:
    """``buf`` without the cut bodies."""
    out: list[bytes] = []
    pos = 0
    for c in cuts:
        out.append(buf[pos:c.offset])
        pos = c.offset + c.length
    out.append(buf[pos:])
    return b"".join(out)


def _segments(skel: bytes, parts: Sequence[CutLike]) -> Iterator[tuple[int, int, int, CutLike | None]]:
    """(original start, original end, skeleton start, part or None) covering the whole original message."""
    orig = 0
    skel_pos = 0
    for p in sorted(parts, key=lambda c: c.offset):
        gap = p.offset - orig
        if gap < 0:
            raise ValueError("overlapping stored parts")
        if gap:
            yield orig, p.offset, skel_pos, None
        skel_pos += gap
        yield p.offset, p.offset + p.length, skel_pos, p
        orig = p.offset + p.length
    rest = len(skel) - skel_pos
    if rest < 0:
        raise ValueError("stored parts do not fit the skeleton")
    if rest:
        yield orig, orig + rest, skel_pos, None


def _part_bytes(p: CutLike, stored: bytes) -> bytes:
    data = materialize(stored, p.encoding)
    if len(data) != p.length:
        raise ValueError(f"blob {p.blob} recomposes to {len(data)} bytes, expected {p.length}")
    return data


def compose(skel: bytes, parts: Sequence[CutLike], blobs: Mapping[str, bytes]) -> bytes:
    """The original message from its skeleton, its cuts and the blob bytes."""
    out: list[bytes] = []
    for _start, _end, skel_pos, part in _segments(skel, parts):
        if part is None:
            out.append(skel[skel_pos:skel_pos + (_end - _start)])
        else:
            out.append(_part_bytes(part, blobs[part.blob]))
    return b"".join(out)


def composed_size(skel: bytes, parts: Sequence[CutLike]) -> int:
    return len(skel) + sum(p.length for p in parts)


def iter_compose(
    skel: bytes,
    parts: Sequence[CutLike],
    get_blob: Callable[[str], bytes],
    start: int = 0,
    end: int | None = None,
    chunk_size: int | None = 65536,
) -> Iterator[bytes]:
    """Stream bytes [start, end) of the original message in chunks of at most ``chunk_size`` (None: one piece per
    stored segment, each skeleton stretch and each part whole), fetching only the blobs that overlap the range.
    A piece that is a whole part's bytes (or the whole skeleton) is the object itself, not a copy."""
    total = composed_size(skel, parts)
    end = total if end is None else min(end, total)
    start = max(0, start)
    if start >= end:
        return
    for seg_start, seg_end, skel_pos, part in _segments(skel, parts):
        if seg_end <= start or seg_start >= end:
            continue
        lo, hi = max(start, seg_start) - seg_start, min(end, seg_end) - seg_start
        if chunk_size is None or hi - lo <= chunk_size:
            if part is None:
                yield skel[skel_pos + lo:skel_pos + hi]  # the whole skeleton is not copied
            else:
                data = _part_bytes(part, get_blob(part.blob))
                yield data if lo == 0 and hi == len(data) else data[lo:hi]
            continue
        if part is None:
            view = memoryview(skel)[skel_pos + lo:skel_pos + hi]
        else:
            view = memoryview(_part_bytes(part, get_blob(part.blob)))[lo:hi]
        for i in range(0, len(view), chunk_size):
            yield bytes(view[i:i + chunk_size])
