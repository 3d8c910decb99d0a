"""One IMAP connection: drives the sans-I/O receiver over a :class:`~wildduck.sessions._runner.Connection` and
calls the domain services. Command handlers live in the sibling modules and are found through the one command
registry (``registry.py``).

Sync between sessions: every change is in the journal; a pub/sub nudge marks the selected view dirty. The view is
replayed after commands where RFC 3501 allows untagged responses (never EXPUNGE during FETCH, STORE or SEARCH), so
sequence numbers stay consistent.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Protocol

import trio

from wildduck import metrics
from wildduck.domain.auth import LoginService, UserSession
from wildduck.domain.mailboxes import MailboxService, NoSuchMailbox, UnsupportedUse
from wildduck.domain.messages import MessageService
from wildduck.domain.search import SearchService
from wildduck.domain.sync import (
    Appeared,
    Change,
    Deleted,
    Expunged,
    FlagsChanged,
    MailboxView,
    Renamed,
    SyncService,
    uid_runs,
)
from wildduck.errors import (
    AlreadyExists,
    AuthFailed,
    DomainError,
    InvalidInput,
    MessageTooLarge,
    NotFound,
    NotPermitted,
    QuotaExceeded,
    RateLimited,
    StoreError,
    TooManyConnections,
)
from wildduck.log import connection_id, connection_user
from wildduck.model import Mailbox, Nudge, Resync, User
from wildduck.protocols.imap import grammar as g
from wildduck.protocols.imap import mutf7, serializer
from wildduck.protocols.imap.receiver import (
    NEED_DATA,
    PAUSED,
    CommandRejected,
    ConnectionClosed,
    IdleDone,
    LiteralAnnounced,
    RawCommand,
    Receiver,
    SaslResponse,
)
from wildduck.sessions._runner import Connection, SessionEnded
from wildduck.sessions.imap import uidonly

log = logging.getLogger(__name__)

SEPARATOR = "/"
#: largest literal accepted before authentication (user names and passwords)
PREAUTH_LITERAL_LIMIT = 8192
#: consecutive BAD responses after which the session is closed (WildDuck: 50)
MAX_BAD_IN_A_ROW = 50
SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
#: queued output is written once it reaches this size, even within one command
FLUSH_AT = 262144
#: ``$`` before any SEARCH RETURN (SAVE) in the selected mailbox (RFC 5182 2.1: names no message)
EMPTY_RESULT = g.SequenceSet(())


@dataclass(frozen=True, slots=True)
class IMAPSettings:
    hostname: str
    max_message_size: int
    max_line_length: int = 65536
    idle_timeout: float = 1800.0
    #: connections from these addresses may log in without TLS
    allow_plaintext_auth_from_loopback: bool = True
    #: simultaneous logged-in connections per user
    max_connections_per_user: int = 15


@dataclass(frozen=True, slots=True)
class IMAPServices:
    """The domain services an IMAP session calls (and nothing else)."""

    login: LoginService
    mailboxes: MailboxService
    messages: MessageService
    search: SearchService
    sync: SyncService


class TryCreate(NotFound):
    """The target mailbox of APPEND, COPY or MOVE does not exist (the client may CREATE it and retry)."""


Handler = Callable[["IMAPSession", g.Command], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Entry:
    """A registry row: the command's name, the states it is allowed in, its parser and its handler (None for the
    UID prefix, whose commands use their base command's handler)."""

    name: str
    states: frozenset[str]
    parser: g.Parser
    handler: Handler | None


#: the error table: domain errors (and StoreError) to NO responses with their RFC 5530 codes, most specific first
_ERRORS: tuple[tuple[type[Exception], str | None], ...] = (
    (UnsupportedUse, "USEATTR"), (QuotaExceeded, "OVERQUOTA"), (MessageTooLarge, "TOOBIG"), (TryCreate, "TRYCREATE"),
    (NotFound, "NONEXISTENT"), (AlreadyExists, "ALREADYEXISTS"), (NotPermitted, "CANNOT"),
    (InvalidInput, "CANNOT"), (AuthFailed, "AUTHENTICATIONFAILED"), (RateLimited, "ALERT"),
    (TooManyConnections, "ALERT"), (DomainError, None), (StoreError, "UNAVAILABLE"),
)


