"""What IMAP SEARCH matches in a top-level header: the values of a header key and the sender's calendar day.

One definition for the two places that need it: the domain's exact evaluator and the store, which keeps these
values in columns at ingest (and in its migration for stored messages) to narrow a search in SQL. Both compute them
here from the same header bytes, so a column is exactly what the evaluator would compute.
"""

from __future__ import annotations

import datetime as dt

from wildduck.protocols.mime import headers

#: the header keys whose addresses also match as ``Display Name <mailbox@host>``
ADDRESS_FIELDS = frozenset({"from", "to", "cc", "bcc"})


def values(fields: headers.Fields, name: str) -> list[str]:
    """The texts SEARCH's header key ``name`` (lower-case) looks into: every copy of the field decoded, and for an
    address field each address as ``Display Name <mailbox@host>`` (comments and spacing normalized). Empty when
    the message has no such field."""
    out = []
    for key, value in fields:
        if key != name:
            continue
        out.append(headers.decode_words(value))
        if name not in ADDRESS_FIELDS:
            continue
        for a in headers.parse_addresses(value):
            if a.mailbox is None:
                continue
            addr = a.mailbox.decode("utf-8", "replace") + ("@" + a.host.decode("utf-8", "replace") if a.host else "")
            display = headers.decode_words(a.name) if a.name else ""
            out.append(f"{display} <{addr}>" if display else addr)
    return out


def sent_date(fields: headers.Fields) -> dt.date | None:
    """The calendar date of the (first) Date header in the sender's own time zone (RFC 3501's SENT* keys:
    "disregarding time and timezone"), or None when it is missing or unparseable."""
    parsed = headers.parse_date(headers.get(fields, "date"))
    return parsed.date() if parsed else None
