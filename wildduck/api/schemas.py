"""Request validation and the JSON shapes of WildDuck's API, without I/O.

WildDuck merges the query string and the JSON body into one set of parameters and validates them with one schema
per route; a failure is ``400 {"error": ..., "code": "InputValidationError", "details": {field: message}}``, the
message in Joi's words (``"username" is required``). Unknown parameters are refused unless the route allows them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from wildduck.errors import InvalidInput

#: how many list results a page has by default and at most (WildDuck's ``limit``)
DEFAULT_LIMIT = 20
MAX_LIMIT = 250

_TRUE = frozenset({"true", "1", "yes", "y", "on"})
_FALSE = frozenset({"false", "0", "no", "n", "off", ""})
#: the largest integer a parameter may be (JavaScript's ``Number.MAX_SAFE_INTEGER``: Joi refuses larger ones)
MAX_SAFE_INTEGER = 2**53 - 1
OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")


class ApiError(Exception):
    """A refusal in WildDuck's shape: HTTP ``status`` with ``{"error": message, "code": code[, "details"]}``."""

    def __init__(self, status: int, code: str, message: str, details: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = dict(details) if details else None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message, "code": self.code}
        if self.details is not None:
            out["details"] = self.details
        return out


def input_error(details: Mapping[str, str]) -> ApiError:
    """400 InputValidationError naming every offending field."""
    return ApiError(400, "InputValidationError", ". ".join(details.values()), details)


def invalid_input(exc: InvalidInput, default_field: str) -> ApiError:
    """A domain ``InvalidInput`` as WildDuck's validation error, under the field it names."""
    field = exc.field or default_field
    return input_error({field: f'"{field}" {exc}'})


@dataclass(frozen=True, slots=True)
class Field:
    """One parameter: ``kind`` is ``str``, ``bool``, ``int``, ``id`` (24 hex digits), ``cursor``, ``uids`` (a
    message selector, see :func:`parse_uid_set`), ``date`` or ``tags`` (a tuple, see :func:`_tags`)."""

    kind: str = "str"
    required: bool = False
    default: Any = None
    min: int | None = None
    max: int | None = None
    #: strings: empty means "not given" (Joi's ``empty('')``)
    empty_is_none: bool = False
    lowercase: bool = False
    trim: bool = False
    #: cursors: what the key inside must look like (default: a 24 hex digit id)
    pattern: re.Pattern[str] | None = None


#: parameters every route takes for audit logs only (WildDuck: ``sess`` and ``ip``)
AUDIT: dict[str, Field] = {"sess": Field(max=255), "ip": Field(max=255)}


def _convert(name: str, value: Any, spec: Field) -> Any:
    q = f'"{name}"'
    if spec.kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ValueError(f"{q} must be a boolean")
    if spec.kind == "int":
        if isinstance(value, bool):
            raise ValueError(f"{q} must be a number")
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise ValueError(f"{q} must be a number") from None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            raise ValueError(f"{q} must be a number")
        if abs(value) > MAX_SAFE_INTEGER:
            raise ValueError(f"{q} must be a safe number")
        if spec.min is not None and value < spec.min:
            raise ValueError(f"{q} must be greater than or equal to {spec.min}")
        if spec.max is not None and value > spec.max:
            raise ValueError(f"{q} must be less than or equal to {spec.max}")
        return value
    if spec.kind == "date" and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(int(value))  # milliseconds since the epoch, as Joi's date() takes a number
    if spec.kind == "tags":
        return _tags(q, value, spec)
    if not isinstance(value, str):
        raise ValueError(f"{q} must be a string")
    if spec.trim:
        value = value.strip()
    if spec.lowercase:
        value = value.lower()
    if spec.kind == "id":
        if not OBJECT_ID.fullmatch(value):
            raise ValueError(f"{q} must be a 24 character hex string")
        return value.lower()
    if spec.kind == "cursor":
        return decode_cursor(name, value, spec.pattern or OBJECT_ID)
    if spec.kind == "uids":
        return parse_uid_set(name, value)
    if spec.kind == "date":
        return parse_date(name, value)
    if spec.min is not None and len(value) < spec.min:
        raise ValueError(f"{q} length must be at least {spec.min} characters long")
    if spec.max is not None and len(value) > spec.max:
        raise ValueError(f"{q} length must be less than or equal to {spec.max} characters long")
    return value


