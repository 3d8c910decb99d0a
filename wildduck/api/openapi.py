"""``GET /openapi.json``: the OpenAPI 3.1 document of this API, generated from the registered routes and what each
declares it takes (:func:`wildduck.api.schemas.takes`, the same declaration the request is validated against).

Parameters of a ``GET`` or ``DELETE`` are documented in the query string, those of a ``POST`` or ``PUT`` as the JSON
(or form) body; WildDuck merges both, so either place works for every route. A WebSocket route has no place in
OpenAPI: it is described under ``x-websocket`` in its path's item (and as a ``101`` answer of the ``GET`` on the
same path). The document needs no token.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from quart import Response, jsonify
from quart_trio import QuartTrio

from wildduck.api.context import Api
from wildduck.api.schemas import Params, accepted, declared, json_schema, object_schema, takes

PATH = "/openapi.json"
#: routes a request may call without a token (``POST /authenticate`` takes a password instead)
TOKEN_OPTIONAL = frozenset({("POST", "/authenticate")})

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
SUCCESS_SCHEMA = {"type": "object", "properties": {"success": {"type": "boolean"}}, "required": ["success"]}
ERRORS = {"400": "Invalid input (InputValidationError names the fields in details)",
          "403": "No valid token (InvalidToken), or not enough privileges (MissingPrivileges)",
          "404": "No such resource", "500": "Internal error"}
_RULE_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def openapi_path(rule: str) -> str:
    """A route's rule (``/users/<user_id>``) as an OpenAPI path (``/users/{user_id}``)."""
    return _RULE_PARAM.sub(r"{\1}", rule)


def _path_parameters(rule: str) -> list[dict[str, Any]]:
    return [{"name": name, "in": "path", "required": True, "schema": {"type": "string"},
             **({"description": "a user id (24 hex digits), or me: the token's own user"}
                if name == "user_id" else {})}
            for name in _RULE_PARAM.findall(rule)]


def _query_parameters(params: Params) -> list[dict[str, Any]]:
    out = [{"name": name, "in": "query", "required": spec.required, "schema": json_schema(spec)}
           for name, spec in accepted(params.fields).items() if name not in params.from_path]
    out += [{"name": name, "in": "query", "style": "deepObject", "explode": True,
             "schema": object_schema(fields)} for name, fields in params.objects.items()]
    out += [{"name": name, "in": "query", "schema": dict(schema)} for name, schema in params.others.items()]
    return out


def _body(params: Params) -> dict[str, Any]:
    schema = object_schema({k: v for k, v in accepted(params.fields).items() if k not in params.from_path},
                           allow_unknown=params.allow_unknown)
    schema["properties"].update({name: object_schema(fields) for name, fields in params.objects.items()})
    schema["properties"].update({name: dict(other) for name, other in params.others.items()})
    content: dict[str, Any] = {"application/json": {"schema": schema},
                               "application/x-www-form-urlencoded": {"schema": schema}}
    if params.raw_body:
        content[params.raw_body] = {"schema": {"type": "string", "format": "binary"}}
    return {"required": bool(schema.get("required")), "content": content}


def _summary(endpoint: str, view: Callable[..., Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": endpoint, "summary": endpoint.replace("_", " ").capitalize(),
                           "tags": [view.__module__.rsplit(".", 1)[-1]]}
    if view.__doc__:
        out["description"] = view.__doc__.strip()
    return out


def _responses(params: Params, rule: str) -> dict[str, Any]:
    if params.produces == "application/json":
        ok: dict[str, Any] = {"description": "Success", "content": {"application/json": {"schema": SUCCESS_SCHEMA}}}
    else:
        ok = {"description": "Success", "content": {params.produces: {"schema": {"type": "string"}}}}
    out = {"200": ok}
    for status in ERRORS:
        if status != "404" or "<" in rule:
            out[status] = {"$ref": f"#/components/responses/Error{status}"}
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
                                   "parameters": _path_parameters(rule) + _query_parameters(params),
                                   "security": ANY_TOKEN}
            continue
        operation: dict[str, Any] = {**_summary(endpoint, view), "parameters": _path_parameters(rule)}
        if method in _BODY_METHODS:
            operation["requestBody"] = _body(params)
        else:
            operation["parameters"] += _query_parameters(params)
        operation["responses"] = _responses(params, rule)
        if rule == PATH:
            operation["security"] = []
        elif (method, rule) in TOKEN_OPTIONAL:
            operation["security"] = [{}, *ANY_TOKEN]
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
            "schemas": {"Error": ERROR_SCHEMA},
            "responses": {f"Error{status}": {"description": text, "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
                for status, text in ERRORS.items()},
        },
        "security": ANY_TOKEN,
    }


def register(app: QuartTrio, api: Api) -> None:
    built: list[dict[str, Any]] = []

    @app.get(PATH)
    @takes({})
    async def openapi() -> Response:
        """This document."""
        await api.values()
        if not built:
            built.append(document(app, api.settings.version))
        return jsonify(built[0])
