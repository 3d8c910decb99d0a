"""SQLite only: which commits wait for the disk. With ``synchronous = "full"`` a commit that only changes flags or
removes messages runs at ``synchronous = NORMAL`` (no fsync of its own; the next durable commit covers it), every
other commit at FULL; ``fsync_all`` makes every commit FULL. Read back from the writer connection's level after
each kind of write (the level a commit ran at is the one it left set)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.adapters.conftest import make_user, prepared
from wildduck.adapters.sqlite import open_sqlite_store
from wildduck.model import FlagMode, NewMessage

FULL, NORMAL = 2, 1


@pytest.mark.parametrize("fsync_all", [False, True])
async def test_flag_changes_and_expunges_skip_the_fsync_unless_told(tmp_path: Path, fsync_all: bool) -> None:
    s = await open_sqlite_store(tmp_path / "d.db", synchronous="full", fsync_all=fsync_all)

    def level() -> int:
        assert s._writer is not None
        return int(s._writer.execute("PRAGMA synchronous").fetchone()[0])

    try:
        user = await make_user(s)
        inbox = await s.find_mailbox(user.id, "INBOX")
        await s.append_messages([NewMessage(user.id, inbox.id, prepared("m"))])
        assert level() == FULL
        await s.set_flags(inbox.id, [1], FlagMode.ADD, ["\\Seen"])
        assert level() == (FULL if fsync_all else NORMAL)
        await s.claim_recent(inbox.id, 2)
        assert level() == (FULL if fsync_all else NORMAL)
        await s.append_messages([NewMessage(user.id, inbox.id, prepared("n"))])
        assert level() == FULL  # a message is on disk before it is acknowledged, and with it the flags before it
        await s.expunge(inbox.id, [1])
        assert level() == (FULL if fsync_all else NORMAL)
        trash = await s.find_mailbox(user.id, "Trash")
        await s.copy_messages(inbox.id, [2], trash.id, move=True)
        assert level() == FULL
    finally:
        await s.close()
    s = await open_sqlite_store(tmp_path / "d.db")
    try:  # everything is there after a restart (a process crash would not lose it either: WAL)
        inbox = await s.find_mailbox(user.id, "INBOX")
        assert (await s.mailbox_status(inbox.id)).messages == 0
        assert (await s.mailbox_status(trash.id)).messages == 1
    finally:
        await s.close()


async def test_normal_stays_normal(tmp_path: Path) -> None:
    s = await open_sqlite_store(tmp_path / "n.db", synchronous="normal")
    try:
        user = await make_user(s)
        inbox = await s.find_mailbox(user.id, "INBOX")
        await s.append_messages([NewMessage(user.id, inbox.id, prepared("m"))])
        assert s._writer is not None and s._writer.execute("PRAGMA synchronous").fetchone()[0] == NORMAL
    finally:
        await s.close()
