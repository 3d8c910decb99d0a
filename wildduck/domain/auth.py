"""Logging in: authentication with a rate limit counted first, the failure penalty, the per-user connection slot
(a lease with a TTL, renewed by one keeper task) and the user's nudge channel, shared by IMAP, POP3 and the API.

``async with login.session(user, "imap") as s:`` holds the slot and the subscription for the block.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

import trio

from wildduck.domain import passwords
from wildduck.domain.users import UserService, hash_limiter
from wildduck.errors import AuthFailed, NotFound, RateLimited, StoreError, TooManyConnections
from wildduck.model import AuthEvent, Listing, User, auth_event_key, user_channel
from wildduck.ports import Accounts, Counters, PubSub
from wildduck.ports.pubsub import Subscription

log = logging.getLogger(__name__)

#: seconds a successful password check is remembered (keyed by a salted HMAC, never the password itself)
AUTH_CACHE_SECONDS = 300.0
AUTH_CACHE_SIZE = 10_000
#: a connection slot lives this long unless renewed; the keeper renews every third of it (a process's slots in
#: batches of :data:`RENEW_BATCH`, one call each), so the slots of a process that died (``kill -9``, a lost machine)
#: are free again within this long
SLOT_TTL = 15.0
RENEW_BATCH = 1000
#: the window of a user's unlock counter (``LoginService.unlock``): in practice, forever
UNLOCK_WINDOW = 10 * 365 * 86400.0
#: how long an authentication log entry is kept (WildDuck's ``const:authlog:time``)
AUTHLOG_RETENTION = dt.timedelta(days=30)
#: seconds between writes of the authentication log; attempts alike in between are one write
AUTHLOG_FLUSH = 1.0
#: attempts buffered at most between two writes (past it, the oldest kinds are written at once)
AUTHLOG_BUFFER = 10_000


def _peer_ip(peer: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address in ``peer`` (``"203.0.113.5:41000"``, ``"[2001:db8::1]:41000"``, ``"::1"``, or a bare address),
    an IPv4-mapped one as IPv4; None when there is none."""
    text = peer.strip()
    candidates = [text]
    if text.startswith("["):
        candidates.append(text[1:].partition("]")[0])
    elif text.count(":") == 1:
        candidates.append(text.partition(":")[0])
    elif ":" in text:
        candidates.append(text.rpartition(":")[0])
    for candidate in candidates:
        try:
            ip = ipaddress.ip_address(candidate)
        except ValueError:
            continue
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        return ip
    return None


def source_of(peer: str | None) -> str | None:
    """The source that failed logins are counted for: the address of ``peer`` (see :func:`_peer_ip`) without the
    port; an IPv6 address stands for its /64 (one host or home network). None when there is no peer."""
    if not peer:
        return None
    ip = _peer_ip(peer)
    if ip is None:
        return peer.strip()
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def address_of(peer: str | None) -> str:
    """The client's address in ``peer`` without the port ("" when there is no peer)."""
    if not peer:
        return ""
    ip = _peer_ip(peer)
    return str(ip) if ip is not None else peer.strip()


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    #: password checks allowed per account (or unknown name) in ``failure_window`` seconds (0: no limit)
    max_failures: int = 12
    failure_window: float = 120.0
    #: seconds a failed login waits before its answer (slows guessing down)
    failure_penalty: float = 1.0


@dataclass(slots=True)
class UserSession:
    """A logged-in user's connection: the slot it holds and its nudge subscription."""

    user: User
    protocol: str
    subscription: Subscription
    #: tags this session's changes, so that it can skip its own nudges
    origin: str


