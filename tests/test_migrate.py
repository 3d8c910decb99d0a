"""``wildduck migrate``: the single node's SQLite store to a cluster's MongoDB (FerretDB here) and back, keeping ids,
UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, UIDs, MODSEQs, flags, dates and every message's bytes; an interrupted run
resumed; the verification catching a damaged copy; a username clash refused; IMAP on the copy through a real
``wildduck serve``; the command itself."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import imaplib
import os
import re
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from wildduck.adapters.sqlite import open_sqlite_store
from wildduck.domain import passwords
from wildduck.domain.messages import OpenedMessage, prepare
from wildduck.domain.migrate import MigrationError, migrate, verify
from wildduck.model import FlagMode, MailboxSpec, NewMessage
from wildduck.testing import ferretdb
from wildduck.testing.server import ServerProcess

PASSWORD = "secret pw"
#: an attachment stored in several messages (one blob, one reference per message)
ATTACHMENT = bytes(range(256)) * 64
WHEN = dt.datetime(2024, 3, 4, 5, 6, 7, 891234, dt.UTC)


@pytest.fixture(scope="module")
def password_hash() -> str:
    return passwords.hash_password(PASSWORD)


@pytest.fixture(scope="module")
def mongodb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URI of one FerretDB for the module's tests (each uses a database of its own)."""
    reason = ferretdb.unavailable()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs the mongodb tests: {reason}")
        pytest.skip(reason)
    with ferretdb.running(tmp_path_factory.mktemp("ferretdb")) as server:
        yield server.uri


async def open_mongodb(uri: str, database: str | None = None) -> Any:
    from wildduck.adapters.mongodb import open_mongo_store

    return await open_mongo_store(uri, database=database or f"m{secrets.token_hex(4)}")


def message(n: int, *, attachment: bool = False, reply_to: int | None = None) -> bytes:
    head = (f"From: Sender {n} <s{n}@example.org>\r\nTo: ann@example.com\r\nSubject: "
            f"{'Re: ' if reply_to else ''}hello {reply_to or n}\r\nMessage-ID: <m{n}@example.org>\r\n"
            + (f"In-Reply-To: <m{reply_to}@example.org>\r\n" if reply_to else "")
            + "Date: Mon, 4 Mar 2024 05:06:07 +0100\r\nMIME-Version: 1.0\r\n")
    if not attachment:
        return f"{head}Content-Type: text/plain\r\n\r\nbody of {n}\r\n".encode()
    encoded = base64.encodebytes(ATTACHMENT).replace(b"\n", b"\r\n")
    return (f"{head}Content-Type: multipart/mixed; boundary=sep\r\n\r\n--sep\r\nContent-Type: text/plain\r\n\r\n"
            f"see the attachment {n}\r\n--sep\r\nContent-Type: application/octet-stream; name=a.bin\r\n"
            "Content-Disposition: attachment; filename=a.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n").encode() \
        + encoded + b"--sep--\r\n"


#: 8-bit header text (UTF-8, no encoded words)
EIGHT_BIT = "From: Jörg Müller <j@example.org>\r\nSubject: Grüße aus Köln\r\nMessage-ID: <u8@example.org>\r\n\r\n" \
    "Hallo\r\n".encode()


