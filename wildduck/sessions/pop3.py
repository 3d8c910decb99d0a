"""One POP3 connection: drives :class:`wildduck.protocols.pop3.server.POP3Server` over a
:class:`~wildduck.sessions._runner.Connection` and calls the domain services (login, maildrop, message content).

RETR and TOP stream the message from the store in chunks (dot-stuffed on the way, never built whole in memory a
second time), each write under the send deadline. QUIT's changes are one domain operation; a dropped connection
changes nothing. A deleted or disabled account (or an administrator's logout) ends the session at once, even
while it waits for the client.
"""

from __future__ import annotations

import logging
import ssl
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass

import trio

from wildduck import __version__, metrics
from wildduck.domain.auth import LoginService, UserSession
from wildduck.domain.mailboxes import NoSuchMailbox
from wildduck.domain.maildrop import Maildrop, MaildropService
from wildduck.domain.messages import MessageService
from wildduck.errors import AuthFailed, DomainError, NotFound, RateLimited, StoreError, TooManyConnections
from wildduck.model import Nudge, Resync
from wildduck.protocols.pop3 import server as pop3
from wildduck.sessions._login import log_in
from wildduck.sessions._runner import Connection, Lifecycle, SessionEnded, run_session

log = logging.getLogger(__name__)

#: content is written to the client in pieces of about this size (or more: a piece of the message this long is
#: written whole)
WRITE_SIZE = 65536

#: the message is read in pieces of at most this size (smaller stored pieces whole, not copied): with a piece
#: and its dot-stuffed form, the most a RETR holds beyond the message itself
READ_SIZE = 262144

_RETR_TIME = metrics.COMMANDS.labels("pop3", "RETR")
_TOP_TIME = metrics.COMMANDS.labels("pop3", "TOP")


@dataclass(frozen=True, slots=True)
class POP3Settings:
    hostname: str
    max_line_length: int = 4096
    #: seconds a connection may stay silent (RFC 1939 3: at least 10 minutes)
    idle_timeout: float = 600.0
    #: simultaneous logged-in POP3 connections per user
    max_connections_per_user: int = 15
    #: connections from loopback addresses may log in without TLS
    allow_plaintext_auth_from_loopback: bool = True
    #: malformed or unknown commands in a row after which the connection is closed
    max_bad_commands: int = 20


@dataclass(frozen=True, slots=True)
class POP3Services:
    """The domain services a POP3 session calls (and nothing else)."""

    login: LoginService
    maildrop: MaildropService
    messages: MessageService


