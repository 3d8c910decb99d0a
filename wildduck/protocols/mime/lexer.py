"""The one RFC 5322 / RFC 2045 lexer for structured header values: comments and folding white space (CFWS),
quoted strings, tokens, words and domains.

Every scanner takes the value and a start index and returns what it read with the index after it; none raises:
malformed input (an unterminated comment or quoted string) reads to the end of the value, as Dovecot does, and
the quoted-string scanner says whether the closing quote was there. Address parsing
(:mod:`wildduck.protocols.mime.addresses`) and parameter parsing (:mod:`wildduck.protocols.mime.headers`) both
use these.
"""

from __future__ import annotations

_WSP = b" \t\r\n"
#: RFC 2045 tspecials: they end a token
_TSPECIALS = b'()<>@,;:\\"/[]?='
#: bytes that end an atom (the dot does not: "a.b" is one word, in a phrase as in a local part or a domain)
_WORD_STOP = frozenset(b'()<>[]:;@\\,"') | frozenset(_WSP) | frozenset(range(0, 32)) | {127}


def comment(value: bytes, i: int) -> tuple[bytes, int]:
    """The text of the (possibly nested) comment at ``value[i] == "("`` and the index after it."""
    n = len(value)
    depth = 0
    j = i
    while j < n:
        c = value[j]
        if c == 0x5C:  # quoted-pair
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


def cfws(value: bytes, i: int) -> tuple[bytes | None, int]:
    """Skip white space and comments from ``value[i]``; the text of the last comment (None if there was none)
    and the index after them."""
    last = None
    n = len(value)
    while i < n:
        c = value[i]
        if c in _WSP:
            i += 1
        elif c == 0x28:
            last, i = comment(value, i)
        else:
            break
    return last, i


def skip_cfws(value: bytes, i: int) -> int:
    """The index after the white space and comments at ``value[i]``."""
    return cfws(value, i)[1]


def quoted_string(value: bytes, i: int) -> tuple[bytes, int, bool]:
    """The unescaped content of the quoted string at ``value[i] == '"'``, the index after it, and whether the
    closing quote was found (if not, the content runs to the end of the value)."""
    out = bytearray()
    i += 1
    n = len(value)
    while i < n:
        c = value[i]
        if c == 0x5C and i + 1 < n:  # quoted-pair (a backslash ending the value is kept)
            out.append(value[i + 1])
            i += 2
            continue
        if c == 0x22:
            return bytes(out), i + 1, True
        out.append(c)
        i += 1
    return bytes(out), n, False


def token(value: bytes, i: int) -> tuple[bytes, int]:
    """An RFC 2045 token at ``value[i]`` (8-bit bytes allowed; tspecials, space and controls end it)."""
    start = i
    n = len(value)
    while i < n and value[i] > 32 and value[i] != 127 and value[i] not in _TSPECIALS:
        i += 1
    return value[start:i], i


def atom(value: bytes, i: int) -> tuple[bytes, int]:
    """An atom, dots included (``a.b``), at ``value[i]``; empty if none starts there."""
    start = i
    n = len(value)
    while i < n and value[i] not in _WORD_STOP:
        i += 1
    return value[start:i], i


def words(value: bytes, i: int) -> tuple[list[bytes], bytes | None, int]:
    """Words (atoms with dots, quoted strings unquoted) from ``value[i]``, skipping white space and comments;
    returns them, the text of the last comment seen, and where they stop."""
    found: list[bytes] = []
    last_comment = None
    n = len(value)
    while True:
        seen, i = cfws(value, i)
        if seen is not None:
            last_comment = seen
        if i >= n:
            break
        if value[i] == 0x22:
            word, i, _closed = quoted_string(value, i)
            found.append(word)
        elif value[i] not in _WORD_STOP:
            word, i = atom(value, i)
            found.append(word)
        else:
            break
    return found, last_comment, i


def domain(value: bytes, i: int) -> tuple[bytes | None, int]:
    """A domain (dot-atom or ``[literal]``, as written) after optional CFWS at ``value[i]``; None if empty."""
    i = skip_cfws(value, i)
    if i < len(value) and value[i] == 0x5B:  # domain literal
        close = value.find(b"]", i)
        end = len(value) if close < 0 else close + 1
        return value[i:end], end
    text, i = atom(value, i)
    return (text or None), i
