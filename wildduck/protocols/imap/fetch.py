"""FETCH data from a stored message: sections of the MIME tree, partial ranges, streamed bodies (sans-I/O)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from wildduck.protocols import mime
from wildduck.protocols.imap import serializer
from wildduck.protocols.imap.grammar import FetchItem
from wildduck.protocols.mime import headers, transfer

Node = dict[str, Any]
GetBlob = Callable[[str], bytes]

_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def internaldate(value: dt.datetime) -> bytes:
    """``"17-Jul-1996 02:44:25 -0700"`` (kept in UTC)."""
    v = value.astimezone(dt.UTC)
    return f'"{v.day:02d}-{_MONTHS[v.month - 1]}-{v.year:04d} {v:%H:%M:%S} +0000"'.encode()


class MessageView:
    """One stored message as IMAP sees it: sections resolved on the offset tree, bytes composed on demand."""

    def __init__(self, skeleton: bytes, parts: Sequence[mime.CutLike], tree: Node, get_blob: GetBlob) -> None:
        self.skeleton = skeleton
        self.parts = parts
        self.tree = tree
        self.get_blob = get_blob
        self.size = mime.composed_size(skeleton, parts)

    def range(self, start: int, end: int) -> Iterator[bytes]:
        return mime.iter_compose(self.skeleton, self.parts, self.get_blob, start, end)

    def read(self, start: int, end: int) -> bytes:
        return b"".join(self.range(start, end))

    def node(self, path: Sequence[int]) -> Node | None:
        """The entity at a part path (RFC 3501 6.4.5). A message's parts are its body parts when it is multipart,
        else its body alone (part 1); a message/rfc822 part's parts are those of the message it encapsulates."""

        def message_parts(message: Node) -> list[Node]:
            return list(message["parts"]) if "parts" in message else [message]

        node = self.tree
        is_message = True  # the root entity is a message
        for n in path:
            if is_message:
                children = message_parts(node)
            elif "parts" in node:
                children = list(node["parts"])
            elif "msg" in node:
                children = message_parts(node["msg"])
            else:
                return None
            if not 1 <= n <= len(children):
                return None
            node = children[n - 1]
            is_message = False
        return node

    def section(self, item: FetchItem) -> tuple[int, int] | bytes | None:  # noqa: PLR0911
        """The section as an offset range of the message, or as bytes (HEADER.FIELDS), or None if absent."""
        section = item.section or ""
        spec, _, _fields = section.partition(" (")
        parts = spec.split(".") if spec else []
        path: list[int] = []
        while parts and parts[0].isdigit():
            path.append(int(parts.pop(0)))
        text = ".".join(parts).upper()
        node = self.node(path)
        if node is None:
            return None
        if not text:
            if not path:
                return (0, self.size)
            return (node["bs"], node["be"])
        if text == "MIME":
            return (node["hs"], node["bs"])
        # HEADER, HEADER.FIELDS (.NOT) and TEXT address a message: the root, or an encapsulated message
        if path:
            if "msg" not in node:
                return None if node["ct"][0] != "message" else (node["bs"], node["bs"])
            node = node["msg"]
        if text == "TEXT":
            return (node["bs"], node["be"])
        if text == "HEADER":
            return (node["hs"], node["bs"])
        block = self.read(node["hs"], node["bs"])
        return filter_header(block, item.fields, exclude=text == "HEADER.FIELDS.NOT")


def filter_header(block: bytes, names: Sequence[str], *, exclude: bool) -> bytes:
    """The header lines (with their continuations, as written) of the fields named (or not named), then the blank
    line ending the header if it has one (RFC 3501 6.4.5: a message with no body and no blank line has none).

    Lines break at LF only. A line that is not a field (no colon) is never named: HEADER.FIELDS.NOT keeps it.
    """
    wanted = {n.lower() for n in names}
    out: list[bytes] = []
    keep = False
    pos = 0
    n = len(block)
    while pos < n:
        nl = block.find(b"\n", pos)
        end = n if nl < 0 else nl + 1
        line = block[pos:end]
        pos = end
        if line in (b"\r\n", b"\n"):
            out.append(line)
            break
        if line[:1] in (b" ", b"\t"):
            if keep:
                out.append(line)
            continue
        name, colon, _value = line.partition(b":")
        keep = exclude if not colon else (name.rstrip(b" \t").lower().decode("ascii", "replace") in wanted) != exclude
        if keep:
            out.append(line)
    return b"".join(out)


