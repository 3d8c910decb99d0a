"""Messages over real HTTP against a running server: upload (raw and composed), the listing with cursor paging,
the parsed message (sanitized HTML, cid links, attachment ids), the source byte for byte, attachment downloads,
flag updates, moves and deletes; permissions and bad input; and IMAP seeing what the API changes."""

from __future__ import annotations

import base64
import imaplib
import subprocess
from typing import Any

import trio

from tests.api.conftest import Api

BOUNDARY = b"XyZ"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 20

RICH = (
    b"From: =?utf-8?q?J=C3=BCrgen?= <j@xn--bcher-kva.example>\r\n"
    b"To: alice@example.com, \"Bob B\" <bob@example.org>\r\n"
    b"Cc: carol@example.org\r\n"
    b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= and a report\r\n"
    b"Message-ID: <rich-1@example.org>\r\n"
    b"References: <root@example.org> <parent@example.org>\r\n"
    b"Date: Mon, 01 Jan 2024 10:00:00 +0200\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=XyZ\r\n\r\n"
    b"--XyZ\r\nContent-Type: multipart/related; boundary=Rel\r\n\r\n"
    b"--Rel\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    b"<p onclick=\"steal()\">Hello <b>there</b>, see <img src=\"cid:logo@example.org\">"
    b"<script>alert(1)</script><a href=\"javascript:alert(2)\">x</a></p>\r\n"
    b"--Rel\r\nContent-Type: image/png\r\nContent-ID: <logo@example.org>\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(PNG).replace(b"\n", b"\r\n") +
    b"--Rel--\r\n"
    b"--XyZ\r\nContent-Type: application/pdf; name=\"r\xc3\xa9sum\xc3\xa9.pdf\"\r\n"
    b"Content-Disposition: attachment; filename=\"r\xc3\xa9sum\xc3\xa9.pdf\"\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(PDF).replace(b"\n", b"\r\n") +
    b"--XyZ--\r\n"
)


def plain(subject: str, body: str = "hello", date: str = "Mon, 01 Jan 2024 10:00:00 +0000") -> bytes:
    return (f"From: Sender <sender@example.org>\r\nTo: alice@example.com\r\nSubject: {subject}\r\n"
            f"Date: {date}\r\nMessage-ID: <{subject.replace(' ', '-')}@example.org>\r\n\r\n{body}\r\n").encode()


async def inbox_of(api: Api, user: str) -> str:
    r = await api.root.get(f"/users/{user}/mailboxes")
    return next(str(m["id"]) for m in r.json()["results"] if m["path"] == "INBOX")


async def mailbox_id(api: Api, user: str, path: str) -> str:
    r = await api.root.get(f"/users/{user}/mailboxes")
    return next(str(m["id"]) for m in r.json()["results"] if m["path"] == path)


async def upload_raw(api: Api, user: str, mailbox: str, raw: bytes, **params: str) -> dict[str, Any]:
    r = await api.root.post(f"/users/{user}/mailboxes/{mailbox}/messages", content=raw, params=params,
                            headers={"Content-Type": "message/rfc822"})
    assert r.status_code == 200, r.text
    message: dict[str, Any] = r.json()["message"]
    return message


