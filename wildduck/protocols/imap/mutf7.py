"""Modified UTF-7 for IMAP mailbox names (RFC 3501 5.1.3)."""

from __future__ import annotations

import base64
import re

_B64 = re.compile(rb"&([A-Za-z0-9+,]*)-")


def encode(name: str) -> bytes:
    """A Unicode mailbox name in modified UTF-7."""
    out = bytearray()
    pending: list[str] = []

    def flush() -> None:
        if pending:
            data = "".join(pending).encode("utf-16-be")
            out.extend(b"&" + base64.b64encode(data).rstrip(b"=").replace(b"/", b",") + b"-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.extend(b"&-" if ch == "&" else ch.encode("ascii"))
        else:
            pending.append(ch)
    flush()
    return bytes(out)


def decode(data: bytes) -> str:
    """A modified UTF-7 mailbox name as Unicode; raises ValueError for anything that is not valid."""
    out: list[str] = []
    pos = 0
    while pos < len(data):
        c = data[pos]
        if c == 0x26:  # &
            m = _B64.match(data, pos)
            if m is None:
                raise ValueError("unterminated modified base64 in mailbox name")
            chunk = m.group(1)
            if not chunk:
                out.append("&")
            else:
                if len(chunk) % 4 == 1:
                    raise ValueError("invalid modified base64 length")
                raw = base64.b64decode(chunk.replace(b",", b"/") + b"=" * (-len(chunk) % 4), validate=True)
                if len(raw) % 2:
                    raise ValueError("modified base64 does not encode UTF-16")
                text = raw.decode("utf-16-be", errors="strict")
                if any(0x20 <= ord(ch) <= 0x7E for ch in text):
                    raise ValueError("printable ASCII must not be base64-encoded")
                if encode(text) != m.group(0):
                    raise ValueError("non-canonical modified base64")
                out.append(text)
            pos = m.end()
        elif 0x20 <= c <= 0x7E:
            out.append(chr(c))
            pos += 1
        else:
            raise ValueError("8-bit or control character in a modified UTF-7 name")
    return "".join(out)
