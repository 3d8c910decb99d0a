"""IMAP ENVELOPE data (RFC 3501 7.4.2) as JSON-able nested lists."""

from __future__ import annotations

from typing import Any

from wildduck.protocols.mime import headers
from wildduck.protocols.mime.jsonbytes import to_json
from wildduck.protocols.mime.tree import Node, node_fields


def _addresses(value: bytes | None) -> list[list[Any]] | None:
    """An address list as [[name, adl, mailbox, host], ...]; groups as RFC 3501 group markers; None if empty."""
    parsed = headers.parse_addresses(value)
    out: list[list[Any]] = []
    for a in parsed:
        if a.group_end:
            out.append([None, None, None, None])
        elif a.group is not None:
            out.append([None, None, to_json(a.group), None])
        elif a.mailbox is not None or a.host is not None:
            out.append([to_json(a.name) if a.name else None, to_json(a.route), to_json(a.mailbox or b""),
                        to_json(a.host) if a.host is not None else None])
    return out or None


def _text(value: bytes | None) -> Any:
    return to_json(value.strip()) if value is not None else None


def envelope_of_fields(f: list[tuple[str, bytes]]) -> list[Any]:
    """[date, subject, from, sender, reply-to, to, cc, bcc, in-reply-to, message-id]; sender and reply-to default
    to from; strings are the unfolded header values, not decoded (clients decode RFC 2047 themselves)."""
    frm = _addresses(headers.get(f, "from"))
    sender = _addresses(headers.get(f, "sender")) or frm
    reply_to = _addresses(headers.get(f, "reply-to")) or frm
    return [
        _text(headers.get(f, "date")),
        _text(headers.get(f, "subject")),
        frm,
        sender,
        reply_to,
        _addresses(headers.get(f, "to")),
        _addresses(headers.get(f, "cc")),
        _addresses(headers.get(f, "bcc")),
        _text(headers.get(f, "in-reply-to")),
        _text(headers.get(f, "message-id")),
    ]


def envelope(buf: bytes, node: Node) -> list[Any]:
    """The ENVELOPE of the entity ``node`` (the root for a message, ``msg`` of a message/rfc822 part)."""
    return envelope_of_fields(node_fields(buf, node))