async def test_upload_raw_then_read_it_back_parsed_and_byte_exact(api: Api) -> None:
    user = await api.create_user("alice", address="alice@example.com")
    inbox = await inbox_of(api, user)
    stored = await upload_raw(api, user, inbox, RICH)
    assert stored == {"id": 1, "mailbox": inbox, "size": len(RICH)}
    base = f"/users/{user}/mailboxes/{inbox}/messages/1"

    got = (await api.root.get(base)).json()
    assert got["success"] is True and (got["id"], got["mailbox"], got["user"]) == (1, inbox, user)
    assert got["from"] == {"name": "Jürgen", "address": "j@bücher.example"}
    assert got["to"] == [{"name": "", "address": "alice@example.com"}, {"name": "Bob B", "address": "bob@example.org"}]
    assert got["cc"] == [{"name": "", "address": "carol@example.org"}]
    assert got["subject"] == "Grüße and a report"
    assert (got["messageId"], got["date"]) == ("<rich-1@example.org>", "2024-01-01T08:00:00.000Z")
    assert got["references"] == ["<root@example.org>", "<parent@example.org>"]
    assert got["seen"] is True and got["flagged"] is False  # an upload is \Seen unless "unseen" (WildDuck)
    assert got["contentType"] == {"value": "multipart/mixed", "params": {"boundary": "XyZ"}}
    (html,) = got["html"]
    assert "<script" not in html and "onclick" not in html and "javascript:" not in html
    assert "<b>there</b>" in html and 'src="attachment:ATT00001"' in html
    assert got["text"].startswith("Hello there")
    logo, pdf = got["attachments"]
    assert (logo["id"], logo["contentType"], logo["cid"], logo["related"]) == (
        "ATT00001", "image/png", "<logo@example.org>", True)
    assert (pdf["id"], pdf["filename"], pdf["contentType"], pdf["disposition"], pdf["related"]) == (
        "ATT00002", "résumé.pdf", "application/pdf", "attachment", False)
    assert len(pdf["hash"]) == 64 and pdf["transferEncoding"] == "base64"
    assert len(got["thread"]) == 24

    linked = (await api.root.get(base, params={"replaceCidLinks": "true"})).json()
    assert f'src="/users/{user}/mailboxes/{inbox}/messages/1/attachments/ATT00001"' in linked["html"][0]

    eml = await api.root.get(base + "/message.eml")
    assert eml.status_code == 200 and eml.headers["content-type"] == "message/rfc822"
    assert eml.content == RICH

    att = await api.root.get(base + "/attachments/ATT00002")
    assert att.status_code == 200 and att.content == PDF
    assert att.headers["content-type"] == "application/pdf"
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9.pdf" in att.headers["content-disposition"]
    assert att.headers["content-disposition"].startswith("attachment;")
    image = await api.root.get(base + "/attachments/att00001")  # ids are case-insensitive, as WildDuck's
    assert image.content == PNG and image.headers["content-type"] == "image/png"
    assert (await api.root.get(base + "/attachments/ATT00009")).json()["code"] == "AttachmentNotFound"


async def test_a_message_not_in_that_mailbox_is_message_not_found(api: Api) -> None:
    user = await api.create_user("alice")
    inbox = await inbox_of(api, user)
    trash = await mailbox_id(api, user, "Trash")
    await upload_raw(api, user, inbox, plain("one"))
    for suffix in ("", "/message.eml", "/attachments/ATT00001"):
        r = await api.root.get(f"/users/{user}/mailboxes/{trash}/messages/1{suffix}")
        assert r.status_code == 404 and r.json()["code"] == "MessageNotFound", suffix
        r = await api.root.get(f"/users/{user}/mailboxes/{inbox}/messages/7{suffix}")
        assert r.status_code == 404 and r.json()["code"] == "MessageNotFound", suffix
    r = await api.root.put(f"/users/{user}/mailboxes/{trash}/messages/1", json={"seen": False})
    assert r.status_code == 404 and r.json()["code"] == "MessageNotFound"
    r = await api.root.delete(f"/users/{user}/mailboxes/{trash}/messages/1")
    assert r.status_code == 404 and r.json()["code"] == "MessageNotFound"


