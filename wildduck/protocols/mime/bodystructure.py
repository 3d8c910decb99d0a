"""IMAP BODYSTRUCTURE data (RFC 3501 7.4.2) as JSON-able nested lists, and the BODY form derived from it.

Layout of a non-multipart entry: ``[type, subtype, params, id, description, encoding, size, <type specific>,
md5, disposition, language, location]`` where the type specific fields are ``lines`` for text/*, ``envelope,
body, lines`` for message/rfc822 (and message/global), nothing otherwise. A multipart entry is ``[part, ...,
subtype, params, disposition, language, location]`` (its first item is a list).

Choices where RFC 3501 leaves room, following Dovecot: type, subtype, parameter names and values as written in
the header; a missing Content-Type gives ``"text" "plain" ("charset" "us-ascii")``; a missing encoding gives
``"7bit"``; a multipart without any part reports one empty text/plain part; parameters are NIL when there are
none.
"""

from __future__ import annotations

from typing import Any

from wildduck.protocols.mime import headers
from wildduck.protocols.mime.envelope import envelope_of_fields
from wildduck.protocols.mime.jsonbytes import to_json
from wildduck.protocols.mime.tree import Node, node_fields

_EMPTY_PART: list[Any] = ["text", "plain", ["charset", "us-ascii"], None, None, "7bit", 0, 0,
                          None, None, None, None]


def _params(params: headers.ParsedParams | None) -> list[Any] | None:
    if params is None or not params.raw:
        return None
    out: list[Any] = []
    for name, value in params.raw:
        out.extend((to_json(name), to_json(value)))
    return out


def _disposition(f: list[tuple[str, bytes]]) -> list[Any] | None:
    parsed = headers.parse_disposition(headers.get(f, "content-disposition"))
    if parsed is None:
        return None
    return [to_json(parsed[0]), _params(parsed[1])]


def _language(f: list[tuple[str, bytes]]) -> Any:
    value = headers.get(f, "content-language")
    if value is None:
        return None
    tags = [t.strip() for t in value.replace(b" ", b"").split(b",") if t.strip()]
    if not tags:
        return None
    return [to_json(t) for t in tags]


def _opt(f: list[tuple[str, bytes]], name: str) -> Any:
    value = headers.get(f, name)
    return to_json(value.strip()) if value is not None else None


def bodystructure(buf: bytes, node: Node) -> list[Any]:
    """BODYSTRUCTURE, with extension data, of the entity ``node``."""
    f = node_fields(buf, node)
    ct = headers.parse_content_type(headers.get(f, "content-type"))
    ext = [_disposition(f), _language(f), _opt(f, "content-location")]
    if "parts" in node:
        children = [bodystructure(buf, child) for child in node["parts"]] or [list(_EMPTY_PART)]
        subtype = to_json(ct.raw_subtype) if ct is not None else node["ct"][1]
        return [*children, subtype, _params(ct.params if ct else None), *ext]
    as_written = ct is not None and ct.raw_type is not None and ct.raw_subtype is not None
    if ct is not None and as_written and node["ct"] == [ct.type, ct.subtype]:
        typ, sub, params = to_json(ct.raw_type), to_json(ct.raw_subtype), _params(ct.params)
    else:  # absent or invalid: the RFC 2045 default (or message/rfc822 inside multipart/digest)
        typ, sub = node["ct"]
        params = ["charset", "us-ascii"] if node["ct"] == ["text", "plain"] else None
    encoding = headers.get(f, "content-transfer-encoding")
    fields_ = [typ, sub, params, _opt(f, "content-id"), _opt(f, "content-description"),
               to_json(encoding.strip()) if encoding is not None and encoding.strip() else "7bit",
               node["be"] - node["bs"]]
    kind = node["ct"]
    if kind[0] == "text":
        fields_.append(node["lines"])
    elif kind[0] == "message" and kind[1] in ("rfc822", "global"):
        inner = node.get("msg")
        if inner is not None:
            fields_.extend([envelope_of_fields(node_fields(buf, inner)), bodystructure(buf, inner), node["lines"]])
        else:  # encoded message/rfc822: nothing to describe inside
            fields_.extend([envelope_of_fields([]), list(_EMPTY_PART), node["lines"]])
    return [*fields_, _opt(f, "content-md5"), *ext]


def is_multipart(structure: list[Any]) -> bool:
    return bool(structure) and isinstance(structure[0], list)


def body(structure: list[Any]) -> list[Any]:
    """The non-extensible BODY form of a BODYSTRUCTURE value."""
    if is_multipart(structure):
        n = 0
        while n < len(structure) and isinstance(structure[n], list):
            n += 1
        return [*(body(child) for child in structure[:n]), structure[n]]
    typ = str(structure[0]).lower() if isinstance(structure[0], str) else ""
    sub = str(structure[1]).lower() if isinstance(structure[1], str) else ""
    if typ == "text":
        return structure[:8]
    if typ == "message" and sub in ("rfc822", "global") and len(structure) >= 10:
        return [*structure[:7], structure[7], body(structure[8]), structure[9]]
    return structure[:7]
