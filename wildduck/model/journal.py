"""The per-mailbox journal: every change, in MODSEQ order, that sessions replay."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from wildduck.model.mailboxes import Mailbox


class JournalOp(enum.StrEnum):
    """What a journal entry records."""

    #: a message appeared (APPEND, delivery, COPY/MOVE target)
    EXISTS = "EXISTS"
    #: a message was removed
    EXPUNGE = "EXPUNGE"
    #: a message's flags changed
    FLAGS = "FETCH"


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One change in a mailbox."""

    mailbox_id: str
    modseq: int
    op: JournalOp
    uid: int
    message_id: str | None
    #: the message's flags after the change (EXISTS and FLAGS entries)
    flags: tuple[str, ...] | None
    created: dt.datetime


@dataclass(frozen=True, slots=True)
class JournalPage:
    """What a reader gets from ``Journal.read_journal(mailbox_id, since)``.

    The contract every adapter keeps (tested by the conformance suite with concurrent writers and readers):

    * ``entries`` are the entries with ``since < modseq <= watermark``, ascending, none missing: a writer whose
      MODSEQ is at or below ``watermark`` has committed. The reader sets its known MODSEQ to ``watermark`` (never
      past it), so an entry committed late (MODSEQ 10 after 11, with two writers) is read next time, not lost.
    * ``pruned`` is True when entries above ``since`` were pruned: the reader must resync from a snapshot. A gap in
      MODSEQs means nothing (flag changes of expunged messages, aborted writes); only ``pruned`` says "lost".
    * ``mailbox`` is the mailbox as of this read (its path may have changed: RENAME), or None if it was deleted.
    """

    entries: list[JournalEntry]
    watermark: int
    pruned: bool
    mailbox: Mailbox | None