async def test_listing_pages_with_cursors_both_ways_and_filters(api: Api) -> None:
    user = await api.create_user("alice")
    inbox = await inbox_of(api, user)
    for i in range(25):
        await upload_raw(api, user, inbox, plain(f"message {i:02d}", f"body of message {i}"),
                         unseen="true" if i % 5 == 0 else "false")
    url = f"/users/{user}/mailboxes/{inbox}/messages"
    first = (await api.root.get(url, params={"limit": 10})).json()
    assert (first["success"], first["total"], first["page"], first["previousCursor"], first["specialUse"]) == (
        True, 25, 1, False, None)
    assert [m["id"] for m in first["results"]] == list(range(25, 15, -1))  # newest first
    entry = first["results"][0]
    assert set(entry) >= {"id", "mailbox", "thread", "from", "to", "cc", "bcc", "messageId", "subject", "date",
                          "idate", "intro", "attachments", "size", "seen", "deleted", "flagged", "draft",
                          "answered", "forwarded", "references"}
    assert (entry["subject"], entry["intro"], entry["attachments"], entry["seen"]) == (
        "message 24", "body of message 24", False, True)
    assert entry["from"] == {"name": "Sender", "address": "sender@example.org"}
    assert "headers" not in entry
    second = (await api.root.get(url, params={"limit": 10, "next": first["nextCursor"]})).json()
    assert [m["id"] for m in second["results"]] == list(range(15, 5, -1))
    third = (await api.root.get(url, params={"limit": 10, "next": second["nextCursor"]})).json()
    assert [m["id"] for m in third["results"]] == list(range(5, 0, -1)) and third["nextCursor"] is False
    back = (await api.root.get(url, params={"limit": 10, "previous": third["previousCursor"]})).json()
    assert back["results"] == second["results"]
    ascending = (await api.root.get(url, params={"limit": 3, "order": "asc"})).json()
    assert [m["id"] for m in ascending["results"]] == [1, 2, 3]
    unseen = (await api.root.get(url, params={"unseen": "true", "limit": 50})).json()
    assert unseen["total"] == 5 and {m["id"] for m in unseen["results"]} == {1, 6, 11, 16, 21}
    assert all(m["seen"] is False for m in unseen["results"])
    with_headers = (await api.root.get(url, params={"limit": 1, "includeHeaders": "true"})).json()
    assert with_headers["results"][0]["headers"]["subject"] == "message 24"


async def test_bad_input_names_the_field(api: Api) -> None:
    user = await api.create_user("alice")
    inbox = await inbox_of(api, user)
    url = f"/users/{user}/mailboxes/{inbox}/messages"
    for params, field in (({"limit": 0}, "limit"), ({"limit": 251}, "limit"), ({"order": "sideways"}, "order"),
                          ({"next": "garbage!"}, "next"), ({"unseen": "maybe"}, "unseen"), ({"color": "x"}, "color")):
        r = await api.root.get(url, params=params)
        assert r.status_code == 400 and field in r.json()["details"], (params, r.text)
    r = await api.root.get(f"/users/{user}/mailboxes/nothex/messages")
    assert r.status_code == 400 and "mailbox" in r.json()["details"]
    r = await api.root.get(url + "/abc")
    assert r.status_code == 400 and "message" in r.json()["details"]
    r = await api.root.get(url + "/1/attachments/nope")
    assert r.status_code == 400 and "attachment" in r.json()["details"]
    r = await api.root.put(url, json={"message": "1-3", "seen": True})
    assert r.status_code == 400 and "message" in r.json()["details"]
    r = await api.root.put(url, json={"seen": True})
    assert r.status_code == 400 and r.json()["details"] == {"message": '"message" is required'}
    r = await api.root.put(url, json={"message": "1", "moveTo": "xyz"})
    assert r.status_code == 400 and "moveTo" in r.json()["details"]
    r = await api.root.delete(url, params={"async": "true"})
    assert r.status_code == 400 and "async" in r.json()["details"]
    r = await api.root.post(url, json={"to": [{"address": 5}]})
    assert r.status_code == 400 and "to" in r.json()["details"]
    r = await api.root.post(url, json={"attachments": [{"filename": "a"}]})
    assert r.status_code == 400 and "attachments.0.content" in r.json()["details"]
    r = await api.root.post(url, json={"date": "not a date", "text": "x"})
    assert r.status_code == 400 and "date" in r.json()["details"]
    r = await api.root.post(url, json={"reference": {"mailbox": inbox, "id": 1, "action": "reply"}, "text": "x"})
    assert r.status_code == 400 and "reference" in r.json()["details"]
    r = await api.root.post(url, json={"from": {"address": "not an address"}, "text": "x"})
    assert r.status_code == 400 and "from" in r.json()["details"]


