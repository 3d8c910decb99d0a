"""NOTIFY (RFC 5465 8): ``NOTIFY NONE`` and ``NOTIFY SET [STATUS] (filter events) ...`` as a typed
:class:`Notify`. The parser checks the syntax and the rules a server answers with BAD (§5, §6.1: for the selected
filters MessageNew and MessageExpunge together and FlagChange and AnnotationChange only with both, message events
only with the selected filters, FETCH attributes only there, one selected filter); which events are supported
(NO [BADEVENT]) is the session's decision."""

from __future__ import annotations

from dataclasses import dataclass

from wildduck.protocols.imap.grammar.args import Args, ParseError
from wildduck.protocols.imap.grammar.commands import Command
from wildduck.protocols.imap.grammar.fetch_items import FetchItem, parse_fetch_item
from wildduck.protocols.imap.receiver import ATOM, LITERAL, LPAREN, QUOTED

#: the events of RFC 5465 5, in its order, by their names in upper case
EVENTS = {e.upper(): e for e in ("MessageNew", "MessageExpunge", "FlagChange", "AnnotationChange", "MailboxName",
                                 "SubscriptionChange", "MailboxMetadataChange", "ServerMetadataChange")}
#: the message events (the only ones the selected filters take, RFC 5465 6.1)
MESSAGE_EVENTS = frozenset({"MessageNew", "MessageExpunge", "FlagChange", "AnnotationChange"})
#: the filters (RFC 5465 6), and those that name mailboxes after them
FILTERS = frozenset({"SELECTED", "SELECTED-DELAYED", "INBOXES", "PERSONAL", "SUBSCRIBED", "SUBTREE", "MAILBOXES"})
NAMING_FILTERS = frozenset({"SUBTREE", "MAILBOXES"})
#: bounds on what one command may ask for (groups, mailboxes of a filter, FETCH attributes)
MAX_GROUPS = 32
MAX_NAMES = 1000
MAX_FETCH_ITEMS = 64


@dataclass(frozen=True, slots=True)
class EventGroup:
    """One ``(filter events)`` of NOTIFY SET: the filter (upper case), the mailbox names SUBTREE and MAILBOXES
    give, the events (RFC 5465's spelling; an unknown one as the client wrote it; empty for NONE) and the FETCH
    attributes of MessageNew (selected filters only)."""

    filter: str
    mailboxes: tuple[bytes, ...] = ()
    events: tuple[str, ...] = ()
    fetch: tuple[FetchItem, ...] = ()

    @property
    def selected(self) -> bool:
        return self.filter in ("SELECTED", "SELECTED-DELAYED")


@dataclass(frozen=True, slots=True)
class Notify(Command):
    """NOTIFY NONE (``groups`` empty, ``none``) or NOTIFY SET, with ``status`` for ``SET STATUS``."""

    none: bool
    status: bool = False
    groups: tuple[EventGroup, ...] = ()


def _mailbox(a: Args) -> bytes:
    kind, value = a._next("mailbox")
    if kind not in (ATOM, QUOTED, LITERAL) or value is None:
        raise ParseError("expected mailbox")
    return value


def _names(a: Args) -> tuple[bytes, ...]:
    """``one-or-more-mailbox``: one mailbox or a parenthesized list of them."""
    if not a.open():
        return (_mailbox(a),)
    names: list[bytes] = []
    while not a.close():
        if len(names) >= MAX_NAMES:
            raise ParseError(f"more than {MAX_NAMES} mailboxes in one filter")
        names.append(_mailbox(a))
    if not names:
        raise ParseError("empty mailbox list")
    return tuple(names)


def _fetch_atts(a: Args) -> tuple[FetchItem, ...]:
    """MessageNew's ``(fetch-att ...)``; macros are not fetch-atts (RFC 5465 8)."""
    items: list[FetchItem] = []
    while not a.close():
        if len(items) >= MAX_FETCH_ITEMS:
            raise ParseError(f"more than {MAX_FETCH_ITEMS} FETCH attributes")
        items.append(parse_fetch_item(a.atom("fetch attribute")))
    if not items:
        raise ParseError("empty FETCH attribute list")
    return tuple(items)


