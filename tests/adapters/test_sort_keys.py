"""``Messages.sort_keys`` and ``Messages.thread_keys`` on every adapter: what SORT and THREAD read of a message, kept
at ingest, equal to what the sans-I/O code computes from the message's record (the Date header's instant, the
decoded subject, ENVELOPE in its IMAP form; the threading columns); for the UIDs asked that exist, in UID order;
kept by copies; and (SQLite, schema v14) filled by the migration for the messages stored before, read from the
covering indexes; (MongoDB) computed on read for a message stored without them."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.adapters.conftest import make_user, open_store
from wildduck.adapters.sqlite import open_sqlite_store
from wildduck.adapters.sqlite.codec import SORT_COLUMNS
from wildduck.domain.messages import prepare
from wildduck.model import MessageRecord, NewMessage
from wildduck.protocols.imap import sort
from wildduck.protocols.mime.headers import message_ids

#: display names plain, quoted, encoded, 8-bit and long (literals in ENVELOPE), groups, routes, no addresses at all,
#: a Date in another zone, none, garbage; subjects with reply markers, encoded words, case; threading headers
RAWS = [
    b"From: Zed Zimmer <zed@example.net>, ann@example.net\r\nTo: \"B \\\"q\\\"\" <b@example.com>\r\n"
    b"Subject: Re: [list] Plans\r\nDate: Tue, 10 Mar 2026 23:30:00 -0800\r\nMessage-ID: <a@x>\r\n\r\nx\r\n",
    b"From: =?UTF-8?Q?=C3=89mile?= <e@example.net>\r\nCc: a@b, c@d\r\nTo: undisclosed-recipients:;\r\n"
    b"Subject: =?UTF-8?Q?Fwd=3A_caf=C3=A9?=\r\nIn-Reply-To: <a@x>\r\n\r\nx\r\n",
    b"From: \"" + b"x" * 300 + b"\" <long@example.net>\r\nCc: \"\xc3\xa9\" <e@example.com>\r\nDate: garbage\r\n"
    b"References: <a@x> <b@x>\r\nMessage-ID: <c@x> <extra@x>\r\nSubject: plans\r\n\r\nx\r\n",
    b"Subject: no addresses\r\n\r\nx\r\n",
    b"From: \"a\r\n b\" <folded@example.net>\r\nTo: <@route:x@y>\r\nMessage-ID: not an id\r\n"
    b"Date: Wed, 11 Mar 2026 12:00:00 +0000\r\n\r\nx\r\n",
    "From: Jörg <j@example.com>\r\nTo: ß <s@example.com>\r\nSubject: ÉTÉ\r\n\r\nx\r\n".encode(),
]


def _expected_sort(r: MessageRecord, addresses: bool) -> tuple[Any, ...]:
    """What SORT compared before the keys were kept: computed from the record."""
    sent = r.header_date.timestamp() if r.header_date is not None else None
    return tuple(sort.record(r.uid, arrival=r.internal_date.timestamp(), sent=sent, size=r.size, subject=r.subject,
                             envelope=r.imap_envelope, addresses=addresses))


def _expected_thread(r: MessageRecord) -> tuple[Any, ...]:
    own = message_ids(r.message_id)
    sent = r.header_date if r.header_date is not None else r.internal_date
    return (r.uid, r.base_subject, sent.timestamp(), own[0] if own else None, r.references, r.subject_reply)


def _close(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows with their dates rounded to the millisecond (MongoDB keeps dates to the millisecond)."""
    return [(r[0], *(round(v, 3) if isinstance(v, float) else v for v in r[1:])) for r in rows]


async def _filled(store: Any) -> tuple[str, list[MessageRecord]]:
    user = await make_user(store)
    inbox = await store.find_mailbox(user.id, "INBOX")
    await store.append_messages([NewMessage(user.id, inbox.id, prepare(raw)) for raw in RAWS])
    return inbox.id, await store.get_messages(inbox.id, list(range(1, len(RAWS) + 1)), content=False)