async def test_a_user_token_reaches_only_its_own_messages(api: Api) -> None:
    alice = await api.create_user("alice")
    bob = await api.create_user("bob")
    alice_inbox = await inbox_of(api, alice)
    bob_inbox = await inbox_of(api, bob)
    await upload_raw(api, user=alice, mailbox=alice_inbox, raw=plain("for alice"))
    async with api.client(await api.user_token("bob")) as client:
        for method, path in (("GET", f"/users/{alice}/mailboxes/{alice_inbox}/messages"),
                             ("GET", f"/users/{alice}/mailboxes/{alice_inbox}/messages/1"),
                             ("GET", f"/users/{alice}/mailboxes/{alice_inbox}/messages/1/message.eml"),
                             ("PUT", f"/users/{alice}/mailboxes/{alice_inbox}/messages/1"),
                             ("DELETE", f"/users/{alice}/mailboxes/{alice_inbox}/messages/1"),
                             ("POST", f"/users/{alice}/mailboxes/{alice_inbox}/messages")):
            r = await client.request(method, path, json={"seen": True} if method == "PUT" else None)
            assert r.status_code == 403 and r.json()["code"] == "MissingPrivileges", (method, path)
        r = await client.get(f"/users/me/mailboxes/{alice_inbox}/messages")  # alice's mailbox id, bob's token
        assert r.status_code == 404 and r.json()["code"] == "NoSuchMailbox"
        r = await client.post(f"/users/me/mailboxes/{bob_inbox}/messages", json={"subject": "mine", "text": "x"})
        assert r.status_code == 200, r.text
        listed = (await client.get(f"/users/me/mailboxes/{bob_inbox}/messages")).json()
        assert [m["subject"] for m in listed["results"]] == ["mine"]
    assert (await api.anonymous.get(f"/users/{alice}/mailboxes/{alice_inbox}/messages")).status_code == 403


async def test_flags_moves_and_deletes(api: Api) -> None:
    user = await api.create_user("alice")
    inbox = await inbox_of(api, user)
    archive = (await api.root.post(f"/users/{user}/mailboxes", json={"path": "Archive"})).json()["id"]
    for i in range(6):
        await upload_raw(api, user, inbox, plain(f"m{i}"), unseen="true")
    url = f"/users/{user}/mailboxes/{inbox}/messages"

    r = await api.root.put(url + "/2", json={"seen": True, "flagged": True})
    assert r.json() == {"success": True, "updated": 1}
    got = (await api.root.get(url + "/2")).json()
    assert (got["seen"], got["flagged"], got["draft"]) == (True, True, False)
    r = await api.root.put(url, json={"message": "1:*", "deleted": True, "draft": True})
    assert r.json() == {"success": True, "updated": 6}
    r = await api.root.put(url, json={"message": "1,2,9", "flagged": False, "deleted": "false"})
    assert r.json() == {"success": True, "updated": 2}
    got = (await api.root.get(url + "/2")).json()
    assert (got["seen"], got["flagged"], got["deleted"], got["draft"]) == (True, False, False, True)
    r = await api.root.put(url, json={"message": "99:100", "seen": True})
    assert r.status_code == 404 and r.json()["code"] == "MessageNotFound"

    r = await api.root.put(url, json={"message": "3:4", "moveTo": archive, "seen": True})
    assert r.json() == {"success": True, "mailbox": archive, "id": [[3, 1], [4, 2]]}
    moved = (await api.root.get(f"/users/{user}/mailboxes/{archive}/messages/2")).json()
    assert (moved["subject"], moved["seen"]) == ("m3", True)
    assert (await api.root.get(url + "/3")).status_code == 404
    r = await api.root.put(url + "/5", json={"moveTo": "0123456789abcdef01234567"})
    assert r.status_code == 404 and r.json()["code"] == "NoSuchMailbox"

    assert (await api.root.delete(url + "/1")).json() == {"success": True}
    assert (await api.root.get(url + "/1")).status_code == 404
    assert (await api.root.delete(url)).json() == {"success": True, "deleted": 3, "errors": 0}
    listed = (await api.root.get(url)).json()
    assert listed["total"] == 0 and listed["results"] == []
    status = (await api.root.get(f"/users/{user}/mailboxes/{archive}")).json()
    assert status["total"] == 2


