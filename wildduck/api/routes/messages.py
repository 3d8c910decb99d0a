"""Messages: ``GET|POST|PUT|DELETE /users/:user/mailboxes/:mailbox/messages``, ``GET|PUT|DELETE
.../messages/:message``, ``.../messages/:message/message.eml`` and ``.../messages/:message/attachments/:attachment``.

A message is named as in WildDuck (and IMAP): by its UID in the mailbox (``:message`` is a number; the update
routes take WildDuck's selectors ``1,2,3``, ``3:15``, ``3:*``). Reads and writes go through the message service,
so that a change made here reaches IMAP and POP3 sessions (its nudge) like one of theirs.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import marshal
import re
from bisect import bisect_left, bisect_right
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import quote

import trio
from quart import Response, jsonify, request
from quart_trio import QuartTrio

from wildduck.api import schemas
from wildduck.api.context import Api
from wildduck.api.schemas import (
    BOOLEAN,
    DATE_TIME,
    FALSE,
    ID,
    INTEGER,
    MAX_UID,
    PAGING,
    STRING,
    TRUE,
    ApiError,
    Field,
    array_of,
    component,
    input_error,
    listing,
    nullable,
    obj,
    success,
    takes,
)
from wildduck.domain import composing
from wildduck.domain.messages import MessageService
from wildduck.domain.rendering import MessageReader, Source, flag_view, listing_view, message_view, parse
from wildduck.errors import InvalidInput, MessageTooLarge, NotFound, QuotaExceeded
from wildduck.model import FlagMode, Mailbox, MessageSummary, User
from wildduck.protocols.mime import headers

#: changes made through the API carry this origin in their nudges
ORIGIN = "api"
#: a page of messages whose sizes add up to more than this is rendered in a worker thread
INLINE_RENDER_LIMIT = 512 * 1024
_render_limiter = trio.CapacityLimiter(2)

#: listing cursors: the key is the position in the listing's order (date in ms, UID; complemented for ``desc``)
MESSAGE_KEY = re.compile(r"\d{15}\.\d{10}")
_MAX_MS = 10**15 - 1
#: milliseconds from 0001-01-01 to the epoch: a date's key counts from there, so that no key has a minus sign
EPOCH_MS = 62_135_596_800_000


def key_ms(when: dt.datetime) -> int:
    """A date as the non-negative milliseconds a listing key holds (15 digits for any date Python has)."""
    return int(when.timestamp() * 1000) + EPOCH_MS

LIST = {
    "unseen": Field("bool", empty_is_none=True),
    "metaData": Field("bool", default=False),
    "threadCounters": Field("bool", default=False),
    "includeHasDrafts": Field("bool", default=False),
    "collapseThreads": Field("bool", default=False),
    "order": Field(empty_is_none=True, default="desc"),
    "includeHeaders": Field("bool", default=False),
    **PAGING,
    "next": Field("cursor", empty_is_none=True, pattern=MESSAGE_KEY),
    "previous": Field("cursor", empty_is_none=True, pattern=MESSAGE_KEY),
}
GET = {"replaceCidLinks": Field("bool", default=False), "markAsSeen": Field("bool", default=False)}
ATTACHMENT = {"sendAsString": Field("bool", default=False)}
FLAG_FIELDS = {"seen": "\\Seen", "deleted": "\\Deleted", "flagged": "\\Flagged", "draft": "\\Draft"}
UPDATE = {
    "moveTo": Field("id"),
    **{name: Field("bool", empty_is_none=True) for name in FLAG_FIELDS},
    "markHam": Field("bool", default=False),
    "expires": Field(), "metaData": Field(),
}
UPDATE_MANY = {"message": Field("uids", required=True), **UPDATE}
DELETE_ALL = {"async": Field("bool", default=False), "skipArchive": Field("bool", default=False)}
#: WildDuck's options this release has no storage for: refused when given
UNSUPPORTED_UPDATE = ("expires", "metaData")
UNSUPPORTED_UPLOAD = ("files", "reference", "replacePrevious", "bimi", "metaData")
UPLOAD_FIELDS = {
    "date": Field("date"),
    "unseen": Field("bool", default=False),
    "flagged": Field("bool", default=False),
    "draft": Field("bool", default=False),
    "raw": Field(empty_is_none=True),
    "subject": Field(empty_is_none=True, max=2 * 1024),
    "text": Field(empty_is_none=True, max=1024 * 1024),
    "html": Field(empty_is_none=True, max=1024 * 1024),
}
#: structured upload fields, checked by :func:`_composition`
UPLOAD_STRUCTURED = ("from", "replyTo", "to", "cc", "bcc", "headers", "attachments", *UNSUPPORTED_UPLOAD)
#: how the OpenAPI document describes the structured upload fields (each checked by the route)
_ADDRESS = {"type": "object", "properties": {"name": {"type": "string"}, "address": {"type": "string"}},
            "required": ["address"]}
UPLOAD_OTHERS: dict[str, dict[str, Any]] = {
    "from": _ADDRESS, "replyTo": _ADDRESS,
    **{name: {"type": "array", "items": _ADDRESS} for name in ("to", "cc", "bcc")},
    "headers": {"type": "array", "items": {"type": "object", "properties": {
        "key": {"type": "string"}, "value": {"type": "string"}}, "required": ["key", "value"]}},
    "attachments": {"type": "array", "items": {"type": "object", "properties": {
        "filename": {"type": "string"}, "contentType": {"type": "string"}, "encoding": {"type": "string"},
        "contentTransferEncoding": {"type": "string"}, "cid": {"type": "string"},
        "content": {"type": "string"}}, "required": ["content"]}},
    **{name: {"description": "not supported by this server"} for name in UNSUPPORTED_UPLOAD},
}
# -- what the message routes answer (the views of ``wildduck.domain.rendering``) -----------------------------------

_COUNT = {"type": "integer", "minimum": 0}
ADDRESS = component("Address", obj({"name": STRING, "address": STRING}))
#: an address field's entry: an address, or a group of them (``undisclosed-recipients: ;``)
ADDRESS_ENTRY = component("AddressEntry", {"anyOf": [ADDRESS, obj({"name": STRING, "group": array_of(ADDRESS)})]})
CONTENT_TYPE = component("ContentType", obj({"value": STRING, "params": {"type": "object",
                                                                        "additionalProperties": STRING}},
                                            optional=("params",)))
ATTACHMENT_VIEW = component("Attachment", obj({
    "hash": {"type": "string", "description": "the SHA-256 of the stored body (when kept apart)"},
    "id": {"type": "string", "pattern": "^ATT\\d+$"}, "filename": STRING, "contentType": STRING,
    "disposition": {"anyOf": [STRING, FALSE]}, "transferEncoding": STRING, "cid": nullable(STRING),
    "related": BOOLEAN, "sizeKb": _COUNT, "size": _COUNT,
}, optional=("hash",)))
FLAGS_VIEW = {name: BOOLEAN for name in ("seen", "deleted", "flagged", "draft", "answered", "forwarded")}
#: ``includeHeaders``: every top-level header field (addresses parsed, Content-Type as its view, else text)
HEADERS_VIEW = {"type": "object", "additionalProperties": {"anyOf": [
    STRING, array_of(STRING), array_of(ADDRESS_ENTRY), CONTENT_TYPE, {"type": "null"}]}}
_COMMON_VIEW = {
    "id": {"type": "integer", "minimum": 1}, "mailbox": ID, "thread": ID, "from": ADDRESS_ENTRY,
    "to": array_of(ADDRESS_ENTRY), "cc": array_of(ADDRESS_ENTRY), "bcc": array_of(ADDRESS_ENTRY),
    "messageId": STRING, "subject": STRING, "date": nullable(DATE_TIME), "idate": DATE_TIME,
}
LISTED_MESSAGE = component("ListedMessage", obj({
    **_COMMON_VIEW, "intro": STRING, "attachments": BOOLEAN, "attachmentsList": array_of(ATTACHMENT_VIEW),
    "size": _COUNT, **FLAGS_VIEW, "references": array_of(STRING), "headers": HEADERS_VIEW,
    "contentType": CONTENT_TYPE, "encrypted": TRUE, "threadMessageCount": {"type": "integer", "minimum": 1},
}, optional=("headers", "contentType", "encrypted", "threadMessageCount")))
MESSAGE_VIEW = component("Message", obj({
    "success": TRUE, "user": ID,
    "envelope": obj({"from": STRING, "rcpt": array_of({"type": "object"})}),
    **_COMMON_VIEW, "replyTo": array_of(ADDRESS_ENTRY),
    "list": obj({"id": ADDRESS, "unsubscribe": array_of(ADDRESS)}, optional=("id", "unsubscribe")),
    "size": _COUNT, **FLAGS_VIEW, "html": array_of(STRING), "text": STRING,
    "attachments": array_of(ATTACHMENT_VIEW), "references": array_of(STRING), "metaData": {"type": "object"},
    "contentType": CONTENT_TYPE, "encrypted": TRUE,
}, optional=("replyTo", "list", "contentType", "encrypted")))
LISTING_ANSWER = listing(LISTED_MESSAGE, {"specialUse": nullable(STRING)})
UPDATE_ANSWER = {"anyOf": [
    success({"updated": _COUNT}),
    success({"mailbox": ID, "id": array_of({"type": "array", "items": INTEGER, "minItems": 2, "maxItems": 2,
                                            "description": "[UID here, UID in the target mailbox]"})}),
]}
DELETE_ALL_ANSWER = success({"deleted": _COUNT, "errors": _COUNT})
UPLOAD_ANSWER = success({"message": obj({"id": {"type": "integer", "minimum": 1}, "mailbox": ID, "size": _COUNT})})

#: attachments that would run scripts if a browser rendered them from the API's origin are always downloads
ACTIVE_TYPES = frozenset({"text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml",
                          "text/javascript", "application/javascript"})


#: stored content is served so that a browser never runs it: no type sniffing, a sandbox with no scripts
SANDBOX = {"X-Content-Type-Options": "nosniff",
           "Content-Security-Policy": "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"}


def not_found(message: str = "This message does not exist") -> ApiError:
    return ApiError(404, "MessageNotFound", message)


def _unsupported(values: dict[str, Any], names: Sequence[str]) -> None:
    bad = {k: f'"{k}" is not supported by this server' for k in names if values.get(k) not in (None, False, "")}
    if bad:
        raise input_error(bad)


def _message_uid(value: str) -> int:
    if not re.fullmatch(r"[0-9]{1,10}", value) or not 1 <= int(value) <= MAX_UID:
        raise input_error({"message": '"message" must be a number'})
    return int(value)


def _listing_key(summary: MessageSummary, descending: bool) -> str:
    ms = key_ms(summary.internal_date)
    if descending:
        return f"{_MAX_MS - ms:015d}.{MAX_UID - summary.uid:010d}"
    return f"{ms:015d}.{summary.uid:010d}"


def _page(keys: list[str], items: list[MessageSummary], params: dict[str, Any]) -> dict[str, Any]:
    """:func:`schemas.page_of` over ``items`` already in listing order with their ``keys``: the same page, found by
    bisection instead of a scan of every key."""
    limit: int = params["limit"]
    start = 0
    cursor = params.get("next") or params.get("previous")
    if cursor is not None:
        direction, key = cursor
        start = bisect_right(keys, key) if direction == "n" else max(0, bisect_left(keys, key) - limit)
    chunk = items[start:start + limit]
    after = start + len(chunk)
    return {
        "total": len(items),
        "page": params["page"],
        "previousCursor": schemas.encode_cursor("p", keys[start]) if start > 0 and chunk else False,
        "nextCursor": schemas.encode_cursor("n", keys[after - 1]) if after < len(items) and chunk else False,
        "results": chunk,
    }


#: the listing orders kept per process (see :class:`ListingOrders`), in messages over all kept mailboxes
LISTING_CACHE_MESSAGES = 500_000


class ListingOrders:
    """Per process, the messages of recently listed mailboxes in listing order with their keys, as of the
    mailbox's UIDVALIDITY and HIGHESTMODSEQ. Every change to a mailbox's messages (append, expunge, move in or out,
    a flag) raises its HIGHESTMODSEQ in the transaction that journals it, and the summaries are read after the
    mailbox record, so a kept listing is never older than the record it is kept for: a request that reads the same
    pair reuses it, any other pair reads the summaries again (changes by other processes too). Least recently listed
    dropped first; a mailbox bigger than the whole budget is not kept."""

    def __init__(self, limit: int = LISTING_CACHE_MESSAGES) -> None:
        self.limit = limit
        self.size = 0
        self.kept: OrderedDict[tuple[str, bool], tuple[tuple[int, int], list[str], list[MessageSummary]]] = \
            OrderedDict()

    async def of(self, messages: MessageService, mailbox: Mailbox,
                 descending: bool) -> tuple[list[str], list[MessageSummary]]:
        """The mailbox's messages sorted by their listing keys (ascending), and the keys."""
        name = (mailbox.id, descending)
        version = (mailbox.uid_validity, mailbox.highest_modseq)
        found = self.kept.get(name)
        if found is not None and found[0] == version:
            self.kept.move_to_end(name)
            return found[1], found[2]
        pairs = sorted(((_listing_key(s, descending), s) for s in await messages.summaries(mailbox.id)),
                       key=lambda pair: pair[0])
        keys, items = [k for k, _s in pairs], [s for _k, s in pairs]
        old = self.kept.pop(name, None)
        if old is not None:
            self.size -= len(old[2])
        if len(items) <= self.limit:
            self.kept[name] = (version, keys, items)
            self.size += len(items)
            while self.size > self.limit:
                _name, (_version, _keys, dropped) = self.kept.popitem(last=False)
                self.size -= len(dropped)
        return keys, items


