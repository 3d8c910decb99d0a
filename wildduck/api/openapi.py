"""``GET /openapi.json``: the OpenAPI 3.1 document of this API, generated from the registered routes and what each
declares it takes (:func:`wildduck.api.schemas.takes`, the same declaration the request is validated against).

Parameters of a ``GET`` or ``DELETE`` are documented in the query string, those of a ``POST`` or ``PUT`` as the JSON
(or form) body; WildDuck merges both, so either place works for every route. A WebSocket route has no place in
OpenAPI: it is described under ``x-websocket`` in its path's item (and as a ``101`` answer of the ``GET`` on the
same path). What a route answers with 200 is the schema it declares (``takes(returns=...)``); the schemas several
routes share are under ``components/schemas``. The document needs no token (:data:`wildduck.api.context.NO_TOKEN`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from typing import Any

from quart import Response, jsonify
from quart_trio import QuartTrio

from wildduck.api.context import NO_TOKEN, Api
from wildduck.api.schemas import (
    COMPONENTS,
    MAX_UID,
    OBJECT_ID,
    STRING,
    Params,
    accepted,
    array_of,
    declared,
    json_schema,
    obj,
    object_schema,
    takes,
)

PATH = "/openapi.json"
#: operations that take a token or none (``POST /authenticate`` takes a password instead; ``DELETE`` ends the token
#: presented, if any); the other routes of ``NO_TOKEN`` need none at all
TOKEN_OPTIONAL = frozenset({("POST", "/authenticate"), ("DELETE", "/authenticate")})

SECURITY_SCHEMES = {
    "AccessTokenHeader": {"type": "apiKey", "in": "header", "name": "X-Access-Token"},
    "Bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <token>"},
    "AccessTokenQuery": {"type": "apiKey", "in": "query", "name": "accessToken"},
}
#: any one of the schemes (a root token from the configuration, or a user token from ``POST /authenticate``)
ANY_TOKEN: list[dict[str, list[str]]] = [{name: []} for name in SECURITY_SCHEMES]

ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "code": {"type": "string"},
                   "details": {"type": "object", "additionalProperties": {"type": "string"},
                               "description": "per field: what is wrong with it"}},
    "required": ["error", "code"],
}
#: the answer of a route that declares none
SUCCESS_SCHEMA = {"type": "object", "properties": {"success": {"type": "boolean"}}, "required": ["success"]}
#: what ``GET /openapi.json`` answers (the outline; the validator in the tests checks the rest)
DOCUMENT_SCHEMA = obj({
    "openapi": {"type": "string", "pattern": "^3\\.1\\."},
    "info": obj({"title": STRING, "version": STRING, "description": STRING}, optional=("description",)),
    "paths": {"type": "object", "additionalProperties": {"type": "object"}},
    "components": {"type": "object"},
    "security": array_of({"type": "object"}),
})
#: one event of an event stream, as schemathesis and OpenAPI 3.2's ``itemSchema`` read one
SSE_EVENT = {"type": "object", "properties": {"data": {"type": "string"}, "event": {"type": "string"},
                                              "id": {"type": "string"}, "retry": {"type": "integer"}}}
ERRORS = {"400": "Invalid input (InputValidationError names the fields in details)",
          "403": "No valid token (InvalidToken), or not enough privileges (MissingPrivileges)",
          "404": "No such resource", "500": "Internal error"}
_RULE_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def openapi_path(rule: str) -> str:
    """A route's rule (``/users/<user_id>``) as an OpenAPI path (``/users/{user_id}``)."""
    return _RULE_PARAM.sub(r"{\1}", rule)


_HEX_ID = {"type": "string", "pattern": f"^{OBJECT_ID.pattern}$"}
#: path parameters by name: what the routes accept (a route may say otherwise: ``takes(path=...)``)
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "user_id": {"anyOf": [_HEX_ID, {"const": "me"}],
                "description": "a user id (24 hex digits), or me: the token's own user"},
    "mailbox_id": {**_HEX_ID, "description": "a mailbox id (24 hex digits)"},
    "address_id": {**_HEX_ID, "description": "an address id (24 hex digits)"},
    "message_id": {"type": "integer", "minimum": 1, "maximum": MAX_UID, "description": "the message's UID"},
    "attachment_id": {"type": "string", "pattern": "^[Aa][Tt][Tt][0-9]+$", "description": "ATT00001, ..."},
}


def _path_parameters(rule: str, params: Params) -> list[dict[str, Any]]:
    out = []
    for name in _RULE_PARAM.findall(rule):
        schema = dict(params.path.get(name) or PATH_PARAMETERS.get(name) or {"type": "string"})
        description = schema.pop("description", None)
        out.append({"name": name, "in": "path", "required": True, "schema": schema,
                    **({"description": description} if description else {})})
    return out


def _query_parameters(params: Params) -> list[dict[str, Any]]:
    out = [{"name": name, "in": "query", "required": spec.required, "schema": json_schema(spec)}
           for name, spec in accepted(params.fields).items() if name not in params.from_path]
    out += [{"name": name, "in": "query", "style": "deepObject", "explode": True, "required": name in params.required,
             "schema": object_schema(fields)} for name, fields in params.objects.items()]
    out += [{"name": name, "in": "query", "required": name in params.required, "schema": dict(schema)}
            for name, schema in params.others.items()]
    return out