async def test_upload_composed_from_json_with_attachments(api: Api) -> None:
    user = await api.create_user("alice", address="alice@example.com", name="Alice A.")
    drafts = await mailbox_id(api, user, "Drafts")
    r = await api.root.post(f"/users/{user}/mailboxes/{drafts}/messages", json={
        "to": [{"name": "Bob", "address": "bob@example.org"}], "bcc": [{"address": "hidden@example.org"}],
        "subject": "Ünïcode subject", "text": "Plain body", "html": '<p>Rich <img src="cid:pic1"></p>',
        "draft": True, "unseen": True, "date": "2024-03-04T05:06:07.000Z",
        "headers": [{"key": "X-Custom", "value": "yes"}],
        "attachments": [
            {"filename": "pic.png", "contentType": "image/png", "content": base64.b64encode(PNG).decode(),
             "cid": "pic1"},
            {"filename": "notes.pdf", "contentType": "application/pdf", "content": base64.b64encode(PDF).decode()},
        ],
    })
    assert r.status_code == 200, r.text
    message = r.json()["message"]
    assert (message["id"], message["mailbox"]) == (1, drafts)
    got = (await api.root.get(f"/users/{user}/mailboxes/{drafts}/messages/1")).json()
    assert got["from"] == {"name": "Alice A.", "address": "alice@example.com"}  # the user's main address
    assert got["to"] == [{"name": "Bob", "address": "bob@example.org"}]
    assert got["bcc"] == [{"name": "", "address": "hidden@example.org"}]
    assert got["subject"] == "Ünïcode subject" and got["text"] == "Plain body"
    assert (got["draft"], got["seen"], got["idate"]) == (True, False, "2024-03-04T05:06:07.000Z")
    assert got["html"] == ['<p>Rich <img src="attachment:ATT00001"></p>']
    assert [(a["id"], a["filename"], a["related"]) for a in got["attachments"]] == [
        ("ATT00001", "pic.png", True), ("ATT00002", "notes.pdf", False)]
    pdf = await api.root.get(f"/users/{user}/mailboxes/{drafts}/messages/1/attachments/ATT00002")
    assert pdf.content == PDF
    eml = (await api.root.get(f"/users/{user}/mailboxes/{drafts}/messages/1/message.eml")).content
    assert b"X-Custom: yes\r\n" in eml and b"\r\n\r\n" in eml and b"\n" not in eml.replace(b"\r\n", b"")

    r = await api.root.post(f"/users/{user}/mailboxes/{drafts}/messages",
                            json={"raw": plain("raw in json").decode()})
    assert r.status_code == 200 and r.json()["message"]["id"] == 2
    eml = (await api.root.get(f"/users/{user}/mailboxes/{drafts}/messages/2/message.eml")).content
    assert eml == plain("raw in json")


async def test_uploads_count_against_the_quota(api: Api) -> None:
    user = await api.create_user("alice", quota=len(PDF) + 100)
    inbox = await inbox_of(api, user)
    url = f"/users/{user}/mailboxes/{inbox}/messages"
    r = await api.root.post(url, json={"text": "small"})
    assert r.status_code == 200
    r = await api.root.post(url, content=b"Subject: big\r\n\r\n" + PDF, headers={"Content-Type": "message/rfc822"})
    assert r.status_code == 400 and r.json() == {"error": "User is over quota", "code": "OverQuotaError"}
    assert (await api.root.get(url)).json()["total"] == 1


