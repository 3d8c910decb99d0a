"""Cursor paging done by the store: one page of a listing costs a page (and two one-item probes), not the whole
collection. The answer has WildDuck's listing shape, like :func:`wildduck.api.schemas.page_of` (which pages a
list already in memory): ``total``, ``page``, ``previousCursor`` and ``nextCursor`` (false at either end) and
``results``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from wildduck.api.schemas import encode_cursor
from wildduck.model import Listing

T = TypeVar("T")


async def keyset_page(params: Mapping[str, Any], base: Listing, fetch: Callable[[Listing], Awaitable[list[T]]],
                      key_of: Callable[[T], str], total: int) -> dict[str, Any]:
    """The page ``params`` (``limit``, ``next`` / ``previous`` cursors, ``page``) asks for of what ``fetch``
    lists with ``base``'s filters (in the store's listing order, ``after`` / ``before`` a key); ``total`` is how
    many match in all."""
    limit: int = params["limit"]
    cursor = params.get("next") or params.get("previous")
    if cursor is not None and cursor[0] == "p":
        found = await fetch(dataclasses.replace(base, before=cursor[1], limit=limit + 1))
        chunk = found[-limit:]
        before = len(found) > limit
        after = bool(chunk) and bool(await fetch(dataclasses.replace(base, after=key_of(chunk[-1]), limit=1)))
    else:
        found = await fetch(dataclasses.replace(base, after=cursor[1] if cursor else None, limit=limit + 1))
        chunk = found[:limit]
        after = len(found) > limit
        before = cursor is not None and bool(chunk) and bool(
            await fetch(dataclasses.replace(base, before=key_of(chunk[0]), limit=1)))
    return {
        "total": total,
        "page": params["page"],
        "previousCursor": encode_cursor("p", key_of(chunk[0])) if before else False,
        "nextCursor": encode_cursor("n", key_of(chunk[-1])) if after else False,
        "results": chunk,
    }
