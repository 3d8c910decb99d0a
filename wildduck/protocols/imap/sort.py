"""SORT (RFC 5256 §3) and SORT=DISPLAY (RFC 5957), sans-I/O: the per-message sort keys and the ordering.

A message's keys are a :class:`SortRecord`: the internal date, the sent date, RFC822.SIZE and the string keys of
:func:`wildduck.protocols.mime.sortkeys.sort_keys` (which the store computes at ingest from the decoded Subject and
the ENVELOPE in its IMAP form, and keeps; :func:`record` makes one from those values). A record is a tuple in the
column order the store reads them in, so a store row becomes a record without a field copied; it holds no sequence
number (a message's keys never change, so a session may keep them). :func:`order` sorts records given in mailbox
order by a list of :class:`~wildduck.protocols.imap.grammar.SortCriterion`.

The rules:

* ARRIVAL: the internal date; DATE: the Date header as an instant (UTC), the internal date when the message has
  none or it does not parse; SIZE: RFC822.SIZE.
* SUBJECT: the base subject (RFC 5256 §2.1, :mod:`wildduck.protocols.mime.basesubject`).
* FROM, TO, CC: the local part (``addr-mailbox``) of the first address of the field; DISPLAYFROM, DISPLAYTO
  (RFC 5957): its display name with encoded words decoded, or, when it has none (or an empty one), its
  ``mailbox@host``. A message without the field sorts as the empty string.
* Strings compare by the ``i;unicode-casemap`` collation (RFC 5256 §7, RFC 5051): titlecase, then decomposed
  (compatibility decomposition, as Dovecot does), then by code point.
* REVERSE reverses its key only; messages equal on every key keep the mailbox order (sequence numbers).
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import NamedTuple

from wildduck.protocols.imap.grammar import SortCriterion
from wildduck.protocols.mime.sortkeys import (
    Value,
    collate,
    display_key,
    first_addresses,
    mailbox_key,
    parse_data,
    sort_keys,
)

__all__ = ["ADDRESS_KEYS", "SortRecord", "SortRow", "Value", "collate", "display_key", "first_addresses", "mailbox_key",
           "order", "parse_data", "record", "sort_keys"]

#: a message's sort keys as a plain tuple in the field order of :class:`SortRecord` (what the store returns: a
#: session keeps and orders these rows as they come, without making records of them)
SortRow = tuple[int, float, float, int, str, str, str, str, str, str, int]
#: the keys whose values come from the ENVELOPE's address lists
ADDRESS_KEYS = frozenset({"FROM", "TO", "CC", "DISPLAYFROM", "DISPLAYTO"})


class SortRecord(NamedTuple):
    """One message's sort keys; the string ones already in collation form (:func:`collate`), empty when the
    message has no such value. ``addresses``: whether the address keys were read (a session that sorts by none of
    them reads none)."""

    uid: int
    arrival: float
    date: float
    size: int
    subject: str = ""
    from_: str = ""
    to: str = ""
    cc: str = ""
    display_from: str = ""
    display_to: str = ""
    addresses: bool = False


def record(uid: int, *, arrival: float, sent: float | None, size: int, subject: str, envelope: bytes,
           addresses: bool) -> SortRecord:
    """The sort keys of one message: ``subject`` the decoded Subject, ``sent`` the Date header's instant (None:
    missing or unparseable), ``envelope`` ENVELOPE in its IMAP form, read for the address keys only when
    ``addresses`` asks for them (what the store keeps of every message, computed here from the message)."""
    date = arrival if sent is None else sent
    keys = sort_keys(subject, envelope if addresses else None)
    if not addresses:
        return SortRecord(uid, arrival, date, size, keys[0])
    return SortRecord(uid, arrival, date, size, *keys, True)


_GETTERS = {key: itemgetter(SortRecord._fields.index(name)) for key, name in (
    ("ARRIVAL", "arrival"), ("DATE", "date"), ("SIZE", "size"), ("SUBJECT", "subject"), ("FROM", "from_"),
    ("TO", "to"), ("CC", "cc"), ("DISPLAYFROM", "display_from"), ("DISPLAYTO", "display_to"))}


def order(records: Sequence[SortRow], criteria: Sequence[SortCriterion]) -> list[SortRow]:
    """``records`` (records or plain rows), given in mailbox order, sorted by ``criteria`` (the first criterion
    decides first); records equal on every key keep the mailbox order (RFC 5256: by sequence number).

    Stable sorts from the last criterion to the first, each reversed or not (a reversed stable sort keeps equal
    records in their order): O(k n log n) for k criteria, every comparison in C."""
    ordered = list(records)
    for criterion in reversed(criteria):
        ordered.sort(key=_GETTERS[criterion.key], reverse=criterion.reverse)
    return ordered
