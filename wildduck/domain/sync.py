"""The selected-mailbox state, protocol-neutral: the messages a session has been told about (UIDs in order,
flags, MODSEQs, its \\Recent set) and the journal replay that brings it up to date.

:meth:`MailboxView.refresh` returns typed changes in the order they must be reported: IMAP renders them as untagged
EXPUNGE/FETCH/EXISTS/RECENT responses, the API's live stream will render them as JSON. Sequence numbers in the
changes are the ones the client knows at that point of the report.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import trio

from wildduck.model import FlagChange, JournalEntry, JournalOp, JournalPage, Mailbox, Nudge, Resync
from wildduck.model.mailboxes import FlagsByUid, MessageTable, ModseqsByUid
from wildduck.ports import Journal, Messages


@dataclass(frozen=True, slots=True)
class Expunged:
    seq: int
    uid: int


@dataclass(frozen=True, slots=True)
class FlagsChanged:
    """A message's flags (with \\Recent where this session has it) and MODSEQ as of this point of the report: a
    later change in the same replay (an expunge) must not alter what is said here."""

    seq: int
    uid: int
    flags: tuple[str, ...]
    modseq: int


@dataclass(frozen=True, slots=True)
class Appeared:
    """New messages: ``exists`` messages in all now, ``recent`` of them \\Recent in this session."""

    uids: tuple[int, ...]
    exists: int
    recent: int


@dataclass(frozen=True, slots=True)
class Renamed:
    """Another session renamed the selected mailbox (it keeps its messages and UIDVALIDITY)."""

    path: str


@dataclass(frozen=True, slots=True)
class Deleted:
    """Another session deleted the selected mailbox: nothing of it may be served any more."""


Change = Expunged | FlagsChanged | Appeared | Renamed | Deleted


#: mailboxes with fewer messages are not kept by :class:`SyncService` (their snapshot is cheap to read)
CACHE_FROM = 1000
#: at most this many messages in all are kept by one :class:`SyncService` (16 bytes each: 32 MB)
CACHE_MESSAGES = 2_000_000


@dataclass
class _Kept:
    """A mailbox's messages as of ``mailbox.highest_modseq`` (a journal watermark), kept between SELECTs."""

    mailbox: Mailbox
    table: MessageTable


def _replay(table: MessageTable, entries: Iterable[JournalEntry]) -> None:
    """Apply journal entries to a table without reporting anything (what a SELECT after them would read)."""
    for entry in entries:
        uid = entry.uid
        if entry.op == JournalOp.EXISTS:
            if not len(table) or uid > table.uids[-1]:
                table.append(uid, entry.flags or (), entry.modseq)
        else:
            i = table.index(uid)
            if i < 0:
                continue
            if entry.op == JournalOp.EXPUNGE:
                table.remove_at(i)
            elif entry.flags is not None and entry.modseq > table.modseqs[i]:
                table.set_at(i, entry.flags, entry.modseq)


class _Batch:
    """Calls of one kind on one mailbox, gathered while none of them has started."""

    __slots__ = ("wants", "done", "page", "since", "previous", "top", "winner")

    def __init__(self, first: int) -> None:
        self.wants = [first]
        self.done = trio.Event()
        self.page: JournalPage | None = None
        self.since = 0
        self.previous: int | None = None
        self.top = 0
        self.winner = 0