async def populate(store: Any, password_hash: str) -> dict[str, Any]:
    """Two users with aliases, nested mailboxes, keywords, shared attachments, an 8-bit header, expunged UIDs,
    copies and a move; returns the ids the tests look at."""
    specs = [MailboxSpec("INBOX"), MailboxSpec("Sent Mail", "\\Sent"), MailboxSpec("Work"),
             MailboxSpec("Work/Projects"), MailboxSpec("Work/Projects/2026", subscribed=False)]
    ann = await store.create_user(username="ann", unameview="ann", password_hash=password_hash, quota=50 << 20,
                                  addresses=[("ann@example.com", "ann@example.com")], mailboxes=specs, name="Ann A.",
                                  tags=["Staff", "vip"])
    await store.add_address(ann.id, "ann.alias@example.com", "annalias@example.com", name="Alias", tags=["alias"])
    await store.set_subscribed(ann.id, "Old/Gone", True)  # a subscription without a mailbox
    bob = await store.create_user(username="bob", unameview="bob", password_hash=password_hash, quota=None,
                                  addresses=[("bob@example.com", "bob@example.com")], mailboxes=specs[:2])
    await store.add_address(bob.id, "robert@example.com", "robert@example.com", main=True)
    await store.set_disabled(bob.id, True)
    boxes = {m.path: m for m in await store.list_mailboxes(ann.id)}
    inbox, work = boxes["INBOX"].id, boxes["Work"].id
    items = [NewMessage(ann.id, inbox, prepare(message(n, attachment=n % 3 == 0)),
                        flags=(("\\Seen",) if n % 2 else ()) + (("$Label1", "Custom") if n % 4 == 0 else ()),
                        internal_date=WHEN + dt.timedelta(hours=n)) for n in range(1, 10)]
    items.append(NewMessage(ann.id, inbox, prepare(EIGHT_BIT), flags=("\\Answered",), internal_date=WHEN))
    items.append(NewMessage(ann.id, work, prepare(message(20, reply_to=1)), internal_date=WHEN))
    results = await store.append_messages(items)
    await store.set_flags(inbox, [2, 4, 9], FlagMode.ADD, ["\\Flagged", "$Work"])
    await store.set_flags(inbox, [4], FlagMode.REMOVE, ["Custom"])
    await store.expunge(inbox, [5])
    await store.copy_messages(inbox, [3, 6], boxes["Work/Projects"].id)
    await store.copy_messages(inbox, [7], work, move=True)
    bob_inbox = (await store.find_mailbox(bob.id, "INBOX")).id
    await store.append_messages([NewMessage(bob.id, bob_inbox, prepare(message(30, attachment=True)), ("\\Seen",),
                                            WHEN)])
    blob = next(iter(prepare(message(3, attachment=True)).blobs))
    return {"ann": ann, "bob": bob, "inbox": inbox, "results": results, "blob": blob}


def ms(value: dt.datetime) -> dt.datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


async def state(store: Any) -> dict[str, Any]:
    """Everything a migration keeps, read through the ports (independently of the verification)."""
    out: dict[str, Any] = {}
    for u in sorted(await store.list_users(), key=lambda u: u.username):
        boxes = []
        for b in await store.list_mailboxes(u.id):
            records = await store.get_messages(b.id, [m.uid for m in await store.list_messages(b.id)])
            blobs = await store.get_blobs({p.blob for r in records for p in r.parts})
            messages = [(r.id, r.uid, r.modseq, r.flags, ms(r.internal_date), ms(r.saved), r.email_id, r.thread_id,
                         r.size, r.subject, r.imap_envelope, r.imap_envelope_utf8, r.imap_bodystructure,
                         hashlib.sha256(OpenedMessage(r, blobs).content()).hexdigest()) for r in records]
            status = await store.mailbox_status(b.id)
            boxes.append((b.id, b.path, b.special_use, b.uid_validity, b.uid_next, b.highest_modseq, b.subscribed,
                          status.messages, status.unseen, status.size, messages))
        addresses = sorted((a.id, a.address, a.addrview, a.main, a.name, a.tags, ms(a.created))
                           for a in await store.list_addresses(u.id))
        out[u.username] = (u.id, u.password_hash, u.quota, u.disabled, u.name, u.tags, ms(u.created), u.storage_used,
                           addresses, await store.list_subscriptions(u.id), boxes)
    return out


async def check_target_works_on(target: Any, ids: dict[str, Any], before: dict[str, Any]) -> None:
    """The copy behaves as the source would: the next message gets UIDNEXT and HIGHESTMODSEQ + 1, a reply joins
    its thread, a client at the copied HIGHESTMODSEQ replays from there while an older one resyncs, and a new
    mailbox gets a higher UIDVALIDITY."""
    ann = ids["ann"]
    box = await target.get_mailbox(ids["inbox"])
    original = next(r for r in (await target.get_messages(box.id, [1])))
    (appended,) = await target.append_messages([NewMessage(ann.id, box.id, prepare(message(40, reply_to=1)))])
    assert (appended.uid, appended.modseq, appended.uid_validity) == (box.uid_next, box.highest_modseq + 1,
                                                                      box.uid_validity)
    assert (await target.get_message(box.id, appended.uid)).thread_id == original.thread_id
    page = await target.read_journal(box.id, box.highest_modseq)
    assert not page.pruned and [e.uid for e in page.entries] == [appended.uid]
    assert (await target.read_journal(box.id, box.highest_modseq - 1)).pruned
    created = await target.create_mailbox(ann.id, MailboxSpec("Fresh"))
    assert created.uid_validity > max(b[3] for b in before["ann"][10])
    assert await target.check_integrity() == []


