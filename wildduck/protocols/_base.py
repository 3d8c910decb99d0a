"""Pieces every sans-I/O protocol object shares (IMAP, LMTP, POP3), in the shape h11 made familiar.

* :data:`NEED_DATA`: ``next_event()`` cannot go on without more bytes from the peer;
* :data:`PAUSED`: ``next_event()`` cannot go on until the application decides (accepts or refuses a literal,
  answers MAIL/RCPT/DATA): bytes may be waiting, so this must never look like "need more bytes";
* :class:`ConnectionClosed`: the peer closed its side;
* :class:`Rejection`: a structured refusal found while framing (overlong line, bare LF, message too big) that each
  protocol renders in its own syntax;
* :class:`LineBuffer`: CRLF framing with a line length limit enforced while reading;
* :class:`DotUnstuffer` / :class:`DotStuffer` / :func:`dot_stuff`: the SMTP/POP3 multi-line data codec
  (RFC 5321 4.5.2, RFC 1939 3), incremental in both directions;
* :func:`sasl_plain`: the SASL PLAIN response (RFC 4616), as IMAP AUTHENTICATE and POP3 AUTH receive it.

Nothing here does I/O, logging or imports a network library.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, StrEnum, auto
from typing import Final, final

from wildduck import _speedups


@final
class Sentinel:
    """A named singleton returned by ``next_event()`` instead of an event."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


#: more bytes are needed before the next event
NEED_DATA: Final = Sentinel("NEED_DATA")
#: the protocol waits for the application's decision (accept or refuse) before it reads on
PAUSED: Final = Sentinel("PAUSED")


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed its side (EOF): nothing more will arrive."""


class Reason(StrEnum):
    """Why the framing layer refused input."""

    LINE_TOO_LONG = "line too long"
    BARE_LF = "bare LF"
    BARE_CR = "bare CR"
    NUL = "NUL byte"
    TOO_BIG = "too big"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refusal as a value; the protocol renders it (``500 5.5.2 ...``, ``-ERR ...``, ``* BAD ...``).

    Attributes:
        code: what is wrong.
        text: a short human-readable explanation.
        close: whether the connection should be closed after the reply.
    """

    code: Reason
    text: str
    close: bool = False


class BareLF(Enum):
    """What a line buffer does with an LF that no CR precedes."""

    #: it ends the line like CRLF (lenient readers)
    ACCEPT = auto()
    #: it ends the line, which is refused with :attr:`Reason.BARE_LF` (as is a lone CR inside a line)
    REJECT = auto()
    #: it is part of the line; only CRLF ends one
    IGNORE = auto()


class LineBuffer:
    """Frames input into lines, enforcing ``max_line`` while reading.

    An overlong line is consumed and discarded as it arrives (never more than ``max_line`` + 1 bytes of it are
    held) and reported, once its end has been read, as a :class:`Rejection` with :attr:`Reason.LINE_TOO_LONG`.
    """

    def __init__(self, max_line: int, *, bare_lf: BareLF = BareLF.REJECT) -> None:
        """Create an empty buffer.

        Args:
            max_line: the longest line accepted, not counting its line end.
            bare_lf: the policy for an LF without a CR before it.
        """
        self.max_line = max_line
        self.bare_lf = bare_lf
        self._buf = bytearray()
        self._skipping = False
        self._scanned = 0  # bytes of _buf known to hold no line end
        #: True once the peer has closed its side
        self.eof = False

    def __len__(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes | bytearray) -> None:
        """Append bytes from the peer; ``b""`` marks EOF."""
        if not data:
            self.eof = True
        else:
            self._buf += data

    def take(self) -> bytes:
        """Remove and return every unprocessed byte (to hand them to another reader, or to drop them)."""
        data = bytes(self._buf)
        self._buf.clear()
        self._scanned = 0
        return data

    def _find_end(self) -> tuple[int, int]:
        """(index of the line end, its length), or (-1, 0)."""
        start = max(0, self._scanned - 1)
        if self.bare_lf is BareLF.IGNORE:
            end = self._buf.find(b"\r\n", start)
            return (end, 2) if end >= 0 else (-1, 0)
        nl = self._buf.find(b"\n", start)
        if nl < 0:
            return -1, 0
        return (nl - 1, 2) if nl > 0 and self._buf[nl - 1] == 13 else (nl, 1)

    def next_line(self) -> bytes | Rejection | None:
        """The next line without its line end, a :class:`Rejection`, or None when more bytes are needed."""
        while True:
            end, size = self._find_end()
            if end < 0:
                self._scanned = len(self._buf)
                if len(self._buf) > self.max_line + 1:  # + 1: a CR may be waiting for its LF
                    self._skipping = True
                    keep = self._buf[-1:] if self.bare_lf is BareLF.IGNORE else b""
                    self._buf[:] = keep
                    self._scanned = 0
                return None
            line = bytes(self._buf[:end])
            del self._buf[:end + size]
            self._scanned = 0
            if self._skipping or end > self.max_line:
                self._skipping = False
                return Rejection(Reason.LINE_TOO_LONG, "line too long")
            if self.bare_lf is BareLF.REJECT:
                if size == 1:
                    return Rejection(Reason.BARE_LF, "lines must end with CRLF")
                if b"\r" in line:
                    return Rejection(Reason.BARE_CR, "lines must end with CRLF")
            return line