#: listing entries kept rendered per process (see :class:`ListingViews`)
LISTING_VIEW_CACHE = 20_000


class ListingViews:
    """Per process, the listing entries rendered lately (``listing_view``), by mailbox, UID and stored message id:
    everything in an entry but its flags is fixed for a stored message (a UID is never reused), so a cached entry
    is served with the flags of the summary it is listed from. Webmails list the same pages over and over (the
    first page after every change, back and forth); an entry costs a record read and a MIME walk with an HTML
    conversion for its intro. At most :data:`LISTING_VIEW_CACHE` entries, least recently listed dropped first.
    Entries are kept marshalled: one bytes object each instead of some twenty dicts and lists, which the garbage
    collector would otherwise walk in every full collection (10,000 entries as objects made one take 2.5 times as
    long, about 120 ms, a pause of the event loop)."""

    def __init__(self, limit: int = LISTING_VIEW_CACHE) -> None:
        self.limit = limit
        self.kept: OrderedDict[tuple[str, int, str, bool], bytes] = OrderedDict()

    def get(self, mailbox_id: str, summary: MessageSummary, include_headers: bool) -> dict[str, Any] | None:
        name = (mailbox_id, summary.uid, summary.id, include_headers)
        found = self.kept.get(name)
        if found is None:
            return None
        self.kept.move_to_end(name)
        view: dict[str, Any] = marshal.loads(found)
        view.update(flag_view(summary.flags))
        return view

    def put(self, mailbox_id: str, summary: MessageSummary, include_headers: bool, view: dict[str, Any]) -> None:
        try:
            kept = marshal.dumps(view)
        except ValueError:  # not plain data: not kept
            return
        self.kept[(mailbox_id, summary.uid, summary.id, include_headers)] = kept
        while len(self.kept) > self.limit:
            self.kept.popitem(last=False)


