"""The IMAP form of a message's structure: ENVELOPE and BODYSTRUCTURE / BODY data (RFC 3501 7.4.2) as bytes.

This is MIME structure written in IMAP syntax. It lives here, beside the code that derives the structure, so that
the store can keep the rendered bytes with each message (written once at ingest and by the v9 migration) and FETCH
copies them instead of serializing JSON-able data every time; ``protocols.imap.serializer`` re-exports it. The
string forms are in ``_speedups/imapfmt`` (Cython, with its pure-Python twin).
"""

from __future__ import annotations

import base64
from typing import Any

from wildduck import _speedups
from wildduck.protocols.mime import bodystructure as _bodystructure

_fmt = _speedups.load("imapfmt")
_string = _fmt.string
_human = _fmt.human_string

#: strings longer than this are sent as literals even when they could be quoted
MAX_QUOTED = 1024


def _raw(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and "b" in value:  # lossless marker for non-UTF-8 header bytes
        return base64.b64decode(value["b"])
    raise TypeError(f"not a string: {value!r}")


def string(value: Any, *, utf8: bool = False) -> bytes:
    """A string as quoted when safe, else as a literal (CR, LF, 8-bit without UTF8=ACCEPT, long). A NUL, which
    no IMAP string may hold, is sent as U+FFFD (as Dovecot does)."""
    result: bytes = _string(_raw(value), utf8)
    return result


def human_string(value: Any, *, utf8: bool = False) -> bytes:
    """A string meant for people (ENVELOPE subject and display names), as Dovecot writes it: line breaks
    removed, runs of blanks made one space, trimmed; sent as a literal when that changed it or when it holds a
    quote or a backslash (so that it never needs escaping)."""
    result: bytes = _human(_raw(value), utf8)
    return result


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


def forms(envelope_data: Any, bodystructure_data: Any) -> tuple[bytes, bytes, bytes, bytes | None, bytes | None,
                                                                 bytes | None]:
    """What the store keeps of a message's structure: ENVELOPE, BODYSTRUCTURE and BODY as a session without
    UTF8=ACCEPT gets them, then each as a session with UTF8=ACCEPT gets it, or None when that is the same bytes.

    The two forms differ only when a string holds 8-bit bytes (quoted with UTF8=ACCEPT, a literal without), and
    then the plain form holds 8-bit bytes too; so an all-ASCII plain form serves both.
    """
    plain = (envelope(envelope_data), body_structure(bodystructure_data),
             body_structure(_bodystructure.body(bodystructure_data)))
    if all(p.isascii() for p in plain):
        return (*plain, None, None, None)
    wide = (envelope(envelope_data, utf8=True), body_structure(bodystructure_data, utf8=True),
            body_structure(_bodystructure.body(bodystructure_data), utf8=True))
    env8, bs8, body8 = (w if w != p else None for w, p in zip(wide, plain, strict=True))
    return (*plain, env8, bs8, body8)
