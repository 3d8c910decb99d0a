"""QRESYNC (RFC 7162 3.2): what a client that knew the mailbox up to a MODSEQ has missed, told in the SELECT
that asks (UID FETCH ... VANISHED is in ``selected.py``): ``* VANISHED (EARLIER)`` of the UIDs expunged since,
then the flags of the messages changed since. The expunges come from the journal (``domain.sync.expunged_since``);
when it was pruned past the client's MODSEQ, every UID the client named that is not in the mailbox (above what its
sequence match data proves intact). The changed messages are those of the same journal page that the view's table
holds with a MODSEQ above the client's (a scan of the table's MODSEQs only when the journal was pruned): no store
call beyond the one journal read, and no work in proportion to the mailbox."""

from __future__ import annotations

from collections.abc import Iterator

from wildduck.domain.sync import changes_since
from wildduck.protocols.imap import grammar as g
from wildduck.protocols.imap import serializer
from wildduck.sessions.imap.selected import _fetch_from_view
from wildduck.sessions.imap.session import IMAPSession

#: what a resynchronizing client is told of each changed message (RFC 7162 3.2.5.1)
_CHANGED_ITEMS = [g.FetchItem("UID", label="UID"), g.FetchItem("FLAGS", label="FLAGS"),
                  g.FetchItem("MODSEQ", label="MODSEQ")]


def _numbers(numbers: g.SequenceSet) -> Iterator[int]:
    for lo, hi in numbers.normalized:
        yield from range(lo, hi + 1)


def match_floor(s: IMAPSession, match: tuple[g.SequenceSet, g.SequenceSet] | None) -> int:
    """The highest UID of the sequence match data (RFC 7162 3.2.5.2) that still has the sequence number the client
    gave it: no message below it was expunged since (UIDs only grow), so nothing at or below it can have vanished.
    Pairs are checked in ascending order up to the first that no longer matches."""
    if match is None:
        return 0
    uids = s.selected.uids
    floor = 0
    for seq, uid in zip(_numbers(match[0]), _numbers(match[1]), strict=True):
        if seq > len(uids) or uids[seq - 1] != uid:
            break
        floor = uid
    return floor


async def resync_select(s: IMAPSession, params: g.Qresync) -> None:
    """The part of a SELECT/EXAMINE (QRESYNC (...)) after the mailbox's own responses: nothing when UIDVALIDITY
    changed (the client must resynchronize fully, RFC 7162 3.2.5), else VANISHED (EARLIER) and the messages
    whose MODSEQ is above the client's, among its known UIDs."""
    view = s.selected
    if params.uid_validity != view.mailbox.uid_validity:
        return
    top = view.mailbox.uid_next - 1
    known = params.known_uids.resolve(top) if params.known_uids is not None else None
    ranges, _exact, changed = await changes_since(view, params.modseq, known, floor=match_floor(s, params.match))
    s.send(serializer.vanished(ranges, earlier=True))
    await send_changed(s, params.modseq, params.known_uids, changed)


async def send_changed(s: IMAPSession, since: int, known: g.SequenceSet | None, changed: list[int] | None) -> None:
    """``* n FETCH (UID u MODSEQ (m) FLAGS (...))`` for every message of the view (among ``known`` UIDs) whose
    MODSEQ is above ``since``, in sequence order: ``changed``, those messages' UIDs from the journal
    (``changes_since``), or, when it was pruned (None), from a scan of every MODSEQ of the view's table."""
    table = s.selected.table
    uids = table.uids
    top = uids[-1] if uids else 0
    if changed is not None:
        chosen = [(table.index(uid) + 1, uid) for uid in changed if known is None or known.contains(uid, top)]
    else:
        chosen = [(i + 1, uids[i]) for i, modseq in enumerate(table.modseqs)
                  if modseq > since and (known is None or known.contains(uids[i], top))]
    # with UIDONLY (RFC 9586) ``* uid UIDFETCH (MODSEQ (m) FLAGS (...))``: the response's number is the UID
    await _fetch_from_view(s, chosen, _CHANGED_ITEMS[1:] if s.uidonly else _CHANGED_ITEMS)