class SharedReads:
    """Journal reads and \\Recent claims of one mailbox by many sessions at once, done once.

    A delivery wakes every session that selected the mailbox (hundreds, for a shared or much-watched INBOX), and
    each would read the journal and try to claim \\Recent: a store call each, queued behind each other. Calls that
    arrive while a first one waits for its turn (two scheduling rounds: the sessions woken by the same nudge) join
    it; once it has started, later calls start a batch of their own, so that every caller gets an answer read
    after it asked (the journal's contract holds for each). One read serves every joiner: from the lowest
    ``since``, each gets the entries above its own (a pruned page is read again alone). One claim serves
    every joiner: up to the highest UID any of them saw; the session that asked for it gets the claimed
    messages as \\Recent, the others none (each message is \\Recent in one session, as RFC 3501 asks)."""

    def __init__(self, journal: Journal, messages: Messages) -> None:
        self.journal = journal
        self.messages = messages
        self._reads: dict[str, _Batch] = {}
        self._claims: dict[str, _Batch] = {}

    async def read_journal(self, mailbox_id: str, since: int) -> JournalPage:
        batch = self._reads.get(mailbox_id)
        if batch is not None:
            batch.wants.append(since)
            await batch.done.wait()
            page = batch.page
            if page is None or (page.pruned and since != batch.since):  # the first call failed, or was pruned
                return await self.journal.read_journal(mailbox_id, since)
            return _above(page, batch.since, since)
        batch = self._reads[mailbox_id] = _Batch(since)
        try:
            await _two_rounds()
        finally:
            del self._reads[mailbox_id]
        try:
            batch.since = min(batch.wants)
            batch.page = await self.journal.read_journal(mailbox_id, batch.since)
        finally:
            batch.done.set()
        return _above(batch.page, batch.since, since)

    async def claim_recent(self, mailbox_id: str, up_to: int) -> int:
        batch = self._claims.get(mailbox_id)
        if batch is not None:
            me = len(batch.wants)
            batch.wants.append(up_to)
            await batch.done.wait()
            if batch.previous is None:  # the first call failed: claim alone
                return await self.messages.claim_recent(mailbox_id, up_to)
            return batch.previous if me == batch.winner else max(batch.previous, batch.top)
        batch = self._claims[mailbox_id] = _Batch(up_to)
        try:
            await _two_rounds()
        finally:
            del self._claims[mailbox_id]
        try:
            batch.top = max(batch.wants)
            batch.winner = batch.wants.index(batch.top)
            batch.previous = await self.messages.claim_recent(mailbox_id, batch.top)
        finally:
            batch.done.set()
        return batch.previous if batch.winner == 0 else max(batch.previous, batch.top)


async def _two_rounds() -> None:
    """Let the tasks runnable now, and those they wake without waiting, reach the batch (trio runs the tasks of
    one round in no fixed order: one round could close the batch before the others of the same wake-up came)."""
    await trio.lowlevel.cancel_shielded_checkpoint()
    await trio.lowlevel.cancel_shielded_checkpoint()


def _above(page: JournalPage, read_since: int, since: int) -> JournalPage:
    """``page`` (read from ``read_since``) as a read from ``since`` >= ``read_since`` would have returned it."""
    if since == read_since:
        return page
    start = bisect_right(page.entries, since, key=lambda e: e.modseq)
    return replace(page, entries=page.entries[start:])


