"""The ``SearchIndex`` role on MongoDB: search queries narrowed by a MongoDB filter over the message documents.

There is no text index to use (FerretDB has none, and MongoDB's ``$text`` matches words, not substrings), so text is
matched by an escaped ``$regex`` on the folded body and header text each message keeps (what the SQLite adapter
keeps in its trigram index), exact by construction (for a document an older version indexed, until maintenance
re-indexes it, by that version's rules: :func:`_matching`). ``candidates`` compiles a query into two filters as the
SQLite adapter does into SQL predicates: an upper bound (every match satisfies it) and a lower bound (everything
that satisfies it matches); ``Not`` swaps them (``$nor``); where the two are one filter the answer is ``Decided``.
"""

from __future__ import annotations

import datetime as dt
import string
from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING

from wildduck.adapters._codec import SEARCH_FIELDS, SEARCH_SEPARATOR, legacy_fold, search_fold
from wildduck.adapters.mongodb import codec
from wildduck.adapters.mongodb.base import MongoBase
from wildduck.model import SearchRow
from wildduck.model.search import (
    All,
    And,
    Date,
    Decided,
    Flag,
    Header,
    Instant,
    ModSeq,
    Not,
    Or,
    Query,
    Size,
    Text,
    Uids,
)

Filter = dict[str, Any]
#: UID ranges above this many are bounded by their span only
_MAX_RANGES = 64
_DAY = dt.timedelta(days=1)
#: stored dates are at the millisecond
_EPSILON = dt.timedelta(milliseconds=1)
_TRUE: Filter = {}
_FALSE: Filter = {"uid": {"$lt": 0}}
_PUNCTUATION = frozenset(string.punctuation)


def literal(text: str) -> str:
    """A regular expression matching ``text`` literally (the same in MongoDB's PCRE and FerretDB's RE2): ASCII
    punctuation escaped, control characters as ``\\x{..}``, everything else as it is."""
    out = []
    for c in text:
        if c in _PUNCTUATION:
            out.append("\\" + c)
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\x{{{ord(c):02x}}}")
        else:
            out.append(c)
    return "".join(out)


def _matching(field: str, needle: str) -> Filter:
    """``field`` contains ``needle`` folded (``search_fold``), or, in a document indexed by an older version and not
    re-indexed yet (``codec.STALE_SEARCH``: maintenance's ``reindex_search`` gets to it), its ``legacy_fold``, as
    that version folded text."""
    folded: Filter = {field: {"$regex": literal(search_fold(needle))}}
    legacy = legacy_fold(needle)
    if legacy is None:
        return folded
    return {"$or": [folded, {"$and": [{field: {"$regex": literal(legacy)}}, codec.STALE_SEARCH]}]}


def _text(q: Text) -> Filter:
    if q.headers_too:
        return {"$or": [_matching("text", q.needle), _matching("head", q.needle)]}
    return _matching("text", q.needle)


def _day_start(day: dt.date, shift: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC) + shift * _DAY


def _date(q: Date) -> tuple[Filter | None, Filter | None]:
    """Internal-date bounds, a day wider (upper) and a day narrower (lower) than the UTC calendar day."""
    if q.op == "before":
        return {"idate": {"$lt": _day_start(q.day, 1)}}, {"idate": {"$lt": _day_start(q.day, -1)}}
    if q.op == "since":
        return {"idate": {"$gte": _day_start(q.day, -1)}}, {"idate": {"$gte": _day_start(q.day, 1)}}
    return {"idate": {"$gte": _day_start(q.day, -1), "$lt": _day_start(q.day, 2)}}, None


_SENT_OPS = {"before": "$lt", "on": "$eq", "since": "$gte"}


def _header(q: Header) -> tuple[Filter, Filter | None]:
    field = f"s_{q.name}"
    if not q.needle:
        exact: Filter = {field: {"$ne": None}}
        return exact, exact
    upper = _matching(field, q.needle)
    return upper, (upper if SEARCH_SEPARATOR not in search_fold(q.needle) else None)


def _uids(q: Uids) -> tuple[Filter, Filter | None]:
    if not q.ranges:
        return _FALSE, _FALSE
    if len(q.ranges) > _MAX_RANGES:
        return {"uid": {"$gte": q.ranges[0][0], "$lte": q.ranges[-1][1]}}, None
    exact = {"$or": [{"uid": {"$gte": lo, "$lte": hi}} for lo, hi in q.ranges]}
    return exact, exact