def _events(a: Args) -> tuple[tuple[str, ...], tuple[FetchItem, ...]]:
    """``(event ...)`` or NONE; MessageNew may carry FETCH attributes."""
    tok = a.peek()
    if tok is not None and tok[0] == ATOM and (tok[1] or b"").upper() == b"NONE":
        a.pos += 1
        return (), ()
    if not a.open():
        raise ParseError("expected (event ...) or NONE")
    events: list[str] = []
    fetch: tuple[FetchItem, ...] = ()
    while not a.close():
        if len(events) >= len(EVENTS) * 2:
            raise ParseError("too many events")
        raw = a.atom("event").decode("ascii", "replace")
        name = EVENTS.get(raw.upper(), raw[:40])
        if name == "MessageNew":
            tok = a.peek()
            if tok is not None and tok[0] == LPAREN:
                a.open()
                fetch = _fetch_atts(a)
        if name not in events:
            events.append(name)
    if not events:
        raise ParseError("empty event list")
    return tuple(events), fetch


def _check(group: EventGroup) -> None:
    """The rules of RFC 5465 5 and 6.1 that a server answers with BAD.

    RFC 5465 5 asks clients for MessageNew and MessageExpunge together, and for both with FlagChange, so that a
    client's message sequence numbers stay right. That matters for the selected mailbox only (other mailboxes are
    reported with STATUS, which has no sequence numbers), so only ``selected`` and ``selected-delayed`` are held to
    it; for the other filters any of them alone is accepted, as Dovecot does and ImapTest's ``notify`` test expects
    (``(mailboxes X (MessageExpunge))``: STATUS with MESSAGES)."""
    events = set(group.events)
    if group.selected:
        _check_message_events(events)
    if group.selected and (events - MESSAGE_EVENTS) & set(EVENTS.values()):
        raise ParseError("only message events are allowed with SELECTED and SELECTED-DELAYED (RFC 5465 6.1)")
    if group.fetch and not group.selected:
        raise ParseError("MessageNew FETCH attributes are allowed with SELECTED and SELECTED-DELAYED only")


def _check_message_events(events: set[str]) -> None:
    if ("MessageNew" in events) != ("MessageExpunge" in events):
        raise ParseError("MessageNew and MessageExpunge must be given together (RFC 5465 5)")
    if events & {"FlagChange", "AnnotationChange"} and "MessageNew" not in events:
        raise ParseError("FlagChange and AnnotationChange need MessageNew and MessageExpunge (RFC 5465 5)")


def parse_notify(tag: str, name: str, a: Args) -> Command:
    """``NOTIFY NONE`` / ``NOTIFY SET [STATUS] event-group ...`` (RFC 5465 8)."""
    word = a.atom("SET or NONE").upper()
    if word == b"NONE":
        a.end()
        return Notify(tag, name, True)
    if word != b"SET":
        raise ParseError("expected SET or NONE")
    status = False
    tok = a.peek()
    if tok is not None and tok[0] == ATOM and (tok[1] or b"").upper() == b"STATUS":
        a.pos += 1
        status = True
    groups: list[EventGroup] = []
    while not a.at_end():
        if len(groups) >= MAX_GROUPS:
            raise ParseError(f"more than {MAX_GROUPS} event groups")
        if not a.open():
            raise ParseError("expected (filter events)")
        kind = a.atom("filter").decode("ascii", "replace").upper()
        if kind not in FILTERS:
            raise ParseError(f"unknown filter {kind[:40]}")
        names = _names(a) if kind in NAMING_FILTERS else ()
        events, fetch = _events(a)
        a.expect_close()
        group = EventGroup(kind, names, events, fetch)
        _check(group)
        groups.append(group)
    if not groups:
        raise ParseError("NOTIFY SET needs at least one event group")
    if sum(g.selected for g in groups) > 1:
        raise ParseError("only one of SELECTED and SELECTED-DELAYED may be given (RFC 5465 6.1)")
    return Notify(tag, name, False, status, tuple(groups))
