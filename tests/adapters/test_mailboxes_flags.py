"""Mailbox management, flags with MODSEQ and UNCHANGEDSINCE, copy and move, status and search rows."""

from __future__ import annotations

from typing import Any

import pytest

from tests.adapters.conftest import make_user, prepared
from wildduck.errors import AlreadyExists, NotFound, QuotaExceeded
from wildduck.model import FlagMode, JournalOp, MailboxSpec, NewMessage

PDF = b"%PDF" + bytes(range(256)) * 10


async def setup(store: Any, n: int = 3, quota: int | None = None) -> tuple[Any, Any]:
    user = await make_user(store, quota=quota)
    inbox = await store.find_mailbox(user.id, "INBOX")
    await store.append_messages([NewMessage(user.id, inbox.id, prepared(f"m{i}", (PDF,), subject=f"s{i}"))
                                 for i in range(n)])
    return user, inbox


async def test_create_rename_delete(store: Any) -> None:
    user = await make_user(store)
    work = await store.create_mailbox(user.id, MailboxSpec("Work"))
    await store.create_mailbox(user.id, MailboxSpec("Work/Reports"))
    await store.create_mailbox(user.id, MailboxSpec("Workshop"))
    with pytest.raises(AlreadyExists):
        await store.create_mailbox(user.id, MailboxSpec("Work"))
    renamed_all = await store.rename_mailbox(work.id, "Job")
    assert [(m.id, m.path) for m in renamed_all][0] == (work.id, "Job")
    assert [m.path for m in renamed_all] == ["Job", "Job/Reports"]
    paths = {m.path for m in await store.list_mailboxes(user.id)}
    assert {"Job", "Job/Reports", "Workshop"} <= paths and "Work" not in paths and "Work/Reports" not in paths
    renamed = await store.find_mailbox(user.id, "Job")
    assert renamed is not None and renamed.uid_validity == work.uid_validity
    with pytest.raises(AlreadyExists):
        await store.rename_mailbox(renamed.id, "Workshop")
    assert await store.set_subscribed(user.id, "Job", False)
    assert not (await store.get_mailbox(renamed.id)).subscribed
    await store.delete_mailbox(renamed.id)
    with pytest.raises(NotFound):
        await store.get_mailbox(renamed.id)


async def test_delete_mailbox_releases_messages(store: Any) -> None:
    user, inbox = await setup(store)
    box = await store.create_mailbox(user.id, MailboxSpec("Box"))
    await store.copy_messages(inbox.id, [1, 2, 3], box.id)
    blob = (await store.get_message(inbox.id, 1)).parts[0].blob
    assert await store.blob_refcount(blob) == 6
    await store.delete_mailbox(box.id)
    assert await store.blob_refcount(blob) == 3
    assert await store.check_integrity() == []


async def test_flags_modes_and_modseq(store: Any) -> None:
    _user, inbox = await setup(store)
    change = await store.set_flags(inbox.id, [1, 2], FlagMode.ADD, ["\\Seen", "$Work"])
    assert [(c.uid, c.flags) for c in change.changed] == [(1, ("\\Seen", "$Work")), (2, ("\\Seen", "$Work"))]
    assert [c.modseq for c in change.changed] == [5, 6]  # a mailbox starts at MODSEQ 1; 3 arrivals
    again = await store.set_flags(inbox.id, [1], FlagMode.ADD, ["\\Seen"])
    assert again.changed == []  # no change, no new MODSEQ
    removed = await store.set_flags(inbox.id, [1, 3], FlagMode.REMOVE, ["$Work"])
    assert [c.uid for c in removed.changed] == [1]
    replaced = await store.set_flags(inbox.id, [3], FlagMode.REPLACE, ["\\Flagged"])
    assert replaced.changed[0].flags == ("\\Flagged",)
    flags = {m.uid: m.flags for m in (await store.mailbox_snapshot(inbox.id)).messages}
    assert flags == {1: ("\\Seen",), 2: ("\\Seen", "$Work"), 3: ("\\Flagged",)}
    journal = (await store.read_journal(inbox.id, 4)).entries
    assert [e.op for e in journal] == [JournalOp.FLAGS] * 4 and journal[-1].flags == ("\\Flagged",)
    status = await store.mailbox_status(inbox.id)
    assert (status.messages, status.unseen, status.first_unseen, status.recent) == (3, 1, 3, 3)
    assert status.size == 3 * (await store.get_message(inbox.id, 1)).size and status.mailbox.id == inbox.id