async def test_sort_keys_are_what_sort_computes_from_the_message(store: Any) -> None:
    mailbox_id, records = await _filled(store)
    uids = [r.uid for r in records]
    for addresses in (True, False):
        got = await store.sort_keys(mailbox_id, uids, addresses=addresses)
        assert _close([tuple(g) for g in got]) == _close([_expected_sort(r, addresses) for r in records])
    full = await store.sort_keys(mailbox_id, uids, addresses=True)
    assert full[0][4:11] == ("PLANS", "ZED", "B", "", "ZED ZIMMER", 'B "Q"', 1)
    # decomposed; a group's start is the first "address" (as ENVELOPE writes it)
    assert full[1][4:8] == ("CAFE\u0301", "E", "UNDISCLOSED-RECIPIENTS", "A") and full[1][8] == "E\u0301MILE"
    assert full[2][8] == "X" * 300 and full[3][4:10] == ("NO ADDRESSES", "", "", "", "", "")
    assert full[2][2] == full[2][1] and full[0][2] != full[0][1]  # no parseable Date: the internal date
    short = await store.sort_keys(mailbox_id, uids, addresses=False)
    assert all(r[5:] == ("", "", "", "", "", 0) for r in short)


async def test_thread_keys_are_the_threading_columns(store: Any) -> None:
    mailbox_id, records = await _filled(store)
    got = await store.thread_keys(mailbox_id, [r.uid for r in records])
    assert _close([tuple(g) for g in got]) == _close([_expected_thread(r) for r in records])
    assert [g[3] for g in got] == ["a@x", None, "c@x", None, None, None]
    assert [g[4] for g in got] == [(), ("a@x",), ("a@x", "b@x"), (), (), ()]
    assert [(g[1], g[5]) for g in got[:3]] == [("Plans", True), ("café", True), ("plans", False)]


async def test_only_the_uids_that_exist_in_uid_order(store: Any) -> None:
    mailbox_id, _records = await _filled(store)
    await store.expunge(mailbox_id, [2])
    for uids in ([6, 1, 2, 4, 99], [3, 4, 5], [2], []):
        expected = sorted(u for u in set(uids) if u in (1, 3, 4, 5, 6))
        assert [r[0] for r in await store.sort_keys(mailbox_id, uids, addresses=True)] == expected
        assert [r[0] for r in await store.sort_keys(mailbox_id, uids, addresses=False)] == expected
        assert [r[0] for r in await store.thread_keys(mailbox_id, uids)] == expected


async def test_copies_and_moves_keep_the_keys(store: Any) -> None:
    mailbox_id, records = await _filled(store)
    trash = await store.find_mailbox(records[0].user_id, "Trash")
    before = await store.sort_keys(mailbox_id, [1, 2, 3], addresses=True)
    threads = await store.thread_keys(mailbox_id, [1, 2, 3])
    await store.copy_messages(mailbox_id, [1, 2], trash.id)
    await store.copy_messages(mailbox_id, [3], trash.id, move=True)
    copied = await store.sort_keys(trash.id, [1, 2, 3], addresses=True)
    assert [tuple(r[1:]) for r in copied] == [tuple(r[1:]) for r in before]
    assert [tuple(r[1:]) for r in await store.thread_keys(trash.id, [1, 2, 3])] == [tuple(r[1:]) for r in threads]


async def test_v14_migration_fills_the_sort_keys(tmp_path: Path) -> None:
    """A v13 database had no sort keys: the migration derives them from each stored subject and ENVELOPE, the same
    as an ingest, and SORT and THREAD read theirs from covering indexes alone."""
    from tests.adapters.test_sqlite_specific import _DROP_V14

    path = tmp_path / "v13.db"
    s = await open_sqlite_store(path)
    try:
        mailbox_id, _records = await _filled(s)
        fresh = await s.sort_keys(mailbox_id, range(1, 7), addresses=True)
        threads = await s.thread_keys(mailbox_id, range(1, 7))
    finally:
        await s.close()
    conn = sqlite3.connect(path)
    conn.executescript(_DROP_V14 + "PRAGMA user_version = 13;")  # back to v13
    conn.close()
    s = await open_sqlite_store(path)
    try:
        assert await s.sort_keys(mailbox_id, range(1, 7), addresses=True) == fresh
        assert await s.thread_keys(mailbox_id, range(1, 7)) == threads
        assert s._writer is not None
        columns = ", ".join(SORT_COLUMNS)
        plan = " ".join(str(r[-1]) for r in s._writer.execute(
            f"EXPLAIN QUERY PLAN SELECT uid, internal_date, header_date, size, {columns} FROM messages "
            "INDEXED BY messages_sort WHERE mailbox_id = ? AND uid BETWEEN 1 AND 9 ORDER BY uid", (mailbox_id,)))
        assert "COVERING INDEX messages_sort" in plan
        plan = " ".join(str(r[-1]) for r in s._writer.execute(
            "EXPLAIN QUERY PLAN SELECT uid, base_subject, COALESCE(header_date, internal_date), own_id, refs, "
            "subject_reply FROM messages INDEXED BY messages_thread_keys WHERE mailbox_id = ? AND uid IN (1, 3) "
            "ORDER BY uid", (mailbox_id,)))
        assert "COVERING INDEX messages_thread_keys" in plan
        assert [r[0] for r in await s.thread_keys(mailbox_id, [1, 3])] == [1, 3]
        assert await s.check_integrity() == []
    finally:
        await s.close()


