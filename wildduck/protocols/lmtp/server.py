"""LMTP (RFC 2033) server side, sans-I/O.

Feed bytes with :meth:`LMTPServer.receive_data` (``b""`` = EOF) and pull events with :meth:`next_event` until it
returns :data:`NEED_DATA`. Commands are parsed lazily, one per call, so the session's decisions on earlier
commands (accepted recipients) are known when a later pipelined command (DATA) is parsed.

The object owns the state machine: the session answers each event with :meth:`LMTPServer.send`, which renders a
:class:`Reply` and advances the state (a 2xx to MAIL FROM starts the transaction, a 2xx to RCPT TO adds a
recipient, 354 to DATA starts the message data, 221 to QUIT closes). After MAIL FROM, RCPT TO, DATA and QUIT,
:meth:`~LMTPServer.next_event` returns :data:`PAUSED` until that reply is sent. Syntax and sequencing errors arrive
as :class:`CommandRejected` events that carry the finished reply bytes. Limits (line length, message size,
recipients) are enforced while reading: an overlong line or an oversize message is consumed and discarded without
being kept in memory.

Message data ends only at CRLF "." CRLF; a bare LF never ends it (SMTP smuggling). Data containing a bare LF,
a bare CR or a NUL byte is refused per recipient (550 5.6.0): real MTAs send CRLF-only mail over LMTP, and
accepting ambiguous line ends is what smuggling attacks build on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum, auto

from wildduck.protocols._base import (
    NEED_DATA,
    PAUSED,
    BareLF,
    ConnectionClosed,
    DotUnstuffer,
    LineBuffer,
    Reason,
    Rejection,
    Sentinel,
)


@dataclass(frozen=True, slots=True)
class Lhlo:
    domain: str


@dataclass(frozen=True, slots=True)
class MailFrom:
    #: the reverse path without angle brackets ("" for the null sender)
    address: str
    params: dict[str, str | None]
    #: the SIZE parameter, if given
    size: int | None
    smtputf8: bool


@dataclass(frozen=True, slots=True)
class RcptTo:
    address: str
    params: dict[str, str | None]


@dataclass(frozen=True, slots=True)
class DataStart:
    """DATA was accepted by the protocol: send :meth:`LMTPServer.data_go_ahead` (or another 354 reply with
    :meth:`LMTPServer.send`) and the message follows; any other reply refuses it."""


@dataclass(frozen=True, slots=True)
class MessageData:
    """The message after CRLF.CRLF, dot-unstuffed. If ``error`` is set, the data was refused (the reply for each
    recipient) and ``data`` is empty."""

    data: bytes
    error: bytes | None = None


@dataclass(frozen=True, slots=True)
class Rset:
    pass


@dataclass(frozen=True, slots=True)
class Noop:
    pass


@dataclass(frozen=True, slots=True)
class Quit:
    pass


@dataclass(frozen=True, slots=True)
class Vrfy:
    argument: str


@dataclass(frozen=True, slots=True)
class StartTLS:
    pass


@dataclass(frozen=True, slots=True)
class CommandRejected:
    """A command refused by the protocol itself; send ``reply``. ``close`` asks the session to hang up after."""

    reply: bytes
    close: bool = False


Event = Lhlo | MailFrom | RcptTo | DataStart | MessageData | Rset | Noop | Quit | Vrfy | StartTLS | \
    CommandRejected | ConnectionClosed


class _Mode(Enum):
    COMMAND = auto()
    REPLY = auto()  # a reply to MAIL, RCPT, DATA or QUIT decides what comes next
    DATA = auto()
    CLOSED = auto()


_PATH = re.compile(r'^<((?:"(?:[^"\\]|\\.)*"|[^<>"\s])*)>(?:\s+(.*))?$')
_PARAM = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*)(?:=([\x21-\x3c\x3e-\x7e]+))?$")
_DOMAIN = re.compile(r"^[\w.\-\[\]:]+$")


def reply_bytes(code: int, enhanced: str | None, text: str, *more: str) -> bytes:
    """One reply; ``more`` adds lines (a multi-line reply, RFC 5321 4.2.1)."""
    lines = [text, *more]
    prefix = f"{enhanced} " if enhanced else ""
    out = []
    for i, line in enumerate(lines):
        sep = "-" if i < len(lines) - 1 else " "
        out.append(f"{code}{sep}{prefix}{line}\r\n")
    return "".join(out).encode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply value for :meth:`LMTPServer.send`: code, enhanced status code (RFC 3463) and lines of text."""

    code: int
    enhanced: str | None
    text: str
    more: tuple[str, ...] = ()

    def render(self) -> bytes:
        """The reply on the wire."""
        return reply_bytes(self.code, self.enhanced, self.text, *self.more)


