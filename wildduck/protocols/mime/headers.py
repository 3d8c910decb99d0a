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
            i = _comment_text(value, i)[1]
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


def _token(value: bytes, i: int) -> tuple[bytes, int]:
    """An RFC 2045 token at ``value[i]`` (8-bit bytes allowed; tspecials, space and controls end it)."""
    start = i
    n = len(value)
    while i < n and value[i] > 32 and value[i] != 127 and value[i] not in _TSPECIALS:
        i += 1
    return value[start:i], i


def _quoted_string(value: bytes, i: int) -> tuple[bytes, int] | None:
    """Like :func:`_quoted`, or None when the closing quote is missing."""
    n = len(value)
    j = i + 1
    while j < n:
        c = value[j]
        if c == 0x5C:
            j += 2
        elif c == 0x22:
            return _quoted(value, i)
        else:
            j += 1
    return None


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
        i = _skip_cfws(value, i)
        if i >= n:
            break
        if value[i] != 0x3B:  # garbage after the previous item: skip to the next ';'
            i = value.find(b";", i)
            if i < 0:
                break
        i = _skip_cfws(value, i + 1)
        name, i = _token(value, i)
        if not name:
            break
        i = _skip_cfws(value, i)
        if i >= n or value[i] != 0x3D:  # '='
            break
        i = _skip_cfws(value, i + 1)
        if i < n and value[i] == 0x22:
            quoted = _quoted_string(value, i)
            if quoted is None:
                break
            val, i = quoted
        else:
            val, i = _token(value, i)
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
    typ, i = _token(value, _skip_cfws(value, 0))
    i = _skip_cfws(value, i)
    if not typ:
        return _INVALID_CT
    if i >= n:
        return ContentType(typ.decode("ascii", "replace").lower(), "", ParsedParams([], {}), typ, b"")
    if value[i] != 0x2F:  # '/'
        return _INVALID_CT
    sub, i = _token(value, _skip_cfws(value, i + 1))
    i = _skip_cfws(value, i)
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
    disp, i = _token(value, _skip_cfws(value, 0))
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
    token, i = _token(value, _skip_cfws(value, 0))
    if not token or _skip_cfws(value, i) < len(value):
        return None
    return token


def parse_languages(value: bytes | None) -> list[bytes]:
    """Content-Language tags: comma-separated tokens (comments skipped) up to the first thing that is not."""
    out: list[bytes] = []
    if value is None:
        return out
    i = 0
    while True:
        tag, i = _token(value, _skip_cfws(value, i))
        if not tag:
            break
        out.append(tag)
        i = _skip_cfws(value, i)
        if i >= len(value) or value[i] != 0x2C:
            break
        i += 1
    return out


# --- addresses ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ParsedAddress:
    """One mailbox, or a group start (``group`` set, others None) / group end (everything None).

    A mailbox may lack its local part or its domain (None); ``syntax_error`` marks an unterminated ``<...>``.
    """

    name: bytes | None
    route: bytes | None
    mailbox: bytes | None
    host: bytes | None
    group: bytes | None = None
    group_end: bool = False
    syntax_error: bool = False


#: bytes that end an atom (the dot does not: "a.b" is one word, in a phrase as in a local part or a domain)
_WORD_STOP = frozenset(b'()<>[]:;@\\,"') | frozenset(b" \t\r\n") | frozenset(range(0, 32)) | {127}


def _comment_text(value: bytes, i: int) -> tuple[bytes, int]:
    """Content of the (possibly nested) comment at ``value[i] == '('``, and the index after it."""
    n = len(value)
    depth = 0
    j = i
    while j < n:
        c = value[j]
        if c == 0x5C:
            j += 2
            continue
        if c == 0x28:
            depth += 1
        elif c == 0x29:
            depth -= 1
            if depth == 0:
                return value[i + 1:j], j + 1
        j += 1
    return value[i + 1:], n


