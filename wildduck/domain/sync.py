"""The selected-mailbox state, protocol-neutral: the messages a session has been told about (UIDs in order,
flags, MODSEQs, its \\Recent set) and the journal replay that brings it up to date.

:meth:`MailboxView.refresh` returns typed changes in the order they must be reported: IMAP renders them as untagged
EXPUNGE/FETCH/EXISTS/RECENT responses, the API's live stream will render them as JSON. Sequence numbers in the
changes are the ones the client knows at that point of the report.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field

from wildduck.model import FlagChange, JournalOp, Mailbox, Nudge, Resync
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


@dataclass
class MailboxView:
    """One session's view of its selected mailbox. Build it with :meth:`open`."""

    mailbox: Mailbox
    readonly: bool
    messages: Messages
    journal: Journal
    #: tags this session's own changes (their nudges are skipped)
    origin: str = ""
    uids: list[int] = field(default_factory=list)
    flags: dict[int, tuple[str, ...]] = field(default_factory=dict)
    modseqs: dict[int, int] = field(default_factory=dict)
    #: the journal is applied up to here
    known_modseq: int = 0
    #: messages \\Recent in this session
    recent: set[int] = field(default_factory=set)
    #: a nudge (or our own change) may have touched the mailbox: the journal must be read
    dirty: bool = False
    #: the mailbox was deleted
    gone: bool = False

    @classmethod
    async def open(cls, messages: Messages, journal: Journal, mailbox: Mailbox, *, readonly: bool,
                   origin: str = "") -> MailboxView:
        """Read the mailbox and its messages in one snapshot and, unless ``readonly``, claim its \\Recent
        messages. The caller then gives the view (:meth:`note`) the nudges queued meanwhile: one about a change
        committed while the snapshot was read has a higher MODSEQ and marks the view dirty, so the change is
        reported, not lost."""
        snapshot = await messages.mailbox_snapshot(mailbox.id)
        box = snapshot.mailbox
        view = cls(box, readonly, messages, journal, origin, [m.uid for m in snapshot.messages],
                   {m.uid: m.flags for m in snapshot.messages}, {m.uid: m.modseq for m in snapshot.messages},
                   box.highest_modseq)
        first_recent = box.recent_from
        if not readonly and view.uids and view.uids[-1] >= first_recent:
            first_recent = await messages.claim_recent(box.id, box.uid_next)
        view.recent = {u for u in view.uids[bisect_left(view.uids, first_recent):]}
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
        i = bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else 0

    def flags_of(self, uid: int) -> tuple[str, ...]:
        """Stored flags plus \\Recent where this session has it."""
        flags = self.flags.get(uid, ())
        return (*flags, "\\Recent") if uid in self.recent else flags

    def with_flag(self, flag: str, uids: Iterable[int] | None = None) -> list[int]:
        return [u for u in (self.uids if uids is None else uids) if flag in self.flags.get(u, ())]

    # -- own changes ----------------------------------------------------------------------------------------------
    def apply(self, change: FlagChange) -> None:
        """Take in the outcome of this session's own flag change."""
        for c in change.changed:
            if c.uid in self.flags:
                self.flags[c.uid] = c.flags
                self.modseqs[c.uid] = c.modseq

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
        page = await self.journal.read_journal(self.mailbox.id, self.known_modseq)
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
        reported = len(self.uids)
        self.dirty = False
        applied_all = True
        for entry in page.entries:
            if entry.op == JournalOp.EXPUNGE and not expunge:
                self.dirty = True  # deferred until a command that may report expunges
                applied_all = False
                break
            uid = entry.uid
            if entry.op == JournalOp.EXISTS:
                if not self.uids or uid > self.uids[-1]:
                    self.uids.append(uid)
                    self.flags[uid] = entry.flags or ()
                    self.modseqs[uid] = entry.modseq
            elif entry.op == JournalOp.EXPUNGE:
                seq = self.seq_of(uid)
                if seq:
                    if seq <= reported:  # a message not announced yet goes silently
                        out.append(Expunged(seq, uid))
                        reported -= 1
                    del self.uids[seq - 1]
                    self.flags.pop(uid, None)
                    self.modseqs.pop(uid, None)
                    self.recent.discard(uid)
            else:
                seq = self.seq_of(uid)
                # our own STORE may already have applied a newer change: never go back in MODSEQ
                if seq and entry.flags is not None and entry.modseq > self.modseqs.get(uid, 0):
                    changed = self.flags.get(uid) != entry.flags
                    self.flags[uid] = entry.flags
                    self.modseqs[uid] = entry.modseq
                    if changed and seq <= reported:
                        out.append(FlagsChanged(seq, uid, self.flags_of(uid), entry.modseq))
            self.known_modseq = entry.modseq
        if applied_all:
            self.known_modseq = max(self.known_modseq, page.watermark)
        arrived = tuple(self.uids[reported:])
        if arrived:
            await self._claim(arrived)
            out.append(Appeared(arrived, len(self.uids), len(self.recent)))
        return out

    async def _claim(self, arrived: tuple[int, ...]) -> None:
        if self.readonly:
            first = self.mailbox.recent_from
        else:
            first = await self.messages.claim_recent(self.mailbox.id, arrived[-1] + 1)
        self.recent.update(u for u in arrived if u >= first)

    async def _resync(self) -> list[Change]:
        """Compare with a fresh snapshot (the journal was pruned past what this view knows)."""
        snapshot = await self.messages.mailbox_snapshot(self.mailbox.id)
        out: list[Change] = []
        now = {m.uid for m in snapshot.messages}
        for uid in reversed(list(self.uids)):  # highest first: the sequence numbers stay valid
            if uid not in now:
                seq = self.seq_of(uid)
                out.append(Expunged(seq, uid))
                del self.uids[seq - 1]
                self.flags.pop(uid, None)
                self.modseqs.pop(uid, None)
                self.recent.discard(uid)
        known = set(self.uids)
        reported = len(self.uids)
        changed: list[int] = []
        for m in snapshot.messages:
            if m.uid not in known:
                self.uids.append(m.uid)
            elif self.flags.get(m.uid) != m.flags:
                changed.append(m.uid)
            self.flags[m.uid] = m.flags
            self.modseqs[m.uid] = m.modseq
        self.uids.sort()
        out.extend(FlagsChanged(self.seq_of(u), u, self.flags_of(u), self.modseqs[u]) for u in changed)
        self.mailbox = snapshot.mailbox
        self.known_modseq = snapshot.mailbox.highest_modseq
        arrived = tuple(self.uids[reported:])
        if arrived:
            await self._claim(arrived)
        out.append(Appeared(arrived, len(self.uids), len(self.recent)))
        return out


class SyncService:
    """Opens mailbox views (the session layer reaches the ports only through the domain)."""

    def __init__(self, messages: Messages, journal: Journal) -> None:
        self.messages = messages
        self.journal = journal

    async def open_view(self, mailbox: Mailbox, *, readonly: bool, origin: str = "") -> MailboxView:
        return await MailboxView.open(self.messages, self.journal, mailbox, readonly=readonly, origin=origin)
