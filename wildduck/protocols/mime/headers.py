"""Header fields: splitting and unfolding, RFC 2047 encoded words, RFC 2045/2231 parameters, address lists.

Every function here is tolerant: malformed input gives a best-effort value, never an exception.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.utils
import quopri
import re
from collections.abc import Sequence
from dataclasses import dataclass

from wildduck import _speedups

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


def decode_words(value: bytes) -> str:
    """Decode RFC 2047 encoded words; whitespace between adjacent encoded words is dropped."""
    out: list[str] = []
    pos = 0
    last_was_word = False
    for m in _ENCODED_WORD.finditer(value):
        between = value[pos:m.start()]
        decoded = _decode_word(m.group(1), m.group(2), m.group(3))
        if decoded is None:
            out.append(decode_bytes(value[pos:m.end()]))
            last_was_word = False
        else:
            if not (last_was_word and not between.strip(b" \t\r\n")):
                out.append(decode_bytes(between))
            out.append(decoded)
            last_was_word = True
        pos = m.end()
    out.append(decode_bytes(value[pos:]))
    return "".join(out)


def normalize_space(text: str) -> str:
    return " ".join(text.split())


# --- structured values: tokens, parameters ----------------------------------------------------------------------
_TSPECIALS = b'()<>@,;:\\"/[]?='


def _skip_cfws(value: bytes, i: int) -> int:
    n = len(value)
    while i < n:
        c = value[i]
        if c in b" \t\r\n":
            i += 1
        elif c == 0x28:  # comment, may nest
            depth = 0
            while i < n:
                c = value[i]
                if c == 0x5C:
                    i += 2
                    continue
                if c == 0x28:
                    depth += 1
                elif c == 0x29:
                    depth -= 1
                    if depth == 0:
                        i += 1
                        break
                i += 1
        else:
            break
    return i


def _quoted(value: bytes, i: int) -> tuple[bytes, int]:
    """Content of the quoted string starting at value[i] == '"' (unescaped), and the index after it."""
    out = bytearray()
    i += 1
    n = len(value)
    while i < n:
        c = value[i]
        if c == 0x5C and i + 1 < n:
            out.append(value[i + 1])
            i += 2
            continue
        if c == 0x22:
            return bytes(out), i + 1
        out.append(c)
        i += 1
    return bytes(out), i


def _token(value: bytes, i: int, stop: bytes) -> tuple[bytes, int]:
    start = i
    n = len(value)
    while i < n and value[i] not in stop:
        i += 1
    return value[start:i].strip(b" \t\r\n"), i


@dataclass(frozen=True, slots=True)
class ParsedParams:
    """Parameters of a Content-Type or Content-Disposition value.

    ``raw`` keeps the attribute/value pairs in header order as written (for BODYSTRUCTURE); ``decoded`` has
    lower-case names and RFC 2231 continuations and charsets resolved.
    """

    raw: list[tuple[bytes, bytes]]
    decoded: dict[str, str]


def _params(value: bytes, i: int) -> ParsedParams:
    raw: list[tuple[bytes, bytes]] = []
    n = len(value)
    while i < n:
        i = _skip_cfws(value, i)
        if i < n and value[i] == 0x3B:  # ';'
            i += 1
            continue
        if i >= n:
            break
        name, i = _token(value, i, b"=;")
        if i >= n or value[i] != 0x3D:  # no '=': skip the garbage
            i += 1
            continue
        i = _skip_cfws(value, i + 1)
        if i < n and value[i] == 0x22:
            val, i = _quoted(value, i)
        else:
            val, i = _token(value, i, b";")
            val = val.split(b" (")[0].strip()
        if name:
            raw.append((name, val))
    return ParsedParams(raw, _decode_2231(raw))


_PCT = re.compile(rb"%([0-9A-Fa-f]{2})")


def _decode_2231(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    simple: dict[str, str] = {}
    pieces: dict[str, dict[int, tuple[bool, bytes]]] = {}
    for name_b, val in raw:
        name = name_b.decode("ascii", "replace").lower()
        m = re.fullmatch(r"([^*]+)\*(?:(\d+)\*?|)$", name) if "*" in name else None
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


@dataclass(frozen=True, slots=True)
class ContentType:
    type: str
    subtype: str
    params: ParsedParams
    #: as written in the header (None when the header is absent or unparseable)
    raw_type: bytes | None = None
    raw_subtype: bytes | None = None


def parse_content_type(value: bytes | None) -> ContentType | None:
    """Parse a Content-Type value; None when absent or without a valid ``type/subtype``."""
    if value is None:
        return None
    i = _skip_cfws(value, 0)
    typ, i = _token(value, i, b"/;")
    if i >= len(value) or value[i] != 0x2F or not typ:
        return None
    i = _skip_cfws(value, i + 1)
    sub, i = _token(value, i, b";( \t")
    if not sub or any(c in _TSPECIALS for c in typ + sub):
        return None
    return ContentType(typ.decode("ascii", "replace").lower(), sub.decode("ascii", "replace").lower(),
                       _params(value, i), typ, sub)


def content_type(fields_: Fields) -> tuple[str, str, dict[str, str]]:
    """Lower-case type, subtype and decoded parameters; RFC 2045 default text/plain (charset us-ascii)."""
    ct = parse_content_type(get(fields_, "content-type"))
    if ct is None:
        return "text", "plain", {"charset": "us-ascii"}
    return ct.type, ct.subtype, ct.params.decoded


def parse_disposition(value: bytes | None) -> tuple[bytes, ParsedParams] | None:
    if value is None:
        return None
    i = _skip_cfws(value, 0)
    disp, i = _token(value, i, b";( \t")
    if not disp:
        return None
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


# --- addresses ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ParsedAddress:
    """One mailbox, or a group start (``group`` set, others None) / group end (everything None)."""

    name: bytes | None
    route: bytes | None
    mailbox: bytes | None
    host: bytes | None
    group: bytes | None = None
    group_end: bool = False


def _phrase_and_words(value: bytes, i: int, stops: bytes) -> tuple[list[bytes], int]:
    """Words (atoms, quoted strings unquoted) until one of ``stops`` outside quotes/comments."""
    words: list[bytes] = []
    n = len(value)
    while True:
        i = _skip_cfws(value, i)
        if i >= n or value[i] in stops:
            return words, i
        if value[i] == 0x22:
            word, i = _quoted(value, i)
            words.append(word)
        else:
            start = i
            while i < n and value[i] not in stops and value[i] not in b' \t\r\n"(':
                i += 1
            if i == start:  # a lone special we do not handle: skip it
                i += 1
                continue
            words.append(value[start:i])


def _split_addr_spec(spec: bytes) -> tuple[bytes | None, bytes | None]:
    spec = spec.strip()
    if not spec:
        return None, None
    local, at, domain = spec.rpartition(b"@")
    if not at:
        return spec, None
    return local, domain


def _addr_spec_at(value: bytes, i: int, stops: bytes) -> tuple[bytes, int]:
    """Raw addr-spec text (comments and whitespace dropped, quotes kept) until ``stops``."""
    out = bytearray()
    n = len(value)
    while i < n and value[i] not in stops:
        c = value[i]
        if c == 0x22:
            start = i
            _, i = _quoted(value, i)
            out.extend(value[start:i])
            continue
        if c == 0x28:
            i = _skip_cfws(value, i)
            continue
        if c not in b" \t\r\n":
            out.append(c)
        i += 1
    return bytes(out), i


_COMMENT = re.compile(rb"\(((?:[^()\\]|\\.)*)\)")


def parse_addresses(value: bytes | None) -> list[ParsedAddress]:
    """Parse an RFC 5322 address list (mailboxes and groups), tolerating garbage."""
    if not value:
        return []
    result: list[ParsedAddress] = []
    n = len(value)
    i = 0
    in_group = False
    while i < n:
        i = _skip_cfws(value, i)
        if i >= n:
            break
        c = value[i]
        if c == 0x2C:  # ','
            i += 1
            continue
        if c == 0x3B and in_group:  # ';' ends a group
            result.append(ParsedAddress(None, None, None, None, group_end=True))
            in_group = False
            i += 1
            continue
        # look ahead: phrase then '<' (name-addr), or phrase then ':' (group), else addr-spec
        words, j = _phrase_and_words(value, i, b"<:,;@")
        if j < n and value[j] == 0x3A and not in_group:  # group start
            result.append(ParsedAddress(None, None, None, None, group=b" ".join(words)))
            in_group = True
            i = j + 1
            continue
        if j < n and value[j] == 0x3C:  # name-addr
            k = value.find(b">", j)
            inner = value[j + 1:k if k >= 0 else n]
            route = None
            if inner.startswith(b"@") and b":" in inner:
                route, inner = inner.split(b":", 1)
            spec, _ = _addr_spec_at(inner, 0, b"")
            local, domain = _split_addr_spec(spec)
            name = b" ".join(words) if words else None
            result.append(ParsedAddress(name, route, local, domain))
            i = k + 1 if k >= 0 else n
            continue
        spec, j = _addr_spec_at(value, i, b",;" if in_group else b",")
        if spec:
            local, domain = _split_addr_spec(spec)
            # "user@domain (Real Name)": the comment serves as the display name (as Dovecot reports it)
            comments = _COMMENT.findall(value[i:j])
            name = comments[-1].strip() or None if comments else None
            result.append(ParsedAddress(name, None, local, domain))
        i = j if j > i else i + 1
    if in_group:
        result.append(ParsedAddress(None, None, None, None, group_end=True))
    return result


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


def summary(buf: bytes, root: dict[str, object]) -> tuple[str, str | None, dt.datetime | None]:
    """Decoded subject (whitespace normalized), Message-ID as written, Date header of the message."""
    cached = root.get("_fields")
    f = cached if isinstance(cached, list) else fields(buf[int(root["hs"]):int(root["bs"])])  # type: ignore[call-overload]
    subject = get(f, "subject")
    msgid = get(f, "message-id")
    return (
        normalize_space(decode_words(subject)) if subject is not None else "",
        decode_bytes(msgid).strip() or None if msgid is not None else None,
        parse_date(get(f, "date")),
    )
