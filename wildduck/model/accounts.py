"""Users and their addresses."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class User:
    id: str
    username: str
    #: lookup key: lower-case, dots removed (WildDuck's ``unameview``)
    unameview: str
    password_hash: str
    #: storage quota in bytes; None means the server default
    quota: int | None
    storage_used: int
    created: dt.datetime
    disabled: bool = False
    name: str = ""
    #: labels for administrators, as given (WildDuck's ``tags``); matched case-insensitively
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Address:
    id: str
    user_id: str
    #: normalized form for display: Unicode NFC, lower-case; domain in Unicode (not punycode)
    address: str
    #: lookup key: like ``address`` with dots removed from the local part (WildDuck's ``addrview``)
    addrview: str
    main: bool
    created: dt.datetime
    #: the display name for this address (WildDuck's address ``name``)
    name: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Listing:
    """What to list of users or addresses: a substring of the username or address (lower-case), tags of which one
    (``tags``) or all (``required_tags``) must be present (lower-case), and keyset paging on the id: only ids above
    ``after`` or below ``before``, at most ``limit`` of them, in ascending id order (with ``before``: the ones just
    below it)."""

    query: str | None = None
    tags: tuple[str, ...] = ()
    required_tags: tuple[str, ...] = ()
    after: str | None = None
    before: str | None = None
    limit: int | None = None


#: a listing of everything, in listing order
EVERYTHING = Listing()


@dataclass(frozen=True, slots=True)
class AuthEvent:
    """One entry of a user's authentication log: ``events`` attempts with the same protocol, address, action and
    result merged into one entry per :data:`AUTHLOG_BUCKET` (WildDuck's ``authlog``)."""

    id: str
    user_id: str
    action: str
    result: str
    protocol: str
    ip: str
    source: str
    created: dt.datetime
    last: dt.datetime
    events: int
    expires: dt.datetime

    @property
    def key(self) -> str:
        return auth_event_key(self.protocol, self.ip, self.action, self.result)


#: attempts alike within this long are one entry of the authentication log
AUTHLOG_BUCKET = dt.timedelta(hours=6)


def auth_event_key(protocol: str, ip: str, action: str, result: str) -> str:
    """What attempts alike share (their merge key)."""
    return "^".join((protocol, ip, action, result))