async def test_curl_downloads_the_source_and_an_attachment(api: Api) -> None:
    user = await api.create_user("alice")
    inbox = await inbox_of(api, user)
    await upload_raw(api, user, inbox, RICH)
    base = f"{api.base}/users/{user}/mailboxes/{inbox}/messages/1"

    def curl(url: str) -> bytes:
        return subprocess.run(["curl", "-sf", "-H", "X-Access-Token: root-token-for-tests", url],
                              check=True, capture_output=True, timeout=30).stdout

    assert await trio.to_thread.run_sync(curl, base + "/message.eml") == RICH
    assert await trio.to_thread.run_sync(curl, base + "/attachments/ATT00002") == PDF


async def test_an_idling_imap_client_sees_api_uploads_and_flag_changes(api: Api) -> None:
    user = await api.create_user("alice")
    inbox = await inbox_of(api, user)
    send, receive = trio.open_memory_channel[bytes](100)

    def idle() -> None:  # IDLE until a FETCH with \Seen arrives
        imap = imaplib.IMAP4(*api.server.address("imap"), timeout=30)
        try:
            imap.login("alice", "secret-pass")
            imap.select("INBOX")
            imap.send(b"i1 IDLE\r\n")
            while True:
                line = imap.readline()
                trio.from_thread.run(send.send, line)
                if not line or b"\\Seen" in line:
                    break
            imap.send(b"DONE\r\n")
            assert imap.readline().startswith(b"i1 OK")
        finally:
            imap.shutdown()

    async def expect(needle: bytes) -> bytes:
        with trio.fail_after(20):
            async for line in receive:
                if needle in line:
                    return line
        raise AssertionError(f"no {needle!r}")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, idle)
        await expect(b"+ ")
        await upload_raw(api, user, inbox, plain("pushed"), unseen="true")
        assert b"1 EXISTS" in await expect(b"EXISTS")
        r = await api.root.put(f"/users/{user}/mailboxes/{inbox}/messages/1", json={"flagged": True})
        assert r.status_code == 200
        line = await expect(b"FETCH")
        assert b"\\Flagged" in line and line.startswith(b"* 1 FETCH")
        r = await api.root.put(f"/users/{user}/mailboxes/{inbox}/messages", json={"message": "1:*", "seen": True})
        assert r.json() == {"success": True, "updated": 1}
        assert b"\\Seen" in await expect(b"FETCH")


async def test_attachments_are_served_so_that_a_browser_never_runs_them(api: Api) -> None:
    user = await api.create_user("alice")
    inbox = await inbox_of(api, user)
    raw = (b"Subject: files\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
           b"see attached\r\n--b\r\nContent-Type: image/svg+xml\r\nContent-Disposition: inline; filename=a.svg\r\n\r\n"
           b"<svg><script>alert(1)</script></svg>\r\n--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
           b"Content-Disposition: attachment; filename=latin.txt\r\n\r\nd\xe9j\xe0 vu\r\n--b--\r\n")
    await upload_raw(api, user, inbox, raw)
    base = f"/users/{user}/mailboxes/{inbox}/messages/1/attachments"
    page = await api.root.get(base + "/ATT00001")
    assert page.content == b"<svg><script>alert(1)</script></svg>"
    assert page.headers["content-disposition"].startswith("attachment;")  # never inline, whatever it said
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["content-security-policy"].startswith("sandbox")
    latin = await api.root.get(base + "/ATT00002")
    assert latin.content == b"d\xe9j\xe0 vu" and latin.headers["content-type"] == "text/plain; charset=iso-8859-1"
    converted = await api.root.get(base + "/ATT00002", params={"sendAsString": "true"})
    assert converted.content == "déjà vu".encode() and converted.headers["content-type"].endswith("utf-8")
    source = await api.root.get(f"/users/{user}/mailboxes/{inbox}/messages/1/message.eml")
    assert source.content == raw and source.headers["x-content-type-options"] == "nosniff"