@dataclass
class MailboxView:
    """One session's view of its selected mailbox. Build it with :meth:`open`.

    The messages are a :class:`MessageTable` (arrays, 14 bytes per message); ``uids`` is its UID array, ``flags``
    and ``modseqs`` read-only mappings by UID over it."""

    mailbox: Mailbox
    readonly: bool
    messages: Messages
    journal: Journal
    #: tags this session's own changes (their nudges are skipped)
    origin: str = ""
    table: MessageTable = field(default_factory=MessageTable)
    #: the journal is applied up to here
    known_modseq: int = 0
    #: messages \\Recent in this session
    recent: set[int] = field(default_factory=set)
    #: a nudge (or our own change) may have touched the mailbox: the journal must be read
    dirty: bool = False
    #: the mailbox was deleted
    gone: bool = False
    #: journal reads and \\Recent claims shared with the other sessions of this process (None: its own)
    shared: SharedReads | None = None

    def __post_init__(self) -> None:
        self.flags = FlagsByUid(self.table)
        self.modseqs = ModseqsByUid(self.table)

    @property
    def uids(self) -> array[int]:
        """The UIDs the client knows, ascending (sequence number = position + 1)."""
        return self.table.uids

    @classmethod
    async def open(cls, messages: Messages, journal: Journal, mailbox: Mailbox, *, readonly: bool,
                   origin: str = "", kept: _Kept | None = None) -> MailboxView:
        """Read the mailbox and its messages in one snapshot and, unless ``readonly``, claim its \\Recent
        messages. The caller then gives the view (:meth:`note`) the nudges queued meanwhile: one about a change
        committed while the snapshot was read has a higher MODSEQ and marks the view dirty, so the change is
        reported, not lost.

        With ``kept`` (the messages as of an earlier watermark), the snapshot is that plus the journal since, read
        in one transaction: the same state as a fresh snapshot at the new watermark, without reading every
        message; ``kept`` is brought up to date. A pruned journal (or a mailbox gone) reads the snapshot."""
        table = None
        if kept is not None:
            page = await journal.read_journal(mailbox.id, kept.mailbox.highest_modseq)
            if (page.mailbox is not None and not page.pruned
                    and page.mailbox.uid_validity == kept.mailbox.uid_validity):
                _replay(kept.table, page.entries)
                # known up to the watermark only: an entry committed late below the mailbox's highest MODSEQ (two
                # writers) is read by the next replay, not skipped
                kept.mailbox = replace(page.mailbox, highest_modseq=page.watermark)
                box, table = kept.mailbox, kept.table.copy()
        if table is None:
            snapshot = await messages.mailbox_snapshot(mailbox.id)
            box, table = snapshot.mailbox, snapshot.table
            if kept is not None:
                kept.mailbox, kept.table = box, table.copy()
        view = cls(box, readonly, messages, journal, origin, table, box.highest_modseq)
        uids = view.uids
        first_recent = box.recent_from
        if not readonly and uids and uids[-1] >= first_recent:
            first_recent = await messages.claim_recent(box.id, uids[-1] + 1)  # never past what the view holds
        view.recent = set(uids[bisect_left(uids, first_recent):])
        return view

    # -- nudges ---------------------------------------------------------------------------------------------------
    def note(self, item: Nudge | Resync) -> bool:
        """Take a nudge (or a loss marker) into account; True if it concerns this view."""
        if isinstance(item, Resync):
            self.dirty = True
            return True
        if item.mailbox_id != self.mailbox.id:
            return False
        if item.gone or (item.origin != self.origin and (item.modseq == 0 or item.modseq > self.known_modseq)):
            self.dirty = True
            return True
        return False

    # -- questions ------------------------------------------------------------------------------------------------
    def seq_of(self, uid: int) -> int:
        """The sequence number of ``uid`` (0 when the view does not have it)."""
        return self.table.index(uid) + 1

    def flags_of(self, uid: int) -> tuple[str, ...]:
        """Stored flags plus \\Recent where this session has it."""
        flags = self.flags.get(uid, ())
        return (*flags, "\\Recent") if uid in self.recent else flags

    def with_flag(self, flag: str, uids: Iterable[int] | None = None) -> list[int]:
        if uids is None:
            t = self.table
            having = {n for n, flags in enumerate(t.flag_sets.sets) if flag in flags}
            return [u for u, n in zip(t.uids, t.flag_ids, strict=True) if n in having]
        return [u for u in uids if flag in self.flags.get(u, ())]

    def keywords(self) -> set[str]:
        """The keywords some message carries."""
        return {f for flags in self.table.used_flag_sets() for f in flags if not f.startswith("\\")}

    def first_unseen(self) -> int:
        """The sequence number of the first message without \\Seen (0 when none)."""
        return self.table.first_without("\\Seen") + 1

    # -- own changes ----------------------------------------------------------------------------------------------
    def apply(self, change: FlagChange) -> None:
        """Take in the outcome of this session's own flag change."""
        for c in change.changed:
            i = self.table.index(c.uid)
            if i >= 0:
                self.table.set_at(i, c.flags, c.modseq)

    # -- replay ---------------------------------------------------------------------------------------------------
    async def refresh(self, *, expunge: bool = True, force: bool = False) -> list[Change]:
        """Apply the journal and return what the client must be told, in order.

        The journal is read when a nudge said the mailbox changed, or when ``force`` asks (NOOP, CHECK, IDLE).
        Without ``expunge`` (during FETCH, STORE, SEARCH) removals are deferred: replay stops before the first
        one and the view stays dirty."""
        if self.gone:
            return [Deleted()]
        if not (self.dirty or force):
            return []
        page = await (self.shared or self.journal).read_journal(self.mailbox.id, self.known_modseq)
        if page.mailbox is None:
            self.gone = True
            return [Deleted()]
        out: list[Change] = []
        if page.mailbox.path != self.mailbox.path:
            out.append(Renamed(page.mailbox.path))
        self.mailbox = page.mailbox
        if page.pruned:
            if not expunge:
                return out  # a full resync may expunge: wait for a command that allows it
            self.dirty = False
            return out + await self._resync()
        table = self.table
        reported = len(table)
        self.dirty = False
        applied_all = True
        for entry in page.entries:
            if entry.op == JournalOp.EXPUNGE and not expunge:
                self.dirty = True  # deferred until a command that may report expunges
                applied_all = False
                break
            uid = entry.uid
            if entry.op == JournalOp.EXISTS:
                if not len(table) or uid > table.uids[-1]:
                    table.append(uid, entry.flags or (), entry.modseq)
            elif entry.op == JournalOp.EXPUNGE:
                i = table.index(uid)
                if i >= 0:
                    if i < reported:  # a message not announced yet goes silently
                        out.append(Expunged(i + 1, uid))
                        reported -= 1
                    table.remove_at(i)
                    self.recent.discard(uid)
            else:
                i = table.index(uid)
                # our own STORE may already have applied a newer change: never go back in MODSEQ
                if i >= 0 and entry.flags is not None and entry.modseq > table.modseqs[i]:
                    changed = table.flags_at(i) != entry.flags
                    table.set_at(i, entry.flags, entry.modseq)
                    if changed and i < reported:
                        out.append(FlagsChanged(i + 1, uid, self.flags_of(uid), entry.modseq))
            self.known_modseq = entry.modseq
        if applied_all:
            self.known_modseq = max(self.known_modseq, page.watermark)
        arrived = tuple(table.uids[reported:])
        if arrived:
            await self._claim(arrived)
            out.append(Appeared(arrived, len(table), len(self.recent)))
        return out

    async def _claim(self, arrived: tuple[int, ...]) -> None:
        if self.readonly:
            first = self.mailbox.recent_from
        else:
            first = await (self.shared or self.messages).claim_recent(self.mailbox.id, arrived[-1] + 1)
        self.recent.update(u for u in arrived if u >= first)

    async def _resync(self) -> list[Change]:
        """Compare with a fresh snapshot (the journal was pruned past what this view knows)."""
        snapshot = await self.messages.mailbox_snapshot(self.mailbox.id)
        fresh = snapshot.table
        table = self.table
        out: list[Change] = []
        now = set(fresh.uids)
        for i in range(len(table) - 1, -1, -1):  # highest first: the sequence numbers stay valid
            uid = table.uids[i]
            if uid not in now:
                out.append(Expunged(i + 1, uid))
                table.remove_at(i)
                self.recent.discard(uid)
        old = {uid: table.flags_at(i) for i, uid in enumerate(table.uids)}
        reported = len(table)
        rebuilt = MessageTable(table.flag_sets)
        changed: list[int] = []
        for i, uid in enumerate(fresh.uids):
            flags = fresh.flags_at(i)
            if uid in old and old[uid] != flags:
                changed.append(uid)
            rebuilt.append(uid, flags, fresh.modseqs[i])
        # the known messages keep their sequence numbers (none is above a new one: UIDs only grow)
        table.uids, table.modseqs, table.flag_ids = rebuilt.uids, rebuilt.modseqs, rebuilt.flag_ids
        out.extend(FlagsChanged(self.seq_of(u), u, self.flags_of(u), self.modseqs[u]) for u in changed)
        self.mailbox = snapshot.mailbox
        self.known_modseq = snapshot.mailbox.highest_modseq
        arrived = tuple(table.uids[reported:])
        if arrived:
            await self._claim(arrived)
        out.append(Appeared(arrived, len(table), len(self.recent)))
        return out