def _tags(q: str, value: Any, spec: Field) -> tuple[str, ...]:
    """Tags: a list of strings or one comma-separated string; trimmed, empty ones dropped, each at most
    ``spec.max`` characters."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ValueError(f"{q} must be an array of strings")
    tags = tuple(t for t in (item.strip() for item in items) if t)
    if spec.max is not None and any(len(t) > spec.max for t in tags):
        raise ValueError(f"{q} items must be at most {spec.max} characters long")
    return tuple(t.lower() for t in tags) if spec.lowercase else tags


def accepted(fields: Mapping[str, Field]) -> dict[str, Field]:
    """Every parameter a route with ``fields`` accepts: its own and :data:`AUDIT`."""
    return {**AUDIT, **fields}


def validate(params: Mapping[str, Any], fields: Mapping[str, Field], *, allow_unknown: bool = False) -> dict[str, Any]:
    """The converted parameters (defaults filled in, absent optional ones left out); ApiError 400 naming every
    bad, missing or (unless ``allow_unknown``) unknown field."""
    spec_of = accepted(fields)
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    for name, spec in spec_of.items():
        value = params.get(name)
        if spec.empty_is_none and value == "":
            value = None
        if value is None:
            if spec.required:
                errors[name] = f'"{name}" is required'
            elif spec.default is not None:
                out[name] = spec.default
            continue
        try:
            out[name] = _convert(name, value, spec)
        except ValueError as exc:
            errors[name] = str(exc)
    if not allow_unknown:
        for name in params:
            if name not in spec_of:
                errors[name] = f'"{name}" is not allowed'
    if errors:
        raise input_error(errors)
    return out


def merge_params(query: Mapping[str, str], body: Any) -> dict[str, Any]:
    """WildDuck's ``req.params``: the query string, then the JSON body's members over it (a body that is not a
    JSON object is refused)."""
    params: dict[str, Any] = dict(query)
    if body is None:
        return params
    if not isinstance(body, dict):
        raise input_error({"body": '"body" must be a JSON object'})
    params.update(body)
    return params


_UID_SET = re.compile(r"\d+(,\d+)*|\d+:(\d+|\*)")
#: the highest UID a range ending in ``*`` stands for
MAX_UID = 0xFFFFFFFF


def parse_uid_set(name: str, value: str) -> list[tuple[int, int]]:
    """WildDuck's message selector: ``1,2,3``, ``3:15`` or ``3:*`` as inclusive (low, high) UID ranges."""
    value = value.strip()
    if not _UID_SET.fullmatch(value):
        raise ValueError(f'"{name}" with value "{value}" fails to match the required pattern')
    if ":" in value:
        low, high = value.split(":")
        first, last = int(low), MAX_UID if high == "*" else int(high)
        return [(min(first, last), max(first, last))]
    return [(int(uid), int(uid)) for uid in value.split(",")]


def parse_date(name: str, value: str) -> dt.datetime:
    """A date as Joi's ``date()`` reads one: an ISO 8601 string (UTC when no zone is given) or milliseconds since
    the epoch."""
    text = value.strip()
    try:
        if re.fullmatch(r"-?\d+", text):
            return dt.datetime.fromtimestamp(int(text) / 1000, dt.UTC)
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise ValueError(f'"{name}" must be a valid date') from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


# -- paging --------------------------------------------------------------------------------------------------------

PAGING: dict[str, Field] = {
    "limit": Field("int", default=DEFAULT_LIMIT, min=1, max=MAX_LIMIT),
    "next": Field("cursor", empty_is_none=True),
    "previous": Field("cursor", empty_is_none=True),
    "page": Field("int", default=1, min=1),
}


