"""Mailboxes over real HTTP: the listing (order, counters, sizes, specialUse), create, get (by id and by path),
rename and subscription, delete (INBOX and special-use refused); the changes are those IMAP sees."""

from __future__ import annotations

import imaplib

import trio

from tests.api.conftest import Api
from wildduck.testing.lmtp_client import LMTPClient


async def mailboxes(api: Api, user: str, **params: str) -> list[dict[str, object]]:
    r = await api.root.get(f"/users/{user}/mailboxes", params=params)
    assert r.status_code == 200, r.text
    results: list[dict[str, object]] = r.json()["results"]
    return results


async def test_the_listing_in_wildducks_order_and_shape(api: Api) -> None:
    user = await api.create_user("alice")
    await api.root.post(f"/users/{user}/mailboxes", json={"path": "INBOX/Sub"})
    await api.root.post(f"/users/{user}/mailboxes", json={"path": "Archive/2024"})
    listed = await mailboxes(api, user)
    paths = [m["path"] for m in listed]
    assert paths[:2] == ["INBOX", "INBOX/Sub"]
    assert set(paths) == {"INBOX", "INBOX/Sub", "Archive", "Archive/2024", "Drafts", "Junk", "Sent Mail", "Trash"}
    assert paths.index("Archive/2024") < paths.index("Archive")  # subscribed first (the parent was made unsubscribed)
    inbox = listed[0]
    assert set(inbox) == {"id", "name", "path", "specialUse", "modifyIndex", "subscribed", "hidden",
                          "encryptMessages"}
    assert (inbox["name"], inbox["specialUse"], inbox["subscribed"]) == ("INBOX", None, True)
    sub = next(m for m in listed if m["path"] == "Archive/2024")
    assert sub["name"] == "2024"
    special = await mailboxes(api, user, specialUse="true")
    assert {m["path"]: m["specialUse"] for m in special} == {
        "INBOX": None, "Sent Mail": "\\Sent", "Trash": "\\Trash", "Drafts": "\\Drafts", "Junk": "\\Junk"}


async def test_counters_and_sizes_count_delivered_mail(api: Api) -> None:
    user = await api.create_user("alice", address="alice@example.com")
    message = b"From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n"

    def deliver() -> None:
        with LMTPClient(*api.server.address("lmtp")) as lmtp:
            lmtp.lhlo()
            for _ in range(2):
                _rcpt, replies = lmtp.send_message("a@example.org", ["alice@example.com"], message)
                assert [code for code, _ in replies] == [250], replies

    await trio.to_thread.run_sync(deliver)
    inbox = (await mailboxes(api, user, counters="true", sizes="true"))[0]
    assert (inbox["total"], inbox["unseen"]) == (2, 2)
    assert inbox["size"] == 2 * len(message)
    assert "total" not in (await mailboxes(api, user))[0]
    one = (await api.root.get(f"/users/{user}/mailboxes/{inbox['id']}")).json()
    assert (one["success"], one["total"], one["unseen"], one["path"]) == (True, 2, 2, "INBOX")


