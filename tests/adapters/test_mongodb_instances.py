"""Two ``MongoStore`` objects on one database (two instances of the scaled-out deployment), racing: MongoDB gives no
transactions here and FerretDB (the test server) no atomic update, so what keeps them apart is the unique indexes
the allocation inserts into. Also: a pending journal entry left by a writer that died is settled by a reader."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
import trio

from tests.adapters.conftest import make_user, prepared
from wildduck.adapters.mongodb import journal
from wildduck.errors import QuotaExceeded
from wildduck.model import AppendResult, FlagMode, JournalOp, MailboxSpec, NewMessage

pytestmark = pytest.mark.parametrize("kind", ["mongodb"])


@pytest.fixture
async def store(instances: list[Any]) -> Any:
    """One of the instances."""
    return instances[0]

PDF = b"%PDF-1.4 " + bytes(range(256)) * 8
PNG = b"\x89PNG" + b"\x00\x01" * 300


async def test_concurrent_appends_from_two_instances_get_distinct_increasing_uids(instances: list[Any]) -> None:
    a, b = instances
    user = await make_user(a)
    inbox = await b.find_mailbox(user.id, "INBOX")
    results: dict[str, list[AppendResult]] = {"a": [], "b": []}

    async def appender(name: str, store: Any, seed: int) -> None:
        rng = random.Random(seed)
        for i in range(10):
            batch = [NewMessage(user.id, inbox.id, prepared(f"{name}{i}-{k}")) for k in range(rng.randint(1, 3))]
            for r in await store.append_messages(batch):
                assert isinstance(r, AppendResult)
                results[name].append(r)

    with trio.fail_after(120):
        async with trio.open_nursery() as n:
            for name, store, seed in (("a", a, 1), ("b", b, 2), ("a", a, 3), ("b", b, 4)):
                n.start_soon(appender, name, store, seed)
    everything = results["a"] + results["b"]
    uids = sorted(r.uid for r in everything)
    assert uids == list(range(1, len(everything) + 1)), "UIDs repeated or missing"
    assert len({r.modseq for r in everything}) == len(everything)
    for mine in results.values():  # each instance's own UIDs ascend with its MODSEQs
        ordered = sorted(mine, key=lambda r: r.modseq)
        assert [r.uid for r in ordered] == sorted(r.uid for r in mine)
    page = await a.read_journal(inbox.id, 1)
    exists = [e.uid for e in page.entries if e.op is JournalOp.EXISTS]
    assert exists == uids, "the journal announces UIDs out of order"
    assert [m.uid for m in (await b.mailbox_snapshot(inbox.id)).messages] == uids
    assert await a.check_integrity() == []


async def test_concurrent_copies_and_expunges_keep_blob_references_exact(instances: list[Any]) -> None:
    a, b = instances
    user = await make_user(a)
    inbox = await a.find_mailbox(user.id, "INBOX")
    box = await a.create_mailbox(user.id, MailboxSpec("Box"))
    p = prepared("with attachments", (PDF, PNG))
    await a.append_messages([NewMessage(user.id, inbox.id, p) for _ in range(8)])

    async def copier(store: Any, seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(8):
            uid_next = (await store.get_mailbox(inbox.id)).uid_next
            await store.copy_messages(inbox.id, rng.sample(range(1, uid_next), 3), box.id,
                                      move=rng.random() < 0.3)

    async def expunger(store: Any, seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(8):
            for mailbox in (inbox, box):
                uid_next = (await store.get_mailbox(mailbox.id)).uid_next
                if uid_next > 1:
                    await store.expunge(mailbox.id, rng.sample(range(1, uid_next), min(2, uid_next - 1)))

    async def appender(store: Any) -> None:
        for _ in range(4):
            await store.append_messages([NewMessage(user.id, inbox.id, p)])

    with trio.fail_after(120):
        async with trio.open_nursery() as n:
            n.start_soon(copier, a, 1)
            n.start_soon(expunger, b, 2)
            n.start_soon(copier, b, 3)
            n.start_soon(expunger, a, 4)
            n.start_soon(appender, b)
    held = len(await a.list_messages(inbox.id)) + len(await a.list_messages(box.id))
    for part in p.parts:
        assert await b.blob_refcount(part.blob) == held
    assert await a.check_integrity() == []
    assert (await a.get_user(user.id)).storage_used == held * p.size
    for m in (inbox, box):
        await b.delete_mailbox(m.id)
    for part in p.parts:
        assert await a.blob_refcount(part.blob) == 0
    assert await a.collect_garbage(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)) == 2
    assert await b.check_integrity() == []


async def test_quota_is_never_overrun_by_two_instances(instances: list[Any]) -> None:
    a, b = instances
    user = await make_user(a)
    inbox = await a.find_mailbox(user.id, "INBOX")
    other = await b.create_mailbox(user.id, MailboxSpec("Other"))
    size = prepared("x" * 100).size
    limit = 12 * size + size // 2
    outcomes: list[Any] = []

    async def append(store: Any) -> None:
        outcomes.extend(await store.append_messages([NewMessage(user.id, inbox.id, prepared("x" * 100),
                                                                quota=limit)]))

    async def copy(store: Any) -> None:
        try:
            await store.copy_messages(inbox.id, [1], other.id, quota=limit)
            outcomes.append(True)
        except QuotaExceeded:
            outcomes.append(False)

    with trio.fail_after(120):
        await append(a)
        async with trio.open_nursery() as n:
            for i in range(30):
                n.start_soon(append if i % 3 else copy, a if i % 2 else b)
    stored = sum(o is True or isinstance(o, AppendResult) for o in outcomes)
    assert stored == 12  # exactly as many as fit
    used = (await b.get_user(user.id)).storage_used
    sizes = [m.size for mb in (inbox, other) for m in await a.list_messages(mb.id)]
    assert used == sum(sizes) == 12 * size <= limit
    assert await a.check_integrity() == []


async def test_concurrent_flag_changes_of_one_message_from_two_instances_are_all_kept(instances: list[Any]) -> None:
    """Two instances adding flags to the same messages at once: every flag is kept (on FerretDB an update's filter
    is no compare-and-set, so without the claim of the MODSEQ read one instance's flags were overwritten), and
    each message's MODSEQ is that of its last journal entry."""
    a, b = instances
    user = await make_user(a)
    inbox = await a.find_mailbox(user.id, "INBOX")
    await a.append_messages([NewMessage(user.id, inbox.id, prepared(f"m{k}")) for k in range(4)])
    uids = [1, 2, 3, 4]
    every: list[str] = []
    with trio.fail_after(120):
        for round_ in range(8):
            names = [f"$r{round_}k{k}" for k in range(4)]
            every += names
            async with trio.open_nursery() as n:
                for k, name in enumerate(names):
                    n.start_soon((a, b)[k % 2].set_flags, inbox.id, uids, FlagMode.ADD, [name])
    for record in [await b.get_message(inbox.id, uid) for uid in uids]:
        assert sorted(record.flags) == sorted(every), record.uid
    last = {e.uid: e.modseq for e in (await a.read_journal(inbox.id, 1)).entries if e.op is JournalOp.FLAGS}
    assert {s.uid: s.modseq for s in await a.list_messages(inbox.id)} == last
    assert await a.check_integrity() == []


async def test_a_pending_entry_of_a_dead_writer_is_settled(store: Any) -> None:
    """A writer that reserved its journal entries and died before committing them holds every reader's watermark
    below them, until a reader finds them older than the timeout: void when their change is not there (a message
    never inserted), committed when it is."""
    user = await make_user(store)
    inbox = await store.find_mailbox(user.id, "INBOX")
    await store.append_messages([NewMessage(user.id, inbox.id, prepared("first"))])
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=journal.PENDING_TIMEOUT + 60)

    def die_after_reserving(message: str, when: dt.datetime) -> None:
        journal.reserve(store.db, inbox.id, [journal.Change(JournalOp.EXISTS, None, message)], when)

    await store._write(lambda: die_after_reserving("f" * 24, dt.datetime.now(dt.UTC)))
    await store.append_messages([NewMessage(user.id, inbox.id, prepared("third"))])
    young = await store.read_journal(inbox.id, 2)
    assert (young.entries, young.watermark) == ([], 2)  # a writer at work: the watermark waits for it
    assert [m.uid for m in (await store.mailbox_snapshot(inbox.id)).messages] == [1]
    await store._write(lambda: store.db.journal.update_many({"pend": True}, {"$set": {"created": long_ago}}))
    settled = await store.read_journal(inbox.id, 2)
    assert [(e.op, e.uid) for e in settled.entries] == [(JournalOp.EXISTS, 3)] and settled.watermark == 4
    assert not settled.pruned and settled.mailbox is not None and settled.mailbox.uid_next == 4
    assert await store.check_integrity() == []
    # a dead writer whose message did get in: its entry is committed, the message announced
    await store._write(lambda: die_after_reserving("e" * 24, long_ago))
    record = await store.get_message(inbox.id, 3)
    await store._write(lambda: store.db.messages.insert_one(
        {**store.db.messages.find_one({"_id": record.id}), "_id": "e" * 24, "uid": 4, "modseq": 5}))
    late = await store.read_journal(inbox.id, 4)
    assert [(e.op, e.uid, e.message_id) for e in late.entries] == [(JournalOp.EXISTS, 4, "e" * 24)]
    assert [m.uid for m in (await store.mailbox_snapshot(inbox.id)).messages] == [1, 3, 4]


