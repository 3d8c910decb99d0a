"""IMAP string forms and the FETCH response line, pure-Python reference implementation (``_imapfmt.pyx`` is the
Cython twin).

* ``string(data, utf8)``: ``data`` as an IMAP quoted string when it may be one, else as a literal: a literal when
  it is longer than :data:`MAX_QUOTED`, holds CR or LF, or holds 8-bit bytes without ``utf8`` (UTF8=ACCEPT). A NUL,
  which no IMAP string may hold, is sent as U+FFFD (as Dovecot does).
* ``human_string(data, utf8)``: a string meant for people (ENVELOPE subject and display names), as Dovecot writes
  it: line breaks removed, runs of blanks (space, tab) made one space, trimmed of spaces; a literal when that
  changed it or when it holds a quote or a backslash (so that it never needs escaping), else :func:`string`.
* ``fetch_line(seq, items)``: ``* seq FETCH (item item ...)`` and CRLF, each item being ``LABEL value`` bytes.
"""

from __future__ import annotations

import re

#: strings longer than this are sent as literals even when they could be quoted
MAX_QUOTED = 1024
_REPLACEMENT = "\ufffd".encode()
_BLANKS = re.compile(rb"[ \t]+")


def literal(data: bytes) -> bytes:
    return b"{%d}\r\n" % len(data) + data


def string(data: bytes, utf8: bool) -> bytes:
    data = data.replace(b"\x00", _REPLACEMENT)
    if len(data) > MAX_QUOTED or b"\r" in data or b"\n" in data or (not utf8 and not data.isascii()):
        return b"{%d}\r\n" % len(data) + data
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def human_string(data: bytes, utf8: bool) -> bytes:
    data = data.replace(b"\x00", _REPLACEMENT)
    clean = _BLANKS.sub(b" ", data.replace(b"\r", b"").replace(b"\n", b"")).strip(b" ")
    if clean != data or b'"' in clean or b"\\" in clean:
        return b"{%d}\r\n" % len(clean) + clean
    return string(clean, utf8)


def fetch_line(seq: int, items: list[bytes]) -> bytes:
    return b"* %d FETCH (" % seq + b" ".join(items) + b")\r\n"
