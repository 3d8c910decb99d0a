"""Building an RFC 5322 message from structured fields (the API's message upload from JSON), the way WildDuck's
composer shapes one: text and HTML (text made from the HTML when only HTML is given) as multipart/alternative,
images referenced by ``cid:`` from the HTML in multipart/related with it, other attachments in multipart/mixed;
Bcc kept (the message is stored, not sent).

Built with the standard library's ``email`` package (``policy.SMTP``: CRLF line ends; ``SMTPUTF8`` when an address
is not ASCII, so that an internationalized address is written as UTF-8, never as encoded words).
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage

from wildduck.errors import InvalidInput
from wildduck.protocols.mime.text import html_to_text

#: a header name: printable ASCII without the colon
_HEADER_NAME = re.compile(r"[!-9;-~]+")


@dataclass(frozen=True, slots=True)
class Mailbox:
    address: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class NewAttachment:
    content: bytes
    filename: str | None = None
    content_type: str = "application/octet-stream"
    #: Content-ID without the angle brackets (an image the HTML shows as ``cid:...``)
    cid: str | None = None
    #: "inline" or "attachment" (default: inline for an image referenced by the HTML, else attachment)
    disposition: str | None = None


@dataclass(slots=True)
class Composition:
    from_: Mailbox | None = None
    to: Sequence[Mailbox] = ()
    cc: Sequence[Mailbox] = ()
    bcc: Sequence[Mailbox] = ()
    reply_to: Mailbox | None = None
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    #: more header fields, in order: (name, value)
    headers: Sequence[tuple[str, str]] = ()
    attachments: Sequence[NewAttachment] = field(default_factory=list)
    date: dt.datetime | None = None


def _address(mailbox: Mailbox, field_name: str) -> Address:
    local, at, domain = mailbox.address.rpartition("@")
    if not at or not local or not domain or any(c.isspace() or c in "<>,;\"" for c in mailbox.address):
        raise InvalidInput(f'"{field_name}.address" must be a valid email', field_name)
    try:
        return Address(display_name=mailbox.name, username=local, domain=domain)
    except (ValueError, IndexError, TypeError):
        raise InvalidInput(f'"{field_name}.address" must be a valid email', field_name) from None


def _type(content_type: str, field_name: str) -> tuple[str, str]:
    main, slash, sub = content_type.strip().lower().partition("/")
    if not slash or not re.fullmatch(r"[a-z0-9!#$&^_.+-]+", main) or not re.fullmatch(r"[a-z0-9!#$&^_.+-]+", sub):
        raise InvalidInput(f'"{field_name}" must be a MIME type', field_name)
    return main, sub


def compose(c: Composition, *, hostname: str = "localhost") -> bytes:
    """The message as bytes (CRLF line ends). InvalidInput names the field for a bad address, header or type."""
    every = [m for m in (c.from_, c.reply_to, *c.to, *c.cc, *c.bcc) if m is not None]
    utf8 = any(not m.address.isascii() for m in every)
    msg = EmailMessage(policy=email.policy.SMTPUTF8 if utf8 else email.policy.SMTP)
    for name, value in (("From", [c.from_] if c.from_ else []), ("Reply-To", [c.reply_to] if c.reply_to else []),
                        ("To", c.to), ("Cc", c.cc), ("Bcc", c.bcc)):
        if value:
            key = name.lower().replace("-", "")
            msg[name] = [_address(m, "replyTo" if key == "replyto" else key) for m in value]
    if c.subject:
        msg["Subject"] = c.subject
    msg["Date"] = email.utils.format_datetime(c.date or dt.datetime.now(dt.UTC))
    msg["Message-ID"] = email.utils.make_msgid(domain=hostname)
    for key, text_value in c.headers:
        if not _HEADER_NAME.fullmatch(key) or "\r" in text_value or "\n" in text_value:
            raise InvalidInput('"headers" must be header names and values without line breaks', "headers")
        if key.lower() in ("content-type", "content-transfer-encoding", "mime-version"):
            continue
        if key in msg:
            del msg[key]
        msg[key] = text_value
    text = c.text if c.text is not None or c.html is None else html_to_text(c.html)
    related = [a for a in c.attachments if a.cid and c.html and f"cid:{a.cid}" in c.html]
    if text is not None and c.html is not None:
        msg.set_content(text)
        msg.add_alternative(c.html, subtype="html")
    elif c.html is not None:
        msg.set_content(c.html, subtype="html")
    elif text is not None or not c.attachments:
        msg.set_content(text or "")
    if related:
        html_part = msg.get_body(("html",))
        assert html_part is not None
        for a in related:
            main, sub = _type(a.content_type, "attachments.contentType")
            html_part.add_related(a.content, maintype=main, subtype=sub, cid=f"<{a.cid}>", filename=a.filename,
                                  disposition=a.disposition or "inline")
    for a in c.attachments:
        if a in related:
            continue
        main, sub = _type(a.content_type, "attachments.contentType")
        if a.cid:
            msg.add_attachment(a.content, maintype=main, subtype=sub, filename=a.filename, cid=f"<{a.cid}>",
                               disposition=a.disposition or "attachment")
        else:
            msg.add_attachment(a.content, maintype=main, subtype=sub, filename=a.filename,
                               disposition=a.disposition or "attachment")
    if "MIME-Version" not in msg:
        msg["MIME-Version"] = "1.0"
    return msg.as_bytes()
