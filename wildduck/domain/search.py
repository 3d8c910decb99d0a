"""Search: the planner and the exact evaluation of a :mod:`wildduck.model.search` query over a mailbox.

A query is answered from the cheapest source that can: the session's memory (flags, UIDs, MODSEQs, \\Recent), the
``SearchIndex``'s candidates (text through the full-text index; flags, dates, sizes and header keys where the engine
can; when it decided every term, a ``Decided`` set is the answer), and last the stored rows of the remaining
candidates, which are checked exactly here. Text terms match case-insensitively substrings of the decoded text;
header terms match decoded header values by substring (both as Dovecot does: ``protocols.mime.searchable``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from wildduck.model import SearchRow
from wildduck.model import search as q
from wildduck.ports import SearchIndex
from wildduck.protocols.mime import headers, searchable

#: the query nodes a session can answer from what it keeps in memory
_MEMORY = (q.All, q.And, q.Or, q.Not, q.Flag, q.Recent, q.Uids, q.ModSeq)


@dataclass(frozen=True, slots=True)
class Context:
    """What evaluation needs besides the row: the session's \\Recent set and the text index's exact answers."""

    recent: frozenset[int] = frozenset()
    #: (needle, headers_too) -> UIDs that match
    text_hits: Mapping[tuple[str, bool], frozenset[int]] | None = None


def in_memory(query: q.Query) -> bool:
    """Whether ``query`` reads nothing but flags, UIDs, MODSEQs and \\Recent."""
    return all(isinstance(node, _MEMORY) for node in q.walk(query))


def needs_header(query: q.Query) -> bool:
    """Whether evaluating ``query`` reads the top-level header block."""
    return any(isinstance(node, q.Header) or (isinstance(node, q.Date) and node.field == "sent")
               for node in q.walk(query))


def text_terms(query: q.Query) -> list[q.Text]:
    """The text terms of ``query``, each once."""
    return list(dict.fromkeys(node for node in q.walk(query) if isinstance(node, q.Text)))


def _has(row: SearchRow, flag: str) -> bool:
    return flag in row.flags


def _contains(haystacks: Sequence[str], needle: str) -> bool:
    text = searchable.fold(needle)
    return any(text in searchable.fold(h) for h in haystacks)


def _compare(day: dt.date, op: str, when: dt.date) -> bool:
    return day < when if op == "before" else day == when if op == "on" else day >= when


def matches(query: q.Query, row: SearchRow, ctx: Context) -> bool:
    """Whether the message ``row`` satisfies ``query`` exactly."""
    if isinstance(query, q.All):
        return True
    if isinstance(query, q.And):
        return all(matches(t, row, ctx) for t in query.terms)
    if isinstance(query, q.Or):
        return any(matches(t, row, ctx) for t in query.terms)
    if isinstance(query, q.Not):
        return not matches(query.term, row, ctx)
    if isinstance(query, q.Flag):
        return query.name in row.flags
    if isinstance(query, q.Recent):
        return row.uid in ctx.recent
    if isinstance(query, q.Uids):
        return row.uid in query
    if isinstance(query, q.ModSeq):
        return row.modseq >= query.at_least
    if isinstance(query, q.Size):
        return row.size > query.octets if query.op == "larger" else row.size < query.octets
    if isinstance(query, q.Instant):
        return row.internal_date <= query.when if query.op == "before" else row.internal_date >= query.when
    if isinstance(query, q.ObjectId):
        return (row.email_id if query.kind == "email" else row.thread_id) == query.value
    if isinstance(query, q.Date):
        if query.field == "internal":
            day: dt.date | None = row.internal_date.date()
        elif query.field == "saved":
            day = (row.saved or row.internal_date).date()
        else:
            day = searchable.sent_date(headers.fields(row.header))
        return day is not None and _compare(day, query.op, query.day)
    if isinstance(query, q.Header):  # an empty needle matches any copy of the field: only its presence counts
        return _contains(searchable.values(headers.fields(row.header), query.name, plain=query.plain), query.needle)
    if isinstance(query, q.Text):
        assert ctx.text_hits is not None, "text terms need the index's answers"
        return row.uid in ctx.text_hits[(query.needle, query.headers_too)]
    raise TypeError(f"unknown query node {query!r}")


def _text_candidates(query: q.Query, hits: Mapping[tuple[str, bool], frozenset[int]]) -> frozenset[int] | None:
    """UIDs outside of which ``query`` cannot match, from the text hits alone (None: any message may)."""
    if isinstance(query, q.Text):
        return hits[(query.needle, query.headers_too)]
    if isinstance(query, q.And):
        known = [c for c in (_text_candidates(t, hits) for t in query.terms) if c is not None]
        return frozenset.intersection(*known) if known else None
    if isinstance(query, q.Or):
        parts = [_text_candidates(t, hits) for t in query.terms]
        return None if any(p is None for p in parts) else frozenset().union(*(p for p in parts if p is not None))
    return None


@dataclass(frozen=True, slots=True)
class Found:
    """A matching message: its UID and MODSEQ."""

    uid: int
    modseq: int


class SearchService:
    """Plans and runs searches over one mailbox for a session that knows ``uids`` (ascending)."""

    def __init__(self, index: SearchIndex) -> None:
        self.index = index

    async def search(self, mailbox_id: str, query: q.Query, *, uids: Sequence[int],
                     flags: Mapping[int, tuple[str, ...]], modseqs: Mapping[int, int],
                     recent: frozenset[int]) -> list[Found]:
        """The messages among ``uids`` that match ``query``, ascending by UID. ``flags`` and ``modseqs`` are the
        session's memory of them (answers flag-only queries without the store)."""
        epoch = dt.datetime.fromtimestamp(0, dt.UTC)
        if in_memory(query):
            ctx = Context(recent)
            rows = [SearchRow(u, flags.get(u, ()), modseqs.get(u, 0), epoch, 0, None, b"") for u in uids]
            return [Found(r.uid, r.modseq) for r in rows if matches(query, r, ctx)]
        hits: dict[tuple[str, bool], frozenset[int]] = {}
        for term in text_terms(query):
            hits[(term.needle, term.headers_too)] = await self.index.text_search(
                mailbox_id, term.needle, headers_too=term.headers_too)
        only = _text_candidates(query, hits) if hits else await self.index.candidates(mailbox_id, query)
        known = set(uids)
        if isinstance(only, q.Decided):  # the index decided every term: its answer is the result
            return [Found(u, modseqs.get(u, 0)) for u in sorted(only & known)]
        wanted = None if only is None else sorted(only & known)
        rows = await self.index.search_rows(mailbox_id, with_header=needs_header(query), uids=wanted)
        ctx = Context(recent, hits)
        return [Found(r.uid, r.modseq) for r in rows if r.uid in known and matches(query, r, ctx)]

    async def search_stored(self, mailbox_id: str, query: q.Query) -> list[int]:
        """The UIDs (ascending) of the mailbox's messages that match ``query``, answered from the index and the
        stored rows alone, for a caller without a session (the API's search): flags come from the rows, and
        ``Recent`` matches nothing. The index narrows first (text hits, ``SearchIndex.candidates``); only the
        candidates' rows are read."""
        hits: dict[tuple[str, bool], frozenset[int]] = {}
        for term in text_terms(query):
            hits[(term.needle, term.headers_too)] = await self.index.text_search(
                mailbox_id, term.needle, headers_too=term.headers_too)
        only = _text_candidates(query, hits) if hits else None
        if only is None:
            only = await self.index.candidates(mailbox_id, query)
        if isinstance(only, q.Decided):
            return sorted(only)
        if only is not None and not only:
            return []
        rows = await self.index.search_rows(mailbox_id, with_header=needs_header(query),
                                            uids=None if only is None else sorted(only))
        ctx = Context(frozenset(), hits)
        return [r.uid for r in rows if matches(query, r, ctx)]
