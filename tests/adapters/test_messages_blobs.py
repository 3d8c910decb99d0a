from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import trio

from tests.adapters.conftest import make_user, prepared
from wildduck.errors import NotFound, QuotaExceeded
from wildduck.model import AppendResult, JournalOp, NewMessage

PDF = b"%PDF-1.4 " + bytes(range(256)) * 20
PNG = b"\x89PNG" + b"\x00\x01" * 500


async def inbox_of(store: Any, user: Any) -> Any:
    return await store.find_mailbox(user.id, "INBOX")


async def test_append_and_read_back(store: Any) -> None:
    user = await make_user(store)
    inbox = await inbox_of(store, user)
    p = prepared("body", (PDF,))
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    (res,) = await store.append_messages([NewMessage(user.id, inbox.id, p, ("\\Seen", "\\Seen", "$label"), when)])
    assert isinstance(res, AppendResult) and (res.uid, res.modseq) == (1, 2)
    assert res.uid_validity == inbox.uid_validity
    record = await store.get_message(inbox.id, 1)
    assert record.skeleton == p.skeleton and record.parts == p.parts and record.flags == ("\\Seen", "$label")
    assert record.internal_date == when and record.size == p.size and record.subject == "s"
    assert record.envelope == p.envelope and record.mime_tree == p.mime_tree
    assert await store.get_blobs([p.parts[0].blob]) == {p.parts[0].blob: PDF}
    after = await store.get_mailbox(inbox.id)
    assert (after.uid_next, after.highest_modseq) == (2, 2)
    assert (await store.get_user(user.id)).storage_used == p.size
    with pytest.raises(NotFound):
        await store.get_message(inbox.id, 2)


async def test_batch_allocates_a_contiguous_range(store: Any) -> None:
    user = await make_user(store)
    inbox = await inbox_of(store, user)
    p = prepared()
    results = await store.append_messages([NewMessage(user.id, inbox.id, p) for _ in range(1000)])
    assert [r.uid for r in results] == list(range(1, 1001))
    assert [r.modseq for r in results] == list(range(2, 1002))
    listing = await store.list_messages(inbox.id)
    assert len(listing) == 1000 and listing[-1].uid == 1000


async def test_concurrent_appends_get_distinct_uids(store: Any) -> None:
    user = await make_user(store)
    inbox = await inbox_of(store, user)
    uids: list[int] = []

    async def one() -> None:
        (r,) = await store.append_messages([NewMessage(user.id, inbox.id, prepared())])
        uids.append(r.uid)

    async with trio.open_nursery() as n:
        for _ in range(50):
            n.start_soon(one)
    assert sorted(uids) == list(range(1, 51))


async def test_quota_outcome_per_item(store: Any) -> None:
    small = await make_user(store, "small")
    big = await make_user(store, "big")
    p = prepared("x" * 50)  # 66 bytes: room for one within 100
    small_inbox, big_inbox = (await inbox_of(store, small)).id, (await inbox_of(store, big)).id
    items = [NewMessage(small.id, small_inbox, p, quota=100),
             NewMessage(big.id, big_inbox, p, quota=None),  # no limit
             NewMessage(small.id, small_inbox, p, quota=100),
             NewMessage(small.id, small_inbox, prepared("x" * 10), quota=100)]  # 26 bytes: fits after the first
    a, b, c, d = await store.append_messages(items)
    assert isinstance(a, AppendResult) and isinstance(b, AppendResult) and isinstance(c, QuotaExceeded)
    assert isinstance(d, AppendResult)
    assert (await store.get_user(small.id)).storage_used == p.size + items[3].prepared.size == 92
    assert [m.uid for m in await store.list_messages(small_inbox)] == [1, 2]
    (e,) = await store.append_messages([NewMessage(small.id, small_inbox, prepared(), quota=92)])
    assert isinstance(e, QuotaExceeded)  # already at the limit: nothing fits
    assert await store.check_integrity() == []


async def test_unknown_mailbox_is_an_outcome(store: Any) -> None:
    user = await make_user(store)
    (r,) = await store.append_messages([NewMessage(user.id, "0" * 24, prepared())])
    assert isinstance(r, NotFound)


