"""The ``Accounts`` role: users and their addresses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from wildduck.model import Address, MailboxSpec, User


class Accounts(Protocol):
    """Users and addresses.

    * ``unameview`` and ``addrview`` are unique; a clash raises :class:`wildduck.errors.AlreadyExists`.
    * Unknown ids raise :class:`wildduck.errors.NotFound`.
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
    ) -> User:
        """Create a user with its addresses ``(address, addrview)`` (the first one is main) and mailboxes,
        atomically. Raises AlreadyExists if the username or any address is taken."""
        ...

    async def get_user(self, user_id: str) -> User: ...

    async def find_user(self, unameview: str) -> User | None: ...

    async def list_users(self) -> list[User]: ...

    async def set_password(self, user_id: str, password_hash: str) -> None: ...

    async def set_quota(self, user_id: str, quota: int | None) -> None: ...

    async def set_disabled(self, user_id: str, disabled: bool) -> None: ...

    async def delete_user(self, user_id: str) -> None:
        """Delete the user, its addresses, mailboxes, messages and journal; release its blob references."""
        ...

    async def add_address(self, user_id: str, address: str, addrview: str, *, main: bool = False) -> Address: ...

    async def remove_address(self, addrview: str) -> None:
        """Remove an address. The main address of a user cannot be removed (InvalidInput)."""
        ...

    async def list_addresses(self, user_id: str) -> list[Address]: ...

    async def resolve_address(self, addrview: str) -> Address | None:
        """The address whose ``addrview`` is exactly this key, or None."""
        ...
