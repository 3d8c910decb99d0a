"""Builds the MIME tree: nested dicts of byte offsets into the original message (see ``protocols.mime``).

The message is read the way Dovecot reads it, so that part numbers, sizes and section contents agree with it:

* every multipart pushes its boundary on a stack that nested entities (encapsulated messages too) inherit; a
  line starting with ``--`` + a boundary of the stack ends whatever entity is open, and when several boundaries
  match, the longest wins (the innermost on a tie): a part may reuse its parent's boundary;
* a delimiter line only has to start with ``--boundary`` (the rest of the line is ignored), and ``--boundary--``
  closes the multipart; what follows a close delimiter, up to a boundary of an enclosing multipart, is epilogue;
* the line break before a delimiter line belongs to the delimiter (RFC 2046 5.1.1), even when it is that of the
  empty line ending a header; but an entity whose header or close delimiter runs into the delimiter line of an
  enclosing multipart leaves that line break to the entities around it (a close delimiter keeps its own line
  break when no epilogue follows; an encapsulated message, or an unclosed multipart, that ends inside a header
  ends at the delimiter line);
* a header ends at its empty line or at a delimiter line;
* a multipart without a boundary has no parts; a message/rfc822 part is parsed as a message whatever its
  Content-Transfer-Encoding; lines are counted as line feeds.
"""

from __future__ import annotations

import functools
import re
from types import ModuleType
from typing import Any, NamedTuple

from wildduck.protocols.mime import headers

Node = dict[str, Any]

#: entities nested deeper than this are not followed (treated as leaves)
MAX_DEPTH = 64
#: key under which build() keeps each node's parsed header fields until strip_cache()
FIELDS_CACHE = "_fields"
#: at most this many parts per multipart are split out (the rest is the multipart's epilogue)
MAX_PARTS = 10_000


class _Delimiter(NamedTuple):
    line: int  # offset of the delimiter line
    owner: int  # index in the boundary stack of the multipart it belongs to
    close: bool
    after: int  # just past the line and its line break


def _match(buf: bytes, pos: int, end: int, stack: list[bytes]) -> _Delimiter | None:
    """The delimiter at the line starting at ``pos`` (which starts with ``--``), if any."""
    best = -1
    for k in range(len(stack) - 1, -1, -1):  # innermost first: it wins a tie
        marker = stack[k]
        if (best < 0 or len(marker) > len(stack[best])) and pos + len(marker) <= end and \
                buf.startswith(marker, pos):
            best = k
    if best < 0:
        return None
    q = pos + len(stack[best])
    close = q + 2 <= end and buf.startswith(b"--", q)
    nl = buf.find(b"\n", q, end)
    return _Delimiter(pos, best, close, end if nl < 0 else nl + 1)


@functools.lru_cache(maxsize=256)
def _pattern(stack: tuple[bytes, ...]) -> re.Pattern[bytes]:
    """Matches a line feed followed by one of the markers (``--`` + boundary); the literal ``\\n--`` it starts
    with lets the regular expression engine skip ahead quickly."""
    boundaries = sorted({m[2:] for m in stack}, key=len, reverse=True)
    return re.compile(b"\\n--(?:" + b"|".join(re.escape(b) for b in boundaries) + b")")


def _next_delimiter(buf: bytes, pos: int, end: int, stack: list[bytes]) -> _Delimiter | None:
    """The first delimiter line of ``stack`` in [pos, end); ``pos`` is at the start of a line."""
    if not stack or pos >= end:
        return None
    if buf.startswith(b"--", pos):
        found = _match(buf, pos, end, stack)
        if found is not None:
            return found
    m = _pattern(tuple(stack)).search(buf, pos, end)
    return None if m is None else _match(buf, m.start() + 1, end, stack)


def _before_line_break(buf: bytes, start: int, line: int) -> int:
    """``line`` without the line break that ends the previous line (not going below ``start``)."""
    end = line
    if end > start and buf[end - 1] == 10:
        end -= 1
        if end > start and buf[end - 1] == 13:
            end -= 1
    return end


def build(buf: bytes, scanner: ModuleType, start: int = 0, end: int | None = None) -> Node:
    """The tree of the entity (message) in buf[start:end]."""
    node, _stop, _keeps = _entity(buf, scanner, start, len(buf) if end is None else end, [], 0, False)
    return node