async def test_sqlite_to_mongodb_and_back(tmp_path: Path, mongodb: str, password_hash: str) -> None:
    source = await open_sqlite_store(tmp_path / "source.db")
    cluster = await open_mongodb(mongodb)
    node = await open_sqlite_store(tmp_path / "back.db")
    try:
        ids = await populate(source, password_hash)
        before = await state(source)
        assert before["ann"][10][0][5] > 12  # INBOX: the flag changes and the expunge raised HIGHESTMODSEQ
        seen: list[tuple[int, int]] = []
        report = await migrate(source, cluster, batch=3, progress=lambda done, total: seen.append((done, total)))
        assert (report.users, report.mailboxes, report.messages, report.complete) == (2, 7, 13, True)
        assert seen[-1] == (13, 13) and [d for d, _ in seen] == sorted(d for d, _ in seen)
        assert await verify(source, cluster) == []
        assert await state(cluster) == before
        # the attachment is one blob in the cluster too, referenced by each message that has it
        assert await cluster.blob_refcount(ids["blob"]) == await source.blob_refcount(ids["blob"]) == 6

        back = await migrate(cluster, node, batch=200)
        assert (back.users, back.messages) == (2, 13)
        assert await verify(cluster, node) == []
        assert await state(node) == before
        assert await node.blob_refcount(ids["blob"]) == 6
        await check_target_works_on(cluster, ids, before)
        await check_target_works_on(node, ids, before)
    finally:
        for s in (source, cluster, node):
            await s.close()


@pytest.mark.parametrize("kind", ["sqlite", "mongodb"])
async def test_an_interrupted_run_continues(tmp_path: Path, kind: str, request: pytest.FixtureRequest,
                                            password_hash: str) -> None:
    source = await open_sqlite_store(tmp_path / "source.db")
    target = await (open_mongodb(request.getfixturevalue("mongodb")) if kind == "mongodb"
                    else open_sqlite_store(tmp_path / "target.db"))
    try:
        await populate(source, password_hash)
        first = await migrate(source, target, batch=2, max_batches=3)
        # which user comes first depends on their ids: 5 or 6 messages in 3 batches
        assert not first.complete and first.messages in (5, 6)
        assert await verify(source, target) != []
        second = await migrate(source, target, batch=2, max_batches=2)
        assert not second.complete and second.messages in (3, 4)
        assert second.users_skipped >= 1 and second.messages_skipped == first.messages
        last = await migrate(source, target, batch=2)
        assert last.complete and last.messages_skipped == first.messages + second.messages
        assert first.messages + second.messages + last.messages == 13
        assert first.users + second.users + last.users == 2
        assert first.mailboxes + second.mailboxes + last.mailboxes == 7
        assert await verify(source, target) == []
        assert await state(target) == await state(source)
        again = await migrate(source, target)
        assert (again.users, again.mailboxes, again.messages, again.messages_skipped) == (0, 0, 0, 13)
    finally:
        await source.close()
        await target.close()


class Killed(Exception):
    pass


