"""SEARCH evaluation over stored messages (RFC 3501 6.4.4, CONDSTORE MODSEQ, WITHIN OLDER/YOUNGER).

BODY and TEXT are case-insensitive substring matches over the decoded text, answered by the store's text index
before evaluation (``text_queries`` lists them, ``Context.text_hits`` holds the answers); header keys match decoded
header values by substring, case-insensitively.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from wildduck.domain.models import SearchRow
from wildduck.protocols.imap.grammar import SearchKey, SequenceSet
from wildduck.protocols.mime import headers
from wildduck.protocols.mime.text import header_text

__all__ = ["Context", "candidates", "header_text", "matches", "needs_header", "needs_store", "search", "text_queries"]

#: keys that read the top-level header block
_HEADER_KEYS = frozenset({"FROM", "TO", "CC", "BCC", "SUBJECT", "HEADER", "SENTBEFORE", "SENTON", "SENTSINCE"})


@dataclass(frozen=True, slots=True)
class Context:
    now: dt.datetime
    #: highest sequence number and UID in the mailbox (for "*")
    max_seq: int
    max_uid: int
    #: UIDs that are \\Recent in this session
    recent: frozenset[int] = frozenset()
    #: (BODY or TEXT, needle) -> UIDs that match, from the store's text index
    text_hits: Mapping[tuple[str, bytes], frozenset[int]] = field(default_factory=dict)


def _walk(key: SearchKey) -> list[SearchKey]:
    out = [key]
    for arg in key.args:
        if isinstance(arg, SearchKey):
            out.extend(_walk(arg))
    return out


def text_queries(key: SearchKey) -> list[tuple[str, bytes]]:
    """The (BODY or TEXT, needle) pairs in ``key``, each once, for the text index to answer."""
    return list(dict.fromkeys((k.op, k.args[0]) for k in _walk(key) if k.op in ("BODY", "TEXT")))


#: keys a selected session can answer from what it keeps in memory (flags, MODSEQs, sequence numbers, UIDs)
_MEMORY_KEYS = frozenset({"AND", "OR", "NOT", "ALL", "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "SEEN", "UNANSWERED",
                          "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN", "RECENT", "NEW", "OLD", "KEYWORD",
                          "UNKEYWORD", "SEQ", "UID", "MODSEQ"})


def needs_store(key: SearchKey) -> bool:
    """Whether ``key`` reads anything a session does not keep in memory (dates, sizes, headers, text)."""
    return any(k.op not in _MEMORY_KEYS for k in _walk(key))


def needs_header(key: SearchKey) -> bool:
    """Whether evaluating ``key`` reads the header block."""
    return any(k.op in _HEADER_KEYS for k in _walk(key))


def _header_values(row: SearchRow, name: str) -> list[str]:
    fields = headers.fields(row.header)
    return [headers.decode_words(v) for k, v in fields if k == name.lower()]


def _has(row: SearchRow, flag: str) -> bool:
    return flag in row.flags


def _sent_date(row: SearchRow) -> dt.date | None:
    """The Date header's calendar date in the sender's own time zone (RFC 3501 SENT* keys)."""
    parsed = headers.parse_date(headers.get(headers.fields(row.header), "date"))
    return parsed.date() if parsed else None


def _address_values(row: SearchRow, name: str) -> list[str]:
    """Decoded header values plus each address as ``name <mailbox@host>`` (comments and spacing normalized)."""
    out = []
    for key, value in headers.fields(row.header):
        if key != name:
            continue
        out.append(headers.decode_words(value))
        for a in headers.parse_addresses(value):
            if a.mailbox is None:
                continue
            addr = a.mailbox.decode("utf-8", "replace") + ("@" + a.host.decode("utf-8", "replace") if a.host else "")
            display = headers.decode_words(a.name) if a.name else ""
            out.append(f"{display} <{addr}>" if display else addr)
    return out


def _contains(haystacks: Sequence[str], needle: bytes) -> bool:
    text = needle.decode("utf-8", "replace").casefold()
    return any(text in h.casefold() for h in haystacks)


def matches(key: SearchKey, row: SearchRow, seq: int, ctx: Context) -> bool:
    """Whether the message (``row`` at sequence number ``seq``) satisfies ``key``."""
    op, args = key.op, key.args
    if op == "AND":
        return all(matches(k, row, seq, ctx) for k in args)
    if op == "OR":
        return matches(args[0], row, seq, ctx) or matches(args[1], row, seq, ctx)
    if op == "NOT":
        return not matches(args[0], row, seq, ctx)
    if op == "ALL":
        return True
    flag_ops = {"ANSWERED": "\\Answered", "DELETED": "\\Deleted", "DRAFT": "\\Draft", "FLAGGED": "\\Flagged",
                "SEEN": "\\Seen"}
    if op in flag_ops:
        return _has(row, flag_ops[op])
    if op.startswith("UN") and op[2:] in flag_ops:
        return not _has(row, flag_ops[op[2:]])
    if op == "RECENT":
        return row.uid in ctx.recent
    if op == "NEW":
        return row.uid in ctx.recent and not _has(row, "\\Seen")
    if op == "OLD":
        return row.uid not in ctx.recent
    if op in ("KEYWORD", "UNKEYWORD"):
        keyword: str = args[0]
        return _has(row, keyword) == (op == "KEYWORD")
    if op == "SEQ":
        seqset: SequenceSet = args[0]
        return seqset.contains(seq, ctx.max_seq)
    if op == "UID":
        uidset: SequenceSet = args[0]
        return uidset.contains(row.uid, ctx.max_uid)
    if op in ("LARGER", "SMALLER", "MODSEQ", "OLDER", "YOUNGER"):
        n: int = args[0]
        if op == "LARGER":
            return row.size > n
        if op == "SMALLER":
            return row.size < n
        if op == "MODSEQ":
            return row.modseq >= n
        cutoff = ctx.now - dt.timedelta(seconds=n)
        return row.internal_date <= cutoff if op == "OLDER" else row.internal_date >= cutoff
    if op in ("BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"):
        when: dt.date = args[0]
        day = row.internal_date.date() if not op.startswith("SENT") else _sent_date(row)
        if day is None:
            return False
        kind = op.removeprefix("SENT")
        return day < when if kind == "BEFORE" else day == when if kind == "ON" else day >= when
    if op in ("FROM", "TO", "CC", "BCC"):
        return _contains(_address_values(row, op.lower()), args[0])
    if op == "SUBJECT":
        return _contains(_header_values(row, op), args[0])
    if op == "HEADER":
        name: str = args[0]
        needle: bytes = args[1]
        values = _header_values(row, name)
        return bool(values) and (not needle or _contains(values, needle))
    if op in ("BODY", "TEXT"):
        return row.uid in ctx.text_hits[(op, args[0])]
    raise ValueError(f"unknown search key {op}")


def candidates(key: SearchKey, hits: Mapping[tuple[str, bytes], frozenset[int]]) -> frozenset[int] | None:
    """UIDs outside of which ``key`` cannot match, known from the text index alone (None: any message may)."""
    if key.op in ("BODY", "TEXT"):
        return hits[(key.op, key.args[0])]
    if key.op == "AND":
        known = [c for c in (candidates(k, hits) for k in key.args) if c is not None]
        return frozenset.intersection(*known) if known else None
    if key.op == "OR":
        left, right = candidates(key.args[0], hits), candidates(key.args[1], hits)
        return None if left is None or right is None else left | right
    return None


def search(rows: Sequence[tuple[int, SearchRow]], key: SearchKey, ctx: Context) -> list[tuple[int, SearchRow]]:
    """The (sequence number, row) pairs that match, in the order given."""
    return [(seq, row) for seq, row in rows if matches(key, row, seq, ctx)]