def _join(op: str, parts: list[Filter]) -> Filter:
    if not parts:
        return _TRUE if op == "$and" else _FALSE
    return parts[0] if len(parts) == 1 else {op: parts}


def bounds(q: Query) -> tuple[Filter | None, Filter | None]:
    """(upper, lower) filters of ``q``: upper None means "any message may match", lower None "none is known to"."""
    if isinstance(q, All):
        return None, _TRUE
    if isinstance(q, And | Or):
        parts = [bounds(t) for t in q.terms]
        uppers = [u for u, _ in parts if u is not None]
        lowers = [lo for _, lo in parts if lo is not None]
        if isinstance(q, And):
            return (_join("$and", uppers) if uppers else None,
                    _join("$and", lowers) if len(lowers) == len(parts) else None)
        return (_join("$or", uppers) if len(uppers) == len(parts) else None,
                _join("$or", lowers) if lowers else None)
    if isinstance(q, Not):
        upper, lower = bounds(q.term)
        return ({"$nor": [lower]} if lower is not None else None), ({"$nor": [upper]} if upper is not None else None)
    if isinstance(q, Flag):  # a flag ignoring case bounds from above (IMAP may fold it); the exact one from below
        return {"flags": {"$regex": f"^{literal(q.name)}$", "$options": "i"}}, {"flags": q.name}
    if isinstance(q, Text):
        exact = _text(q)
        return exact, exact
    if isinstance(q, Uids):
        return _uids(q)
    if isinstance(q, ModSeq):
        exact = {"modseq": {"$gte": q.at_least}}
        return exact, exact
    if isinstance(q, Size):
        exact = {"size": {"$gt" if q.op == "larger" else "$lt": q.octets}}
        return exact, exact
    if isinstance(q, Date):
        if q.field == "saved":
            return None, None  # decided by the domain from the rows
        if q.field == "internal":
            return _date(q)
        exact = {"sent_day": {_SENT_OPS[q.op]: q.day.toordinal()}}  # a message without a sent day matches none
        return exact, exact
    if isinstance(q, Header) and q.name in SEARCH_FIELDS and not q.plain:
        return _header(q)
    if isinstance(q, Instant):
        if q.op == "before":
            return {"idate": {"$lte": q.when + _EPSILON}}, {"idate": {"$lte": q.when - _EPSILON}}
        return {"idate": {"$gte": q.when - _EPSILON}}, {"idate": {"$gte": q.when + _EPSILON}}
    return None, None  # Recent, other headers: decided by the domain


class SearchRole(MongoBase):
    """``SearchIndex``: candidates narrowed by a filter, text by an escaped regular expression."""

    def _uids_where(self, mailbox_id: str, where: Filter) -> list[int]:
        return [d["uid"] for d in self.db.messages.find({"$and": [{"mailbox": mailbox_id}, where]},
                                                        {"_id": 0, "uid": 1})]

    async def candidates(self, mailbox_id: str, query: Query) -> frozenset[int] | None:
        """A superset of the matching UIDs from one query (None when nothing in the query narrows); ``Decided``
        when the lower bound is the upper one."""
        upper, lower = bounds(query)
        if upper is None:
            return None
        found = await self._read(lambda: self._uids_where(mailbox_id, upper))
        return Decided(found) if lower == upper else frozenset(found)

    async def text_search(self, mailbox_id: str, needle: str, *, headers_too: bool) -> frozenset[int]:
        return frozenset(await self._read(lambda: self._uids_where(mailbox_id, _text(Text(needle, headers_too)))))

    async def search_rows(self, mailbox_id: str, *, with_header: bool = True,
                          uids: Sequence[int] | None = None) -> list[SearchRow]:
        fields = {"uid": 1, "flags": 1, "modseq": 1, "idate": 1, "size": 1, "hdate": 1, "saved": 1, "email": 1,
                  "thread": 1}
        if with_header:
            fields.update(skel=1, skz=1, tree=1)
        query: Filter = {"mailbox": mailbox_id}
        if uids is not None:
            query["uid"] = {"$in": sorted(set(uids))}
        return await self._read(lambda: [codec.search_row(d, with_header) for d in self.db.messages.find(
            query, fields, sort=[("uid", ASCENDING)])])