async def test_attachments_are_standard_gridfs_files_named_by_hash(store: Any) -> None:
    import gridfs

    from wildduck.adapters._codec import unpack

    user = await make_user(store)
    inbox = await store.find_mailbox(user.id, "INBOX")
    p = prepared("x", (PDF,))
    await store.append_messages([NewMessage(user.id, inbox.id, p)])
    blob = p.parts[0].blob
    entry = await store._read(lambda: store.db.blobs.find_one({"_id": blob}))
    stored = await store._read(lambda: gridfs.GridFSBucket(store.db, "attachments")
                               .open_download_stream_by_name(blob).read())
    assert unpack(stored, entry["z"], entry["raw"]) == PDF and entry["stored"] < len(PDF)


async def test_references_of_a_writer_that_died_are_collected(store: Any) -> None:
    """A writer that took its blob references (and stored the blob) but died before writing its message leaves
    references of no message: the integrity check says so, the collector drops them and then the blob."""
    from wildduck.adapters.mongodb.blobs import take_refs

    user = await make_user(store)
    inbox = await store.find_mailbox(user.id, "INBOX")
    p = prepared("never written", (PDF,))
    blob = p.parts[0].blob
    await store._write(lambda: take_refs(store.db, [(blob, "d" * 24, user.id, inbox.id)], p.blobs,
                                         dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)))
    assert await store.blob_refcount(blob) == 1
    assert any("references of no message" in problem for problem in await store.check_integrity())
    assert await store.collect_garbage(dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)) == 0  # too young
    assert await store.blob_refcount(blob) == 1
    assert await store.collect_garbage(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)) == 1
    assert await store.blob_refcount(blob) == 0 and await store.check_integrity() == []
