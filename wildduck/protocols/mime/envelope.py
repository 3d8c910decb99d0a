"""IMAP ENVELOPE data (RFC 3501 7.4.2) as JSON-able nested lists.

Where RFC 3501 leaves room, this follows Dovecot: the last Date, Subject, In-Reply-To and Message-ID field counts,
the addresses of every From, Sender, Reply-To, To, Cc and Bcc field are joined; strings are the unfolded header
values as written (not decoded: clients decode RFC 2047 themselves). An address without a local part or a domain
reports ``MISSING_MAILBOX`` / ``MISSING_DOMAIN`` (a NIL host would mean a group), and ``SYNTAX_ERROR`` as domain
when its ``<`` is never closed. The serializer (``protocols.imap.serializer.envelope``) normalizes the subject and
the display names for humans.
"""

from __future__ import annotations

from typing import Any

from wildduck.protocols.mime import headers
from wildduck.protocols.mime.jsonbytes import to_json
from wildduck.protocols.mime.tree import Node, node_fields

MISSING_MAILBOX = "MISSING_MAILBOX"
MISSING_DOMAIN = "MISSING_DOMAIN"
SYNTAX_ERROR = "SYNTAX_ERROR"


def _addresses(values: list[bytes]) -> list[list[Any]] | None:
    """An address list as [[name, adl, mailbox, host], ...]; groups as RFC 3501 group markers; None if empty."""
    out: list[list[Any]] = []
    for value in values:
        for a in headers.parse_addresses(value):
            if a.group_end:
                out.append([None, None, None, None])
            elif a.group is not None:
                out.append([None, None, to_json(a.group), None])
            else:
                host = SYNTAX_ERROR if a.syntax_error else to_json(a.host) if a.host else MISSING_DOMAIN
                out.append([to_json(a.name) if a.name else None, to_json(a.route),
                            to_json(a.mailbox) if a.mailbox else MISSING_MAILBOX, host])
    return out or None


def _last(f: list[tuple[str, bytes]], name: str) -> Any:
    values = headers.get_all(f, name)
    return to_json(values[-1]) if values else None


def envelope_of_fields(f: list[tuple[str, bytes]]) -> list[Any]:
    """[date, subject, from, sender, reply-to, to, cc, bcc, in-reply-to, message-id]; sender and reply-to default
    to from."""
    frm = _addresses(headers.get_all(f, "from"))
    sender = _addresses(headers.get_all(f, "sender")) or frm
    reply_to = _addresses(headers.get_all(f, "reply-to")) or frm
    return [
        _last(f, "date"),
        _last(f, "subject"),
        frm,
        sender,
        reply_to,
        _addresses(headers.get_all(f, "to")),
        _addresses(headers.get_all(f, "cc")),
        _addresses(headers.get_all(f, "bcc")),
        _last(f, "in-reply-to"),
        _last(f, "message-id"),
    ]


def envelope(buf: bytes, node: Node) -> list[Any]:
    """The ENVELOPE of the entity ``node`` (the root for a message, ``msg`` of a message/rfc822 part)."""
    return envelope_of_fields(node_fields(buf, node))