#: how a framing rejection reads in LMTP, by reason: (code, enhanced code, text)
_REJECTIONS: dict[Reason, tuple[int, str, str]] = {
    Reason.LINE_TOO_LONG: (500, "5.5.2", "Line too long"),
    Reason.BARE_LF: (500, "5.5.2", "Syntax error: lines must end with CRLF"),
    Reason.BARE_CR: (500, "5.5.2", "Syntax error: lines must end with CRLF"),
    Reason.NUL: (500, "5.5.2", "Syntax error: NUL byte in command"),
}
#: how refused message data reads, by reason (one reply per recipient)
_DATA_REJECTIONS: dict[Reason, tuple[int, str, str]] = {
    Reason.NUL: (550, "5.6.0", "Message contains a NUL byte"),
    Reason.BARE_LF: (550, "5.6.0", "Message contains a bare LF or CR; lines must end with CRLF"),
    Reason.BARE_CR: (550, "5.6.0", "Message contains a bare LF or CR; lines must end with CRLF"),
}


def _rejected(rejection: Rejection) -> CommandRejected:
    code, enhanced, text = _REJECTIONS[rejection.code]
    return CommandRejected(reply_bytes(code, enhanced, text), rejection.close)


@dataclass
class _Transaction:
    sender: str | None = None
    smtputf8: bool = False
    recipients: int = 0
    rcpt_commands: int = 0
    extra: dict[str, object] = field(default_factory=dict)


