"""One IMAP connection: drives the sans-I/O receiver over a trio stream and calls the domain.

Sync between sessions: every change is in the journal; a pub/sub nudge wakes IDLE. A selected session applies the
journal after commands where RFC 3501 allows untagged responses (never EXPUNGE during FETCH, STORE or SEARCH), so
sequence numbers stay consistent.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import itertools
import logging
import re
import secrets
import ssl
from collections.abc import Callable, Iterable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import trio

from wildduck.domain import search as search_mod
from wildduck.domain.delivery import nudge_payload, parse_nudge, prepare_soon, user_channel
from wildduck.domain.models import AppendResult, Mailbox, MailboxSpec, MessageRecord, NewMessage, SearchRow, User
from wildduck.domain.users import UserService
from wildduck.errors import AlreadyExists, DomainError, InvalidInput, NotFound, QuotaExceeded, RateLimited
from wildduck.net.compress import DeflateStream
from wildduck.ports.counters import Counters
from wildduck.ports.mailstore import MailStore
from wildduck.ports.pubsub import PubSub
from wildduck.protocols.imap import grammar as g
from wildduck.protocols.imap import mutf7, serializer
from wildduck.protocols.imap.fetch import MessageView, body_item, internaldate, structure_items
from wildduck.protocols.imap.receiver import (
    NEED_DATA,
    CommandRejected,
    ConnectionClosed,
    IdleDone,
    LiteralAnnounced,
    Mode,
    RawCommand,
    Receiver,
    SaslResponse,
)

log = logging.getLogger(__name__)

_ids = itertools.count(1)
READ_SIZE = 65536
SEPARATOR = "/"
#: largest literal accepted before authentication (user names and passwords)
PREAUTH_LITERAL_LIMIT = 8192
#: consecutive BAD responses after which the session is closed (WildDuck: 50)
MAX_BAD_IN_A_ROW = 50
SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")


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


@dataclass
class Services:
    store: Any  # MailStore + BlobStore
    users: UserService
    pubsub: PubSub
    default_quota: int
    counters: Counters


class TryCreate(NotFound):
    """The target mailbox of APPEND, COPY or MOVE does not exist (the client may CREATE it and retry)."""


class Bye(Exception):
    """End the session after sending what is queued."""


@dataclass
class Selected:
    mailbox: Mailbox
    readonly: bool
    uids: list[int]
    flags: dict[int, tuple[str, ...]]
    modseqs: dict[int, int]
    known_modseq: int
    keywords: set[str] = field(default_factory=set)
    #: messages that are \\Recent in this session
    recent: set[int] = field(default_factory=set)

    def flags_of(self, uid: int) -> tuple[str, ...]:
        flags = self.flags.get(uid, ())
        return (*flags, "\\Recent") if uid in self.recent else flags

    def seq_of(self, uid: int) -> int:
        from bisect import bisect_left

        i = bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else 0


def _is_loopback(peer: str) -> bool:
    host = peer.rsplit(":", 1)[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "%":
            out.append("[^/]*")
        else:
            out.append(re.escape(ch))
    return re.compile("^" + "".join(out) + "$", re.DOTALL | (re.IGNORECASE if pattern.upper().startswith("INBOX")
                                                          else 0))


class IMAPSession:
    def __init__(self, stream: trio.abc.Stream, services: Services, settings: IMAPSettings, *, peer: str,
                 tls_context: ssl.SSLContext | None, tls_active: bool) -> None:
        self.stream = stream
        self.s = services
        self.store: MailStore = services.store
        self.settings = settings
        self.peer = peer
        self.tls_context = tls_context
        self.tls_active = tls_active
        self.cid = next(_ids)
        self.rx = Receiver(max_line=max(settings.max_line_length, 65536), max_literal=settings.max_message_size,
                           max_command=settings.max_message_size + 1024 * 1024)
        self.state = g.NOT_AUTHENTICATED
        self.user: User | None = None
        self.selected: Selected | None = None
        self.condstore = False
        self.utf8 = False
        self.out: list[bytes] = []
        self.bad_in_a_row = 0
        #: the user's nudge channel, open from login to logout
        self.subscription: Any = None
        self._dropped = 0
        #: a nudge (or our own change) may have touched the selected mailbox: the journal must be read
        self.dirty = True
        #: tags this session's nudges, so that it does not re-read the journal for its own changes
        self.origin = secrets.token_hex(8)
        self._stack = AsyncExitStack()

    # -- plumbing -------------------------------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        self.out.append(data)

    async def flush(self) -> None:
        if self.out:
            data = b"".join(self.out)
            self.out.clear()
            await self.stream.send_all(data)

    def capabilities(self) -> str:
        caps = ["IMAP4rev1", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE", "NAMESPACE", "UNSELECT", "UIDPLUS",
                "MOVE", "SPECIAL-USE", "CHILDREN", "CONDSTORE", "QUOTA",
                f"APPENDLIMIT={self.settings.max_message_size}", "LIST-STATUS", "UTF8=ACCEPT", "WITHIN"]
        if self.state != g.NOT_AUTHENTICATED and not isinstance(self.stream, DeflateStream):
            caps.append("COMPRESS=DEFLATE")
        if self.state == g.NOT_AUTHENTICATED:
            if self.tls_context is not None and not self.tls_active:
                caps.append("STARTTLS")
            if self.login_allowed():
                caps.append("AUTH=PLAIN")
            else:
                caps.append("LOGINDISABLED")
        return " ".join(caps)

    def login_allowed(self) -> bool:
        return self.tls_active or (self.settings.allow_plaintext_auth_from_loopback and _is_loopback(self.peer))

    async def run(self) -> None:
        async with self._stack:
            await self._run()

    async def _run(self) -> None:
        self.send(serializer.untagged(f"OK [CAPABILITY {self.capabilities()}] {self.settings.hostname} "
                                      "wildduck IMAP ready"))
        try:
            while True:
                event = self.rx.next_event()
                if event is NEED_DATA:
                    await self.flush()
                    await self.read_more(self.settings.idle_timeout)
                    continue
                if isinstance(event, ConnectionClosed):
                    return
                if isinstance(event, LiteralAnnounced):
                    await self.literal(event)
                    continue
                if isinstance(event, CommandRejected):
                    self.tagged(event.tag or "", event.status if event.tag else "BAD", event.text, event.code)
                    continue
                if isinstance(event, (IdleDone, SaslResponse)):
                    self.bad("", "unexpected continuation")
                    continue
                assert isinstance(event, RawCommand)
                await self.command(event)
        except Bye:
            await self.flush()

    async def read_more(self, idle_seconds: float) -> None:
        with trio.move_on_after(idle_seconds) as scope:
            data = await self.stream.receive_some(READ_SIZE)
        if scope.cancelled_caught:
            self.send(serializer.untagged("BYE autologout: idle for too long"))
            raise Bye
        self.rx.receive_data(data)

    async def literal(self, event: LiteralAnnounced) -> None:
        if self.state == g.NOT_AUTHENTICATED and event.size > PREAUTH_LITERAL_LIMIT:
            self.rx.refuse_literal()
            self.no(event.tag, "log in before sending large literals", "TOOBIG")
            return
        if event.size > self.settings.max_message_size:
            self.rx.refuse_literal()
            self.no(event.tag, "literal is over the size limit", "TOOBIG")
            return
        if self.user is not None and self.state != g.NOT_AUTHENTICATED:
            user = await self.store.get_user(self.user.id)
            quota = user.quota if user.quota is not None else self.s.default_quota
            if user.storage_used + event.size > quota:
                self.rx.refuse_literal()
                self.no(event.tag, "mailbox is over quota", "OVERQUOTA")
                return
        self.rx.accept_literal()
        self.send(serializer.continuation("Ready for literal data"))

    async def command(self, raw: RawCommand) -> None:
        allowed = g.ALLOWED_STATES.get(raw.name)
        if allowed is not None and self.state not in allowed:
            self.bad(raw.tag, f"{raw.name} is not allowed in the {self.state} state")
            return
        cmd = g.parse(raw)
        if isinstance(cmd, CommandRejected):
            self.bad(raw.tag, cmd.text)
            return
        handler = HANDLERS[cmd.name.removeprefix("UID ")] if cmd.name.startswith("UID ") else HANDLERS[cmd.name]
        try:
            await handler(self, cmd)
        except QuotaExceeded as exc:
            self.no(cmd.tag, str(exc), "OVERQUOTA")
        except TryCreate as exc:
            self.no(cmd.tag, str(exc), "TRYCREATE")
        except NotFound as exc:
            self.no(cmd.tag, str(exc), "NONEXISTENT")
        except AlreadyExists as exc:
            self.no(cmd.tag, str(exc), "ALREADYEXISTS")
        except InvalidInput as exc:
            self.no(cmd.tag, str(exc), "CANNOT")
        except DomainError as exc:
            self.no(cmd.tag, str(exc))

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
            raise Bye

    def ok(self, tag: str, text: str, code: str | None = None) -> None:
        self.tagged(tag, "OK", text, code)

    def no(self, tag: str, text: str, code: str | None = None) -> None:
        self.tagged(tag, "NO", text, code)

    def bad(self, tag: str, text: str) -> None:
        self.tagged(tag, "BAD", text)

    # -- names ----------------------------------------------------------------------------------------------------
    def decode_name(self, raw: bytes) -> str:
        if self.utf8:
            try:
                name = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput("mailbox name is not valid UTF-8") from None
        else:
            try:
                name = mutf7.decode(raw)
            except ValueError as exc:
                raise InvalidInput(f"invalid mailbox name: {exc}") from None
        name = name.rstrip(SEPARATOR)
        if name.upper() == "INBOX":
            return "INBOX"
        if not name or any(not p for p in name.split(SEPARATOR)) or any(c in name for c in "\r\n\x00*%"):
            raise InvalidInput("invalid mailbox name")
        return name

    def encode_name(self, name: str) -> bytes:
        if self.utf8:
            return serializer.astring(name, utf8=True)
        return serializer.astring(mutf7.encode(name))

    async def mailbox(self, raw: bytes, *, target: bool = False) -> Mailbox:
        """The user's mailbox of this name; for the target of APPEND/COPY/MOVE a missing one is NO [TRYCREATE]."""
        assert self.user is not None
        name = self.decode_name(raw)
        found = await self.store.find_mailbox(self.user.id, name)
        if found is None:
            raise (TryCreate if target else NotFound)(f"no mailbox {name}")
        return found

    # -- sync -----------------------------------------------------------------------------------------------------
    async def nudge(self, mailbox: Mailbox) -> None:
        """Tell every session of the mailbox's user that its journal grew (this one skips its own nudge)."""
        await self.s.pubsub.publish(user_channel(mailbox.user_id), nudge_payload(mailbox.id, self.origin))

    def _drain_nudges(self) -> None:
        sub, sel = self.subscription, self.selected
        if sub is None or sel is None:
            return
        while True:
            try:
                payload = sub.receive_nowait()
            except trio.WouldBlock:
                break
            mailbox_id, origin = parse_nudge(payload)
            if mailbox_id == sel.mailbox.id and origin != self.origin:
                self.dirty = True
        if sub.dropped != self._dropped:  # nudges were lost: assume the worst
            self._dropped = sub.dropped
            self.dirty = True

    async def sync(self, *, expunge: bool = True, force: bool = False) -> None:
        """Apply the journal of the selected mailbox and queue untagged EXISTS/EXPUNGE/FETCH responses.

        The journal is read when a nudge said the mailbox changed, or when ``force`` asks (NOOP, CHECK, IDLE:
        this also catches writers that cannot nudge this process)."""
        sel = self.selected
        if sel is None:
            return
        self._drain_nudges()
        if not (self.dirty or force):
            return
        entries = await self.store.changes_since(sel.mailbox.id, sel.known_modseq)
        if not entries:
            self.dirty = False
            return
        if entries[0].modseq > sel.known_modseq + 1 and not expunge:
            return  # a gap (pruned journal) needs a full resync, which may expunge: wait for a command that may
        if entries[0].modseq > sel.known_modseq + 1:
            await self.full_resync()
            return
        reported_exists = len(sel.uids)
        self.dirty = False
        for entry in entries:
            if entry.command == "EXPUNGE" and not expunge:
                self.dirty = True  # deferred until a command that may report expunges
                break
            if entry.command == "EXISTS":
                if not sel.uids or entry.uid > sel.uids[-1]:
                    sel.uids.append(entry.uid)
                    sel.flags[entry.uid] = entry.flags or ()
                    sel.modseqs[entry.uid] = entry.modseq
            elif entry.command == "EXPUNGE":
                seq = sel.seq_of(entry.uid)
                if seq:
                    if len(sel.uids) > reported_exists and seq > reported_exists:
                        pass  # not announced yet: drop silently
                    else:
                        self.send(serializer.untagged(f"{seq} EXPUNGE"))
                        reported_exists -= 1
                    del sel.uids[seq - 1]
                    sel.flags.pop(entry.uid, None)
                    sel.modseqs.pop(entry.uid, None)
                    sel.recent.discard(entry.uid)
            elif entry.command == "FETCH":
                seq = sel.seq_of(entry.uid)
                # our own STORE may already have applied a newer change: never go back in MODSEQ
                if seq and entry.flags is not None and entry.modseq > sel.modseqs.get(entry.uid, 0):
                    changed = sel.flags.get(entry.uid) != entry.flags
                    sel.flags[entry.uid] = entry.flags
                    sel.modseqs[entry.uid] = entry.modseq
                    if changed and seq <= reported_exists:
                        self.send(self.flags_response(seq, entry.uid))
            sel.known_modseq = entry.modseq
        arrived = sel.uids[reported_exists:]
        self.send(self.keyword_announcement(arrived))
        if arrived:
            sel.recent.update(await self.store.recent(sel.mailbox.id, claim=not sel.readonly, uids=arrived))
            self.send(serializer.untagged(f"{len(sel.uids)} EXISTS"))
            self.send(serializer.untagged(f"{len(sel.recent)} RECENT"))

    async def full_resync(self) -> None:
        sel = self.selected
        assert sel is not None
        snapshot = await self.store.mailbox_snapshot(sel.mailbox.id)
        current, mailbox = snapshot.messages, snapshot.mailbox
        now = {m.uid for m in current}
        for uid in reversed(list(sel.uids)):
            if uid not in now:
                self.send(serializer.untagged(f"{sel.seq_of(uid)} EXPUNGE"))
                del sel.uids[sel.seq_of(uid) - 1]
        known = set(sel.uids)
        for m in current:
            if m.uid not in known:
                sel.uids.append(m.uid)
            elif sel.flags.get(m.uid) != m.flags:
                sel.flags[m.uid] = m.flags
                self.send(self.flags_response(sel.seq_of(m.uid), m.uid))
            sel.flags[m.uid] = m.flags
            sel.modseqs[m.uid] = m.modseq
        sel.uids.sort()
        sel.known_modseq = mailbox.highest_modseq
        self.send(serializer.untagged(f"{len(sel.uids)} EXISTS"))

    def flags_response(self, seq: int, uid: int, *, with_uid: bool = False) -> bytes:
        """An untagged FETCH with the message's flags, preceded by FLAGS/PERMANENTFLAGS when it uses a keyword the
        client has not been told about."""
        sel = self.selected
        assert sel is not None
        announce = self.keyword_announcement((uid,))
        items = [b"FLAGS " + serializer.flag_list(sel.flags_of(uid))]
        if with_uid:
            items.insert(0, b"UID %d" % uid)
        if self.condstore:
            items.append(b"MODSEQ (%d)" % sel.modseqs.get(uid, 0))
        return announce + b"* %d FETCH (" % seq + b" ".join(items) + b")\r\n"

    def keyword_announcement(self, uids: Iterable[int]) -> bytes:
        """FLAGS/PERMANENTFLAGS lines if these messages carry a keyword the client has not been told about (which
        it now has), else nothing."""
        sel = self.selected
        if sel is None:
            return b""
        keywords = {f for uid in uids for f in sel.flags.get(uid, ()) if not f.startswith("\\")}
        if keywords <= sel.keywords:
            return b""
        sel.keywords |= keywords
        return self.flags_lines(sel)

    def flags_lines(self, sel: Selected) -> bytes:
        flags = " ".join([*SYSTEM_FLAGS, *sorted(sel.keywords)])
        return (serializer.untagged(f"FLAGS ({flags})")
                + serializer.untagged(f"OK [PERMANENTFLAGS ({flags} \\*)] flags permitted"))

    # -- any state ------------------------------------------------------------------------------------------------
    async def cmd_capability(self, cmd: g.Command) -> None:
        self.send(serializer.untagged(f"CAPABILITY {self.capabilities()}"))
        self.ok(cmd.tag, "CAPABILITY completed")

    async def cmd_noop(self, cmd: g.Command) -> None:
        await self.sync(force=True)
        self.ok(cmd.tag, f"{cmd.name} completed")

    async def cmd_logout(self, cmd: g.Command) -> None:
        self.send(serializer.untagged("BYE logging out"))
        self.ok(cmd.tag, "LOGOUT completed")
        raise Bye

    async def cmd_id(self, cmd: g.Command) -> None:
        self.send(serializer.untagged('ID ("name" "wildduck" "vendor" "wildduck")'))
        self.ok(cmd.tag, "ID completed")

    async def cmd_starttls(self, cmd: g.Command) -> None:
        if self.tls_context is None or self.tls_active:
            self.bad(cmd.tag, "STARTTLS is not available")
            return
        self.ok(cmd.tag, "Begin TLS negotiation now")
        await self.flush()
        self.rx.discard_buffer()
        tls = trio.SSLStream(self.stream, self.tls_context, server_side=True)
        with trio.move_on_after(30):
            await tls.do_handshake()
            self.stream = tls
            self.tls_active = True
            return
        raise Bye

    # -- not authenticated ----------------------------------------------------------------------------------------
    async def login(self, tag: str, username: str, password: str) -> None:
        try:
            user = await self.s.users.authenticate(username, password)
        except RateLimited as exc:
            await trio.sleep(1.0)
            log.warning("imap %d: login for %r from %s refused: %s", self.cid, username[:100], self.peer, exc)
            self.no(tag, str(exc), "ALERT")
            return
        if user is None:
            log.info("imap %d: failed login for %r from %s", self.cid, username[:100], self.peer)
            await trio.sleep(1.0)  # slow down guessing
            self.no(tag, "invalid credentials", "AUTHENTICATIONFAILED")
            return
        slot = self.s.counters.connection(f"imap:{user.id}", self.settings.max_connections_per_user)
        if not await self._stack.enter_async_context(slot):
            log.warning("imap %d: %s from %s: too many simultaneous connections", self.cid, user.username, self.peer)
            self.no(tag, f"too many simultaneous connections for this account (at most "
                         f"{self.settings.max_connections_per_user})", "ALERT")
            return
        self.user = user
        self.state = g.AUTHENTICATED
        self.subscription = await self._stack.enter_async_context(self.s.pubsub.subscribe(user_channel(user.id)))
        log.info("imap %d: %s logged in from %s", self.cid, user.username, self.peer)
        self.ok(tag, "logged in", f"CAPABILITY {self.capabilities()}")

    async def cmd_login(self, cmd: g.Command) -> None:
        assert isinstance(cmd, g.Login)
        if not self.login_allowed():
            self.no(cmd.tag, "plaintext login is disabled without TLS", "PRIVACYREQUIRED")
            return
        await self.login(cmd.tag, cmd.username.decode("utf-8", "replace"), cmd.password.decode("utf-8", "replace"))

    async def cmd_authenticate(self, cmd: g.Command) -> None:
        assert isinstance(cmd, g.Authenticate)
        if cmd.mechanism != "PLAIN":
            self.no(cmd.tag, f"unsupported mechanism {cmd.mechanism}", "CANNOT")
            return
        if not self.login_allowed():
            self.no(cmd.tag, "authentication is disabled without TLS", "PRIVACYREQUIRED")
            return
        response = cmd.initial
        if response is None:
            self.send(serializer.continuation(""))
            self.rx.set_mode(Mode.SASL)
            try:
                while True:
                    event = self.rx.next_event()
                    if event is NEED_DATA:
                        await self.flush()
                        await self.read_more(60)
                        continue
                    break
            finally:
                self.rx.set_mode(Mode.NORMAL)
            if not isinstance(event, SaslResponse):
                raise Bye
            response = event.line
        if response == b"*":
            self.bad(cmd.tag, "authentication cancelled")
            return
        try:
            decoded = b"" if response == b"=" else base64.b64decode(response, validate=True)
            _authz, authc, password = decoded.split(b"\x00")
        except (binascii.Error, ValueError):
            self.bad(cmd.tag, "malformed PLAIN response")
            return
        await self.login(cmd.tag, authc.decode("utf-8", "replace"), password.decode("utf-8", "replace"))

    # -- authenticated ----------------------------------------------------------------------------------------------
    async def cmd_enable(self, cmd: g.Command) -> None:
        assert isinstance(cmd, g.Enable)
        enabled = []
        for cap in cmd.capabilities:
            if cap == "CONDSTORE" and not self.condstore:
                self.condstore = True
                enabled.append(cap)
            elif cap == "UTF8=ACCEPT" and not self.utf8:
                self.utf8 = True
                enabled.append(cap)
        self.send(serializer.untagged("ENABLED" + "".join(" " + c for c in enabled)))
        self.ok(cmd.tag, "ENABLE completed")

    async def cmd_namespace(self, cmd: g.Command) -> None:
        self.send(serializer.untagged('NAMESPACE (("" "/")) NIL NIL'))
        self.ok(cmd.tag, "NAMESPACE completed")

    async def cmd_select(self, cmd: g.Command) -> None:
        assert isinstance(cmd, g.Select) and self.user is not None
        self.selected = None
        self.state = g.AUTHENTICATED
        mailbox = await self.mailbox(cmd.mailbox)
        if cmd.condstore:
            self.condstore = True
        snapshot = await self.store.mailbox_snapshot(mailbox.id)
        mailbox, messages = snapshot.mailbox, snapshot.messages
        sel = Selected(mailbox, cmd.readonly, [m.uid for m in messages], {m.uid: m.flags for m in messages},
                       {m.uid: m.modseq for m in messages}, mailbox.highest_modseq)
        sel.keywords = {f for m in messages for f in m.flags if not f.startswith("\\")}
        recent = snapshot.recent
        if recent and not cmd.readonly:  # ours are the ones no other session claimed meanwhile
            recent = await self.store.recent(mailbox.id, claim=True, uids=recent)
        sel.recent = set(recent)
        self.send(self.flags_lines(sel))
        self.send(serializer.untagged(f"{len(sel.uids)} EXISTS"))
        self.send(serializer.untagged(f"{len(sel.recent)} RECENT"))
        unseen = next((i for i, m in enumerate(messages, 1) if "\\Seen" not in m.flags), 0)
        if unseen:
            self.send(serializer.untagged(f"OK [UNSEEN {unseen}] first unseen message"))
        self.send(serializer.untagged(f"OK [UIDVALIDITY {mailbox.uid_validity}] UIDs valid"))
        self.send(serializer.untagged(f"OK [UIDNEXT {mailbox.uid_next}] predicted next UID"))
        self.send(serializer.untagged(f"OK [HIGHESTMODSEQ {mailbox.highest_modseq}] highest"))
        self.selected = sel
        self.dirty = False
        self._drain_nudges()  # nudges about this mailbox from before SELECT are covered by what was just read
        self.dirty = False
        self.state = g.SELECTED
        self.ok(cmd.tag, f"{cmd.name} completed", "READ-ONLY" if cmd.readonly else "READ-WRITE")

    async def cmd_create(self, cmd: g.Command) -> None:
        assert isinstance(cmd, g.MailboxCommand) and self.user is not None
        name = self.decode_name(cmd.mailbox)  # "A/" names "A" (RFC 3501 6.3.3)
        if name == "INBOX":
            self.no(cmd.tag, "INBOX exists", "ALREADYEXISTS")
            return
        # subscribing is the client's decision (RFC 3501 6.3.6): mailboxes made over IMAP start unsubscribed
        await self.store.create_mailbox(self.user.id, MailboxSpec(name, subscribed=False))
        parts = name.split(SEPARATOR)
        for depth in range(1, len(parts)):  # superior levels that do not exist yet are created too (6.3.3)
            try:
                await self.store.create_mailbox(self.user.id, MailboxSpec(SEPARATOR.join(parts[:depth]),
                                                                          subscribed=False))
            except AlreadyExists:
                pass
        self.ok(cmd.tag, "CREATE completed")

    async def cmd_delete(self, cmd: g.Command) -> None:
        assert isinstance(cmd, g.MailboxCommand)
        mailbox = await self.mailbox(cmd.mailbox)
        if mailbox.path == "INBOX" or mailbox.special_use:
            self.no(cmd.tag, "INBOX and special-use mailboxes cannot be deleted", "CANNOT")
            return
        if self.selected and self.selected.mailbox.id == mailbox.id:
            self.selected = None
            self.state = g.AUTHENTICATED
        await self.store.delete_mailbox(mailbox.id)
        self.ok(cmd.tag, "DELETE completed")

    async def cmd_rename(self, cmd: g.Command) -> None:
        assert isinstance(cmd, g.Rename)
        mailbox = await self.mailbox(cmd.old)
        new = self.decode_name(cmd.new)
        if mailbox.path == "INBOX" or new == "INBOX":
            self.no(cmd.tag, "INBOX cannot be renamed", "CANNOT")
            return
        await self.store.rename_mailbox(mailbox.id, new)
        self.ok(cmd.tag, "RENAME completed")

    async def cmd_subscribe(self, cmd: g.Command) -> None:
        """SUBSCRIBE needs an existing mailbox (RFC 3501 6.3.6 lets us check); UNSUBSCRIBE takes any subscribed
        name, so that subscriptions outliving their mailbox can be removed."""
        assert isinstance(cmd, g.MailboxCommand) and self.user is not None
        if cmd.name == "SUBSCRIBE":
            path = (await self.mailbox(cmd.mailbox)).path
        else:
            path = self.decode_name(cmd.mailbox)
        if not await self.store.set_subscribed(self.user.id, path, cmd.name == "SUBSCRIBE") \
                and cmd.name == "UNSUBSCRIBE":
            self.no(cmd.tag, f"{path} is not subscribed", "NONEXISTENT")
            return
        self.ok(cmd.tag, f"{cmd.name} completed")

    async def cmd_list(self, cmd: g.Command) -> None:
        assert isinstance(cmd, g.ListCommand) and self.user is not None
        if cmd.name == "LIST" and cmd.patterns == (b"",):
            self.send(serializer.untagged(b'LIST (\\Noselect) "/" ""'))
            self.ok(cmd.tag, "LIST completed")
            return
        mailboxes = await self.store.list_mailboxes(self.user.id)
        paths = {m.path for m in mailboxes}
        reference = self.decode_pattern(cmd.reference)
        regexes = [_pattern_regex(reference + self.decode_pattern(p)) for p in cmd.patterns]
        subscribed_only = cmd.name == "LSUB" or "SUBSCRIBED" in cmd.select_options
        special_only = "SPECIAL-USE" in cmd.select_options
        subscriptions = await self.store.list_subscriptions(self.user.id) if subscribed_only else []
        if cmd.name == "LSUB":
            await self.lsub(cmd, paths, subscriptions, regexes)
            return
        for path in subscriptions:  # subscribed names whose mailbox is gone
            if path not in paths and any(r.match(path) for r in regexes):
                self.send(b"* LIST (\\NonExistent \\Subscribed) \"/\" " + self.encode_name(path) + b"\r\n")
        # levels that lead to mailboxes but do not exist themselves (a deleted parent) are listed as \Noselect
        missing = {SEPARATOR.join(path.split(SEPARATOR)[:depth]) for path in paths
                   for depth in range(1, path.count(SEPARATOR) + 1)} - paths
        if not (subscribed_only or special_only):
            for path in sorted(missing):
                if any(r.match(path) for r in regexes):
                    self.send(b"* LIST (\\Noselect \\HasChildren) \"/\" " + self.encode_name(path) + b"\r\n")
        for m in mailboxes:
            if not any(r.match(m.path) for r in regexes):
                continue
            if subscribed_only and not m.subscribed:
                continue
            if special_only and not m.special_use:
                continue
            attrs = []
            has_children = any(p.startswith(m.path + "/") for p in paths)
            attrs.append("\\HasChildren" if has_children else "\\HasNoChildren")
            if m.special_use and (cmd.name == "LIST" or "SPECIAL-USE" in cmd.return_options):
                attrs.append(m.special_use)
            if ("SUBSCRIBED" in cmd.return_options or subscribed_only) and m.subscribed:  # RFC 5258 3.1
                attrs.append("\\Subscribed")
            self.send(b"* " + cmd.name.encode() + b" (" + " ".join(attrs).encode() + b') "/" '
                      + self.encode_name(m.path) + b"\r\n")
            if cmd.status_items:
                await self.send_status(m, cmd.status_items)
        self.ok(cmd.tag, f"{cmd.name} completed")

    async def lsub(self, cmd: g.ListCommand, paths: set[str], subscriptions: list[str],
                   regexes: list[re.Pattern[str]]) -> None:
        """LSUB: subscribed names that match (\\Noselect when their mailbox is gone); with "%", a level that only
        leads to subscribed names below it is listed as \\Noselect (RFC 3501 6.3.9)."""
        subscribed = set(subscriptions)
        by_level = [r for r, p in zip(regexes, cmd.patterns, strict=True) if b"%" in p]  # "*" lists no levels
        found: dict[str, str] = {}
        for path in sorted(subscribed):
            if any(r.match(path) for r in regexes):
                found[path] = "" if path in paths else "\\Noselect"
            parts = path.split(SEPARATOR)
            for depth in range(1, len(parts)):
                ancestor = SEPARATOR.join(parts[:depth])
                if ancestor not in subscribed and any(r.match(ancestor) for r in by_level):
                    found.setdefault(ancestor, "\\Noselect")
        for path, attrs in sorted(found.items()):
            self.send(b"* LSUB (" + attrs.encode() + b') "/" ' + self.encode_name(path) + b"\r\n")
        self.ok(cmd.tag, "LSUB completed")

    def decode_pattern(self, raw: bytes) -> str:
        if self.utf8:
            return raw.decode("utf-8", "replace")
        try:
            return mutf7.decode(raw)
        except ValueError:
            return raw.decode("ascii", "replace")

    async def send_status(self, mailbox: Mailbox, items: Sequence[str]) -> None:
        counts = await self.store.mailbox_counts(mailbox.id)
        fresh = await self.store.get_mailbox(mailbox.id)
        recent = len(await self.store.recent(mailbox.id, claim=False)) if "RECENT" in items else 0
        values = {"MESSAGES": counts.messages, "RECENT": recent, "UIDNEXT": fresh.uid_next,
                  "UIDVALIDITY": fresh.uid_validity, "UNSEEN": counts.unseen, "HIGHESTMODSEQ": fresh.highest_modseq,
                  "SIZE": counts.size, "APPENDLIMIT": self.settings.max_message_size}
        body = " ".join(f"{item} {values[item]}" for item in items)
        self.send(b"* STATUS " + self.encode_name(mailbox.path) + f" ({body})\r\n".encode())

    async def cmd_status(self, cmd: g.Command) -> None:
        assert isinstance(cmd, g.Status)
        mailbox = await self.mailbox(cmd.mailbox)
        await self.send_status(mailbox, cmd.items)
        self.ok(cmd.tag, "STATUS completed")

    async def cmd_append(self, cmd: g.Command) -> None:
        assert isinstance(cmd, g.Append) and self.user is not None
        mailbox = await self.mailbox(cmd.mailbox, target=True)
        if not cmd.message:
            self.no(cmd.tag, "empty message")
            return
        prepared = await prepare_soon(cmd.message)
        when = cmd.date.astimezone(dt.UTC) if cmd.date else dt.datetime.now(dt.UTC)
        flags = tuple(f for f in cmd.flags if f != "\\Recent")
        (outcome,) = await self.store.append_messages([NewMessage(self.user.id, mailbox.id, prepared, flags, when)])
        if not isinstance(outcome, AppendResult):
            raise outcome
        await self.nudge(mailbox)
        if self.selected and self.selected.mailbox.id == mailbox.id:
            self.dirty = True
            await self.sync()
        self.ok(cmd.tag, "APPEND completed", f"APPENDUID {outcome.uid_validity} {outcome.uid}")

    async def cmd_idle(self, cmd: g.Command) -> None:
        """IDLE: two helper tasks for the whole command, one reading the client (its bytes go to the receiver),
        one waiting for nudges; each rings a doorbell, and this task answers: DONE, the journal, or the timeout."""
        assert self.user is not None
        self.send(serializer.continuation("idling"))
        await self.sync(force=True)
        await self.flush()
        self.rx.set_mode(Mode.IDLE)
        ring, doorbell = trio.open_memory_channel[None](1)
        nudged = False

        def wake() -> None:
            try:
                ring.send_nowait(None)
            except trio.WouldBlock:
                pass  # a wake-up is pending already

        async def reader() -> None:
            while True:
                data = await self.stream.receive_some(READ_SIZE)
                self.rx.receive_data(data)
                wake()
                if not data:
                    return

        async def listener() -> None:
            nonlocal nudged
            async for payload in self.subscription:  # payloads name mailboxes; the journal says what changed
                mailbox_id, _origin = parse_nudge(payload)
                if self.selected is not None and mailbox_id == self.selected.mailbox.id:
                    nudged = True
                    wake()

        deadline = trio.current_time() + self.settings.idle_timeout
        try:
            async with trio.open_nursery() as helpers:
                helpers.start_soon(reader)
                helpers.start_soon(listener)
                try:
                    while True:
                        event = self.rx.next_event()
                        if isinstance(event, IdleDone):
                            if event.valid:
                                self.ok(cmd.tag, "IDLE terminated")
                            else:
                                self.bad(cmd.tag, "expected DONE")
                            return
                        if isinstance(event, ConnectionClosed):
                            raise Bye
                        if nudged:
                            nudged = False
                            self.dirty = True
                            await self.sync()
                            await self.flush()
                            continue
                        with trio.move_on_at(deadline):
                            await doorbell.receive()
                            continue
                        self.send(serializer.untagged("BYE IDLE timed out"))
                        raise Bye
                finally:
                    helpers.cancel_scope.cancel()
        finally:
            self.rx.set_mode(Mode.NORMAL)

    async def cmd_getquotaroot(self, cmd: g.Command) -> None:
        assert isinstance(cmd, g.MailboxCommand)
        mailbox = await self.mailbox(cmd.mailbox)
        self.send(b"* QUOTAROOT " + self.encode_name(mailbox.path) + b' ""\r\n')
        await self.send_quota()
        self.ok(cmd.tag, "GETQUOTAROOT completed")

    async def send_quota(self) -> None:
        assert self.user is not None
        user = await self.store.get_user(self.user.id)
        quota = user.quota if user.quota is not None else self.s.default_quota
        self.send(serializer.untagged(f'QUOTA "" (STORAGE {user.storage_used // 1024} {quota // 1024})'))

    async def cmd_getquota(self, cmd: g.Command) -> None:
        assert isinstance(cmd, g.QuotaCommand)
        if cmd.root != b"":
            self.no(cmd.tag, "no such quota root", "NONEXISTENT")
            return
        await self.send_quota()
        self.ok(cmd.tag, "GETQUOTA completed")

    async def cmd_setquota(self, cmd: g.Command) -> None:
        self.no(cmd.tag, "quotas are set by the administrator", "NOPERM")

    async def cmd_compress(self, cmd: g.Command) -> None:
        assert isinstance(cmd, g.Compress)
        if cmd.mechanism != "DEFLATE":
            self.bad(cmd.tag, f"unknown compression mechanism {cmd.mechanism}")
            return
        if isinstance(self.stream, DeflateStream):
            self.no(cmd.tag, "compression is already active", "COMPRESSIONACTIVE")
            return
        self.ok(cmd.tag, "DEFLATE active")
        await self.flush()
        # the client compresses right after its command's CRLF: what is buffered already is compressed input
        self.stream = DeflateStream(self.stream, pending=self.rx.take_buffer())

    # -- selected ---------------------------------------------------------------------------------------------------
    def targets(self, sequence: g.SequenceSet, uid: bool) -> list[tuple[int, int]]:
        """(sequence number, UID) of the messages a sequence set names."""
        sel = self.selected
        assert sel is not None
        if not sel.uids:
            return []
        if uid:
            ranges = sequence.resolve(sel.uids[-1])
            return [(i + 1, u) for i, u in enumerate(sel.uids) if any(a <= u <= b for a, b in ranges)]
        out = []
        for n in sequence.numbers(len(sel.uids)):
            out.append((n, sel.uids[n - 1]))
        return out

    def check_sequence(self, sequence: g.SequenceSet) -> bool:
        sel = self.selected
        assert sel is not None
        return all((lo is None or lo <= len(sel.uids)) and (hi is None or hi <= len(sel.uids))
                   for lo, hi in sequence.ranges)

    async def cmd_check(self, cmd: g.Command) -> None:
        await self.sync(force=True)
        self.ok(cmd.tag, "CHECK completed")

    async def cmd_close(self, cmd: g.Command) -> None:
        sel = self.selected
        assert sel is not None
        if not sel.readonly:
            deleted = [u for u in sel.uids if "\\Deleted" in sel.flags.get(u, ())]
            if deleted:
                await self.store.expunge(sel.mailbox.id, deleted)
                await self.nudge(sel.mailbox)
        self.selected = None
        self.state = g.AUTHENTICATED
        self.ok(cmd.tag, f"{cmd.name} completed")

    async def cmd_unselect(self, cmd: g.Command) -> None:
        self.selected = None
        self.state = g.AUTHENTICATED
        self.ok(cmd.tag, "UNSELECT completed")

    async def cmd_expunge(self, cmd: g.Command) -> None:
        sel = self.selected
        assert sel is not None
        if sel.readonly:
            self.no(cmd.tag, "mailbox is read-only", "READ-ONLY")
            return
        await self.sync()
        wanted = None
        if isinstance(cmd, g.UidExpunge):
            wanted = {u for _s, u in self.targets(cmd.sequence, True)}
        deleted = [u for u in sel.uids if "\\Deleted" in sel.flags.get(u, ()) and (wanted is None or u in wanted)]
        if deleted:
            await self.store.expunge(sel.mailbox.id, deleted)
            await self.nudge(sel.mailbox)
            self.dirty = True
        await self.sync()
        self.ok(cmd.tag, f"{cmd.name} completed")

    async def cmd_fetch(self, cmd: g.Command) -> None:
        assert isinstance(cmd, g.Fetch)
        sel = self.selected
        assert sel is not None
        if not cmd.uid and not self.check_sequence(cmd.sequence):
            await self.sync(expunge=False)
            self.bad(cmd.tag, "invalid message sequence number")
            return
        await self.sync(expunge=cmd.uid)
        items = list(cmd.items)
        if cmd.uid and not any(i.name == "UID" for i in items):
            items.insert(0, g.FetchItem("UID", label="UID"))
        if cmd.changedsince is not None:
            self.condstore = True
            if not any(i.name == "MODSEQ" for i in items):
                items.append(g.FetchItem("MODSEQ", label="MODSEQ"))
        targets = self.targets(cmd.sequence, cmd.uid)
        if cmd.changedsince is not None:
            targets = [(s, u) for s, u in targets if sel.modseqs.get(u, 0) > cmd.changedsince]
        sets_seen = not sel.readonly and any(
            (i.name in ("BODY", "BINARY") and i.section is not None and not i.peek) or i.name in ("RFC822",
                                                                                                  "RFC822.TEXT")
            for i in items)
        needs_record = any(i.name not in ("FLAGS", "UID", "MODSEQ", "INTERNALDATE", "RFC822.SIZE") for i in items)
        needs_meta = any(i.name in ("INTERNALDATE", "RFC822.SIZE") for i in items)
        needs_content = any(i.name not in _META_ITEMS and not (i.name == "BODY" and i.section is None)
                            for i in items)
        records: dict[int, MessageRecord] = {}
        uids = [u for _s, u in targets]
        for start in range(0, len(uids), 100):
            chunk = uids[start:start + 100]
            if needs_record or needs_meta:
                for r in await self.store.get_messages(sel.mailbox.id, chunk, content=needs_content):
                    records[r.uid] = r
            if sets_seen:
                unseen = [u for u in chunk if "\\Seen" not in sel.flags.get(u, ())]
                if unseen:
                    change = await self.store.set_flags(sel.mailbox.id, unseen, "+", ["\\Seen"])
                    for c in change.changed:
                        sel.flags[c.uid] = c.flags
                        sel.modseqs[c.uid] = c.modseq
            for seq, uid in targets[start:start + 100]:
                record = records.get(uid)
                if (needs_record or needs_meta) and record is None:
                    continue  # expunged by another session meanwhile (RFC 2180): skip, no error
                await self.fetch_one(seq, uid, items, record)
            records.clear()
        self.ok(cmd.tag, f"{cmd.name} completed")

    async def fetch_one(self, seq: int, uid: int, items: list[g.FetchItem], record: MessageRecord | None) -> None:
        sel = self.selected
        assert sel is not None
        blobs: dict[str, bytes] = {}

        def get_blob(key: str) -> bytes:
            return blobs[key]

        values: list[tuple[str, bytes | serializer.Streamed]] = []
        view = None
        for item in items:
            name = item.name
            if name == "UID":
                values.append(("UID", b"%d" % uid))
            elif name == "FLAGS":
                continue  # added at the end, after \Seen may have been set
            elif name == "MODSEQ":
                values.append(("MODSEQ", b"(%d)" % sel.modseqs.get(uid, 0)))
            elif record is None:
                continue
            elif name == "INTERNALDATE":
                values.append(("INTERNALDATE", internaldate(record.internal_date)))
            elif name == "RFC822.SIZE":
                values.append(("RFC822.SIZE", b"%d" % record.size))
            elif name in ("ENVELOPE", "BODYSTRUCTURE", "BODY") and item.section is None:
                values.append((name, structure_items(name, record.envelope, record.bodystructure, utf8=self.utf8)))
            else:
                if view is None:
                    needed = {p.blob for p in record.parts}
                    if needed:
                        blobs.update(await self.s.store.get_blobs(needed))
                    view = MessageView(record.skeleton, record.parts, record.mime_tree, get_blob)
                if name in ("RFC822", "RFC822.HEADER", "RFC822.TEXT"):
                    section = {"RFC822": "", "RFC822.HEADER": "HEADER", "RFC822.TEXT": "TEXT"}[name]
                    values.append((name, body_item(view, g.FetchItem("BODY", section, label=name))))
                else:
                    values.append((item.label, body_item(view, item)))
        if any(i.name == "FLAGS" for i in items) or (self.sets_seen_flag(items) and not sel.readonly):
            self.send(self.keyword_announcement((uid,)))
            values.append(("FLAGS", serializer.flag_list(sel.flags_of(uid))))
        for chunk in serializer.iter_fetch(seq, values):
            self.send(chunk)
            if sum(map(len, self.out)) > 262144:
                await self.flush()

    @staticmethod
    def sets_seen_flag(items: list[g.FetchItem]) -> bool:
        return any((i.name == "BODY" and i.section is not None and not i.peek) or i.name in ("RFC822", "RFC822.TEXT")
                   for i in items)

    async def cmd_store(self, cmd: g.Command) -> None:
        assert isinstance(cmd, g.Store)
        sel = self.selected
        assert sel is not None
        if sel.readonly:
            self.no(cmd.tag, "mailbox is read-only", "READ-ONLY")
            return
        if not cmd.uid and not self.check_sequence(cmd.sequence):
            self.bad(cmd.tag, "invalid message sequence number")
            return
        await self.sync(expunge=cmd.uid)
        targets = self.targets(cmd.sequence, cmd.uid)
        flags = [f for f in cmd.flags if f != "\\Recent"]
        change = await self.store.set_flags(sel.mailbox.id, [u for _s, u in targets], cmd.mode, flags,
                                            unchangedsince=cmd.unchangedsince)
        if cmd.unchangedsince is not None:
            self.condstore = True
        changed = {c.uid for c in change.changed}
        for c in change.changed:
            sel.flags[c.uid] = c.flags
            sel.modseqs[c.uid] = c.modseq
        for seq, uid in targets:
            if uid in changed or (not cmd.silent and uid not in change.modified):
                if not cmd.silent or (self.condstore and uid in changed and cmd.unchangedsince is not None):
                    self.send(self.flags_response(seq, uid, with_uid=cmd.uid))
        if change.changed:
            await self.nudge(sel.mailbox)
        self.send(self.keyword_announcement(changed))
        if change.modified:
            seqs = ",".join(str(u) if cmd.uid else str(sel.seq_of(u)) for u in change.modified)
            self.ok(cmd.tag, "conditional STORE failed for some messages", f"MODIFIED {seqs}")
        else:
            self.ok(cmd.tag, f"{cmd.name} completed")

    async def cmd_copy(self, cmd: g.Command) -> None:
        assert isinstance(cmd, g.CopyMove)
        sel = self.selected
        assert sel is not None
        if not cmd.uid and not self.check_sequence(cmd.sequence):
            self.bad(cmd.tag, "invalid message sequence number")
            return
        target = await self.mailbox(cmd.mailbox, target=True)
        move = cmd.name.endswith("MOVE")
        if move and sel.readonly:
            self.no(cmd.tag, "mailbox is read-only", "READ-ONLY")
            return
        uids = [u for _s, u in self.targets(cmd.sequence, cmd.uid)]
        pairs = await self.store.copy_messages(sel.mailbox.id, uids, target.id, move=move)
        await self.nudge(target)
        if target.id == sel.mailbox.id:
            self.dirty = True  # copies into the selected mailbox: our own nudge is skipped
        code = None
        if pairs:
            src = _compact([p[0] for p in pairs])
            dst = _compact([p[1] for p in pairs])
            code = f"COPYUID {target.uid_validity} {src} {dst}"
        if move:
            if pairs:
                await self.nudge(sel.mailbox)
                self.dirty = True
            if code:
                self.send(serializer.untagged(f"OK [{code}] moved"))
            await self.sync()
            self.ok(cmd.tag, f"{cmd.name} completed")
        else:
            await self.sync(expunge=cmd.uid)
            self.ok(cmd.tag, f"{cmd.name} completed", code)

    async def cmd_search(self, cmd: g.Command) -> None:
        assert isinstance(cmd, g.Search)
        sel = self.selected
        assert sel is not None
        if cmd.charset not in (None, "UTF-8", "US-ASCII"):
            self.no(cmd.tag, "unsupported charset", "BADCHARSET (UTF-8 US-ASCII)")
            return
        await self.sync(expunge=cmd.uid)
        hits = {}
        if not search_mod.needs_store(cmd.criteria):  # flags, UIDs, MODSEQs: what this session holds already
            epoch = dt.datetime.fromtimestamp(0, dt.UTC)
            numbered = [(seq, SearchRow(uid, sel.flags.get(uid, ()), sel.modseqs.get(uid, 0), epoch, 0, None, b""))
                        for seq, uid in enumerate(sel.uids, start=1)]
        else:
            for op, needle in search_mod.text_queries(cmd.criteria):
                hits[(op, needle)] = frozenset(await self.store.text_search(
                    sel.mailbox.id, needle.decode("utf-8", "replace"), headers_too=op == "TEXT"))
            # the text index may already rule out most messages: then only the candidates are read
            only = search_mod.candidates(cmd.criteria, hits)
            rows = await self.store.search_rows(sel.mailbox.id, with_header=search_mod.needs_header(cmd.criteria),
                                                uids=None if only is None else sorted(only))
            seqs = {uid: seq for seq, uid in enumerate(sel.uids, start=1)}
            numbered = [(seqs[r.uid], r) for r in rows if r.uid in seqs]  # as this session sees the mailbox
        ctx = search_mod.Context(dt.datetime.now(dt.UTC), len(sel.uids), sel.uids[-1] if sel.uids else 0,
                                 frozenset(sel.recent), hits)
        found = search_mod.search(numbered, cmd.criteria, ctx)
        numbers = [r.uid if cmd.uid else seq for seq, r in found]
        line = "SEARCH" + "".join(f" {n}" for n in numbers)
        if _uses_modseq(cmd.criteria) and found:
            line += f" (MODSEQ {max(r.modseq for _s, r in found)})"
        self.send(serializer.untagged(line))
        self.ok(cmd.tag, f"{cmd.name} completed")