def _or_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` or JSON null (what an optional member of a JSON body may be: null is "not given")."""
    if isinstance(schema.get("type"), str):
        return {**schema, "type": [schema["type"], "null"]}
    if "anyOf" in schema:
        return {**schema, "anyOf": [*schema["anyOf"], {"type": "null"}]}
    return {"anyOf": [schema, {"type": "null"}]} if schema else schema


def _nullable_members(schema: dict[str, Any], nested: AbstractSet[str] = frozenset()) -> dict[str, Any]:
    """An object schema as a JSON body may carry it: optional members may be null, also inside the members named
    ``nested`` (objects of fields)."""
    required = set(schema.get("required", ()))
    members = {name: _nullable_members(value) if name in nested else value
               for name, value in schema["properties"].items()}
    return {**schema, "properties": {name: value if name in required else _or_null(value)
                                     for name, value in members.items()}}


def _body(params: Params) -> dict[str, Any]:
    form = object_schema({k: v for k, v in accepted(params.fields).items() if k not in params.from_path},
                         allow_unknown=params.allow_unknown)
    form["properties"].update({name: object_schema(fields) for name, fields in params.objects.items()})
    form["properties"].update({name: dict(other) for name, other in params.others.items()})
    if params.required:
        form["required"] = [*form.get("required", ()), *params.required]
    body = _nullable_members(form, nested=set(params.objects))
    content: dict[str, Any] = {"application/json": {"schema": body},
                               "application/x-www-form-urlencoded": {"schema": form}}
    if params.raw_body:
        content[params.raw_body] = {"schema": {"type": "string", "format": "binary"}}
    return {"required": bool(form.get("required")), "content": content}


def _summary(endpoint: str, view: Callable[..., Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": endpoint, "summary": endpoint.replace("_", " ").capitalize(),
                           "tags": [view.__module__.rsplit(".", 1)[-1]]}
    if view.__doc__:
        out["description"] = view.__doc__.strip()
    return out


def _responses(params: Params, rule: str) -> dict[str, Any]:
    if params.returns is not None:
        schema = dict(params.returns)
    elif params.produces == "application/json":
        schema = SUCCESS_SCHEMA
    elif params.produces == "text/event-stream":
        schema = SSE_EVENT
    else:
        schema = {"type": "string"}
    content = {params.produces: {"schema": schema}}
    content.update({kind: {"schema": {"type": "string"}} for kind in params.also_produces})
    out: dict[str, Any] = {"200": {"description": "Success", "content": content}}
    for status in ERRORS:
        if status != "404" or "<" in rule:
            out[status] = {"$ref": f"#/components/responses/Error{status}"}
    out["431"] = {"$ref": "#/components/responses/TooLarge"}
    return out


def _routes(app: QuartTrio) -> Iterator[tuple[str, str, bool, str, Callable[..., Any], Params]]:
    """(rule, method, websocket, endpoint, view, declared parameters) of every route, in registration order."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        params = declared(view)
        if params is None:
            raise RuntimeError(f"{rule.rule}: the route declares no parameters (@takes)")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield rule.rule, method, bool(getattr(rule, "websocket", False)), rule.endpoint, view, params


def document(app: QuartTrio, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s routes."""
    paths: dict[str, dict[str, Any]] = {}
    for rule, method, is_websocket, endpoint, view, params in _routes(app):
        item = paths.setdefault(openapi_path(rule), {})
        if is_websocket:
            item["x-websocket"] = {**_summary(endpoint, view),
                                   "parameters": _path_parameters(rule, params) + _query_parameters(params),
                                   "security": ANY_TOKEN}
            continue
        operation: dict[str, Any] = {**_summary(endpoint, view), "parameters": _path_parameters(rule, params)}
        if method in _BODY_METHODS:
            operation["requestBody"] = _body(params)
        else:
            operation["parameters"] += _query_parameters(params)
        operation["responses"] = _responses(params, rule)
        if (method, rule) in TOKEN_OPTIONAL:
            operation["security"] = [{}, *ANY_TOKEN]
        elif rule in NO_TOKEN:
            operation["security"] = []
        item[method.lower()] = operation
    for item in paths.values():
        if "x-websocket" in item and "get" in item:
            item["get"]["responses"]["101"] = {"description": "Switched to a WebSocket (see x-websocket)"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "WildDuck API", "version": version or "0",
                 "description": "WildDuck's HTTP API: users, addresses, mailboxes, messages, search and live "
                                "updates."},
        "paths": paths,
        "components": {
            "securitySchemes": SECURITY_SCHEMES,
            "schemas": {"Error": ERROR_SCHEMA, **{name: dict(COMPONENTS[name]) for name in sorted(COMPONENTS)}},
            "responses": {**{f"Error{status}": {"description": text, "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
                for status, text in ERRORS.items()},
                "TooLarge": {"description": "The request line or its headers are larger than the server reads "
                                            "(Hypercorn's limit, 16 KiB; no body)"}},
        },
        "security": ANY_TOKEN,
    }


def register(app: QuartTrio, api: Api) -> None:
    built: list[dict[str, Any]] = []

    @app.get(PATH)
    @takes({}, returns=DOCUMENT_SCHEMA)
    async def openapi() -> Response:
        """This document."""
        await api.values()
        if not built:
            built.append(document(app, api.settings.version))
        return jsonify(built[0])
