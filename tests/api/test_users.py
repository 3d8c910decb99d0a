"""``/users`` over real HTTP: create, list with query and cursor paging, resolve, get, update, delete; bad input
is a 400 naming the field, never a 500."""

from __future__ import annotations

from tests.api.conftest import Api


async def test_create_and_get_a_user(api: Api) -> None:
    r = await api.root.post("/users", json={"username": "alice", "password": "secret-pass", "name": "Alice A.",
                                            "address": "Alice@Example.com", "quota": 1000000})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and len(body["id"]) == 24
    user = (await api.root.get(f"/users/{body['id']}")).json()
    assert user["success"] is True
    assert (user["id"], user["username"], user["name"], user["address"]) == (
        body["id"], "alice", "Alice A.", "alice@example.com")
    assert user["limits"]["quota"] == {"allowed": 1000000, "used": 0}
    assert user["limits"]["imapMaxConnections"] == {"allowed": 15, "used": 0}
    assert (user["disabled"], user["suspended"], user["activated"], user["hasPasswordSet"]) == (
        False, False, True, True)
    assert user["tags"] == [] and user["enabled2fa"] == []
    assert "argon2" not in r.text + str(user) and "secret-pass" not in str(user)  # no hash, no password


async def test_a_user_without_a_quota_reports_the_default(api: Api) -> None:
    user_id = await api.create_user("bob")
    user = (await api.root.get(f"/users/{user_id}")).json()
    assert user["address"] == "bob@example.com"  # [server] email_domain
    assert user["limits"]["quota"] == {"allowed": 1073741824, "used": 0}


async def test_bad_input_names_the_field(api: Api) -> None:
    cases = [
        ({"password": "x"}, {"username": '"username" is required'}),
        ({"username": "a", "password": "x", "quota": -1},
         {"quota": '"quota" must be greater than or equal to 0'}),
        ({"username": "a", "password": "x", "quota": "many"}, {"quota": '"quota" must be a number'}),
        ({"username": "a", "password": "x", "spamLevel": 5}, {"spamLevel": '"spamLevel" is not allowed'}),
        ({"username": "a" * 129, "password": "x"},
         {"username": '"username" length must be less than or equal to 128 characters long'}),
        ({"username": ["a"], "password": "x"}, {"username": '"username" must be a string'}),
    ]
    for body, details in cases:
        r = await api.root.post("/users", json=body)
        assert r.status_code == 400, body
        assert r.json()["code"] == "InputValidationError"
        assert r.json()["details"] == details
        assert r.json()["error"]
    r = await api.root.post("/users", json={"username": "x y", "password": "pw"})
    assert r.status_code == 400 and "username" in r.json()["details"]
    r = await api.root.post("/users", json={"username": "carol", "password": "pw", "address": "not-an-address"})
    assert r.status_code == 400 and "address" in r.json()["details"]
    r = await api.root.post("/users", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "InputValidationError"
    r = await api.root.post("/users", json=["a", "list"])
    assert r.status_code == 400
    for path in ("/users/not-an-id", "/users/0123"):
        r = await api.root.get(path)
        assert r.status_code == 400 and r.json()["details"] == {"user": '"user" must be a 24 character hex string'}


async def test_taken_names_are_refused(api: Api) -> None:
    await api.create_user("alice", address="alice@example.com")
    r = await api.root.post("/users", json={"username": "a.lice", "password": "pw", "address": "x@example.com"})
    assert r.status_code == 400 and r.json()["code"] == "UserExistsError"
    r = await api.root.post("/users", json={"username": "other", "password": "pw", "address": "ALICE@example.com"})
    assert r.status_code == 400 and r.json()["code"] == "AddressExistsError"


async def test_form_bodies_are_accepted_as_in_wildduck(api: Api) -> None:
    r = await api.root.post("/users", data={"username": "formuser", "password": "pw", "quota": "5000"})
    assert r.status_code == 200, r.text
    user = (await api.root.get(f"/users/{r.json()['id']}")).json()
    assert user["limits"]["quota"]["allowed"] == 5000


async def test_list_with_query_and_cursor_paging(api: Api) -> None:
    ids = [await api.create_user(f"user{i:02d}") for i in range(7)]
    await api.create_user("someone", address="needle@example.com")
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 3}
    pages = 0
    while True:
        r = await api.root.get("/users", params=params)
        assert r.status_code == 200
        body = r.json()
        assert body["total"] == 8 and body["success"] is True and body["query"] == ""
        seen += [u["id"] for u in body["results"]]
        pages += 1
        if body["nextCursor"] is False:
            break
        params = {"limit": 3, "next": body["nextCursor"]}
    assert pages == 3 and len(seen) == 8 and set(ids) <= set(seen) and seen == sorted(seen)
    back = (await api.root.get("/users", params={"limit": 3, "previous": body["previousCursor"]})).json()
    assert [u["id"] for u in back["results"]] == seen[3:6]
    first = (await api.root.get("/users", params={"limit": 3})).json()
    assert first["previousCursor"] is False
    found = (await api.root.get("/users", params={"query": "NEEDLE"})).json()
    assert [u["username"] for u in found["results"]] == ["someone"] and found["query"] == "needle"
    found = (await api.root.get("/users", params={"query": "user0"})).json()
    assert found["total"] == 7
    assert (await api.root.get("/users", params={"tags": "vip"})).json()["total"] == 0
    for bad in ({"limit": 0}, {"limit": 251}, {"next": "garbage!"}, {"limit": "x"}):
        r = await api.root.get("/users", params=bad)
        assert r.status_code == 400, bad
        assert set(r.json()["details"]) == set(bad)