#: FETCH items answered from a record without its content (no skeleton, parts or MIME tree)
_META_ITEMS = frozenset({"FLAGS", "UID", "MODSEQ", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE"})


def _uses_modseq(key: g.SearchKey) -> bool:
    return key.op == "MODSEQ" or any(isinstance(a, g.SearchKey) and _uses_modseq(a) for a in key.args)


def _compact(numbers: list[int]) -> str:
    """``1:3,7`` for [1, 2, 3, 7] (order kept, runs merged)."""
    out: list[str] = []
    start = prev = numbers[0]
    for n in numbers[1:] + [-1]:
        if n == prev + 1:
            prev = n
            continue
        out.append(f"{start}:{prev}" if prev != start else f"{start}")
        start = prev = n
    return ",".join(out)


_Handler = Callable[[IMAPSession, g.Command], Any]
HANDLERS: dict[str, _Handler] = {
    "CAPABILITY": IMAPSession.cmd_capability, "NOOP": IMAPSession.cmd_noop, "LOGOUT": IMAPSession.cmd_logout,
    "ID": IMAPSession.cmd_id, "STARTTLS": IMAPSession.cmd_starttls, "LOGIN": IMAPSession.cmd_login,
    "AUTHENTICATE": IMAPSession.cmd_authenticate, "ENABLE": IMAPSession.cmd_enable,
    "NAMESPACE": IMAPSession.cmd_namespace, "SELECT": IMAPSession.cmd_select, "EXAMINE": IMAPSession.cmd_select,
    "CREATE": IMAPSession.cmd_create, "DELETE": IMAPSession.cmd_delete, "RENAME": IMAPSession.cmd_rename,
    "SUBSCRIBE": IMAPSession.cmd_subscribe, "UNSUBSCRIBE": IMAPSession.cmd_subscribe,
    "LIST": IMAPSession.cmd_list, "LSUB": IMAPSession.cmd_list, "STATUS": IMAPSession.cmd_status,
    "APPEND": IMAPSession.cmd_append, "IDLE": IMAPSession.cmd_idle, "GETQUOTAROOT": IMAPSession.cmd_getquotaroot,
    "GETQUOTA": IMAPSession.cmd_getquota, "SETQUOTA": IMAPSession.cmd_setquota,
    "COMPRESS": IMAPSession.cmd_compress, "CHECK": IMAPSession.cmd_check, "CLOSE": IMAPSession.cmd_close,
    "UNSELECT": IMAPSession.cmd_unselect, "EXPUNGE": IMAPSession.cmd_expunge, "FETCH": IMAPSession.cmd_fetch,
    "STORE": IMAPSession.cmd_store, "COPY": IMAPSession.cmd_copy, "MOVE": IMAPSession.cmd_copy,
    "SEARCH": IMAPSession.cmd_search,
}


async def serve_imap_connection(stream: trio.abc.Stream, services: Services, settings: IMAPSettings, *,
                                peer: str = "", tls_context: ssl.SSLContext | None = None,
                                tls_active: bool = False) -> None:
    """Serve one IMAP connection until LOGOUT, EOF, autologout or a broken stream."""
    session = IMAPSession(stream, services, settings, peer=peer, tls_context=tls_context, tls_active=tls_active)
    try:
        await session.run()
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        log.debug("imap %d: connection lost: %r", session.cid, exc)
    finally:
        await trio.aclose_forcefully(session.stream)
