"""The API of two instances sharing one MongoDB-protocol store (the session's FerretDB) and one Redis, as the
scaled-out deployment runs them: an EventSource on A hears at once what B stored (nudged through Redis, not at
A's next idle check), a user token issued on A works on B until revoked on A, and the login rate limit counts the
failures on both. Two in-process servers with the same deployment sections (database, Redis key prefix): on
mongodb+redis only, since instances of the single node share nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from tests.api.conftest import Api, api_overrides, lmtp_deliver, serving_api
from tests.api.test_messages import inbox_of, plain
from tests.api.test_updates import stream
from tests.deployments import Deployment
from tests.test_serve import imap_login
from wildduck.api.routes import updates

pytestmark = pytest.mark.parametrize("deployment", ["mongodb+redis"], indirect=True)

#: seconds within which A's stream must hear of B's change: well under the idle check that would find it anyway
PROMPTLY = 5.0


@pytest.fixture
async def pair(tmp_path: Path, deployment: Deployment) -> AsyncIterator[tuple[Api, Api]]:
    """Instances A and B of one deployment (each with its own data directory); two failed logins rate-limit."""
    overrides = {**api_overrides(), "limits": {"auth_failures": 2}}
    async with serving_api(tmp_path / "a", overrides, deployment) as a, \
            serving_api(tmp_path / "b", overrides, deployment) as b:
        yield a, b


async def test_a_stream_on_one_instance_hears_a_delivery_and_a_flag_change_on_the_other(
        pair: tuple[Api, Api]) -> None:
    assert PROMPTLY < updates.IDLE
    a, b = pair
    user = await a.create_user("alice", address="alice@example.com")
    inbox = await inbox_of(b, user)
    async with stream(a.root, user) as events:
        assert await events.replayed() == []  # so that what follows can only come live
        await trio.to_thread.run_sync(lmtp_deliver, b, "alice@example.com", plain("delivered to B"))
        with trio.fail_after(PROMPTLY):
            exists = await events.until("EXISTS")
        assert (exists["mailbox"], exists["uid"], exists["unseen"]) == (inbox, 1, True)

        r = await b.root.put(f"/users/{user}/mailboxes/{inbox}/messages/1", json={"flagged": True})
        assert r.status_code == 200, r.text
        with trio.fail_after(PROMPTLY):
            fetch = await events.until("FETCH")
        assert (fetch["mailbox"], fetch["uid"], fetch["flags"]) == (inbox, 1, ["\\Flagged"])


async def test_a_token_issued_on_one_instance_works_on_the_other_until_revoked(pair: tuple[Api, Api]) -> None:
    a, b = pair
    user = await a.create_user("alice")
    token = await a.user_token("alice")
    async with a.client(token) as on_a, b.client(token) as on_b:
        r = await on_b.get("/users/me")
        assert r.status_code == 200 and r.json()["id"] == user
        assert (await on_a.delete("/authenticate")).json() == {"success": True}
        for client in (on_b, on_a):
            r = await client.get("/users/me")
            assert r.status_code == 403 and r.json()["code"] == "InvalidToken"


async def test_the_login_rate_limit_counts_the_failures_on_both_instances(pair: tuple[Api, Api]) -> None:
    a, b = pair
    await a.create_user("alice", "right")
    for api in (a, b):  # one failure each: the limit (2) is only reached if both are counted together
        r = await api.anonymous.post("/authenticate", json={"username": "alice", "password": "wrong"})
        assert r.json()["code"] == "AuthFailed"
    for api in (a, b):
        r = await api.anonymous.post("/authenticate", json={"username": "alice", "password": "right"})
        assert r.status_code == 403 and r.json()["code"] == "RateLimitedError"
    assert "too many failed logins" in await trio.to_thread.run_sync(imap_login, b.server, "alice", "right")
