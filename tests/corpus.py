"""The test corpus (tests/data/imaptest.mbox) and a hypothesis strategy for MIME messages."""

from __future__ import annotations

import base64
import re
from functools import cache
from pathlib import Path

from hypothesis import strategies as st

from wildduck.protocols.mime.lines import crlf as crlf  # re-exported: the tests convert line ends as APPEND does

MBOX = Path(__file__).resolve().parent / "data" / "imaptest.mbox"


@cache
def corpus() -> list[bytes]:
    """The messages of the mbox (split on ``From `` separator lines; ``>From`` quoting left as it is)."""
    data = MBOX.read_bytes()
    return [m for m in re.split(rb"(?m)^From .*\n", data) if m.strip()]


_header_names = st.sampled_from([b"Subject", b"From", b"To", b"X-Test", b"Content-Description", b"Message-ID"])
_header_values = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))


@st.composite
def header_block(draw: st.DrawFn, extra: bytes = b"", nl: bytes = b"\r\n") -> bytes:
    lines = [name + b": " + value for name, value in draw(st.lists(st.tuples(_header_names, _header_values),
                                                                    max_size=4))]
    if draw(st.booleans()):
        lines.append(b"X-Folded: first" + nl + b"\tsecond")
    return nl.join(lines + ([extra] if extra else [])) + nl + nl


@st.composite
def leaf(draw: st.DrawFn, nl: bytes) -> bytes:
    kind = draw(st.sampled_from(["text", "base64", "base64-irregular", "qp", "binary", "broken-b64"]))
    payload = draw(st.binary(max_size=300))
    if kind == "text":
        head = b"Content-Type: text/plain; charset=utf-8"
        body = payload.replace(b"\r", b"").replace(b"\n", nl)
    elif kind == "base64":
        head = b"Content-Type: application/octet-stream" + nl + b"Content-Transfer-Encoding: base64"
        enc = base64.b64encode(payload)
        body = nl.join(enc[i:i + 76] for i in range(0, len(enc), 76)) + nl
    elif kind == "base64-irregular":
        head = b"Content-Type: image/png" + nl + b"Content-Transfer-Encoding: base64"
        enc = base64.b64encode(payload)
        body = nl.join(enc[i:i + 50 + (i % 7)] for i in range(0, len(enc), 57))
    elif kind == "qp":
        head = b"Content-Type: text/html" + nl + b"Content-Transfer-Encoding: quoted-printable"
        body = payload.replace(b"\r", b"").replace(b"\n", nl)
    elif kind == "broken-b64":
        head = b"Content-Type: application/pdf" + nl + b"Content-Transfer-Encoding: base64"
        body = b"!!notbase64$$" + nl + base64.b64encode(payload)[:-1] + nl
    else:
        head = b"Content-Type: application/x-raw" + nl + b"Content-Disposition: attachment; filename=x.bin"
        body = payload
    return draw(header_block(head, nl)) + body


@st.composite
def entity(draw: st.DrawFn, depth: int = 0, nl: bytes | None = None) -> bytes:
    if nl is None:
        nl = draw(st.sampled_from([b"\r\n", b"\n"]))
    if depth >= 3 or draw(st.integers(0, 2)) == 0:
        return draw(leaf(nl))
    if draw(st.integers(0, 3)) == 0:
        inner = draw(entity(depth + 1, nl))
        return draw(header_block(b"Content-Type: message/rfc822", nl)) + inner
    boundary = draw(st.sampled_from([b"b1", b"==_Part_" + str(depth).encode(), b"xyz" * 5]))
    children = draw(st.lists(entity(depth + 1, nl), min_size=0, max_size=3))
    preamble = draw(st.sampled_from([b"", b"This is a multi-part message." + nl, b"--" + boundary + b"x" + nl]))
    body = preamble
    for child in children:
        body += b"--" + boundary + nl + child + nl
    if draw(st.booleans()):  # the close delimiter may be missing in malformed mail
        body += b"--" + boundary + b"--" + nl + draw(st.sampled_from([b"", b"epilogue" + nl]))
    head = draw(header_block(b'Content-Type: multipart/mixed; boundary="' + boundary + b'"', nl))
    return head + body


messages = st.one_of(entity(), st.binary(max_size=500))