def _range_uids(ranges: list[tuple[int, int]], uids: Sequence[int]) -> list[int]:
    return [u for u in uids if any(lo <= u <= hi for lo, hi in ranges)]


async def render_views(sources: list[Source], render: Any) -> list[dict[str, Any]]:
    """``render(source)`` for each source, in a worker thread when the messages are big."""
    if sum(s.record.size for s in sources) <= INLINE_RENDER_LIMIT:
        return [render(s) for s in sources]
    return await trio.to_thread.run_sync(lambda: [render(s) for s in sources], limiter=_render_limiter)


async def apply_flags(messages: MessageService, mailbox: Mailbox, uids: Sequence[int], values: dict[str, Any]) -> None:
    """Set or clear the flags WildDuck's booleans name (``seen``, ``deleted``, ``flagged``, ``draft``)."""
    for mode in (FlagMode.ADD, FlagMode.REMOVE):
        flags = [flag for name, flag in FLAG_FIELDS.items() if values.get(name) is (mode is FlagMode.ADD)]
        if flags:
            await messages.set_flags(mailbox, uids, mode, flags, origin=ORIGIN)


def _mailboxes_of(params: dict[str, Any], name: str) -> list[composing.Mailbox]:
    value = params.get(name)
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, str):
            item = {"address": item}
        if not isinstance(item, dict) or not isinstance(item.get("address"), str) or \
                not isinstance(item.get("name", ""), str) or set(item) - {"name", "address"}:
            raise input_error({name: f'"{name}" must be an address object ({{"name", "address"}}) or a list of them'})
        if len(item.get("name") or "") > 255:
            raise input_error({name: f'"{name}.name" length must be less than or equal to 255 characters long'})
        out.append(composing.Mailbox(item["address"].strip(), (item.get("name") or "").strip()))
    return out


