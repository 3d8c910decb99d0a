"""``GET /openapi.json``: a valid OpenAPI 3.1 document (openapi-spec-validator) listing every registered route, with
each route's parameters taken from what it declares (the same declaration its requests are validated against)."""

from __future__ import annotations

from typing import Any

from openapi_spec_validator import validate

from tests.api.conftest import Api
from wildduck.api.app import create_app
from wildduck.api.context import ApiServices, ApiSettings
from wildduck.api.openapi import SECURITY_SCHEMES, document, openapi_path
from wildduck.api.routes import users
from wildduck.api.schemas import accepted, declared


def offline_app() -> Any:
    """The application as ``wildduck serve`` builds it, with no services (registering routes calls none)."""
    return create_app(ApiServices(*[None] * len(ApiServices.__slots__)), ApiSettings())  # type: ignore[arg-type]


def parameter_names(operation: dict[str, Any]) -> set[str]:
    names = {p["name"] for p in operation.get("parameters", []) if p["in"] != "path"}
    body = operation.get("requestBody")
    if body is not None:
        names |= set(body["content"]["application/json"]["schema"]["properties"])
    return names


async def test_the_document_is_valid_and_needs_no_token(api: Api) -> None:
    r = await api.anonymous.get("/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    doc = r.json()
    validate(doc)  # raises on any structural error
    assert doc["openapi"].startswith("3.1") and doc["info"]["version"]
    assert (await api.anonymous.get("/openapi.json", headers={"X-Access-Token": "wrong"})).status_code == 403


async def test_every_registered_route_is_described_with_its_declared_parameters(api: Api) -> None:
    doc = (await api.root.get("/openapi.json")).json()
    app = offline_app()
    assert doc["paths"] == document(app, doc["info"]["version"])["paths"]  # what the running server registered
    rules = [r for r in app.url_map.iter_rules() if r.endpoint != "static"]
    assert len(rules) > 30
    for rule in rules:
        item = doc["paths"][openapi_path(rule.rule)]
        params = declared(app.view_functions[rule.endpoint])
        assert params is not None, rule.rule
        expected = (set(accepted(params.fields)) - set(params.from_path)) | set(params.objects) | set(params.others)
        if rule.websocket:
            operations = [item["x-websocket"]]
        else:
            operations = [item[m.lower()] for m in rule.methods - {"HEAD", "OPTIONS"}]
        for operation in operations:
            assert operation["operationId"] == rule.endpoint
            assert parameter_names(operation) == expected, rule.rule
            path_names = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert path_names == set(rule.arguments), rule.rule


async def test_fields_security_and_special_routes(api: Api) -> None:
    doc = (await api.root.get("/openapi.json")).json()
    assert doc["components"]["securitySchemes"] == SECURITY_SCHEMES
    assert {"X-Access-Token", "accessToken"} == {s.get("name") for s in SECURITY_SCHEMES.values()} - {None}
    assert {"bearer"} == {s.get("scheme") for s in SECURITY_SCHEMES.values()} - {None}
    assert doc["security"] == [{"AccessTokenHeader": []}, {"Bearer": []}, {"AccessTokenQuery": []}]

    create = doc["paths"]["/users"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(create["required"]) == {"username", "password"} and create["additionalProperties"] is False
    assert create["properties"]["username"]["maxLength"] == users.CREATE["username"].max
    # an optional member of a JSON body may be null ("not given"); integers are JavaScript's safe ones (Joi's rule)
    assert create["properties"]["quota"] == {"type": ["integer", "null"], "minimum": 0, "maximum": 2**53 - 1}
    assert create["properties"]["username"]["type"] == "string"  # a required one may not
    listing = {p["name"]: p for p in doc["paths"]["/users"]["get"]["parameters"]}
    assert listing["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 250, "default": 20}

    assert doc["paths"]["/authenticate"]["post"]["security"][0] == {}  # a password instead of a token
    assert doc["paths"]["/openapi.json"]["get"]["security"] == []
    updates = doc["paths"]["/users/{user_id}/updates"]
    assert "text/event-stream" in updates["get"]["responses"]["200"]["content"]
    assert "101" in updates["get"]["responses"]
    assert [p["name"] for p in updates["x-websocket"]["parameters"] if p["in"] == "query"][-1] == "lastEventId"
    upload = doc["paths"]["/users/{user_id}/mailboxes/{mailbox_id}/messages"]["post"]["requestBody"]["content"]
    assert "message/rfc822" in upload and "attachments" in upload["application/json"]["schema"]["properties"]
    search = {p["name"]: p for p in doc["paths"]["/users/{user_id}/search"]["get"]["parameters"]}
    assert search["or"]["style"] == "deepObject" and set(search["or"]["schema"]["properties"]) == {
        "query", "from", "to", "subject"}