def _entity(buf: bytes, scanner: ModuleType, start: int, end: int, stack: list[bytes], depth: int,
            digest: bool) -> tuple[Node, _Delimiter | None, bool]:
    """Parse the entity at ``start`` up to the first delimiter line of ``stack`` (or ``end``).

    Returns its node, the delimiter that ended it (None: the end of the data) and whether the entities enclosing
    this one end at that delimiter line itself, keeping the line break before it (see the module docstring).
    """
    header_end = scanner.header_end(buf, start, end)
    stop = _next_delimiter(buf, start, header_end, stack)
    bs = header_end if stop is None else _before_line_break(buf, start, stop.line)
    fields = scanner.header_fields(buf, start, bs)
    ct = headers.parse_content_type(headers.get(fields, "content-type"))
    if ct is None:
        typ, sub = ("message", "rfc822") if digest else ("text", "plain")
    elif not ct.subtype:  # unparseable or without a subtype: text/plain for us (RFC 2045 5.2), BODYSTRUCTURE says
        typ, sub = "text", "plain"  # what Dovecot says (bodystructure.py)
    else:
        typ, sub = ct.type, ct.subtype
    multipart = typ == "multipart" and depth < MAX_DEPTH
    boundary = ct.params.first("boundary") if multipart and ct is not None else None
    if stop is None and header_end < end and stack and buf.startswith(b"--", header_end):
        # a delimiter right after the empty line takes its line break (unless it is this multipart's own)
        own = [*stack, b"--" + boundary] if boundary else stack
        found = _match(buf, header_end, end, own)
        if found is not None and found.owner < len(stack):
            stop, bs = found, _before_line_break(buf, start, header_end)
    keeps = stop is not None
    node: Node = {"hs": start, "bs": bs, "be": bs, "ct": [typ, sub], FIELDS_CACHE: fields}
    if multipart:
        node["parts"] = []
        if stop is None and boundary:
            node["be"], stop, keeps = _multipart(buf, scanner, node, bs, end, stack, b"--" + boundary, depth,
                                                 sub == "digest")
        elif stop is None:
            node["be"], stop = _leaf_body(buf, bs, end, stack)
    elif typ == "message" and sub in ("rfc822", "global") and depth < MAX_DEPTH:
        inner, inner_stop, inner_keeps = _entity(buf, scanner, bs, bs if stop is not None else end, stack,
                                                 depth + 1, False)
        node["msg"] = inner
        if stop is None:
            stop, keeps = inner_stop, inner_keeps
            node["be"] = inner_stop.line if inner_stop is not None and inner_keeps else inner["be"]
    elif stop is None:
        node["be"], stop = _leaf_body(buf, bs, end, stack)
    node["lines"] = buf.count(b"\n", bs, node["be"])
    return node, stop, keeps


def _leaf_body(buf: bytes, bs: int, end: int, stack: list[bytes]) -> tuple[int, _Delimiter | None]:
    stop = _next_delimiter(buf, bs, end, stack)
    if stop is None:
        return end, None
    return _before_line_break(buf, bs, stop.line), stop


def _multipart(buf: bytes, scanner: ModuleType, node: Node, bs: int, end: int, stack: list[bytes], marker: bytes,
               depth: int, digest: bool) -> tuple[int, _Delimiter | None, bool]:
    """Parse the parts of the multipart ``node`` (body at ``bs``) into ``node["parts"]``; returns its body end,
    the delimiter of an enclosing multipart that ended it and whether the line break before that delimiter is
    kept (as :func:`_entity`)."""
    inner_stack = [*stack, marker]
    me = len(stack)
    found = _next_delimiter(buf, bs, end, inner_stack)
    keeps = False
    while found is not None and found.owner == me and not found.close and len(node["parts"]) < MAX_PARTS:
        child, found, keeps = _entity(buf, scanner, found.after, end, inner_stack, depth + 1, digest)
        node["parts"].append(child)
    if found is None:
        return end, None, False
    if found.owner != me:  # an enclosing multipart's delimiter: this one was never closed
        return (found.line if keeps else _before_line_break(buf, bs, found.line)), found, keeps
    epilogue = found.after
    stop = _next_delimiter(buf, epilogue, end, stack)
    if stop is None:
        return end, None, False
    if stop.line == epilogue:  # no epilogue: the close delimiter keeps its line break
        return epilogue, stop, True
    return _before_line_break(buf, epilogue, stop.line), stop, False


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
