"""What SORT (RFC 5256 §3, SORT=DISPLAY RFC 5957) compares of a message, as strings in collation form: the base
subject, and the local part and display form of the first from, to and cc address, read from ENVELOPE in its IMAP
form (:mod:`wildduck.protocols.mime.imapform`). A pure function of what the store keeps of every message, so the
store computes them once, at ingest (and a schema migration for the messages stored before), and SORT reads them:
:func:`sort_keys`. :mod:`wildduck.protocols.imap.sort` has the rules and the ordering.

* Strings compare by the ``i;unicode-casemap`` collation (RFC 5256 §7, RFC 5051): titlecase, then decomposed
  (compatibility decomposition, as Dovecot does), then by code point (:func:`collate`).
* FROM, TO, CC: the local part (``addr-mailbox``) of the first address of the field; DISPLAYFROM, DISPLAYTO: its
  display name with encoded words decoded, or, when it has none (or an empty one), its ``mailbox@host``. A message
  without the field has the empty string.
"""

from __future__ import annotations

import re
import unicodedata

from wildduck.protocols.mime import basesubject, headers

_titlecase: dict[str, str] = {}


def _title(char: str) -> str:
    mapped = _titlecase.get(char)
    if mapped is None:
        title = char.title()
        mapped = unicodedata.normalize("NFKD", title if len(title) == 1 else char)
        if len(_titlecase) < 65536:
            _titlecase[char] = mapped
    return mapped


def collate(text: str) -> str:
    """``text`` as the ``i;unicode-casemap`` collation compares it: each character titlecased (simple mapping)
    and decomposed; two strings then compare by code point."""
    if text.isascii():
        return text.upper()
    return "".join(map(_title, unicodedata.normalize("NFKD", text)))


# --- the ENVELOPE's IMAP form, as the store keeps it ------------------------------------------------------------
_TOKEN = re.compile(rb' *(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|\{(\d+)\}\r\n|([^ ()"]+))')
_ESCAPE = re.compile(rb"\\(.)")

Value = bytes | None | list["Value"]


def parse_data(data: bytes) -> list[Value]:
    """IMAP data (a parenthesized list of lists, strings, literals and atoms, as ENVELOPE is written) as nested
    lists of bytes; NIL is None. Iterative: any nesting depth.

    Raises:
        ValueError: not a well-formed parenthesized list.
    """
    stack: list[list[Value]] = []
    top: list[Value] = []
    pos, size = 0, len(data)
    match = _TOKEN.match
    while pos < size:
        m = match(data, pos)
        if m is None:
            raise ValueError(f"unreadable IMAP data at {pos}")
        pos = m.end()
        if m.group(1) is not None:
            child: list[Value] = []
            top.append(child)
            stack.append(top)
            top = child
        elif m.group(2) is not None:
            if not stack:
                raise ValueError("unbalanced parenthesis")
            top = stack.pop()
        elif m.group(3) is not None:
            quoted = m.group(3)
            top.append(_ESCAPE.sub(rb"\1", quoted) if b"\\" in quoted else quoted)
        elif m.group(4) is not None:
            n = int(m.group(4))
            top.append(data[pos:pos + n])
            pos += n
        else:
            atom = m.group(5)
            top.append(None if atom.upper() == b"NIL" else atom)
    if stack or len(top) != 1 or not isinstance(top[0], list):
        raise ValueError("expected one parenthesized list")
    return top[0]


#: the tokens of IMAP data without literals: parentheses, quoted strings, atoms (NIL among them)
_TOKENS = re.compile(rb'[()]|"(?:[^"\\]|\\.)*"|[^ ()"]+')
#: ENVELOPE's address lists whose first address SORT reads: from, to, cc
_ADDRESS_ITEMS = (2, 5, 6)


def _atom_value(token: bytes) -> Value:
    if token[:1] == b'"':
        inner = token[1:-1]
        return _ESCAPE.sub(rb"\1", inner) if b"\\" in inner else inner
    return None if token.upper() == b"NIL" else token


def first_addresses(envelope: bytes) -> list[list[Value] | None]:
    """The first address ``[name, adl, mailbox, host]`` of ENVELOPE's from, to and cc lists (None: the list is
    NIL or empty); an envelope that does not parse has none. Envelopes without literals (nearly all) are read from
    one tokenization in C, without building the rest of the envelope."""
    if b"{" in envelope:
        try:
            env = parse_data(envelope)
        except ValueError:
            return [None, None, None]
        out: list[list[Value] | None] = []
        for index in _ADDRESS_ITEMS:
            addresses = env[index] if len(env) > index else None
            first = addresses[0] if isinstance(addresses, list) and addresses else None
            out.append(first if isinstance(first, list) and len(first) == 4 else None)
        return out
    found: dict[int, list[Value]] = {}
    depth = item = 0
    current: list[Value] | None = None
    for token in _TOKENS.findall(envelope):
        if token == b"(":
            depth += 1
            if depth == 3 and item in _ADDRESS_ITEMS and item not in found:
                current = found[item] = []
            continue
        if token == b")":
            depth -= 1
            if depth == 1:
                item += 1
                if item > _ADDRESS_ITEMS[-1]:
                    break
            elif depth == 2:
                current = None
            continue
        if depth == 1:
            item += 1
        elif current is not None and depth == 3:
            current.append(_atom_value(token))
    return [a if a is not None and len(a) == 4 else None for a in (found.get(i) for i in _ADDRESS_ITEMS)]


def _text(value: Value) -> str:
    return headers.decode_bytes(value) if isinstance(value, bytes) else ""


def mailbox_key(address: list[Value] | None) -> str:
    """FROM, TO, CC: the address's local part."""
    return "" if address is None else _text(address[2])


def display_key(address: list[Value] | None) -> str:
    """DISPLAYFROM, DISPLAYTO (RFC 5957 §3): the display name decoded, else ``mailbox@host``."""
    if address is None:
        return ""
    name, mailbox, host = address[0], address[2], address[3]
    if isinstance(name, bytes):
        decoded = " ".join(headers.decode_words(name).split())
        if decoded:
            return decoded
    local = _text(mailbox)
    return f"{local}@{_text(host)}" if isinstance(host, bytes) else local


def sort_keys(subject: str, envelope: bytes | None) -> tuple[str, str, str, str, str, str]:
    """The string sort keys of a message with this decoded Subject and ENVELOPE (IMAP form; None or empty: no
    addresses), in collation form: (base subject, from, to, cc, display from, display to)."""
    subject_key = collate(basesubject.base_subject(subject))
    frm, to, cc = first_addresses(envelope) if envelope else (None, None, None)
    return (subject_key, collate(mailbox_key(frm)), collate(mailbox_key(to)), collate(mailbox_key(cc)),
            collate(display_key(frm)), collate(display_key(to)))
