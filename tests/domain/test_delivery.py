"""The delivery pipeline and the user service over the real SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from wildduck.adapters.local.counters import LocalCounters
from wildduck.adapters.local.pubsub import LocalPubSub
from wildduck.adapters.sqlite import open_sqlite_store
from wildduck.domain.delivery import DeliveryService, user_channel
from wildduck.domain.models import AppendResult
from wildduck.domain.users import DEFAULT_MAILBOXES, UserService
from wildduck.errors import AlreadyExists, InvalidInput, MessageTooLarge, NotFound, QuotaExceeded
from wildduck.protocols import mime

ATTACHMENT = bytes(range(256)) * 40


def message(subject: str = "hi") -> bytes:
    import base64

    b64 = base64.encodebytes(ATTACHMENT).replace(b"\n", b"\r\n")
    return (
        b"From: a@example.net\r\nTo: b@example.com\r\nSubject: " + subject.encode() + b"\r\n"
        b"Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nbody text\r\n"
        b"--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64 + b"--b1--\r\n"
    )


class Env:
    def __init__(self, store, users: UserService, delivery: DeliveryService, pubsub: LocalPubSub) -> None:  # type: ignore[no-untyped-def]
        self.store, self.users, self.delivery, self.pubsub = store, users, delivery, pubsub


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    store = await open_sqlite_store(tmp_path / "wd.db", default_quota=10_000_000)
    pubsub = LocalPubSub()
    try:
        yield Env(store, UserService(store, LocalCounters(), email_domain="example.com"),
                  DeliveryService(store, pubsub, default_quota=10_000_000, max_message_size=1_000_000), pubsub)
    finally:
        await pubsub.aclose()
        await store.close()


async def test_users_get_default_mailboxes_and_an_address(env: Env) -> None:
    user = await env.users.create("alice", "pw")
    paths = {(m.path, m.special_use) for m in await env.store.list_mailboxes(user.id)}
    assert paths == {(spec.path, spec.special_use) for spec in DEFAULT_MAILBOXES}
    assert [a.address for a in await env.store.list_addresses(user.id)] == ["alice@example.com"]
    with pytest.raises(AlreadyExists):
        await env.users.create("Alice", "pw")
    with pytest.raises(AlreadyExists):
        await env.users.create("other", "pw", address="ALICE@example.com")
    with pytest.raises(InvalidInput):
        await env.users.create("x", "")


async def test_authenticate(env: Env) -> None:
    await env.users.create("bob", "secret", address="bob@example.com")
    assert (await env.users.authenticate("bob", "secret")) is not None
    assert (await env.users.authenticate("b.o.b@example.com", "secret")) is not None
    assert (await env.users.authenticate("bob", "wrong")) is None
    assert (await env.users.authenticate("nobody", "secret")) is None
    # a remembered success never outlives a password change
    user = await env.users.authenticate("bob", "secret")
    assert user is not None
    await env.users.set_password(user, "changed")
    assert (await env.users.authenticate("bob", "secret")) is None
    assert (await env.users.authenticate("bob", "changed")) is not None


async def test_resolve_applies_address_rules(env: Env) -> None:
    user = await env.users.create("carol", "pw", address="carol.king@example.com")
    for form in ["carol.king@example.com", "CarolKing@Example.com", "carol.king+news@example.com"]:
        assert (await env.delivery.resolve(form)).user_id == user.id
    with pytest.raises(NotFound):
        await env.delivery.resolve("carol.queen@example.com")
    with pytest.raises(InvalidInput):
        await env.delivery.resolve("not an address")


async def test_delivery_stores_once_per_user_and_attachments_once(env: Env) -> None:
    a = await env.users.create("a", "pw", address="a@example.com")
    b = await env.users.create("b", "pw", address="b@example.com")
    raw = message()
    async with env.pubsub.subscribe(user_channel(a.id)) as sub:
        rcpts = [await env.delivery.resolve(x) for x in ["a@example.com", "b@example.com", "a+x@example.com"]]
        outcomes = await env.delivery.deliver(raw, rcpts)
        assert all(isinstance(o, AppendResult) for o in outcomes)
        assert outcomes[0] == outcomes[2]  # two addresses of one user: one copy
        nudge = await sub.__aiter__().__anext__()
        assert nudge == rcpts[0].mailbox_id
    inbox_a = await env.store.find_mailbox(a.id, "INBOX")
    inbox_b = await env.store.find_mailbox(b.id, "INBOX")
    assert inbox_a and inbox_b
    assert [m.uid for m in await env.store.list_messages(inbox_a.id)] == [1]
    record = await env.store.get_message(inbox_b.id, 1)
    blobs = await env.store.get_blobs({p.blob for p in record.parts})
    assert mime.compose(record.skeleton, record.parts, blobs) == raw
    stats = await env.store.blob_stats()
    assert stats.count == 1  # the attachment, once for both users
    assert await env.store.blob_refcount(record.parts[0].blob) == 2
    assert record.subject == "hi"


async def test_quota_is_enforced_per_recipient(env: Env) -> None:
    small = await env.users.create("small", "pw", address="small@example.com", quota=len(message()) + 10)
    await env.users.create("big", "pw", address="big@example.com")
    rcpts = [await env.delivery.resolve("small@example.com"), await env.delivery.resolve("big@example.com")]
    first = await env.delivery.deliver(message(), rcpts)
    assert all(isinstance(o, AppendResult) for o in first)
    second = await env.delivery.deliver(message("again"), rcpts)
    assert isinstance(second[0], QuotaExceeded) and isinstance(second[1], AppendResult)
    await env.delivery.resolve("small@example.com")  # 10 bytes left: a small message still fits
    with pytest.raises(QuotaExceeded):
        await env.delivery.resolve("small@example.com", size_hint=len(message()))
    assert (await env.store.get_user(small.id)).storage_used == len(message())


async def test_oversize_messages_are_refused(env: Env) -> None:
    await env.users.create("d", "pw", address="d@example.com")
    rcpt = await env.delivery.resolve("d@example.com")
    with pytest.raises(MessageTooLarge, match="over the"):
        await env.delivery.deliver(b"x" * 1_000_001, [rcpt])


async def test_failed_logins_are_rate_limited_per_account(tmp_path: Path) -> None:
    from wildduck.errors import RateLimited

    now = [0.0]
    store = await open_sqlite_store(tmp_path / "r.db", default_quota=10_000_000)
    try:
        users = UserService(store, LocalCounters(lambda: now[0]), email_domain="example.com", auth_failures=3,
                            auth_failure_window=60)
        await users.create("carol", "right", address="carol@example.com")
        for _ in range(3):
            assert await users.authenticate("carol", "wrong") is None
        with pytest.raises(RateLimited) as refused:
            await users.authenticate("carol@example.com", "right")  # the address shares the account's counter
        assert refused.value.retry_after == 60
        assert await users.authenticate("nobody", "x") is None  # other names are not affected
        now[0] += 61
        user = await users.authenticate("carol", "right")
        assert user is not None and user.username == "carol"
        for _ in range(3):
            assert await users.authenticate("ghost", "x") is None
        with pytest.raises(RateLimited):  # unknown usernames are limited too
            await users.authenticate("Ghost", "x")
    finally:
        await store.close()


async def test_concurrent_logins_share_one_password_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from wildduck.domain import passwords

    calls = []
    real = passwords.verify_password

    def counting(password: str, hashed: str) -> bool:
        calls.append(password)
        return real(password, hashed)

    store = await open_sqlite_store(tmp_path / "c.db", default_quota=10_000_000)
    try:
        users = UserService(store, LocalCounters(), email_domain="example.com")
        await users.create("dave", "secret", address="dave@example.com")
        monkeypatch.setattr(passwords, "verify_password", counting)
        results = []

        async def one() -> None:
            results.append(await users.authenticate("dave", "secret"))

        async with trio.open_nursery() as n:
            for _ in range(8):
                n.start_soon(one)
        assert len(results) == 8 and all(u is not None for u in results)
        assert calls == ["secret"]  # one argon2 check for eight simultaneous logins
        assert await users.authenticate("dave", "wrong") is None and calls == ["secret", "wrong"]
    finally:
        await store.close()


def test_nudge_payloads() -> None:
    from wildduck.domain.delivery import nudge_payload, parse_nudge

    assert parse_nudge(nudge_payload("mbx1")) == ("mbx1", "")
    assert parse_nudge(nudge_payload("mbx1", "s42")) == ("mbx1", "s42")