async def test_create_get_rename_and_delete(api: Api) -> None:
    user = await api.create_user("alice")
    r = await api.root.post(f"/users/{user}/mailboxes", json={"path": "Projects/Alpha"})
    assert r.status_code == 200
    box = r.json()["id"]
    got = (await api.root.get(f"/users/{user}/mailboxes/{box}")).json()
    assert (got["path"], got["name"], got["subscribed"]) == ("Projects/Alpha", "Alpha", True)
    by_path = (await api.root.get(f"/users/{user}/mailboxes/resolve", params={"path": "Projects/Alpha"})).json()
    assert by_path["id"] == box
    r = await api.root.post(f"/users/{user}/mailboxes", json={"path": "Projects/Alpha"})
    assert r.status_code == 400 and r.json()["code"] == "ALREADYEXISTS"
    assert (await api.root.put(f"/users/{user}/mailboxes/{box}", json={"path": "Done/Alpha"})).json() == {
        "success": True}
    assert (await api.root.get(f"/users/{user}/mailboxes/{box}")).json()["path"] == "Done/Alpha"
    assert (await api.root.put(f"/users/{user}/mailboxes/{box}", json={"subscribed": False})).status_code == 200
    assert (await api.root.get(f"/users/{user}/mailboxes/{box}")).json()["subscribed"] is False
    assert (await api.root.put(f"/users/{user}/mailboxes/{box}", json={"subscribed": True})).status_code == 200
    assert (await api.root.get(f"/users/{user}/mailboxes/{box}")).json()["subscribed"] is True
    assert (await api.root.delete(f"/users/{user}/mailboxes/{box}")).json() == {"success": True}
    r = await api.root.get(f"/users/{user}/mailboxes/{box}")
    assert r.status_code == 404 and r.json() == {"error": "This mailbox does not exist", "code": "NoSuchMailbox"}


async def test_inbox_and_special_use_mailboxes_cannot_be_deleted_or_inbox_renamed(api: Api) -> None:
    user = await api.create_user("alice")
    listed = {m["path"]: m["id"] for m in await mailboxes(api, user)}
    for path in ("INBOX", "Trash", "Sent Mail"):
        r = await api.root.delete(f"/users/{user}/mailboxes/{listed[path]}")
        assert r.status_code == 400, path
        assert r.json() == {"error": "Mailbox deletion failed with code DisallowedMailboxMethod", "code": "CANNOT"}
    r = await api.root.put(f"/users/{user}/mailboxes/{listed['INBOX']}", json={"path": "Other"})
    assert r.status_code == 400 and r.json()["code"] == "CANNOT"
    assert set(listed) == {m["path"] for m in await mailboxes(api, user)}


async def test_bad_input(api: Api) -> None:
    user = await api.create_user("alice")
    bob = await api.create_user("bob")
    for body, field in (({}, "path"), ({"path": "a//b"}, "path"), ({"path": "x*"}, "path"),
                        ({"path": "x", "hidden": True}, "hidden"), ({"path": "x", "retention": 5}, "retention"),
                        ({"path": "x", "counters": "maybe"}, "counters")):
        r = await api.root.post(f"/users/{user}/mailboxes", json=body)
        assert r.status_code == 400, body
        assert field in r.json()["details"], (body, r.json())
    r = await api.root.get(f"/users/{user}/mailboxes", params={"counters": "maybe"})
    assert r.status_code == 400 and r.json()["details"] == {"counters": '"counters" must be a boolean'}
    r = await api.root.get(f"/users/{user}/mailboxes/xyz")
    assert r.status_code == 400
    bobs_inbox = (await mailboxes(api, bob))[0]["id"]
    r = await api.root.get(f"/users/{user}/mailboxes/{bobs_inbox}")  # another user's mailbox id
    assert r.status_code == 404 and r.json()["code"] == "NoSuchMailbox"
    r = await api.root.put(f"/users/{user}/mailboxes/{bobs_inbox}", json={})
    assert r.status_code == 404
    r = await api.root.get("/users/0123456789abcdef01234567/mailboxes")
    assert r.status_code == 404 and r.json()["code"] == "UserNotFound"


async def test_a_mailbox_created_over_the_api_is_seen_by_imap(api: Api) -> None:
    user = await api.create_user("alice")
    await api.root.post(f"/users/{user}/mailboxes", json={"path": "Ünïcode"})

    def imap_list() -> list[bytes]:
        imap = imaplib.IMAP4(*api.server.address("imap"), timeout=30)
        try:
            imap.login("alice", "secret-pass")
            return [line for line in imap.list()[1] if isinstance(line, bytes)]
        finally:
            imap.shutdown()

    lines = await trio.to_thread.run_sync(imap_list)
    assert any(b"&ANw-n&AO8-code" in line for line in lines), lines