class SyncService:
    """Opens mailbox views (the session layer reaches the ports only through the domain).

    It keeps the messages of the largest recently selected mailboxes (from :data:`CACHE_FROM` messages, at most
    :data:`CACHE_MESSAGES` in all, least recently selected dropped first) as of a journal watermark, so that a later
    SELECT of one reads only the journal since, not every message. What is kept is checked against the journal
    in the database at every SELECT, so changes by other processes are seen as well."""

    def __init__(self, messages: Messages, journal: Journal) -> None:
        self.messages = messages
        self.journal = journal
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        #: the views' journal reads and claims, coalesced across sessions
        self.shared = SharedReads(journal, messages)

    async def open_view(self, mailbox: Mailbox, *, readonly: bool, origin: str = "") -> MailboxView:
        kept = self._kept.pop(mailbox.id, None)
        fresh = kept is None
        if kept is None:
            kept = _Kept(mailbox, MessageTable())
        view = await MailboxView.open(self.messages, self.journal, mailbox, readonly=readonly, origin=origin,
                                      kept=None if fresh else kept)
        view.shared = self.shared
        if fresh:
            kept = _Kept(view.mailbox, view.table.copy())
        if len(kept.table) >= CACHE_FROM:
            self._kept[mailbox.id] = kept
            total = sum(len(k.table) for k in self._kept.values())
            while total > CACHE_MESSAGES and self._kept:
                _, dropped = self._kept.popitem(last=False)
                total -= len(dropped.table)
        return view