class _KeyedLocks:
    """One ``trio.Lock`` per key, kept only while a task holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, trio.Lock] = {}

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, trio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and not lock.statistics().tasks_waiting:
                self._locks.pop(key, None)


class AuthLog:
    """Each user's authentication log (WildDuck's ``authlog``): every attempt on a known account, as action
    ``authentication``, result ``success`` or ``fail``, the protocol and the client's address. Attempts alike are
    counted together in memory and written once a second (:meth:`keep`), so a login costs no write of its own;
    a process that dies loses at most that second. Entries are kept :data:`AUTHLOG_RETENTION`."""

    def __init__(self, store: Accounts) -> None:
        self.store = store
        self._pending: dict[tuple[str, str], AuthEvent] = {}
        self._flushing = trio.Lock()

    def record(self, user: User, *, result: str, protocol: str, ip: str, action: str = "authentication",
               source: str = "master") -> None:
        now = dt.datetime.now(dt.UTC)
        key = (user.id, auth_event_key(protocol, ip, action, result))
        seen = self._pending.get(key)
        if seen is not None:
            self._pending[key] = replace(seen, last=now, events=seen.events + 1)
            return
        if len(self._pending) >= AUTHLOG_BUFFER:
            self._pending.pop(next(iter(self._pending)))
            log.warning("authentication log buffer full: an attempt went unlogged")
        self._pending[key] = AuthEvent(id="", user_id=user.id, action=action, result=result, protocol=protocol,
                                       ip=ip, source=source, created=now, last=now, events=1,
                                       expires=now + AUTHLOG_RETENTION)

    async def flush(self) -> None:
        """Write what is buffered (kept for the next flush when the store fails)."""
        async with self._flushing:
            pending, self._pending = self._pending, {}
            if not pending:
                return
            try:
                await self.store.record_auth(list(pending.values()))
            except BaseException:
                for key, event in pending.items():  # put back, merged with what came meanwhile
                    seen = self._pending.get(key)
                    self._pending[key] = event if seen is None else replace(
                        event, last=seen.last, events=event.events + seen.events)
                raise

    async def keep(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Write the buffer every :data:`AUTHLOG_FLUSH` seconds until cancelled, and once more then."""
        task_status.started()
        try:
            while True:
                await trio.sleep(AUTHLOG_FLUSH)
                try:
                    await self.flush()
                except StoreError as exc:
                    log.warning("could not write the authentication log (%s); retrying", exc)
        finally:
            with trio.move_on_after(2, shield=True):
                try:
                    await self.flush()
                except Exception:
                    log.exception("writing the authentication log at shutdown failed")

    async def count(self, user: User, *, action: str | None = None, ip: str | None = None) -> int:
        """How many entries of the user's log match, including what this process buffered (written first)."""
        await self.flush()
        return await self.store.count_auth(user.id, action=action, ip=ip)

    async def page(self, user: User, listing: Listing, *, action: str | None = None,
                   ip: str | None = None) -> list[AuthEvent]:
        """A page of the user's log, newest first."""
        return await self.store.auth_log(user.id, listing, action=action, ip=ip)

    async def event(self, user: User, event_id: str) -> AuthEvent:
        await self.flush()
        return await self.store.get_auth_event(user.id, event_id)

    async def prune(self) -> int:
        return await self.store.prune_auth(dt.datetime.now(dt.UTC))


