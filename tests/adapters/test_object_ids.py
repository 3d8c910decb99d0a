"""EMAILID, THREADID and SAVEDATE on every adapter (RFC 8474, RFC 8514): threads assigned at ingest by references
and base subject, per user; copies and moves keep the EMAILID and the thread and get a new save date."""

from __future__ import annotations

import datetime as dt
from typing import Any

import trio

from tests.adapters.conftest import make_user
from wildduck.domain.messages import prepare
from wildduck.model import NewMessage


def _mail(message_id: str, subject: str, *, references: str = "", in_reply_to: str = "") -> bytes:
    head = f"Message-ID: <{message_id}>\r\nSubject: {subject}\r\n"
    if references:
        head += f"References: {references}\r\n"
    if in_reply_to:
        head += f"In-Reply-To: {in_reply_to}\r\n"
    return (head + "\r\nbody\r\n").encode()


async def test_threads_come_from_references_and_the_base_subject(store: Any) -> None:
    alice, bob = await make_user(store, "alice"), await make_user(store, "bob")
    inbox = await store.find_mailbox(alice.id, "INBOX")
    bob_inbox = await store.find_mailbox(bob.id, "INBOX")
    first = prepare(_mail("1@x", "Lunch?"))
    # one delivery to two users: each user's copy is in a thread of that user
    await store.append_messages([NewMessage(alice.id, inbox.id, first), NewMessage(bob.id, bob_inbox.id, first)])
    await store.append_messages([NewMessage(alice.id, inbox.id, prepare(raw)) for raw in (
        _mail("2@x", "RE: Lunch?", in_reply_to="<1@x>"),
        _mail("3@x", "Re: [team] Fwd: lunch?", references="<1@x> <2@x>"),
        _mail("4@x", "Dinner", references="<1@x>"),  # refers to the thread, but with another subject
        _mail("5@x", "Re: Lunch?", references="<unknown@x>"),  # same subject, no shared id
        b"Subject: Lunch?\r\n\r\nno ids at all\r\n",
        _mail("6@x", "Re: Dinner", references="<4@x>"),
    )])
    got = await store.get_messages(inbox.id, list(range(1, 8)), content=False)
    t = [r.thread_id for r in got]
    assert t[0] == t[1] == t[2]
    assert t[3] == t[6] and t[3] != t[0]
    assert len({t[0], t[3], t[4], t[5]}) == 4
    assert [r.references for r in got] == [(), ("1@x",), ("1@x", "2@x"), ("1@x",), ("unknown@x",), (), ("4@x",)]
    assert [r.base_subject for r in got] == ["Lunch?", "Lunch?", "lunch?", "Dinner", "Lunch?", "Lunch?", "Dinner"]
    assert [r.subject_reply for r in got] == [False, True, True, False, True, False, True]
    bobs = await store.get_messages(bob_inbox.id, [1], content=False)
    assert bobs[0].thread_id != t[0] and bobs[0].email_id == bobs[0].id
    assert all(r.email_id == r.id and r.saved is not None for r in got)
    listed = await store.list_messages(inbox.id)
    assert [m.thread_id for m in listed] == t


async def test_copies_and_moves_keep_the_email_id_and_thread(store: Any) -> None:
    user = await make_user(store)
    inbox = await store.find_mailbox(user.id, "INBOX")
    trash = await store.find_mailbox(user.id, "Trash")
    old = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    await store.append_messages([NewMessage(user.id, inbox.id, prepare(_mail("1@x", "Hello")), internal_date=old)])
    (original,) = await store.get_messages(inbox.id, [1], content=False)
    assert original.email_id == original.id
    assert original.saved is not None and original.saved > old  # saved now, whatever the internal date
    await trio.sleep(0.01)
    await store.copy_messages(inbox.id, [1], trash.id)
    (copy,) = await store.get_messages(trash.id, [1], content=False)
    assert copy.id != original.id and copy.email_id == original.email_id and copy.thread_id == original.thread_id
    assert copy.internal_date == original.internal_date and copy.saved is not None and copy.saved > original.saved
    await store.copy_messages(trash.id, [1], inbox.id, move=True)
    (moved,) = await store.get_messages(inbox.id, [2], content=False)
    assert moved.email_id == original.email_id and moved.thread_id == original.thread_id
    full = await store.get_message(inbox.id, 2)
    assert (full.email_id, full.thread_id, full.references, full.base_subject) == \
        (moved.email_id, moved.thread_id, (), "Hello")


async def test_thread_counts_per_mailbox(store: Any) -> None:
    user = await make_user(store)
    inbox = await store.find_mailbox(user.id, "INBOX")
    trash = await store.find_mailbox(user.id, "Trash")
    await store.append_messages([NewMessage(user.id, inbox.id, prepare(raw)) for raw in (
        _mail("1@x", "A"), _mail("2@x", "Re: A", references="<1@x>"), _mail("3@x", "B"))])
    await store.copy_messages(inbox.id, [2], trash.id)
    a, _, b = (r.thread_id for r in await store.get_messages(inbox.id, [1, 2, 3], content=False))
    assert await store.thread_counts(inbox.id, [a, b, "f" * 24]) == {a: 2, b: 1}
    assert await store.thread_counts(trash.id, [a, b]) == {a: 1}
    assert await store.thread_counts(inbox.id, []) == {}