def encode_cursor(direction: str, key: str) -> str:
    """An opaque cursor: which way, from which id (exclusive)."""
    return base64.urlsafe_b64encode(f"{direction}:{key}".encode()).decode().rstrip("=")


def decode_cursor(name: str, value: str, pattern: re.Pattern[str] = OBJECT_ID) -> tuple[str, str]:
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError(f'"{name}" must be a valid cursor') from None
    direction, sep, key = text.partition(":")
    if not sep or direction not in ("n", "p") or not pattern.fullmatch(key):
        raise ValueError(f'"{name}" must be a valid cursor')
    return direction, key


def page_of(items: list[Any], key_of: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    """A page of ``items`` (sorted by ``key_of``, ascending) in WildDuck's listing shape: ``total``, ``page``,
    ``previousCursor`` and ``nextCursor`` (false at either end) and ``results`` (the items, to be rendered)."""
    limit: int = params["limit"]
    keys = [key_of(item) for item in items]
    start = 0
    cursor = params.get("next") or params.get("previous")
    if cursor is not None:
        direction, key = cursor
        if direction == "n":
            start = next((i for i, k in enumerate(keys) if k > key), len(keys))
        else:
            end = next((i for i, k in enumerate(keys) if k >= key), len(keys))
            start = max(0, end - limit)
    chunk = items[start:start + limit]
    after = start + len(chunk)
    return {
        "total": len(items),
        "page": params["page"],
        "previousCursor": encode_cursor("p", keys[start]) if start > 0 and chunk else False,
        "nextCursor": encode_cursor("n", keys[after - 1]) if after < len(items) and chunk else False,
        "results": chunk,
    }


# -- what each route takes (validated by ``Api.values``, documented by ``wildduck.api.openapi``) -------------------

@dataclass(frozen=True, slots=True)
class Params:
    """The parameters a route takes (see :func:`takes`)."""

    fields: Mapping[str, Field]
    allow_unknown: bool = False
    #: fields the route fills from its path (not parameters of the request)
    from_path: tuple[str, ...] = ()
    #: parameters that are objects, with their members' fields (checked by the route)
    objects: Mapping[str, Mapping[str, Field]] = field(default_factory=dict)
    #: other parameters the route checks itself (name: what it is, as a JSON schema)
    others: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: a media type the body may have instead of parameters (its parameters then come from the query string)
    raw_body: str | None = None
    #: the media type of a successful answer
    produces: str = "application/json"
    #: the JSON schema of a successful (200) answer; None: ``{"success": boolean}`` (for JSON), a string (others)
    returns: Mapping[str, Any] | None = None
    #: other media types a successful answer may have (each a string)
    also_produces: tuple[str, ...] = ()
    #: JSON schemas of path parameters, by name (others: ``wildduck.api.openapi.PATH_PARAMETERS``, else a string)
    path: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: names in ``objects`` or ``others`` that a request must have
    required: tuple[str, ...] = ()


_PARAMS = "__wildduck_params__"
_View = TypeVar("_View", bound=Callable[..., Any])


def takes(fields: Mapping[str, Field], *, allow_unknown: bool = False, from_path: tuple[str, ...] = (),
          objects: Mapping[str, Mapping[str, Field]] | None = None,
          others: Mapping[str, Mapping[str, Any]] | None = None,
          raw_body: str | None = None, produces: str = "application/json",
          returns: Mapping[str, Any] | None = None, also_produces: tuple[str, ...] = (),
          path: Mapping[str, Mapping[str, Any]] | None = None,
          required: tuple[str, ...] = ()) -> Callable[[_View], _View]:
    """Declares what a route takes and answers: ``Api.values`` validates the request against it, the OpenAPI
    document (``/openapi.json``) describes it, and the schemathesis test checks every answer against it. Put it
    below the route's ``@app.get(...)``.

    ``returns`` is the JSON schema of the route's 200 answer (left out: ``{"success": boolean}`` and nothing
    more is said). Build it with the helpers below, which say exactly what is there and nothing else
    (``additionalProperties`` false, every property required unless named ``optional``)::

        USER = component("User", obj({"id": ID, "username": STRING, "name": nullable(STRING)}))

        @app.get("/users/<user_id>")
        @takes(GET, returns=success({"id": ID, "quota": obj({"allowed": INTEGER, "used": INTEGER})},
                                    optional=("quota",)))
        async def get_user(user_id: str) -> Response: ...

        @app.get("/users")
        @takes(LIST, returns=listing(USER))   # {"success", "total", "page", "previousCursor", "nextCursor", "results"}

    :func:`success` is WildDuck's ``{"success": true, ...}``; :func:`component` names a schema several routes share
    (it appears once under ``components/schemas``, and the call returns the ``$ref`` to it); the pieces are
    ``STRING``, ``INTEGER``, ``BOOLEAN``, ``ID`` (24 lower-case hex digits), ``DATE_TIME``, ``TRUE``, ``FALSE``,
    :func:`nullable`, :func:`array_of`, :func:`obj` and :func:`listing` (a page of ``page_of``). A member the
    schema does not name fails ``tests/api/test_schemathesis.py``, as does a missing one. For an answer that is
    not JSON give ``produces`` (its media type; ``also_produces`` for others it may have): its schema is a string
    unless ``returns`` says more (``text/event-stream``: one event's ``{"data", "event", "id"}``).

    ``path`` gives the JSON schema of a path parameter whose name the OpenAPI generator does not know already
    (``user_id``, ``mailbox_id``, ``message_id``, ``address_id``, ``attachment_id``: ``PATH_PARAMETERS`` there), or
    one this route reads differently (``mailbox_id`` may be ``resolve``); left out, it is any string. ``required``
    names the ``objects`` or ``others`` a request must have (a ``Field`` says so itself)."""
    params = Params(fields, allow_unknown, from_path, objects or {}, others or {}, raw_body, produces, returns,
                    also_produces, path or {}, required)

    def mark(view: _View) -> _View:
        setattr(view, _PARAMS, params)
        return view

    return mark


def declared(view: Callable[..., Any]) -> Params | None:
    """What :func:`takes` declared for ``view`` (None: nothing)."""
    found: Params | None = getattr(view, _PARAMS, None)
    return found


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)


