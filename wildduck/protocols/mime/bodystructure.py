"""IMAP BODYSTRUCTURE data (RFC 3501 7.4.2) as JSON-able nested lists, and the BODY form derived from it.

Layout of a non-multipart entry: ``[type, subtype, params, id, description, encoding, size, <type specific>,
md5, disposition, language, location]`` where the type specific fields are ``lines`` for text/*, ``envelope,
body, lines`` for message/rfc822 (and message/global), nothing otherwise. A multipart entry is ``[part, ...,
subtype, params, disposition, language, location]`` (its first item is a list).

Choices where RFC 3501 leaves room follow Dovecot, whose answers are the oracle of our tests
(tests/oracle/): type, subtype, parameter names and values as written in the header (but ``"message" "rfc822"``
in lower case); RFC 2231 continuations joined (:func:`headers.imap_params`); a text part without a charset
parameter gets ``("charset" "us-ascii")`` added; a missing Content-Type gives ``"text" "plain"``, an unparseable
one ``"" ""`` with no parameters, a type alone ``"type" ""`` (``multipart`` alone:
``"application" "octet-stream"``); a missing or unparseable encoding gives ``"7bit"``; a multipart without any part
(or without a boundary) reports one empty text/plain part; Content-ID, -Description, -MD5 and -Location are the
unfolded values as written; lines are the line feeds of the body; parameters are NIL when there are none.
"""

from __future__ import annotations

from typing import Any

from wildduck.protocols.mime import headers
from wildduck.protocols.mime.envelope import envelope_of_fields
from wildduck.protocols.mime.jsonbytes import to_json
from wildduck.protocols.mime.tree import Node, node_fields

_EMPTY_PART: list[Any] = ["text", "plain", ["charset", "us-ascii"], None, None, "7bit", 0, 0,
                          None, None, None, None]


def _params(pairs: list[tuple[bytes, bytes]]) -> list[Any] | None:
    out: list[Any] = []
    for name, value in pairs:
        out.extend((to_json(name), to_json(value)))
    return out or None


def _disposition(f: list[tuple[str, bytes]]) -> list[Any] | None:
    parsed = headers.parse_disposition(headers.get(f, "content-disposition"))
    if parsed is None:
        return None
    return [to_json(parsed[0]), _params(headers.imap_params(parsed[1].raw))]


def _language(f: list[tuple[str, bytes]]) -> Any:
    tags = headers.parse_languages(headers.get(f, "content-language"))
    return [to_json(t) for t in tags] or None


def _opt(f: list[tuple[str, bytes]], name: str) -> Any:
    return to_json(headers.get(f, name))


def _media_type(ct: headers.ContentType | None, default: list[str]) -> tuple[Any, Any, list[Any] | None, str]:
    """(type, subtype, params) as reported, and the lower-case type that decides the type specific fields."""
    if ct is None:
        typ, sub = default
        return typ, sub, ["charset", "us-ascii"] if typ == "text" else None, typ
    if not ct.valid:
        return "", "", None, ""
    if ct.type == "multipart" and not ct.subtype:
        return "application", "octet-stream", None, "application"
    if ct.type == "message" and ct.subtype == "rfc822":
        typ, sub = "message", "rfc822"
    else:
        typ, sub = to_json(ct.raw_type), to_json(ct.raw_subtype)
    pairs = headers.imap_params(ct.params.raw)
    if ct.type == "text" and not any(k.lower() == b"charset" for k, _v in pairs):
        pairs.append((b"charset", b"us-ascii"))
    return typ, sub, _params(pairs), ct.type


def bodystructure(buf: bytes, node: Node) -> list[Any]:
    """BODYSTRUCTURE, with extension data, of the entity ``node``."""
    f = node_fields(buf, node)
    ct = headers.parse_content_type(headers.get(f, "content-type"))
    ext = [_disposition(f), _language(f), _opt(f, "content-location")]
    if "parts" in node:
        children = [bodystructure(buf, child) for child in node["parts"]] or [list(_EMPTY_PART)]
        subtype = to_json(ct.raw_subtype) if ct is not None else node["ct"][1]
        return [*children, subtype, _params(headers.imap_params(ct.params.raw)) if ct else None, *ext]
    typ, sub, params, kind = _media_type(ct, node["ct"])
    encoding = headers.encoding_token(headers.get(f, "content-transfer-encoding"))
    fields_ = [typ, sub, params, _opt(f, "content-id"), _opt(f, "content-description"),
               to_json(encoding) if encoding is not None else "7bit", node["be"] - node["bs"]]
    if kind == "text":
        fields_.append(node["lines"])
    elif "msg" in node:
        inner = node["msg"]
        fields_.extend([envelope_of_fields(node_fields(buf, inner)), bodystructure(buf, inner), node["lines"]])
    elif kind == "message" and node["ct"][1] in ("rfc822", "global"):  # nested too deep to be parsed
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