def _words(value: bytes, i: int) -> tuple[list[bytes], bytes | None, int]:
    """Words (atoms with dots, quoted strings unquoted) from ``value[i]``, skipping whitespace and comments;
    returns them, the text of the last comment seen, and where they stop."""
    words: list[bytes] = []
    comment = None
    n = len(value)
    while i < n:
        c = value[i]
        if c in b" \t\r\n":
            i += 1
        elif c == 0x28:
            comment, i = _comment_text(value, i)
        elif c == 0x22:
            word, i = _quoted(value, i)
            words.append(word)
        elif c not in _WORD_STOP:
            start = i
            while i < n and value[i] not in _WORD_STOP:
                i += 1
            words.append(value[start:i])
        else:
            break
    return words, comment, i


def _domain(value: bytes, i: int) -> tuple[bytes | None, int]:
    i = _skip_cfws(value, i)
    n = len(value)
    if i < n and value[i] == 0x5B:  # domain literal
        close = value.find(b"]", i)
        end = n if close < 0 else close + 1
        return value[i:end], end
    start = i
    while i < n and value[i] not in _WORD_STOP:
        i += 1
    return (value[start:i] or None), i


def _cfws(value: bytes, i: int) -> tuple[bytes | None, int]:
    """Skip whitespace and comments; returns the text of the last comment and the index after them."""
    comment = None
    n = len(value)
    while i < n:
        if value[i] in b" \t\r\n":
            i += 1
        elif value[i] == 0x28:
            comment, i = _comment_text(value, i)
        else:
            break
    return comment, i


def parse_addresses(value: bytes | None) -> list[ParsedAddress]:
    """Parse an RFC 5322 address list (mailboxes and groups), tolerating garbage as Dovecot does: a lone word is a
    local part without domain, several words without an address are a display name without mailbox, an empty
    element before a comma is an address with neither, and anything else after an address ends the list."""
    if not value:
        return []
    result: list[ParsedAddress] = []
    n = len(value)
    i = 0
    in_group = False
    while True:
        words, comment, i = _words(value, i)
        c = value[i] if i < n else -1
        if c == 0x3A and not in_group:  # group start
            result.append(ParsedAddress(None, None, None, None, group=b" ".join(words)))
            in_group = True
            i += 1
            continue
        if c == 0x3C:  # name-addr
            j = _skip_cfws(value, i + 1)
            route = None
            if j < n and value[j] == 0x40:
                gt = value.find(b">", j)
                colon = value.find(b":", j, n if gt < 0 else gt)
                if colon >= 0:
                    route, j = value[j:colon], colon + 1
            local, _comment, j = _words(value, j)
            host = None
            if j < n and value[j] == 0x40:
                host, j = _domain(value, j + 1)
            j = _skip_cfws(value, j)
            ok = j < n and value[j] == 0x3E
            result.append(ParsedAddress(b" ".join(words) if words else None, route, b"".join(local) or None, host,
                                        syntax_error=not ok))
            if not ok:
                break
            i = _skip_cfws(value, j + 1)
        elif c == 0x40:  # addr-spec
            host, i = _domain(value, i + 1)
            comment, i = _cfws(value, i)
            result.append(ParsedAddress(comment or None, None, b"".join(words) or None, host))
        elif len(words) > 1:
            result.append(ParsedAddress(b" ".join(words), None, None, None))
        elif words:
            result.append(ParsedAddress(comment or None, None, words[0], None))
        elif c == 0x2C:  # an empty element before a comma
            result.append(ParsedAddress(None, None, None, None))
        if i >= n:
            break
        if value[i] == 0x3B and in_group:
            result.append(ParsedAddress(None, None, None, None, group_end=True))
            in_group = False
            i = _skip_cfws(value, i + 1)
            if i < n and value[i] == 0x2C:  # the comma after a group separates it from what follows
                i += 1
            continue
        if value[i] != 0x2C:  # garbage: the rest of the field is not read
            break
        i += 1
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