# --- dot-stuffing ------------------------------------------------------------------------------------------------
class DotUnstuffer:
    """Reads dot-stuffed data (after SMTP/LMTP DATA) incrementally, up to the CRLF "." CRLF that ends it.

    Only CRLF "." CRLF ends the data (a bare LF never does: SMTP smuggling). The size of the unstuffed data is
    limited while reading: once over ``max_size`` nothing more is kept. Bare LF, bare CR and NUL bytes are
    noted (:attr:`problems`), not fixed; the data is still read to its end, so the stream stays in sync. Each
    chunk is scanned with a few bulk byte operations, never byte by byte in Python.
    """

    def __init__(self, max_size: int) -> None:
        """Start reading at the beginning of the data (just after the CRLF of the DATA command).

        Args:
            max_size: the largest unstuffed data kept.
        """
        self.max_size = max_size
        self._out = bytearray()
        self._size = 0
        # unprocessed bytes that may belong to a pattern completed by the next chunk (at most 7); it starts with
        # the CRLF that ended the DATA line (virtual: not data), so that "." at the very start is a line start
        self._pending = b"\r\n"
        self._virtual = True
        #: what was wrong with the data, in the order found (each reason once)
        self.problems: list[Reason] = []
        #: True once the terminating line was read
        self.done = False
        #: bytes that followed the terminator (pipelined commands), once done
        self.rest = b""

    @property
    def buffered(self) -> int:
        """Bytes held: the data kept so far and a few undecided bytes."""
        return len(self._out) + len(self._pending)

    def _note(self, reason: Reason) -> None:
        if reason not in self.problems:
            self.problems.append(reason)

    def _process(self, segment: bytes) -> None:
        """Unstuff a segment that splits no CRLF and no CRLF "." (and the virtual CRLF, if it starts with it)."""
        crlf = segment.count(b"\r\n")
        if segment.count(b"\n") != crlf:
            self._note(Reason.BARE_LF)
        if segment.count(b"\r") != crlf:
            self._note(Reason.BARE_CR)
        if b"\x00" in segment:
            self._note(Reason.NUL)
        out = segment.replace(b"\r\n.", b"\r\n")
        if self._virtual:
            out = out[2:]
            self._virtual = False
        self._size += len(out)
        if self._size > self.max_size:
            if Reason.TOO_BIG not in self.problems:
                self._note(Reason.TOO_BIG)
                self._out = bytearray()
            return
        self._out += out

    def feed(self, data: bytes | bytearray) -> bool:
        """Read more of the data; True when the terminator has been read (then see :attr:`rest`).

        Args:
            data: the next bytes from the peer (must not be called again once done).
        """
        if self.done:
            raise RuntimeError("the data has ended")
        buf = self._pending + bytes(data)
        end = buf.find(b"\r\n.\r\n")
        if end >= 0:
            self._process(buf[:end + 2])
            self.rest = buf[end + 5:]
            self._pending = b""
            self.done = True
            return True
        # keep back what may start the terminator, and never split a CRLF or a CRLF "."
        cut = len(buf) - 4
        if cut >= 2 and buf[cut - 2:cut] == b"\r\n":
            cut -= 2
        if cut >= 1 and buf[cut - 1] == 13:
            cut -= 1
        if cut > 0:
            self._process(buf[:cut])
            self._pending = buf[cut:]
        else:
            self._pending = buf
        return False

    def rejection(self) -> Rejection | None:
        """The most serious problem with the data, once done: too big, NUL, bare LF or CR; None if it is clean."""
        for reason, text in ((Reason.TOO_BIG, "message too big"), (Reason.NUL, "message contains a NUL byte"),
                             (Reason.BARE_LF, "message contains a bare LF"),
                             (Reason.BARE_CR, "message contains a bare CR")):
            if reason in self.problems:
                return Rejection(reason, text)
        return None

    def data(self) -> bytes:
        """The unstuffed data (empty when it was too big)."""
        return bytes(self._out)


