"""The delivery pipeline and the user service over the real SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from wildduck.app import Services, open_services
from wildduck.domain.auth import LoginPolicy, LoginService
from wildduck.domain.users import DEFAULT_MAILBOXES, UserService
from wildduck.errors import (
    AlreadyExists,
    AuthFailed,
    InvalidInput,
    MessageTooLarge,
    NotFound,
    QuotaExceeded,
    RateLimited,
)
from wildduck.model import AppendResult, Nudge, user_channel
from wildduck.protocols import mime
from wildduck.testing.server import test_config as make_config

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
    """The domain services over a real SQLite store, as ``app.py`` composes them."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.store: Any = services.backends.maintenance  # the one adapter object behind every role
        self.users = services.users
        self.login = services.login
        self.delivery = services.delivery
        self.pubsub = services.backends.pubsub


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    config = make_config(tmp_path, {"limits": {"default_quota": 10_000_000, "max_message_size": 1_000_000},
                                    "server": {"email_domain": "example.com"}})
    async with open_services(config) as services:
        yield Env(services)


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
    assert (await env.login.authenticate("bob", "secret")) is not None
    assert (await env.login.authenticate("b.o.b@example.com", "secret")) is not None
    for name, password in (("bob", "wrong"), ("nobody", "secret")):
        with pytest.raises(AuthFailed):
            await env.login.authenticate(name, password)
    # a remembered success never outlives a password change
    user = await env.login.authenticate("bob", "secret")
    assert user is not None
    await env.users.set_password(user, "changed")
    with pytest.raises(AuthFailed):
        await env.login.authenticate("bob", "secret")
    assert (await env.login.authenticate("bob", "changed")) is not None


async def test_resolve_applies_address_rules(env: Env) -> None:
    user = await env.users.create("carol", "pw", address="carol.king@example.com")
    for form in ["carol.king@example.com", "CarolKing@Example.com", "carol.king+news@example.com"]:
        assert (await env.delivery.resolve(form)).user.id == user.id
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
        assert isinstance(nudge, Nudge) and nudge.mailbox_id == rcpts[0].mailbox_id
        assert nudge.modseq == outcomes[0].modseq  # sessions that know this MODSEQ already skip it
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


async def _login_env(tmp_path: Path, clock: Any = None,
                     max_failures: int = 12) -> tuple[Any, UserService, LoginService]:
    from wildduck.adapters.local.counters import LocalCounters
    from wildduck.adapters.local.pubsub import LocalPubSub
    from wildduck.adapters.sqlite import open_sqlite_store

    store = await open_sqlite_store(tmp_path / "login.db")
    users = UserService(store, email_domain="example.com")
    counters = LocalCounters(clock) if clock is not None else LocalCounters()
    policy = LoginPolicy(max_failures=max_failures, failure_window=60, failure_penalty=0)
    return store, users, LoginService(users, counters, LocalPubSub(), policy)


async def test_failed_logins_are_rate_limited_per_account(tmp_path: Path) -> None:
    now = [0.0]
    store, users, login = await _login_env(tmp_path, lambda: now[0], max_failures=3)
    try:
        await users.create("carol", "right", address="carol@example.com")
        for _ in range(3):
            with pytest.raises(AuthFailed):
                await login.authenticate("carol", "wrong")
        with pytest.raises(RateLimited) as refused:
            await login.authenticate("carol@example.com", "right")  # the address shares the account's counter
        assert refused.value.retry_after == 60
        with pytest.raises(AuthFailed):
            await login.authenticate("nobody", "x")  # other names are not affected
        now[0] += 61
        user = await login.authenticate("carol", "right")
        assert user.username == "carol"
        for _ in range(3):
            with pytest.raises(AuthFailed):
                await login.authenticate("ghost", "x")
        with pytest.raises(RateLimited):  # unknown usernames are limited too
            await login.authenticate("Ghost", "x")
    finally:
        await store.close()


async def test_login_rate_limit_counts_before_verifying(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect: 60 parallel wrong passwords against a limit of 12 were all verified (check-then-act). The attempt
    is counted first, so exactly 12 password checks run and the other 48 are refused unverified."""
    from wildduck.domain import passwords

    store, users, login = await _login_env(tmp_path, max_failures=12)
    checks = []
    real = passwords.verify_password

    def counting(password: str, hashed: str) -> bool:
        checks.append(password)
        return real(password, hashed)

    try:
        await users.create("erin", "right", address="erin@example.com")
        monkeypatch.setattr(passwords, "verify_password", counting)
        outcomes: list[str] = []

        async def guess(n: int) -> None:
            try:
                await login.authenticate("erin", f"wrong{n}")
                outcomes.append("ok")
            except RateLimited:
                outcomes.append("limited")
            except AuthFailed:
                outcomes.append("failed")

        async with trio.open_nursery() as n:
            for i in range(60):
                n.start_soon(guess, i)
        assert len(checks) == 12
        assert outcomes.count("failed") == 12 and outcomes.count("limited") == 48
    finally:
        await store.close()


async def test_concurrent_logins_share_one_password_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from wildduck.domain import passwords

    calls = []
    real = passwords.verify_password

    def counting(password: str, hashed: str) -> bool:
        calls.append(password)
        return real(password, hashed)

    store, users, login = await _login_env(tmp_path)
    try:
        await users.create("dave", "secret", address="dave@example.com")
        monkeypatch.setattr(passwords, "verify_password", counting)
        results = []

        async def one() -> None:
            results.append(await login.authenticate("dave", "secret"))

        async with trio.open_nursery() as n:
            for _ in range(8):
                n.start_soon(one)
        assert len(results) == 8
        assert calls == ["secret"]  # one argon2 check for eight simultaneous logins
        with pytest.raises(AuthFailed):
            await login.authenticate("dave", "wrong")
        assert calls == ["secret", "wrong"]
    finally:
        await store.close()


def test_nudges_round_trip_through_their_string_form() -> None:
    for nudge in (Nudge("mbx1"), Nudge("mbx1", 42, "s42"), Nudge("mbx1", 7, "o", gone=True)):
        assert Nudge.decode(nudge.encode()) == nudge
    assert Nudge.decode("mbx1") == Nudge("mbx1")