# -- quick resynchronization (IMAP QRESYNC, RFC 7162) -----------------------------------------------------------------

#: ascending, disjoint (low, high) ranges of UIDs
UidRanges = list[tuple[int, int]]


def uid_runs(uids: Iterable[int]) -> UidRanges:
    """Ascending UIDs as ranges of consecutive ones."""
    out: UidRanges = []
    for uid in uids:
        if out and uid == out[-1][1] + 1:
            out[-1] = (out[-1][0], uid)
        else:
            out.append((uid, uid))
    return out


def _within(ranges: UidRanges | None, uid: int) -> bool:
    if ranges is None:
        return True
    i = bisect_right(ranges, uid, key=lambda r: r[0]) - 1
    return i >= 0 and uid <= ranges[i][1]


async def expunged_since(view: MailboxView, since: int, known: UidRanges | None = None, *,
                         floor: int = 0) -> tuple[UidRanges, bool]:
    """:func:`changes_since` without the changed messages."""
    ranges, exact, _changed = await changes_since(view, since, known, floor=floor)
    return ranges, exact


async def changes_since(view: MailboxView, since: int, known: UidRanges | None = None, *,
                        floor: int = 0) -> tuple[UidRanges, bool, list[int] | None]:
    """The UIDs expunged from the view's mailbox after MODSEQ ``since`` that the view no longer holds (the ones it
    still holds are the view's next :meth:`MailboxView.refresh` to report), among ``known`` (ascending ranges;
    None: every UID), as ascending ranges; and whether that is exact.

    One journal read (none when ``since`` is at or above what the view knows). When the journal was pruned past
    ``since`` (maintenance keeps 3 hours of it, ``app.JOURNAL_RETENTION``), the answer is every UID of ``known``
    above ``floor`` and below UIDNEXT that the view does not hold: a superset of the exact answer (UIDs expunged
    long ago, or never used), which is what a client that asked for them must be told (RFC 7162 3.2.5.2).
    ``floor`` is the highest UID known not to be preceded by an expunge (from a client's sequence match data).

    Third: from the same journal page, the UIDs (ascending, whatever ``known``) of the messages the view holds whose
    MODSEQ is above ``since``: every MODSEQ a message has comes from its EXISTS or FLAGS entry, so with nothing
    pruned those are the messages of the page's entries whose MODSEQ in the view's table is above ``since`` (no scan
    of the table); None when the journal was pruned (the caller scans the table)."""
    table = view.table
    if since >= view.known_modseq:
        return [], True, []
    page = await (view.shared or view.journal).read_journal(view.mailbox.id, since)
    if page.mailbox is None:
        return [], True, []  # deleted: the view's next refresh says so
    if not page.pruned:
        gone: set[int] = set()
        touched: set[int] = set()
        modseqs = table.modseqs
        for e in page.entries:
            i = table.index(e.uid)
            if i >= 0:
                if modseqs[i] > since:
                    touched.add(e.uid)
            elif e.op == JournalOp.EXPUNGE and _within(known, e.uid):
                gone.add(e.uid)
        return uid_runs(sorted(gone)), True, sorted(touched)
    top = view.mailbox.uid_next - 1
    uids = table.uids
    out: UidRanges = []
    for lo, hi in known if known is not None else [(1, top)]:
        lo, hi = max(lo, floor + 1), min(hi, top)
        at = lo
        i = bisect_left(uids, lo)
        while at <= hi and i < len(uids) and uids[i] <= hi:
            if uids[i] > at:
                out.append((at, uids[i] - 1))
            at = uids[i] + 1
            i += 1
        if at <= hi:
            out.append((at, hi))
    return out, False, None
