"""SORT and UID SORT (RFC 5256), with ESORT's result options (RFC 5267 4), SORT=DISPLAY (RFC 5957) and SAVE
(RFC 5182 2.4).

The messages are those SEARCH would find for the same criteria (``selected.matching``). A store that orders
(``Messages.sort_order``: SQLite, by its covering indexes) gives the order of the whole mailbox, which is filtered to
those messages (a message of the store the session does not know yet, or one expunged meanwhile, is not among them);
otherwise (MongoDB) their sort keys come from :func:`sort_records`, the one place that reads per-message data for
SORT, and the order from :func:`wildduck.protocols.imap.sort.order`. Both orders are the same (tested on random
keys).

The store keeps every message's sort keys, computed at ingest (the string ones in collation form; SQLite: schema
v14, read from one covering index), and returns them as tuples in the field order of
:class:`~wildduck.protocols.imap.sort.SortRecord` (``Messages.sort_keys``), which are kept and ordered as they
come: a SORT parses nothing and makes no object per message. A message's sort keys never change (they come from
its content, internal date and size, fixed for a UID while the mailbox keeps its UIDVALIDITY), so the process keeps
them too (:class:`SortKeys`): a SORT reads the keys of the messages it has not seen before only, and the address
keys only once a SORT asks for one of them.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

from wildduck.protocols.imap import grammar as g
from wildduck.protocols.imap import sort
from wildduck.sessions.imap.selected import answer, matching, refuse_charset
from wildduck.sessions.imap.session import IMAPSession

#: messages whose keys are read from the store per round trip (a hundred bytes or so each)
SORT_BATCH = 10_000
#: the sort keys the process keeps, in messages (a few hundred bytes each); the mailboxes sorted least recently
#: are dropped first, and a mailbox larger than this is not kept
SORT_KEYS_KEPT = 250_000
K = TypeVar("K")


class SortKeys(Generic[K]):
    """The keys of the messages of recently sorted (or threaded) mailboxes, by (mailbox id, UIDVALIDITY) and UID."""

    def __init__(self, limit: int = SORT_KEYS_KEPT) -> None:
        self.limit = limit
        self.size = 0
        self.mailboxes: OrderedDict[tuple[str, int], dict[int, K]] = OrderedDict()

    def of(self, mailbox: tuple[str, int]) -> dict[int, K]:
        """The keys kept for ``mailbox`` (an empty dict when none are), now the most recently used."""
        kept = self.mailboxes.pop(mailbox, None)
        if kept is None:
            kept = {}
        self.mailboxes[mailbox] = kept
        return kept

    def keep(self, mailbox: tuple[str, int], keys: dict[int, K], uids: frozenset[int] | None) -> None:
        """Account for ``keys`` (the dict :meth:`of` returned, grown); ``uids``: the mailbox's messages, whose keys
        alone stay when those of expunged messages have piled up."""
        if uids is not None and len(keys) > 2 * len(uids) + 1000:
            for uid in [u for u in keys if u not in uids]:
                del keys[uid]
        self.size = sum(len(k) for k in self.mailboxes.values())
        while self.size > self.limit and self.mailboxes:
            _name, dropped = self.mailboxes.popitem(last=False)
            self.size -= len(dropped)


#: this process's
KEPT: SortKeys[sort.SortRow] = SortKeys()
#: where a row says whether its address keys were read
_ADDRESSES = sort.SortRecord._fields.index("addresses")


async def sort_records(s: IMAPSession, uids: list[int], wanted: frozenset[str]) -> list[sort.SortRow]:
    """The sort keys of the messages ``uids`` (those of ``wanted`` at least), in their order; a message expunged
    by another session meanwhile has none (RFC 2180: it is left out)."""
    view = s.selected
    mailbox = (view.mailbox.id, view.mailbox.uid_validity)
    keys = KEPT.of(mailbox)
    addresses = not wanted.isdisjoint(sort.ADDRESS_KEYS)
    get = keys.get
    missing = [u for u in uids if (k := get(u)) is None or (addresses and not k[_ADDRESSES])]
    for start in range(0, len(missing), SORT_BATCH):
        rows = await s.s.messages.sort_keys(mailbox[0], missing[start:start + SORT_BATCH], addresses=addresses)
        keys.update(zip([r[0] for r in rows], rows, strict=True))
    if missing:
        KEPT.keep(mailbox, keys, frozenset(view.uids))
    return [k for u in uids if (k := get(u)) is not None]


async def sort_(s: IMAPSession, cmd: g.Command) -> None:
    """SORT and UID SORT: ``* SORT n ...`` in the order asked, or with result options ``* ESEARCH``; MIN and MAX
    are the first and last messages of that order. The charset must be UTF-8 or US-ASCII (RFC 5256 requires
    both), else NO [BADCHARSET]."""
    assert isinstance(cmd, g.Sort)
    options = cmd.return_options
    if cmd.charset not in ("UTF-8", "US-ASCII"):
        refuse_charset(s, cmd.tag, options)
        return
    uids, modseqs, with_modseq = await matching(s, cmd.criteria, uid=cmd.uid, save="SAVE" in options)
    mailbox_order = await s.s.messages.sort_order(s.selected.mailbox.id, [(c.key, c.reverse) for c in cmd.keys])
    if mailbox_order is not None:  # the store's order of its whole mailbox: the messages found, in that order
        found = set(uids)
        ordered = [u for u in mailbox_order if u in found]
    else:
        records = await sort_records(s, uids, frozenset(c.key for c in cmd.keys))
        ordered = [r[0] for r in sort.order(records, cmd.keys)]
    answer(s, cmd, "SORT", options, ordered, modseqs, with_modseq and bool(ordered))
