"""Builds the MIME tree: nested dicts of byte offsets into the original message (see ``protocols.mime``)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from wildduck.protocols.mime import headers

Node = dict[str, Any]

#: entities nested deeper than this are not followed (treated as leaves)
MAX_DEPTH = 64
#: key under which build() keeps each node's parsed header fields until strip_cache()
FIELDS_CACHE = "_fields"
#: at most this many parts per multipart are split out (the rest stays in the last part)
MAX_PARTS = 10_000


def _body_end_before(buf: bytes, part_start: int, line_start: int) -> int:
    """End of a body that is followed by a delimiter line at ``line_start``: the line break before it belongs to
    the delimiter (RFC 2046 5.1.1)."""
    end = line_start
    if end > part_start and buf[end - 1] == 10:
        end -= 1
        if end > part_start and buf[end - 1] == 13:
            end -= 1
    return end


def build(buf: bytes, scanner: ModuleType, start: int = 0, end: int | None = None, *, depth: int = 0,
          digest: bool = False) -> Node:
    """The tree of the entity in buf[start:end]."""
    if end is None:
        end = len(buf)
    bs = scanner.header_end(buf, start, end)
    fields = scanner.header_fields(buf, start, bs)
    ct = headers.parse_content_type(headers.get(fields, "content-type"))
    if ct is None:
        typ, sub = ("message", "rfc822") if digest else ("text", "plain")
        params: dict[str, str] = {}
    else:
        typ, sub, params = ct.type, ct.subtype, ct.params.decoded
    node: Node = {"hs": start, "bs": bs, "be": end, "ct": [typ, sub], "lines": scanner.count_lines(buf, bs, end),
                  FIELDS_CACHE: fields}
    if depth >= MAX_DEPTH:
        return node
    if typ == "multipart":
        boundary = params.get("boundary", "")
        if not boundary:
            return node
        try:
            marker = boundary.encode("utf-8")
        except UnicodeEncodeError:
            return node
        delimiters = scanner.find_delimiters(buf, bs, end, marker)
        parts: list[Node] = []
        for k, (_line, after, close) in enumerate(delimiters):
            if close or len(parts) >= MAX_PARTS:
                break
            if k + 1 < len(delimiters):
                part_end = _body_end_before(buf, after, delimiters[k + 1][0])
            else:  # missing close delimiter: the last part runs to the end
                part_end = end
            parts.append(build(buf, scanner, after, part_end, depth=depth + 1, digest=sub == "digest"))
        node["parts"] = parts
    elif typ == "message" and sub in ("rfc822", "global"):
        if headers.transfer_encoding(fields) not in ("base64", "quoted-printable"):
            node["msg"] = build(buf, scanner, bs, end, depth=depth + 1)
    return node


def walk(node: Node) -> list[Node]:
    """Every node of the tree, depth first, parents before children."""
    out = [node]
    for child in node.get("parts", ()):
        out.extend(walk(child))
    if "msg" in node:
        out.extend(walk(node["msg"]))
    return out


def leaves(node: Node) -> list[Node]:
    """Nodes whose body is not further structured (no parts list, no encapsulated message)."""
    return [n for n in walk(node) if "parts" not in n and "msg" not in n]


def node_fields(buf: bytes, node: Node) -> list[tuple[str, bytes]]:
    """The header fields of ``node`` (parsed once while building; see :func:`strip_cache`)."""
    cached = node.get(FIELDS_CACHE)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    return headers.fields(buf[node["hs"]:node["bs"]])


def strip_cache(node: Node) -> Node:
    """Remove the parsed header fields kept on the nodes while analyzing (the stored tree is offsets only)."""
    for n in walk(node):
        n.pop(FIELDS_CACHE, None)
    return node
