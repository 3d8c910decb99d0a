"""POP3 (RFC 1939, with CAPA/RESP-CODES/PIPELINING of RFC 2449, AUTH of RFC 5034, STLS of RFC 2595, UTF8 of
RFC 6856) server side, sans-I/O.

Feed bytes with :meth:`POP3Server.receive_data` (``b""`` = EOF) and pull events with :meth:`POP3Server.next_event`
until it returns :data:`NEED_DATA`; what the protocol answered by itself waits in :meth:`POP3Server.data_to_send`.

The object owns the state machine **and the maildrop** (the message list taken at login, the deletion marks, the
messages retrieved), so it answers CAPA, STAT, LIST, UIDL, DELE, RSET, NOOP, UTF8, wrong-state and malformed
commands itself. Only what needs the application becomes an event, after which :meth:`~POP3Server.next_event`
returns :data:`PAUSED` until the application answers:

* :class:`Login` (PASS after USER, or AUTH PLAIN): answer :meth:`~POP3Server.accept_login` with the maildrop, or
  :meth:`~POP3Server.refuse_login`;
* :class:`StartTLS`: the ``+OK`` is queued and the bytes pipelined behind STLS are already discarded; flush, do the
  handshake, then :meth:`~POP3Server.tls_started` (or end the connection);
* :class:`Retrieve` (RETR, TOP): send :meth:`~POP3Server.begin_message`, then the content through a
  :class:`MessageWriter`, then call :meth:`~POP3Server.message_sent`; or :meth:`~POP3Server.refuse_message`;
* :class:`Update` (QUIT in the TRANSACTION state): apply the changes, then :meth:`~POP3Server.update_done`;
* :class:`Ended`: the session is over (QUIT, EOF, too many bad commands); send what is queued and close.

Lines are limited while reading (an overlong line is discarded as it arrives); a bare LF ends a line as CRLF does
(RFC 1939 asks for CRLF; old clients send LF). A NUL byte, an unknown command, a command in the wrong state or a
malformed argument gets ``-ERR`` with the reason; after ``max_bad`` of them in a row the connection is closed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum, auto

from wildduck.protocols._base import (
    NEED_DATA,
    PAUSED,
    BareLF,
    ConnectionClosed,
    DotStuffer,
    LineBuffer,
    Reason,
    Rejection,
    Sentinel,
    sasl_plain,
)

__all__ = [
    "NEED_DATA", "PAUSED", "ConnectionClosed", "Ended", "Event", "Listing", "Login", "MessageWriter", "POP3Server",
    "Retrieve", "StartTLS", "State", "Update",
]

#: the longest message number accepted (more digits are refused before converting)
_MAX_DIGITS = 10


class State(Enum):
    AUTHORIZATION = auto()
    TRANSACTION = auto()
    UPDATE = auto()
    CLOSED = auto()


@dataclass(frozen=True, slots=True)
class Listing:
    """One message of the maildrop: its UID in the mailbox, its size in octets (as RETR sends it, before
    dot-stuffing) and its unique-id listing (1 to 70 characters in 0x21..0x7E, RFC 1939 7)."""

    uid: int
    size: int
    uidl: str


@dataclass(frozen=True, slots=True)
class Login:
    """Credentials to check. ``mechanism`` is ``"USER"`` (USER/PASS) or ``"PLAIN"`` (AUTH PLAIN)."""

    username: str
    password: str
    mechanism: str


@dataclass(frozen=True, slots=True)
class StartTLS:
    """STLS was accepted: the ``+OK`` is queued; flush it and start the TLS handshake."""


@dataclass(frozen=True, slots=True)
class Retrieve:
    """RETR (``lines`` None) or TOP (``lines`` = the body lines wanted) of message ``number``."""

    number: int
    message: Listing
    lines: int | None


@dataclass(frozen=True, slots=True)
class Update:
    """QUIT in the TRANSACTION state: the UPDATE state. ``retrieved`` were sent whole by RETR (to mark seen),
    ``deleted`` were marked by DELE; both in maildrop order, disjoint."""

    retrieved: tuple[Listing, ...]
    deleted: tuple[Listing, ...]


@dataclass(frozen=True, slots=True)
class Ended:
    """The session is over: send what is queued and close. ``reason`` is for the log."""

    reason: str


Event = Login | StartTLS | Retrieve | Update | Ended


class _Refused(Exception):
    """A command refused with ``-ERR [code] text`` (counted as a bad command)."""

    def __init__(self, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


def ok(text: str = "") -> bytes:
    return ("+OK " + text if text else "+OK").encode("utf-8", "replace") + b"\r\n"


def err(text: str, code: str | None = None) -> bytes:
    """``-ERR [CODE] text`` (RFC 2449 response codes)."""
    prefix = f"[{code}] " if code else ""
    return f"-ERR {prefix}{text}".encode("utf-8", "replace") + b"\r\n"


def multiline(first: bytes, lines: Sequence[str]) -> bytes:
    """A ``+OK`` line and a dot-stuffed list of ``lines``, terminated."""
    body = "".join(("." + line if line.startswith(".") else line) + "\r\n" for line in lines)
    return first + body.encode("utf-8", "replace") + b".\r\n"


class MessageWriter:
    """Renders a message (RETR) or its header and first ``lines`` body lines (TOP) incrementally, dot-stuffed.

    Feed the message's bytes in chunks with :meth:`feed` (each returns the bytes to send) until :attr:`done` or
    the content ends; then :meth:`end` closes the response. TOP counts as RFC 1939 7 says: the header, the empty
    line after it, then ``lines`` lines of the body (a message without a body gives its header only, a message
    shorter than asked all of it). Work per chunk is a few bulk byte operations plus one ``find`` per line sent.
    """

    def __init__(self, lines: int | None) -> None:
        self._stuffer = DotStuffer()
        self._lines = lines
        #: True once no more content is wanted (TOP has what it needs)
        self.done = False
        self._in_body = False
        # the last bytes seen (at most 3), to find CRLF CRLF and CRLF across chunks; the start of the message
        # counts as after a CRLF, so that a message that begins with an empty line has an empty header
        self._tail = b"\r\n"
        self._left = lines or 0  # body lines still wanted

    def feed(self, chunk: bytes) -> bytes:
        if self.done or not chunk:
            return b""
        if self._lines is None:
            return self._stuffer.feed(chunk)
        return self._stuffer.feed(self._take(chunk))

    def _take(self, chunk: bytes) -> bytes:
        """The part of ``chunk`` that TOP sends."""
        joined = self._tail + chunk
        skip = len(self._tail)
        self._tail = joined[-3:]
        start = 0
        if not self._in_body:
            at = joined.find(b"\r\n\r\n")
            if at < 0:
                return chunk
            self._in_body = True
            start = at + 4 - skip  # where the body starts in chunk
        if self._left == 0:
            self.done = True
            return chunk[:start]
        # line ends in joined from the body start on; one that straddles the chunk boundary counts here
        pos = max(start + skip - 1, skip - 1)
        if joined.count(b"\r\n", pos) < self._left:
            self._left -= joined.count(b"\r\n", pos)
            return chunk
        for _ in range(self._left):
            pos = joined.index(b"\r\n", pos) + 2
        self.done = True
        return chunk[:pos - skip]

    def end(self) -> bytes:
        self.done = True
        return self._stuffer.end()


class POP3Server:
    """One connection's POP3 state (see the module docstring)."""

    def __init__(self, hostname: str, *, max_line: int = 4096, max_bad: int = 20, max_login_failures: int = 3,
                 tls_available: bool = False, tls_active: bool = False, plaintext_allowed: bool = True,
                 implementation: str = "wildduck") -> None:
        """Args:
            hostname: named in the greeting.
            max_line: the longest command line accepted (RFC 2449: at least 255).
            max_bad: malformed, unknown or out-of-state commands in a row after which the connection is closed.
            max_login_failures: failed logins after which the connection is closed.
            tls_available: STLS may be offered (a certificate exists and TLS is not active yet).
            tls_active: the connection is encrypted (implicit TLS).
            plaintext_allowed: USER/PASS and AUTH PLAIN are allowed without TLS (loopback clients).
            implementation: the IMPLEMENTATION capability's argument.
        """
        self.hostname = hostname
        self.max_bad = max_bad
        self.max_login_failures = max_login_failures
        self.tls_available = tls_available
        self.tls_active = tls_active
        self.plaintext_allowed = plaintext_allowed
        self.implementation = implementation
        self.state = State.AUTHORIZATION
        self.utf8 = False
        self._rx = LineBuffer(max_line, bare_lf=BareLF.ACCEPT)
        self._out = bytearray()
        self._bad = 0
        self._login_failures = 0
        self._user: str | None = None
        self._sasl = False  # the next line answers an AUTH PLAIN challenge
        self._paused: Event | None = None
        self.messages: list[Listing] = []
        self.deleted: set[int] = set()  # message numbers
        self.retrieved: set[int] = set()

    # -- I/O side -------------------------------------------------------------------------------------------------
    def greeting(self) -> bytes:
        return ok(f"{self.hostname} wildduck POP3 ready")

    def receive_data(self, data: bytes) -> None:
        self._rx.feed(data)

    def data_to_send(self) -> bytes:
        """Everything queued since the last call."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def discard_buffer(self) -> bytes:
        """Drop unprocessed input (what was pipelined behind STLS); returns it."""
        return self._rx.take()

    @property
    def login_allowed(self) -> bool:
        return self.tls_active or self.plaintext_allowed

    def capabilities(self) -> list[str]:
        """The CAPA list. It is the same before and after logging in: RFC 2449 5 says "capabilities available in
        the AUTHORIZATION state MUST be announced in both states", and USER, SASL (RFC 2449 6), STLS (RFC 2595 4)
        and UTF8 (RFC 6856 2) are all "announced in both states, no differences"."""
        caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "UTF8 USER"]
        if self.login_allowed:
            caps += ["USER", "SASL PLAIN"]
        if self.tls_available and not self.tls_active:
            caps.append("STLS")
        caps.append(f"IMPLEMENTATION {self.implementation}")
        return caps

    # -- events ---------------------------------------------------------------------------------------------------
    def next_event(self) -> Event | ConnectionClosed | Sentinel:
        if self._paused is not None:
            return PAUSED
        while self.state is not State.CLOSED:
            line = self._rx.next_line()
            if line is None:
                if self._rx.eof:
                    self.state = State.CLOSED
                    return ConnectionClosed()
                return NEED_DATA
            event: Event | None
            if isinstance(line, Rejection):
                self._sasl = False  # an overlong answer to the AUTH challenge ends the exchange
                self._user = None
                event = self._bad_command("line too long" if line.code is Reason.LINE_TOO_LONG else line.text)
            elif self._sasl:
                self._sasl = False
                event = self._sasl_response(line)
            else:
                event = self._command(line)
            if event is not None:
                if not isinstance(event, Ended):
                    self._paused = event
                return event
        return Ended("too many failed logins" if self._login_failures >= self.max_login_failures else "closed")

    def _bad_command(self, reason: str, code: str | None = None) -> Ended | None:
        self._bad += 1
        if self._bad >= self.max_bad:
            self._out += err("too many bad commands, closing connection")
            self.state = State.CLOSED
            return Ended("too many bad commands")
        self._out += err(reason, code)
        return None

    def _command(self, line: bytes) -> Event | None:
        text = line.decode("utf-8", "surrogateescape")
        name, _, arg = text.partition(" ")
        # only ASCII letters spell a command ("ſtat".upper() is "STAT")
        name = name.upper() if name.isascii() else name
        if name != "PASS":
            self._user = None  # PASS is valid only immediately after a successful USER (RFC 1939 7)
        if b"\x00" in line:
            return self._bad_command("NUL byte in command")
        if name != "PASS":  # extra spaces before an argument are skipped (as Dovecot does); a password keeps its own
            arg = arg.lstrip(" ")
        handler = _COMMANDS.get(name)
        if handler is None:
            return self._bad_command(f"unknown command {_shown(name)}")
        states, method = handler
        if self.state not in states:
            where = "before logging in" if self.state is State.AUTHORIZATION else "after logging in"
            return self._bad_command(f"{name} is not valid {where}")
        try:
            event = method(self, arg)
        except _Refused as exc:
            return self._bad_command(exc.text, exc.code)
        self._bad = 0
        return event

    # -- AUTHORIZATION --------------------------------------------------------------------------------------------
    def _capa(self, arg: str) -> None:
        if arg:
            raise _Refused("CAPA takes no argument")
        self._out += multiline(ok("capability list follows"), self.capabilities())

    def _user_cmd(self, arg: str) -> None:
        if not self.login_allowed:
            raise _Refused(_PLAINTEXT_REFUSED, "AUTH")
        if not arg.strip():
            raise _Refused("USER needs a user name")
        self._user = arg.strip()
        self._out += ok("send your password")

    def _pass_cmd(self, arg: str) -> Login:
        if self._user is None:
            raise _Refused("send USER first")
        if not arg:
            raise _Refused("PASS needs a password")
        user, self._user = self._user, None
        return Login(_text(user), _text(arg), "USER")

    def _auth(self, arg: str) -> Login | None:
        mechanism, _, initial = arg.strip().partition(" ")
        if not mechanism:
            self._out += multiline(ok("mechanisms follow"), ["PLAIN"] if self.login_allowed else [])
            return None
        if mechanism.upper() != "PLAIN":
            raise _Refused(f"unsupported mechanism {_shown(mechanism)}")
        if not self.login_allowed:
            raise _Refused(_PLAINTEXT_REFUSED, "AUTH")
        if not initial:
            self._sasl = True
            self._out += b"+ \r\n"
            return None
        return self._plain(initial.strip().encode("utf-8", "surrogateescape"))

    def _sasl_response(self, line: bytes) -> Event | None:
        if line.strip() == b"*":
            self._out += err("authentication cancelled")
            return None
        try:
            return self._plain(line.strip())
        except _Refused as exc:
            return self._bad_command(exc.text, exc.code)

    def _plain(self, response: bytes) -> Login:
        try:
            username, password = sasl_plain(response)
        except ValueError as exc:
            raise _Refused(str(exc)) from None
        return Login(username, password, "PLAIN")

    def _stls(self, arg: str) -> StartTLS:
        if arg:
            raise _Refused("STLS takes no argument")
        if self.tls_active or not self.tls_available:
            raise _Refused("STLS is not available" + (" (TLS is already active)" if self.tls_active else ""))
        self._out += ok("begin TLS negotiation")
        self._rx.take()  # bytes sent in the clear behind STLS are never executed
        return StartTLS()

    def _utf8(self, arg: str) -> None:
        if arg:
            raise _Refused("UTF8 takes no argument")
        self.utf8 = True
        self._out += ok("UTF-8 mode on")

    def _quit(self, arg: str) -> Event:
        if self.state is State.TRANSACTION:
            self.state = State.UPDATE
            retrieved = tuple(self.messages[n - 1] for n in sorted(self.retrieved - self.deleted))
            deleted = tuple(self.messages[n - 1] for n in sorted(self.deleted))
            return Update(retrieved, deleted)
        self._out += ok(f"{self.hostname} closing connection")
        self.state = State.CLOSED
        return Ended("quit")

    # -- answers to Login -----------------------------------------------------------------------------------------
    def _answer(self, kind: type) -> None:
        if not isinstance(self._paused, kind):
            raise RuntimeError(f"no {kind.__name__} event is waiting for an answer")
        self._paused = None

    def accept_login(self, messages: Sequence[Listing], text: str = "logged in") -> None:
        """The login succeeded: ``messages`` (oldest first) is the maildrop for the whole session."""
        self._answer(Login)
        self.messages = list(messages)
        self.state = State.TRANSACTION
        self._out += ok(f"{text}, {_count(len(self.messages))} ({sum(m.size for m in self.messages)} octets)")

    def refuse_login(self, text: str, code: str | None = "AUTH") -> bool:
        """The login failed; True when the connection must now be closed (too many failures)."""
        self._answer(Login)
        self._login_failures += 1
        self._out += err(text, code)
        if self._login_failures >= self.max_login_failures:
            self.state = State.CLOSED
            return True
        return False

    def tls_started(self) -> None:
        """The handshake finished: the session starts over (RFC 2595 4: no USER survives)."""
        self._answer(StartTLS)
        self.tls_active = True
        self._user = None

    # -- answers to Retrieve --------------------------------------------------------------------------------------
    def begin_message(self, event: Retrieve) -> tuple[bytes, MessageWriter]:
        """The ``+OK`` line for ``event`` and the writer for its content; send both, then :meth:`message_sent`.

        The bytes start with the replies still queued (to commands pipelined before this one, PIPELINING), so
        that sending them before the content keeps the replies in order whatever else the caller sends first.
        """
        if self._paused is not event:
            raise RuntimeError("this Retrieve is not waiting for an answer")
        first = ok(f"{event.message.size} octets") if event.lines is None else ok("top of message follows")
        return self.data_to_send() + first, MessageWriter(event.lines)

    def message_sent(self, event: Retrieve) -> None:
        """The whole response was sent: a RETR counts as retrieved (marked seen at QUIT)."""
        if self._paused is not event:
            raise RuntimeError("this Retrieve is not waiting for an answer")
        self._answer(Retrieve)
        if event.lines is None:
            self.retrieved.add(event.number)

    def refuse_message(self, text: str, code: str | None = None) -> None:
        """The message cannot be read (expunged meanwhile, the store failed): -ERR, the session goes on."""
        self._answer(Retrieve)
        self._out += err(text, code)

    # -- answer to Update -----------------------------------------------------------------------------------------
    def update_done(self, error: str | None = None, code: str | None = "SYS/TEMP") -> None:
        """QUIT's changes were applied (``error`` None) or not; either way the connection ends."""
        self._answer(Update)
        self._out += ok(f"{self.hostname} closing connection") if error is None else err(error, code)
        self.state = State.CLOSED

    # -- TRANSACTION ----------------------------------------------------------------------------------------------
    def _number(self, arg: str) -> int:
        """The number of a message that is not deleted, from ``arg``."""
        if not arg.isascii() or not arg.isdigit() or len(arg) > _MAX_DIGITS:
            raise _Refused(f"invalid message number {_shown(arg)}")
        n = int(arg)
        if not 1 <= n <= len(self.messages):
            raise _Refused(f"no such message, only {len(self.messages)} in maildrop")
        if n in self.deleted:
            raise _Refused(f"message {n} is deleted")
        return n

    def _stat(self, arg: str) -> None:
        if arg:
            raise _Refused("STAT takes no argument")
        live = [m for i, m in enumerate(self.messages, 1) if i not in self.deleted]
        self._out += ok(f"{len(live)} {sum(m.size for m in live)}")

    def _listing(self, arg: str, value: str) -> None:
        """LIST (value "size") or UIDL (value "uidl"), for one message or all."""
        if arg:
            n = self._number(arg)
            m = self.messages[n - 1]
            self._out += ok(f"{n} {m.size if value == 'size' else m.uidl}")
            return
        lines = [f"{i} {m.size if value == 'size' else m.uidl}"
                 for i, m in enumerate(self.messages, 1) if i not in self.deleted]
        self._out += multiline(ok(_count(len(lines))), lines)

    def _list(self, arg: str) -> None:
        return self._listing(arg, "size")

    def _uidl(self, arg: str) -> None:
        return self._listing(arg, "uidl")

    def _retr(self, arg: str) -> Retrieve:
        n = self._number(arg)
        return Retrieve(n, self.messages[n - 1], None)

    def _top(self, arg: str) -> Retrieve:
        parts = arg.split()
        if len(parts) != 2:
            raise _Refused("TOP needs a message number and a line count")
        n = self._number(parts[0])
        count = parts[1]
        if not count.isascii() or not count.isdigit() or len(count) > _MAX_DIGITS:
            raise _Refused(f"invalid line count {_shown(count)}")
        return Retrieve(n, self.messages[n - 1], int(count))

    def _dele(self, arg: str) -> None:
        n = self._number(arg)
        self.deleted.add(n)
        self._out += ok(f"message {n} deleted")

    def _rset(self, arg: str) -> None:
        if arg:
            raise _Refused("RSET takes no argument")
        self.deleted.clear()
        self._out += ok(f"maildrop has {_count(len(self.messages))}")

    def _noop(self, arg: str) -> None:
        if arg:
            raise _Refused("NOOP takes no argument")
        self._out += ok()


