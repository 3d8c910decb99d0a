"""Two contracts that hold across concurrent callers: the \\Recent watermark (a message is claimed by one session
only) and the quota's conditional increment (storage never goes over the limit the domain passes)."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from tests.adapters.conftest import make_user, prepared
from wildduck.errors import NotFound, QuotaExceeded
from wildduck.model import AppendResult, MailboxSpec, NewMessage


async def test_new_messages_are_recent_until_claimed(store: Any) -> None:
    user = await make_user(store)
    inbox = await store.find_mailbox(user.id, "INBOX")
    assert inbox.recent_from == 1
    await store.append_messages([NewMessage(user.id, inbox.id, prepared()) for _ in range(3)])
    assert (await store.mailbox_status(inbox.id)).recent == 3
    assert await store.claim_recent(inbox.id, 3) == 1  # the caller knew 1 and 2
    status = await store.mailbox_status(inbox.id)
    assert status.recent == 1 and status.mailbox.recent_from == 3
    assert await store.claim_recent(inbox.id, 2) == 3  # never lowered
    assert await store.claim_recent(inbox.id, 100) == 3  # never past UIDNEXT: later arrivals stay recent
    assert (await store.get_mailbox(inbox.id)).recent_from == 4
    await store.append_messages([NewMessage(user.id, inbox.id, prepared())])
    snap = await store.mailbox_snapshot(inbox.id)
    assert [m.uid for m in snap.messages if m.uid >= snap.mailbox.recent_from] == [4]
    assert (await store.mailbox_status(inbox.id)).recent == 1
    assert all(m.recent_from >= 1 for m in await store.list_mailboxes(user.id))
    with pytest.raises(NotFound):
        await store.claim_recent("0" * 24, 1)


async def test_concurrent_claimers_never_share_a_message(store: Any) -> None:
    user = await make_user(store)
    inbox = await store.find_mailbox(user.id, "INBOX")
    claimed: list[set[int]] = []

    async def session(up_to: int) -> None:
        previous = await store.claim_recent(inbox.id, up_to)
        claimed.append(set(range(previous, up_to)))

    for round_ in range(5):
        await store.append_messages([NewMessage(user.id, inbox.id, prepared()) for _ in range(4)])
        uid_next = (await store.get_mailbox(inbox.id)).uid_next
        async with trio.open_nursery() as n:
            for k in range(6):  # sessions that know different amounts of the mailbox
                n.start_soon(session, uid_next - (k % 3))
        assert (await store.mailbox_status(inbox.id)).recent == 0, round_
    everyone = [uid for c in claimed for uid in c]
    assert len(everyone) == len(set(everyone)), "a message was \\Recent in two sessions"
    assert set(everyone) == set(range(1, 21))


async def test_concurrent_appends_and_copies_never_exceed_the_quota(store: Any) -> None:
    user = await make_user(store)
    inbox = await store.find_mailbox(user.id, "INBOX")
    box = await store.create_mailbox(user.id, MailboxSpec("Box"))
    size = prepared("x" * 100).size
    limit = 10 * size + size // 2
    outcomes: list[Any] = []

    async def append() -> None:
        outcomes.extend(await store.append_messages([NewMessage(user.id, inbox.id, prepared("x" * 100),
                                                                quota=limit)]))

    async with trio.open_nursery() as n:
        for _ in range(25):
            n.start_soon(append)
    assert sum(isinstance(o, AppendResult) for o in outcomes) == 10  # exactly the ones that fit
    assert sum(isinstance(o, QuotaExceeded) for o in outcomes) == 15
    await store.expunge(inbox.id, [o.uid for o in outcomes if isinstance(o, AppendResult)][:4])
    copies: list[bool] = []

    async def copy(uid: int) -> None:
        try:
            await store.copy_messages(inbox.id, [uid], box.id, quota=limit)
            copies.append(True)
        except QuotaExceeded:
            copies.append(False)

    outcomes.clear()
    uids = [m.uid for m in await store.list_messages(inbox.id)]
    async with trio.open_nursery() as n:
        for uid in uids:  # 6 copies
            n.start_soon(copy, uid)
        for _ in range(3):
            n.start_soon(append)
    stored = sum(copies) + sum(isinstance(o, AppendResult) for o in outcomes)
    assert stored == 4  # room for 4 more after the expunge
    used = (await store.get_user(user.id)).storage_used
    sizes = [m.size for mb in (inbox, box) for m in await store.list_messages(mb.id)]
    assert used == sum(sizes) == 10 * size <= limit
    assert await store.check_integrity() == []


async def test_mixed_sizes_fill_the_quota_exactly_as_far_as_they_fit(store: Any) -> None:
    user = await make_user(store)
    inbox = await store.find_mailbox(user.id, "INBOX")
    limit = 5000
    outcomes: list[tuple[int, Any]] = []

    async def append(n: int) -> None:
        item = NewMessage(user.id, inbox.id, prepared("y" * (n * 37 % 700)), quota=limit)
        (outcome,) = await store.append_messages([item])
        outcomes.append((item.prepared.size, outcome))

    async with trio.open_nursery() as n:
        for i in range(40):
            n.start_soon(append, i)
    used = (await store.get_user(user.id)).storage_used
    assert used <= limit
    assert used == sum(s for s, o in outcomes if isinstance(o, AppendResult))
    assert used == sum(m.size for m in await store.list_messages(inbox.id))
    # storage only grew, so an item refused at some moment does not fit now either
    assert all(used + s > limit for s, o in outcomes if isinstance(o, QuotaExceeded))
