"""The protocol-neutral search query: what IMAP SEARCH, POP3-less clients and the API's message search compile
into, what the domain evaluates exactly, and what a ``SearchIndex`` may push down to its engine.

Sequence numbers are a session's view, so they never appear here: IMAP turns them into UID ranges first.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class All:
    """Every message."""


@dataclass(frozen=True, slots=True)
class And:
    terms: tuple[Query, ...]


@dataclass(frozen=True, slots=True)
class Or:
    terms: tuple[Query, ...]


@dataclass(frozen=True, slots=True)
class Not:
    term: Query


@dataclass(frozen=True, slots=True)
class Flag:
    """The message has this flag (a system flag such as ``\\Seen``, or a keyword)."""

    name: str


@dataclass(frozen=True, slots=True)
class Recent:
    """The message is \\Recent in the searching session (evaluated against the session's own set)."""


@dataclass(frozen=True, slots=True)
class Header:
    """A top-level header field ``name`` (lower-case) whose decoded value contains ``needle`` ignoring case; an
    empty needle only asks that the field exists. As a header key (IMAP's FROM, TO, CC, BCC, SUBJECT) an address
    field is matched in its normalized form (each address ``Display Name <mailbox@host>``) and the subject with its
    white space compressed; with ``plain`` (IMAP's ``HEADER name value``) every field is matched as written
    (``protocols.mime.searchable.values``)."""

    name: str
    needle: str
    plain: bool = False


@dataclass(frozen=True, slots=True)
class Text:
    """The decoded body text (and with ``headers_too`` the decoded top-level header) contains ``needle``, ignoring
    case."""

    needle: str
    headers_too: bool


@dataclass(frozen=True, slots=True)
class Date:
    """The internal date (``field="internal"``), the Date header's own calendar date (``"sent"``) or the save date
    (``"saved"``, RFC 8514) is before, on or since ``day``."""

    field: Literal["internal", "sent", "saved"]
    op: Literal["before", "on", "since"]
    day: dt.date


@dataclass(frozen=True, slots=True)
class Instant:
    """The internal date is at or before (``"before"``) or at or after (``"since"``) ``when`` (WITHIN)."""

    op: Literal["before", "since"]
    when: dt.datetime


@dataclass(frozen=True, slots=True)
class Size:
    """RFC822.SIZE is larger or smaller than ``octets``."""

    op: Literal["larger", "smaller"]
    octets: int


@dataclass(frozen=True, slots=True)
class Uids:
    """The UID is in one of these inclusive ranges (ascending, merged)."""

    ranges: tuple[tuple[int, int], ...]

    def __contains__(self, uid: object) -> bool:
        from bisect import bisect_right

        if not isinstance(uid, int):
            return False
        i = bisect_right(self.ranges, (uid, 0xFFFFFFFFFFFF)) - 1
        return i >= 0 and self.ranges[i][0] <= uid <= self.ranges[i][1]

    @classmethod
    def of(cls, ranges: list[tuple[int, int]]) -> Uids:
        """Sorted, merged ranges from any list of inclusive (lo, hi) pairs."""
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted((min(a, b), max(a, b)) for a, b in ranges):
            if merged and lo <= merged[-1][1] + 1:
                if hi > merged[-1][1]:
                    merged[-1] = (merged[-1][0], hi)
            else:
                merged.append((lo, hi))
        return cls(tuple(merged))


@dataclass(frozen=True, slots=True)
class ObjectId:
    """The message's EMAILID (``kind="email"``) or THREADID (``"thread"``) is ``value`` (RFC 8474 6)."""

    kind: Literal["email", "thread"]
    value: str


@dataclass(frozen=True, slots=True)
class ModSeq:
    """The message's MODSEQ is at least ``at_least`` (CONDSTORE)."""

    at_least: int


Query = All | And | Or | Not | Flag | Recent | Header | Text | Date | Instant | Size | Uids | ModSeq | ObjectId


class Decided(frozenset[int]):
    """Candidates (``SearchIndex.candidates``) that are exactly the matching UIDs: the engine decided every term of
    the query, so the domain checks nothing more (no row is read: a SENT* or FROM key that matches thousands of
    messages would otherwise parse thousands of headers again). An engine returns it only where its answer is
    exact by construction; a plain frozenset is a superset that the domain evaluates."""

    __slots__ = ()


def walk(query: Query) -> list[Query]:
    """Every node of the query, depth first (the root first)."""
    out: list[Query] = []
    stack: list[Query] = [query]
    while stack:
        node = stack.pop()
        out.append(node)
        if isinstance(node, (And, Or)):
            stack.extend(reversed(node.terms))
        elif isinstance(node, Not):
            stack.append(node.term)
    return out
