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