#: ``data.replace(b"\r\n.", b"\r\n..")``, with memchr when compiled (see ``wildduck/_speedups/compose.py``)
_stuff_dots: Callable[[bytes], bytes] = _speedups.load("compose").stuff_dots


class DotStuffer:
    """Writes data dot-stuffed, incrementally (POP3 RETR/TOP, an SMTP client's DATA).

    A "." that starts a line (at the beginning or after CRLF) is doubled; :meth:`end` closes the data with
    CRLF (if it does not already end with one) and the terminating ``.\\r\\n``. Only CRLF starts a line, as for
    :class:`DotUnstuffer`: data with bare LFs should be normalized first if the reader splits on LF.
    """

    def __init__(self) -> None:
        self._tail = b"\r\n"  # the last two bytes written; the start of the data counts as a line start

    def feed(self, chunk: bytes) -> bytes:
        """The stuffed form of the next chunk of data."""
        if not chunk:
            return b""
        tail = self._tail
        if len(chunk) >= 2:
            self._tail = chunk[-2:]
        else:
            self._tail = (tail + chunk)[-2:]
        if b"." not in chunk:  # one memchr: nothing to stuff (base64 bodies), the chunk itself is the answer
            return chunk
        if chunk[:1] == b"." and tail == b"\r\n" or chunk[:2] == b"\n." and tail[1:] == b"\r":
            # a line that starts at the chunk's first byte, or a CRLF split across chunks
            return _stuff_dots(tail + chunk)[len(tail):]
        # the chunk itself when no line starts with a dot: no copy
        return _stuff_dots(chunk)

    def end(self) -> bytes:
        """The bytes that close the data."""
        return b".\r\n" if self._tail == b"\r\n" else b"\r\n.\r\n"


def dot_stuff(data: bytes) -> bytes:
    """``data`` dot-stuffed and terminated (``.\\r\\n``), in one piece.

    The inverse of :class:`DotUnstuffer` for data that is empty or ends with CRLF; other data comes back with a
    CRLF added at its end.
    """
    stuffer = DotStuffer()
    return stuffer.feed(data) + stuffer.end()


def sasl_plain(response: bytes) -> tuple[str, str]:
    """(authentication identity, password) from a base64 SASL PLAIN response (``=`` is an empty one).

    Raises ValueError with the reason for a malformed response, or for an authorization identity other than the
    authentication identity (logging in as someone else is not supported). Bytes that are not UTF-8 become U+FFFD.
    """
    try:
        decoded = b"" if response == b"=" else base64.b64decode(response, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("malformed PLAIN response: not base64") from None
    fields = decoded.split(b"\x00")
    if len(fields) != 3:
        raise ValueError("malformed PLAIN response: expected authzid NUL authcid NUL password")
    authz, authc, password = fields
    if authz and authz != authc:
        raise ValueError("logging in as another user is not supported")
    return authc.decode("utf-8", "replace"), password.decode("utf-8", "replace")