class POP3Session:
    def __init__(self, conn: Connection, services: POP3Services, settings: POP3Settings, *,
                 tls_context: ssl.SSLContext | None) -> None:
        self.conn = conn
        self.s = services
        self.settings = settings
        self.tls_context = tls_context
        self.proto = pop3.POP3Server(
            settings.hostname, max_line=settings.max_line_length, max_bad=settings.max_bad_commands,
            tls_available=tls_context is not None, tls_active=conn.tls_active,
            plaintext_allowed=settings.allow_plaintext_auth_from_loopback and conn.from_loopback,
            implementation=f"wildduck-{__version__}")
        self.out: list[bytes] = []
        self.login: UserSession | None = None
        self.drop: Maildrop | None = None
        #: what the login holds (connection slot, subscription), released at the end of the session
        self.stack = AsyncExitStack()
        #: the nudge that ended the account (deleted, disabled, logged out by an administrator)
        self.account_gone: Nudge | None = None
        #: a nudge about INBOX (or a loss marker) came after the maildrop snapshot: RETR checks the store again
        self.inbox_changed = False
        self._reading: trio.CancelScope | None = None
        self._helpers: trio.Nursery | None = None

    # -- plumbing -------------------------------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        """Queue ``data`` after every reply the protocol has queued (replies go out in command order)."""
        queued = self.proto.data_to_send()
        if queued:
            self.out.append(queued)
        if data:
            self.out.append(data)

    async def flush(self) -> None:
        self.send(b"")
        if self.out:
            data = b"".join(self.out)
            self.out.clear()
            await self.conn.send(data)

    def goodbye(self) -> bytes:
        return pop3.err("server shutting down, try again later", "SYS/TEMP")

    @staticmethod
    def farewell(nudge: Nudge) -> bytes:
        """The last line of a session whose account ``nudge`` ended: a logout says its reason with no response
        code (RFC 2449 has none for it, and the client may log in again at once); an account deleted or
        disabled is permanent (``[SYS/PERM]``)."""
        if nudge.is_logout:
            return pop3.err(nudge.reason)
        return pop3.err("this account is no longer available", "SYS/PERM")

    async def run(self) -> None:
        """Serve the connection; the login's slot and subscription are released when it ends. Exceptions never
        cross the helpers' nursery (no ExceptionGroup): they are raised again after it."""
        error: Exception | None = None
        async with self.stack:
            async with trio.open_nursery() as helpers:
                self._helpers = helpers
                try:
                    await self._serve()
                except Exception as exc:
                    error = exc
                finally:
                    helpers.cancel_scope.cancel()
        if error is not None:
            raise error

    async def _serve(self) -> None:
        self.send(self.proto.greeting())
        while True:
            if self.account_gone is not None:
                self.send(self.farewell(self.account_gone))
                raise SessionEnded
            event = self.proto.next_event()
            if event is pop3.NEED_DATA:
                await self.flush()
                await self.read()
            elif isinstance(event, pop3.ConnectionClosed):
                return
            elif isinstance(event, pop3.Ended):
                log.debug("pop3 session ended: %s", event.reason)
                raise SessionEnded
            elif isinstance(event, pop3.Login):
                await self.log_in(event)
            elif isinstance(event, pop3.StartTLS):
                await self.start_tls()
            elif isinstance(event, pop3.Retrieve):
                await self.retrieve(event)
            elif isinstance(event, pop3.Update):
                await self.update(event)
            else:  # pragma: no cover - every event is answered before the next one is asked for
                raise AssertionError(f"unexpected {event!r}")

    async def read(self) -> None:
        """Wait for the client's next bytes (an ended account interrupts the wait)."""
        data: bytes | None = None
        with trio.CancelScope() as self._reading:
            data = await self.conn.receive(self.settings.idle_timeout)
        self._reading = None
        if self.account_gone is not None:
            return
        if data is None:
            self.send(pop3.err("disconnected for inactivity"))
            raise SessionEnded
        self.proto.receive_data(data)

    async def watch_account(self, session: UserSession) -> None:
        """Note an account that was deleted, disabled or logged out by an administrator, and the first change to
        INBOX since the maildrop snapshot (until then RETR trusts that its messages are there: a message read
        before comes from the cache without a store call)."""
        async for item in session.subscription:
            if self._note(item):
                return

    def _note(self, item: Nudge | Resync) -> bool:
        """Take in one nudge; True when it ends the account."""
        if isinstance(item, Nudge) and item.ends_account:
            self.account_gone = item
            if self._reading is not None:
                self._reading.cancel()
            return True
        if isinstance(item, Resync) or (self.drop is not None and item.mailbox_id == self.drop.inbox.id):
            self.inbox_changed = True
        return False

    def _note_queued(self) -> None:
        """Take in the nudges queued but not yet seen by :meth:`watch_account` (it may not have run since they
        came: a change committed before the client's command must count)."""
        if self.login is None:
            return
        while True:
            try:
                item = self.login.subscription.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return
            if self._note(item):
                return

    # -- events ---------------------------------------------------------------------------------------------------
    async def log_in(self, event: pop3.Login) -> None:
        p = self.proto
        login_stack = AsyncExitStack()
        try:
            session = await log_in(self.s.login, login_stack, "pop3", event.username, event.password,
                                   peer=self.conn.peer, max_connections=self.settings.max_connections_per_user)
        except RateLimited as exc:
            p.refuse_login(str(exc), "LOGIN-DELAY")
            return
        except AuthFailed:
            p.refuse_login("invalid credentials", "AUTH")
            return
        except TooManyConnections as exc:
            p.refuse_login(str(exc), "IN-USE")
            return
        except StoreError as exc:
            log.error("pop3 login: storage failed: %s", exc)
            p.refuse_login("storage is unavailable, try again later", "SYS/TEMP")
            return
        try:
            drop = await self.s.maildrop.open(session.user)
        except NoSuchMailbox:
            await login_stack.aclose()
            p.refuse_login("this account has no INBOX", "SYS/PERM")
            return
        except StoreError as exc:
            await login_stack.aclose()
            log.error("pop3 login: storage failed reading the maildrop: %s", exc)
            p.refuse_login("storage is unavailable, try again later", "SYS/TEMP")
            return
        except BaseException:
            await login_stack.aclose()
            raise
        await self.stack.enter_async_context(login_stack)
        self.login, self.drop = session, drop
        assert self._helpers is not None
        self._helpers.start_soon(self.watch_account, session)
        p.accept_login([pop3.Listing(m.uid, m.size, m.id) for m in drop.messages])

    async def start_tls(self) -> None:
        assert self.tls_context is not None
        await self.flush()
        try:
            if not await self.conn.start_tls(self.tls_context):
                raise SessionEnded
        except trio.BrokenResourceError as exc:
            log.info("TLS handshake failed: %s", exc)
            raise SessionEnded from None
        self.proto.tls_started()

    async def retrieve(self, event: pop3.Retrieve) -> None:
        p = self.proto
        assert self.drop is not None
        started = time.perf_counter()
        try:
            self._note_queued()
            if self.account_gone is not None:
                if self.account_gone.is_logout:
                    p.refuse_message(self.account_gone.reason)
                else:
                    p.refuse_message("this account is no longer available", "SYS/PERM")
                return
            known = None if self.inbox_changed else event.message.uidl  # the UIDL is the stored message id
            opened = await self.s.messages.open_message(self.drop.inbox.id, event.message.uid, known_id=known)
        except NotFound:
            p.refuse_message(f"message {event.number} was deleted meanwhile")
            return
        except StoreError as exc:
            log.error("pop3 %s: storage failed: %s", "RETR" if event.lines is None else "TOP", exc)
            p.refuse_message("storage is unavailable, try again later", "SYS/TEMP")
            return
        first, writer = p.begin_message(event)
        # the +OK line goes out with the first content (after any replies queued before it): small messages are
        # one write; a piece at least WRITE_SIZE long (a big attachment) is written as it is, never copied
        self.send(first)
        pending = self.out[:]
        self.out.clear()
        size = sum(map(len, pending))
        send = self.conn.send
        for piece in opened.iter_content(chunk_size=READ_SIZE):
            out = writer.feed(piece)
            if out:
                if len(out) >= WRITE_SIZE:
                    if pending:
                        await send(b"".join(pending))
                        pending.clear()
                        size = 0
                    await send(out)
                else:
                    pending.append(out)
                    size += len(out)
                    if size >= WRITE_SIZE:
                        await send(b"".join(pending))
                        pending.clear()
                        size = 0
            if writer.done:
                break
        pending.append(writer.end())
        await send(b"".join(pending))
        pending.clear()
        p.message_sent(event)
        (_RETR_TIME if event.lines is None else _TOP_TIME).observe(time.perf_counter() - started)

    async def update(self, event: pop3.Update) -> None:
        assert self.drop is not None and self.login is not None
        try:
            outcome = await self.s.maildrop.update(self.drop, [m.uid for m in event.retrieved],
                                                   [m.uid for m in event.deleted], origin=self.login.origin)
        except StoreError as exc:
            log.error("pop3 QUIT: storage failed, nothing was changed: %s", exc)
            self.proto.update_done("storage is unavailable: no message was changed, try again later", "SYS/TEMP")
            return
        except DomainError as exc:  # Trash deleted between its lookup and the update: nothing was changed
            log.warning("pop3 QUIT: %s", exc)
            self.proto.update_done(f"no message was changed: {exc}", "SYS/TEMP")
            return
        log.info("pop3 QUIT: %d marked seen, %d moved to Trash, %d deleted", len(outcome.flagged.changed),
                 len(outcome.moved), len(outcome.removed))
        self.proto.update_done()


async def serve_pop3_connection(
    stream: trio.abc.Stream,
    services: POP3Services,
    settings: POP3Settings,
    *,
    peer: str = "",
    tls_context: ssl.SSLContext | None = None,
    tls_active: bool = False,
    send_timeout: float = 60.0,
    lifecycle: Lifecycle | None = None,
) -> None:
    """Serve one POP3 connection until QUIT, EOF, idle timeout, a broken stream or shutdown (``-ERR [SYS/TEMP]``).
    ``tls_context`` enables STLS; ``tls_active`` says the stream is TLS already (the implicit-TLS port)."""
    conn = Connection(stream, peer, send_timeout=send_timeout, lifecycle=lifecycle or Lifecycle(),
                      tls_active=tls_active)
    await run_session(POP3Session(conn, services, settings, tls_context=None if tls_active else tls_context),
                      "pop3")