async def test_resolve_a_username_or_address(api: Api) -> None:
    user_id = await api.create_user("First.Last", address="first.last@example.com")
    for name in ("firstlast", "First.Last", "first.last@example.com"):
        r = await api.root.get(f"/users/resolve/{name}")
        assert r.json() == {"success": True, "id": user_id}, name
    r = await api.root.get("/users/resolve/nobody")
    assert r.status_code == 404 and r.json() == {"error": "This user does not exist", "code": "UserNotFound"}


async def test_update_password_quota_and_disabled(api: Api) -> None:
    user_id = await api.create_user("alice")
    r = await api.root.put(f"/users/{user_id}", json={"quota": 2048, "password": "changed-pw"})
    assert r.json() == {"success": True}
    assert (await api.root.get(f"/users/{user_id}")).json()["limits"]["quota"]["allowed"] == 2048
    assert await api.user_token("alice", "changed-pw")
    r = await api.root.put(f"/users/{user_id}", json={})
    assert r.status_code == 400 and r.json()["error"] == "Nothing was changed"
    r = await api.root.put(f"/users/{user_id}", json={"nickname": "New"})
    assert r.status_code == 400 and r.json()["details"] == {"nickname": '"nickname" is not allowed'}
    assert (await api.root.put(f"/users/{user_id}", json={"disabled": True})).status_code == 200
    assert (await api.root.get(f"/users/{user_id}")).json()["disabled"] is True
    r = await api.root.put("/users/0123456789abcdef01234567", json={"quota": 1})
    assert r.status_code == 404 and r.json()["code"] == "UserNotFound"


async def test_a_user_changes_its_own_password_with_the_existing_one(api: Api) -> None:
    await api.create_user("alice")
    token = await api.user_token("alice")
    async with api.client(token) as client:
        r = await client.put("/users/me", json={"password": "new-pass"})
        assert r.status_code == 400 and "existingPassword" in r.json()["details"]
        r = await client.put("/users/me", json={"password": "new-pass", "existingPassword": "wrong"})
        assert r.status_code == 403 and r.json() == {"error": "Password verification failed", "code": "AuthFailed"}
        r = await client.put("/users/me", json={"quota": 1})
        assert r.status_code == 403 and r.json()["code"] == "MissingPrivileges"
        r = await client.put("/users/me", json={"password": "new-pass", "existingPassword": "secret-pass"})
        assert r.status_code == 200
    assert await api.user_token("alice", "new-pass")


async def test_delete_a_user(api: Api) -> None:
    user_id = await api.create_user("alice")
    await api.root.post(f"/users/{user_id}/addresses", json={"address": "alias@example.com"})
    r = await api.root.delete(f"/users/{user_id}")
    assert r.json() == {"success": True, "user": user_id, "addresses": {"deleted": 2}}
    assert (await api.root.get(f"/users/{user_id}")).status_code == 404
    assert (await api.root.delete(f"/users/{user_id}")).status_code == 404
    assert (await api.root.get("/users")).json()["total"] == 0


async def test_unknown_routes_and_methods_are_json_errors(api: Api) -> None:
    r = await api.root.get("/nothing/here")
    assert r.status_code == 404 and r.json()["code"] == "ResourceNotFound"
    r = await api.root.patch("/users")
    assert r.status_code == 405 and r.json()["code"] == "MethodNotAllowed"


async def test_limits_report_open_imap_connections(api: Api) -> None:
    import imaplib

    import trio

    user_id = await api.create_user("alice")
    imap = await trio.to_thread.run_sync(lambda: imaplib.IMAP4(*api.server.address("imap"), timeout=30))
    try:
        await trio.to_thread.run_sync(imap.login, "alice", "secret-pass")
        user = (await api.root.get(f"/users/{user_id}")).json()
        assert user["limits"]["imapMaxConnections"] == {"allowed": 15, "used": 1}
    finally:
        await trio.to_thread.run_sync(imap.shutdown)
