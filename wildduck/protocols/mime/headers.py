"""Header fields: splitting and unfolding, RFC 2047 encoded words, RFC 2045/2231 parameters, address lists.

Every function here is tolerant: malformed input gives a best-effort value, never an exception. Structured values
are read with the one lexer in :mod:`wildduck.protocols.mime.lexer`; address lists live in
:mod:`wildduck.protocols.mime.addresses` (re-exported here).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.utils
import quopri
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from wildduck import _speedups
from wildduck.protocols.mime.addresses import ParsedAddress, parse_addresses
from wildduck.protocols.mime.lexer import quoted_string, skip_cfws, token

Fields = Sequence[tuple[str, bytes]]
_scanner = _speedups.load("mimescan")


def fields(block: bytes) -> list[tuple[str, bytes]]:
    """Header fields of a header block in order: (lower-case name, unfolded raw value).

    Folding line breaks are removed (the whitespace after them kept); leading whitespace of the value is stripped.
    Lines that are neither a field nor a continuation are skipped. (The scanner does the work: it is compiled.)
    """
    return _scanner.header_fields(block, 0, len(block))  # type: ignore[no-any-return]


def get(fields_: Fields, name: str) -> bytes | None:
    """The first value of field ``name`` (lower-case), or None."""
    for key, value in fields_:
        if key == name:
            return value
    return None


def get_all(fields_: Fields, name: str) -> list[bytes]:
    return [value for key, value in fields_ if key == name]


# --- text decoding ----------------------------------------------------------------------------------------------
def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Bytes to text: the declared charset if Python knows it, else strict UTF-8, else windows-1252."""
    if charset:
        cs = charset.strip().strip('"').lower()
        if cs in ("us-ascii", "ascii"):
            cs = "utf-8"  # mislabelled 8-bit mail is common; UTF-8 is a superset of ASCII
        try:
            return data.decode(cs)
        except (LookupError, UnicodeDecodeError, ValueError):  # unknown or malformed charset name
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("windows-1252", errors="replace")


_ENCODED_WORD = re.compile(rb"=\?([^?\s]+?)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")


def _decode_word(charset: bytes, encoding: bytes, text: bytes) -> str | None:
    try:
        if encoding in (b"b", b"B"):
            padded = text + b"=" * (-len(text) % 4)
            data = base64.b64decode(padded, validate=False)
        else:
            data = quopri.decodestring(text.replace(b"_", b" "), header=True)
    except (binascii.Error, ValueError):
        return None
    return decode_bytes(data, charset.decode("ascii", "replace"))


def decode_words(value: bytes, plain: Callable[[bytes], str] | None = None) -> str:
    """Decode RFC 2047 encoded words; whitespace between adjacent encoded words is dropped. The bytes outside
    encoded words are read by ``plain`` (default :func:`decode_bytes`)."""
    read = plain or decode_bytes
    out: list[str] = []
    pos = 0
    last_was_word = False
    for m in _ENCODED_WORD.finditer(value):
        between = value[pos:m.start()]
        decoded = _decode_word(m.group(1), m.group(2), m.group(3))
        if decoded is None:
            out.append(read(value[pos:m.end()]))
            last_was_word = False
        else:
            if not (last_was_word and not between.strip(b" \t\r\n")):
                out.append(read(between))
            out.append(decoded)
            last_was_word = True
        pos = m.end()
    out.append(read(value[pos:]))
    return "".join(out)


def normalize_space(text: str) -> str:
    return " ".join(text.split())


# --- structured values: tokens, parameters ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ParsedParams:
    """Parameters of a Content-Type or Content-Disposition value.

    ``raw`` keeps the attribute/value pairs in header order as written (values unquoted); ``decoded`` has
    lower-case names and RFC 2231 continuations and charsets resolved.
    """

    raw: list[tuple[bytes, bytes]]
    decoded: dict[str, str]

    def first(self, name: str) -> bytes | None:
        """The value of the first parameter called ``name`` (case-insensitive, as written: no RFC 2231)."""
        for key, value in self.raw:
            if key.lower() == name.encode():
                return value
        return None


def _params(value: bytes, i: int) -> ParsedParams:
    """``; name=value`` pairs from ``value[i]`` on, as Dovecot reads them: a value is a token or a quoted string,
    anything after it up to the next ``;`` is skipped, and a parameter without a name or without ``=`` (or with
    an unterminated quoted string) ends the list."""
    raw: list[tuple[bytes, bytes]] = []
    n = len(value)
    while True:
        i = skip_cfws(value, i)
        if i >= n:
            break
        if value[i] != 0x3B:  # garbage after the previous item: skip to the next ';'
            i = value.find(b";", i)
            if i < 0:
                break
        i = skip_cfws(value, i + 1)
        name, i = token(value, i)
        if not name:
            break
        i = skip_cfws(value, i)
        if i >= n or value[i] != 0x3D:  # '='
            break
        i = skip_cfws(value, i + 1)
        if i < n and value[i] == 0x22:
            val, i, closed = quoted_string(value, i)
            if not closed:
                break
        else:
            val, i = token(value, i)
        raw.append((name, val))
    return ParsedParams(raw, _decode_2231(raw))