@pytest.mark.parametrize("kind", ["mongodb"])
async def test_mongodb_computes_the_keys_of_a_message_stored_without_them(kind: str, tmp_path: Path) -> None:
    s = await open_store(kind, tmp_path)
    try:
        mailbox_id, records = await _filled(s)
        fresh = await s.sort_keys(mailbox_id, [1, 2, 3, 4, 5, 6], addresses=True)
        s.db.messages.update_many({"mailbox": mailbox_id, "uid": {"$in": [2, 3, 5]}}, {"$unset": {"skeys": ""}})
        assert await s.sort_keys(mailbox_id, [1, 2, 3, 4, 5, 6], addresses=True) == fresh
        short = await s.sort_keys(mailbox_id, [2, 3], addresses=False)
        assert [r[4] for r in short] == [fresh[1][4], fresh[2][4]]
    finally:
        await s.close()


async def test_sqlite_orders_as_the_session_orders_the_keys(tmp_path: Path) -> None:
    """``sort_order`` (SQLite orders its whole mailbox) equals :func:`sort.order` of the keys ``sort_keys`` returns,
    for random criteria over messages that tie on every key in places: same subjects, sizes, dates (some without a
    Date header), senders, non-ASCII and empty values; an expunged message is not in it."""
    import random

    from wildduck.protocols.imap.grammar import SortCriterion

    rng = random.Random(5256)
    names = ["Zed", "ann", "Émile", "ÉMILE", "Ærø", "", "b\u0301", "Bob"]
    subjects = ["Re: plans", "plans", "Fwd: café", "CAFÉ", "", "ÉTÉ", "[list] x", "z"]
    raws = []
    for n in range(120):
        sender = rng.choice(names)
        date = rng.choice(["", "Date: Tue, 10 Mar 2026 23:30:00 -0800\r\n", "Date: Wed, 11 Mar 2026 12:00:00 +0000\r\n",
                           "Date: garbage\r\n", f"Date: Thu, 12 Mar 2026 0{n % 10}:00:00 +0000\r\n"])
        from_ = f"From: {sender} <{sender.encode('ascii', 'ignore').decode() or 'x'}@example.net>\r\n" if sender else ""
        to = rng.choice(["", "To: ann@example.com\r\n", "To: Zed <z@example.com>\r\n", "To: undisclosed:;\r\n"])
        cc = rng.choice(["", "Cc: c@d\r\n", "Cc: Émile <e@x>\r\n"])
        body = "x" * rng.choice([1, 1, 50, 300])
        raws.append(f"{from_}{to}{cc}{date}Subject: {rng.choice(subjects)}\r\n\r\n{body}\r\n".encode())
    store = await open_sqlite_store(tmp_path / "s.db")
    try:
        user = await make_user(store)
        inbox = await store.find_mailbox(user.id, "INBOX")
        await store.append_messages([NewMessage(user.id, inbox.id, prepare(raw)) for raw in raws])
        await store.expunge(inbox.id, [7, 50])
        rows = await store.sort_keys(inbox.id, list(range(1, 121)), addresses=True)
        assert len(rows) == 118
        keys = ["ARRIVAL", "DATE", "SIZE", "SUBJECT", "FROM", "TO", "CC", "DISPLAYFROM", "DISPLAYTO"]
        for _ in range(300):
            criteria = [SortCriterion(rng.choice(keys), rng.random() < 0.4) for _ in range(rng.randint(1, 3))]
            got = await store.sort_order(inbox.id, [(c.key, c.reverse) for c in criteria])
            assert got == [r[0] for r in sort.order(rows, criteria)], criteria
    finally:
        await store.close()
