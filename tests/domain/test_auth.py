"""Failed logins are counted per account and source address; ``LoginService.unlock`` clears a lockout, from another
process too when the counters are the node's SQLite counters file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from wildduck.adapters.local.counters import LocalCounters
from wildduck.adapters.local.pubsub import LocalPubSub
from wildduck.adapters.sqlite import open_sqlite_store
from wildduck.adapters.sqlite.counters import open_sqlite_counters
from wildduck.domain.auth import LoginPolicy, LoginService, source_of
from wildduck.domain.users import UserService
from wildduck.errors import AuthFailed, RateLimited

POLICY = LoginPolicy(max_failures=2, failure_window=60, failure_penalty=0)
STRANGER = "198.51.100.7:40000"
OWNER = "203.0.113.9:51000"


@dataclass
class Login:
    store: Any
    users: UserService
    login: LoginService


def _login(store: Any, counters: Any) -> Login:
    users = UserService(store, email_domain="example.com")
    return Login(store, users, LoginService(users, counters, LocalPubSub(), POLICY))


@pytest.fixture(params=["local", "sqlite"])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Login]:
    store = await open_sqlite_store(tmp_path / "auth.db")
    counters = await open_sqlite_counters(tmp_path / "counters.sqlite3")
    try:
        e = _login(store, LocalCounters() if request.param == "local" else counters)
        await e.users.create("carol", "right", address="carol@example.com")
        yield e
    finally:
        await counters.close()
        await store.close()


async def fail(login: LoginService, times: int, peer: str | None) -> None:
    for _ in range(times):
        with pytest.raises(AuthFailed):
            await login.authenticate("carol", "wrong", peer=peer)


async def test_a_strangers_guesses_lock_the_account_for_the_stranger_only(env: Login) -> None:
    await fail(env.login, 2, STRANGER)
    with pytest.raises(RateLimited):
        await env.login.authenticate("carol", "right", peer="198.51.100.7:40001")  # any port of that address
    assert (await env.login.authenticate("carol@example.com", "right", peer=OWNER)).username == "carol"


async def test_without_a_peer_every_attempt_on_the_account_counts_together(env: Login) -> None:
    await fail(env.login, 2, None)
    with pytest.raises(RateLimited):
        await env.login.authenticate("carol", "right")
    assert await env.login.authenticate("carol", "right", peer=OWNER)  # sources have counts of their own


async def test_unlock_forgets_the_failures_of_every_source(env: Login) -> None:
    await fail(env.login, 2, STRANGER)
    await fail(env.login, 2, OWNER)
    await fail(env.login, 2, None)
    user = await env.users.find("carol")
    await env.login.unlock(user)
    for peer in (STRANGER, OWNER, None):
        assert await env.login.authenticate("carol", "right", peer=peer)
    await fail(env.login, 2, STRANGER)  # and counting starts again
    with pytest.raises(RateLimited):
        await env.login.authenticate("carol", "right", peer=STRANGER)


async def test_an_unlock_in_another_process_reaches_the_server(tmp_path: Path) -> None:
    """The CLI's ``user unlock`` opens its own counters on the server's file: the lockout counts live there."""
    server_store = await open_sqlite_store(tmp_path / "shared.db")
    cli_store = await open_sqlite_store(tmp_path / "shared.db")
    server_counters = await open_sqlite_counters(tmp_path / "counters.sqlite3")
    cli_counters = await open_sqlite_counters(tmp_path / "counters.sqlite3")
    try:
        server = _login(server_store, server_counters)
        cli = _login(cli_store, cli_counters)
        await server.users.create("carol", "right", address="carol@example.com")
        await fail(server.login, 2, STRANGER)
        with pytest.raises(RateLimited):
            await server.login.authenticate("carol", "right", peer=STRANGER)
        await cli.login.unlock(await cli.users.find("carol"))
        assert await server.login.authenticate("carol", "right", peer=STRANGER)
    finally:
        await cli_counters.close()
        await server_counters.close()
        await cli_store.close()
        await server_store.close()


async def test_concurrent_right_logins_are_never_refused(env: Login) -> None:
    """50 connections of one account from one address logging in at once (more than the failure limit): all in,
    and nothing stays counted against the account."""
    import trio

    results: list[str] = []

    async def one() -> None:
        try:
            await env.login.authenticate("carol", "right", peer=OWNER)
            results.append("ok")
        except (RateLimited, AuthFailed) as exc:
            results.append(type(exc).__name__)

    async with trio.open_nursery() as nursery:
        for _ in range(50):
            nursery.start_soon(one)
    assert results == ["ok"] * 50
    await fail(env.login, 2, OWNER)  # the whole budget is still there
    with pytest.raises(RateLimited):
        await env.login.authenticate("carol", "right", peer=OWNER)


async def test_parallel_guesses_cannot_overrun_the_limit(env: Login) -> None:
    import trio

    outcomes: list[str] = []

    async def guess() -> None:
        try:
            await env.login.authenticate("carol", "wrong", peer=STRANGER)
        except (RateLimited, AuthFailed) as exc:
            outcomes.append(type(exc).__name__)

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(guess)
    assert outcomes.count("AuthFailed") == POLICY.max_failures  # only that many passwords were checked


@pytest.mark.parametrize(("peer", "source"), [
    ("203.0.113.9:51000", "203.0.113.9"),
    ("203.0.113.9", "203.0.113.9"),
    ("[2001:db8:1:2::5]:993", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
    ("::ffff:192.0.2.1", "192.0.2.1"),
    ("::1", "::/64"),
    ("unix-socket", "unix-socket"),
    (None, None),
    ("", None),
])
def test_source_of_a_peer(peer: str | None, source: str | None) -> None:
    assert source_of(peer) == source
