"""User accounts: creation with default mailboxes and addresses, passwords, addresses, authentication."""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import socket
import time

import trio

from wildduck.domain import addresses, passwords
from wildduck.domain.models import Address, MailboxSpec, User
from wildduck.errors import AlreadyExists, InvalidInput, NotFound, RateLimited
from wildduck.ports.counters import Counters
from wildduck.ports.mailstore import MailStore

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
_hash_limiter = trio.CapacityLimiter(2)

MAX_PASSWORD_BYTES = 1024
#: seconds a successful password check is remembered (keyed by a salted HMAC, never the password itself)
AUTH_CACHE_SECONDS = 300.0
AUTH_CACHE_SIZE = 10_000


def _check_password(password: str) -> None:
    if not password:
        raise InvalidInput("password must not be empty", "password")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise InvalidInput(f"password is longer than {MAX_PASSWORD_BYTES} bytes", "password")


class UserService:
    """Creates and manages users on a :class:`MailStore`."""

    def __init__(self, store: MailStore, counters: Counters, *, email_domain: str | None = None,
                 auth_failures: int = 12, auth_failure_window: float = 120.0) -> None:
        self.store = store
        self.counters = counters
        #: failed password checks allowed per account in a window of ``auth_failure_window`` seconds (0: no limit)
        self.auth_failures = auth_failures
        self.auth_failure_window = auth_failure_window
        self.email_domain = email_domain or socket.getfqdn() or "localhost"
        # successful verifications: (user id, stored hash, HMAC of the password) -> expiry. A changed password
        # changes the stored hash, so old entries can never match again.
        self._auth_cache: dict[tuple[str, str, bytes], float] = {}
        self._auth_key = secrets.token_bytes(32)
        self._verifying: dict[tuple[str, str, bytes], trio.Lock] = {}

    async def create(
        self,
        username: str,
        password: str,
        *,
        address: str | None = None,
        quota: int | None = None,
        name: str = "",
    ) -> User:
        """Create a user, its main address and the default mailboxes.

        Without ``address``, an email-like username is its own address; otherwise ``username@<email_domain>``.
        Raises InvalidInput or AlreadyExists.
        """
        view = addresses.unameview(username)
        _check_password(password)
        if quota is not None and quota < 0:
            raise InvalidInput("quota must be a positive number of bytes", "quota")
        if address is None:
            address = username if "@" in username else f"{username}@{self.email_domain}"
        norm, addrview = addresses.validate_new(address)
        if await self.store.find_user(view) is not None:
            raise AlreadyExists(f"username {username!r} is taken")
        if await self.store.resolve_address(addrview) is not None:
            raise AlreadyExists(f"address {norm} is taken")
        hashed = await trio.to_thread.run_sync(passwords.hash_password, password, limiter=_hash_limiter)
        user = await self.store.create_user(
            username=username.strip(),
            unameview=view,
            password_hash=hashed,
            quota=quota,
            addresses=[(norm, addrview)],
            mailboxes=DEFAULT_MAILBOXES,
            name=name,
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

    async def set_password(self, user: User, password: str) -> None:
        _check_password(password)
        hashed = await trio.to_thread.run_sync(passwords.hash_password, password, limiter=_hash_limiter)
        await self.store.set_password(user.id, hashed)

    async def authenticate(self, username: str, password: str) -> User | None:
        """The user if the password matches (rehashing legacy hashes to argon2id), else None.

        Raises ``RateLimited`` once an account (or an unknown username) has had ``auth_failures`` failed checks in
        the current window, whatever the password: guessing stops, and so does learning whether a guess was right.
        """
        try:
            user: User | None = await self.find(username)
        except NotFound:
            user = None
        key = "auth:" + (user.id if user is not None else
                         hashlib.sha256(username.strip().lower().encode("utf-8", "replace")).hexdigest()[:32])
        if self.auth_failures:
            window = await self.counters.window(key)
            if window.count >= self.auth_failures:
                raise RateLimited(f"too many failed logins, try again in {math.ceil(window.retry_after)} s",
                                  window.retry_after)
        found = await self._verify(user, password)
        if found is None and self.auth_failures:
            await self.counters.increment(key, self.auth_failure_window)
        return found

    async def _verify(self, user: User | None, password: str) -> User | None:
        if user is None:
            # spend the same time as a real check, so timing does not reveal which usernames exist
            await trio.to_thread.run_sync(passwords.hash_password, password, limiter=_hash_limiter)
            return None
        if user.disabled:
            return None
        key = (user.id, user.password_hash, hmac.new(self._auth_key, password.encode(), hashlib.sha256).digest())
        now = time.monotonic()
        if self._auth_cache.get(key, 0.0) > now:
            return user
        # concurrent logins with the same password (a client opening several connections) share one check
        lock = self._verifying.setdefault(key, trio.Lock())
        try:
            async with lock:
                now = time.monotonic()
                if self._auth_cache.get(key, 0.0) > now:
                    return user
                ok = await trio.to_thread.run_sync(
                    passwords.verify_password, password, user.password_hash, limiter=_hash_limiter
                )
        finally:
            if not lock.locked() and not lock.statistics().tasks_waiting:
                self._verifying.pop(key, None)
        if not ok:
            return None
        if len(self._auth_cache) >= AUTH_CACHE_SIZE:
            self._auth_cache = {k: v for k, v in self._auth_cache.items() if v > now}
            if len(self._auth_cache) >= AUTH_CACHE_SIZE:
                self._auth_cache.clear()
        self._auth_cache[key] = now + AUTH_CACHE_SECONDS
        if passwords.needs_rehash(user.password_hash):
            await self.set_password(user, password)
        return user

    async def add_address(self, user: User, address: str, *, main: bool = False) -> Address:
        norm, addrview = addresses.validate_new(address)
        return await self.store.add_address(user.id, norm, addrview, main=main)

    async def remove_address(self, address: str) -> None:
        await self.store.remove_address(addresses.addrview(address))
