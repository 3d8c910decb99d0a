"""``/users/:user/search`` over real HTTP: WildDuck's structured fields, its ``q`` string, paging across
mailboxes, and ``POST`` applying an action to every match."""

from __future__ import annotations

import base64
from typing import Any

from tests.api.conftest import Api
from tests.api.test_messages import inbox_of, mailbox_id

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 8


def message(subject: str, sender: str, body: str, *, to: str = "alice@example.com", cc: str = "",
            attachment: bool = False) -> bytes:
    head = f"From: {sender}\r\nTo: {to}\r\n" + (f"Cc: {cc}\r\n" if cc else "") + \
        f"Subject: {subject}\r\nMessage-ID: <{subject.replace(' ', '.')}@example.org>\r\n"
    if not attachment:
        return (head + f"\r\n{body}\r\n").encode()
    return (head + "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
            f"{body}\r\n--b\r\nContent-Type: application/pdf; name=x.pdf\r\nContent-Transfer-Encoding: base64\r\n"
            "\r\n").encode() + base64.encodebytes(PDF).replace(b"\n", b"\r\n") + b"--b--\r\n"


async def put(api: Api, user: str, mailbox: str, raw: bytes, **params: str) -> int:
    r = await api.root.post(f"/users/{user}/mailboxes/{mailbox}/messages", content=raw, params=params,
                            headers={"Content-Type": "message/rfc822"})
    assert r.status_code == 200, r.text
    uid: int = r.json()["message"]["id"]
    return uid


async def corpus(api: Api) -> tuple[str, dict[str, str]]:
    user = await api.create_user("alice", address="alice@example.com")
    boxes = {"INBOX": await inbox_of(api, user), "Trash": await mailbox_id(api, user, "Trash")}
    boxes["Archive"] = (await api.root.post(f"/users/{user}/mailboxes", json={"path": "Archive"})).json()["id"]
    await put(api, user, boxes["INBOX"], message("quarterly report", "Bob <bob@example.org>", "numbers inside",
                                                 attachment=True), date="2024-01-10T00:00:00Z")
    await put(api, user, boxes["INBOX"], message("lunch plans", "Carol <carol@example.org>", "pizza at noon",
                                                 cc="dave@example.org"), unseen="true", date="2024-02-10T00:00:00Z")
    await put(api, user, boxes["Archive"], message("old report", "bob@example.org", "archived numbers"),
              flagged="true", date="2023-06-01T00:00:00Z")
    await put(api, user, boxes["Trash"], message("spam report", "eve@example.net", "buy now numbers"),
              date="2024-03-01T00:00:00Z")
    return user, boxes


