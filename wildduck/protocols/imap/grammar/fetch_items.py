"""FETCH attributes (RFC 3501 §6.4.5, RFC 3516 BINARY, RFC 7162 MODSEQ, RFC 8970 PREVIEW, RFC 8474 EMAILID and
THREADID, RFC 8514 SAVEDATE) as typed
:class:`FetchItem` values."""

from __future__ import annotations

import re
from dataclasses import dataclass

from wildduck.protocols.imap.grammar.args import Args, ParseError
from wildduck.protocols.imap.receiver import ATOM, LPAREN


@dataclass(frozen=True, slots=True)
class FetchItem:
    """One FETCH attribute: ``name`` is FLAGS, INTERNALDATE, RFC822.SIZE, ENVELOPE, BODY, BODYSTRUCTURE, UID,
    MODSEQ, PREVIEW, RFC822, RFC822.HEADER, RFC822.TEXT, or BODY[...] (then ``section``, ``peek`` and ``partial``
    apply)."""

    name: str
    section: str | None = None  # e.g. "", "1.2", "HEADER", "1.HEADER.FIELDS", "TEXT", "2.MIME"
    fields: tuple[str, ...] = ()  # for HEADER.FIELDS (.NOT)
    peek: bool = False
    partial: tuple[int, int] | None = None  # (start, length)
    #: the name as it must be echoed in the response (e.g. "BODY[HEADER.FIELDS (FROM)]<0>")
    label: str = ""

_MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
_SIMPLE_ATTS = {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY", "BODYSTRUCTURE", "UID", "MODSEQ",
                "RFC822", "RFC822.HEADER", "RFC822.TEXT", "PREVIEW", "EMAILID", "THREADID", "SAVEDATE"}
#: PREVIEW's modifiers (RFC 8970 3.1: LAZY lets the server answer NIL rather than compute; this one computes)
_PREVIEW_MODIFIERS = frozenset({b"LAZY"})
_SECTION = re.compile(
    r"^((?:[1-9][0-9]*\.)*[1-9][0-9]*)?\.?(HEADER|HEADER\.FIELDS|HEADER\.FIELDS\.NOT|TEXT|MIME)?"
    r"(?: \(([^()]*)\))?$", re.IGNORECASE)
_BODY_ATT = re.compile(
    rb"^(BODY|BODY\.PEEK|BINARY|BINARY\.PEEK|BINARY\.SIZE)\[([^\]]*)\](?:<(\d{1,19})(?:\.(\d{1,19}))?>)?$",
    re.IGNORECASE)


def parse_fetch_item(raw: bytes) -> FetchItem:
    """One fetch attribute (not a macro).

    Raises:
        ParseError: unknown attribute or invalid section.
    """
    upper = raw.upper().decode("ascii", "replace")
    if upper in _SIMPLE_ATTS:
        return FetchItem(upper, label=upper)
    m = _BODY_ATT.match(raw)
    if m is None:
        raise ParseError(f"unknown fetch attribute {upper[:60]}")
    kind, section_raw, start, length = m.groups()
    kind_s = kind.upper().decode()
    section = section_raw.decode("ascii", "replace")
    sm = _SECTION.match(section)
    if sm is None or (sm.group(1) is None and sm.group(2) is None and section):
        raise ParseError(f"invalid section [{section[:60]}]")
    part, text, field_list = sm.group(1), (sm.group(2) or "").upper(), sm.group(3)
    if text == "MIME" and not part:
        raise ParseError("MIME needs a part number")
    if (field_list is not None) != text.startswith("HEADER.FIELDS"):
        raise ParseError("HEADER.FIELDS needs a field list")
    if kind_s.startswith("BINARY") and text:
        raise ParseError("BINARY takes a part number only")
    fields: tuple[str, ...] = ()
    if field_list is not None:
        fields = tuple(f.upper() for f in field_list.replace('"', "").split())
        if not fields:
            raise ParseError("empty header field list")
    partial = None
    if start is not None:
        if kind_s == "BINARY.SIZE":
            raise ParseError("BINARY.SIZE takes no partial")
        partial = (int(start), int(length) if length is not None else 1 << 63)
        if max(partial) > 1 << 63:  # RFC 9051 number64
            raise ParseError("partial range out of range")
    norm_section = ".".join(x for x in (part or "", text) if x)
    if fields:
        norm_section += " (" + " ".join(fields) + ")"
    base = kind_s.replace(".PEEK", "")
    label = f"{base}[{norm_section}]" + (f"<{partial[0]}>" if partial else "")
    return FetchItem(base, norm_section, fields, kind_s.endswith(".PEEK"), partial, label)


def parse_fetch_items(a: Args) -> tuple[FetchItem, ...]:
    """A parenthesized attribute list, one attribute, or a macro (ALL, FAST, FULL)."""
    items: list[FetchItem] = []
    if a.open():
        while not a.close():
            items.append(parse_fetch_item(a.atom("fetch attribute")))
            _preview_modifiers(a, items[-1], alone=False)
        if not items:
            raise ParseError("empty fetch attribute list")
    else:
        raw = a.atom("fetch attribute")
        macro = _MACROS.get(raw.upper().decode("ascii", "replace"))
        items = [FetchItem(x, label=x) for x in macro] if macro else [parse_fetch_item(raw)]
        _preview_modifiers(a, items[-1], alone=True)
    return tuple(items)


def _preview_modifiers(a: Args, item: FetchItem, *, alone: bool) -> None:
    """``PREVIEW (LAZY)``: the modifiers after PREVIEW (RFC 8970 3.1). A lone PREVIEW may be followed by the
    command's own modifier list (``(CHANGEDSINCE n)``): only a list that starts with a PREVIEW modifier is its."""
    if item.name != "PREVIEW":
        return
    tokens, at = a.tokens, a.pos
    if at >= len(tokens) or tokens[at][0] != LPAREN:
        return
    following = tokens[at + 1] if at + 1 < len(tokens) else None
    if alone and not (following is not None and following[0] == ATOM
                      and (following[1] or b"").upper() in _PREVIEW_MODIFIERS):
        return
    a.open()
    found = False
    while not a.close():
        modifier = a.atom("preview modifier").upper()
        if modifier not in _PREVIEW_MODIFIERS:
            raise ParseError(f"unknown preview modifier {modifier[:40].decode('ascii', 'replace')}")
        found = True
    if not found:
        raise ParseError("empty preview modifier list")