async def test_attachments_are_stored_once_and_counted(store: Any) -> None:
    users = [await make_user(store, f"u{i}") for i in range(3)]
    p = prepared("hi", (PDF, PNG))
    items = [NewMessage(u.id, (await inbox_of(store, u)).id, p) for u in users]
    await store.append_messages(items)
    stats = await store.blob_stats()
    assert stats.count == 2 and stats.raw_bytes == len(PDF) + len(PNG)
    assert stats.stored_bytes < stats.raw_bytes  # compressed
    for part in p.parts:
        assert await store.blob_refcount(part.blob) == 3
    # another message with the same PDF adds a reference, not a blob
    await store.append_messages([NewMessage(users[0].id, items[0].mailbox_id, prepared("other", (PDF,)))])
    assert (await store.blob_stats()).count == 2
    assert await store.blob_refcount(p.parts[0].blob) == 4
    assert await store.check_integrity() == []


async def test_expunge_releases_references_and_quota(store: Any) -> None:
    user = await make_user(store)
    inbox = await inbox_of(store, user)
    p = prepared("hi", (PDF,))
    await store.append_messages([NewMessage(user.id, inbox.id, p) for _ in range(3)])
    assert await store.expunge(inbox.id, [3, 1, 99]) == [1, 3]
    assert [m.uid for m in await store.list_messages(inbox.id)] == [2]
    assert await store.blob_refcount(p.parts[0].blob) == 1
    assert (await store.get_user(user.id)).storage_used == p.size
    assert (await store.get_mailbox(inbox.id)).highest_modseq == 6
    assert await store.expunge(inbox.id, []) == []
    assert await store.check_integrity() == []


async def test_journal(store: Any) -> None:
    user = await make_user(store)
    inbox = await inbox_of(store, user)
    await store.append_messages([NewMessage(user.id, inbox.id, prepared()) for _ in range(2)])
    await store.expunge(inbox.id, [1])
    page = await store.read_journal(inbox.id, 1)
    assert [(e.op, e.uid, e.modseq) for e in page.entries] == [
        (JournalOp.EXISTS, 1, 2), (JournalOp.EXISTS, 2, 3), (JournalOp.EXPUNGE, 1, 4)]
    assert (page.watermark, page.pruned, page.mailbox) == (4, False, await store.get_mailbox(inbox.id))
    assert [e.modseq for e in (await store.read_journal(inbox.id, 3)).entries] == [4]
    assert await store.prune_journal(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)) == 3
    pruned = await store.read_journal(inbox.id, 1)
    assert (pruned.entries, pruned.watermark, pruned.pruned) == ([], 4, True)
    assert not (await store.read_journal(inbox.id, 4)).pruned  # a reader that had everything lost nothing


async def test_garbage_collection_respects_the_grace_period(store: Any) -> None:
    user = await make_user(store)
    inbox = await inbox_of(store, user)
    p = prepared("hi", (PDF,))
    await store.append_messages([NewMessage(user.id, inbox.id, p)])
    await store.expunge(inbox.id, [1])
    blob = p.parts[0].blob
    assert await store.blob_refcount(blob) == 0
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    assert await store.collect_garbage(past) == 0  # released just now: within the grace period
    # re-referenced before the collector runs: must survive any cutoff
    await store.append_messages([NewMessage(user.id, inbox.id, p)])
    future = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    assert await store.collect_garbage(future) == 0
    assert (await store.get_blobs([blob]))[blob] == PDF
    await store.expunge(inbox.id, [2])
    assert await store.collect_garbage(future) == 1
    with pytest.raises(NotFound):
        await store.get_blobs([blob])
    assert await store.check_integrity() == []


async def test_delete_user_releases_everything(store: Any) -> None:
    a, b = await make_user(store, "a"), await make_user(store, "b")
    p = prepared("hi", (PDF,))
    await store.append_messages([NewMessage(u.id, (await inbox_of(store, u)).id, p) for u in (a, b)])
    await store.delete_user(a.id)
    assert await store.find_user("a") is None and await store.resolve_address("a@example.com") is None
    assert await store.blob_refcount(p.parts[0].blob) == 1
    assert await store.check_integrity() == []
    with pytest.raises(NotFound):
        await store.delete_user(a.id)
