"""A stored message as a webmail reads it: addresses, subject, dates, text, HTML and attachments (WildDuck's
parsed-message view), computed from the stored MIME tree and skeleton without reading attachment blobs.

The rules follow WildDuck's indexer, so that attachment ids agree with WildDuck's for the same message: the MIME
tree is walked depth first (an encapsulated message is walked into); every leaf with a body that is not inline
text (text/plain, text/html, text/rfc822-headers or message/delivery-status without a disposition or with
``inline``), or that is inline text of more than 300 KiB, is numbered ``ATT00001``, ``ATT00002``...; the ones
that are not inline text are the message's attachments. Inline text bodies become ``text`` (text/html bodies
converted to text unless inside multipart/alternative) and ``html`` (text/plain bodies turned into paragraphs
unless inside multipart/alternative). ``cid:`` links to a numbered part become ``attachment:ATT00001``.

Everything here is pure (no I/O) except :class:`MessageReader`, which reads records and the few blobs needed (text
bodies that were cut out of the skeleton) through the message service.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, overload

import nh3

from wildduck.domain.messages import MessageService
from wildduck.model import MessageRecord, StoredPart
from wildduck.protocols.mime import headers, materialize
from wildduck.protocols.mime import text as mimetext
from wildduck.protocols.mime.text import decode_transfer
from wildduck.protocols.mime.tree import FIELDS_CACHE, Node, leaves

#: inline text bigger than this is also numbered as an attachment (WildDuck's rule)
BIG_TEXT = 300 * 1024
#: the content types that count as inline text
INLINE_TEXT = frozenset({"text/plain", "text/html", "text/rfc822-headers", "message/delivery-status"})
ADDRESS_HEADERS = frozenset({"from", "sender", "reply-to", "to", "cc", "bcc"})
#: the intro is taken from the first this many characters of the text
INTRO_SOURCE = 2 * 1024
INTRO_LENGTH = 128
#: flag names of WildDuck's booleans
SEEN, DELETED, FLAGGED, DRAFT, ANSWERED, FORWARDED = (
    "\\Seen", "\\Deleted", "\\Flagged", "\\Draft", "\\Answered", "$Forwarded")
ENCRYPTED_TYPES = frozenset({"multipart/encrypted", "application/pkcs7-mime", "application/x-pkcs7-mime"})

#: the HTML a message body may keep: nh3's defaults plus presentational attributes mail relies on, and
#: ``attachment:`` links (resolved by the API to the attachment route); scripts, handlers, forms, frames and
#: ``javascript:`` URLs go
_SANITIZER = nh3.Cleaner(
    attributes={
        **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
        "*": {"style", "title", "dir", "lang", "align", "width", "height", "bgcolor", "color"},
        "font": {"color", "face", "size"},
        "td": {"align", "char", "charoff", "colspan", "headers", "rowspan", "valign", "bgcolor", "width", "height"},
        "table": {"align", "char", "charoff", "summary", "border", "cellpadding", "cellspacing", "bgcolor", "width"},
    },
    tags=set(nh3.ALLOWED_TAGS) | {"font", "tfoot"},
    url_schemes=set(nh3.ALLOWED_URL_SCHEMES) | {"attachment", "cid"},
    filter_style_properties={
        "background", "background-color", "border", "border-bottom", "border-collapse", "border-color",
        "border-left", "border-radius", "border-right", "border-spacing", "border-style", "border-top",
        "border-width", "color", "direction", "display", "font", "font-family", "font-size", "font-style",
        "font-variant", "font-weight", "height", "letter-spacing", "line-height", "list-style", "list-style-type",
        "margin", "margin-bottom", "margin-left", "margin-right", "margin-top", "max-width", "min-width",
        "padding", "padding-bottom", "padding-left", "padding-right", "padding-top", "text-align",
        "text-decoration", "text-indent", "text-transform", "vertical-align", "white-space", "width",
        "word-break", "word-spacing",
    },
)


def sanitize_html(source: str) -> str:
    """HTML safe to show in a browser (nh3/ammonia with the allow-list above)."""
    return _SANITIZER.clean(source)


@overload
def iso(when: dt.datetime) -> str: ...


@overload
def iso(when: None) -> None: ...


def iso(when: dt.datetime | None) -> str | None:
    """A date as JavaScript's ``toISOString()`` writes it (UTC, milliseconds, ``Z``), as WildDuck returns dates."""
    if when is None:
        return None
    utc = when.astimezone(dt.UTC) if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return f"{utc.year:04d}" + utc.strftime("-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def flag_view(flags: Sequence[str]) -> dict[str, bool]:
    """WildDuck's flag booleans (``answered`` is false for a forwarded message, as WildDuck reports it)."""
    return {"seen": SEEN in flags, "deleted": DELETED in flags, "flagged": FLAGGED in flags,
            "draft": DRAFT in flags, "answered": ANSWERED in flags and FORWARDED not in flags,
            "forwarded": FORWARDED in flags}


def text_to_html(text: str) -> str:
    """Plain text as HTML paragraphs: escaped, blank lines between paragraphs, line breaks kept."""
    body = "\n".join(line.rstrip(" \t") for line in html.escape(text).replace("\r\n", "\n").strip().split("\n"))
    body = re.sub(r"\n\n+", "</p><p>", body.strip()).replace("\n", "<br/>")
    return f"<p>{body}</p>"


def make_intro(text: str) -> str:
    """The first words of ``text`` (at most 128 characters, cut at a space, with an ellipsis): quoted lines,
    lines of one repeated character and bracketed link labels left out, white space collapsed."""
    intro = re.sub(r"\[[^\]]*\]", " ", text[:INTRO_SOURCE])
    intro = re.sub(r"^>.*$", "", intro, flags=re.M)
    intro = re.sub(r"^\s*(.)\1+\s*$", "", intro, flags=re.M)
    intro = " ".join(intro.split())
    if len(intro) > INTRO_LENGTH:
        intro = intro[:INTRO_LENGTH]
        space = intro.rfind(" ")
        if space > 0:
            intro = intro[:space]
        intro += "…"
    return intro


class _Enough(Exception):
    """Raised by :class:`_TextStart` once the start of the text is final."""


class _TextStart(mimetext._HTMLText):
    """``html_to_text``'s parser, stopping (:class:`_Enough`) once its text holds a character other than white space
    beyond ``length``: everything up to such a character is final, since later markup only appends to the text and
    the rules applied to the whole (runs of spaces and tabs made one, white space stripped at both ends) cannot
    change anything before it. The parser sees the same markup and makes the same calls as ``html_to_text``'s up to
    that point, so the start is exactly the start of the whole conversion."""

    def __init__(self, length: int) -> None:
        super().__init__()
        self.length = length
        self.gathered = 0
        self.check_at = length + 1
        self.start = ""

    def handle_data(self, data: str) -> None:
        super().handle_data(data)
        if not self.skip:
            self.gathered += len(data)
            if self.gathered >= self.check_at:
                text = re.sub(r"[ \t]+", " ", "".join(self.parts)).lstrip()
                if text[self.length + 1:].strip():
                    self.start = text
                    raise _Enough
                self.check_at = self.gathered + max(512, self.gathered // 2)


def text_start(markup: str, length: int) -> str:
    """The start of ``mimetext.html_to_text(markup)``, exact for at least its first ``length`` characters (the
    whole text when it is shorter), without converting the rest: an intro needs 2 KiB of a message's text, and
    converting a long HTML body whole for it was most of a listing's time."""
    parser = _TextStart(length)
    try:
        parser.feed(markup)
        parser.close()
    except _Enough:
        return parser.start
    except (AssertionError, ValueError):  # pathological markup: html_to_text keeps what was gathered
        pass
    return re.sub(r"[ \t]+", " ", "".join(parser.parts)).strip()


# -- addresses and headers ---------------------------------------------------------------------------------------

def _text(value: bytes | None) -> str:
    return headers.normalize_space(headers.decode_words(value)) if value else ""


def _address(a: headers.ParsedAddress) -> dict[str, Any]:
    local = a.mailbox.decode("utf-8", "replace") if a.mailbox else ""
    host = a.host.decode("utf-8", "replace") if a.host else ""
    if host.startswith("xn--") or ".xn--" in host:
        try:
            host = host.encode("ascii").decode("idna")
        except UnicodeError:
            pass
    return {"name": _text(a.name), "address": f"{local}@{host}" if host else local}


def addresses(values: Sequence[bytes]) -> list[dict[str, Any]]:
    """Address fields as WildDuck lists them: ``{"name", "address"}`` (names decoded, IDN domains in Unicode), a
    group as ``{"name", "group": [...]}``."""
    out: list[dict[str, Any]] = []
    group: list[dict[str, Any]] | None = None
    for value in values:
        for a in headers.parse_addresses(value):
            if a.group is not None:
                group = []
                out.append({"name": _text(a.group), "group": group})
            elif a.group_end:
                group = None
            elif a.mailbox is not None or a.name is not None:
                (out if group is None else group).append(_address(a))
    return out


def content_type_view(fields: headers.Fields) -> dict[str, Any] | None:
    """``{"value": "type/subtype", "params": {...}}`` of a Content-Type field (``params`` only when it has some),
    None when there is none."""
    ct = headers.parse_content_type(headers.get(fields, "content-type"))
    if ct is None:
        return None
    out: dict[str, Any] = {"value": f"{ct.type}/{ct.subtype}" if ct.subtype else ct.type}
    if ct.params.decoded:
        out["params"] = dict(ct.params.decoded)
    return out


def header_view(fields: headers.Fields) -> dict[str, Any]:
    """Every top-level header field parsed (``includeHeaders``): address fields as address lists, Content-Type as
    its view, other fields as their decoded text (a list when the field repeats)."""
    out: dict[str, Any] = {}
    for name in dict.fromkeys(key for key, _value in fields):
        values = headers.get_all(fields, name)
        if name in ADDRESS_HEADERS:
            out[name] = addresses(values)
        elif name == "content-type":
            out[name] = content_type_view(fields)
        else:
            decoded = [_text(v) for v in values]
            out[name] = decoded[0] if len(decoded) == 1 else decoded
    return out


def references(fields: headers.Fields) -> list[str]:
    return [r for value in headers.get_all(fields, "references") for r in _text(value).split() if r]


def list_info(fields: headers.Fields) -> dict[str, Any] | None:
    """``{"id": {name, address}, "unsubscribe": [...]}`` from List-ID / List-Unsubscribe, None for other mail."""
    list_id = headers.get(fields, "list-id")
    unsubscribe = headers.get(fields, "list-unsubscribe")
    if list_id is None and unsubscribe is None:
        return None
    out: dict[str, Any] = {}
    if list_id is not None:
        decoded = _text(list_id)
        m = re.search(r"<([^>]*)>", decoded)
        out["id"] = {"name": decoded[:m.start()].strip().strip('"') if m else "",
                     "address": m.group(1).strip() if m else decoded}
    if unsubscribe is not None:
        out["unsubscribe"] = [{"name": "", "address": v.strip()} for v in re.findall(r"<([^>]*)>", _text(unsubscribe))]
    return out


# -- the stored bytes ---------------------------------------------------------------------------------------------

class Source:
    """A stored message's bytes as its MIME tree needs them: header blocks and inline bodies from the skeleton
    (offsets of the original mapped onto it), a cut-out body from its blob when given."""

    def __init__(self, record: MessageRecord, blobs: Mapping[str, bytes] | None = None) -> None:
        self.record = record
        self.blobs = blobs or {}
        self._cuts = sorted(record.parts, key=lambda p: p.offset)
        self._ends = [p.offset + p.length for p in self._cuts]
        self._removed = list(accumulate(p.length for p in self._cuts))
        self._cut_at = {p.offset: p for p in self._cuts}

    def _pos(self, offset: int) -> int:
        """Where ``offset`` of the original message is in the skeleton (never inside a cut)."""
        i = bisect_right(self._ends, offset)
        return offset - (self._removed[i - 1] if i else 0)

    def fields(self, node: Node) -> list[tuple[str, bytes]]:
        cached = node.get(FIELDS_CACHE)
        if cached is None:
            cached = node[FIELDS_CACHE] = headers.fields(
                self.record.skeleton[self._pos(node["hs"]):self._pos(node["bs"])])
        return cached

    def cut(self, node: Node) -> StoredPart | None:
        """The blob that holds this leaf's body, if it was cut out."""
        part = self._cut_at.get(node["bs"])
        return part if part is not None and part.length == node["be"] - node["bs"] else None

    def body(self, node: Node) -> bytes | None:
        """The leaf's body as written (transfer-encoded); None when it is in a blob that was not loaded."""
        part = self.cut(node)
        if part is None:
            return self.record.skeleton[self._pos(node["bs"]):self._pos(node["be"])]
        stored = self.blobs.get(part.blob)
        return None if stored is None else materialize(stored, part.encoding)

    def decoded(self, node: Node) -> bytes | None:
        """The leaf's body with its transfer encoding undone (a blob stored decoded is used as it is)."""
        part = self.cut(node)
        if part is not None and part.encoding.get("kind") == "base64" and part.blob in self.blobs:
            return self.blobs[part.blob]
        raw = self.body(node)
        return None if raw is None else decode_transfer(raw, headers.transfer_encoding(self.fields(node)))


# -- the walk -------------------------------------------------------------------------------------------------------

@dataclass(slots=True)
class Attachment:
    id: str
    node: Node
    filename: str
    content_type: str
    disposition: str | None
    transfer_encoding: str
    cid: str | None
    related: bool
    size: int
    #: the blob holding it (its SHA-256 is the ``hash``); None for a body kept in the skeleton
    blob: str | None
    listed: bool

    def view(self) -> dict[str, Any]:
        encoded = self.size
        if self.transfer_encoding == "base64":
            encoded = math.ceil((self.size - (self.size // 78) * 2) / 4 * 3) if self.size > 0 else 0
        out: dict[str, Any] = {
            "id": self.id, "filename": self.filename, "contentType": self.content_type,
            "disposition": self.disposition or False, "transferEncoding": self.transfer_encoding,
            "cid": f"<{self.cid}>" if self.cid else None, "related": self.related,
            "sizeKb": math.ceil(encoded / 1024), "size": self.size,
        }
        if self.blob is not None:
            out = {"hash": self.blob, **out}
        return out


@dataclass(slots=True)
class Parsed:
    """What the walk found: numbered parts, text and HTML pieces (before links are resolved and HTML sanitized)."""

    numbered: list[Attachment] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    #: a text body that is in a blob which was not loaded
    missing: list[Node] = field(default_factory=list)

    @property
    def attachments(self) -> list[Attachment]:
        return [a for a in self.numbered if a.listed]

    def by_id(self, attachment_id: str) -> Attachment | None:
        return next((a for a in self.numbered if a.id == attachment_id), None)


_EXTENSIONS = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png", "image/gif": "gif",
               "text/plain": "txt", "text/html": "html", "text/calendar": "ics", "application/zip": "zip",
               "message/rfc822": "eml", "application/msword": "doc", "image/svg+xml": "svg"}


def _walk(source: Source, node: Node, alternative: bool, related: bool, out: Parsed, with_text: bool) -> None:
    typ, sub = node["ct"]
    content_type = f"{typ}/{sub}"
    alternative = alternative or content_type == "multipart/alternative"
    related = related or content_type == "multipart/related"
    leaf = "parts" not in node and "msg" not in node
    if leaf:
        fields = source.fields(node)
        disposition, disposition_params = headers.content_disposition(fields)
        inline_text = content_type in INLINE_TEXT and disposition in (None, "inline")
        size = node["be"] - node["bs"]
        if inline_text and size and with_text:
            _add_text(source, node, content_type, alternative, out)
        if size and (not inline_text or size > BIG_TEXT):
            _number(source, node, fields, content_type, disposition, disposition_params, related, size,
                    not inline_text, out)
    if "msg" in node:
        _walk(source, node["msg"], alternative, related, out, with_text)
    for child in node.get("parts", ()):
        _walk(source, child, alternative, related, out, with_text)


def _add_text(source: Source, node: Node, content_type: str, alternative: bool, out: Parsed) -> None:
    decoded = source.decoded(node)
    if decoded is None:
        out.missing.append(node)
        return
    fields = source.fields(node)
    _t, _s, params = headers.content_type(fields)
    if content_type == "text/html":
        markup = headers.decode_bytes(decoded, params.get("charset")).strip()
        out.html.append(markup)
        if not alternative:
            out.text.append(mimetext.html_to_text(markup))
        return
    if content_type == "text/plain":  # part_text undoes format=flowed; the body is decoded already
        shaped = {"hs": 0, "bs": 0, "be": len(decoded), "ct": node["ct"], FIELDS_CACHE: [
            (k, v) for k, v in fields if k != "content-transfer-encoding"]}
        plain = (mimetext.part_text(decoded, shaped) or "").strip()
    else:
        plain = headers.decode_bytes(decoded, params.get("charset")).replace("\r\n", "\n").strip()
    out.text.append(plain)
    if not alternative:
        out.html.append(text_to_html(plain))


def _number(source: Source, node: Node, fields: headers.Fields, content_type: str, disposition: str | None,
            disposition_params: Mapping[str, str], related: bool, size: int, listed: bool, out: Parsed) -> None:
    attachment_id = f"ATT{len(out.numbered) + 1:05d}"
    _t, _s, ct_params = headers.content_type(fields)
    filename = (disposition_params.get("filename") or ct_params.get("name") or "").strip()
    if not filename:
        filename = f"{attachment_id.lower()}.{_EXTENSIONS.get(content_type, 'bin')}"
    cid = _text(headers.get(fields, "content-id")).replace("<", "").replace(">", "").strip() or None
    part = source.cut(node)
    out.numbered.append(Attachment(attachment_id, node, filename, content_type, disposition,
                                   headers.transfer_encoding(fields), cid, related, size,
                                   part.blob if part is not None else None, listed))


def parse(source: Source, *, with_text: bool = True) -> Parsed:
    """Walk the message's MIME tree (see the module docstring)."""
    out = Parsed()
    _walk(source, source.record.mime_tree, False, False, out, with_text)
    return out


_CID = re.compile(r"\bcid:([^\s\"'<>)]+)", re.I)


def resolve_cid_links(markup: str, parsed: Parsed, link: Any = None) -> str:
    """``cid:`` references to numbered parts replaced by ``attachment:ATT00001`` (or ``link(id)`` when given)."""
    by_cid = {a.cid: a.id for a in parsed.numbered if a.cid}
    if not by_cid:  # nothing to link to: no need to look for references
        return markup

    def replace(m: re.Match[str]) -> str:
        found = by_cid.get(m.group(1))
        if found is None:
            return m.group(0)
        return str(link(found)) if link is not None else f"attachment:{found}"

    return _CID.sub(replace, markup)


# -- the views ------------------------------------------------------------------------------------------------------

def _common(record: MessageRecord, source: Source, parsed: Parsed) -> dict[str, Any]:
    fields = source.fields(record.mime_tree)
    senders = headers.get_all(fields, "from") or headers.get_all(fields, "sender")
    from_ = addresses(senders)
    return {
        "id": record.uid, "mailbox": record.mailbox_id, "thread": record.thread_id,
        "from": from_[0] if from_ else {"name": "", "address": ""},
        "to": addresses(headers.get_all(fields, "to")), "cc": addresses(headers.get_all(fields, "cc")),
        "bcc": addresses(headers.get_all(fields, "bcc")),
        "messageId": record.message_id or "", "subject": record.subject,
        "date": iso(record.header_date), "idate": iso(record.internal_date),
    }


def _content_type(fields: headers.Fields, out: dict[str, Any]) -> None:
    ct = content_type_view(fields)
    if ct is not None:
        out["contentType"] = ct
        if ct["value"] in ENCRYPTED_TYPES:
            out["encrypted"] = True


def listing_view(record: MessageRecord, source: Source, *, include_headers: bool = False) -> dict[str, Any]:
    """One entry of a message listing or search result, in WildDuck's shape."""
    parsed = parse(source)
    fields = source.fields(record.mime_tree)
    text = "\n".join(t for t in parsed.text if t.strip())
    intro_from = text_start("".join(parsed.html), INTRO_SOURCE) if parsed.html else text
    out = _common(record, source, parsed)
    out.update({
        "intro": make_intro(intro_from),
        "attachments": any(not a.related for a in parsed.attachments),
        "attachmentsList": [a.view() for a in parsed.attachments],
        "size": record.size, **flag_view(record.flags), "references": references(fields),
    })
    if include_headers:
        out["headers"] = header_view(fields)
    _content_type(fields, out)
    return out


def message_view(record: MessageRecord, source: Source, *, user_id: str, link: Any = None) -> dict[str, Any]:
    """The parsed message (``GET .../messages/:message``) in WildDuck's shape; ``html`` sanitized, ``cid:`` links
    resolved (to ``link(attachment id)`` when given, else ``attachment:ATT00001``)."""
    parsed = parse(source)
    fields = source.fields(record.mime_tree)
    out: dict[str, Any] = {"success": True}
    common = _common(record, source, parsed)
    out.update({"id": common.pop("id"), "mailbox": common.pop("mailbox"), "thread": common.pop("thread"),
                "user": user_id, "envelope": {"from": "", "rcpt": []}})
    reply_to = headers.get_all(fields, "reply-to")
    out["from"] = common.pop("from")
    if reply_to:
        out["replyTo"] = addresses(reply_to)
    out.update(common)
    info = list_info(fields)
    if info is not None:
        out["list"] = info
    text = "\n".join(t for t in parsed.text if t.strip()).replace("\r\n", "\n").strip()
    out.update({
        "size": record.size, **flag_view(record.flags),
        "html": [sanitize_html(resolve_cid_links(h, parsed, link)) for h in parsed.html if h.strip()],
        "text": resolve_cid_links(text, parsed, link),
        "attachments": [a.view() for a in parsed.attachments],
        "references": references(fields), "metaData": {},
    })
    _content_type(fields, out)
    return out


def text_blobs(source: Source) -> set[str]:
    """The blobs holding inline text bodies (cut out for their size): what :func:`message_view` and
    :func:`listing_view` need besides the record."""
    out = set()
    for node in leaves(source.record.mime_tree):
        typ, sub = node["ct"]
        if f"{typ}/{sub}" in INLINE_TEXT and (part := source.cut(node)) is not None and \
                headers.content_disposition(source.fields(node))[0] in (None, "inline"):
            out.add(part.blob)
    return out


# -- reading ----------------------------------------------------------------------------------------------------------

class MessageReader:
    """Reads records and the blobs a view needs through the message service (one store call for the records,
    one for the blobs of them all)."""

    def __init__(self, messages: MessageService) -> None:
        self.messages = messages

    async def sources(self, mailbox_id: str, uids: Sequence[int], *, text: bool = True) -> list[Source]:
        """The messages of these UIDs that exist, in UID order, with the blobs of their text bodies (``text``)."""
        sources = [Source(r) for r in await self.messages.records(mailbox_id, uids, content=True)]
        needed = set().union(*(text_blobs(s) for s in sources)) if text and sources else set()
        if not needed:
            return sources
        blobs = await self.messages.blobs.get_blobs(needed)
        return [Source(s.record, blobs) for s in sources]

    async def with_blobs(self, source: Source, keys: set[str]) -> Source:
        """``source`` with these blobs loaded too."""
        missing = keys - set(source.blobs)
        if not missing:
            return source
        loaded = await self.messages.blobs.get_blobs(missing)
        return Source(source.record, {**source.blobs, **loaded})

