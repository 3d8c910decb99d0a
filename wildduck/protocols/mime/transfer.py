"""Content-Transfer-Encodings, exactly (RFC 2045 6): undoing one for IMAP BINARY (RFC 3516), and re-encoding the
parts of a message that an IMAP literal cannot carry (NUL bytes, from an APPEND of a ``literal8``) as base64.

Base64 is decoded leniently (:func:`wildduck.protocols.mime.text.decode_transfer`); quoted-printable
(:func:`decode_quoted_printable`, defined beside it in ``text``, which search shares) keeps the message's own line
breaks and follows RFC 2045 6.7 to the letter (trailing white space dropped, soft line breaks with white space
after the ``=``), as BINARY needs.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable
from types import ModuleType

from wildduck.protocols.mime import headers
from wildduck.protocols.mime.text import decode_quoted_printable as decode_quoted_printable
from wildduck.protocols.mime.text import decode_transfer
from wildduck.protocols.mime.tree import Node, build, leaves, node_fields

#: encodings whose content is the data itself
IDENTITY = frozenset({"7bit", "8bit", "binary"})
#: every encoding :func:`decode` undoes
KNOWN = IDENTITY | {"base64", "quoted-printable"}
#: base64 line length when re-encoding (RFC 2045 6.8: at most 76 characters)
_LINE = 76



def decode(body: bytes, encoding: str) -> bytes | None:
    """``body`` with its Content-Transfer-Encoding (lower case, as ``headers.transfer_encoding`` gives it) undone,
    or None when the encoding is none of :data:`KNOWN`."""
    if encoding in IDENTITY:
        return body
    if encoding == "base64":
        return decode_transfer(body, "base64")
    if encoding == "quoted-printable":
        return decode_quoted_printable(body)
    return None


def node_encoding(buf: bytes, node: Node) -> str:
    """The Content-Transfer-Encoding of the entity ``node`` of ``buf`` (``7bit`` when absent)."""
    return headers.transfer_encoding(node_fields(buf, node))


def base64_body(data: bytes) -> bytes:
    """``data`` in base64, in lines of 76 characters separated by CRLF (no line break after the last)."""
    text = binascii.b2a_base64(data, newline=False)
    return b"\r\n".join(text[i:i + _LINE] for i in range(0, len(text), _LINE))


_CTE_FIELD = re.compile(rb"^content-transfer-encoding[ \t]*:", re.IGNORECASE)


def _with_encoding(block: bytes, encoding: bytes) -> bytes:
    """A header block (with its empty line, if any) whose Content-Transfer-Encoding says ``encoding``: the first
    such field rewritten where it stands (its name as written), any other one (continuations included) dropped;
    without one, the field is added last."""
    kept: list[bytes] = []
    dropping = done = False
    for line in block.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and dropping:
            continue
        dropping = bool(_CTE_FIELD.match(line))
        if dropping and not done:
            name = line.split(b":", 1)[0]
            kept.append(name + b": " + encoding + (b"\r\n" if line.endswith(b"\r\n") else b"\n"))
            done = True
        elif not dropping:
            kept.append(line)
    if not done:
        end = len(kept)
        if kept and kept[-1] in (b"\r\n", b"\n"):
            end -= 1  # the empty line ending the header stays last
        elif kept and not kept[-1].endswith(b"\n"):
            kept[-1] += b"\r\n"
        kept.insert(end, b"Content-Transfer-Encoding: " + encoding + b"\r\n")
    return b"".join(kept)


def _rewrite(raw: bytes, start: int, nodes: list[Node], encoding: bytes,
             body: Callable[[Node, bytes], bytes]) -> bytes:
    """``raw`` (the bytes of the message from offset ``start`` on) with each of ``nodes``' header saying
    ``encoding`` and its body replaced by ``body(node, old body)``; spliced from the end, so earlier offsets
    hold."""
    out = raw
    for node in sorted(nodes, key=lambda n: n["hs"], reverse=True):
        hs, bs, be = node["hs"] - start, node["bs"] - start, node["be"] - start
        out = out[:hs] + _with_encoding(out[hs:bs], encoding) + body(node, out[bs:be]) + out[be:]
    return out


def decoded_entity(raw: bytes, start: int, entity: Node) -> bytes | None:
    """The entity ``entity`` (a message or multipart; ``raw`` holds its bytes, which start at offset ``start`` of
    the message its tree's offsets are in) with every part's transfer encoding undone and its
    Content-Transfer-Encoding saying ``binary``, as IMAP BINARY of a whole message or multipart answers (Dovecot
    does the same); parts not encoded stay as they are. None when a part's encoding is none of :data:`KNOWN`."""
    encodings: dict[int, str] = {}  # header offset of each part to decode: its encoding
    chosen: list[Node] = []
    for node in leaves(entity):
        encoding = headers.transfer_encoding(headers.fields(raw[node["hs"] - start:node["bs"] - start]))
        if encoding not in KNOWN:
            return None
        if encoding not in IDENTITY:
            encodings[node["hs"]] = encoding
            chosen.append(node)

    def undo(node: Node, body: bytes) -> bytes:
        return decode(body, encodings[node["hs"]]) or b""

    return _rewrite(raw, start, chosen, b"binary", undo)


def nul_parts_as_base64(raw: bytes, scanner: ModuleType) -> bytes:
    """``raw`` with every leaf part whose content holds a NUL byte and is not encoded (7bit, 8bit, binary)
    re-encoded as base64, so that the message can be sent in IMAP literals (RFC 3516 4.3: what an APPEND of a
    ``literal8`` may carry). Returns ``raw`` itself when no part needs it. ``scanner`` is the MIME scanner module
    (``protocols.mime.scanner()``)."""
    if b"\x00" not in raw:
        return raw
    root = build(raw, scanner)
    chosen = [n for n in leaves(root) if b"\x00" in raw[n["bs"]:n["be"]] and node_encoding(raw, n) in IDENTITY]
    return _rewrite(raw, 0, chosen, b"base64", lambda _node, body: base64_body(body))
