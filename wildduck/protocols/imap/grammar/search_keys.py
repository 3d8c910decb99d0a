"""SEARCH keys (RFC 3501 §6.4.4, RFC 7162 MODSEQ, RFC 5032 OLDER/YOUNGER) as a tree of :class:`SearchKey`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from wildduck.protocols.imap.grammar.args import Args, ParseError, parse_date, parse_flag
from wildduck.protocols.imap.grammar.sequence import parse_sequence_set
from wildduck.protocols.imap.receiver import LITERAL, QUOTED


@dataclass(frozen=True, slots=True)
class SearchKey:
    """A search criterion: ``op`` names it (ALL, SEEN, FROM, OR, NOT, AND, SEQ, UID, ...); ``args`` its values."""

    op: str
    args: tuple[Any, ...] = ()

_SEARCH_NOARG = {"ALL", "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "NEW", "OLD", "RECENT", "SEEN", "UNANSWERED",
                 "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN", "SAVEDATESUPPORTED"}
_SEARCH_STRING = {"BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO"}
_SEARCH_DATE = {"BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE", "SAVEDBEFORE", "SAVEDON", "SAVEDSINCE"}
#: RFC 8474 6: an objectid is 1 to 255 letters, digits, "_" and "-"
_OBJECT_ID = re.compile(rb"[A-Za-z0-9_-]{1,255}")
_SEARCH_NUMBER = {"LARGER", "SMALLER", "OLDER", "YOUNGER"}
_MAX_SEARCH_DEPTH = 64


def parse_search_key(a: Args, depth: int = 0) -> SearchKey:
    """One search key (a parenthesized list is an AND), recursively up to a bounded depth.

    Raises:
        ParseError: unknown key, missing argument, or nested too deeply.
    """
    if depth > _MAX_SEARCH_DEPTH:
        raise ParseError("search criteria nested too deeply")
    if a.open():
        keys = []
        while not a.close():
            keys.append(parse_search_key(a, depth + 1))
        if not keys:
            raise ParseError("empty search list")
        return SearchKey("AND", tuple(keys))
    raw = a.atom("search key")
    op = raw.upper().decode("ascii", "replace")
    if op in _SEARCH_NOARG:
        return SearchKey(op)
    if op in _SEARCH_STRING:
        return SearchKey(op, (a.astring("search string"),))
    if op in _SEARCH_DATE:
        return SearchKey(op, (parse_date(a.astring("date")),))
    if op in _SEARCH_NUMBER:
        return SearchKey(op, (a.number("number", nz=op in ("OLDER", "YOUNGER")),))
    if op in ("EMAILID", "THREADID"):
        value = a.atom("objectid")
        if not _OBJECT_ID.fullmatch(value):
            raise ParseError(f"{op} takes an object id (letters, digits, _ and -)")
        return SearchKey(op, (value.decode("ascii"),))
    if op in ("KEYWORD", "UNKEYWORD"):
        return SearchKey(op, (parse_flag(a.atom("keyword")),))
    if op == "HEADER":
        return SearchKey(op, (a.astring("header name").decode("utf-8", "replace"), a.astring("header value")))
    if op == "UID":
        return SearchKey(op, (parse_sequence_set(a.atom("sequence set")),))
    if op == "NOT":
        return SearchKey(op, (parse_search_key(a, depth + 1),))
    if op == "OR":
        return SearchKey(op, (parse_search_key(a, depth + 1), parse_search_key(a, depth + 1)))
    if op == "MODSEQ":
        tok = a.peek()
        if tok is not None and tok[0] in (QUOTED, LITERAL):  # entry name and type (ignored: one flags space)
            a.string("entry name")
            a.atom("entry type")
        return SearchKey(op, (a.number("mod-sequence", bits=63),))
    if raw[:1].isdigit() or raw[:1] in (b"*", b"$"):  # "$": the saved result (RFC 5182)
        return SearchKey("SEQ", (parse_sequence_set(raw),))
    raise ParseError(f"unknown search key {op[:40]}")
