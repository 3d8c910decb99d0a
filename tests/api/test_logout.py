"""``PUT /users/:user/logout``: the user's IMAP and POP3 sessions end at once with the reason (real sockets),
another user's go on; root or the user's own token; WildDuck's answers."""

from __future__ import annotations

import poplib
from collections.abc import Callable
from typing import TypeVar

import pytest
import trio

from tests.api.conftest import Api
from wildduck.testing.clients import idling, pop3_session

T = TypeVar("T")


async def in_thread(fn: Callable[[], T]) -> T:
    with trio.fail_after(60):
        return await trio.to_thread.run_sync(fn)






async def test_logout_ends_the_users_sessions_with_the_reason(api: Api) -> None:
    alice = await api.create_user("alice")
    await api.create_user("bob")
    alice_idle = await in_thread(lambda: idling(api.server.address("imap"), "alice", "secret-pass"))
    alice_pop = await in_thread(lambda: pop3_session(api.server.address("pop3"), "alice", "secret-pass"))
    bob_idle = await in_thread(lambda: idling(api.server.address("imap"), "bob", "secret-pass"))
    bob_pop = await in_thread(lambda: pop3_session(api.server.address("pop3"), "bob", "secret-pass"))
    try:
        r = await api.root.put(f"/users/{alice}/logout", json={"reason": "Password changed"})
        assert (r.status_code, r.json()) == (200, {"success": True})
        with trio.fail_after(10):
            assert await in_thread(alice_idle.readline) == b"* BYE Password changed\r\n"
            assert await in_thread(alice_idle.readline) == b""
            line, _ = await in_thread(alice_pop._getline)  # type: ignore[attr-defined]
            assert line == b"-ERR Password changed"
            with pytest.raises(poplib.error_proto, match="EOF"):
                await in_thread(alice_pop._getline)  # type: ignore[attr-defined]
        bob_idle.send(b"DONE\r\n")
        assert (await in_thread(bob_idle.readline)).endswith(b"OK IDLE terminated\r\n")
        assert (await in_thread(bob_pop.noop)).startswith(b"+OK")
    finally:
        for client in (alice_idle, bob_idle):
            await in_thread(client.shutdown)
        for pop in (alice_pop, bob_pop):
            await in_thread(pop.close)


async def test_without_a_reason_the_default_one_is_said(api: Api) -> None:
    alice = await api.create_user("alice")
    token = await api.user_token("alice")
    alice_idle = await in_thread(lambda: idling(api.server.address("imap"), "alice", "secret-pass"))
    try:
        async with api.client(token) as own:  # the user's own token may log itself out (no body at all)
            r = await own.put(f"/users/{alice}/logout")
        assert (r.status_code, r.json()) == (200, {"success": True})
        with trio.fail_after(10):
            assert await in_thread(alice_idle.readline) == b"* BYE Logout requested from API\r\n"
    finally:
        await in_thread(alice_idle.shutdown)


async def test_who_may_log_out_whom(api: Api) -> None:
    alice = await api.create_user("alice")
    bob = await api.create_user("bob")
    bob_idle = await in_thread(lambda: idling(api.server.address("imap"), "bob", "secret-pass"))
    try:
        async with api.client(await api.user_token("alice")) as alice_client:
            r = await alice_client.put(f"/users/{bob}/logout", json={"reason": "gotcha"})
            assert r.status_code == 403 and r.json()["code"] == "MissingPrivileges"
            assert (await alice_client.put("/users/me/logout", json={})).status_code == 200
        assert (await api.anonymous.put(f"/users/{alice}/logout")).status_code in (401, 403)
        r = await api.root.put("/users/0123456789abcdef01234567/logout")
        assert r.status_code == 404 and r.json()["code"] == "UserNotFound"
        r = await api.root.put(f"/users/{alice}/logout", json={"reason": "x" * 129})
        assert r.status_code == 400
        # bob's IDLE saw none of it
        bob_idle.send(b"DONE\r\n")
        assert (await in_thread(bob_idle.readline)).endswith(b"OK IDLE terminated\r\n")
    finally:
        await in_thread(bob_idle.shutdown)


async def test_the_route_is_in_the_openapi_document(api: Api) -> None:
    doc = (await api.anonymous.get("/openapi.json")).json()
    operation = doc["paths"]["/users/{user_id}/logout"]["put"]
    assert "reason" in str(operation)