def _attachments_of(params: dict[str, Any]) -> list[composing.NewAttachment]:
    value = params.get("attachments") or []
    if not isinstance(value, list):
        raise input_error({"attachments": '"attachments" must be an array'})
    allowed = {"filename", "contentType", "encoding", "contentTransferEncoding", "content", "cid",
               "contentDisposition"}
    out = []
    for i, item in enumerate(value):
        field = f"attachments.{i}"
        if not isinstance(item, dict) or set(item) - allowed or any(
                v is not None and not isinstance(v, str) for v in item.values()):
            raise input_error({field: f'"{field}" must be an object of strings ({", ".join(sorted(allowed))})'})
        content = item.get("content")
        if content is None:
            raise input_error({f"{field}.content": f'"{field}.content" is required'})
        encoding = (item.get("encoding") or "base64").lower()
        if encoding == "base64":
            try:
                data = base64.b64decode(content, validate=False)
            except (binascii.Error, ValueError):
                raise input_error({f"{field}.content": f'"{field}.content" must be base64'}) from None
        else:
            data = content.encode("utf-8")
        disposition = (item.get("contentDisposition") or "").strip().lower() or None
        if disposition not in (None, "inline", "attachment"):
            raise input_error({f"{field}.contentDisposition":
                               f'"{field}.contentDisposition" must be one of [inline, attachment]'})
        out.append(composing.NewAttachment(
            data, item.get("filename") or None, item.get("contentType") or "application/octet-stream",
            (item.get("cid") or "").strip("<> ") or None, disposition))
    return out


