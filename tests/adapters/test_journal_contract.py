"""The journal contract (``wildduck.model.JournalPage``) under concurrent writers and a concurrent reader: nothing
missed, nothing twice, MODSEQs ascending, EXISTS UIDs ascending; pruning reported; a deleted mailbox said so."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import trio

from tests.adapters.conftest import make_user, prepared
from wildduck.model import FlagMode, JournalEntry, JournalOp, MailboxSpec, NewMessage


def key(e: JournalEntry) -> tuple[int, JournalOp, int, tuple[str, ...] | None]:
    return e.modseq, e.op, e.uid, e.flags


async def test_a_reader_following_concurrent_writers_misses_nothing(store: Any) -> None:
    user = await make_user(store)
    inbox = await store.find_mailbox(user.id, "INBOX")
    other = await store.create_mailbox(user.id, MailboxSpec("Other"))
    await store.append_messages([NewMessage(user.id, other.id, prepared(f"o{i}")) for i in range(10)])
    await store.append_messages([NewMessage(user.id, inbox.id, prepared(f"seed{i}")) for i in range(5)])
    before = await store.get_mailbox(inbox.id)  # read before any writer starts: where the reader begins
    since = before.highest_modseq
    start = since
    writers_left = 0
    seen: list[JournalEntry] = []
    pages = 0

    async def appender(seed: int) -> None:
        rng = random.Random(seed)
        for i in range(12):
            batch = [NewMessage(user.id, inbox.id, prepared(f"a{seed}-{i}-{k}")) for k in range(rng.randint(1, 3))]
            await store.append_messages(batch)

    async def flagger(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(15):
            uid_next = (await store.get_mailbox(inbox.id)).uid_next
            uids = rng.sample(range(1, uid_next), min(3, uid_next - 1))
            mode = rng.choice(list(FlagMode))
            await store.set_flags(inbox.id, uids, mode, rng.sample(["\\Seen", "\\Flagged", "$Work"], 2))

    async def expunger(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(8):
            uid_next = (await store.get_mailbox(inbox.id)).uid_next
            await store.expunge(inbox.id, [rng.randrange(1, uid_next)])

    async def copier(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(6):
            await store.copy_messages(other.id, rng.sample(range(1, 11), 2), inbox.id)

    async def writer(fn: Any, seed: int) -> None:
        nonlocal writers_left
        try:
            await fn(seed)
        finally:
            writers_left -= 1

    async def reader() -> None:
        nonlocal since, pages
        last_modseq = since
        last_exists = before.uid_next - 1
        while True:
            finished = writers_left == 0  # read once more after the last writer is done
            page = await store.read_journal(inbox.id, since)
            pages += 1
            assert not page.pruned and page.mailbox is not None
            assert page.watermark >= since and page.mailbox.highest_modseq == page.watermark
            for entry in page.entries:
                assert last_modseq < entry.modseq <= page.watermark, "MODSEQs out of order or repeated"
                last_modseq = entry.modseq
                if entry.op is JournalOp.EXISTS:
                    assert entry.uid > last_exists, "a UID announced out of order"
                    last_exists = entry.uid
            seen.extend(page.entries)
            since = page.watermark
            if finished:
                return

    with trio.fail_after(60):
        async with trio.open_nursery() as n:
            jobs = [(appender, 1), (appender, 2), (appender, 3), (flagger, 4), (flagger, 5), (expunger, 6),
                    (copier, 7)]
            writers_left = len(jobs)
            n.start_soon(reader)
            for fn, seed in jobs:
                n.start_soon(writer, fn, seed)
    everything = (await store.read_journal(inbox.id, start)).entries
    assert [key(e) for e in seen] == [key(e) for e in everything]
    assert {e.op for e in seen} == set(JournalOp)
    assert since == (await store.get_mailbox(inbox.id)).highest_modseq
    assert pages > 1, pages


async def test_pruning_is_reported_not_inferred(store: Any) -> None:
    user = await make_user(store)
    inbox = await store.find_mailbox(user.id, "INBOX")
    await store.append_messages([NewMessage(user.id, inbox.id, prepared()) for _ in range(3)])
    await store.set_flags(inbox.id, [2], FlagMode.ADD, ["\\Seen"])
    before = await store.read_journal(inbox.id, 1)
    assert [e.modseq for e in before.entries] == [2, 3, 4, 5] and not before.pruned
    assert await store.prune_journal(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)) == 4
    await store.append_messages([NewMessage(user.id, inbox.id, prepared())])
    behind = await store.read_journal(inbox.id, 3)
    assert behind.pruned  # entries 4 and 5 are gone: the reader must resync from a snapshot
    assert [e.modseq for e in behind.entries] == [6] and behind.watermark == 6
    caught_up = await store.read_journal(inbox.id, 5)
    assert not caught_up.pruned and [e.modseq for e in caught_up.entries] == [6]
    assert await store.prune_journal(dt.datetime.now(dt.UTC) - dt.timedelta(days=1)) == 0
    assert not (await store.read_journal(inbox.id, 5)).pruned  # pruning nothing moves nothing


async def test_a_deleted_mailbox_reads_as_none(store: Any) -> None:
    user = await make_user(store)
    box = await store.create_mailbox(user.id, MailboxSpec("Box"))
    await store.append_messages([NewMessage(user.id, box.id, prepared())])
    renamed = await store.rename_mailbox(box.id, "Renamed")
    page = await store.read_journal(box.id, 1)
    assert page.mailbox == renamed[0] and page.mailbox.path == "Renamed" and len(page.entries) == 1
    await store.delete_mailbox(box.id)
    gone = await store.read_journal(box.id, 1)
    assert (gone.entries, gone.pruned, gone.mailbox) == ([], False, None)
    assert (await store.read_journal("0" * 24, 0)).mailbox is None
