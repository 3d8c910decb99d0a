"""Account administration over the API: names and tags, store-side paging of users and addresses (forward and
back), address updates, the storage recount (one user, and every user as a task) and the authentication log fed
by real IMAP, POP3 and API logins."""

from __future__ import annotations

import imaplib
import poplib
import re
import sqlite3
from typing import Any

import trio

from tests.api.conftest import Api
from wildduck.adapters.sqlite import SqliteStore

ISO_Z = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


async def _walk(api: Api, path: str, limit: int, **params: Any) -> list[str]:
    """Every result id of a listing, forward with ``next``; then back from the last page with ``previous``, which
    must give the same pages."""
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        query = {"limit": limit, **params, **({"next": cursor} if cursor else {})}
        body = (await api.root.get(path, params=query)).json()
        pages.append([r["id"] for r in body["results"]])
        assert (body["previousCursor"] is False) == (len(pages) == 1), body
        if body["nextCursor"] is False:
            break
        cursor = body["nextCursor"]
    last = body
    back = [[r["id"] for r in last["results"]]]
    while last["previousCursor"] is not False:
        last = (await api.root.get(path, params={"limit": limit, **params, "previous": last["previousCursor"]})).json()
        back.insert(0, [r["id"] for r in last["results"]])
    assert back == pages
    return [i for page in pages for i in page]


async def test_names_tags_and_paged_filtered_listings(api: Api) -> None:
    ids = [await api.create_user(f"user{i:02d}", tags=["Staff"] if i % 3 == 0 else []) for i in range(8)]
    r = await api.root.put(f"/users/{ids[1]}", json={"name": "Una Uno", "tags": "VIP, blue"})
    assert r.json() == {"success": True}
    user = (await api.root.get(f"/users/{ids[1]}")).json()
    assert user["name"] == "Una Uno" and user["tags"] == ["VIP", "blue"]
    assert await _walk(api, "/users", 3) == sorted(ids)
    staff = (await api.root.get("/users", params={"tags": "staff"})).json()
    assert staff["total"] == 3 and sorted(u["id"] for u in staff["results"]) == sorted(ids[0::3])
    assert await _walk(api, "/users", 1, tags="staff,vip") == sorted([*ids[0::3], ids[1]])
    both = (await api.root.get("/users", params={"requiredTags": "vip,BLUE"})).json()
    assert [u["username"] for u in both["results"]] == ["user01"]
    assert (await api.root.get("/users", params={"requiredTags": "vip,staff"})).json()["total"] == 0
    # a user token sees itself, and only when it matches
    token = await api.user_token("user01")
    async with api.client(token) as own:
        assert (await own.get("/users", params={"tags": "vip"})).json()["total"] == 1
        assert (await own.get("/users", params={"tags": "staff"})).json()["total"] == 0
        assert (await own.put("/users/me", json={"name": "Me"})).json() == {"success": True}
        r = await own.put("/users/me", json={"tags": ["mine"]})
        assert r.status_code == 403 and r.json()["code"] == "MissingPrivileges"
    r = await api.root.put(f"/users/{ids[1]}", json={"tags": ["x" * 129]})
    assert r.status_code == 400 and set(r.json()["details"]) == {"tags"}
    r = await api.root.put(f"/users/{ids[1]}", json={"tags": [1, 2]})
    assert r.status_code == 400 and r.json()["details"] == {"tags": '"tags" must be an array of strings'}


async def test_addresses_are_updated_and_listed_in_pages(api: Api) -> None:
    alice = await api.create_user("alice")
    bob = await api.create_user("bob")
    r = await api.root.post(f"/users/{alice}/addresses", json={"address": "Al.Ice@Example.org", "name": "Work",
                                                                "tags": ["job"]})
    extra = r.json()["id"]
    one = (await api.root.get(f"/users/{alice}/addresses/{extra}")).json()
    assert (one["name"], one["tags"], one["main"]) == ("Work", ["job"], False)
    every = await _walk(api, "/addresses", 1)
    assert len(every) == 3 and extra in every
    tagged = (await api.root.get("/addresses", params={"tags": "JOB"})).json()
    assert [a["id"] for a in tagged["results"]] == [extra] and tagged["results"][0]["name"] == "Work"
    # rename, make main
    r = await api.root.put(f"/users/{alice}/addresses/{extra}", json={"address": "alice.w@example.org",
                                                                       "main": True, "name": "W"})
    assert r.json() == {"success": True}
    listed = (await api.root.get(f"/users/{alice}/addresses")).json()["results"]
    assert [(a["address"], a["main"], a["name"]) for a in listed] == [  # in addrview order
        ("alice@example.com", False, ""), ("alice.w@example.org", True, "W")]
    assert (await api.root.get("/users/" + alice)).json()["address"] == "alice.w@example.org"
    resolved = (await api.root.get("/addresses/resolve/alicew@example.org")).json()
    assert resolved["id"] == extra and resolved["user"] == alice
    # refusals
    r = await api.root.put(f"/users/{alice}/addresses/{extra}", json={"main": False})
    assert r.status_code == 400 and r.json() == {"error": "Cannot unset main status", "code": "InputValidationError"}
    r = await api.root.put(f"/users/{alice}/addresses/{extra}", json={"address": "bob@example.com"})
    assert r.status_code == 400 and r.json()["code"] == "AddressExistsError"
    r = await api.root.put(f"/users/{alice}/addresses/{extra}", json={"address": "not an address"})
    assert r.status_code == 400 and set(r.json()["details"]) == {"address"}
    r = await api.root.put(f"/users/{bob}/addresses/{extra}", json={"name": "x"})  # not bob's
    assert r.status_code == 404 and r.json()["code"] == "AddressNotFound"
    r = await api.root.put(f"/users/{alice}/addresses/{extra}", json={})
    assert r.status_code == 400 and r.json()["error"] == "Nothing was changed"