class DiesInABatch:
    """A target whose ``after``-th import call stores the first half of its batch and then dies (what a killed
    process leaves on MongoDB, which inserts a batch's messages in UID order without a transaction)."""

    def __init__(self, target: Any, after: int) -> None:
        self.target = target
        self.calls = after
        self.stored = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)

    async def import_messages(self, mailbox_id: str, messages: Any) -> None:
        self.calls -= 1
        if self.calls <= 0:
            messages = messages[:len(messages) // 2]
        await self.target.import_messages(mailbox_id, messages)
        self.stored += len(messages)
        if self.calls <= 0:
            raise Killed


async def test_a_run_killed_inside_a_batch_continues(tmp_path: Path, mongodb: str, password_hash: str) -> None:
    source = await open_sqlite_store(tmp_path / "source.db")
    target = await open_mongodb(mongodb)
    try:
        await populate(source, password_hash)
        dying = DiesInABatch(target, 2)
        with pytest.raises(Killed):
            await migrate(source, dying, batch=4)
        assert dying.stored in (3, 6)  # a first batch of 1 (bob's) or 4 (ann's), then half of 4
        resumed = await migrate(source, target, batch=4)
        assert resumed.complete and resumed.messages_skipped == dying.stored
        assert resumed.messages == 13 - dying.stored
        assert await verify(source, target) == []
        assert await state(target) == await state(source)  # storage too: recounted
        assert await target.check_integrity() == []
    finally:
        await source.close()
        await target.close()


async def test_verification_reports_a_damaged_copy(tmp_path: Path, password_hash: str) -> None:
    source = await open_sqlite_store(tmp_path / "source.db")
    target = await open_sqlite_store(tmp_path / "target.db")
    try:
        ids = await populate(source, password_hash)
        await migrate(source, target)
        assert await verify(source, target) == []
    finally:
        await target.close()
    record = await source.get_message(ids["inbox"], 2)
    damaged = record.skeleton.replace(b"body of 2", b"body of X")
    assert damaged != record.skeleton
    with sqlite3.connect(tmp_path / "target.db") as conn:  # a changed byte behind the store's back
        conn.execute("UPDATE messages SET skeleton = ?, skeleton_compressed = 0 WHERE id = ?", (damaged, record.id))
        conn.execute("UPDATE messages SET flags = '[]' WHERE mailbox_id = ? AND uid = 4", (ids["inbox"],))
    target = await open_sqlite_store(tmp_path / "target.db")
    try:
        differences = await verify(source, target)
        assert len(differences) == 2, differences
        assert any("UID 2: content differs (SHA-256" in d for d in differences)
        assert any("UID 4: (id, MODSEQ, flags" in d for d in differences)
    finally:
        await source.close()
        await target.close()


async def test_a_different_user_of_the_same_name_is_not_overwritten(tmp_path: Path, password_hash: str) -> None:
    source = await open_sqlite_store(tmp_path / "source.db")
    target = await open_sqlite_store(tmp_path / "target.db")
    try:
        await populate(source, password_hash)
        other = await target.create_user(username="ann", unameview="ann", password_hash="x", quota=None,
                                         addresses=[("other@example.com", "other@example.com")], mailboxes=[])
        with pytest.raises(MigrationError, match="another user named 'ann'.*refusing to overwrite"):
            await migrate(source, target)
        assert (await target.find_user("ann")).id == other.id
        assert await target.list_mailboxes(other.id) == []
        await target.delete_user(other.id)
        await target.create_user(username="carol", unameview="carol", password_hash="x", quota=None,
                                 addresses=[("annalias@example.com", "annalias@example.com")], mailboxes=[])
        with pytest.raises(MigrationError, match="cannot copy user 'ann'.*ann.alias@example.com is taken"):
            await migrate(source, target)
        assert await target.find_user("ann") is None  # nothing of it stays
    finally:
        await source.close()
        await target.close()


def write_config(directory: Path, store: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "wildduck.toml"
    path.write_text(f'[server]\ndata_dir = "{directory / "data"}"\nshutdown_timeout = 2.0\n[metrics]\nport = 0\n'
                    "[lmtp]\nport = 0\n[imap]\nport = 0\ntls_port = 0\n[pop3]\nport = 0\ntls_port = 0\n"
                    "[api]\nenabled = false\n" + store)
    return path


def imap_view(server: ServerProcess, user: str) -> dict[str, tuple[bytes, list[bytes]]]:
    """Per mailbox: STATUS (UIDVALIDITY UIDNEXT MESSAGES) and the lines of ``UID FETCH 1:* (FLAGS)``."""
    client = imaplib.IMAP4(*server.address("imap"), timeout=30)
    try:
        client.login(user, PASSWORD)
        out = {}
        for path in ("INBOX", "Work", "Work/Projects"):
            typ, status = client.status(f'"{path}"', "(UIDVALIDITY UIDNEXT MESSAGES)")
            assert typ == "OK", status
            client.select(f'"{path}"', readonly=True)
            typ, fetched = client.uid("FETCH", "1:*", "(FLAGS)")
            assert typ == "OK", fetched
            out[path] = (re.sub(rb"^.*?\(", b"(", status[0]), sorted(f for f in fetched if isinstance(f, bytes)))
        return out
    finally:
        client.logout()


def test_imap_on_the_copy_shows_the_same_uids(tmp_path: Path, mongodb: str, password_hash: str) -> None:
    source_config = write_config(tmp_path / "node")
    target_config = write_config(tmp_path / "copy")
    database = f"m{secrets.token_hex(4)}"

    async def prepare_stores() -> None:
        source = await open_sqlite_store(tmp_path / "node" / "data" / "wildduck.db")
        cluster = await open_mongodb(mongodb, database)
        target = await open_sqlite_store(tmp_path / "copy" / "data" / "wildduck.db")
        try:
            await populate(source, password_hash)
            assert (await migrate(source, cluster)).complete
            assert (await migrate(cluster, target)).complete
        finally:
            for s in (source, cluster, target):
                await s.close()

    trio.run(prepare_stores)
    with ServerProcess(source_config) as server:
        original = imap_view(server, "ann")
    with ServerProcess(target_config) as server:
        copied = imap_view(server, "ann")
    assert copied == original
    status, lines = copied["INBOX"]
    assert b"UIDNEXT 11" in status and b"MESSAGES 8" in status
    (fourth,) = [line for line in lines if re.search(rb"UID 4\b", line)]
    assert b"$Work" in fourth and b"$Label1" in fourth and b"\\Flagged" in fourth and b"Custom" not in fourth
    assert not any(b"UID 5 " in line for line in lines)  # expunged in the source: the gap stays


def test_the_command_copies_and_verifies(tmp_path: Path, mongodb: str, password_hash: str) -> None:
    source_config = write_config(tmp_path / "node")
    target_config = write_config(tmp_path / "cluster", f'[store]\nbackend = "mongodb"\nuri = '
                                                       f'"{mongodb.rstrip("/")}/m{secrets.token_hex(4)}"\n')

    async def fill() -> None:
        source = await open_sqlite_store(tmp_path / "node" / "data" / "wildduck.db")
        try:
            await populate(source, password_hash)
        finally:
            await source.close()

    trio.run(fill)

    def wd(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "wildduck", "--config", str(source_config), *args],
                              capture_output=True, text=True, timeout=300)

    partial = wd("migrate", "--from", str(source_config), "--to", str(target_config), "--batch", "4",
                 "--max-batches", "1")
    assert partial.returncode == 0, partial.stderr
    assert "stopped after 1 batches" in partial.stdout
    done = wd("migrate", "--from", str(source_config), "--to", str(target_config))
    assert done.returncode == 0, done.stderr
    counts = re.search(r"copied (\d+) users, (\d+) mailboxes, (\d+) messages \(already there: (\d+) users, "
                       r"(\d+) mailboxes, (\d+) messages\)", done.stdout)
    assert counts is not None, done.stdout
    copied = [int(n) for n in counts.groups()]
    assert copied[3] >= 1 and copied[0] + copied[3] == 2 and copied[2] + copied[5] == 13 and 0 < copied[5] <= 4
    assert "verified:" in done.stdout and "copying: 13 of 13 messages" in done.stderr
    back = write_config(tmp_path / "back")
    returned = wd("migrate", "--from", str(target_config), "--to", str(back))
    assert returned.returncode == 0, returned.stderr
    assert "copied 2 users, 7 mailboxes, 13 messages" in returned.stdout and "verified:" in returned.stdout

    with sqlite3.connect(tmp_path / "back" / "data" / "wildduck.db") as conn:
        conn.execute("UPDATE messages SET flags = '[\"$Forged\"]' WHERE uid = 1")
    checked = wd("migrate", "--from", str(target_config), "--to", str(back))
    assert checked.returncode == 1
    assert "difference: user ann: mailbox INBOX: UID 1" in checked.stderr and "verification failed" in checked.stderr
    same = wd("migrate", "--from", str(back), "--to", str(back))
    assert same.returncode != 0 and "the same store" in same.stderr