_PCT = re.compile(rb"%([0-9A-Fa-f]{2})")


def _decode_2231(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    simple: dict[str, str] = {}
    pieces: dict[str, dict[int, tuple[bool, bytes]]] = {}
    for name_b, val in raw:
        name = name_b.decode("ascii", "replace").lower()
        m = re.fullmatch(r"([^*]+)\*(?:(\d{1,9})\*?|)$", name) if "*" in name else None
        if m is None:
            if name not in simple:
                simple[name] = decode_words(val)
            continue
        base, number = m.group(1), m.group(2)
        encoded = name.endswith("*")
        pieces.setdefault(base, {})[int(number) if number is not None else 0] = (encoded, val)
    for base, segments in pieces.items():
        charset = None
        data = bytearray()
        for k in sorted(segments):
            encoded, val = segments[k]
            if encoded:
                if k == 0 and val.count(b"'") >= 2:
                    cs, _lang, val = val.split(b"'", 2)
                    charset = cs.decode("ascii", "replace") or None
                data.extend(_PCT.sub(lambda mm: bytes([int(mm.group(1), 16)]), val))
            else:
                data.extend(val)
        simple[base] = decode_bytes(bytes(data), charset)
    return simple


_SECTION = re.compile(rb"(.*?)\*(\d{1,9})(\*?)", re.S)


def imap_params(raw: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Parameters as BODYSTRUCTURE reports them (as Dovecot does): those without ``*`` first, in header order;
    then the RFC 2231 ones by name, with continuations (``name*0``, ``name*1*`` ...) joined into one ``name``
    (``name*`` if a section is charset-encoded, its values kept encoded); ``name*`` alone is kept as it is."""
    out = [(k, v) for k, v in raw if b"*" not in k]
    groups: dict[bytes, list[tuple[int, bool, bytes, bytes]]] = {}
    single: list[tuple[bytes, bytes]] = []
    for key, val in raw:
        if b"*" not in key:
            continue
        m = _SECTION.fullmatch(key)
        if m is None:
            single.append((key, val))
            continue
        groups.setdefault(m.group(1).lower(), []).append((int(m.group(2)), bool(m.group(3)), m.group(1), val))
    merged: list[tuple[bytes, bytes]] = []
    for sections in groups.values():
        sections.sort(key=lambda s: s[0])
        extended = any(s[1] for s in sections)
        value = b"".join(s[3] for s in sections)
        if extended and not sections[0][1]:
            value = b"''" + value
        merged.append((sections[0][2] + (b"*" if extended else b""), value))
    rest = single + merged
    rest.sort(key=lambda kv: kv[0].rstrip(b"*").lower())
    return out + rest


@dataclass(frozen=True, slots=True)
class ContentType:
    """A Content-Type value. ``type`` and ``subtype`` are lower-case; an unparseable value has both empty (and
    ``valid`` false); a type without a subtype (``Content-Type: text``) has an empty subtype."""

    type: str
    subtype: str
    params: ParsedParams
    #: as written in the header
    raw_type: bytes = b""
    raw_subtype: bytes = b""

    @property
    def valid(self) -> bool:
        return bool(self.raw_type)


_INVALID_CT = ContentType("", "", ParsedParams([], {}))


def parse_content_type(value: bytes | None) -> ContentType | None:
    """Parse a Content-Type value (``type [/ subtype] [; params]``); None when absent; a value that does not
    follow that grammar gives an invalid :class:`ContentType` (Dovecot reports it as ``"" ""``)."""
    if value is None:
        return None
    n = len(value)
    typ, i = token(value, skip_cfws(value, 0))
    i = skip_cfws(value, i)
    if not typ:
        return _INVALID_CT
    if i >= n:
        return ContentType(typ.decode("ascii", "replace").lower(), "", ParsedParams([], {}), typ, b"")
    if value[i] != 0x2F:  # '/'
        return _INVALID_CT
    sub, i = token(value, skip_cfws(value, i + 1))
    i = skip_cfws(value, i)
    if not sub or (i < n and value[i] != 0x3B):
        return _INVALID_CT
    return ContentType(typ.decode("ascii", "replace").lower(), sub.decode("ascii", "replace").lower(),
                       _params(value, i), typ, sub)


def content_type(fields_: Fields) -> tuple[str, str, dict[str, str]]:
    """Lower-case type, subtype and decoded parameters; RFC 2045 default text/plain (charset us-ascii) when the
    field is absent, unparseable or without a subtype."""
    ct = parse_content_type(get(fields_, "content-type"))
    if ct is None or not ct.subtype:
        return "text", "plain", {"charset": "us-ascii"}
    return ct.type, ct.subtype, ct.params.decoded


def parse_disposition(value: bytes | None) -> tuple[bytes, ParsedParams] | None:
    """(disposition type as written, possibly empty; parameters), or None when the field is absent."""
    if value is None:
        return None
    disp, i = token(value, skip_cfws(value, 0))
    return disp, _params(value, i)


def content_disposition(fields_: Fields) -> tuple[str | None, dict[str, str]]:
    parsed = parse_disposition(get(fields_, "content-disposition"))
    if parsed is None:
        return None, {}
    return parsed[0].decode("ascii", "replace").lower(), parsed[1].decoded


def transfer_encoding(fields_: Fields) -> str:
    value = get(fields_, "content-transfer-encoding")
    if value is None:
        return "7bit"
    token = value.split(b"(")[0].strip().lower()
    return token.decode("ascii", "replace") or "7bit"


def encoding_token(value: bytes | None) -> bytes | None:
    """The Content-Transfer-Encoding token as written, or None when absent or not a lone token."""
    if value is None:
        return None
    tok, i = token(value, skip_cfws(value, 0))
    if not tok or skip_cfws(value, i) < len(value):
        return None
    return tok


def parse_languages(value: bytes | None) -> list[bytes]:
    """Content-Language tags: comma-separated tokens (comments skipped) up to the first thing that is not."""
    out: list[bytes] = []
    if value is None:
        return out
    i = 0
    while True:
        tag, i = token(value, skip_cfws(value, i))
        if not tag:
            break
        out.append(tag)
        i = skip_cfws(value, i)
        if i >= len(value) or value[i] != 0x2C:
            break
        i += 1
    return out


# --- summary -----------------------------------------------------------------------------------------------------
def parse_date(value: bytes | None) -> dt.datetime | None:
    """An RFC 5322 date as an aware datetime (UTC when the zone is missing), or None."""
    if value is None:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value.decode("ascii", "replace").strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def _root_fields(buf: bytes, root: dict[str, object]) -> Fields:
    """The fields of the message's top-level header (cached in ``root`` by the tree builder)."""
    cached = root.get("_fields")
    if isinstance(cached, list):
        return cached
    return fields(buf[int(root["hs"]):int(root["bs"])])  # type: ignore[call-overload]


_MSG_ID = re.compile(r"<([^<>\s]*)>")


def message_ids(value: str | bytes | None) -> list[str]:
    """The valid message ids (``<left@right>``, compared case-sensitively, without the brackets) of a Message-ID,
    In-Reply-To or References header value, in order; anything else in it is ignored."""
    if value is None:
        return []
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return [m for m in _MSG_ID.findall(text) if "@" in m.strip("@")]


#: references kept of one message at most (the newest ones: a References header may list hundreds)
MAX_REFERENCES = 100


def references(buf: bytes, root: dict[str, object]) -> tuple[str, ...]:
    """The ids a message refers to, for threading (RFC 5256 §3 step 1.A): those of its References header, else the
    first of In-Reply-To; at most the last :data:`MAX_REFERENCES`."""
    f = _root_fields(buf, root)
    found = message_ids(get(f, "references")) or message_ids(get(f, "in-reply-to"))[:1]
    return tuple(found[-MAX_REFERENCES:])


def summary(buf: bytes, root: dict[str, object]) -> tuple[str, str | None, dt.datetime | None]:
    """Decoded subject (whitespace normalized), Message-ID as written, Date header of the message."""
    f = _root_fields(buf, root)
    subject = get(f, "subject")
    msgid = get(f, "message-id")
    return (
        normalize_space(decode_words(subject)) if subject is not None else "",
        decode_bytes(msgid).strip() or None if msgid is not None else None,
        parse_date(get(f, "date")),
    )


__all__ = [
    "ContentType", "Fields", "ParsedAddress", "ParsedParams", "content_disposition", "content_type",
    "decode_bytes", "decode_words", "encoding_token", "fields", "get", "get_all", "imap_params",
    "normalize_space", "parse_addresses", "parse_content_type", "parse_date", "parse_disposition",
    "parse_languages", "message_ids", "references", "summary", "transfer_encoding",
]
