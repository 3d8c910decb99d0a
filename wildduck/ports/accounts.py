"""The ``Accounts`` role: users and their addresses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol

from wildduck.model import EVERYTHING, Address, AuthEvent, Listing, MailboxSpec, User


class Accounts(Protocol):
    """Users and addresses.

    * ``unameview`` and ``addrview`` are unique; a clash raises :class:`wildduck.errors.AlreadyExists`.
    * Unknown ids raise :class:`wildduck.errors.NotFound`.
    * Listings (:class:`wildduck.model.Listing`) filter and page in the store: a page costs what it holds, not
      what the whole collection holds. Users and addresses are listed in ascending id order, authentication
      events newest first.
    """

    async def create_user(
        self,
        *,
        username: str,
        unameview: str,
        password_hash: str,
        quota: int | None,
        addresses: Sequence[tuple[str, str]],
        mailboxes: Sequence[MailboxSpec],
        name: str = "",
        tags: Sequence[str] = (),
    ) -> User:
        """Create a user with its addresses ``(address, addrview)`` (the first one is main) and mailboxes,
        atomically. Raises AlreadyExists if the username or any address is taken."""
        ...

    async def get_user(self, user_id: str) -> User: ...

    async def find_user(self, unameview: str) -> User | None: ...

    async def list_users(self, listing: Listing = EVERYTHING) -> list[User]:
        """Users matching ``listing`` (``query``: a substring of the username or the main address)."""
        ...

    async def count_users(self, listing: Listing = EVERYTHING) -> int:
        """How many users match ``listing``'s filters (its paging ignored)."""
        ...

    async def set_profile(self, user_id: str, *, name: str | None = None, tags: Sequence[str] | None = None) -> None:
        """Change what is given of the user's display name and tags."""
        ...

    async def recount_storage(self, user_id: str) -> tuple[int, int]:
        """Set the user's storage to the total size of its messages; (before, after)."""
        ...

    async def set_password(self, user_id: str, password_hash: str) -> None: ...

    async def set_quota(self, user_id: str, quota: int | None) -> None: ...

    async def set_disabled(self, user_id: str, disabled: bool) -> None: ...

    async def delete_user(self, user_id: str) -> None:
        """Delete the user, its addresses, mailboxes, messages and journal; release its blob references."""
        ...

    async def add_address(self, user_id: str, address: str, addrview: str, *, main: bool = False, name: str = "",
                          tags: Sequence[str] = ()) -> Address: ...

    async def get_address(self, address_id: str) -> Address: ...

    async def update_address(self, address_id: str, *, address: tuple[str, str] | None = None,
                             name: str | None = None, main: bool | None = None,
                             tags: Sequence[str] | None = None) -> Address:
        """Change what is given: ``address`` as ``(address, addrview)`` (AlreadyExists when taken), the name, the
        tags; ``main=True`` makes it its user's main address (the one main before it stops being main;
        ``main=False`` is refused with InvalidInput: a user always has a main address)."""
        ...

    async def remove_address(self, addrview: str) -> None:
        """Remove an address. The main address of a user cannot be removed (InvalidInput)."""
        ...

    async def list_addresses(self, user_id: str) -> list[Address]: ...

    async def list_all_addresses(self, listing: Listing = EVERYTHING) -> list[Address]:
        """Addresses of every user matching ``listing`` (``query``: a substring of the address)."""
        ...

    async def count_addresses(self, listing: Listing = EVERYTHING) -> int: ...

    async def resolve_address(self, addrview: str) -> Address | None:
        """The address whose ``addrview`` is exactly this key, or None."""
        ...

    async def record_auth(self, events: Sequence[AuthEvent]) -> None:
        """Add authentication attempts to their users' logs: each counts ``events`` attempts, ``created`` the first
        and ``last`` the last of them; its ``id`` is chosen here. One alike (same key) to an entry that started within
        :data:`wildduck.model.AUTHLOG_BUCKET` before it is merged into that entry (which keeps its ``created`` and
        ``expires``); attempts of unknown users are dropped."""
        ...

    async def auth_log(self, user_id: str, listing: Listing = EVERYTHING, *, action: str | None = None,
                       ip: str | None = None) -> list[AuthEvent]:
        """The user's authentication log, newest first (``listing``'s paging; ``after`` means older)."""
        ...

    async def count_auth(self, user_id: str, *, action: str | None = None, ip: str | None = None) -> int: ...

    async def get_auth_event(self, user_id: str, event_id: str) -> AuthEvent:
        """One entry of the user's log (NotFound if the user has none by that id)."""
        ...

    async def prune_auth(self, now: dt.datetime) -> int:
        """Remove the log entries whose ``expires`` has passed; how many."""
        ...
