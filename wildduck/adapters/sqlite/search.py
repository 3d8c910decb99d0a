"""The ``SearchIndex`` role on SQLite: text through the FTS5 trigram index, and search queries narrowed in SQL.

``candidates`` compiles a query into two SQL predicates over a ``messages`` row ``m``: an upper bound (every
matching message satisfies it) and a lower bound (every message satisfying it matches). ``Not`` swaps them, which
is why a term that SQL decides exactly (flags, UIDs, sizes, MODSEQs, text, sent dates, header keys on the fields
kept in columns) narrows under ``Not`` too, and a term it only bounds from above (a flag's LIKE) still narrows where
it stands alone. Terms SQL cannot decide (other header fields, \\Recent) bound nothing: they are ignored inside
``And`` and make ``Or`` give up. A column that may be NULL is tested with ``IS NOT NULL AND`` first: its predicate
is then false, never NULL, for a message without the field, so that ``NOT`` turns it true as the evaluator does.
Where the two bounds are one predicate, SQL decided the query: the candidates are ``Decided``, the answer itself.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from typing import Any

import wildduck.adapters.sqlite.codec as codec
from wildduck.adapters._codec import search_fold
from wildduck.adapters.sqlite.base import StoreBase
from wildduck.adapters.sqlite.queries import select_in
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

#: UID ranges above this many are bounded by their span only (one comparison instead of thousands of ORs)
_MAX_RANGES = 64
#: slack around date bounds: internal dates compared in any time zone (UTC-12 to UTC+14) stay inside
_DAY = 86400.0
#: slack around instants: a stored timestamp is a float
_EPSILON = 0.001


#: an SQL predicate (or query) and its arguments
_Sql = tuple[str, list[Any]]


def _text_uids(mailbox_id: str, needle: str, headers_too: bool) -> _Sql:
    """A ``SELECT uid`` of the mailbox's messages whose folded body (and with ``headers_too`` header) text
    contains ``needle`` folded (``search_fold``: every stored message is indexed so since schema v15).

    Needles of three or more characters are ``LIKE`` patterns the trigram index answers, the index driving the join
    (CROSS JOIN keeps that order: a rare needle touches only its few candidates). Shorter ones, and ones with ``%``
    or ``_`` (LIKE's wildcards), are matched with ``instr`` against the indexed text of this mailbox only."""
    folded = search_fold(needle)
    if len(folded) >= 3 and not any(c in folded for c in "%_"):
        one = ("SELECT m.uid FROM message_text AS t CROSS JOIN messages AS m ON m.text_id = t.rowid "
               "WHERE t.{} LIKE ? AND m.mailbox_id = ?")
        args: list[Any] = [f"%{folded}%", mailbox_id]
        if headers_too:
            return f"{one.format('body')} UNION {one.format('head')}", args * 2
        return one.format("body"), args
    return ("SELECT m.uid FROM messages m JOIN message_text t ON t.rowid = m.text_id "
            "WHERE (instr(t.body, ?) > 0 OR (? AND instr(t.head, ?) > 0)) AND m.mailbox_id = ?",
            [folded, int(headers_too), folded, mailbox_id])


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _day_start(day: dt.date, shift: int = 0) -> float:
    return dt.datetime.combine(day, dt.time(), dt.UTC).timestamp() + shift * _DAY


def _date(q: Date) -> tuple[_Sql | None, _Sql | None]:
    """Internal-date bounds, a day wider (upper) and a day narrower (lower) than the UTC calendar day."""
    if q.op == "before":
        return ("m.internal_date < ?", [_day_start(q.day, 1)]), ("m.internal_date < ?", [_day_start(q.day, -1)])
    if q.op == "since":
        return ("m.internal_date >= ?", [_day_start(q.day, -1)]), ("m.internal_date >= ?", [_day_start(q.day, 1)])
    return ("m.internal_date >= ? AND m.internal_date < ?", [_day_start(q.day, -1), _day_start(q.day, 2)]), None


_SENT_OPS = {"before": "<", "on": "=", "since": ">="}


def _sent(q: Date) -> _Sql:
    """The sent day column against the day asked for: exact (the column is the evaluator's own sent date; a message
    without a parseable Date header matches no SENT* key)."""
    return f"m.sent_day IS NOT NULL AND m.sent_day {_SENT_OPS[q.op]} ?", [q.day.toordinal()]


def _header(q: Header) -> tuple[_Sql | None, _Sql | None]:
    """A header key on a column: its values contain the case-folded needle (``instr``: no wildcards to escape).
    The column joins the values with a separator, so a needle holding the separator may match across two of them:
    an upper bound only."""
    column = f"m.search_{q.name}"
    if not q.needle:
        exact: _Sql = (f"{column} IS NOT NULL", [])
        return exact, exact
    needle = search_fold(q.needle)
    upper = (f"{column} IS NOT NULL AND instr({column}, ?) > 0", [needle])
    return upper, (upper if codec.SEARCH_SEPARATOR not in needle else None)


def _uids(q: Uids) -> tuple[_Sql, _Sql | None]:
    if not q.ranges:
        return ("0", []), ("0", [])
    if len(q.ranges) > _MAX_RANGES:
        return ("m.uid BETWEEN ? AND ?", [q.ranges[0][0], q.ranges[-1][1]]), None
    exact = (" OR ".join(["m.uid BETWEEN ? AND ?"] * len(q.ranges)), [n for r in q.ranges for n in r])
    return exact, exact


def _bounds(q: Query, mailbox_id: str) -> tuple[_Sql | None, _Sql | None]:
    """(upper, lower) predicates of ``q``: upper None means "any message may match", lower None "none is known
    to"."""
    if isinstance(q, All):
        return None, ("1", [])
    if isinstance(q, And | Or):
        parts = [_bounds(t, mailbox_id) for t in q.terms]
        uppers = [u for u, _ in parts if u is not None]
        lowers = [lo for _, lo in parts if lo is not None]
        if isinstance(q, And):  # bounded above by any term, below only if every term is
            return (_join("AND", uppers) if uppers else None,
                    _join("AND", lowers) if len(lowers) == len(parts) else None)
        return (_join("OR", uppers) if len(uppers) == len(parts) else None,
                _join("OR", lowers) if lowers else None)
    if isinstance(q, Not):
        upper, lower = _bounds(q.term, mailbox_id)
        return (("NOT (" + lower[0] + ")", lower[1]) if lower is not None else None,
                ("NOT (" + upper[0] + ")", upper[1]) if upper is not None else None)
    if isinstance(q, Flag):
        # a LIKE on the quoted JSON string bounds from above (it ignores ASCII case, as IMAP may); json_each is exact
        like = ("m.flags LIKE ? ESCAPE '\\'", [f"%{_like_escape(codec.to_json(q.name))}%"])
        return like, ("EXISTS (SELECT 1 FROM json_each(m.flags) WHERE value = ?)", [q.name])
    if isinstance(q, Text):
        sql, args = _text_uids(mailbox_id, q.needle, q.headers_too)
        exact = (f"m.uid IN ({sql})", args)
        return exact, exact
    if isinstance(q, Uids):
        return _uids(q)
    if isinstance(q, ModSeq):
        exact = ("m.modseq >= ?", [q.at_least])
        return exact, exact
    if isinstance(q, Size):
        exact = ("m.size > ?" if q.op == "larger" else "m.size < ?", [q.octets])
        return exact, exact
    if isinstance(q, Date):
        if q.field == "saved":
            return None, None  # decided by the domain from the rows
        if q.field == "internal":
            return _date(q)
        exact = _sent(q)
        return exact, exact
    if isinstance(q, Header) and q.name in codec.SEARCH_FIELDS and not q.plain:
        return _header(q)
    if isinstance(q, Instant):
        when = codec.ts(q.when)
        if q.op == "before":
            return ("m.internal_date <= ?", [when + _EPSILON]), ("m.internal_date <= ?", [when - _EPSILON])
        return ("m.internal_date >= ?", [when - _EPSILON]), ("m.internal_date >= ?", [when + _EPSILON])
    return None, None  # Recent, other headers: decided by the domain


def _join(op: str, parts: list[_Sql]) -> _Sql:
    if not parts:
        return ("1", []) if op == "AND" else ("0", [])
    return f" {op} ".join(f"({sql})" for sql, _ in parts), [a for _, args in parts for a in args]


class SearchRole(StoreBase):
    """``SearchIndex``: the trigram text index and candidates narrowed in SQL."""

    async def candidates(self, mailbox_id: str, query: Query) -> frozenset[int] | None:
        """A superset of the matching UIDs, from one SQL statement (None when nothing in the query narrows); a
        ``Decided`` set, the matches exactly, when the lower bound is the upper one (every term decided in SQL)."""
        upper, lower = _bounds(query, mailbox_id)
        if upper is None:
            return None
        sql = f"SELECT m.uid FROM messages m WHERE m.mailbox_id = ? AND ({upper[0]})"
        args = [mailbox_id, *upper[1]]
        found = await self._read(lambda conn: [r[0] for r in conn.execute(sql, args)])
        return Decided(found) if lower == upper else frozenset(found)

    async def text_search(self, mailbox_id: str, needle: str, *, headers_too: bool) -> frozenset[int]:
        """UIDs whose body text (and, with ``headers_too``, top-level header) contains ``needle``, ignoring case.
        The index holds case-folded text (see ``_text_uids`` for how it is queried)."""
        sql, args = _text_uids(mailbox_id, needle, headers_too)
        return frozenset(await self._read(lambda conn: [r[0] for r in conn.execute(sql, args)]))

    async def search_rows(self, mailbox_id: str, *, with_header: bool = True,
                          uids: Sequence[int] | None = None) -> list[SearchRow]:
        columns = "uid, flags, modseq, internal_date, size, header_date, saved, id, email_id, thread_id"
        if with_header:
            columns += ", skeleton, skeleton_compressed, mime_tree"
        sql = f"SELECT {columns} FROM messages WHERE mailbox_id = ?"

        def row(r: sqlite3.Row) -> SearchRow:
            return SearchRow(uid=r["uid"], flags=codec.flags_load(r["flags"]), modseq=r["modseq"],
                             internal_date=codec.from_ts(r["internal_date"]), size=r["size"],
                             header_date=codec.maybe_ts(r["header_date"]),
                             header=codec.stored_header(r["skeleton"], r["skeleton_compressed"], r["mime_tree"])
                             if with_header else b"", saved=codec.maybe_ts(r["saved"]),
                             email_id=r["email_id"] or r["id"], thread_id=r["thread_id"] or r["id"])

        def q(conn: sqlite3.Connection) -> list[SearchRow]:
            if uids is None:
                return [row(r) for r in conn.execute(sql + " ORDER BY uid", (mailbox_id,))]
            return [row(r) for r in select_in(conn, sql + " AND uid IN ({in}) ORDER BY uid", sorted(set(uids)),
                                              (mailbox_id,))]

        return await self._read(q)
