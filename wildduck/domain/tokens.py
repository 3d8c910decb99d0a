"""Access tokens of users (the API's ``POST /authenticate`` with ``token: true``).

A token is ``<user id>.<issued, unix seconds>.<secret>.<lease>``. What the counters keep is a connection slot
(a lease with a TTL) named by the SHA-256 of the user id, the issue time, the secret **and the user's current
password hash**; its holder is ``<lease>``. So the store never holds a usable token (the secret is only in the
hash), every use renews the lease (the sliding TTL), a token older than the lifetime is refused whatever its lease,
and a password change makes every token of the user name a lease that does not exist.

The counters are those of the node (shared by its worker processes; Redis when scaled out); with the in-process
counters of a single process, tokens end when the server restarts.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from wildduck.domain.users import UserService
from wildduck.errors import NotFound
from wildduck.model import User
from wildduck.ports import Counters

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"([0-9a-f]{24})\.([0-9]{1,12})\.([0-9a-f]{40})\.([0-9A-Za-z_-]{1,64})")


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    #: seconds a token lives unused (each use extends it)
    ttl: float = 14 * 86400.0
    #: seconds a token lives at most from its issue
    lifetime: float = 180 * 86400.0


@dataclass(frozen=True, slots=True)
class TokenUse:
    """A valid token: its user, and the lease to release when it is revoked."""

    user: User
    key: str
    lease: str


def token_fingerprint(token: str) -> str:
    """What a token may be logged as: the first 12 hex digits of its SHA-256 (never the token)."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:12]


class TokenService:
    """Issues, checks (renewing the sliding TTL) and revokes user access tokens, over the ``Counters`` role."""

    def __init__(self, users: UserService, counters: Counters, policy: TokenPolicy = TokenPolicy(), *,
                 clock: Callable[[], float] = time.time) -> None:
        self.users = users
        self.counters = counters
        self.policy = policy
        self._clock = clock

    @staticmethod
    def _key(user: User, issued: int, secret: str) -> str:
        material = f"{user.id}|{issued}|{secret}|{user.password_hash}".encode()
        return "api-token:" + hashlib.sha256(material).hexdigest()

    async def issue(self, user: User) -> str:
        """A new token for ``user``, valid for the policy's TTL from now (renewed by each use)."""
        issued = int(self._clock())
        secret = secrets.token_hex(20)
        key = self._key(user, issued, secret)
        lease = await self.counters.acquire_slot(key, 1, self.policy.ttl)
        if lease is None:  # a fresh 160-bit secret: the key cannot be held already
            raise RuntimeError("a new token's lease is taken")
        log.info("issued an API token for %s (%s)", user.username, user.id)
        return f"{user.id}.{issued}.{secret}.{lease}"

    async def check(self, token: str) -> TokenUse | None:
        """The token's user, its lease renewed, or None: malformed, unknown, expired, too old, revoked, issued
        before the user's password last changed, or of a disabled or deleted user."""
        m = _TOKEN.fullmatch(token)
        if m is None:
            return None
        user_id, issued_text, secret, lease = m.groups()
        issued = int(issued_text)
        if self._clock() - issued >= self.policy.lifetime:
            return None
        try:
            user = await self.users.get(user_id)
        except NotFound:
            return None
        if user.disabled:
            return None
        key = self._key(user, issued, secret)
        if not await self.counters.renew_slot(key, lease, self.policy.ttl):
            return None
        return TokenUse(user, key, lease)

    async def revoke(self, use: TokenUse) -> None:
        """End the token at once (``DELETE /authenticate``)."""
        await self.counters.release_slot(use.key, use.lease)
        log.info("revoked an API token of %s (%s)", use.user.username, use.user.id)