async def test_unchangedsince(store: Any) -> None:
    _user, inbox = await setup(store)
    await store.set_flags(inbox.id, [2], FlagMode.ADD, ["\\Answered"])  # message 2 now has MODSEQ 5
    change = await store.set_flags(inbox.id, [1, 2], FlagMode.ADD, ["\\Seen"], unchangedsince=4)
    assert [c.uid for c in change.changed] == [1] and change.modified == [2]


async def test_copy_and_move(store: Any) -> None:
    user, inbox = await setup(store)
    trash = await store.find_mailbox(user.id, "Trash")
    await store.set_flags(inbox.id, [2], FlagMode.ADD, ["\\Seen"])
    pairs = await store.copy_messages(inbox.id, [2, 3, 42], trash.id)
    assert pairs == [(2, 1), (3, 2)]
    copied = await store.get_message(trash.id, 1)
    assert copied.flags == ("\\Seen",) and copied.skeleton == (await store.get_message(inbox.id, 2)).skeleton
    used = (await store.get_user(user.id)).storage_used
    moved = await store.copy_messages(inbox.id, [1], trash.id, move=True)
    assert moved == [(1, 3)]
    assert [m.uid for m in await store.list_messages(inbox.id)] == [2, 3]
    assert (await store.get_user(user.id)).storage_used == used  # a move does not change storage
    assert [e.op for e in (await store.read_journal(inbox.id, 5)).entries] == [JournalOp.EXPUNGE]
    assert await store.check_integrity() == []


async def test_copy_respects_quota(store: Any) -> None:
    user, inbox = await setup(store, n=2)
    other = await store.create_mailbox(user.id, MailboxSpec("Other"))
    used = (await store.get_user(user.id)).storage_used
    with pytest.raises(QuotaExceeded):
        await store.copy_messages(inbox.id, [1, 2], other.id, quota=used + len(PDF))
    assert await store.list_messages(other.id) == []
    assert (await store.get_user(user.id)).storage_used == used
    assert await store.copy_messages(inbox.id, [1, 2], other.id, move=True, quota=used) == [(1, 1), (2, 2)]
    assert await store.copy_messages(other.id, [1], inbox.id, quota=None) == [(1, 3)]  # no limit


async def test_search_rows_and_get_messages(store: Any) -> None:
    _user, inbox = await setup(store)
    rows = await store.search_rows(inbox.id)
    assert [r.uid for r in rows] == [1, 2, 3]
    assert all(r.header for r in rows)
    assert [r.header for r in await store.search_rows(inbox.id, with_header=False)] == [b"", b"", b""]
    assert [r.uid for r in await store.search_rows(inbox.id, uids=[3, 1, 99])] == [1, 3]
    records = await store.get_messages(inbox.id, [3, 1, 99])
    assert [r.uid for r in records] == [1, 3]


async def test_uidvalidity_never_repeats_for_a_recreated_mailbox(store: Any) -> None:
    user = await make_user(store)
    first = await store.create_mailbox(user.id, MailboxSpec("Again"))
    await store.delete_mailbox(first.id)
    second = await store.create_mailbox(user.id, MailboxSpec("Again"))
    assert second.uid_validity > first.uid_validity


async def test_text_search_is_a_case_insensitive_substring_match(store: Any) -> None:
    user = await make_user(store)
    inbox = await store.find_mailbox(user.id, "INBOX")
    other = await store.create_mailbox(user.id, MailboxSpec("Other"))
    texts = ["Quarterly RÉSUMÉ attached", "nothing here", "the résumé, again", 'say "hi" to 42',
             "100% sure, snake_case", "1000 sure, snakeXcase", "Straße"]
    await store.append_messages([NewMessage(user.id, inbox.id, prepared(t)) for t in texts])
    await store.append_messages([NewMessage(user.id, other.id, prepared("résumé elsewhere"))])
    assert await store.text_search(inbox.id, "résumé", headers_too=False) == {1, 3}
    assert await store.text_search(inbox.id, "TERLY R", headers_too=False) == {1}
    assert await store.text_search(inbox.id, '"hi"', headers_too=False) == {4}
    assert await store.text_search(inbox.id, "42", headers_too=False) == {4}  # shorter than a trigram
    assert await store.text_search(inbox.id, "é", headers_too=False) == {1, 3}
    assert await store.text_search(inbox.id, "", headers_too=False) == {1, 2, 3, 4, 5, 6, 7}
    assert await store.text_search(inbox.id, "0% sure", headers_too=False) == {5}  # not a LIKE wildcard
    assert await store.text_search(inbox.id, "e_c", headers_too=False) == {5}
    # RFC 5051's simple case mapping, as Dovecot: no full folding (ß is not ss), accents decomposed (NFD)
    assert await store.text_search(inbox.id, "STRASSE", headers_too=False) == set()
    assert await store.text_search(inbox.id, "STRAßE", headers_too=False) == {7}
    assert await store.text_search(inbox.id, "resume", headers_too=False) == set()
    assert await store.text_search(inbox.id, "RÉSUM", headers_too=False) == {1, 3}
    assert await store.text_search(inbox.id, "absent words", headers_too=True) == set()