class Notifications(Protocol):
    """A session's NOTIFY SET (RFC 5465, ``notify.py``) as the session calls it: which nudges call for a round
    while the client waits, taking nudges in, a round of notifications, and the hooks around each command."""

    def wants(self, nudge: Nudge) -> bool: ...

    def note(self, item: Nudge | Resync, *, selected: bool) -> bool: ...

    async def deliver(self, *, idle: bool, force: bool = False) -> None: ...

    async def before(self, cmd: g.Command) -> None: ...

    async def after(self, cmd: g.Command) -> None: ...


def bye_text(nudge: Nudge) -> str:
    """The text of the ``* BYE`` that a nudge ending the account calls for: a logout's reason, or the account
    gone."""
    return nudge.reason if nudge.is_logout else "this account is no longer available"


class IMAPSession:
    def __init__(self, conn: Connection, services: IMAPServices, settings: IMAPSettings,
                 registry: Mapping[str, Entry], *, tls_context: ssl.SSLContext | None) -> None:
        self.conn = conn
        self.s = services
        self.settings = settings
        self.registry = registry
        self.tls_context = tls_context
        self.cid = connection_id.get()
        self.rx = Receiver(max_line=settings.max_line_length, max_literal=settings.max_message_size,
                           max_command=settings.max_message_size + 1024 * 1024)
        self.state = g.NOT_AUTHENTICATED
        self.login: UserSession | None = None
        self.view: MailboxView | None = None
        #: keywords the client has been told about (FLAGS / PERMANENTFLAGS)
        self.keywords: set[str] = set()
        self.condstore = False
        #: ENABLE QRESYNC (RFC 7162 3.2.3): VANISHED instead of EXPUNGE, UID in every unsolicited FETCH, [CLOSED]
        self.qresync = False
        self.utf8 = False
        #: ENABLE IMAP4rev2 (RFC 9051): no \\Recent, ESEARCH answers to SEARCH, UTF-8 names, LIST in SELECT
        self.rev2 = False
        #: ENABLE UIDONLY (RFC 9586): UIDs only, in commands and responses (``uidonly.py``)
        self.uidonly = False
        #: ``$``: the UIDs the last SEARCH RETURN (SAVE) kept in the selected mailbox (RFC 5182)
        self.saved_result = EMPTY_RESULT
        self.out: list[bytes] = []
        self.out_size = 0
        self.bad_in_a_row = 0
        #: what the session holds, released when it ends (the login's stack among it)
        self.stack = AsyncExitStack()
        #: the wait for the client's next bytes (``read_more``), and whether a nudge ended it (``_alarm``)
        self._reading: trio.CancelScope | None = None
        self._reading_ended = False
        #: what the login holds (connection slot, subscription), released by UNAUTHENTICATE or with the session
        self.login_stack: AsyncExitStack | None = None
        #: NOTIFY SET (RFC 5465): the events pushed while the client waits; None: none (NOTIFY NONE, never set)
        self.notify: Notifications | None = None
        #: a nudge NOTIFY wants has arrived (``_alarm``): a round is due before the session waits again
        self._pushing = False

    @property
    def user(self) -> User:
        assert self.login is not None
        return self.login.user

    @property
    def origin(self) -> str:
        return self.login.origin if self.login is not None else ""

    @property
    def selected(self) -> MailboxView:
        assert self.view is not None
        return self.view

    # -- plumbing -------------------------------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        if data:
            self.out.append(data)
            self.out_size += len(data)

    async def flush(self) -> None:
        if self.out:
            data = b"".join(self.out)
            self.out.clear()
            self.out_size = 0
            await self.conn.send(data)

    async def flush_if_large(self) -> None:
        if self.out_size >= FLUSH_AT:
            await self.flush()

    def goodbye(self) -> bytes:
        return serializer.untagged("BYE server shutting down")

    def capabilities(self) -> str:
        caps = ["IMAP4rev1", "IMAP4rev2", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE", "NOTIFY", "NAMESPACE",
                "UNSELECT", "UIDPLUS", "MOVE", "SPECIAL-USE", "CHILDREN", "CONDSTORE", "QRESYNC", "QUOTA",
                f"APPENDLIMIT={self.settings.max_message_size}", "LIST-STATUS", "UTF8=ACCEPT", "WITHIN",
                "LIST-EXTENDED", "CREATE-SPECIAL-USE", "BINARY", "PREVIEW", "STATUS=SIZE", "ESEARCH", "SEARCHRES",
                "MULTIAPPEND", "SORT", "SORT=DISPLAY", "ESORT", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES",
                "OBJECTID", "UIDONLY", "SAVEDATE"]
        if self.state != g.NOT_AUTHENTICATED:
            caps.append("UNAUTHENTICATE")
            if not self.conn.compressed:
                caps.append("COMPRESS=DEFLATE")
        if self.state == g.NOT_AUTHENTICATED:
            if self.tls_context is not None and not self.conn.tls_active:
                caps.append("STARTTLS")
            caps.append("AUTH=PLAIN" if self.login_allowed() else "LOGINDISABLED")
        return " ".join(caps)

    def login_allowed(self) -> bool:
        return self.conn.tls_active or (self.settings.allow_plaintext_auth_from_loopback
                                        and self.conn.from_loopback)

    async def run(self) -> None:
        """Serve the connection; the login's slot and subscription are released when it ends."""
        async with self.stack:
            self.stack.push_async_callback(self._release_login)
            await self._serve()

    async def _serve(self) -> None:
        self.send(serializer.untagged(f"OK [CAPABILITY {self.capabilities()}] {self.settings.hostname} "
                                      "wildduck IMAP ready"))
        while True:
            event = self.rx.next_event()
            if event is NEED_DATA:
                await self.flush()
                await self.read_more(self.settings.idle_timeout)
            elif event is PAUSED:  # pragma: no cover - literal() always decides before asking again
                raise AssertionError("a literal is waiting for a decision")
            elif isinstance(event, ConnectionClosed):
                return
            elif isinstance(event, LiteralAnnounced):
                await self.literal(event)
            elif isinstance(event, CommandRejected):
                self.tagged(event.tag or "", event.status if event.tag else "BAD", event.text, event.code)
            elif isinstance(event, (IdleDone, SaslResponse)):
                self.bad("", "unexpected continuation")
            else:
                assert isinstance(event, RawCommand)
                await self.command(event)

    async def read_more(self, idle_seconds: float) -> None:
        # a logged-in session waiting for its client is woken by a nudge that ends its account (deleted, disabled,
        # logged out: ``_alarm``), and says ``* BYE`` at once; with NOTIFY, by a nudge it wants: the round's
        # responses are sent and the wait goes on (until the same deadline: notifications are not the client's
        # activity)
        deadline = trio.current_time() + idle_seconds
        data: bytes | None = None
        while True:
            while self._pushing:  # a nudge may come while a round is sent: another round then
                self._pushing = False
                await self.push()
            with trio.CancelScope() as self._reading:
                data = await self.conn.receive(max(0.0, deadline - trio.current_time()))
            self._reading = None
            if self._reading_ended:
                self.drain_nudges()  # raises SessionEnded after the BYE
            if data is not None or not self._pushing:
                break
        if data is None:
            self.send(serializer.untagged("BYE autologout: idle for too long"))
            raise SessionEnded
        self.rx.receive_data(data)

    def _alarm(self, nudge: Nudge) -> None:
        """The subscription's alarm (called as a nudge is queued): interrupt a wait for the client when the
        account ended."""
        if nudge.ends_account and self._reading is not None:
            self._reading_ended = True
            self._reading.cancel()
        elif self.notify is not None and self.notify.wants(nudge):
            self._pushing = True
            if self._reading is not None:
                self._reading.cancel()

    async def literal(self, event: LiteralAnnounced) -> None:
        if self.state == g.NOT_AUTHENTICATED and event.size > PREAUTH_LITERAL_LIMIT:
            self.rx.refuse_literal()
            self.no(event.tag, "log in before sending large literals", "TOOBIG")
            return
        if event.size > self.settings.max_message_size:
            self.rx.refuse_literal()
            self.no(event.tag, "literal is over the size limit", "TOOBIG")
            return
        if self.login is not None:
            try:
                await self.s.messages.check_room(self.user.id, event.earlier + event.size)
            except QuotaExceeded:
                self.rx.refuse_literal()
                self.no(event.tag, "mailbox is over quota", "OVERQUOTA")
                return
        self.rx.accept_literal()
        self.send(serializer.continuation("Ready for literal data"))

    async def command(self, raw: RawCommand) -> None:
        self.drain_nudges()
        entry = self.registry.get(raw.name)
        if entry is not None and self.state not in entry.states:
            self.bad(raw.tag, f"{raw.name} is not allowed in the {self.state} state")
            return
        if entry is None:
            self.bad(raw.tag, f"unknown command {raw.name[:40]}")
            return
        cmd = g.parse(raw, entry.parser)
        if isinstance(cmd, CommandRejected):
            self.bad(raw.tag, cmd.text)
            return
        if self.uidonly and (refused := uidonly.refusal(cmd)) is not None:
            self.tagged(raw.tag, "BAD", refused, uidonly.CODE)
            return
        handler = self.registry[cmd.name.removeprefix("UID ")].handler
        assert handler is not None
        started = time.perf_counter()
        try:
            if self.notify is not None:
                await self.notify.before(cmd)
            await handler(self, cmd)
        except (DomainError, StoreError) as exc:
            if isinstance(exc, StoreError):
                log.error("imap %s: storage failed: %s", cmd.name, exc)
            code = next(c for kind, c in _ERRORS if isinstance(exc, kind))
            text = "storage is unavailable, try again later" if isinstance(exc, StoreError) else str(exc)
            self.no(cmd.tag, text, code)
        finally:
            if cmd.name != "IDLE":  # IDLE lasts as long as the client wants
                metrics.COMMANDS.labels("imap", cmd.name).observe(time.perf_counter() - started)
        if self.notify is not None:
            await self.notify.after(cmd)

    def tagged(self, tag: str, status: str, text: str, code: str | None = None) -> None:
        """A tagged (or, without a tag, untagged BAD) response. A run of MAX_BAD_IN_A_ROW BADs ends the session:
        a client that only sends garbage is not served forever."""
        self.send(serializer.tagged(tag, status, text, code) if tag else serializer.untagged(f"{status} {text}"))
        if status != "BAD":
            self.bad_in_a_row = 0
            return
        self.bad_in_a_row += 1
        if self.bad_in_a_row >= MAX_BAD_IN_A_ROW:
            self.send(serializer.untagged("BYE too many invalid commands"))
            raise SessionEnded

    def ok(self, tag: str, text: str, code: str | None = None) -> None:
        self.tagged(tag, "OK", text, code)

    def no(self, tag: str, text: str, code: str | None = None) -> None:
        self.tagged(tag, "NO", text, code)

    def bad(self, tag: str, text: str) -> None:
        self.tagged(tag, "BAD", text)

    def logged_in(self, login: UserSession, stack: AsyncExitStack) -> None:
        """The user is logged in; ``stack`` holds the login's slot and subscription (released by
        :meth:`log_out`, or when the session ends)."""
        self.login = login
        self.login_stack = stack
        self.state = g.AUTHENTICATED
        login.subscription.alarm = self._alarm

    async def _release_login(self) -> None:
        stack, self.login, self.login_stack = self.login_stack, None, None
        if stack is not None:
            await stack.aclose()

    async def log_out(self) -> None:
        """Back to the not-authenticated state (UNAUTHENTICATE, RFC 8437): the selected mailbox goes without an
        expunge, ENABLEd extensions are off, the connection slot and the subscription are released. TLS and
        COMPRESS stay."""
        self.unselect()
        self.state = g.NOT_AUTHENTICATED
        self.condstore = self.qresync = self.utf8 = self.rev2 = self.uidonly = False
        self.notify = None
        await self._release_login()
        connection_user.set("")

    # -- names ----------------------------------------------------------------------------------------------------
    def decode_name(self, raw: bytes) -> str:
        """The mailbox path a client named (modified UTF-7 unless UTF8=ACCEPT is enabled)."""
        if self.utf8:
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput("mailbox name is not valid UTF-8") from None
        try:
            return mutf7.decode(raw)
        except ValueError as exc:
            raise InvalidInput(f"invalid mailbox name: {exc}") from None

    def decode_pattern(self, raw: bytes) -> str:
        if self.utf8:
            return raw.decode("utf-8", "replace")
        try:
            return mutf7.decode(raw)
        except ValueError:
            return raw.decode("ascii", "replace")

    def encode_name(self, name: str) -> bytes:
        if self.utf8:
            return serializer.astring(name, utf8=True)
        return serializer.astring(mutf7.encode(name))

    async def mailbox(self, raw: bytes, *, target: bool = False) -> Mailbox:
        """The user's mailbox of this name; for the target of APPEND/COPY/MOVE a missing one is NO [TRYCREATE]."""
        try:
            return await self.s.mailboxes.get(self.user.id, self.decode_name(raw))
        except NoSuchMailbox as exc:
            if target:
                raise TryCreate(str(exc)) from None
            raise

    # -- sync -----------------------------------------------------------------------------------------------------
    def drain_nudges(self) -> None:
        """Take in every queued nudge: the selected view notes those of its mailbox; an account that was deleted,
        disabled or logged out ends the session (``* BYE``)."""
        if self.login is None:
            return
        sub = self.login.subscription
        while True:
            try:
                item = sub.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return
            self.note(item)

    def note(self, item: Nudge | Resync) -> bool:
        """Take in one nudge; True if it concerns this session."""
        if isinstance(item, Nudge) and item.ends_account:
            self.send(serializer.untagged(f"BYE {bye_text(item)}"))
            raise SessionEnded
        concerns = self.view is not None and self.view.note(item)
        if self.notify is not None:  # NOTIFY decides what a wait for the client is woken for
            wanted = self.notify.note(item, selected=concerns)
            self._pushing = self._pushing or wanted  # a round before the session waits again
            return wanted
        return concerns

    async def push(self, *, idle: bool = False, force: bool = False) -> None:
        """Send what changed while the client waits (between commands with NOTIFY, RFC 5465 3; in IDLE, where
        NOTIFY's events replace IDLE's own, RFC 5465 4): NOTIFY's round when it is set, else the selected
        mailbox's changes."""
        if self.notify is None:
            await self.sync(force=force)
        else:
            self.drain_nudges()
            if self.notify is not None:
                await self.notify.deliver(idle=idle, force=force)
        await self.flush()

    async def sync(self, *, expunge: bool = True, force: bool = False) -> None:
        """Replay the journal of the selected mailbox and queue the untagged responses it calls for.

        The journal is read when a nudge said the mailbox changed, or when ``force`` asks (NOOP, CHECK, IDLE:
        this also catches writers that cannot nudge this process)."""
        if self.view is None:
            return
        self.drain_nudges()
        changes = await self.view.refresh(expunge=expunge, force=force)
        self.forget_recent()
        self.render(changes)

    def note_held_back(self) -> None:
        """RFC 7162 3.2: with QRESYNC, a command that may have told MODSEQs above an expunge it had to hold back
        (FETCH, STORE and SEARCH by sequence number report none) ends with a HIGHESTMODSEQ below that expunge: a
        client that resynchronizes from there is told about it. The view is still dirty then (its replay stopped
        before the expunge, at ``known_modseq``)."""
        view = self.view
        if self.qresync and view is not None and view.dirty:
            self.send(serializer.untagged(f"OK [HIGHESTMODSEQ {view.known_modseq}] expunges are pending"))

    def render(self, changes: Iterable[Change]) -> None:
        """Queue the untagged responses of the view's changes; with QRESYNC, each run of expunges is one
        ``* VANISHED`` of their UIDs (RFC 7162 3.2.10)."""
        vanished: list[int] = []
        for change in changes:
            if isinstance(change, Expunged):
                if self.qresync or self.uidonly:  # RFC 9586: VANISHED with UIDONLY too
                    vanished.append(change.uid)
                else:
                    self.send(b"* %d EXPUNGE\r\n" % change.seq)
                continue
            if vanished:
                self.send(serializer.vanished(uid_runs(sorted(vanished))))
                vanished = []
            if isinstance(change, FlagsChanged):
                flags = tuple(f for f in change.flags if f != "\\Recent") if self.rev2 else change.flags
                # RFC 9051 7.5.2 and RFC 7162 3.2.4: an unsolicited FETCH carries the UID
                self.send(self.flags_response(change.seq, change.uid, with_uid=self.rev2 or self.qresync,
                                              flags=flags, modseq=change.modseq))
            elif isinstance(change, Appeared):
                self.send(self.keyword_announcement(change.uids))
                self.send(b"* %d EXISTS\r\n" % change.exists)
                if not self.rev2:  # RFC 9051 has no \\Recent and no RECENT response
                    self.send(b"* %d RECENT\r\n" % change.recent)
            elif isinstance(change, Renamed):
                self.send(serializer.untagged("NO the selected mailbox was renamed by another session"))
            elif isinstance(change, Deleted):
                self.send(serializer.untagged("BYE the selected mailbox was deleted, have to disconnect"))
                raise SessionEnded
        if vanished:
            self.send(serializer.vanished(uid_runs(sorted(vanished))))

    def flags_response(self, seq: int, uid: int, *, with_uid: bool = False, flags: tuple[str, ...] | None = None,
                       modseq: int | None = None) -> bytes:
        """An untagged FETCH with the message's flags (the view's current ones unless given), preceded by
        FLAGS/PERMANENTFLAGS when they use a keyword the client has not been told about."""
        view = self.selected
        if flags is None:
            flags = view.flags_of(uid)
        announce = self._announce({f for f in flags if not f.startswith("\\")})
        items = [b"FLAGS " + serializer.flag_list(flags)]
        if with_uid and not self.uidonly:  # a UIDFETCH's number is the UID
            items.insert(0, b"UID %d" % uid)
        if self.condstore:
            items.append(b"MODSEQ (%d)" % (modseq if modseq is not None else view.modseqs.get(uid, 0)))
        return announce + uidonly.response(self.uidonly, seq, uid) + b" ".join(items) + b")\r\n"

    def keyword_announcement(self, uids: Iterable[int]) -> bytes:
        """FLAGS/PERMANENTFLAGS lines if these messages carry a keyword the client has not been told about (which
        it now has), else nothing."""
        if self.view is None:
            return b""
        flags = self.view.flags
        return self._announce({f for uid in uids for f in flags.get(uid, ()) if not f.startswith("\\")})

    def _announce(self, keywords: set[str]) -> bytes:
        if keywords <= self.keywords:
            return b""
        self.keywords |= keywords
        return self.flags_lines()

    def flags_lines(self) -> bytes:
        flags = " ".join([*SYSTEM_FLAGS, *sorted(self.keywords)])
        return (serializer.untagged(f"FLAGS ({flags})")
                + serializer.untagged(f"OK [PERMANENTFLAGS ({flags} \\*)] flags permitted"))

    def enable_condstore(self) -> None:
        """CONDSTORE is on from now (RFC 7162 3.1: FETCH of MODSEQ, CHANGEDSINCE, UNCHANGEDSINCE, SEARCH MODSEQ,
        ENABLE); the first time, with a mailbox selected, the client is told its HIGHESTMODSEQ."""
        if self.condstore:
            return
        self.condstore = True
        view = self.view
        if view is not None:  # the journal's watermark, or this session's own last change if that is later
            highest = max(view.known_modseq, max(view.table.modseqs, default=0))
            self.send(serializer.untagged(f"OK [HIGHESTMODSEQ {highest}] highest"))

    def forget_recent(self) -> None:
        """With IMAP4rev2 no message is \\Recent (RFC 9051 has no such flag): the view's set is emptied after
        every read of the journal. The messages are still claimed, so IMAP4rev1 sessions never see them \\Recent
        either (each message is \\Recent in one session at most)."""
        if self.rev2 and self.view is not None:
            self.view.recent.clear()

    def enable_rev2(self) -> None:
        """IMAP4rev2 (RFC 9051) from now: also UTF-8 mailbox names and strings (its 5.1, as UTF8=ACCEPT)."""
        self.rev2 = self.utf8 = True
        self.forget_recent()

    def unselect(self) -> None:
        """Back to the authenticated state (SELECT, EXAMINE, CLOSE, UNSELECT, the selected mailbox deleted): the
        view, the keywords told and ``$`` go."""
        self.view = None
        self.keywords = set()
        self.saved_result = EMPTY_RESULT
        self.state = g.AUTHENTICATED
