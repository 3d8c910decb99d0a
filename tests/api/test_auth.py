"""Access tokens over real HTTP: where a token may come from, the root token, user tokens from /authenticate (own
resources only, ``me``, revocation, password change), the shared login rate limit, access control off: every test
on both deployments."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.api.conftest import ROOT_TOKEN, Api, api_overrides, serving_api
from tests.deployments import Deployment
from tests.test_serve import imap_login


async def test_no_token_and_a_wrong_token_are_refused_in_wildducks_shape(api: Api) -> None:
    for headers in ({}, {"X-Access-Token": "wrong"}, {"Authorization": "Bearer wrong"}):
        r = await api.anonymous.get("/users", headers=headers)
        assert r.status_code == 403
        assert r.json() == {"error": "Invalid accessToken value", "code": "InvalidToken"}


async def test_the_root_token_is_accepted_from_each_source(api: Api) -> None:
    for kwargs in ({"headers": {"X-Access-Token": ROOT_TOKEN}},
                   {"headers": {"Authorization": f"Bearer {ROOT_TOKEN}"}},
                   {"params": {"accessToken": ROOT_TOKEN}}):
        r = await api.anonymous.get("/users", **kwargs)  # type: ignore[arg-type]
        assert r.status_code == 200, r.text
        assert r.json()["success"] is True
    r = await api.anonymous.get("/authenticated", params={"accessToken": ROOT_TOKEN})
    assert r.json() == {"success": True}


async def test_a_plain_root_token_in_the_configuration_works_too(tmp_path: Path, deployment: Deployment) -> None:
    async with serving_api(tmp_path / "data", api_overrides(access_token="plain-secret"), deployment) as api:
        r = await api.anonymous.post("/users", json={"username": "alice", "password": "pw"},
                                     headers={"X-Access-Token": "plain-secret"})
        assert r.status_code == 200, r.text
        listed = await api.anonymous.get("/users", headers={"X-Access-Token": "plain-secret"})
        assert listed.json()["total"] == 1
        assert (await api.anonymous.get("/users", headers={"X-Access-Token": "plain-secreT"})).status_code == 403
        assert (await api.root.get("/users")).status_code == 403  # the hashed token's secret is not this one


async def test_authenticate_checks_the_password(api: Api) -> None:
    user_id = await api.create_user("alice", address="alice@example.com")
    r = await api.anonymous.post("/authenticate", json={"username": "alice", "password": "secret-pass"})
    assert r.status_code == 200
    body = r.json()
    assert body == {"success": True, "id": user_id, "username": "alice", "address": "alice@example.com",
                    "scope": "master", "require2fa": False, "require2faEnabled": False,
                    "requirePasswordChange": False}
    r = await api.anonymous.post("/authenticate", json={"username": "alice", "password": "wrong"})
    assert r.status_code == 403 and r.json() == {"error": "Authentication failed", "code": "AuthFailed"}
    r = await api.anonymous.post("/authenticate", json={"username": "alice"})
    assert r.status_code == 400
    assert r.json()["code"] == "InputValidationError"
    assert r.json()["details"] == {"password": '"password" is required'}
    r = await api.anonymous.post("/authenticate", json={"username": "alice", "password": "x", "token": True,
                                                        "scope": "imap"})
    assert r.status_code == 400 and "scope" in r.json()["details"]


async def test_a_user_token_reaches_its_own_user_only(api: Api) -> None:
    alice = await api.create_user("alice")
    bob = await api.create_user("bob")
    token = await api.user_token("alice")
    assert len(token) > 40 and "secret-pass" not in token
    async with api.client(token) as client:
        r = await client.get(f"/users/{alice}")
        assert r.status_code == 200 and r.json()["username"] == "alice"
        r = await client.get("/users/me")
        assert r.status_code == 200 and r.json()["id"] == alice
        assert (await client.get("/users/me/mailboxes")).status_code == 200
        for path in (f"/users/{bob}", f"/users/{bob}/mailboxes", f"/users/{bob}/addresses"):
            r = await client.get(path)
            assert r.status_code == 403, path
            assert r.json() == {"error": "Not enough privileges", "code": "MissingPrivileges"}
        # root-only routes
        for method, path in (("POST", "/users"), ("GET", "/addresses"), ("GET", "/users/resolve/bob"),
                             ("DELETE", f"/users/{alice}")):
            r = await client.request(method, path, json={"username": "x", "password": "y"} if method == "POST"
                                     else None)
            assert r.status_code == 403, (method, path)
        # the user listing shows the caller only
        listed = (await client.get("/users")).json()
        assert [u["id"] for u in listed["results"]] == [alice]
        assert (await client.get("/authenticated")).json() == {"success": True}


async def test_delete_authenticate_ends_the_token(api: Api) -> None:
    await api.create_user("alice")
    token = await api.user_token("alice")
    async with api.client(token) as client:
        assert (await client.get("/users/me")).status_code == 200
        assert (await client.delete("/authenticate")).json() == {"success": True}
        r = await client.get("/users/me")
        assert r.status_code == 403 and r.json()["code"] == "InvalidToken"
    # without a token it does nothing, as WildDuck
    assert (await api.anonymous.delete("/authenticate")).json() == {"success": True}


async def test_a_password_change_ends_every_token_of_the_user(api: Api) -> None:
    alice = await api.create_user("alice")
    first, second = await api.user_token("alice"), await api.user_token("alice")
    r = await api.root.put(f"/users/{alice}", json={"password": "new-password"})
    assert r.status_code == 200, r.text
    for token in (first, second):
        async with api.client(token) as client:
            assert (await client.get("/users/me")).status_code == 403
    assert await api.user_token("alice", "new-password")


async def test_a_disabled_users_token_stops_working(api: Api) -> None:
    alice = await api.create_user("alice")
    token = await api.user_token("alice")
    assert (await api.root.put(f"/users/{alice}", json={"disabled": True})).status_code == 200
    async with api.client(token) as client:
        assert (await client.get("/users/me")).status_code == 403
    r = await api.anonymous.post("/authenticate", json={"username": "alice", "password": "secret-pass"})
    assert r.status_code == 403


async def test_a_forged_token_is_refused(api: Api) -> None:
    alice = await api.create_user("alice")
    token = await api.user_token("alice")
    user_id, issued, secret, lease = token.split(".")
    assert user_id == alice
    forged = [f"{user_id}.{issued}.{'0' * 40}.{lease}", f"{user_id}.{int(issued) + 1}.{secret}.{lease}",
              f"{user_id}.{issued}.{secret}.{'0' * 16}", token + "x", token.upper()]
    for bad in forged:
        async with api.client(bad) as client:
            assert (await client.get("/users/me")).status_code == 403, bad


async def test_the_login_rate_limit_is_shared_with_imap(tmp_path: Path, deployment: Deployment) -> None:
    """The failures counted by /authenticate refuse an IMAP LOGIN too (on mongodb+redis the counters are Redis's)."""
    async with serving_api(tmp_path / "data", {**api_overrides(), "limits": {"auth_failures": 2}}, deployment) as api:
        await api.create_user("alice", "right")
        for _ in range(2):
            r = await api.anonymous.post("/authenticate", json={"username": "alice", "password": "wrong"})
            assert r.json()["code"] == "AuthFailed"
        r = await api.anonymous.post("/authenticate", json={"username": "alice", "password": "right"})
        assert r.status_code == 403 and r.json()["code"] == "RateLimitedError"
        refusal = await trio.to_thread.run_sync(imap_login, api.server, "alice", "right")
        assert "too many failed logins" in refusal


async def test_with_access_control_off_requests_without_a_token_act_as_root(tmp_path: Path,
                                                                           deployment: Deployment) -> None:
    async with serving_api(tmp_path / "data", {"api": {"enabled": True, "access_control": False}}, deployment) \
            as api:
        r = await api.anonymous.post("/users", json={"username": "alice", "password": "pw",
                                                     "address": "a@example.com"})
        assert r.status_code == 200, r.text
        assert (await api.anonymous.get("/users")).json()["total"] == 1
        # a token, when given, is still checked
        assert (await api.anonymous.get("/users", headers={"X-Access-Token": "bogus"})).status_code == 403


async def test_preauth_tells_whether_a_user_may_log_in(api: Api) -> None:
    alice = await api.create_user("alice", address="alice@example.com")
    r = await api.root.post("/preauth", json={"username": "alice@example.com"})
    assert r.json() == {"success": True, "id": alice, "username": "alice", "address": "alice@example.com",
                        "scope": "master", "require2fa": False}
    for name in ("nobody", "x y"):
        r = await api.root.post("/preauth", json={"username": name})
        assert r.status_code == 403 and r.json() == {"error": "Authentication failed", "code": "AuthFailed"}
    r = await api.root.post("/preauth", json={"username": "alice", "scope": "everything"})
    assert r.status_code == 400 and "scope" in r.json()["details"]
    assert (await api.anonymous.post("/preauth", json={"username": "alice"})).status_code == 403  # root only
    async with api.client(await api.user_token("alice")) as client:
        assert (await client.post("/preauth", json={"username": "alice"})).status_code == 403