class LMTPServer:
    """The protocol state of one LMTP connection (server side)."""

    def __init__(
        self,
        hostname: str,
        *,
        max_message_size: int,
        max_recipients: int = 1000,
        max_line_length: int = 4096,
        tls_available: bool = False,
    ) -> None:
        self.hostname = hostname
        self.max_message_size = max_message_size
        self.max_recipients = max_recipients
        self.max_line_length = max_line_length
        self.tls_available = tls_available
        self.tls_active = False
        self._lines = LineBuffer(max_line_length, bare_lf=BareLF.REJECT)
        self._mode = _Mode.COMMAND
        self._greeted = False
        self._tx = _Transaction()
        #: the event whose reply decides the next state (in REPLY mode)
        self._awaiting: Event | None = None
        self._data: DotUnstuffer | None = None

    # input -------------------------------------------------------------------------------------------------
    def receive_data(self, data: bytes | bytearray) -> None:
        """Bytes from the peer; ``b""`` means EOF."""
        if self._mode is not _Mode.CLOSED or not data:
            self._lines.feed(data)

    def discard_buffer(self) -> None:
        """Drop bytes received but not processed (after STARTTLS: pipelined plaintext is never executed)."""
        self._lines.take()

    def tls_started(self) -> None:
        """The connection is now encrypted: forget LHLO and the transaction (RFC 3207 4.2)."""
        self.tls_active = True
        self._greeted = False
        self._tx = _Transaction()

    @property
    def buffered(self) -> int:
        """Bytes held: unprocessed input plus message data being read."""
        return len(self._lines) + (self._data.buffered if self._data is not None else 0)

    # replies -----------------------------------------------------------------------------------------------
    def send(self, reply: Reply) -> bytes:
        """Render ``reply`` to the event last returned and advance the state machine.

        A 2xx to :class:`MailFrom` starts the transaction, a 2xx to :class:`RcptTo` adds a recipient, a 354 to
        :class:`DataStart` switches to message data, a 221 to :class:`Quit` closes the connection; any other
        reply to those leaves the state as it was (DATA refused: back to commands). Other replies only render.

        Args:
            reply: the reply to send.

        Returns:
            The bytes to write.
        """
        event, self._awaiting = self._awaiting, None
        if self._mode is _Mode.REPLY:
            self._mode = _Mode.COMMAND
            ok = 200 <= reply.code < 300
            if isinstance(event, MailFrom) and ok:
                self._tx = _Transaction(sender=event.address, smtputf8=event.smtputf8)
            elif isinstance(event, RcptTo) and ok:
                self._tx.recipients += 1
            elif isinstance(event, DataStart) and reply.code == 354:
                self._mode = _Mode.DATA
                self._data = DotUnstuffer(self.max_message_size)
            elif isinstance(event, Quit) and reply.code == 221:
                self.close()
        return reply.render()

    def greeting(self) -> bytes:
        return reply_bytes(220, None, f"{self.hostname} LMTP wildduck ready")

    reply = staticmethod(reply_bytes)

    def data_go_ahead(self) -> bytes:
        """Accept the message data (the 354 reply to :class:`DataStart`)."""
        return self.send(Reply(354, None, "Start mail input; end with <CRLF>.<CRLF>"))

    # session feedback ---------------------------------------------------------------------------------------
    @property
    def recipients(self) -> int:
        return self._tx.recipients

    @property
    def in_transaction(self) -> bool:
        return self._tx.sender is not None

    def reset(self) -> None:
        """End the mail transaction (after RSET, or after the message was handled)."""
        self._tx = _Transaction()

    def close(self) -> None:
        self._mode = _Mode.CLOSED
        self._lines.take()

    # events ------------------------------------------------------------------------------------------------
    def next_event(self) -> Event | Sentinel:
        """The next event, :data:`NEED_DATA` when more bytes are needed, or :data:`PAUSED` until the reply to
        MAIL, RCPT, DATA or QUIT has been sent with :meth:`send`."""
        mode = self._mode
        if mode is _Mode.REPLY:
            return PAUSED
        if mode is _Mode.DATA:
            return self._data_event()
        if mode is _Mode.CLOSED:
            return ConnectionClosed() if self._lines.eof else NEED_DATA
        line = self._lines.next_line()
        if line is None:
            if self._lines.eof:
                self._mode = _Mode.CLOSED
                return ConnectionClosed()
            return NEED_DATA
        if isinstance(line, Rejection):
            return _rejected(line)
        event = self._command(line)
        if isinstance(event, (MailFrom, RcptTo, DataStart, Quit)):
            self._mode = _Mode.REPLY
            self._awaiting = event
        return event

    def _command(self, line: bytes) -> Event:
        if b"\x00" in line:
            return _rejected(Rejection(Reason.NUL, "NUL byte in command"))
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            return CommandRejected(reply_bytes(500, "5.5.2", "Syntax error: command is not valid UTF-8"))
        verb, _, arg = text.strip(" ").partition(" ")
        verb = verb.upper()
        arg = arg.strip(" ")
        handler = _COMMANDS.get(verb)
        if handler is None:
            if verb in ("HELO", "EHLO"):
                return CommandRejected(reply_bytes(500, "5.5.1", "This is an LMTP server: use LHLO"))
            if not verb:
                return CommandRejected(reply_bytes(500, "5.5.2", "Syntax error: empty command"))
            return CommandRejected(reply_bytes(500, "5.5.1", "Command unrecognized"))
        return handler(self, arg)

    def _lhlo(self, arg: str) -> Event:
        if not arg or not _DOMAIN.match(arg.split(" ")[0]):
            return CommandRejected(reply_bytes(501, "5.5.4", "Syntax: LHLO hostname"))
        self._greeted = True
        self._tx = _Transaction()
        return Lhlo(arg.split(" ")[0])

    def lhlo_reply(self) -> bytes:
        lines = [self.hostname, "PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "SMTPUTF8",
                 f"SIZE {self.max_message_size}"]
        if self.tls_available and not self.tls_active:
            lines.append("STARTTLS")
        return reply_bytes(250, None, *lines)

    @staticmethod
    def _split_path(arg: str, keyword: str) -> tuple[str, str] | CommandRejected:
        if not arg[: len(keyword)].upper() == keyword:
            return CommandRejected(reply_bytes(501, "5.5.4", f"Syntax: {keyword}<address> [parameters]"))
        rest = arg[len(keyword):].lstrip(" ")
        m = _PATH.match(rest)
        if m is None:
            return CommandRejected(reply_bytes(501, "5.1.7" if keyword == "FROM:" else "5.1.3",
                                               "Syntax error in address: expected <local@domain>"))
        return m.group(1), m.group(2) or ""

    @staticmethod
    def _params(text: str) -> dict[str, str | None] | CommandRejected:
        params: dict[str, str | None] = {}
        for item in text.split():
            m = _PARAM.match(item)
            if m is None:
                return CommandRejected(reply_bytes(501, "5.5.4", f"Syntax error in parameter {item[:64]!r}"))
            params[m.group(1).upper()] = m.group(2)
        return params

    def _mail(self, arg: str) -> Event:
        if not self._greeted:
            return CommandRejected(reply_bytes(503, "5.5.1", "Send LHLO first"))
        if self._tx.sender is not None:
            return CommandRejected(reply_bytes(503, "5.5.1", "Nested MAIL command"))
        split = self._split_path(arg, "FROM:")
        if isinstance(split, CommandRejected):
            return split
        address, rest = split
        params = self._params(rest)
        if isinstance(params, CommandRejected):
            return params
        size: int | None = None
        for key, value in params.items():
            if key == "SIZE":
                if value is None or not value.isdigit() or len(value) > 20:
                    return CommandRejected(reply_bytes(501, "5.5.4", "Syntax: SIZE=<number of octets>"))
                size = int(value)
                if size > self.max_message_size:
                    return CommandRejected(reply_bytes(
                        552, "5.3.4", f"Message size exceeds the fixed maximum of {self.max_message_size} octets"))
            elif key == "BODY":
                if value is None or value.upper() not in ("7BIT", "8BITMIME"):
                    return CommandRejected(reply_bytes(555, "5.5.4", "BODY must be 7BIT or 8BITMIME"))
            elif key == "SMTPUTF8":
                if value is not None:
                    return CommandRejected(reply_bytes(555, "5.5.4", "SMTPUTF8 takes no value"))
            else:
                return CommandRejected(reply_bytes(555, "5.5.4", f"Unsupported parameter {key}"))
        smtputf8 = "SMTPUTF8" in params
        if not smtputf8 and not address.isascii():
            return CommandRejected(reply_bytes(553, "5.6.7", "Non-ASCII address requires SMTPUTF8"))
        return MailFrom(address, params, size, smtputf8)

    def _rcpt(self, arg: str) -> Event:
        if self._tx.sender is None:
            return CommandRejected(reply_bytes(503, "5.5.1", "Need MAIL command first"))
        split = self._split_path(arg, "TO:")
        if isinstance(split, CommandRejected):
            return split
        address, rest = split
        params = self._params(rest)
        if isinstance(params, CommandRejected):
            return params
        if params:
            return CommandRejected(reply_bytes(555, "5.5.4", f"Unsupported parameter {next(iter(params))}"))
        if not address:
            return CommandRejected(reply_bytes(501, "5.1.3", "Empty recipient address"))
        if not self._tx.smtputf8 and not address.isascii():
            return CommandRejected(reply_bytes(553, "5.6.7", "Non-ASCII address requires SMTPUTF8"))
        self._tx.rcpt_commands += 1
        if self._tx.recipients >= self.max_recipients:
            return CommandRejected(reply_bytes(452, "4.5.3", "Too many recipients"))
        return RcptTo(address, params)

    def _data_cmd(self, arg: str) -> Event:
        if arg:
            return CommandRejected(reply_bytes(501, "5.5.4", "Syntax: DATA takes no argument"))
        if self._tx.sender is None:
            return CommandRejected(reply_bytes(503, "5.5.1", "Need MAIL command first"))
        if self._tx.recipients == 0:
            return CommandRejected(reply_bytes(554, "5.5.1", "No valid recipients"))
        return DataStart()

    def _rset(self, arg: str) -> Event:
        self._tx = _Transaction()
        return Rset()

    def _noop(self, arg: str) -> Event:
        return Noop()

    def _quit(self, arg: str) -> Event:
        return Quit()

    def _vrfy(self, arg: str) -> Event:
        if not arg:
            return CommandRejected(reply_bytes(501, "5.5.4", "Syntax: VRFY <address>"))
        return Vrfy(arg)

    def _starttls(self, arg: str) -> Event:
        if arg:
            return CommandRejected(reply_bytes(501, "5.5.4", "Syntax: STARTTLS takes no argument"))
        if not self.tls_available:
            return CommandRejected(reply_bytes(502, "5.5.1", "STARTTLS is not available"))
        if self.tls_active:
            return CommandRejected(reply_bytes(503, "5.5.1", "TLS is already active"))
        if self._tx.sender is not None:
            return CommandRejected(reply_bytes(503, "5.5.1", "STARTTLS is not allowed inside a mail transaction"))
        return StartTLS()

    # message data --------------------------------------------------------------------------------------------
    def _data_event(self) -> MessageData | ConnectionClosed | Sentinel:
        data = self._data
        assert data is not None
        if not data.feed(self._lines.take()):
            if self._lines.eof:
                self._mode = _Mode.CLOSED
                return ConnectionClosed()
            return NEED_DATA
        self._data = None
        self._mode = _Mode.COMMAND
        if data.rest:
            self._lines.feed(data.rest)  # pipelined commands after the message
        self._tx = _Transaction()  # the replies to the message end the transaction (RFC 2033 4.2)
        rejection = data.rejection()
        if rejection is None:
            return MessageData(data.data())
        if rejection.code is Reason.TOO_BIG:
            return MessageData(b"", reply_bytes(552, "5.3.4", "Message exceeds the maximum size of "
                                                f"{self.max_message_size} octets"))
        code, enhanced, text = _DATA_REJECTIONS[rejection.code]
        return MessageData(b"", reply_bytes(code, enhanced, text))


_COMMANDS = {
    "LHLO": LMTPServer._lhlo,
    "MAIL": LMTPServer._mail,
    "RCPT": LMTPServer._rcpt,
    "DATA": LMTPServer._data_cmd,
    "RSET": LMTPServer._rset,
    "NOOP": LMTPServer._noop,
    "QUIT": LMTPServer._quit,
    "VRFY": LMTPServer._vrfy,
    "STARTTLS": LMTPServer._starttls,
}

__all__ = [
    "NEED_DATA", "PAUSED", "CommandRejected", "ConnectionClosed", "DataStart", "Event", "LMTPServer", "Lhlo",
    "MailFrom", "MessageData", "Noop", "Quit", "RcptTo", "Reply", "Rset", "StartTLS", "Vrfy", "reply_bytes",
]
