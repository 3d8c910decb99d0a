"""Threads over the API: a listing's ``thread`` is the thread given at delivery (References / In-Reply-To and the
base subject), ``threadCounters`` counts the thread's messages in the mailbox, and search filters by thread."""

from __future__ import annotations

from tests.api.conftest import Api
from tests.api.test_messages import inbox_of, mailbox_id, upload_raw


def _mail(message_id: str, subject: str, reply_to: str = "") -> bytes:
    head = f"From: a@example.org\r\nTo: alice@example.com\r\nMessage-ID: <{message_id}>\r\nSubject: {subject}\r\n"
    if reply_to:
        head += f"In-Reply-To: <{reply_to}>\r\nReferences: <{reply_to}>\r\n"
    return (head + "\r\nhello\r\n").encode()


async def test_thread_ids_and_counters(api: Api) -> None:
    user = await api.create_user("alice")
    inbox = await inbox_of(api, user)
    for raw in (_mail("1@x", "Trip"), _mail("2@x", "Re: Trip", "1@x"), _mail("3@x", "Budget"),
                _mail("4@x", "Re: Trip", "2@x")):
        await upload_raw(api, user, inbox, raw)
    listed = (await api.root.get(f"/users/{user}/mailboxes/{inbox}/messages",
                                 params={"threadCounters": "true", "order": "asc"})).json()["results"]
    threads = [m["thread"] for m in listed]
    assert threads[0] == threads[1] == threads[3] != threads[2]
    assert [m["threadMessageCount"] for m in listed] == [3, 3, 1, 3]
    plain = (await api.root.get(f"/users/{user}/mailboxes/{inbox}/messages")).json()["results"]
    assert all("threadMessageCount" not in m for m in plain)
    one = (await api.root.get(f"/users/{user}/mailboxes/{inbox}/messages/2")).json()
    assert one["thread"] == threads[0]
    # a copy elsewhere keeps its thread; counters are per mailbox
    trash = await mailbox_id(api, user, "Trash")
    r = await api.root.put(f"/users/{user}/mailboxes/{inbox}/messages/4", json={"moveTo": trash})
    assert r.json()["success"] is True
    found = (await api.root.get(f"/users/{user}/search", params={"thread": threads[0], "threadCounters": "true"}
                                )).json()["results"]
    assert sorted((m["mailbox"], m["threadMessageCount"]) for m in found) == sorted(
        [(inbox, 2), (inbox, 2), (trash, 1)])
    assert all(m["thread"] == threads[0] for m in found)
