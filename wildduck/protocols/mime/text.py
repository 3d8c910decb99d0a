"""Decoded text of a message for search, and attachment detection."""

from __future__ import annotations

import binascii
import html.parser
import quopri
import re

from wildduck.protocols.mime import headers
from wildduck.protocols.mime.searchable import header_block_text
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


_LINE_BREAK = re.compile(rb"\r?\n")
_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")


def decode_quoted_printable(data: bytes) -> bytes:
    """RFC 2045 6.7: ``=XX`` octets, soft line breaks (``=`` ending a line, white space after it allowed) joined,
    white space ending a line dropped; a ``=`` that starts no valid sequence stays as it is (rule 1's robustness
    advice). Hard line breaks are kept as written (CRLF or LF)."""
    out: list[bytes] = []
    pos = 0
    for m in _LINE_BREAK.finditer(data):
        out.append(_qp_line(data[pos:m.start()], m.group()))
        pos = m.end()
    out.append(_qp_line(data[pos:], b""))
    return b"".join(out)


def _qp_line(line: bytes, line_break: bytes) -> bytes:
    line = line.rstrip(b" \t")
    if line.endswith(b"="):
        line, line_break = line[:-1], b""  # a soft line break
    return _HEX.sub(lambda m: binascii.unhexlify(m.group(1)), line) + line_break


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


#: the transfer encodings whose content search reads (Dovecot skips a part in any other one)
_SEARCHED_ENCODINGS = frozenset({"7bit", "8bit", "binary", "base64", "quoted-printable"})


def _searched(f: list[tuple[str, bytes]]) -> bool:
    """Whether search reads this entity's body, as Dovecot does: its Content-Type (the first one) is ``text/*`` or
    ``message/*``, or it has none; an unparseable one, or one without a subtype, is not text."""
    value = headers.get(f, "content-type")
    if value is None:
        return True
    ct = headers.parse_content_type(value)
    return ct is not None and bool(ct.subtype) and ct.type in ("text", "message")


def search_charset(data: bytes, charset: str | None) -> str:
    """Decoded text of a part for search, as Dovecot converts it: the declared charset when it is known (US-ASCII
    read as UTF-8), else UTF-8; invalid sequences become U+FFFD."""
    cs = (charset or "").strip().strip('"').lower()
    if cs and cs not in ("us-ascii", "ascii", "utf-8", "utf8"):
        try:
            return data.decode(cs, "replace")
        except (LookupError, UnicodeError, ValueError):  # unknown, or not a text encoding (base64, rot13)
            pass
    return data.decode("utf-8", "replace")


def search_part_text(buf: bytes, node: Node) -> str | None:
    """What SEARCH BODY reads of a leaf: for a text part (any ``text/*`` or ``message/*`` subtype, attachments
    included; never ``application/*``, images and the like) its content with the transfer encoding undone
    (quoted-printable exactly: soft line breaks joined, white space after ``=`` allowed) and converted from its
    charset, markup and line breaks as written (no HTML rendering, no format=flowed joining); None for a part not
    read (not text, or an unknown transfer encoding)."""
    f = node_fields(buf, node)
    if not _searched(f):
        return None
    encoding = headers.transfer_encoding(f)
    if encoding not in _SEARCHED_ENCODINGS:
        return None
    body = buf[node["bs"]:node["be"]]
    if encoding == "quoted-printable":
        data = decode_quoted_printable(body)
    else:
        data = decode_transfer(body, encoding)
    return search_charset(data, headers.content_type(f)[2].get("charset"))


def extract_text(buf: bytes, root: Node) -> str:
    """Text of the message body for SEARCH BODY (and TEXT), as Dovecot reads it: every text part
    (:func:`search_part_text`), one after the other, separated by a line feed. Headers are not included, not even
    an encapsulated message's: SEARCH TEXT adds them (:func:`search_header_text`), SEARCH BODY must not see
    them."""
    out: list[str] = []
    size = 0
    for node in walk(root):
        if "parts" in node or "msg" in node:
            continue
        text = search_part_text(buf, node)
        if text:
            out.append(text)
            size += len(text)
            if size > MAX_TEXT:
                break
    return "\n".join(out)[:MAX_TEXT]


def search_header_text(buf: bytes, root: Node) -> str:
    """The headers SEARCH TEXT reads besides the body text: the message's header and that of every part below it
    (MIME part headers, encapsulated messages' headers), each field as ``Name: value`` decoded
    (:func:`wildduck.protocols.mime.searchable.header_block_text`)."""
    out = [header_block_text(buf[node["hs"]:node["bs"]]) for node in walk(root)]
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