def _without_nul(chunks: Iterable[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        yield chunk.replace(b"\x00", b"\x80")


def body_item(view: MessageView, item: FetchItem) -> serializer.Streamed | bytes:
    """The value of a BODY[...] item: a streamed literal; an absent section is an empty one (as Dovecot answers).

    A NUL may not appear in a literal (RFC 3501 ``CHAR8``): each is sent as 0x80, which keeps every size and
    offset (as Dovecot does). Only a ``literal8`` (BINARY, RFC 3516) could carry them.
    """
    found = view.section(item)
    if found is None:
        return serializer.Streamed(0, [])
    if isinstance(found, bytes):
        data = found
        if item.partial:
            start, length = item.partial
            data = data[start:start + length]
        return serializer.Streamed(len(data), _without_nul([data]))
    start, end = found
    if item.partial:
        p_start, p_len = item.partial
        start, end = min(start + p_start, end), min(start + p_start + p_len, end)
    return serializer.Streamed(end - start, _without_nul(view.range(start, end)))


class UnknownCTE(Exception):
    """A BINARY item names a part whose Content-Transfer-Encoding the server cannot undo (RFC 3516 4.3:
    ``NO [UNKNOWN-CTE]``)."""


def _binary_content(view: MessageView, item: FetchItem) -> tuple[bytes, bool]:
    """What BINARY[section] names, its transfer encodings undone, and whether anything was decoded: a leaf part's
    content; the whole message, a multipart or an encapsulated message with each of its parts decoded and said
    to be ``binary`` (as Dovecot answers); nothing for a part that does not exist. Raises UnknownCTE."""
    section = item.section or ""
    path = [int(n) for n in section.split(".")] if section else []
    node = view.node(path)
    if node is None:
        return b"", False
    if not path or "parts" in node or "msg" in node:
        start, end = (node["bs"], node["be"]) if path else (0, view.size)  # BODY[section]'s range
        raw = view.read(start, end)
        decoded = transfer.decoded_entity(raw, start, node["msg"] if "msg" in node else node)
        changed = decoded != raw
    else:
        encoding = headers.transfer_encoding(headers.fields(view.read(node["hs"], node["bs"])))
        decoded = transfer.decode(view.read(node["bs"], node["be"]), encoding)
        changed = encoding not in transfer.IDENTITY
    if decoded is None:
        raise UnknownCTE(f"unknown Content-Transfer-Encoding in {'part ' + section if path else 'the message'}")
    return decoded, changed


def binary_item(view: MessageView, item: FetchItem) -> serializer.Streamed:
    """The value of BINARY[section]<partial> (RFC 3516): the section with its transfer encodings undone; a
    ``literal8`` (``~{n}``) when something was decoded or it holds a NUL byte (Dovecot's rule), else a literal;
    empty for a part that does not exist. Raises UnknownCTE."""
    data, decoded = _binary_content(view, item)
    if item.partial:
        start, length = item.partial
        data = data[start:start + length]
    return serializer.Streamed(len(data), [data], binary=decoded or b"\x00" in data)


def binary_size(view: MessageView, item: FetchItem) -> bytes:
    """The value of BINARY.SIZE[section]: the size BINARY[section] has. Raises UnknownCTE."""
    return b"%d" % len(_binary_content(view, item)[0])


def sets_seen(items: Iterable[FetchItem]) -> bool:
    """Whether fetching ``items`` sets ``\\Seen`` on the message (in a mailbox opened read-write).

    ``BODY[...]`` and ``BINARY[...]`` without ``.PEEK`` (RFC 3501 6.4.5, RFC 3516 4.2), ``RFC822`` and
    ``RFC822.TEXT`` do; ``BODY`` (the structure), ``BINARY.SIZE``, ``RFC822.HEADER`` and the metadata items do not.

    Args:
        items: the parsed FETCH attributes.
    """
    return any((item.name in ("BODY", "BINARY") and item.section is not None and not item.peek)
               or item.name in ("RFC822", "RFC822.TEXT") for item in items)


__all__ = ["MessageView", "UnknownCTE", "binary_item", "binary_size", "body_item", "filter_header", "headers",
           "internaldate", "sets_seen"]
