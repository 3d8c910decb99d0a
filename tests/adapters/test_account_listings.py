"""The Accounts role's listings and changes for the HTTP API, on every adapter: filtered keyset pages of users and
addresses, names and tags, address updates, the storage recount and the authentication log."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from tests.adapters.conftest import make_user, prepared
from wildduck.errors import AlreadyExists, InvalidInput, NotFound
from wildduck.model import AUTHLOG_BUCKET, AuthEvent, Listing, NewMessage


async def _walk(list_page: Any, base: Listing, limit: int, *, descending: bool = False) -> list[str]:
    """Every id of a listing, forward a page at a time; then backwards from the end, which must agree."""
    ids: list[str] = []
    after = None
    while True:
        page = await list_page(dataclasses.replace(base, after=after, limit=limit))
        ids += [x.id for x in page]
        if len(page) < limit:
            break
        after = page[-1].id
    back: list[str] = []
    before = "z" * 24 if not descending else "0" * 24  # beyond the last id in listing order
    while True:
        page = await list_page(dataclasses.replace(base, before=before, limit=limit))
        back = [x.id for x in page] + back
        if len(page) < limit:
            break
        before = page[0].id
    assert back == ids
    return ids


async def test_users_are_listed_in_pages_with_filters(store: Any) -> None:
    users = [await make_user(store, f"user{i:02d}") for i in range(11)]
    await store.set_profile(users[3].id, name="Three", tags=["VIP", "blue"])
    await store.set_profile(users[4].id, tags=["vip"])
    await store.set_profile(users[5].id, tags=["blue", "green"])
    await store.add_address(users[6].id, "needle@example.org", "needle@example.org", main=True)
    ids = sorted(u.id for u in users)
    assert await _walk(store.list_users, Listing(), 3) == ids
    assert await store.count_users() == 11
    assert [u.id for u in await store.list_users(Listing(tags=("vip",)))] == sorted([users[3].id, users[4].id])
    both = Listing(tags=("vip", "green"), required_tags=("blue",))
    assert [u.id for u in await store.list_users(both)] == sorted([users[3].id, users[5].id])
    assert [u.id for u in await store.list_users(dataclasses.replace(both, tags=("vip",)))] == [users[3].id]
    assert await store.count_users(Listing(required_tags=("blue", "green"))) == 1
    assert [u.username for u in await store.list_users(Listing(query="needle"))] == ["user06"]
    assert [u.username for u in await store.list_users(Listing(query="user1"))] == ["user10"]
    assert await store.count_users(Listing(query="user0")) == 10
    again = await store.get_user(users[3].id)
    assert again.name == "Three" and again.tags == ("VIP", "blue")
    await store.set_profile(users[3].id, tags=[])
    assert (await store.get_user(users[3].id)).tags == ()
    assert (await store.get_user(users[3].id)).name == "Three"
    with pytest.raises(NotFound):
        await store.set_profile("f" * 24, name="x")


async def test_addresses_of_all_users_and_their_updates(store: Any) -> None:
    alice, bob = await make_user(store, "alice"), await make_user(store, "bob")
    extra = await store.add_address(alice.id, "al@example.org", "al@example.org", name="Al", tags=["Work"])
    assert (extra.name, extra.tags) == ("Al", ("Work",))
    assert await store.get_address(extra.id) == extra
    every = await _walk(store.list_all_addresses, Listing(), 2)
    assert len(every) == 3 and every == sorted(every)
    assert await store.count_addresses(Listing(query="example.org")) == 1
    assert [a.id for a in await store.list_all_addresses(Listing(tags=("work",)))] == [extra.id]
    renamed = await store.update_address(extra.id, address=("Al.B@example.org", "alb@example.org"), name="B",
                                         tags=["home"])
    assert (renamed.address, renamed.addrview, renamed.name, renamed.tags, renamed.main) == \
        ("Al.B@example.org", "alb@example.org", "B", ("home",), False)
    assert await store.resolve_address("al@example.org") is None
    assert (await store.resolve_address("alb@example.org")).id == extra.id
    with pytest.raises(AlreadyExists):
        await store.update_address(extra.id, address=("bob@example.com", "bob@example.com"))
    await store.update_address(extra.id, main=True)
    assert [a.id for a in await store.list_addresses(alice.id) if a.main] == [extra.id]
    assert [a.main for a in await store.list_addresses(bob.id)] == [True]
    with pytest.raises(InvalidInput):
        await store.update_address(extra.id, main=False)
    with pytest.raises(NotFound):
        await store.get_address("f" * 24)
    with pytest.raises(NotFound):
        await store.update_address("f" * 24, name="x")


async def _drift(store: Any, user_id: str, used: int) -> None:
    """Make the stored storage figure wrong, as a bug or a crash between steps would."""
    if hasattr(store, "db"):  # MongoDB: a ledger entry with the wrong total
        top = store.db.storage.find_one({"user": user_id}, sort=[("seq", -1)])
        store.db.storage.insert_one({"user": user_id, "seq": (top["seq"] + 1) if top else 1, "used": used,
                                     "created": dt.datetime.now(dt.UTC)})
    else:
        await store._write(lambda conn: conn.execute("UPDATE users SET storage_used = ? WHERE id = ?",
                                                     (used, user_id)))


async def test_storage_is_recounted_from_the_messages(store: Any) -> None:
    user = await make_user(store)
    inbox = await store.find_mailbox(user.id, "INBOX")
    await store.append_messages([NewMessage(user.id, inbox.id, prepared("x" * n)) for n in (100, 2000)])
    right = (await store.get_user(user.id)).storage_used
    assert right > 2100
    assert await store.recount_storage(user.id) == (right, right)
    await _drift(store, user.id, 5)
    assert await store.recount_storage(user.id) == (5, right)
    assert (await store.get_user(user.id)).storage_used == right
    with pytest.raises(NotFound):
        await store.recount_storage("f" * 24)


def _attempt(user_id: str, when: dt.datetime, *, result: str = "success", ip: str = "192.0.2.1",
             events: int = 1) -> AuthEvent:
    return AuthEvent(id="", user_id=user_id, action="authentication", result=result, protocol="IMAP", ip=ip,
                     source="master", created=when, last=when, events=events,
                     expires=when + dt.timedelta(days=30))


async def test_the_authentication_log_merges_pages_and_expires(store: Any) -> None:
    user, other = await make_user(store, "alice"), await make_user(store, "bob")
    start = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)
    await store.record_auth([_attempt(user.id, start), _attempt(user.id, start, result="fail", events=3)])
    later = start + dt.timedelta(hours=1)
    await store.record_auth([_attempt(user.id, later, events=2), _attempt(other.id, later),
                             _attempt("f" * 24, later)])  # an unknown user's attempt is dropped
    log = await store.auth_log(user.id)
    assert sorted((e.result, e.events) for e in log) == [("fail", 3), ("success", 3)]
    ok = next(e for e in log if e.result == "success")
    assert ok.created == start and ok.last == later and ok.key == "IMAP^192.0.2.1^authentication^success"
    assert await store.get_auth_event(user.id, ok.id) == ok
    with pytest.raises(NotFound):
        await store.get_auth_event(other.id, ok.id)  # not bob's
    # past the bucket, an attempt alike starts a new entry; every entry is listed newest first
    for k in range(1, 6):
        await store.record_auth([_attempt(user.id, start + k * (AUTHLOG_BUCKET + dt.timedelta(minutes=1)))])
    assert await store.count_auth(user.id) == 7
    assert await store.count_auth(user.id, action="authentication", ip="192.0.2.1") == 7
    assert await store.count_auth(user.id, ip="198.51.100.7") == 0
    assert await store.count_auth(user.id, action="password change") == 0
    newest_first = await store.auth_log(user.id)
    assert [e.id for e in newest_first] == sorted((e.id for e in newest_first), reverse=True)
    assert await _walk(lambda listing: store.auth_log(user.id, listing), Listing(), 2, descending=True) == \
        [e.id for e in newest_first]
    # expiry
    assert await store.prune_auth(start + dt.timedelta(days=30, minutes=30)) == 2
    assert await store.count_auth(user.id) == 5 and await store.count_auth(other.id) == 1