#: what a boolean parameter may be (see ``_convert``): WildDuck's ``true``/``false`` words in any case, 1 or 0
_BOOL = {"anyOf": [{"type": "boolean"}, {"enum": [0, 1]}, {
    "type": "string", "pattern": "^\\s*(" + "|".join(_any_case(w) for w in sorted(_TRUE | _FALSE)) + ")\\s*$"}],
    "description": "true or false; also 1 or 0, yes or no, y or n, on or off (any case), and \"\" for false"}
_DATE = {"anyOf": [{"type": "string", "format": "date-time"},
                   {"type": "integer", "description": "milliseconds since the epoch"}]}


def json_schema(spec: Field) -> dict[str, Any]:
    """The JSON schema (OpenAPI 3.1) of the values ``spec`` accepts."""
    out: dict[str, Any]
    if spec.kind == "bool":
        out = dict(_BOOL)
    elif spec.kind == "int":
        out = {"type": "integer",
               "minimum": spec.min if spec.min is not None else -MAX_SAFE_INTEGER,
               "maximum": spec.max if spec.max is not None else MAX_SAFE_INTEGER}
    elif spec.kind == "id":
        out = {"type": "string", "pattern": f"^{OBJECT_ID.pattern}$"}
    elif spec.kind == "cursor":
        out = {"type": "string", "description": "a cursor from a previous page (nextCursor, previousCursor)"}
    elif spec.kind == "uids":
        out = {"type": "string", "pattern": f"^({_UID_SET.pattern})$",
               "description": "message UIDs: 1,2,3 or a range 3:15 or 3:*"}
    elif spec.kind == "date":
        out = dict(_DATE)
    elif spec.kind == "tags":
        item = {"type": "string", **({"maxLength": spec.max} if spec.max is not None else {})}
        out = {"anyOf": [{"type": "array", "items": item},
                         {"type": "string", "description": "tags separated by commas"}]}
    else:
        out = {"type": "string"}
        if spec.min is not None and not spec.empty_is_none:
            out["minLength"] = spec.min
        if spec.max is not None:
            out["maxLength"] = spec.max
    if spec.empty_is_none and spec.kind != "str":  # "" stands for "not given" (a str's schema allows it already)
        out = {"anyOf": [out, {"const": ""}]}
    if spec.default is not None:
        out["default"] = spec.default
    return out