def _headers_of(params: dict[str, Any]) -> list[tuple[str, str]]:
    value = params.get("headers") or []
    if not isinstance(value, list) or not all(
            isinstance(h, dict) and isinstance(h.get("key"), str) and isinstance(h.get("value", ""), str)
            for h in value):
        raise input_error({"headers": '"headers" must be an array of {"key", "value"} objects'})
    return [(h["key"], h.get("value", "")) for h in value if h["key"]]


def _content_disposition(disposition: str, filename: str) -> str:
    """A Content-Disposition with the filename as an ASCII fallback and in RFC 6266's UTF-8 form."""
    fallback = re.sub(r'[^\x20-\x7e]|["\\]', "_", filename) or "attachment"
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def register(app: QuartTrio, api: Api) -> None:
    sv = api.services
    messages: MessageService = sv.messages
    reader = MessageReader(messages)
    listings = ListingOrders()
    listed = ListingViews()

    async def target(user_id: str, mailbox_id: str) -> tuple[User, Mailbox]:
        user = await api.target_user(user_id)
        return user, await api.mailbox_of(user, mailbox_id)

    async def one(mailbox: Mailbox, uid: int, *, text: bool = True) -> Source:
        found = await reader.sources(mailbox.id, [uid], text=text)
        if not found:
            raise not_found()
        return found[0]

    async def matching(mailbox: Mailbox, ranges: list[tuple[int, int]]) -> list[int]:
        """The UIDs of the mailbox that a selector names."""
        if all(lo == hi for lo, hi in ranges):
            return [r.uid for r in await messages.records(mailbox.id, [lo for lo, _hi in ranges], content=False)]
        return _range_uids(ranges, [s.uid for s in await messages.summaries(mailbox.id)])

    # -- reading --------------------------------------------------------------------------------------------------

    @app.get("/users/<user_id>/mailboxes/<mailbox_id>/messages")
    @takes(LIST, returns=LISTING_ANSWER)
    async def list_messages(user_id: str, mailbox_id: str) -> Response:
        values = await api.values()
        if values["order"] not in ("asc", "desc"):
            raise input_error({"order": '"order" must be one of [asc, desc]'})
        _user, mailbox = await target(user_id, mailbox_id)
        descending = values["order"] == "desc"
        keys, found = await listings.of(messages, mailbox, descending)
        every = found
        if values.get("unseen") is not None:
            chosen = [i for i, s in enumerate(found) if ("\\Seen" in s.flags) != values["unseen"]]
            keys, found = [keys[i] for i in chosen], [found[i] for i in chosen]
        page = _page(keys, found, values)
        include = values["includeHeaders"]
        chunk: list[MessageSummary] = page["results"]
        views = [listed.get(mailbox.id, s, include) for s in chunk]
        missing = [s for s, view in zip(chunk, views, strict=True) if view is None]
        if missing:
            sources = {s.record.uid: s for s in await reader.sources(mailbox.id, [s.uid for s in missing])}
            rendered = await render_views([sources[s.uid] for s in missing if s.uid in sources],
                                          lambda s: listing_view(s.record, s, include_headers=include))
            fresh = {view["id"]: view for view in rendered}
            for s in missing:
                if s.uid in fresh and sources[s.uid].record.id == s.id:
                    listed.put(mailbox.id, s, include, fresh[s.uid])
            views = [fresh.get(s.uid) if view is None else view for s, view in zip(chunk, views, strict=True)]
        results = [view for view in views if view is not None]
        if values["threadCounters"]:  # the thread's messages in this mailbox (from the listing kept in memory)
            counts = Counter(s.thread_id for s in every)
            for view in results:
                view["threadMessageCount"] = counts[view["thread"]]
        return jsonify({"success": True, "total": page["total"], "page": page["page"],
                        "previousCursor": page["previousCursor"], "nextCursor": page["nextCursor"],
                        "specialUse": mailbox.special_use, "results": results})

    @app.get("/users/<user_id>/mailboxes/<mailbox_id>/messages/<message_id>")
    @takes(GET, returns=MESSAGE_VIEW)
    async def get_message(user_id: str, mailbox_id: str, message_id: str) -> Response:
        values = await api.values()
        uid = _message_uid(message_id)
        user, mailbox = await target(user_id, mailbox_id)
        source = await one(mailbox, uid)
        if values["markAsSeen"] and "\\Seen" not in source.record.flags:
            await messages.mark_seen(mailbox, [uid], origin=ORIGIN)
            source = await one(mailbox, uid)
        link = None
        if values["replaceCidLinks"]:
            base = f"/users/{user.id}/mailboxes/{mailbox.id}/messages/{uid}/attachments/"
            def link(attachment_id: str) -> str:
                return base + attachment_id
        (view,) = await render_views([source], lambda s: message_view(s.record, s, user_id=user.id, link=link))
        return jsonify(view)

    @app.get("/users/<user_id>/mailboxes/<mailbox_id>/messages/<message_id>/message.eml")
    @takes({}, produces="message/rfc822")
    async def message_source(user_id: str, mailbox_id: str, message_id: str) -> Response:
        await api.values()
        uid = _message_uid(message_id)
        _user, mailbox = await target(user_id, mailbox_id)
        try:
            opened = await messages.open_message(mailbox.id, uid)
        except NotFound:
            raise not_found() from None

        async def body() -> AsyncIterator[bytes]:
            for chunk in opened.iter_content(chunk_size=256 * 1024):
                yield chunk
                await trio.lowlevel.checkpoint()

        return Response(body(), status=200, mimetype="message/rfc822",
                        headers={"Content-Length": str(opened.record.size), **SANDBOX})

    @app.get("/users/<user_id>/mailboxes/<mailbox_id>/messages/<message_id>/attachments/<attachment_id>")
    @takes(ATTACHMENT, produces="*/*")  # the attachment's own Content-Type
    async def get_attachment(user_id: str, mailbox_id: str, message_id: str, attachment_id: str) -> Response:
        values = await api.values()
        uid = _message_uid(message_id)
        if not re.fullmatch(r"ATT\d+", attachment_id, re.I):
            raise input_error({"attachment": f'"attachment" with value "{attachment_id}" fails to match the '
                                             "required pattern: /^ATT\\d+$/i"})
        _user, mailbox = await target(user_id, mailbox_id)
        source = await one(mailbox, uid, text=False)
        attachment = parse(source, with_text=False).by_id(attachment_id.upper())
        if attachment is None:
            raise ApiError(404, "AttachmentNotFound", "This attachment does not exist")
        if attachment.blob is not None:
            source = await reader.with_blobs(source, {attachment.blob})
        data = source.decoded(attachment.node) or b""
        kind = attachment.content_type
        disposition = attachment.disposition if attachment.disposition in ("inline", "attachment") else "attachment"
        if kind in ACTIVE_TYPES:
            disposition = "attachment"
        charset = headers.content_type(source.fields(attachment.node))[2].get("charset")
        if values["sendAsString"] and charset and not re.fullmatch(r"(us-)?ascii|utf[-_]?8", charset, re.I):
            data, charset = headers.decode_bytes(data, charset).encode("utf-8"), "utf-8"  # WildDuck's sendAsString
        mimetype = f"{kind}; charset={charset}" if charset and kind.startswith("text/") else kind
        return Response(data, status=200, headers={
            "Content-Type": mimetype,
            "Content-Disposition": _content_disposition(disposition, attachment.filename),
            **SANDBOX,
        })

    # -- changing -------------------------------------------------------------------------------------------------

    async def update(user_id: str, mailbox_id: str, values: dict[str, Any]) -> Response:
        _unsupported(values, UNSUPPORTED_UPDATE)
        user, mailbox = await target(user_id, mailbox_id)
        moving_to = await api.mailbox_of(user, values["moveTo"], "moveTo") if "moveTo" in values else None
        uids = await matching(mailbox, values["message"])
        if not uids:
            raise not_found("Could not move message, check if message exists" if moving_to is not None
                            else "No message matched query")
        await apply_flags(messages, mailbox, uids, values)
        if moving_to is not None:
            pairs = await messages.move(mailbox, uids, moving_to, origin=ORIGIN)
            if not pairs:
                raise not_found("Could not move message, check if message exists")
            return jsonify({"success": True, "mailbox": moving_to.id, "id": [list(p) for p in pairs]})
        return jsonify({"success": True, "updated": len(uids)})

    @app.put("/users/<user_id>/mailboxes/<mailbox_id>/messages/<message_id>")
    @takes(UPDATE_MANY, from_path=("message",), returns=UPDATE_ANSWER)
    async def update_one(user_id: str, mailbox_id: str, message_id: str) -> Response:
        values = await api.values({**await api.params(), "message": message_id})
        return await update(user_id, mailbox_id, values)

    @app.put("/users/<user_id>/mailboxes/<mailbox_id>/messages")
    @takes(UPDATE_MANY, returns=UPDATE_ANSWER)
    async def update_many(user_id: str, mailbox_id: str) -> Response:
        return await update(user_id, mailbox_id, await api.values())

    @app.delete("/users/<user_id>/mailboxes/<mailbox_id>/messages/<message_id>")
    @takes({}, returns=success())
    async def delete_message(user_id: str, mailbox_id: str, message_id: str) -> Response:
        await api.values()
        uid = _message_uid(message_id)
        _user, mailbox = await target(user_id, mailbox_id)
        if not await messages.expunge(mailbox, [uid], origin=ORIGIN):
            raise not_found("Message was not found")
        return jsonify({"success": True})

    @app.delete("/users/<user_id>/mailboxes/<mailbox_id>/messages")
    @takes(DELETE_ALL, returns=DELETE_ALL_ANSWER)
    async def empty_mailbox(user_id: str, mailbox_id: str) -> Response:
        values = await api.values()
        if values["async"]:
            raise input_error({"async": '"async" is not supported by this server'})
        _user, mailbox = await target(user_id, mailbox_id)
        uids = [s.uid for s in await messages.summaries(mailbox.id)]
        removed = await messages.expunge(mailbox, uids, origin=ORIGIN) if uids else []
        return jsonify({"success": True, "deleted": len(removed), "errors": 0})

    @app.post("/users/<user_id>/mailboxes/<mailbox_id>/messages")
    @takes(UPLOAD_FIELDS, others=UPLOAD_OTHERS, raw_body="message/rfc822", returns=UPLOAD_ANSWER)
    async def upload(user_id: str, mailbox_id: str) -> Response:
        raw: bytes | None = None
        if request.mimetype == "message/rfc822":
            body = await request.get_data(as_text=False)
            raw = body if isinstance(body, bytes) else body.encode()
            params: dict[str, Any] = dict(request.args.items())
            params.pop("accessToken", None)
        else:
            params = await api.params()
        structured = {k: params.pop(k) for k in UPLOAD_STRUCTURED if k in params}
        values = await api.values(params)
        _unsupported(structured, UNSUPPORTED_UPLOAD)
        user, mailbox = await target(user_id, mailbox_id)
        if user.disabled:
            raise ApiError(403, "UserDisabled", "User account is disabled")
        if raw is None and values.get("raw") is not None:
            raw = values["raw"].encode("utf-8")  # WildDuck reads a JSON ``raw`` string as the message itself
        if raw is None:
            senders = _mailboxes_of(structured, "from")
            if not senders:  # WildDuck: the user's name and main address
                main = next((a for a in await sv.users.addresses(user) if a.main), None)
                senders = [composing.Mailbox(main.address, user.name)] if main is not None else []
            reply_to = _mailboxes_of(structured, "replyTo")
            draft = composing.Composition(
                from_=senders[0] if senders else None,
                to=[m for m in _mailboxes_of(structured, "to") if m.address],
                cc=_mailboxes_of(structured, "cc"), bcc=_mailboxes_of(structured, "bcc"),
                reply_to=reply_to[0] if reply_to else None, subject=values.get("subject"), text=values.get("text"),
                html=values.get("html"), headers=_headers_of(structured), attachments=_attachments_of(structured),
                date=values.get("date"))
            try:
                raw = composing.compose(draft)
            except InvalidInput as exc:
                field = exc.field or "message"
                raise input_error({field: str(exc)}) from None
        if not raw:
            raise ApiError(400, "EmptyMessage", "Empty message provided")
        flags = ([] if values["unseen"] else ["\\Seen"]) + (["\\Flagged"] if values["flagged"] else []) + \
            (["\\Draft"] if values["draft"] else [])
        try:
            stored = await messages.append(user, mailbox, raw, flags=flags, internal_date=values.get("date"),
                                           origin=ORIGIN)
        except QuotaExceeded:
            raise ApiError(400, "OverQuotaError", "User is over quota") from None
        except MessageTooLarge as exc:
            raise input_error({"raw": f'"raw" {exc}'}) from None
        except NotFound:
            raise ApiError(404, "NoSuchMailbox", "This mailbox does not exist") from None
        return jsonify({"success": True, "message": {"id": stored.uid, "mailbox": mailbox.id, "size": len(raw)}})