async def test_text_search_headers_and_copies(store: Any) -> None:
    user = await make_user(store)
    inbox = await store.find_mailbox(user.id, "INBOX")
    other = await store.create_mailbox(user.id, MailboxSpec("Other"))
    msg = prepared("body words")
    msg = type(msg)(**{**{f: getattr(msg, f) for f in msg.__dataclass_fields__}, "header_text": "Subject: Zebra"})
    await store.append_messages([NewMessage(user.id, inbox.id, msg), NewMessage(user.id, inbox.id, prepared("x"))])
    assert await store.text_search(inbox.id, "zebra", headers_too=True) == {1}
    assert await store.text_search(inbox.id, "zebra", headers_too=False) == set()
    await store.copy_messages(inbox.id, [1], other.id)
    assert await store.text_search(other.id, "body wor", headers_too=False) == {1}
    await store.expunge(inbox.id, [1])
    assert await store.text_search(other.id, "zebra", headers_too=True) == {1}
    assert await store.text_search(inbox.id, "zebra", headers_too=True) == set()
    await store.copy_messages(other.id, [1], inbox.id, move=True)
    assert await store.text_search(inbox.id, "zebra", headers_too=True) == {3}
    await store.delete_mailbox(other.id)
    assert await store.check_integrity() == []
    await store.expunge(inbox.id, [2, 3])
    assert await store.check_integrity() == []


async def test_subscriptions_belong_to_names(store: Any) -> None:
    user = await make_user(store)
    base = set(await store.list_subscriptions(user.id))  # the default mailboxes
    a = await store.create_mailbox(user.id, MailboxSpec("A"))
    await store.create_mailbox(user.id, MailboxSpec("A/B", subscribed=False))
    assert await store.set_subscribed(user.id, "A/B", True)
    assert not await store.set_subscribed(user.id, "A/B", True)  # nothing changed
    assert set(await store.list_subscriptions(user.id)) - base == {"A", "A/B"}
    await store.rename_mailbox(a.id, "C")  # subscriptions follow the rename, children included
    assert set(await store.list_subscriptions(user.id)) - base == {"C", "C/B"}
    assert all(m.subscribed for m in await store.list_mailboxes(user.id) if m.path.startswith("C"))
    c = await store.find_mailbox(user.id, "C")
    await store.delete_mailbox(c.id)  # the subscription outlives the mailbox (RFC 3501 6.3.6)
    assert set(await store.list_subscriptions(user.id)) - base == {"C", "C/B"}
    again = await store.create_mailbox(user.id, MailboxSpec("C", subscribed=False))
    assert again.subscribed  # the name is still subscribed
    assert await store.set_subscribed(user.id, "Gone", True)  # names without a mailbox can be held too
    assert await store.set_subscribed(user.id, "Gone", False)
    assert not await store.set_subscribed(user.id, "Gone", False)
    assert await store.set_subscribed(user.id, "C", False)
    assert not (await store.get_mailbox(again.id)).subscribed


async def test_mailbox_snapshot(store: Any) -> None:
    _user, inbox = await setup(store)
    await store.set_flags(inbox.id, [2], FlagMode.ADD, ["\\Seen"])
    assert await store.claim_recent(inbox.id, 2) == 1
    snap = await store.mailbox_snapshot(inbox.id)
    assert [(m.uid, m.flags) for m in snap.messages] == [(1, ()), (2, ("\\Seen",)), (3, ())]
    assert snap.mailbox.recent_from == 2  # 2 and 3 are still \Recent
    assert snap.mailbox.highest_modseq == max(m.modseq for m in snap.messages)
    with pytest.raises(NotFound):
        await store.mailbox_snapshot("nope")
