from __future__ import annotations

from typing import Any

import pytest

from tests.adapters.conftest import MAILBOXES, STORES, fresh_database, make_user, open_store
from wildduck.errors import AlreadyExists, InvalidInput, NotFound


async def test_create_and_find(store: Any) -> None:
    user = await make_user(store, "alice", quota=500)
    assert len(user.id) == 24 and user.storage_used == 0 and user.quota == 500
    assert await store.get_user(user.id) == user
    assert await store.find_user("alice") == user
    assert await store.find_user("nobody") is None
    assert [u.username for u in await store.list_users()] == ["alice"]
    with pytest.raises(NotFound):
        await store.get_user("0" * 24)


async def test_default_mailboxes_come_with_the_user(store: Any) -> None:
    user = await make_user(store)
    boxes = await store.list_mailboxes(user.id)
    assert [(b.path, b.special_use) for b in boxes] == [("INBOX", None), ("Sent Mail", "\\Sent"),
                                                         ("Trash", "\\Trash")]
    assert all(b.uid_next == 1 and b.highest_modseq == 1 and b.subscribed and b.uid_validity > 0 for b in boxes)
    inbox = await store.find_mailbox(user.id, "INBOX")
    assert inbox is not None and await store.get_mailbox(inbox.id) == inbox
    assert await store.find_mailbox(user.id, "Nope") is None


async def test_uniqueness(store: Any) -> None:
    await make_user(store, "alice")
    with pytest.raises(AlreadyExists):
        await make_user(store, "alice")
    with pytest.raises(AlreadyExists):  # the address is taken, the username is not: nothing is created
        await store.create_user(username="bob", unameview="bob", password_hash="h", quota=None,
                                addresses=[("alice@example.com", "alice@example.com")], mailboxes=MAILBOXES)
    assert await store.find_user("bob") is None


async def test_addresses(store: Any) -> None:
    user = await make_user(store)
    extra = await store.add_address(user.id, "al.ice@example.org", "alice@example.org")
    assert not extra.main
    assert (await store.resolve_address("alice@example.org")).user_id == user.id
    assert [a.address for a in await store.list_addresses(user.id)] == ["alice@example.com", "al.ice@example.org"]
    with pytest.raises(AlreadyExists):
        await store.add_address(user.id, "x", "alice@example.org")
    with pytest.raises(InvalidInput):
        await store.remove_address("alice@example.com")  # the main address
    await store.remove_address("alice@example.org")
    assert await store.resolve_address("alice@example.org") is None
    with pytest.raises(NotFound):
        await store.remove_address("alice@example.org")
    new_main = await store.add_address(user.id, "a@example.net", "a@example.net", main=True)
    assert [a.address for a in await store.list_addresses(user.id) if a.main] == [new_main.address]


async def test_password_and_quota_updates(store: Any) -> None:
    user = await make_user(store)
    await store.set_password(user.id, "new-hash")
    await store.set_quota(user.id, 42)
    await store.set_disabled(user.id, True)
    again = await store.get_user(user.id)
    assert again.password_hash == "new-hash" and again.quota == 42 and again.disabled
    await store.set_quota(user.id, None)
    await store.set_disabled(user.id, False)
    again = await store.get_user(user.id)
    assert again.quota is None and not again.disabled
    for update in (lambda: store.set_quota("f" * 24, 1), lambda: store.set_disabled("f" * 24, True),
                   lambda: store.set_password("f" * 24, "x")):
        with pytest.raises(NotFound):
            await update()


@pytest.mark.parametrize("kind", STORES)
async def test_reopen_keeps_everything(kind: str, tmp_path: Any) -> None:
    database = fresh_database()  # mongodb: the same database both times (sqlite: the same file)
    s = await open_store(kind, tmp_path, database=database)
    user = await make_user(s)
    await s.close()
    s = await open_store(kind, tmp_path, database=database)
    try:
        assert await s.find_user("alice") == user
    finally:
        await s.close()