def _set_storage(api: Api, user_id: str, used: int) -> None:
    """Make the stored figure wrong, as a crash between steps or an old bug would (on MongoDB: a ledger entry)."""
    store = api.server.store
    if not isinstance(store, SqliteStore):
        from wildduck.adapters.mongodb.base import now_ms
        from wildduck.adapters.mongodb.steps import add_storage, storage_used

        add_storage(store.db, user_id, [(used - storage_used(store.db, user_id), None)], now_ms())
        return
    with sqlite3.connect(next(api.server.services.config.data_dir.glob("*.db"))) as conn:
        conn.execute("UPDATE users SET storage_used = ? WHERE id = ?", (used, user_id))


async def test_the_quota_is_recounted(api: Api) -> None:
    alice = await api.create_user("alice")
    bob = await api.create_user("bob")
    for user in (alice, bob):
        r = await api.root.post(f"/users/{user}/mailboxes/{await _inbox(api, user)}/messages",
                                content=b"Subject: hi\r\n\r\n" + b"x" * 1000, headers={"Content-Type":
                                                                                          "message/rfc822"})
        assert r.status_code == 200, r.text
    used = (await api.root.get(f"/users/{alice}")).json()["limits"]["quota"]["used"]
    assert used > 1000
    _set_storage(api, alice, 7)
    r = await api.root.post(f"/users/{alice}/quota/reset")
    assert r.json() == {"success": True, "storageUsed": used, "previousStorageUsed": 7}
    assert (await api.root.get(f"/users/{alice}")).json()["limits"]["quota"]["used"] == used
    r = await api.root.post("/users/0123456789abcdef01234567/quota/reset")
    assert r.status_code == 404 and r.json()["code"] == "UserNotFound"
    # every user, as a task
    _set_storage(api, alice, 1)
    _set_storage(api, bob, 2)
    r = await api.root.post("/quota/reset")
    assert r.json()["success"] is True and len(r.json()["task"]) == 24
    with trio.fail_after(10):
        for _ in range(1000):  # the task is done when both figures are right again
            if [(await api.root.get(f"/users/{u}")).json()["limits"]["quota"]["used"] for u in (alice, bob)] \
                    == [used, used]:
                break
            await trio.sleep(0.05)
    token = await api.user_token("alice")
    async with api.client(token) as own:
        assert (await own.post("/users/me/quota/reset")).status_code == 403
        assert (await own.post("/quota/reset")).status_code == 403


async def _inbox(api: Api, user_id: str) -> str:
    boxes = (await api.root.get(f"/users/{user_id}/mailboxes")).json()["results"]
    return next(b["id"] for b in boxes if b["path"] == "INBOX")


def _imap_logins(address: tuple[str, int], password: str) -> None:
    m = imaplib.IMAP4(*address, timeout=30)
    try:
        m.login("alice", password)
    except imaplib.IMAP4.error:
        pass
    else:
        m.logout()


async def test_the_authentication_log_counts_real_logins(api: Api) -> None:
    alice = await api.create_user("alice")
    bob = await api.create_user("bob")
    imap = api.server.address("imap")
    for password in ("secret-pass", "secret-pass", "wrong-pass"):
        await trio.to_thread.run_sync(_imap_logins, imap, password)

    def pop3() -> None:
        p = poplib.POP3(*api.server.address("pop3"), timeout=30)
        p.user("alice")
        p.pass_("secret-pass")
        p.quit()

    await trio.to_thread.run_sync(pop3)
    await api.user_token("alice")
    log = (await api.root.get(f"/users/{alice}/authlog")).json()
    assert log["success"] is True and log["total"] == 4
    seen = {(e["protocol"], e["result"]): e for e in log["results"]}
    assert {k: e["events"] for k, e in seen.items()} == {("IMAP", "success"): 2, ("IMAP", "fail"): 1,
                                                         ("POP3", "success"): 1, ("API", "success"): 1}
    entry = seen[("IMAP", "success")]
    assert entry["action"] == "authentication" and entry["ip"] == "127.0.0.1" and entry["source"] == "master"
    assert all(re.fullmatch(ISO_Z, entry[k]) for k in ("created", "last", "expires"))
    assert entry["last"] >= entry["created"] and entry["expires"] > entry["last"]
    # filters, paging, one event
    assert (await api.root.get(f"/users/{alice}/authlog", params={"filterip": "192.0.2.1"})).json()["total"] == 0
    assert (await api.root.get(f"/users/{alice}/authlog", params={"action": "Authentication"})).json()["total"] == 4
    pages = await _walk(api, f"/users/{alice}/authlog", 1)
    assert sorted(pages) == sorted(e["id"] for e in log["results"])
    one = (await api.root.get(f"/users/{alice}/authlog/{entry['id']}")).json()
    assert one == {"success": True, **entry}
    r = await api.root.get(f"/users/{bob}/authlog/{entry['id']}")
    assert r.status_code == 404 and r.json()["code"] == "EventNotFound"
    r = await api.root.get(f"/users/{alice}/authlog/nothex")
    assert r.status_code == 400 and set(r.json()["details"]) == {"event"}
    assert (await api.root.get(f"/users/{bob}/authlog")).json()["total"] == 0
    # a user reads its own log, not another's
    token = await api.user_token("bob")
    async with api.client(token) as own:
        assert (await own.get("/users/me/authlog")).json()["total"] == 1  # this very login
        assert (await own.get(f"/users/{alice}/authlog")).status_code == 403
