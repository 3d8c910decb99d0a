"""Mailboxes: what to create, what is stored, what SELECT and STATUS read."""

from __future__ import annotations

from abc import abstractmethod
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from wildduck.model.messages import MessageFlags

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class MailboxSpec:
    """A mailbox to create: its path and special-use flag (``\\Sent``...) or None."""

    path: str
    special_use: str | None = None
    subscribed: bool = True


@dataclass(frozen=True, slots=True)
class Mailbox:
    id: str
    user_id: str
    #: Unicode path, hierarchy separator ``/`` (INBOX is always ``INBOX``)
    path: str
    special_use: str | None
    uid_validity: int
    uid_next: int
    #: highest MODSEQ handed out in this mailbox (0 when nothing changed yet)
    highest_modseq: int
    subscribed: bool
    #: the \\Recent watermark: messages with a UID at or above it are \\Recent until a session claims them
    recent_from: int = 1


class FlagSets:
    """Interned flag lists: each distinct list (order kept) gets a small number. Append-only, so numbers stay valid
    in every :class:`MessageTable` that shares it."""

    __slots__ = ("ids", "sets")

    def __init__(self) -> None:
        self.sets: list[tuple[str, ...]] = []
        self.ids: dict[tuple[str, ...], int] = {}

    def intern(self, flags: tuple[str, ...]) -> int:
        found = self.ids.get(flags)
        if found is None:
            found = self.ids[flags] = len(self.sets)
            self.sets.append(flags)
        return found


class MessageTable:
    """A mailbox's messages as a selected session keeps them: parallel arrays (UIDs ascending, MODSEQs, flag-list
    numbers into a shared :class:`FlagSets`), 14 bytes per message (16 beyond 65,536 distinct flag lists), instead
    of Python objects per message."""

    __slots__ = ("flag_ids", "flag_sets", "modseqs", "uids")

    def __init__(self, flag_sets: FlagSets | None = None) -> None:
        self.uids = array("I")
        self.modseqs = array("Q")
        self.flag_ids = array("H")
        self.flag_sets = flag_sets if flag_sets is not None else FlagSets()

    @classmethod
    def of(cls, messages: Iterable[MessageFlags]) -> MessageTable:
        table = cls()
        for m in messages:
            table.append(m.uid, m.flags, m.modseq)
        return table

    def copy(self) -> MessageTable:
        """An independent table (the flag sets stay shared: they only grow)."""
        other = MessageTable(self.flag_sets)
        other.uids = array("I", self.uids)
        other.modseqs = array("Q", self.modseqs)
        other.flag_ids = array(self.flag_ids.typecode, self.flag_ids)
        return other

    def __len__(self) -> int:
        return len(self.uids)

    def _flag_id(self, flags: tuple[str, ...]) -> int:
        number = self.flag_sets.intern(flags)
        if number > 0xFFFF and self.flag_ids.typecode == "H":
            self.flag_ids = array("I", self.flag_ids)
        return number

    def index(self, uid: int) -> int:
        """The position of ``uid``, or -1."""
        i = bisect_left(self.uids, uid)
        return i if i < len(self.uids) and self.uids[i] == uid else -1

    def append(self, uid: int, flags: tuple[str, ...], modseq: int) -> None:
        """Add a message after the last one (``uid`` above every UID held)."""
        self.uids.append(uid)
        self.modseqs.append(modseq)
        self.flag_ids.append(self._flag_id(flags))

    def remove_at(self, i: int) -> None:
        del self.uids[i]
        del self.modseqs[i]
        del self.flag_ids[i]

    def set_at(self, i: int, flags: tuple[str, ...], modseq: int) -> None:
        self.flag_ids[i] = self._flag_id(flags)
        self.modseqs[i] = modseq

    def flags_at(self, i: int) -> tuple[str, ...]:
        return self.flag_sets.sets[self.flag_ids[i]]

    def used_flag_sets(self) -> list[tuple[str, ...]]:
        """The distinct flag lists the messages carry."""
        sets = self.flag_sets.sets
        return [sets[n] for n in sorted(set(self.flag_ids))]

    def first_without(self, flag: str) -> int:
        """The position of the first message without ``flag``, or -1."""
        sets = self.flag_sets.sets
        best = -1
        for n in set(self.flag_ids):
            if flag not in sets[n]:
                i = self.flag_ids.index(n)
                if best < 0 or i < best:
                    best = i
        return best

    def messages(self) -> list[MessageFlags]:
        sets = self.flag_sets.sets
        return [MessageFlags(u, sets[f], m) for u, f, m in zip(self.uids, self.flag_ids, self.modseqs, strict=True)]


class _ByUid(Mapping[int, V]):
    """One column of a table as a read-only mapping by UID; ``_at(i)`` reads the value at position ``i``."""

    __slots__ = ("_hint", "table")

    def __init__(self, table: MessageTable) -> None:
        self.table = table
        self._hint = -1

    @abstractmethod
    def _at(self, i: int) -> V: ...

    def get(self, uid: int, default: Any = None) -> Any:
        """O(1) when UIDs are asked for in ascending order (the position after the last one is tried first)."""
        uids = self.table.uids
        i = self._hint + 1
        if not (i < len(uids) and uids[i] == uid):
            i = bisect_left(uids, uid)
            if i >= len(uids) or uids[i] != uid:
                return default
        self._hint = i
        return self._at(i)

    def __getitem__(self, uid: int) -> V:
        i = self.table.index(uid)
        if i < 0:
            raise KeyError(uid)
        return self._at(i)

    def __iter__(self) -> Iterator[int]:
        return iter(self.table.uids)

    def __len__(self) -> int:
        return len(self.table.uids)

    def __contains__(self, uid: object) -> bool:
        return isinstance(uid, int) and self.table.index(uid) >= 0


class FlagsByUid(_ByUid[tuple[str, ...]]):
    """A table's flags as a read-only mapping UID → flags."""

    __slots__ = ()

    def _at(self, i: int) -> tuple[str, ...]:
        return self.table.flags_at(i)


class ModseqsByUid(_ByUid[int]):
    """A table's MODSEQs as a read-only mapping UID → MODSEQ."""

    __slots__ = ()

    def _at(self, i: int) -> int:
        return self.table.modseqs[i]


@dataclass(frozen=True, slots=True)
class MailboxSnapshot:
    """A mailbox and its messages read in one transaction (what SELECT starts from): ``mailbox.highest_modseq``
    covers exactly these messages; the ones with ``uid >= mailbox.recent_from`` are still \\Recent. The messages
    are held as a :class:`MessageTable` (``table``); ``messages`` lists them as objects."""

    mailbox: Mailbox
    table: MessageTable = field(default_factory=MessageTable)

    @property
    def messages(self) -> list[MessageFlags]:
        return self.table.messages()


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    """What STATUS (and the API's mailbox listing) reports, read in one transaction."""

    mailbox: Mailbox
    messages: int
    unseen: int
    #: messages whose UID is at or above the \\Recent watermark
    recent: int
    size: int
    #: sequence number of the first unseen message (0 when none; None when not asked for: it is the one figure
    #: that takes a scan of the mailbox)
    first_unseen: int | None