async def subjects(api: Api, user: str, **params: Any) -> list[str]:
    r = await api.root.get(f"/users/{user}/search", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["total"] == len(body["results"])
    return [m["subject"] for m in body["results"]]


async def test_structured_fields(api: Api) -> None:
    user, boxes = await corpus(api)
    assert await subjects(api, user) == ["spam report", "lunch plans", "quarterly report", "old report"]
    assert await subjects(api, user, query="numbers") == ["spam report", "quarterly report", "old report"]
    assert await subjects(api, user, query="pizza numbers") == [
        "spam report", "lunch plans", "quarterly report", "old report"]  # any word, as MongoDB's $text
    assert await subjects(api, user, query="pizza numbers", useAndSearch="true") == []
    assert await subjects(api, user, **{"from": "bob"}) == ["quarterly report", "old report"]
    assert await subjects(api, user, to="dave") == ["lunch plans"]  # To or Cc
    assert await subjects(api, user, subject="REPORT", searchable="true") == ["quarterly report", "old report"]
    assert await subjects(api, user, datestart="2024-01-01", dateend="2024-02-28T00:00:00Z") == [
        "lunch plans", "quarterly report"]
    assert await subjects(api, user, minSize=1000) == ["quarterly report"]
    assert await subjects(api, user, maxSize=1000, unseen="true") == ["lunch plans"]
    assert await subjects(api, user, attachments="true") == ["quarterly report"]
    assert await subjects(api, user, flagged="true") == ["old report"]
    assert await subjects(api, user, mailbox=boxes["INBOX"], id="2") == ["lunch plans"]
    assert await subjects(api, user, mailbox=boxes["Archive"]) == ["old report"]
    r = await api.root.get(f"/users/{user}/search", params={"query": "numbers", "order": "asc"})
    assert [m["subject"] for m in r.json()["results"]] == ["old report", "quarterly report", "spam report"]
    entry = r.json()["results"][0]
    assert (entry["mailbox"], entry["id"], entry["flagged"]) == (boxes["Archive"], 1, True)
    assert r.json()["query"] == "numbers"


async def test_the_or_object_in_a_json_body(api: Api) -> None:
    user, _boxes = await corpus(api)
    r = await api.root.request("GET", f"/users/{user}/search", json={"or": {"from": "carol", "subject": "spam"}})
    assert r.status_code == 200, r.text
    assert [m["subject"] for m in r.json()["results"]] == ["spam report", "lunch plans"]


async def test_the_q_string(api: Api) -> None:
    user, boxes = await corpus(api)
    assert await subjects(api, user, q="from:bob report") == ["quarterly report", "old report"]
    assert await subjects(api, user, q="numbers -from:bob") == ["spam report"]
    assert await subjects(api, user, q="pizza OR subject:quarterly") == ["lunch plans", "quarterly report"]
    assert await subjects(api, user, q="is:unread") == ["lunch plans"]
    assert await subjects(api, user, q="is:starred") == ["old report"]
    assert await subjects(api, user, q="has:attachment") == ["quarterly report"]
    assert await subjects(api, user, q="in:Archive") == ["old report"]
    assert await subjects(api, user, q="numbers in:trash") == ["spam report"]
    assert await subjects(api, user, q="numbers searchable:true") == ["quarterly report", "old report"]
    assert await subjects(api, user, q='"noon"') == ["lunch plans"]
    assert await subjects(api, user, q="after:2024-01-15 before:2024-02-15") == ["lunch plans"]
    assert await subjects(api, user, q=f"mailbox:{boxes['INBOX']} minsize:1000") == ["quarterly report"]
    r = await api.root.get(f"/users/{user}/search", params={"q": "after:someday"})
    assert r.status_code == 400 and "q" in r.json()["details"]


async def test_paging_across_mailboxes(api: Api) -> None:
    user, _boxes = await corpus(api)
    url = f"/users/{user}/search"
    first = (await api.root.get(url, params={"limit": 3})).json()
    assert first["total"] == 4 and len(first["results"]) == 3 and first["previousCursor"] is False
    second = (await api.root.get(url, params={"limit": 3, "next": first["nextCursor"]})).json()
    assert [m["subject"] for m in second["results"]] == ["old report"] and second["nextCursor"] is False
    back = (await api.root.get(url, params={"limit": 3, "previous": second["previousCursor"]})).json()
    assert back["results"] == first["results"]


async def test_bad_input_and_permissions(api: Api) -> None:
    user, _boxes = await corpus(api)
    url = f"/users/{user}/search"
    for params, field in (({"datestart": "yesterday"}, "datestart"), ({"minSize": "big"}, "minSize"),
                          ({"mailbox": "nope"}, "mailbox"), ({"limit": 0}, "limit"), ({"order": "up"}, "order"),
                          ({"next": "zzz"}, "next"), ({"flagged": "perhaps"}, "flagged")):
        r = await api.root.get(url, params=params)
        assert r.status_code == 400 and field in r.json()["details"], (params, r.text)
    r = await api.root.get(url, params={"mailbox": "0123456789abcdef01234567"})
    assert r.status_code == 404 and r.json()["code"] == "NoSuchMailbox"
    r = await api.root.post(url, json={"query": "x"})
    assert r.status_code == 400 and "action" in r.json()["details"]
    r = await api.root.post(url, json={"action": {"delete": True, "seen": True}})
    assert r.status_code == 400 and "action" in r.json()["details"]
    r = await api.root.post(url, json={"action": {"moveTo": "abc"}})
    assert r.status_code == 400 and "moveTo" in r.json()["details"]
    await api.create_user("mallory")
    async with api.client(await api.user_token("mallory")) as client:
        assert (await client.get(url)).json()["code"] == "MissingPrivileges"
        assert (await client.post(url, json={"action": {"seen": True}})).status_code == 403
        assert (await client.get("/users/me/search")).json()["total"] == 0


async def test_post_applies_the_action_to_every_match(api: Api) -> None:
    user, boxes = await corpus(api)
    url = f"/users/{user}/search"
    r = await api.root.post(url, json={"query": "numbers", "action": {"seen": False, "flagged": True}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and (body["matched"], body["updated"]) == (3, 3) and body["existing"] is False
    assert await subjects(api, user, flagged="true") == ["spam report", "quarterly report", "old report"]
    assert await subjects(api, user, unseen="true") == ["spam report", "lunch plans", "quarterly report", "old report"]
    r = await api.root.post(url, json={"subject": "report", "searchable": True, "action": {"moveTo": boxes["Archive"]}})
    assert r.json()["matched"] == 2
    assert await subjects(api, user, mailbox=boxes["Archive"]) == ["quarterly report", "old report"]
    r = await api.root.post(url, json={"mailbox": boxes["Trash"], "action": {"delete": True}})
    assert r.json()["updated"] == 1
    assert await subjects(api, user) == ["lunch plans", "quarterly report", "old report"]
