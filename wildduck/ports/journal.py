"""The ``Journal`` role: per-mailbox change entries in MODSEQ order (written by ``Messages`` in the same
transaction as each change), read by every session to replay what others did."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from wildduck.model import JournalPage


class Journal(Protocol):
    async def read_journal(self, mailbox_id: str, since: int) -> JournalPage:
        """Entries above ``since`` up to a watermark, with the pruning flag and the mailbox's current record
        (None when the mailbox was deleted); see :class:`wildduck.model.JournalPage` for the contract."""
        ...

    async def prune_journal(self, older_than: dt.datetime) -> int:
        """Delete entries created before ``older_than``, remembering per mailbox the highest MODSEQ pruned (so
        readers behind it get ``pruned``); returns how many were deleted."""
        ...