def _count(n: int) -> str:
    return f"{n} message" if n == 1 else f"{n} messages"


def _shown(value: str) -> str:
    """Client input quoted for an error reply: printable ASCII, at most 20 characters."""
    return repr("".join(c if c.isascii() and c.isprintable() else "?" for c in value[:20]))


def _text(value: str) -> str:
    """A credential as text: bytes that are not UTF-8 stay distinct (surrogate escapes become U+FFFD)."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


_PLAINTEXT_REFUSED = "plaintext authentication is disallowed on non-secure connections; use STLS or the TLS port"
_AUTH = frozenset({State.AUTHORIZATION})
_TRANS = frozenset({State.TRANSACTION})
_BOTH = _AUTH | _TRANS
#: command name -> (the states it is valid in, its handler)
_COMMANDS: dict[str, tuple[frozenset[State], Callable[[POP3Server, str], Event | None]]] = {
    "CAPA": (_BOTH, POP3Server._capa),
    "USER": (_AUTH, POP3Server._user_cmd),
    "PASS": (_AUTH, POP3Server._pass_cmd),
    "AUTH": (_AUTH, POP3Server._auth),
    "STLS": (_AUTH, POP3Server._stls),
    "UTF8": (_AUTH, POP3Server._utf8),
    "QUIT": (_BOTH, POP3Server._quit),
    "STAT": (_TRANS, POP3Server._stat),
    "LIST": (_TRANS, POP3Server._list),
    "UIDL": (_TRANS, POP3Server._uidl),
    "RETR": (_TRANS, POP3Server._retr),
    "TOP": (_TRANS, POP3Server._top),
    "DELE": (_TRANS, POP3Server._dele),
    "RSET": (_TRANS, POP3Server._rset),
    "NOOP": (_TRANS, POP3Server._noop),
}
