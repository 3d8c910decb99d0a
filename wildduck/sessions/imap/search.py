"""IMAP SEARCH keys compiled into the domain's query (sequence numbers become UID ranges of the session's view)."""

from __future__ import annotations

import datetime as dt

from wildduck.domain.sync import MailboxView
from wildduck.model import search as q
from wildduck.protocols.imap import grammar as g

_FLAG_KEYS = {"ANSWERED": "\\Answered", "DELETED": "\\Deleted", "DRAFT": "\\Draft", "FLAGGED": "\\Flagged",
              "SEEN": "\\Seen"}
_DATE_OPS = {"BEFORE": "before", "ON": "on", "SINCE": "since"}
_STRING_HEADERS = {"FROM": "from", "TO": "to", "CC": "cc", "BCC": "bcc", "SUBJECT": "subject"}


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _seq_ranges(view: MailboxView, seqset: g.SequenceSet) -> q.Uids:
    uids = view.uids
    if not uids:
        return q.Uids(())
    ranges = []
    for lo, hi in seqset.resolve(len(uids)):
        lo, hi = max(lo, 1), min(hi, len(uids))
        if lo <= hi:
            ranges.append((uids[lo - 1], uids[hi - 1]))
    return q.Uids.of(ranges)


def compile_key(key: g.SearchKey, view: MailboxView, now: dt.datetime, *,
                saved: g.SequenceSet | None = None) -> q.Query:
    """The query for one IMAP search key, in the view of ``view`` at ``now`` (for WITHIN); ``saved`` is what ``$``
    stands for (RFC 5182: UIDs, as a message set or a UID set alike)."""
    op, args = key.op, key.args
    if op == "AND":  # one key alone is itself (``SEARCH ALL`` is ``All``, which the search service answers at once)
        terms = tuple(compile_key(k, view, now, saved=saved) for k in args)
        return terms[0] if len(terms) == 1 else q.And(terms)
    if op == "OR":
        return q.Or((compile_key(args[0], view, now, saved=saved), compile_key(args[1], view, now, saved=saved)))
    if op == "NOT":
        return q.Not(compile_key(args[0], view, now, saved=saved))
    if op in ("SEQ", "UID") and args[0].last_result:
        return q.Uids(saved.normalized if saved is not None else ())
    if op in ("ALL", "SAVEDATESUPPORTED"):  # RFC 8514 4.3: every mailbox here keeps save dates
        return q.All()
    if op in ("EMAILID", "THREADID"):  # RFC 8474 6
        return q.ObjectId("email" if op == "EMAILID" else "thread", args[0])
    if op in _FLAG_KEYS:
        return q.Flag(_FLAG_KEYS[op])
    if op.startswith("UN") and op[2:] in _FLAG_KEYS:
        return q.Not(q.Flag(_FLAG_KEYS[op[2:]]))
    if op == "KEYWORD":
        return q.Flag(args[0])
    if op == "UNKEYWORD":
        return q.Not(q.Flag(args[0]))
    if op == "RECENT":
        return q.Recent()
    if op == "NEW":
        return q.And((q.Recent(), q.Not(q.Flag("\\Seen"))))
    if op == "OLD":
        return q.Not(q.Recent())
    if op == "SEQ":
        return _seq_ranges(view, args[0])
    if op == "UID":
        largest = view.uids[-1] if view.uids else 0
        return q.Uids.of(args[0].resolve(largest)) if largest else q.Uids(())
    if op == "LARGER":
        return q.Size("larger", args[0])
    if op == "SMALLER":
        return q.Size("smaller", args[0])
    if op == "MODSEQ":
        return q.ModSeq(args[0])
    if op in ("OLDER", "YOUNGER"):
        cutoff = now - dt.timedelta(seconds=args[0])
        return q.Instant("before" if op == "OLDER" else "since", cutoff)
    if op in _DATE_OPS:
        return q.Date("internal", _DATE_OPS[op], args[0])  # type: ignore[arg-type]
    if op.startswith("SENT") and op[4:] in _DATE_OPS:
        return q.Date("sent", _DATE_OPS[op[4:]], args[0])  # type: ignore[arg-type]
    if op.startswith("SAVED") and op[5:] in _DATE_OPS:
        return q.Date("saved", _DATE_OPS[op[5:]], args[0])  # type: ignore[arg-type]
    if op in _STRING_HEADERS:
        return q.Header(_STRING_HEADERS[op], _text(args[0]))
    if op == "HEADER":
        return q.Header(str(args[0]).lower(), _text(args[1]), plain=True)
    if op in ("BODY", "TEXT"):
        return q.Text(_text(args[0]), op == "TEXT")
    raise ValueError(f"unknown search key {op}")


def uses_modseq(key: g.SearchKey) -> bool:
    return key.op == "MODSEQ" or any(isinstance(a, g.SearchKey) and uses_modseq(a) for a in key.args)
