"""User accounts: creation with default mailboxes and addresses, passwords, quotas, addresses, deletion."""

from __future__ import annotations

import logging
import socket

import trio

from wildduck.domain import addresses, passwords
from wildduck.errors import AlreadyExists, InvalidInput, NotFound
from wildduck.model import Address, Listing, MailboxSpec, Nudge, User, user_channel
from wildduck.ports import Accounts, PubSub

log = logging.getLogger(__name__)

#: Mailboxes every user gets (WildDuck's defaults, Gmail-like names).
DEFAULT_MAILBOXES: tuple[MailboxSpec, ...] = (
    MailboxSpec("INBOX"),
    MailboxSpec("Sent Mail", "\\Sent"),
    MailboxSpec("Trash", "\\Trash"),
    MailboxSpec("Drafts", "\\Drafts"),
    MailboxSpec("Junk", "\\Junk"),
)

#: Password hashing is slow on purpose; keep it off the event loop and bounded.
hash_limiter = trio.CapacityLimiter(2)

MAX_PASSWORD_BYTES = 1024
#: tags an account or address may have, and the length of one
MAX_TAGS = 64
MAX_TAG_LENGTH = 128


def parse_tags(tags: str | list[str] | tuple[str, ...], field: str = "tags") -> tuple[str, ...]:
    """Tags as WildDuck takes them (a comma-separated string, or a list): trimmed, empty ones dropped, duplicates
    (case-insensitively) once, in their first spelling."""
    items = tags.split(",") if isinstance(tags, str) else list(tags)
    out: dict[str, str] = {}
    for item in items:
        tag = item.strip()
        if not tag:
            continue
        if len(tag) > MAX_TAG_LENGTH:
            raise InvalidInput(f"a tag is longer than {MAX_TAG_LENGTH} characters", field)
        out.setdefault(tag.lower(), tag)
    if len(out) > MAX_TAGS:
        raise InvalidInput(f"more than {MAX_TAGS} tags", field)
    return tuple(out.values())


async def hash_soon(password: str) -> str:
    """An argon2id hash of ``password``, computed in a worker thread (bounded: hashing is slow on purpose)."""
    return await trio.to_thread.run_sync(passwords.hash_password, password, limiter=hash_limiter)


def _check_password(password: str) -> None:
    if not password:
        raise InvalidInput("password must not be empty", "password")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise InvalidInput(f"password is longer than {MAX_PASSWORD_BYTES} bytes", "password")


