"""Addresses over real HTTP: add, list, get, delete (the main address refused), resolve with WildDuck's rules
(case, dots, ``+label``, Unicode and punycode domains), and the global listing."""

from __future__ import annotations

import re

from tests.api.conftest import Api

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


async def test_add_list_get_and_delete(api: Api) -> None:
    user = await api.create_user("alice", address="alice@example.com")
    r = await api.root.post(f"/users/{user}/addresses", json={"address": "Al.Ias@Example.COM"})
    assert r.status_code == 200, r.text
    alias = r.json()["id"]
    listed = (await api.root.get(f"/users/{user}/addresses")).json()
    assert listed["success"] is True
    by_address = {a["address"]: a for a in listed["results"]}
    assert set(by_address) == {"alice@example.com", "al.ias@example.com"}
    assert by_address["alice@example.com"]["main"] is True and by_address["al.ias@example.com"]["main"] is False
    assert all(ISO.fullmatch(a["created"]) and a["tags"] == [] for a in listed["results"])
    one = (await api.root.get(f"/users/{user}/addresses/{alias}")).json()
    assert one == {"success": True, **by_address["al.ias@example.com"]}
    main_id = by_address["alice@example.com"]["id"]
    r = await api.root.delete(f"/users/{user}/addresses/{main_id}")
    assert r.status_code == 400 and r.json() == {"error": "Can not delete main address", "code": "NotPermitted"}
    assert (await api.root.delete(f"/users/{user}/addresses/{alias}")).json() == {"success": True}
    r = await api.root.get(f"/users/{user}/addresses/{alias}")
    assert r.status_code == 404 and r.json()["code"] == "AddressNotFound"


async def test_a_new_main_address(api: Api) -> None:
    user = await api.create_user("alice", address="alice@example.com")
    await api.root.post(f"/users/{user}/addresses", json={"address": "boss@example.com", "main": True})
    assert (await api.root.get(f"/users/{user}")).json()["address"] == "boss@example.com"


async def test_taken_and_invalid_addresses_are_refused(api: Api) -> None:
    alice = await api.create_user("alice", address="alice@example.com")
    bob = await api.create_user("bob", address="bob@example.com")
    r = await api.root.post(f"/users/{bob}/addresses", json={"address": "a.l.i.c.e@example.com"})
    assert r.status_code == 400 and r.json() == {"error": "This email address already exists",
                                                 "code": "AddressExistsError"}
    for bad in ("no-at-sign", "x+label@example.com", "a@@b", ""):
        r = await api.root.post(f"/users/{alice}/addresses", json={"address": bad})
        assert r.status_code == 400, bad
        assert "address" in r.json()["details"], bad
    r = await api.root.post(f"/users/{alice}/addresses", json={"address": "*@example.com", "allowWildcard": True})
    assert r.status_code == 400 and "allowWildcard" in r.json()["details"]
    r = await api.root.post(f"/users/{alice}/addresses", json={"address": "x@example.com", "bogus": 1})
    assert r.status_code == 400 and r.json()["details"] == {"bogus": '"bogus" is not allowed'}
    r = await api.root.get(f"/users/{alice}/addresses/not-an-id")
    assert r.status_code == 400


async def test_resolve_follows_wildducks_rules(api: Api) -> None:
    user = await api.create_user("jurgen", address="jürgen@bücher.example")
    for asked in ("jürgen@bücher.example", "JÜR.GEN+news@BÜCHER.example", "jürgen@xn--bcher-kva.example"):
        r = await api.root.get(f"/addresses/resolve/{asked}")
        assert r.status_code == 200, (asked, r.text)
        body = r.json()
        assert body["user"] == user and body["address"] == "jürgen@bücher.example"
    by_id = (await api.root.get(f"/addresses/resolve/{body['id']}")).json()
    assert by_id == body
    for missing in ("nobody@example.com", "garbage", "0123456789abcdef01234567"):
        r = await api.root.get(f"/addresses/resolve/{missing}")
        assert r.status_code == 404 and r.json() == {"error": "Invalid or unknown address", "code": "AddressNotFound"}


async def test_global_listing_with_query_and_paging(api: Api) -> None:
    for name in ("ann", "ben", "cat"):
        await api.create_user(name, address=f"{name}@example.com")
    everything = (await api.root.get("/addresses")).json()
    assert everything["total"] == 3 and {a["address"] for a in everything["results"]} == {
        "ann@example.com", "ben@example.com", "cat@example.com"}
    assert all(set(a) == {"id", "name", "address", "user", "forwarded", "forwardedDisabled", "tags"}
               for a in everything["results"])
    page = (await api.root.get("/addresses", params={"limit": 2})).json()
    assert len(page["results"]) == 2 and page["nextCursor"]
    rest = (await api.root.get("/addresses", params={"limit": 2, "next": page["nextCursor"]})).json()
    assert len(rest["results"]) == 1 and rest["nextCursor"] is False
    found = (await api.root.get("/addresses", params={"query": "BEN"})).json()
    assert [a["address"] for a in found["results"]] == ["ben@example.com"]


async def test_a_user_manages_its_own_addresses_only(api: Api) -> None:
    await api.create_user("alice", address="alice@example.com")
    bob = await api.create_user("bob", address="bob@example.com")
    async with api.client(await api.user_token("alice")) as client:
        assert (await client.post("/users/me/addresses", json={"address": "mine@example.com"})).status_code == 200
        assert len((await client.get("/users/me/addresses")).json()["results"]) == 2
        assert (await client.post(f"/users/{bob}/addresses", json={"address": "x@example.com"})).status_code == 403
        assert (await client.get("/addresses/resolve/bob@example.com")).status_code == 403
