"""The ``SearchIndex`` role: narrows a search to candidates that the domain then checks exactly.

The index may lag the message commit (a message it has not indexed yet must still be found: an adapter whose index
lags returns None, or includes unindexed messages among the candidates). The SQLite adapter indexes in the same
transaction as the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from wildduck.model import SearchRow
from wildduck.model.search import Query


class SearchIndex(Protocol):
    async def candidates(self, mailbox_id: str, query: Query) -> frozenset[int] | None:
        """A superset of the UIDs of ``mailbox_id`` that match ``query``, using whatever the engine can evaluate
        (text through its index; flags, dates, sizes, UIDs, MODSEQs and headers where it can), or None when it
        cannot narrow at all. Must never leave out a matching message. A ``Decided`` set (a frozenset) says the
        engine evaluated every term of the query: it is exactly the matches, and no row is read."""
        ...

    async def text_search(self, mailbox_id: str, needle: str, *, headers_too: bool) -> frozenset[int]:
        """UIDs whose decoded body text (and, with ``headers_too``, decoded top-level header) contains
        ``needle``, ignoring case (Unicode simple case folding). Exact, served by an index."""
        ...

    async def search_rows(self, mailbox_id: str, *, with_header: bool = True,
                          uids: Sequence[int] | None = None) -> list[SearchRow]:
        """Per message (all, or those of ``uids``): what the domain evaluates (flags, dates, size and, with
        ``with_header``, the top-level header block), in UID order."""
        ...
