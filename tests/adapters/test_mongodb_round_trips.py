"""Round trips per operation on the MongoDB store, counted by a command listener: they decide how the design
scales on a real cluster (FerretDB's speed here says nothing). The bounds are today's counts: a change that adds
commands to a delivery or a STORE shows up here."""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path

import pytest

from tests.adapters.conftest import make_user, open_store, prepared
from wildduck.adapters.mongodb.monitor import CommandCounter
from wildduck.model import FlagMode, NewMessage

pytestmark = pytest.mark.parametrize("kind", ["mongodb"])

PDF = b"%PDF-1.4 " + bytes(range(256)) * 40

#: commands per operation, at most (what each one does: ``wildduck/adapters/mongodb/messages.py``)
BOUNDS = {
    # storage ledger (top, insert), references (insert), blob lookup, GridFS upload (chunk, file), blob entry,
    # thread ids (read, insert), journal (top, insert), message insert, journal commit
    "delivery, new attachment": 13,
    # the same without the upload: the attachment is stored already
    "delivery, known attachment": 10,
    # ledger (top, insert), thread ids (read, insert), journal (top, insert), one insert of the 50 messages,
    # commit: as for one message
    "APPEND of 50 messages in one call": 8,
    # message read, journal (top, insert), message update, journal commit
    "STORE of one message": 5,
    # mailbox, \Recent watermark, entries from since
    "journal read (IDLE wake-up)": 3,
    # the mailbox record (mailbox, watermark, \Recent) and the messages' UIDs, flags and MODSEQs
    "SELECT snapshot": 4,
    # the mailbox record and the messages' UIDs, \Seen and sizes (recounted)
    "STATUS": 4,
    # watermark, claims' top, the new claim
    "\\Recent claim": 3,
    # messages read, ledger (top, insert), references, journal (top, insert), copies inserted, commit
    "COPY of one message": 8,
    # message read, journal (top, insert) claiming it, delete, references released, blob release time,
    # ledger (top, insert), commit
    "EXPUNGE of one message": 9,
    # the mailboxes, then per mailbox its watermark and \Recent watermark (3 mailboxes here)
    "LIST (3 mailboxes)": 7,
}


async def test_round_trips_per_operation(kind: str, tmp_path: Path) -> None:
    counter = CommandCounter()
    store = await open_store(kind, tmp_path, listeners=[counter])
    try:
        user = await make_user(store)
        inbox = await store.find_mailbox(user.id, "INBOX")
        trash = await store.find_mailbox(user.id, "Trash")
        await store.append_messages([NewMessage(user.id, inbox.id, prepared("warm-up"))])  # the mailbox is known
        await store.copy_messages(inbox.id, [1], trash.id)  # and the Trash
        counts = {}
        counter.take()

        async def count(name: str, call: Awaitable[object]) -> None:
            await call
            counts[name] = counter.take()

        await count("delivery, new attachment",
                    store.append_messages([NewMessage(user.id, inbox.id, prepared("first", (PDF,)))]))
        await count("delivery, known attachment",
                    store.append_messages([NewMessage(user.id, inbox.id, prepared("second", (PDF,)))]))
        await count("APPEND of 50 messages in one call",
                    store.append_messages([NewMessage(user.id, inbox.id, prepared(f"m{i}")) for i in range(50)]))
        await count("STORE of one message", store.set_flags(inbox.id, [2], FlagMode.ADD, ["\\Seen"]))
        await count("journal read (IDLE wake-up)", store.read_journal(inbox.id, 3))
        await count("SELECT snapshot", store.mailbox_snapshot(inbox.id))
        await count("STATUS", store.mailbox_status(inbox.id))
        await count("\\Recent claim", store.claim_recent(inbox.id, 10))
        await count("COPY of one message", store.copy_messages(inbox.id, [2], trash.id))
        await count("EXPUNGE of one message", store.expunge(inbox.id, [3]))
        await count("LIST (3 mailboxes)", store.list_mailboxes(user.id))
        report = {name: (sum(c.values()), dict(c)) for name, c in counts.items()}
        print("\n".join(f"{name}: {total} {detail}" for name, (total, detail) in report.items()))
        for name, bound in BOUNDS.items():
            assert report[name][0] <= bound, (name, report[name])
        assert await store.check_integrity() == []
    finally:
        await store.close()