class UserService:
    """Creates and manages users and their addresses on the ``Accounts`` role."""

    def __init__(self, store: Accounts, *, email_domain: str | None = None, pubsub: PubSub | None = None) -> None:
        self.store = store
        #: where the end of an account is announced (its sessions end at once)
        self.pubsub = pubsub
        #: True when the domain was configured, False when it is this machine's name
        self.email_domain_configured = bool(email_domain)
        self.email_domain = email_domain or socket.getfqdn() or "localhost"

    def _default_address(self, username: str) -> str:
        """``username@<email_domain>``; InvalidInput (field ``email_domain``) when no domain was configured and
        this machine's name is ``localhost`` (addresses nobody can send to)."""
        domain = self.email_domain.lower()
        if not self.email_domain_configured and (domain == "localhost" or domain.startswith("localhost.")):
            raise InvalidInput(
                f"no address for {username!r}: [server] email_domain is empty and this machine's name is "
                f"{self.email_domain!r}; set [server] email_domain, or give the user an address", "email_domain")
        return f"{username}@{self.email_domain}"

    async def create(
        self,
        username: str,
        password: str,
        *,
        address: str | None = None,
        quota: int | None = None,
        name: str = "",
        tags: tuple[str, ...] = (),
    ) -> User:
        """Create a user, its main address and the default mailboxes.

        Without ``address``, an email-like username is its own address; otherwise ``username@<email_domain>``
        (refused when that domain would be ``localhost``). Raises InvalidInput or AlreadyExists.
        """
        view = addresses.unameview(username)
        _check_password(password)
        if quota is not None and quota < 0:
            raise InvalidInput("quota must be a positive number of bytes", "quota")
        if address is None:
            address = username if "@" in username else self._default_address(username)
        norm, addrview = addresses.validate_new(address)
        if await self.store.find_user(view) is not None:
            raise AlreadyExists(f"username {username!r} is taken")
        if await self.store.resolve_address(addrview) is not None:
            raise AlreadyExists(f"address {norm} is taken")
        hashed = await hash_soon(password)
        user = await self.store.create_user(
            username=username.strip(),
            unameview=view,
            password_hash=hashed,
            quota=quota,
            addresses=[(norm, addrview)],
            mailboxes=DEFAULT_MAILBOXES,
            name=name,
            tags=parse_tags(tags),
        )
        log.info("created user %s (%s)", user.username, user.id)
        return user

    async def find(self, username_or_id: str) -> User:
        """A user by username, address or id; raises NotFound."""
        try:
            user = await self.store.find_user(addresses.unameview(username_or_id))
        except InvalidInput:
            user = None
        if user is not None:
            return user
        if "@" in username_or_id:
            try:
                found = await self.store.resolve_address(addresses.lookup_key(username_or_id))
            except InvalidInput:
                found = None
            if found is not None:
                return await self.store.get_user(found.user_id)
        try:
            return await self.store.get_user(username_or_id)
        except NotFound:
            raise NotFound(f"no such user {username_or_id!r}") from None

    async def get(self, user_id: str) -> User:
        """A user by id only (NotFound otherwise)."""
        return await self.store.get_user(user_id)

    async def set_password(self, user: User, password: str) -> None:
        _check_password(password)
        await self.store.set_password(user.id, await hash_soon(password))

    async def all(self) -> list[User]:
        return await self.store.list_users()

    async def list_users(self, listing: Listing) -> list[User]:
        """The page of users ``listing`` asks for (see :class:`~wildduck.model.Listing`)."""
        return await self.store.list_users(listing)

    async def count_users(self, listing: Listing) -> int:
        """How many users match ``listing``'s filters."""
        return await self.store.count_users(listing)

    async def set_profile(self, user: User, *, name: str | None = None,
                          tags: tuple[str, ...] | None = None) -> None:
        await self.store.set_profile(user.id, name=name, tags=parse_tags(tags) if tags is not None else None)

    async def recount_storage(self, user: User) -> tuple[int, int]:
        """Set the user's storage use to what its messages take: (before, after)."""
        before, after = await self.store.recount_storage(user.id)
        if before != after:
            log.info("storage of %s (%s) recounted: %d bytes, was %d", user.username, user.id, after, before)
        return before, after

    async def recount_all_storage(self, page: int = 100) -> int:
        """:meth:`recount_storage` of every user, a page of users at a time; how many were recounted."""
        done, after = 0, None
        while True:
            users = await self.store.list_users(Listing(after=after, limit=page))
            for user in users:
                try:
                    await self.recount_storage(user)
                except NotFound:  # deleted meanwhile
                    continue
                done += 1
            if len(users) < page:
                return done
            after = users[-1].id

    async def list_all_addresses(self, listing: Listing) -> list[Address]:
        """The page ``listing`` asks for of every user's addresses."""
        return await self.store.list_all_addresses(listing)

    async def count_addresses(self, listing: Listing) -> int:
        return await self.store.count_addresses(listing)

    async def address_by_id(self, address_id: str) -> Address:
        return await self.store.get_address(address_id)

    async def get_address(self, user: User, address_id: str) -> Address:
        """One of the user's addresses by id (NotFound when it is not the user's)."""
        found = await self.store.get_address(address_id)
        if found.user_id != user.id:
            raise NotFound(f"no address {address_id}")
        return found

    async def update_address(self, user: User, address_id: str, *, address: str | None = None,
                             name: str | None = None, main: bool | None = None,
                             tags: tuple[str, ...] | None = None) -> Address:
        """Rename the address, change its name or tags, or make it the user's main address."""
        await self.get_address(user, address_id)
        renamed = addresses.validate_new(address) if address is not None else None
        return await self.store.update_address(address_id, address=renamed, name=name, main=main,
                                               tags=parse_tags(tags) if tags is not None else None)

    async def addresses(self, user: User) -> list[Address]:
        return await self.store.list_addresses(user.id)

    async def resolve_address(self, address: str) -> Address:
        """The stored address a recipient ``address`` reaches (WildDuck's rules: case, dots, ``+label``,
        Unicode domains); NotFound when none does, InvalidInput when it is no address."""
        found = await self.store.resolve_address(addresses.lookup_key(address))
        if found is None:
            raise NotFound(f"no such address {address!r}")
        return found

    async def set_quota(self, user: User, quota: int | None) -> None:
        if quota is not None and quota < 0:
            raise InvalidInput("quota must be a positive number of bytes", "quota")
        await self.store.set_quota(user.id, quota)

    async def _account_gone(self, user: User) -> None:
        if self.pubsub is not None:
            await self.pubsub.publish(user_channel(user.id), Nudge.account_gone())

    async def logout(self, user: User, reason: str = "") -> None:
        """End the user's IMAP and POP3 sessions on every instance (they say ``reason`` as their goodbye); the
        account stays as it is, so the user may log in again."""
        nudge = Nudge.logout(reason)
        if self.pubsub is not None:
            await self.pubsub.publish(user_channel(user.id), nudge)
        log.info("logged out the sessions of user %s (%s): %s", user.username, user.id, nudge.reason)

    async def set_disabled(self, user: User, disabled: bool) -> None:
        """Disable (or enable) logins and deliveries; the sessions of a disabled user end with BYE."""
        await self.store.set_disabled(user.id, disabled)
        if disabled:
            await self._account_gone(user)

    async def delete(self, user: User) -> None:
        """Delete the user with every mailbox, message and address (blob references released); the user's
        open sessions end with BYE."""
        await self.store.delete_user(user.id)
        await self._account_gone(user)
        log.info("deleted user %s (%s)", user.username, user.id)

    async def add_address(self, user: User, address: str, *, main: bool = False, name: str = "",
                          tags: tuple[str, ...] = ()) -> Address:
        norm, addrview = addresses.validate_new(address)
        return await self.store.add_address(user.id, norm, addrview, main=main, name=name, tags=parse_tags(tags))

    async def remove_address(self, address: str) -> None:
        await self.store.remove_address(addresses.addrview(address))
