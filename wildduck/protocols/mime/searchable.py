"""What IMAP SEARCH matches in a top-level header (the values of a header key, the sender's calendar day), how
its text is decoded and how SEARCH compares text ignoring case (:func:`fold`), all as Dovecot does (the oracle:
tests/oracle/search.json).

One definition for the two places that need it: the domain's exact evaluator and the store, which keeps these
values in columns at ingest (and in its migration for stored messages) to narrow a search in SQL. Both compute them
here from the same header bytes, so a column is exactly what the evaluator would compute.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable

from wildduck.protocols.mime import headers

#: the header keys whose values are address lists, matched in their normalized form (:func:`address_text`)
ADDRESS_FIELDS = frozenset({"from", "to", "cc", "bcc"})

_ATEXT = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~") | frozenset(
    range(0x80, 0x100))
_ESCAPED = frozenset(b"\"\\'")


#: characters below this keep their mappings once computed (a bounded cache: at most this many entries each)
_CACHED = 0x10000


class _Simple(dict[int, str]):
    """Each character's mapping by ``case`` (``str.title``, ``str.lower``) when that is one character, else the
    character itself (no full, longer mappings); computed on first use."""

    def __init__(self, case: Callable[[str], str]) -> None:
        super().__init__()
        self.case = case

    def __missing__(self, cp: int) -> str:
        c = chr(cp)
        t = self.case(c)
        found = t if len(t) == 1 else c
        if cp < _CACHED:
            self[cp] = found
        return found


#: each character's simple titlecase mapping, and its one-character lowercase mapping
_TITLE, _LOWER = _Simple(str.title), _Simple(str.lower)


def fold(text: str) -> str:
    """``text`` as SEARCH compares it, ignoring case: RFC 5051's i;unicode-casemap (each character's simple
    titlecase mapping, then the canonical decomposition, NFD), as Dovecot compares, then lower-cased character by
    character (so that ASCII folds to lower case, as the stored text always has). So ``straße`` is not
    ``STRASSE`` and a ligature is not its letters (no full mappings), while ``cafe`` is found in ``café`` (its
    ``é`` decomposed) and ``ΟΔΟΣ`` matches ``οδος``."""
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFD", text.translate(_TITLE)).translate(_LOWER)


def decode_text(data: bytes) -> str:
    """Header bytes outside encoded words, as Dovecot reads them: UTF-8, an invalid sequence replaced (U+FFFD)."""
    return data.decode("utf-8", "replace")


def decode_value(value: bytes) -> str:
    """A header value with its RFC 2047 encoded words decoded (white space between adjacent ones dropped), the
    rest read as UTF-8 (:func:`decode_text`)."""
    return headers.decode_words(value, decode_text)


def _maybe_quoted(word: bytes, *, dots: bool) -> bytes:
    """``word`` as Dovecot writes a display name (``dots`` false) or local part: as it is when every octet is atext
    (or a dot, for a local part), else quoted, with ``"``, ``\\`` and ``'`` escaped."""
    if all(c in _ATEXT or (dots and c == 0x2E) for c in word):
        return word
    return b'"' + b"".join(b"\\" + bytes([c]) if c in _ESCAPED else bytes([c]) for c in word) + b'"'


def _phrase(name: bytes) -> bytes:
    return name if b"=?" in name else _maybe_quoted(name, dots=False)


def address_text(value: bytes) -> bytes:
    """An address list the way Dovecot's address search key sees it (``message_address_write``): each mailbox as
    ``[name ]<mailbox@domain>`` (comments dropped, a name quoted when it needs it, one with encoded words as it
    is), groups as ``name: ...;``, all joined by ``, ``; a missing local part or domain as ``MISSING_MAILBOX`` /
    ``MISSING_DOMAIN``."""
    out = bytearray()
    first, in_group = True, False
    for a in headers.parse_addresses(value):
        if first:
            first = False
        else:
            out += b", "
        if a.group is not None and not in_group:
            out += _phrase(a.group) if a.group else b'""'
            out += b": "
            first, in_group = True, True
            continue
        if a.group_end:
            if out.endswith(b", "):
                del out[-2:]
            elif out.endswith(b": "):
                del out[-1:]
            out += b";"
            in_group = False
            continue
        if a.name is not None:
            out += _phrase(a.name)
        mailbox = a.mailbox if a.mailbox else b"MISSING_MAILBOX"
        host = b"SYNTAX_ERROR" if a.syntax_error else a.host if a.host else b"MISSING_DOMAIN"
        if a.name:
            out += b" "
        out += b"<" + (a.route + b":" if a.route else b"") + _maybe_quoted(mailbox, dots=True) + b"@" + host + b">"
    return bytes(out)


def compress_space(value: bytes) -> bytes:
    """Runs of spaces and tabs as one space, leading ones dropped (Dovecot's SUBJECT key)."""
    return re.sub(rb"[ \t]+", b" ", value).lstrip(b" ")


def values(fields: headers.Fields, name: str, *, plain: bool = False) -> list[str]:
    """The texts SEARCH's header key ``name`` (lower-case) looks into, one per copy of the field, as Dovecot
    matches them: an address field (from, to, cc, bcc) in its normalized form (:func:`address_text`), the subject
    with white space compressed (:func:`compress_space`), any other field, and every field with ``plain`` (IMAP's
    ``HEADER name value``), as written (unfolded); each with its encoded words decoded (:func:`decode_value`).
    Empty when the message has no such field."""
    out = []
    for key, value in fields:
        if key != name:
            continue
        if not plain and name in ADDRESS_FIELDS:
            value = address_text(value)
        elif not plain and name == "subject":
            value = compress_space(value)
        out.append(decode_value(value))
    return out


_FIELD = re.compile(rb"([^:\r\n]*)(:[ \t]*)(.*)", re.S)
_FOLD = re.compile(rb"\r?\n(?=[ \t])")


def header_block_text(block: bytes) -> str:
    """A header block as SEARCH TEXT reads it: each field as ``Name: value`` with the folding line breaks removed
    and the encoded words decoded (:func:`decode_value`), followed by CRLF."""
    out: list[str] = []
    for line in re.split(rb"\r?\n(?![ \t])", _FOLD.sub(b"", block)):
        m = _FIELD.fullmatch(line)
        if m is None or not m.group(1):
            continue
        out.append(decode_text(m.group(1)) + decode_text(m.group(2)) + decode_value(m.group(3)) + "\r\n")
    return "".join(out)


def sent_date(fields: headers.Fields) -> dt.date | None:
    """The calendar date of the (first) Date header in the sender's own time zone (RFC 3501's SENT* keys:
    "disregarding time and timezone"), or None when it is missing or unparseable."""
    parsed = headers.parse_date(headers.get(fields, "date"))
    return parsed.date() if parsed else None
