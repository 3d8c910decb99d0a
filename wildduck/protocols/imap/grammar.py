"""IMAP4rev1 command grammar: :class:`RawCommand` tokens to typed commands (RFC 3501 §9 and the extensions
wildduck advertises). Parse failures raise :class:`ParseError`; :func:`parse` turns them into values."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wildduck.protocols.imap.receiver import ATOM, LITERAL, LPAREN, QUOTED, RPAREN, CommandRejected, RawCommand, Token


class ParseError(Exception):
    """The arguments do not follow the grammar; the message is the BAD text."""


# --- sequence sets -------------------------------------------------------------------------------------------------
#: a range (lo, hi); None stands for "*" (the largest number in use)
Range = tuple[int | None, int | None]


@dataclass(frozen=True, slots=True)
class SequenceSet:
    ranges: tuple[Range, ...]

    def resolve(self, largest: int) -> list[tuple[int, int]]:
        """Concrete ascending (lo, hi) ranges, with "*" = ``largest``; reversed ranges are normalized."""
        out = []
        for lo, hi in self.ranges:
            a = largest if lo is None else lo
            b = largest if hi is None else hi
            if a > b:
                a, b = b, a
            out.append((a, b))
        return sorted(out)

    def contains(self, n: int, largest: int) -> bool:
        return any(a <= n <= b for a, b in self.resolve(largest))

    def numbers(self, largest: int, limit: int = 1_000_000) -> list[int]:
        """Every number in the set up to ``largest`` (at most ``limit``), ascending and unique."""
        seen: set[int] = set()
        for a, b in self.resolve(largest):
            seen.update(range(a, min(b, largest) + 1) if a <= largest else ())
            if len(seen) > limit:
                raise ParseError("sequence set too large")
        return sorted(seen)


_SEQ_NUM = re.compile(rb"^(?:[1-9][0-9]{0,9}|\*)$")


def parse_sequence_set(text: bytes) -> SequenceSet:
    ranges: list[Range] = []
    for part in text.split(b","):
        lo, sep, hi = part.partition(b":")
        if not _SEQ_NUM.match(lo) or (sep and not _SEQ_NUM.match(hi)):
            raise ParseError(f"invalid sequence set {text[:64]!r}")
        a = None if lo == b"*" else int(lo)
        b = (None if hi == b"*" else int(hi)) if sep else a
        if (a is not None and a > 0xFFFFFFFF) or (b is not None and b > 0xFFFFFFFF):
            raise ParseError("sequence number out of range")
        ranges.append((a, b))
    return SequenceSet(tuple(ranges))


# --- commands --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Command:
    tag: str
    name: str


@dataclass(frozen=True, slots=True)
class Simple(Command):
    """CAPABILITY, NOOP, LOGOUT, STARTTLS, CHECK, CLOSE, UNSELECT, EXPUNGE, IDLE, NAMESPACE."""


@dataclass(frozen=True, slots=True)
class Login(Command):
    username: bytes
    password: bytes


@dataclass(frozen=True, slots=True)
class Authenticate(Command):
    mechanism: str
    initial: bytes | None  # SASL-IR, still base64 ("=" for an empty response)


@dataclass(frozen=True, slots=True)
class Select(Command):
    """SELECT and EXAMINE."""

    mailbox: bytes
    readonly: bool
    condstore: bool


@dataclass(frozen=True, slots=True)
class MailboxCommand(Command):
    """CREATE, DELETE, SUBSCRIBE, UNSUBSCRIBE, GETQUOTAROOT."""

    mailbox: bytes


@dataclass(frozen=True, slots=True)
class Rename(Command):
    old: bytes
    new: bytes


@dataclass(frozen=True, slots=True)
class ListCommand(Command):
    """LIST (with LIST-EXTENDED selection/return options) and LSUB."""

    reference: bytes
    patterns: tuple[bytes, ...]
    select_options: tuple[str, ...] = ()
    return_options: tuple[str, ...] = ()
    status_items: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Status(Command):
    mailbox: bytes
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Append(Command):
    mailbox: bytes
    flags: tuple[str, ...]
    date: dt.datetime | None
    message: bytes


@dataclass(frozen=True, slots=True)
class FetchItem:
    """One FETCH attribute: ``name`` is FLAGS, INTERNALDATE, RFC822.SIZE, ENVELOPE, BODY, BODYSTRUCTURE, UID,
    MODSEQ, RFC822, RFC822.HEADER, RFC822.TEXT, or BODY[...] (then ``section``, ``peek`` and ``partial`` apply)."""

    name: str
    section: str | None = None  # e.g. "", "1.2", "HEADER", "1.HEADER.FIELDS", "TEXT", "2.MIME"
    fields: tuple[str, ...] = ()  # for HEADER.FIELDS (.NOT)
    peek: bool = False
    partial: tuple[int, int] | None = None  # (start, length)
    #: the name as it must be echoed in the response (e.g. "BODY[HEADER.FIELDS (FROM)]<0>")
    label: str = ""


@dataclass(frozen=True, slots=True)
class Fetch(Command):
    uid: bool
    sequence: SequenceSet
    items: tuple[FetchItem, ...]
    changedsince: int | None = None


@dataclass(frozen=True, slots=True)
class Store(Command):
    uid: bool
    sequence: SequenceSet
    mode: str  # "+", "-" or ""
    silent: bool
    flags: tuple[str, ...]
    unchangedsince: int | None = None


@dataclass(frozen=True, slots=True)
class CopyMove(Command):
    """COPY and MOVE (UID or not)."""

    uid: bool
    sequence: SequenceSet
    mailbox: bytes


@dataclass(frozen=True, slots=True)
class UidExpunge(Command):
    sequence: SequenceSet


@dataclass(frozen=True, slots=True)
class SearchKey:
    """A search criterion: ``op`` names it (ALL, SEEN, FROM, OR, NOT, AND, SEQ, UID, ...); ``args`` its values."""

    op: str
    args: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Search(Command):
    uid: bool
    charset: str | None
    criteria: SearchKey  # an AND of the top-level keys
    return_options: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Id(Command):
    params: tuple[tuple[str, str | None], ...] | None


@dataclass(frozen=True, slots=True)
class Enable(Command):
    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class QuotaCommand(Command):
    """GETQUOTA root, SETQUOTA root (resource limit ...)."""

    root: bytes
    limits: tuple[tuple[str, int], ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Compress(Command):
    mechanism: str


# --- the argument reader ---------------------------------------------------------------------------------------------
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

    def open(self, what: str = "(") -> bool:
        """Consume "(" if it is next."""
        tok = self.peek()
        if tok is not None and tok[0] == LPAREN:
            self.pos += 1
            return True
        return False

    def close(self) -> bool:
        tok = self.peek()
        if tok is not None and tok[0] == RPAREN:
            self.pos += 1
            return True
        return False

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


def _flag(raw: bytes) -> str:
    if not _FLAG.match(raw):
        raise ParseError(f"invalid flag {raw[:40]!r}")
    text = raw.decode("utf-8", "replace")
    if text.startswith("\\"):
        flag = "\\" + text[1:].capitalize()
        if flag not in _SETTABLE_SYSTEM_FLAGS:  # RFC 3501 2.3.2: other \-flags are reserved for future standards
            raise ParseError(f"invalid system flag {text[:40]}")
        return flag
    return text


def _flags(a: Args) -> tuple[str, ...]:
    if a.open():
        out = []
        while not a.close():
            out.append(_flag(a.atom("flag")))
        return tuple(dict.fromkeys(out))
    return (_flag(a.atom("flag")),)


_MONTHS = {m: i + 1 for i, m in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])}
_DATE_TIME = re.compile(rb"^ ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$")
_DATE = re.compile(rb'^"?(\d{1,2})-([A-Za-z]{3})-(\d{4})"?$')


def parse_date_time(raw: bytes) -> dt.datetime:
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
    m = _DATE.match(raw)
    if m is None or m.group(2).upper().decode() not in _MONTHS:
        raise ParseError("invalid date")
    try:
        return dt.date(int(m.group(3)), _MONTHS[m.group(2).upper().decode()], int(m.group(1)))
    except ValueError:
        raise ParseError("invalid date") from None


# --- per-command parsers ---------------------------------------------------------------------------------------------
def _simple(tag: str, name: str, a: Args) -> Command:
    a.end()
    return Simple(tag, name)


def _login(tag: str, name: str, a: Args) -> Command:
    user, password = a.astring("user name"), a.astring("password")
    a.end()
    return Login(tag, name, user, password)


def _authenticate(tag: str, name: str, a: Args) -> Command:
    mech = a.atom("mechanism").decode("ascii", "replace").upper()
    initial = a.atom("initial response") if not a.at_end() else None
    a.end()
    return Authenticate(tag, name, mech, initial)


def _select(tag: str, name: str, a: Args) -> Command:
    mailbox = a.astring("mailbox")
    condstore = False
    if a.open():
        while not a.close():
            param = a.atom("select parameter").upper()
            if param != b"CONDSTORE":
                raise ParseError(f"unknown select parameter {param.decode(errors='replace')}")
            condstore = True
    a.end()
    return Select(tag, name, mailbox, name == "EXAMINE", condstore)


def _mailbox(tag: str, name: str, a: Args) -> Command:
    mailbox = a.astring("mailbox")
    a.end()
    return MailboxCommand(tag, name, mailbox)


def _rename(tag: str, name: str, a: Args) -> Command:
    old, new = a.astring("mailbox"), a.astring("new mailbox name")
    a.end()
    return Rename(tag, name, old, new)


def _list_mailbox(a: Args) -> bytes:
    kind, value = a._next("mailbox pattern")
    if kind not in (ATOM, QUOTED, LITERAL) or value is None:
        raise ParseError("expected mailbox pattern")
    return value


def _list(tag: str, name: str, a: Args) -> Command:
    select: list[str] = []
    if name == "LIST" and a.open():
        while not a.close():
            select.append(a.atom("selection option").decode("ascii", "replace").upper())
    reference = a.astring("reference")
    patterns: list[bytes] = []
    if name == "LIST" and a.open():
        while not a.close():
            patterns.append(_list_mailbox(a))
        if not patterns:
            raise ParseError("empty pattern list")
    else:
        patterns.append(_list_mailbox(a))
    returns: list[str] = []
    status: list[str] = []
    if name == "LIST" and not a.at_end():
        if a.atom("RETURN").upper() != b"RETURN" or not a.open():
            raise ParseError("expected RETURN (...)")
        while not a.close():
            opt = a.atom("return option").decode("ascii", "replace").upper()
            returns.append(opt)
            if opt == "STATUS":
                if not a.open():
                    raise ParseError("expected STATUS (...)")
                while not a.close():
                    status.append(a.atom("status item").decode("ascii", "replace").upper())
    a.end()
    return ListCommand(tag, name, reference, tuple(patterns), tuple(select), tuple(returns), tuple(status))


_STATUS_ITEMS = {"MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ", "SIZE", "APPENDLIMIT"}


def _status(tag: str, name: str, a: Args) -> Command:
    mailbox = a.astring("mailbox")
    if not a.open():
        raise ParseError("expected status item list")
    items = []
    while not a.close():
        item = a.atom("status item").decode("ascii", "replace").upper()
        if item not in _STATUS_ITEMS:
            raise ParseError(f"unknown status item {item}")
        items.append(item)
    if not items:
        raise ParseError("empty status item list")
    a.end()
    return Status(tag, name, mailbox, tuple(items))


def _append(tag: str, name: str, a: Args) -> Command:
    mailbox = a.astring("mailbox")
    flags: tuple[str, ...] = ()
    date = None
    tok = a.peek()
    if tok is not None and tok[0] == LPAREN:
        flags = _flags(a)
        tok = a.peek()
    if tok is not None and tok[0] == QUOTED:
        date = parse_date_time(a.string("date-time"))
    message = a.string("message literal")
    if not a.at_end():
        raise ParseError("MULTIAPPEND is not supported")
    return Append(tag, name, mailbox, flags, date, message)


_MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
_SIMPLE_ATTS = {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY", "BODYSTRUCTURE", "UID", "MODSEQ",
                "RFC822", "RFC822.HEADER", "RFC822.TEXT"}
_SECTION = re.compile(
    r"^((?:[1-9][0-9]*\.)*[1-9][0-9]*)?\.?(HEADER|HEADER\.FIELDS|HEADER\.FIELDS\.NOT|TEXT|MIME)?"
    r"(?: \(([^()]*)\))?$", re.IGNORECASE)
_BODY_ATT = re.compile(
    rb"^(BODY|BODY\.PEEK|BINARY|BINARY\.PEEK|BINARY\.SIZE)\[([^\]]*)\](?:<(\d{1,10})(?:\.(\d{1,10}))?>)?$",
    re.IGNORECASE)


def parse_fetch_item(raw: bytes) -> FetchItem:
    upper = raw.upper().decode("ascii", "replace")
    if upper in _SIMPLE_ATTS:
        return FetchItem(upper, label=upper)
    m = _BODY_ATT.match(raw)
    if m is None:
        raise ParseError(f"unknown fetch attribute {upper[:60]}")
    kind, section_raw, start, length = m.groups()
    kind_s = kind.upper().decode()
    section = section_raw.decode("ascii", "replace")
    sm = _SECTION.match(section)
    if sm is None or (sm.group(1) is None and sm.group(2) is None and section):
        raise ParseError(f"invalid section [{section[:60]}]")
    part, text, field_list = sm.group(1), (sm.group(2) or "").upper(), sm.group(3)
    if text == "MIME" and not part:
        raise ParseError("MIME needs a part number")
    if (field_list is not None) != text.startswith("HEADER.FIELDS"):
        raise ParseError("HEADER.FIELDS needs a field list")
    if kind_s.startswith("BINARY") and text:
        raise ParseError("BINARY takes a part number only")
    fields: tuple[str, ...] = ()
    if field_list is not None:
        fields = tuple(f.upper() for f in field_list.replace('"', "").split())
        if not fields:
            raise ParseError("empty header field list")
    partial = None
    if start is not None:
        if kind_s == "BINARY.SIZE":
            raise ParseError("BINARY.SIZE takes no partial")
        partial = (int(start), int(length) if length is not None else 1 << 62)
    norm_section = ".".join(x for x in (part or "", text) if x)
    if fields:
        norm_section += " (" + " ".join(fields) + ")"
    base = kind_s.replace(".PEEK", "")
    label = f"{base}[{norm_section}]" + (f"<{partial[0]}>" if partial else "")
    return FetchItem(base, norm_section, fields, kind_s.endswith(".PEEK"), partial, label)


def _fetch_like(a: Args) -> tuple[SequenceSet, tuple[FetchItem, ...]]:
    seq = parse_sequence_set(a.atom("sequence set"))
    items: list[FetchItem] = []
    if a.open():
        while not a.close():
            items.append(parse_fetch_item(a.atom("fetch attribute")))
        if not items:
            raise ParseError("empty fetch attribute list")
    else:
        raw = a.atom("fetch attribute")
        macro = _MACROS.get(raw.upper().decode("ascii", "replace"))
        items = [FetchItem(x, label=x) for x in macro] if macro else [parse_fetch_item(raw)]
    return seq, tuple(items)


def _fetch(tag: str, name: str, a: Args, uid: bool = False) -> Command:
    seq, items = _fetch_like(a)
    changedsince = None
    if a.open():
        while not a.close():
            mod = a.atom("fetch modifier").upper()
            if mod == b"CHANGEDSINCE":
                changedsince = a.number("mod-sequence", bits=63)
            elif mod == b"VANISHED":
                raise ParseError("VANISHED needs QRESYNC, which is not enabled")
            else:
                raise ParseError(f"unknown fetch modifier {mod.decode(errors='replace')}")
    a.end()
    return Fetch(tag, name, uid, seq, items, changedsince)


_STORE_ITEM = re.compile(rb"^([+-]?)FLAGS(\.SILENT)?$", re.IGNORECASE)


def _store(tag: str, name: str, a: Args, uid: bool = False) -> Command:
    seq = parse_sequence_set(a.atom("sequence set"))
    unchangedsince = None
    if a.open():
        while not a.close():
            mod = a.atom("store modifier").upper()
            if mod != b"UNCHANGEDSINCE":
                raise ParseError(f"unknown store modifier {mod.decode(errors='replace')}")
            unchangedsince = a.number("mod-sequence", bits=63)
    m = _STORE_ITEM.match(a.atom("store item"))
    if m is None:
        raise ParseError("expected FLAGS, +FLAGS or -FLAGS")
    tok = a.peek()
    if tok is not None and tok[0] == LPAREN:
        flags = _flags(a)
    else:
        values = []
        while not a.at_end():
            values.append(_flag(a.atom("flag")))
        flags = tuple(dict.fromkeys(values))
    a.end()
    return Store(tag, name, uid, seq, m.group(1).decode(), bool(m.group(2)), flags, unchangedsince)


def _copy(tag: str, name: str, a: Args, uid: bool = False) -> Command:
    seq = parse_sequence_set(a.atom("sequence set"))
    mailbox = a.astring("mailbox")
    a.end()
    return CopyMove(tag, name, uid, seq, mailbox)


_SEARCH_NOARG = {"ALL", "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "NEW", "OLD", "RECENT", "SEEN", "UNANSWERED",
                 "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN"}
_SEARCH_STRING = {"BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO"}
_SEARCH_DATE = {"BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"}
_SEARCH_NUMBER = {"LARGER", "SMALLER", "OLDER", "YOUNGER"}
_MAX_SEARCH_DEPTH = 64


def _search_key(a: Args, depth: int = 0) -> SearchKey:
    if depth > _MAX_SEARCH_DEPTH:
        raise ParseError("search criteria nested too deeply")
    if a.open():
        keys = []
        while not a.close():
            keys.append(_search_key(a, depth + 1))
        if not keys:
            raise ParseError("empty search list")
        return SearchKey("AND", tuple(keys))
    raw = a.atom("search key")
    op = raw.upper().decode("ascii", "replace")
    if op in _SEARCH_NOARG:
        return SearchKey(op)
    if op in _SEARCH_STRING:
        return SearchKey(op, (a.astring("search string"),))
    if op in _SEARCH_DATE:
        return SearchKey(op, (parse_date(a.astring("date")),))
    if op in _SEARCH_NUMBER:
        return SearchKey(op, (a.number("number", nz=op in ("OLDER", "YOUNGER")),))
    if op in ("KEYWORD", "UNKEYWORD"):
        return SearchKey(op, (_flag(a.atom("keyword")),))
    if op == "HEADER":
        return SearchKey(op, (a.astring("header name").decode("utf-8", "replace"), a.astring("header value")))
    if op == "UID":
        return SearchKey(op, (parse_sequence_set(a.atom("sequence set")),))
    if op == "NOT":
        return SearchKey(op, (_search_key(a, depth + 1),))
    if op == "OR":
        return SearchKey(op, (_search_key(a, depth + 1), _search_key(a, depth + 1)))
    if op == "MODSEQ":
        tok = a.peek()
        if tok is not None and tok[0] in (QUOTED, LITERAL):  # entry name and type (ignored: one flags space)
            a.string("entry name")
            a.atom("entry type")
        return SearchKey(op, (a.number("mod-sequence", bits=63),))
    if raw[:1].isdigit() or raw[:1] == b"*":
        return SearchKey("SEQ", (parse_sequence_set(raw),))
    raise ParseError(f"unknown search key {op[:40]}")


def _search(tag: str, name: str, a: Args, uid: bool = False) -> Command:
    returns: list[str] = []
    tok = a.peek()
    if tok is not None and tok[0] == ATOM and (tok[1] or b"").upper() == b"RETURN":
        a.pos += 1
        if not a.open():
            raise ParseError("expected RETURN (...)")
        while not a.close():
            returns.append(a.atom("return option").decode("ascii", "replace").upper())
    charset = None
    tok = a.peek()
    if tok is not None and tok[0] == ATOM and (tok[1] or b"").upper() == b"CHARSET":
        a.pos += 1
        charset = a.astring("charset").decode("ascii", "replace").upper()
    keys = []
    while not a.at_end():
        keys.append(_search_key(a))
    if not keys:
        raise ParseError("missing search criteria")
    return Search(tag, name, uid, charset, SearchKey("AND", tuple(keys)), tuple(returns))


def _uid(tag: str, name: str, a: Args) -> Command:
    sub = a.atom("UID command").upper().decode("ascii", "replace")
    handler = _UID_COMMANDS.get(sub)
    if handler is None:
        raise ParseError(f"unknown UID command {sub[:20]}")
    if sub == "EXPUNGE":
        seq = parse_sequence_set(a.atom("sequence set"))
        a.end()
        return UidExpunge(tag, "UID EXPUNGE", seq)
    return handler(tag, f"UID {sub}", a, True)


def _id(tag: str, name: str, a: Args) -> Command:
    if not a.open():
        if a.atom("NIL").upper() != b"NIL":
            raise ParseError("expected NIL or a parameter list")
        a.end()
        return Id(tag, name, None)
    params = []
    while not a.close():
        key = a.string("field name").decode("utf-8", "replace")
        value = a.nstring("field value")
        params.append((key, value.decode("utf-8", "replace") if value is not None else None))
        if len(params) > 30:
            raise ParseError("too many ID parameters")
    a.end()
    return Id(tag, name, tuple(params))


def _enable(tag: str, name: str, a: Args) -> Command:
    caps = []
    while not a.at_end():
        caps.append(a.atom("capability").decode("ascii", "replace").upper())
    if not caps:
        raise ParseError("ENABLE needs at least one capability")
    return Enable(tag, name, tuple(caps))


def _getquota(tag: str, name: str, a: Args) -> Command:
    root = a.astring("quota root")
    limits: list[tuple[str, int]] = []
    if name == "SETQUOTA":
        if not a.open():
            raise ParseError("expected (resource limit ...)")
        while not a.close():
            limits.append((a.atom("resource").decode("ascii", "replace").upper(), a.number("limit", bits=63)))
    a.end()
    return QuotaCommand(tag, name, root, tuple(limits))


def _compress(tag: str, name: str, a: Args) -> Command:
    mech = a.atom("mechanism").decode("ascii", "replace").upper()
    a.end()
    return Compress(tag, name, mech)


_Parser = Callable[[str, str, Args], Command]

COMMANDS: dict[str, _Parser] = {
    **{n: _simple for n in ("CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "CHECK", "CLOSE", "UNSELECT", "EXPUNGE",
                            "IDLE", "NAMESPACE")},
    "LOGIN": _login,
    "AUTHENTICATE": _authenticate,
    "SELECT": _select,
    "EXAMINE": _select,
    "CREATE": _mailbox,
    "DELETE": _mailbox,
    "SUBSCRIBE": _mailbox,
    "UNSUBSCRIBE": _mailbox,
    "GETQUOTAROOT": _mailbox,
    "RENAME": _rename,
    "LIST": _list,
    "LSUB": _list,
    "STATUS": _status,
    "APPEND": _append,
    "FETCH": _fetch,
    "STORE": _store,
    "COPY": _copy,
    "MOVE": _copy,
    "SEARCH": _search,
    "UID": _uid,
    "ID": _id,
    "ENABLE": _enable,
    "GETQUOTA": _getquota,
    "SETQUOTA": _getquota,
    "COMPRESS": _compress,
}
_UID_COMMANDS: dict[str, Callable[..., Command]] = {
    "FETCH": _fetch, "STORE": _store, "COPY": _copy, "MOVE": _copy, "SEARCH": _search, "EXPUNGE": _simple,
}

# which command is valid in which state (RFC 3501 §6 plus extensions)
NOT_AUTHENTICATED, AUTHENTICATED, SELECTED, LOGOUT = "not authenticated", "authenticated", "selected", "logout"
_ANY = frozenset({NOT_AUTHENTICATED, AUTHENTICATED, SELECTED})
_AUTH = frozenset({AUTHENTICATED, SELECTED})
_SEL = frozenset({SELECTED})
ALLOWED_STATES: dict[str, frozenset[str]] = {
    "CAPABILITY": _ANY, "NOOP": _ANY, "LOGOUT": _ANY, "ID": _ANY, "COMPRESS": _AUTH,
    "STARTTLS": frozenset({NOT_AUTHENTICATED}), "LOGIN": frozenset({NOT_AUTHENTICATED}),
    "AUTHENTICATE": frozenset({NOT_AUTHENTICATED}),
    **{n: _AUTH for n in ("SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE", "LIST",
                          "LSUB", "STATUS", "APPEND", "IDLE", "NAMESPACE", "ENABLE", "GETQUOTA", "GETQUOTAROOT",
                          "SETQUOTA")},
    **{n: _SEL for n in ("CHECK", "CLOSE", "UNSELECT", "EXPUNGE", "SEARCH", "FETCH", "STORE", "COPY", "MOVE",
                         "UID")},
}


def parse(raw: RawCommand) -> Command | CommandRejected:
    """The typed command, or a rejection whose text says what is wrong."""
    handler = COMMANDS.get(raw.name)
    if handler is None:
        return CommandRejected(raw.tag, f"unknown command {raw.name[:40]}")
    try:
        return handler(raw.tag, raw.name, Args(raw.args))
    except ParseError as exc:
        return CommandRejected(raw.tag, f"{raw.name}: {exc}")
