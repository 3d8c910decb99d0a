"""Decoded text of a message for search, and attachment detection."""

from __future__ import annotations

import binascii
import html.parser
import quopri
import re

from wildduck.protocols.mime import headers
from wildduck.protocols.mime.tree import Node, node_fields, walk

#: at most this much text is extracted per message
MAX_TEXT = 1024 * 1024


def header_text(header: bytes) -> str:
    """A header block as SEARCH TEXT sees it: encoded words decoded."""
    return headers.decode_words(header)


def decode_transfer(body: bytes, encoding: str) -> bytes:
    """Undo a Content-Transfer-Encoding; broken input decodes as far as possible, never raises."""
    if encoding == "base64":
        cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", body)
        cleaned = cleaned[: len(cleaned) - len(cleaned) % 4] if len(cleaned) % 4 == 1 else cleaned
        try:
            return binascii.a2b_base64(cleaned + b"=" * (-len(cleaned) % 4))
        except binascii.Error:
            return b""
    if encoding == "quoted-printable":
        return quopri.decodestring(body)
    return body


def _unflow(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed: join soft-broken lines (ending in a space)."""
    out: list[str] = []
    buf = ""
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if line.startswith(" "):
            line = line[1:]  # space stuffing
        if line.endswith(" ") and line != "-- ":
            buf += line[:-1] if delsp else line
        else:
            out.append(buf + line)
            buf = ""
    if buf:
        out.append(buf)
    return "\n".join(out)


class _HTMLText(html.parser.HTMLParser):
    _SKIP = {"script", "style", "head", "title"}
    _BREAK = {"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skip += 1
        elif tag in self._BREAK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self.skip:
            self.skip -= 1
        elif tag in self._BREAK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def html_to_text(source: str) -> str:
    parser = _HTMLText()
    try:
        parser.feed(source)
        parser.close()
    except (AssertionError, ValueError):  # pathological markup: keep what was gathered
        pass
    return re.sub(r"[ \t]+", " ", "".join(parser.parts)).strip()


def _disposition(f: list[tuple[str, bytes]]) -> str | None:
    return headers.content_disposition(f)[0]


def part_text(buf: bytes, node: Node) -> str | None:
    """Decoded text of an inline text/plain or text/html leaf, else None."""
    f = node_fields(buf, node)
    typ, sub = node["ct"]
    if typ != "text" or sub not in ("plain", "html") or _disposition(f) == "attachment":
        return None
    _t, _s, params = headers.content_type(f)
    data = decode_transfer(buf[node["bs"]:node["be"]], headers.transfer_encoding(f))
    text = headers.decode_bytes(data, params.get("charset"))
    if sub == "html":
        return html_to_text(text)
    if params.get("format", "").lower() == "flowed":
        text = _unflow(text, params.get("delsp", "").lower() == "yes")
    return text.replace("\r\n", "\n")


def extract_text(buf: bytes, root: Node) -> str:
    """Text of the message body for search: its text parts, decoded, and the decoded From/To/Cc/Subject of
    encapsulated messages (which are body content). The top-level header is not included: SEARCH TEXT adds it,
    SEARCH BODY must not see it."""
    out: list[str] = []
    size = 0
    for node in walk(root):
        if node.get("msg") is not None:
            f = node_fields(buf, node["msg"])
            for name in ("from", "to", "cc", "subject"):
                for value in headers.get_all(f, name):
                    out.append(headers.normalize_space(headers.decode_words(value)))
        if "parts" in node or "msg" in node:
            continue
        text = part_text(buf, node)
        if text:
            out.append(text)
            size += len(text)
            if size > MAX_TEXT:
                break
    return "\n".join(out)[:MAX_TEXT]


def has_attachments(buf: bytes, root: Node) -> bool:
    """True if a leaf is an attachment: disposition attachment, or a non-text body that is not an inline image
    referenced by Content-ID inside multipart/related."""
    def visit(node: Node, related: bool) -> bool:
        if "parts" in node:
            is_related = node["ct"] == ["multipart", "related"]
            return any(visit(child, is_related) for child in node["parts"])
        if "msg" in node:
            return True  # an attached message
        f = node_fields(buf, node)
        disposition = _disposition(f)
        if disposition == "attachment":
            return True
        if node["ct"][0] == "text":
            return False
        if related and headers.get(f, "content-id") is not None and disposition != "attachment":
            return False
        return bool(node["be"] > node["bs"])

    return visit(root, False)