class LoginService:
    def __init__(self, users: UserService, counters: Counters, pubsub: PubSub,
                 policy: LoginPolicy = LoginPolicy()) -> None:
        self.users = users
        self.counters = counters
        self.pubsub = pubsub
        self.policy = policy
        self.authlog = AuthLog(users.store)
        # successful verifications: (user id, stored hash, HMAC of the password) -> expiry. A changed password
        # changes the stored hash, so old entries can never match again.
        self._auth_cache: dict[tuple[str, str, bytes], float] = {}
        self._auth_key = secrets.token_bytes(32)
        self._verifying = _KeyedLocks()
        #: attempts on one (account, source) key run one at a time in this process (see ``authenticate``)
        self._attempts = _KeyedLocks()
        #: slots this process holds, as (key, token); the keeper renews them
        self._held: set[tuple[str, str]] = set()

    @staticmethod
    def _unlock_key(user: User) -> str:
        return "auth-unlocks:" + user.id

    async def _attempt_key(self, user: User | None, username: str, source: str | None) -> str:
        """``auth:<user id>[:u<unlocks>][:<source>]``; an unknown name counts under a hash of itself. The number of
        unlocks so far is part of a known user's key, so one ``unlock`` retires every window counted before it,
        from every source, on every instance that shares the counters."""
        if user is None:
            parts = ["auth", hashlib.sha256(username.strip().lower().encode("utf-8", "replace")).hexdigest()[:32]]
        else:
            parts = ["auth", user.id]
            unlocks = (await self.counters.window(self._unlock_key(user))).count
            if unlocks:
                parts.append(f"u{unlocks}")
        if source is not None:
            parts.append(source)
        return ":".join(parts)

    async def authenticate(self, username: str, password: str, *, peer: str | None = None,
                           protocol: str = "") -> User:
        """The user whose password this is (legacy hashes are rehashed to argon2id).

        The attempt is counted **before** the password is checked (one atomic increment), so parallel guesses
        cannot overrun the limit: past ``max_failures`` in the window, every attempt is refused with
        ``RateLimited`` whatever the password. A correct password takes its own count back (a decrement, not a
        reset: concurrent logins of the same account, right and wrong, each undo only themselves, so a stream of
        successful logins neither locks the account nor erases a stranger's failures). Raises ``AuthFailed``
        after the failure penalty.

        Attempts are counted per account **and** source: ``peer`` is the client's address (``"ip:port"`` as the
        listeners give it, or a bare address; IPv6 counts per /64, see :func:`source_of`), so a stranger's wrong
        guesses lock the account for the stranger's address only. Without ``peer`` every attempt on the account
        counts together. Cancellation: a counted attempt stays counted. A password check on a known account goes
        to its :class:`AuthLog` under ``protocol``.
        """
        try:
            user: User | None = await self.users.find(username)
        except NotFound:
            user = None
        policy = self.policy
        if not policy.max_failures:
            found = await self._verify(user, password)
        else:
            key = await self._attempt_key(user, username, source_of(peer))
            # One at a time per key in this process: otherwise N concurrent right logins (a client opening its
            # connections, a burst from one NAT) would all count before any takes its count back, and the
            # later ones be refused. Guesses are no faster for it; across processes at most one per process
            # is in flight.
            async with self._attempts.hold(key):
                window = await self.counters.increment(key, policy.failure_window)
                if window.count > policy.max_failures:
                    raise RateLimited(f"too many failed logins, try again in {math.ceil(window.retry_after)} s",
                                      window.retry_after)
                found = await self._verify(user, password)
                if found is not None:
                    await self.counters.decrement(key)
        if user is not None:
            self.authlog.record(user, result="success" if found is not None else "fail", protocol=protocol,
                                ip=address_of(peer))
        if found is None:
            await trio.sleep(policy.failure_penalty)
            raise AuthFailed("invalid credentials")
        return found

    async def unlock(self, user: User) -> None:
        """Forget the failed logins counted against ``user`` from every source: its next login is checked as if it
        had never failed. Effective wherever the counters are shared (every process of a single node with the
        SQLite counters; every instance with Redis)."""
        await self.counters.increment(self._unlock_key(user), UNLOCK_WINDOW)
        log.info("unlocked logins of %s (%s)", user.username, user.id)

    async def _verify(self, user: User | None, password: str) -> User | None:
        if user is None:
            # spend the same time as a real check, so timing does not reveal which usernames exist
            await trio.to_thread.run_sync(passwords.hash_password, password, limiter=hash_limiter)
            return None
        if user.disabled:
            return None
        key = (user.id, user.password_hash, hmac.new(self._auth_key, password.encode(), hashlib.sha256).digest())
        now = time.monotonic()
        if self._auth_cache.get(key, 0.0) > now:
            return user
        # concurrent logins with the same password (a client opening several connections) share one check
        async with self._verifying.hold(key):
            now = time.monotonic()
            if self._auth_cache.get(key, 0.0) > now:
                return user
            ok = await trio.to_thread.run_sync(
                passwords.verify_password, password, user.password_hash, limiter=hash_limiter
            )
        if not ok:
            return None
        if len(self._auth_cache) >= AUTH_CACHE_SIZE:
            self._auth_cache = {k: v for k, v in self._auth_cache.items() if v > now}
            if len(self._auth_cache) >= AUTH_CACHE_SIZE:
                self._auth_cache.clear()
        self._auth_cache[key] = now + AUTH_CACHE_SECONDS
        if passwords.needs_rehash(user.password_hash):
            await self.users.set_password(user, password)
        return user

    @asynccontextmanager
    async def session(self, user: User, protocol: str, max_connections: int) -> AsyncIterator[UserSession]:
        """Hold one of the user's ``max_connections`` slots for ``protocol`` and subscribe to the user's nudges
        for the block. Raises TooManyConnections when every slot is held (on any instance)."""
        key = f"{protocol}:{user.id}"
        token = await self.counters.acquire_slot(key, max_connections, SLOT_TTL)
        if token is None:
            raise TooManyConnections(f"too many simultaneous connections for this account (at most "
                                     f"{max_connections})")
        self._held.add((key, token))
        try:
            async with self.pubsub.subscribe(user_channel(user.id)) as sub:
                yield UserSession(user, protocol, sub, secrets.token_hex(8))
        finally:
            self._held.discard((key, token))
            with trio.CancelScope(shield=True):
                try:
                    await self.counters.release_slot(key, token)
                except StoreError as exc:  # the counters are away (Redis down): the slot expires by its TTL
                    log.warning("could not release connection slot %s (%s); it expires in %.0f s", key, exc,
                                SLOT_TTL)

    async def connections(self, user: User, protocol: str) -> int:
        return await self.counters.slots(f"{protocol}:{user.id}")

    async def keep_slots(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Renew every slot this process holds, every third of the TTL, until cancelled (run once per process).
        A slot that had expired anyway (the process stalled, or the counters lost their data) is logged; its
        session carries on, uncounted, until it ends."""
        task_status.started()
        while True:
            await trio.sleep(SLOT_TTL / 3)
            failed = 0
            held = list(self._held)
            for start in range(0, len(held), RENEW_BATCH):
                batch = held[start:start + RENEW_BATCH]
                try:
                    renewed = await self.counters.renew_slots(batch, SLOT_TTL)
                except StoreError:  # the counters are away: one line per round, not a traceback per slot
                    failed += len(batch)
                    continue
                except Exception:
                    log.exception("renewing %d connection slots failed", len(batch))
                    continue
                for (key, _token), ok in zip(batch, renewed, strict=True):
                    if not ok:
                        log.warning("connection slot %s had expired", key)
            if failed:
                log.warning("could not renew %d connection slots (the counters are unavailable); retrying in %.0f s",
                            failed, SLOT_TTL / 3)
