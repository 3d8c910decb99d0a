"""What the routes answer, as ``/openapi.json`` declares it (``takes(returns=...)``): real answers of a running server,
in their optional shapes too (headers, groups, lists, counters, a token), validate against the declared schemas; the
declaration helpers refuse what would make a schema say something else than meant. And the bugs the schemathesis
run found stay fixed."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from tests.api.conftest import Api
from tests.api.test_openapi import offline_app
from wildduck.api.openapi import DOCUMENT_SCHEMA, SUCCESS_SCHEMA, document
from wildduck.api.schemas import COMPONENTS, component, declared, obj, success, takes

RICH = (
    b"From: Carol <carol@example.org>\r\nTo: Fuzz <fuzz@example.com>, undisclosed-recipients: ;\r\n"
    b"Reply-To: lists@example.org\r\nList-ID: Fuzzers <fuzz.example.org>\r\n"
    b"List-Unsubscribe: <mailto:leave@example.org>\r\nSubject: =?utf-8?q?r=C3=A9sum=C3=A9?=\r\n"
    b"Date: Tue, 01 Dec 2026 10:00:00 +0100\r\nMessage-ID: <one@example.org>\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
    b"--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Hello <img src=\"cid:logo@x\"></p>\r\n"
    b"--b1\r\nContent-Type: image/png; name=logo.png\r\nContent-ID: <logo@x>\r\nContent-Transfer-Encoding: base64\r\n"
    b"Content-Disposition: inline; filename=logo.png\r\n\r\niVBORw0KGgo=\r\n--b1--\r\n"
)


def answer_schema(doc: dict[str, Any], method: str, path: str, media: str = "application/json") -> Any:
    """A validator of the 200 answer of ``method path`` (its ``$ref`` s resolved in the document)."""
    schema = doc["paths"][path][method]["responses"]["200"]["content"][media]["schema"]
    return Draft202012Validator({**schema, "components": doc["components"]}, format_checker=FormatChecker())


def check(doc: dict[str, Any], method: str, path: str, body: Any) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in answer_schema(doc, method, path).iter_errors(body)]
    assert not errors, (method, path, errors)


async def test_real_answers_match_their_declared_schemas(api: Api) -> None:
    doc = (await api.anonymous.get("/openapi.json")).json()
    check(doc, "get", "/openapi.json", doc)
    assert not list(Draft202012Validator(DOCUMENT_SCHEMA).iter_errors(doc))
    check(doc, "get", "/health", (await api.root.get("/health")).json())

    user = await api.create_user("rich", address="rich@example.com")
    r = await api.anonymous.post("/authenticate", json={"username": "rich", "password": "secret-pass", "token": True})
    check(doc, "post", "/authenticate", r.json())
    assert "token" in r.json()
    r = await api.anonymous.post("/authenticate", json={"username": "rich", "password": "secret-pass"})
    check(doc, "post", "/authenticate", r.json())
    check(doc, "post", "/preauth", (await api.root.post("/preauth", json={"username": "rich"})).json())
    check(doc, "get", "/authenticated", (await api.root.get("/authenticated")).json())

    boxes = "/users/{user_id}/mailboxes"
    created = await api.root.post(f"/users/{user}/mailboxes", json={"path": "A/B"})
    check(doc, "post", boxes, created.json())
    for query in ({}, {"counters": "true", "sizes": "true", "specialUse": "true"}):
        check(doc, "get", boxes, (await api.root.get(f"/users/{user}/mailboxes", params=query)).json())
    listed = (await api.root.get(f"/users/{user}/mailboxes")).json()["results"]
    inbox = next(m["id"] for m in listed if m["path"] == "INBOX")
    check(doc, "get", boxes + "/{mailbox_id}", (await api.root.get(f"/users/{user}/mailboxes/{inbox}")).json())
    check(doc, "get", boxes + "/{mailbox_id}",
          (await api.root.get(f"/users/{user}/mailboxes/resolve", params={"path": "A/B"})).json())

    messages = boxes + "/{mailbox_id}/messages"
    r = await api.root.post(f"/users/{user}/mailboxes/{inbox}/messages", content=RICH,
                            headers={"Content-Type": "message/rfc822"})
    check(doc, "post", messages, r.json())
    r = await api.root.post(f"/users/{user}/mailboxes/{inbox}/messages", json={"subject": "old", "text": "x",
                                                                              "date": "1969-07-20T20:17:00Z"})
    check(doc, "post", messages, r.json())
    for query in ({}, {"includeHeaders": "true", "order": "asc", "limit": "1"}):
        page = (await api.root.get(f"/users/{user}/mailboxes/{inbox}/messages", params=query)).json()
        check(doc, "get", messages, page)
    assert page["nextCursor"]
    check(doc, "get", messages + "/{message_id}", (await api.root.get(
        f"/users/{user}/mailboxes/{inbox}/messages/1", params={"replaceCidLinks": "true"})).json())
    one = (await api.root.get(f"/users/{user}/mailboxes/{inbox}/messages/1")).json()
    assert one["replyTo"] and one["list"] and any("group" in a for a in one["to"])  # the optional shapes were there
    check(doc, "put", messages + "/{message_id}",
          (await api.root.put(f"/users/{user}/mailboxes/{inbox}/messages/1", json={"flagged": True})).json())
    check(doc, "put", messages, (await api.root.put(f"/users/{user}/mailboxes/{inbox}/messages",
                                                    json={"message": "1:*", "moveTo": created.json()["id"]})).json())
    check(doc, "get", "/users/{user_id}/search", (await api.root.get(f"/users/{user}/search",
                                                                     params={"q": "résumé"})).json())
    check(doc, "post", "/users/{user_id}/search", (await api.root.post(
        f"/users/{user}/search", json={"query": "résumé", "action": {"seen": True}})).json())
    check(doc, "delete", messages, (await api.root.delete(
        f"/users/{user}/mailboxes/{created.json()['id']}/messages")).json())
    check(doc, "delete", boxes + "/{mailbox_id}",
          (await api.root.delete(f"/users/{user}/mailboxes/{created.json()['id']}")).json())


def test_the_routes_of_this_change_declare_their_answers() -> None:
    doc = document(offline_app(), "1")
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method == "x-websocket" or operation["tags"][0] not in (
                    "messages", "mailboxes", "search", "auth", "health", "openapi", "docs"):
                continue
            content = operation["responses"]["200"]["content"]
            assert content.get("application/json", {}).get("schema") != SUCCESS_SCHEMA, (method, path)
    assert {"Message", "ListedMessage", "Attachment", "Address", "ListedMailbox"} <= set(
        doc["components"]["schemas"])
    assert doc["components"]["schemas"]["Message"] == COMPONENTS["Message"]
    path = {p["name"]: p for p in doc["paths"]["/users/{user_id}/mailboxes/{mailbox_id}"]["get"]["parameters"]
            if p["in"] == "path"}
    assert {"const": "resolve"} in path["mailbox_id"]["schema"]["anyOf"] and "description" in path["user_id"]
    message = doc["paths"]["/users/{user_id}/mailboxes/{mailbox_id}/messages/{message_id}"]["get"]["parameters"]
    assert next(p for p in message if p["name"] == "message_id")["schema"]["type"] == "integer"


def test_the_declaration_helpers() -> None:
    @takes({}, returns=success({"id": {"type": "string"}}, optional=("id",)))
    async def view() -> None:
        pass

    params = declared(view)
    assert params is not None and params.returns == {
        "type": "object", "properties": {"success": {"const": True}, "id": {"type": "string"}},
        "additionalProperties": False, "required": ["success"]}
    with pytest.raises(ValueError, match="not properties"):
        obj({"a": {"type": "string"}}, optional=("b",))
    ref = component("TestOnlyThing", obj({"a": {"type": "string"}}))
    assert ref == {"$ref": "#/components/schemas/TestOnlyThing"}
    assert component("TestOnlyThing", obj({"a": {"type": "string"}})) == ref  # the same again is fine
    with pytest.raises(ValueError, match="two schemas"):
        component("TestOnlyThing", obj({"b": {"type": "string"}}))
    del COMPONENTS["TestOnlyThing"]


async def test_what_the_fuzzing_found_stays_fixed(api: Api) -> None:
    user = await api.create_user("found")
    inbox = next(m["id"] for m in (await api.root.get(f"/users/{user}/mailboxes")).json()["results"]
                 if m["path"] == "INBOX")
    # a UID of Unicode digits was int()'d: 500
    r = await api.root.get(f"/users/{user}/mailboxes/{inbox}/messages/\u00b2")
    assert r.status_code == 400 and r.json()["details"] == {"message": '"message" must be a number'}
    # an integer no JavaScript number can hold reached SQLite: 500 (Joi's rule: "must be a safe number")
    r = await api.root.put(f"/users/{user}", json={"quota": 2**70})
    assert r.status_code == 400 and r.json()["details"] == {"quota": '"quota" must be a safe number'}
    # a JSON body that is null was taken for no body
    r = await api.root.put(f"/users/{user}/logout", content=b"null", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["details"] == {"body": '"body" must be a JSON object'}
    # a 405 names the methods the path has (RFC 9110)
    r = await api.root.request("PATCH", "/health")
    assert r.status_code == 405 and "GET" in r.headers["allow"]
    # messages dated before 1970 (or in year 1): their listing keys had a minus sign or 16 digits, so the
    # cursors of their pages were refused; and the year was not written with 4 digits
    for date in ("0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "2026-01-01T00:00:00Z"):
        r = await api.root.post(f"/users/{user}/mailboxes/{inbox}/messages", json={"text": "x", "date": date})
        assert r.status_code == 200, r.text
    for order in ("asc", "desc"):
        seen, query = [], {"limit": "1", "order": order}
        while True:
            page = (await api.root.get(f"/users/{user}/mailboxes/{inbox}/messages", params=query))
            assert page.status_code == 200, page.text
            seen += [m["idate"] for m in page.json()["results"]]
            if not page.json()["nextCursor"]:
                break
            query = {"limit": "1", "order": order, "next": page.json()["nextCursor"]}
        expected = ["0001-01-01T00:00:00.000Z", "1969-12-31T23:59:59.000Z", "2026-01-01T00:00:00.000Z"]
        assert seen == (expected if order == "asc" else expected[::-1])
        found, query = [], {"limit": "1", "order": order}
        while True:
            page = await api.root.get(f"/users/{user}/search", params=query)
            assert page.status_code == 200, page.text
            found += [m["idate"] for m in page.json()["results"]]
            if not page.json()["nextCursor"]:
                break
            query = {"limit": "1", "order": order, "next": page.json()["nextCursor"]}
        assert found == seen
