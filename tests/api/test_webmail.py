"""A webmail session against a running server over real HTTP: list the mailboxes, page through a 1,000-message
INBOX with cursors (every message once, in listing order), open one message (the parsed view), download its
attachment byte for byte, move it to another mailbox, and see the move arrive on the EventSource."""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
from typing import Any

import httpx
import trio

from tests.api.conftest import Api

COUNT = 1000
PAGE = 50
#: the message with an attachment (UID 501)
SPECIAL = 500
BASE = dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.UTC)
ATTACHMENT = random.Random(7).randbytes(40_000)
NOTES = "id,amount\r\n1,20\r\n2,30\r\n"


def arrived(n: int) -> dt.datetime:
    """Three messages arrive in each minute: the listing orders them by date, then by UID (newest first)."""
    return BASE + dt.timedelta(minutes=n // 3)


def flags(n: int) -> list[str]:
    return ["\\Seen"] if n % 4 else []


def message(n: int) -> bytes:
    head = (f"From: Sender {n % 9} <sender{n % 9}@example.org>\r\nTo: Alice <alice@example.com>\r\n"
            f"Subject: Message {n:04d}\r\nDate: {arrived(n):%a, %d %b %Y %H:%M:%S +0000}\r\n"
            f"Message-ID: <webmail-{n}@example.org>\r\nMIME-Version: 1.0\r\n")
    if n != SPECIAL:
        return (head + f"Content-Type: text/plain; charset=utf-8\r\n\r\nBody of message {n}.\r\n").encode()
    encoded = base64.encodebytes(ATTACHMENT).decode().replace("\n", "\r\n")
    return (head + "Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
            "--outer\r\nContent-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n"
            "--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe quarterly figures, attached.\r\n"
            "--inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
            "<p onclick=\"steal()\">The <b>quarterly</b> figures, attached.</p><script>alert(1)</script>\r\n"
            "--inner--\r\n"
            "--outer\r\nContent-Type: application/octet-stream; name=\"figures.bin\"\r\n"
            "Content-Disposition: attachment; filename=\"figures.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            f"{encoded}"
            "--outer\r\nContent-Type: text/csv; charset=utf-8\r\n"
            f"Content-Disposition: attachment; filename=\"notes.csv\"\r\n\r\n{NOTES}\r\n"
            "--outer--\r\n").encode()


async def fill_inbox(api: Api, user_id: str) -> None:
    """The 1,000 messages, stored the way an IMAP MULTIAPPEND stores them (one transaction, one nudge)."""
    services = api.server.services
    user = await services.users.get(user_id)
    inbox = await services.backends.mailboxes.find_mailbox(user.id, "INBOX")
    assert inbox is not None
    stored = await services.messages.append_all(user, inbox, [(message(n), flags(n), arrived(n))
                                                              for n in range(COUNT)])
    assert [s.uid for s in stored] == list(range(1, COUNT + 1))


class EventStream:
    """The user's EventSource: the events (JSON payloads) and comments, line by line."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()

    async def next(self) -> dict[str, Any] | str:
        """The next event, or a comment (``": ready"`` after the replay)."""
        data: list[str] = []
        with trio.fail_after(20):
            async for line in self.lines:
                if line.startswith(":") and not data:
                    return line
                if line.startswith("data: "):
                    data.append(line[6:])
                elif line == "" and data:
                    event: dict[str, Any] = json.loads("\n".join(data))
                    return event
        raise AssertionError("the stream ended")

    async def event(self) -> dict[str, Any]:
        """The next event (idle comments skipped)."""
        while isinstance(got := await self.next(), str):
            pass
        return got


def expected_listing() -> list[int]:
    """UIDs in WildDuck's default order: newest first by arrival, then by UID."""
    return sorted(range(1, COUNT + 1), key=lambda uid: (arrived(uid - 1), uid), reverse=True)


async def test_webmail_session(api: Api) -> None:
    user = await api.create_user("alice", address="alice@example.com")
    await fill_inbox(api, user)
    r = await api.root.post(f"/users/{user}/mailboxes", json={"path": "Archive"})
    assert r.status_code == 200, r.text
    archive = r.json()["id"]

    # the mailbox list, with counters
    r = await api.root.get(f"/users/{user}/mailboxes", params={"counters": "true"})
    assert r.status_code == 200
    boxes = {b["path"]: b for b in r.json()["results"]}
    assert sorted(boxes) == ["Archive", "Drafts", "INBOX", "Junk", "Sent Mail", "Trash"]
    inbox = boxes["INBOX"]["id"]
    assert (boxes["INBOX"]["total"], boxes["INBOX"]["unseen"]) == (COUNT, sum(not flags(n) for n in range(COUNT)))
    assert (boxes["Archive"]["id"], boxes["Archive"]["total"], boxes["Archive"]["unseen"]) == (archive, 0, 0)
    listing = f"/users/{user}/mailboxes/{inbox}/messages"

    # every page of the INBOX, with the cursors: each message once, in order
    order = expected_listing()
    seen: list[int] = []
    cursors: list[str | None] = []
    cursor: str | None = None
    while True:
        cursors.append(cursor)
        r = await api.root.get(listing, params={"limit": PAGE, **({"next": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        page = r.json()
        assert (page["success"], page["total"]) == (True, COUNT)
        assert (page["previousCursor"] is False) == (cursor is None)
        results = page["results"]
        assert len(results) == PAGE
        for entry in results:
            n = entry["id"] - 1
            assert (entry["subject"], entry["mailbox"], entry["seen"]) == (f"Message {n:04d}", inbox, bool(flags(n)))
            assert entry["from"] == {"name": f"Sender {n % 9}", "address": f"sender{n % 9}@example.org"}
            assert entry["attachments"] is (n == SPECIAL)
        seen += [entry["id"] for entry in results]
        cursor = page["nextCursor"]
        if cursor is False:
            break
    assert len(cursors) == COUNT // PAGE
    assert seen == order

    # back one page from the third: the second again
    r = await api.root.get(listing, params={"limit": PAGE, "next": cursors[2]})
    r = await api.root.get(listing, params={"limit": PAGE, "previous": r.json()["previousCursor"]})
    assert [e["id"] for e in r.json()["results"]] == order[PAGE:2 * PAGE]

    # a flag set now shows in the listing at once
    r = await api.root.put(f"{listing}/{order[0]}", json={"flagged": True})
    assert r.json() == {"success": True, "updated": 1}
    entry = (await api.root.get(listing, params={"limit": PAGE})).json()["results"][0]
    assert (entry["id"], entry["flagged"], entry["seen"]) == (order[0], True, bool(flags(order[0] - 1)))
    unseen = (await api.root.get(listing, params={"limit": 250, "unseen": "true"})).json()
    assert unseen["total"] == sum(not flags(n) for n in range(COUNT))
    assert [e["id"] for e in unseen["results"]] == [u for u in order if not flags(u - 1)][:250]

    # open the message with the attachment
    uid = SPECIAL + 1
    r = await api.root.get(f"{listing}/{uid}")
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["id"], got["mailbox"], got["user"], got["subject"]) == (uid, inbox, user, f"Message {SPECIAL:04d}")
    assert got["from"] == {"name": f"Sender {SPECIAL % 9}", "address": f"sender{SPECIAL % 9}@example.org"}
    assert got["to"] == [{"name": "Alice", "address": "alice@example.com"}]
    assert got["messageId"] == f"<webmail-{SPECIAL}@example.org>"
    assert got["idate"] == arrived(SPECIAL).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert got["text"] == "The quarterly figures, attached."
    assert got["html"] == ["<p>The <b>quarterly</b> figures, attached.</p>"]
    assert [(a["id"], a["filename"], a["contentType"], a["size"]) for a in got["attachments"]] == [
        # the body as sent, without the line break before the boundary (which belongs to the boundary)
        ("ATT00001", "figures.bin", "application/octet-stream", len(base64.encodebytes(ATTACHMENT).replace(
            b"\n", b"\r\n")) - 2),
        ("ATT00002", "notes.csv", "text/csv", len(NOTES))]
    assert (got["seen"], got["flagged"]) == (bool(flags(SPECIAL)), False)

    # download the attachment
    r = await api.root.get(f"{listing}/{uid}/attachments/ATT00001")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"].startswith('attachment; filename="figures.bin"')
    assert r.content == ATTACHMENT

    async with api.root.stream("GET", f"/users/{user}/updates") as response:
        assert response.status_code == 200
        events = EventStream(response)
        replayed: list[dict[str, Any]] = []
        while (item := await events.next()) != ": ready":
            if isinstance(item, dict):
                replayed.append(item)
        appended = [e for e in replayed if e["command"] == "EXISTS"]
        assert [(e["mailbox"], e["uid"]) for e in appended] == [(inbox, u) for u in range(1, COUNT + 1)]
        assert replayed[-1] == {"command": "COUNTERS", "mailbox": inbox, "total": COUNT,
                                "unseen": sum(not flags(n) for n in range(COUNT))}

        # move it to the archive; the stream reports it in both mailboxes
        r = await api.root.put(f"{listing}/{uid}", json={"moveTo": archive})
        assert r.json() == {"success": True, "mailbox": archive, "id": [[uid, 1]]}
        moved = [await events.event() for _ in range(4)]
        by_box = {(e["command"], e["mailbox"]): e for e in moved}
        assert set(by_box) == {("EXISTS", archive), ("COUNTERS", archive), ("EXPUNGE", inbox), ("COUNTERS", inbox)}
        exists, expunge = by_box[("EXISTS", archive)], by_box[("EXPUNGE", inbox)]
        assert (exists["uid"], exists["flags"], exists["unseen"]) == (1, flags(SPECIAL), not flags(SPECIAL))
        assert (expunge["uid"], expunge["message"]) == (uid, appended[SPECIAL]["message"])  # the INBOX copy
        assert by_box[("COUNTERS", archive)] == {"command": "COUNTERS", "mailbox": archive, "total": 1,
                                                 "unseen": int(not flags(SPECIAL))}
        assert by_box[("COUNTERS", inbox)] == {"command": "COUNTERS", "mailbox": inbox, "total": COUNT - 1,
                                               "unseen": sum(not flags(n) for n in range(COUNT) if n != SPECIAL)}

    # it is gone from the INBOX, and the same message in the archive
    assert (await api.root.get(f"{listing}/{uid}")).status_code == 404
    r = await api.root.get(listing, params={"limit": PAGE})
    assert r.json()["total"] == COUNT - 1
    archived = f"/users/{user}/mailboxes/{archive}/messages/1"
    got = (await api.root.get(archived)).json()
    assert (got["subject"], got["mailbox"], [a["id"] for a in got["attachments"]]) == (
        f"Message {SPECIAL:04d}", archive, ["ATT00001", "ATT00002"])
    assert (await api.root.get(archived + "/attachments/ATT00001")).content == ATTACHMENT
    assert (await api.root.get(archived + "/attachments/ATT00002")).content == NOTES.encode()