def object_schema(fields: Mapping[str, Field], *, allow_unknown: bool = False) -> dict[str, Any]:
    """The JSON schema of an object of ``fields``."""
    out: dict[str, Any] = {"type": "object", "properties": {k: json_schema(v) for k, v in fields.items()},
                           "additionalProperties": allow_unknown}
    required = [k for k, v in fields.items() if v.required]
    if required:
        out["required"] = required
    return out


# -- what a route answers (``takes(returns=...)``; JSON schemas, OpenAPI 3.1) --------------------------------------

STRING: Mapping[str, Any] = {"type": "string"}
INTEGER: Mapping[str, Any] = {"type": "integer"}
BOOLEAN: Mapping[str, Any] = {"type": "boolean"}
#: an id this server made: 24 lower-case hex digits
ID: Mapping[str, Any] = {"type": "string", "pattern": "^[0-9a-f]{24}$"}
#: a date as WildDuck writes one (JavaScript's ``toISOString()``)
DATE_TIME: Mapping[str, Any] = {"type": "string", "format": "date-time"}
TRUE: Mapping[str, Any] = {"const": True}
FALSE: Mapping[str, Any] = {"const": False}
#: a listing's ``previousCursor`` / ``nextCursor``: a cursor, or false at that end
CURSOR_OR_FALSE: Mapping[str, Any] = {"anyOf": [{"type": "string", "minLength": 1}, FALSE]}

#: the schemas :func:`component` named, for ``components/schemas`` (filled as the route modules are imported)
COMPONENTS: dict[str, Mapping[str, Any]] = {}


def component(name: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    """Name ``schema`` ``components/schemas/<name>`` and return the ``$ref`` to it (a name is given once; the same
    schema again is allowed, another one is an error)."""
    known = COMPONENTS.get(name)
    if known is not None and known != schema:
        raise ValueError(f"two schemas named {name}")
    COMPONENTS[name] = schema
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: Mapping[str, Mapping[str, Any]], *, optional: tuple[str, ...] = (),
        extra: bool | Mapping[str, Any] = False) -> dict[str, Any]:
    """An object with exactly ``properties``, each required but those in ``optional``; ``extra``: whether (or as
    which schema) other members are allowed."""
    unknown = set(optional) - set(properties)
    if unknown:
        raise ValueError(f"optional properties that are not properties: {sorted(unknown)}")
    out: dict[str, Any] = {"type": "object", "properties": {k: dict(v) for k, v in properties.items()},
                           "additionalProperties": extra if isinstance(extra, bool) else dict(extra)}
    required = [k for k in properties if k not in optional]
    if required:
        out["required"] = required
    return out


def array_of(items: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": dict(items)}


def nullable(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"anyOf": [dict(schema), {"type": "null"}]}


def success(properties: Mapping[str, Mapping[str, Any]] | None = None, *,
            optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """WildDuck's answer ``{"success": true, **properties}``."""
    return obj({"success": TRUE, **(properties or {})}, optional=optional)


def listing(item: Mapping[str, Any], more: Mapping[str, Mapping[str, Any]] | None = None, *,
            optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """A page of results in WildDuck's listing shape (what :func:`page_of` makes), with ``more`` members (those in
    ``optional`` may be left out)."""
    return success({"total": {"type": "integer", "minimum": 0}, "page": {"type": "integer", "minimum": 1},
                    "previousCursor": CURSOR_OR_FALSE, "nextCursor": CURSOR_OR_FALSE, **(more or {}),
                    "results": array_of(item)}, optional=optional)
