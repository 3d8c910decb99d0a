"""The lexical layer of the IMAP grammar: :class:`ParseError`, the :class:`Args` cursor over a command's
tokens, and the small values several commands share (flags, dates)."""

from __future__ import annotations

import datetime as dt
import re

from wildduck.protocols.imap.receiver import ATOM, LITERAL, LPAREN, QUOTED, RPAREN, Token


class ParseError(Exception):
    """The arguments do not follow the grammar; the message is the BAD text."""


class Args:
    """A cursor over a command's argument tokens."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def at_end(self) -> bool:
        return self.pos >= len(self.tokens)

    def end(self) -> None:
        if not self.at_end():
            raise ParseError("unexpected extra arguments")

    def _next(self, what: str) -> Token:
        if self.pos >= len(self.tokens):
            raise ParseError(f"missing {what}")
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def atom(self, what: str = "argument") -> bytes:
        kind, value = self._next(what)
        if kind != ATOM or value is None:
            raise ParseError(f"expected {what}")
        return value

    def astring(self, what: str = "string") -> bytes:
        kind, value = self._next(what)
        if kind not in (ATOM, QUOTED, LITERAL) or value is None:
            raise ParseError(f"expected {what}")
        return value

    def string(self, what: str = "string") -> bytes:
        kind, value = self._next(what)
        if kind not in (QUOTED, LITERAL) or value is None:
            raise ParseError(f"expected {what} (quoted string or literal)")
        return value

    def nstring(self, what: str = "string") -> bytes | None:
        tok = self.peek()
        if tok is not None and tok[0] == ATOM and (tok[1] or b"").upper() == b"NIL":
            self.pos += 1
            return None
        return self.string(what)

    def number(self, what: str = "number", *, nz: bool = False, bits: int = 32) -> int:
        raw = self.atom(what)
        if not raw.isdigit() or len(raw) > 20:
            raise ParseError(f"expected {what}")
        value = int(raw)
        if value >= 1 << bits or (nz and value == 0):
            raise ParseError(f"{what} out of range")
        return value

    def _take(self, kind: int) -> bool:
        tok = self.peek()
        if tok is not None and tok[0] == kind:
            self.pos += 1
            return True
        return False

    def open(self, what: str = "(") -> bool:
        """Consume "(" if it is next."""
        return self._take(LPAREN)

    def close(self) -> bool:
        """Consume ")" if it is next."""
        return self._take(RPAREN)

    def expect_close(self) -> None:
        if not self.close():
            raise ParseError("expected )")

    def atom_list(self, what: str) -> list[bytes]:
        """``(a b c)`` or a single atom."""
        if not self.open():
            return [self.atom(what)]
        items = []
        while not self.close():
            items.append(self.atom(what))
        return items


_FLAG = re.compile(rb"^(?:\\[A-Za-z]+|[^\x00-\x20\x7f(){%*\"\\\]]+)$")


#: system flags a client may name in APPEND and STORE (\\Recent is accepted and ignored by the session)
_SETTABLE_SYSTEM_FLAGS = frozenset({"\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\Recent"})


def parse_flag(raw: bytes) -> str:
    """A flag as APPEND, STORE and SEARCH KEYWORD take it; system flags are capitalized.

    Raises:
        ParseError: not a flag, or a reserved system flag.
    """
    if not _FLAG.match(raw):
        raise ParseError(f"invalid flag {raw[:40]!r}")
    text = raw.decode("utf-8", "replace")
    if text.startswith("\\"):
        flag = "\\" + text[1:].capitalize()
        if flag not in _SETTABLE_SYSTEM_FLAGS:  # RFC 3501 2.3.2: other \-flags are reserved for future standards
            raise ParseError(f"invalid system flag {text[:40]}")
        return flag
    return text


def parse_flags(a: Args) -> tuple[str, ...]:
    """``(flag ...)`` or one flag, duplicates removed."""
    if a.open():
        out = []
        while not a.close():
            out.append(parse_flag(a.atom("flag")))
        return tuple(dict.fromkeys(out))
    return (parse_flag(a.atom("flag")),)


_MONTHS = {m: i + 1 for i, m in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])}
_DATE_TIME = re.compile(rb"^ ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$")
_DATE = re.compile(rb'^"?(\d{1,2})-([A-Za-z]{3})-(\d{4})"?$')


def parse_date_time(raw: bytes) -> dt.datetime:
    """``date-time`` (RFC 3501 §9), e.g. ``17-Jul-1996 02:44:25 -0700``."""
    m = _DATE_TIME.match(raw)
    if m is None or m.group(2).upper().decode() not in _MONTHS:
        raise ParseError("invalid date-time")
    day, mon, year, hh, mm, ss, sign, zh, zm = m.groups()
    offset = dt.timedelta(hours=int(zh), minutes=int(zm)) * (1 if sign == b"+" else -1)
    try:
        return dt.datetime(int(year), _MONTHS[mon.upper().decode()], int(day), int(hh), int(mm), int(ss),
                           tzinfo=dt.timezone(offset))
    except ValueError:
        raise ParseError("invalid date-time") from None


def parse_date(raw: bytes) -> dt.date:
    """``date`` (RFC 3501 §9), e.g. ``1-Feb-1994``, optionally quoted."""
    m = _DATE.match(raw)
    if m is None or m.group(2).upper().decode() not in _MONTHS:
        raise ParseError("invalid date")
    try:
        return dt.date(int(m.group(3)), _MONTHS[m.group(2).upper().decode()], int(m.group(1)))
    except ValueError:
        raise ParseError("invalid date") from None
