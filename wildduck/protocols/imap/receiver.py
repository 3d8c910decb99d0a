"""The IMAP command receiver: a resumable byte state machine (sans-I/O).

Bytes go in with :meth:`Receiver.receive_data`; :meth:`Receiver.next_event` returns one event at a time:

* :class:`RawCommand`: a complete command as tokens (tag, name, arguments with literals in place);
* :class:`LiteralAnnounced`: a synchronizing literal was announced; the receiver pauses until the session calls
  :meth:`Receiver.accept_literal` (and sends ``+ go ahead``) or :meth:`Receiver.refuse_literal` (and sends the
  tagged refusal: the client then abandons the command);
* :class:`CommandRejected`: the command broke the syntax or a limit; the receiver has resynchronized (a
  refused non-synchronizing literal is skipped by counting, never stored);
* :class:`IdleDone`, :class:`SaslResponse` in the IDLE and SASL modes, :class:`ConnectionClosed` at EOF;
* :data:`NEED_DATA` when more bytes are needed;
* :data:`PAUSED` after :class:`LiteralAnnounced` until the session has accepted or refused the literal (bytes may
  be waiting: this is not "need more bytes", and reading on would be wrong).

The sentinels and :class:`ConnectionClosed` are those of :mod:`wildduck.protocols._base`, re-exported here.

Each line segment is tokenized once (the compiled tokenizer does it); a command continued after a literal is
never re-parsed. Limits are enforced while reading: segment length, literal size, command size, nesting depth and
number of literals. Lines may end in CRLF or, leniently, a bare LF; a lone CR or a NUL outside a literal is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum, auto
from types import ModuleType

from wildduck import _speedups
from wildduck.protocols._base import NEED_DATA, PAUSED, ConnectionClosed, Sentinel

_tok = _speedups.load("imaptok")
ATOM, QUOTED, LPAREN, RPAREN, LITERAL = 0, 1, 2, 3, 4
#: a ``literal8`` (``~{n}``, RFC 3516): may hold NUL bytes; only APPEND takes one
LITERAL8 = 5

Token = tuple[int, bytes | None]

__all__ = [
    "ATOM", "LITERAL", "LITERAL8", "LPAREN", "NEED_DATA", "PAUSED", "QUOTED", "RPAREN", "CommandRejected",
    "ConnectionClosed",
    "Event", "IdleDone", "LiteralAnnounced", "Mode", "RawCommand", "Receiver", "SaslResponse", "Token",
]

_TRAILING_LITERAL = re.compile(rb"\{(\d{1,12})(\+?)\}$")
_TRAILING_LITERAL8 = re.compile(rb"(?:^|[ (])~\{\d{1,12}\+?\}$")
_TAG = re.compile(rb"^[\x21\x23\x24\x26\x27\x2c-\x5b\x5e-\x7a\x7c\x7e]+$")  # ASTRING-CHAR minus "+"


@dataclass(frozen=True, slots=True)
class RawCommand:
    tag: str
    name: str
    #: argument tokens after the command name: (kind, value); kind LITERAL carries the literal bytes
    args: list[Token]


@dataclass(frozen=True, slots=True)
class LiteralAnnounced:
    tag: str
    size: int
    #: bytes of the literals already read in this command (a MULTIAPPEND's earlier messages: the quota is checked
    #: for the sum)
    earlier: int = 0


@dataclass(frozen=True, slots=True)
class CommandRejected:
    #: None when the line had no usable tag (the reply is then untagged ``* BAD``)
    tag: str | None
    text: str
    #: "BAD" for a syntax error; "NO" for a well-formed command refused by a limit
    status: str = "BAD"
    #: response code for the tagged reply (e.g. "TOOBIG")
    code: str | None = None


@dataclass(frozen=True, slots=True)
class IdleDone:
    #: False when the line was not DONE (the session reports BAD and ends IDLE)
    valid: bool


@dataclass(frozen=True, slots=True)
class SaslResponse:
    #: the client's line without CRLF; ``b"*"`` cancels the exchange
    line: bytes


Event = RawCommand | LiteralAnnounced | CommandRejected | IdleDone | SaslResponse | ConnectionClosed


class _State(Enum):
    LINE = auto()
    WAIT_LITERAL = auto()  # a synchronizing literal was announced: the session must decide
    LITERAL = auto()
    SKIP_LITERAL = auto()  # counting away a refused non-synchronizing literal
    SKIP_LINE = auto()  # discarding the rest of an overlong line
    CLOSED = auto()


class Mode(Enum):
    NORMAL = auto()
    IDLE = auto()
    SASL = auto()


@dataclass
class _Partial:
    """The command being assembled across literals."""

    tokens: list[Token] = field(default_factory=list)
    depth: int = 0
    size: int = 0
    literals: int = 0
    #: bytes of the literals read (or being read) so far
    literal_bytes: int = 0
    tag: str | None = None
    #: set when the command was refused but its remaining bytes must still be consumed
    error: str | None = None
    #: the refusal is for a literal over the size limit (NO [TOOBIG], not BAD)
    too_big: bool = False
    #: the literal being read is a literal8 (``~{n}``)
    binary: bool = False


class Receiver:
    """Frames and tokenizes IMAP commands for one connection."""

    def __init__(
        self,
        *,
        max_line: int = 65536,
        max_literal: int = 64 * 1024 * 1024,
        max_command: int = 70 * 1024 * 1024,
        max_depth: int = 32,
        max_literals: int = 100,
        literal_minus: bool = False,
        tokenizer: ModuleType | None = None,
    ) -> None:
        self.max_line = max_line
        self.max_literal = max_literal
        self.max_command = max_command
        self.max_depth = max_depth
        self.max_literals = max_literals
        #: LITERAL- (RFC 7888): non-synchronizing literals above 4096 bytes are refused
        self.literal_minus = literal_minus
        self._tokenize = (tokenizer or _tok).tokenize
        self.mode = Mode.NORMAL
        self._buf = bytearray()
        self._eof = False
        self._state = _State.LINE
        self._cmd = _Partial()
        self._remaining = 0  # literal bytes still to read or skip
        self._literal = bytearray()

    # input and modes -------------------------------------------------------------------------------------------
    def receive_data(self, data: bytes | bytearray) -> None:
        """Bytes from the client; ``b""`` means EOF."""
        if not data:
            self._eof = True
        elif self._state is not _State.CLOSED:
            self._buf += data

    def discard_buffer(self) -> None:
        """Forget unprocessed input (after STARTTLS: pipelined plaintext must never run)."""
        self.take_buffer()

    def take_buffer(self) -> bytes:
        """Remove and return unprocessed input (after COMPRESS: it is the start of the compressed stream)."""
        data = bytes(self._buf)
        self._buf.clear()
        return data

    def set_mode(self, mode: Mode) -> None:
        self.mode = mode

    @property
    def buffered(self) -> int:
        """Bytes held: input not yet processed plus a literal being read."""
        return len(self._buf) + len(self._literal)

    def accept_literal(self) -> None:
        """Continue after a synchronizing literal announcement (the session sends ``+ ...``)."""
        if self._state is not _State.WAIT_LITERAL:
            raise RuntimeError("no literal is waiting")
        self._state = _State.LITERAL

    def refuse_literal(self) -> None:
        """Refuse the announced synchronizing literal: the client abandons the command (RFC 3501 7.5)."""
        if self._state is not _State.WAIT_LITERAL:
            raise RuntimeError("no literal is waiting")
        self._cmd = _Partial()
        self._remaining = 0
        self._state = _State.LINE

    # events ----------------------------------------------------------------------------------------------------
    def next_event(self) -> Event | Sentinel:
        """The next event, :data:`NEED_DATA`, or :data:`PAUSED` while an announced literal awaits the decision."""
        while True:
            state = self._state
            if state is _State.CLOSED:
                return ConnectionClosed() if self._eof else NEED_DATA
            if state is _State.WAIT_LITERAL:
                return PAUSED
            if state is _State.LITERAL or state is _State.SKIP_LITERAL:
                take = min(self._remaining, len(self._buf))
                if state is _State.LITERAL:
                    self._literal += self._buf[:take]
                del self._buf[:take]
                self._remaining -= take
                if self._remaining:
                    return self._eof_or_need()
                if state is _State.LITERAL:
                    self._cmd.tokens.append((LITERAL8 if self._cmd.binary else LITERAL, bytes(self._literal)))
                    self._literal = bytearray()
                self._state = _State.LINE
                continue
            nl = self._buf.find(b"\n")
            if state is _State.SKIP_LINE:
                if nl < 0:
                    self._buf.clear()
                    return self._eof_or_need()
                del self._buf[:nl + 1]
                self._state = _State.LINE
                continue
            # LINE
            if nl < 0:
                if len(self._buf) > self.max_line:
                    tag = self._cmd.tag or self._leading_tag()
                    self._buf.clear()
                    self._state = _State.SKIP_LINE
                    self._cmd = _Partial()
                    return CommandRejected(tag, "line too long")
                return self._eof_or_need()
            end = nl - 1 if nl > 0 and self._buf[nl - 1] == 13 else nl
            if end > self.max_line:
                tag = self._cmd.tag or self._leading_tag()
                del self._buf[:nl + 1]
                self._cmd = _Partial()
                return CommandRejected(tag, "line too long")
            line = bytes(self._buf[:end])
            del self._buf[:nl + 1]
            if self.mode is Mode.IDLE and not self._cmd.tokens:
                return IdleDone(line.strip().upper() == b"DONE")
            if self.mode is Mode.SASL and not self._cmd.tokens:
                return SaslResponse(line)
            event = self._segment(line)
            if event is not None:
                return event

    def _leading_tag(self) -> str | None:
        """The tag at the start of an overlong first line, so that its refusal can be tagged."""
        if self._cmd.tokens or self.mode is not Mode.NORMAL:
            return None
        head = bytes(self._buf[:64]).split(b" ", 1)[0]
        return head.decode("ascii") if _TAG.match(head) and len(head) < 64 else None

    def _eof_or_need(self) -> ConnectionClosed | Sentinel:
        if self._eof:
            self._state = _State.CLOSED
            return ConnectionClosed()
        return NEED_DATA

    def _segment(self, line: bytes) -> Event | None:
        """Tokenize one line segment of the current command."""
        cmd = self._cmd
        cmd.size += len(line) + 2
        if b"\r" in line:
            return self._fail("invalid character CR")
        tokens, depth, literal, nonsync, error = self._tokenize(line, 0, len(line), cmd.depth, self.max_depth)
        if error is not None and literal < 0:
            # the tokenizer stopped early: a literal announced at the end of the line must still be honoured,
            # or its bytes would be read as commands
            m = _TRAILING_LITERAL.search(line)
            if m is not None:
                literal, nonsync = int(m.group(1)), bool(m.group(2))
        first = not cmd.tokens and cmd.tag is None
        if first and tokens and tokens[0][0] == ATOM and _TAG.match(tokens[0][1] or b""):
            cmd.tag = (tokens[0][1] or b"").decode("ascii")
        if cmd.error is None:
            if error is not None:
                cmd.error = error
            elif first and cmd.tag is None:
                cmd.error = "missing or invalid tag"
            elif cmd.size > self.max_command:
                cmd.error = "command too long"
            else:
                cmd.tokens.extend(tokens)
                cmd.depth = depth
        if literal >= 0:
            # "~{n}": the tokenizer sees an atom "~" right before the announcement
            cmd.binary = _TRAILING_LITERAL8.search(line) is not None
            if cmd.binary and cmd.error is None and cmd.tokens[-1:] == [(ATOM, b"~")]:
                cmd.tokens.pop()
            cmd.literals += 1
            cmd.size += literal
            refuse = None
            too_big = False
            if cmd.error is not None:
                refuse = cmd.error
            elif literal > self.max_literal:
                refuse = f"literal of {literal} bytes is over the limit of {self.max_literal}"
                too_big = True
            elif cmd.size > self.max_command:  # several literals (MULTIAPPEND) over what one command may hold
                refuse = f"the command would hold more than {self.max_command} bytes"
                too_big = True
            elif cmd.literals > self.max_literals:
                refuse = "too many literals"
            elif nonsync and self.literal_minus and literal > 4096:
                refuse = "non-synchronizing literals over 4096 bytes are not allowed (LITERAL-)"
            earlier = cmd.literal_bytes
            cmd.literal_bytes += literal
            if nonsync:
                self._remaining = literal
                if refuse is not None:
                    cmd.error = refuse
                    cmd.too_big = too_big
                    self._state = _State.SKIP_LITERAL
                else:
                    self._state = _State.LITERAL
                return None
            if refuse is not None:  # the client waits for "+": it will not send the literal
                tag = cmd.tag
                self._cmd = _Partial()
                return CommandRejected(tag, refuse, "NO", "TOOBIG") if too_big else CommandRejected(tag, refuse)
            self._remaining = literal
            self._state = _State.WAIT_LITERAL
            return LiteralAnnounced(cmd.tag or "*", literal, earlier)
        # the command is complete
        self._cmd = _Partial()
        if cmd.error is not None:
            if cmd.too_big:
                return CommandRejected(cmd.tag, cmd.error, "NO", "TOOBIG")
            return CommandRejected(cmd.tag, cmd.error)
        if cmd.depth != 0:
            return CommandRejected(cmd.tag, "unbalanced parenthesis")
        if len(cmd.tokens) < 2 or cmd.tokens[1][0] != ATOM:
            return CommandRejected(cmd.tag, "missing command")
        name = (cmd.tokens[1][1] or b"").decode("ascii", "replace").upper()
        return RawCommand(cmd.tag or "*", name, cmd.tokens[2:])

    def _fail(self, text: str) -> CommandRejected:
        tag = self._cmd.tag
        self._cmd = _Partial()
        return CommandRejected(tag, text)
