"""IMAP commands: the typed values, one parser per command, and :func:`parse` that dispatches on the name."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from wildduck.protocols.imap.grammar.args import Args, ParseError, parse_date_time, parse_flag, parse_flags
from wildduck.protocols.imap.grammar.fetch_items import FetchItem, parse_fetch_items
from wildduck.protocols.imap.grammar.search_keys import SearchKey, parse_search_key
from wildduck.protocols.imap.grammar.sequence import SequenceSet, parse_sequence_set
from wildduck.protocols.imap.receiver import ATOM, LITERAL, LITERAL8, LPAREN, QUOTED, CommandRejected, RawCommand


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
class Qresync:
    """The QRESYNC parameter of SELECT/EXAMINE (RFC 7162 3.2.5): what the client knew of the mailbox."""

    uid_validity: int
    modseq: int
    #: the UIDs the client knows (None: all of them, ``1:*``)
    known_uids: SequenceSet | None = None
    #: the message sequence match data: sequence numbers and the UIDs they had, as many of each
    match: tuple[SequenceSet, SequenceSet] | None = None


@dataclass(frozen=True, slots=True)
class Select(Command):
    """SELECT and EXAMINE."""

    mailbox: bytes
    readonly: bool
    condstore: bool
    qresync: Qresync | None = None


@dataclass(frozen=True, slots=True)
class MailboxCommand(Command):
    """CREATE, DELETE, SUBSCRIBE, UNSUBSCRIBE, GETQUOTAROOT."""

    mailbox: bytes


@dataclass(frozen=True, slots=True)
class Create(Command):
    """CREATE, with the special uses of CREATE-SPECIAL-USE (RFC 6154 3: ``(USE (\\Archive))``)."""

    mailbox: bytes
    uses: tuple[str, ...] = ()


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
    #: written in the extended syntax (RFC 5258: selection options, a pattern list or RETURN): only the
    #: attributes the return options ask for are sent
    extended: bool = False


@dataclass(frozen=True, slots=True)
class Status(Command):
    mailbox: bytes
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AppendMessage:
    """One message of an APPEND: its flags, its internal date (None: now) and its bytes."""

    flags: tuple[str, ...]
    date: dt.datetime | None
    message: bytes
    #: sent as a literal8 (``~{n}``, RFC 3516 4.4): it may hold NUL bytes
    binary: bool = False


@dataclass(frozen=True, slots=True)
class Append(Command):
    """APPEND of one message, or of several (MULTIAPPEND, RFC 3502: all of them or none)."""

    mailbox: bytes
    messages: tuple[AppendMessage, ...]


@dataclass(frozen=True, slots=True)
class Fetch(Command):
    uid: bool
    sequence: SequenceSet
    items: tuple[FetchItem, ...]
    changedsince: int | None = None
    #: the VANISHED modifier (RFC 7162 3.2.6, UID FETCH with CHANGEDSINCE only)
    vanished: bool = False


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
class Search(Command):
    uid: bool
    charset: str | None
    criteria: SearchKey  # an AND of the top-level keys
    #: RFC 4731 / RFC 5182 result options (MIN MAX ALL COUNT SAVE, each once, in the client's order; ``RETURN ()``
    #: is ALL); empty: a plain SEARCH, answered with ``* SEARCH``
    return_options: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SortCriterion:
    """One sort key of SORT (RFC 5256, RFC 5957 DISPLAYFROM / DISPLAYTO), reversed or not."""

    key: str
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class Sort(Search):
    """SORT and UID SORT (RFC 5256): a search (its ``charset`` always given, RFC 5256 4) and the order of its
    answer, ``keys``; the result options are ESORT's (RFC 5267 4, RFC 5182 SAVE)."""

    keys: tuple[SortCriterion, ...] = ()


#: the threading algorithms of THREAD (RFC 5256 3)
THREAD_ALGORITHMS = ("ORDEREDSUBJECT", "REFERENCES")


@dataclass(frozen=True, slots=True)
class Thread(Search):
    """THREAD and UID THREAD (RFC 5256): a search (its ``charset`` always given) and the ``algorithm`` that
    threads the messages it finds."""

    algorithm: str = "REFERENCES"


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


def parse_simple(tag: str, name: str, a: Args) -> Command:
    a.end()
    return Simple(tag, name)


def parse_login(tag: str, name: str, a: Args) -> Command:
    user, password = a.astring("user name"), a.astring("password")
    a.end()
    return Login(tag, name, user, password)


def parse_authenticate(tag: str, name: str, a: Args) -> Command:
    mech = a.atom("mechanism").decode("ascii", "replace").upper()
    initial = a.atom("initial response") if not a.at_end() else None
    a.end()
    return Authenticate(tag, name, mech, initial)


def _uid_set(a: Args, what: str) -> SequenceSet:
    """A set of UIDs written out (no ``$``, no ``*``: RFC 7162 ``known-uids``)."""
    raw = a.atom(what)
    found = parse_sequence_set(raw)
    if found.last_result or found.star is not None:
        raise ParseError(f"{what} may not use $ or *")
    return found


def _count(numbers: SequenceSet) -> int:
    return sum(hi - lo + 1 for lo, hi in numbers.normalized)


def _parse_qresync(a: Args) -> Qresync:
    """``(uidvalidity modseq [known-uids] [(known-sequence-set known-uid-set)])`` (RFC 7162 3.2.5)."""
    if not a.open():
        raise ParseError("expected QRESYNC (...)")
    uid_validity = a.number("UIDVALIDITY", nz=True)
    modseq = a.number("mod-sequence", bits=63)
    known = None
    tok = a.peek()
    if tok is not None and tok[0] == ATOM:
        known = _uid_set(a, "known UIDs")
    match = None
    if a.open():
        seqs, uids = _uid_set(a, "known sequence set"), _uid_set(a, "known UID set")
        a.expect_close()
        if _count(seqs) != _count(uids):
            raise ParseError("the known sequence set and UID set differ in size")
        match = (seqs, uids)
    a.expect_close()
    return Qresync(uid_validity, modseq, known, match)


def parse_select(tag: str, name: str, a: Args) -> Command:
    """SELECT/EXAMINE with the CONDSTORE and QRESYNC parameters (RFC 7162 3.1.8, 3.2.5)."""
    mailbox = a.astring("mailbox")
    condstore = False
    qresync = None
    if a.open():
        while not a.close():
            param = a.atom("select parameter").upper()
            if param == b"CONDSTORE":
                condstore = True
            elif param == b"QRESYNC" and qresync is None:
                qresync = _parse_qresync(a)
            else:
                raise ParseError(f"unknown select parameter {param[:40].decode(errors='replace')}")
    a.end()
    return Select(tag, name, mailbox, name == "EXAMINE", condstore, qresync)


def parse_mailbox(tag: str, name: str, a: Args) -> Command:
    mailbox = a.astring("mailbox")
    a.end()
    return MailboxCommand(tag, name, mailbox)


def parse_rename(tag: str, name: str, a: Args) -> Command:
    old, new = a.astring("mailbox"), a.astring("new mailbox name")
    a.end()
    return Rename(tag, name, old, new)


def _list_mailbox(a: Args) -> bytes:
    kind, value = a._next("mailbox pattern")
    if kind not in (ATOM, QUOTED, LITERAL) or value is None:
        raise ParseError("expected mailbox pattern")
    return value


#: LIST-EXTENDED selection options (RFC 5258 3.1, RFC 6154 5.2) and return options (RFC 5258 3.2, RFC 5819,
#: RFC 6154 5.1)
LIST_SELECT_OPTIONS = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
LIST_RETURN_OPTIONS = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"})


def _options(a: Args, what: str, known: frozenset[str]) -> list[str]:
    found: list[str] = []
    while not a.close():
        opt = a.atom(what).decode("ascii", "replace").upper()
        if opt not in known:
            raise ParseError(f"unknown {what} {opt[:40]}")
        found.append(opt)
    return found


def parse_list(tag: str, name: str, a: Args) -> Command:
    """LIST, with LIST-EXTENDED's selection options, pattern list and return options (RFC 5258), and LSUB."""
    select: list[str] = []
    extended = False
    if name == "LIST" and a.open():
        extended = True
        select = _options(a, "selection option", LIST_SELECT_OPTIONS)
        if "RECURSIVEMATCH" in select and not {"SUBSCRIBED", "SPECIAL-USE"} & set(select):
            raise ParseError("RECURSIVEMATCH needs another selection option (RFC 5258 3.1)")
    reference = a.astring("reference")
    patterns: list[bytes] = []
    if name == "LIST" and a.open():
        extended = True
        while not a.close():
            patterns.append(_list_mailbox(a))
        if not patterns:
            raise ParseError("empty pattern list")
    else:
        patterns.append(_list_mailbox(a))
    returns: list[str] = []
    status: tuple[str, ...] = ()
    if name == "LIST" and not a.at_end():
        extended = True
        if a.atom("RETURN").upper() != b"RETURN" or not a.open():
            raise ParseError("expected RETURN (...)")
        while not a.close():
            opt = a.atom("return option").decode("ascii", "replace").upper()
            if opt not in LIST_RETURN_OPTIONS:
                raise ParseError(f"unknown return option {opt[:40]}")
            returns.append(opt)
            if opt == "STATUS":
                status = _status_items(a)
    a.end()
    return ListCommand(tag, name, reference, tuple(patterns), tuple(select), tuple(returns), status, extended)


_USE_ATTR = re.compile(rb"^\\[A-Za-z0-9_.-]+$")


def parse_create(tag: str, name: str, a: Args) -> Command:
    """``CREATE mailbox [(USE (attr ...))]`` (RFC 4466 create parameters; USE is RFC 6154's, the only one)."""
    mailbox = a.astring("mailbox")
    uses: list[str] = []
    if a.open():
        while not a.close():
            param = a.atom("create parameter").upper()
            if param != b"USE":
                raise ParseError(f"unknown create parameter {param[:40].decode('ascii', 'replace')}")
            if not a.open():
                raise ParseError("expected USE (...)")
            while not a.close():
                use = a.atom("special-use attribute")
                if not _USE_ATTR.match(use):
                    raise ParseError(f"invalid special-use attribute {use[:40].decode('ascii', 'replace')}")
                uses.append(use.decode("ascii"))
    a.end()
    return Create(tag, name, mailbox, tuple(dict.fromkeys(uses)))


_STATUS_ITEMS = {"MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ", "SIZE", "APPENDLIMIT",
                 "DELETED", "MAILBOXID"}


def _status_items(a: Args) -> tuple[str, ...]:
    """``(item ...)`` of STATUS and of LIST's RETURN (STATUS (...)) (RFC 5819)."""
    if not a.open():
        raise ParseError("expected status item list")
    items = []
    while not a.close():
        item = a.atom("status item").decode("ascii", "replace").upper()
        if item not in _STATUS_ITEMS:
            raise ParseError(f"unknown status item {item[:40]}")
        items.append(item)
    if not items:
        raise ParseError("empty status item list")
    return tuple(items)


def parse_status(tag: str, name: str, a: Args) -> Command:
    mailbox = a.astring("mailbox")
    items = _status_items(a)
    a.end()
    return Status(tag, name, mailbox, items)


def parse_append(tag: str, name: str, a: Args) -> Command:
    """``APPEND mailbox [flags] [date-time] literal`` and, for MULTIAPPEND (RFC 3502), more ``[flags] [date-time]
    literal`` after it."""
    mailbox = a.astring("mailbox")
    messages: list[AppendMessage] = []
    while True:
        flags: tuple[str, ...] = ()
        date = None
        tok = a.peek()
        if tok is not None and tok[0] == LPAREN:
            flags = parse_flags(a)
            tok = a.peek()
        if tok is not None and tok[0] == QUOTED:
            date = parse_date_time(a.string("date-time"))
            tok = a.peek()
        if tok is None or tok[0] not in (LITERAL, LITERAL8) or tok[1] is None:
            raise ParseError("expected message literal")
        a.pos += 1
        messages.append(AppendMessage(flags, date, tok[1], binary=tok[0] == LITERAL8))
        if a.at_end():
            return Append(tag, name, mailbox, tuple(messages))


def _fetch_like(a: Args) -> tuple[SequenceSet, tuple[FetchItem, ...]]:
    seq = parse_sequence_set(a.atom("sequence set"))
    return seq, parse_fetch_items(a)


def parse_fetch(tag: str, name: str, a: Args, uid: bool = False) -> Command:
    seq, items = _fetch_like(a)
    changedsince = None
    vanished = False
    if a.open():
        while not a.close():
            mod = a.atom("fetch modifier").upper()
            if mod == b"CHANGEDSINCE":
                changedsince = a.number("mod-sequence", bits=63)
            elif mod == b"VANISHED":
                vanished = True
            else:
                raise ParseError(f"unknown fetch modifier {mod[:40].decode(errors='replace')}")
    a.end()
    if vanished and not uid:  # RFC 7162 3.2.6
        raise ParseError("VANISHED is only allowed with UID FETCH")
    if vanished and changedsince is None:
        raise ParseError("VANISHED needs CHANGEDSINCE")
    return Fetch(tag, name, uid, seq, items, changedsince, vanished)


_STORE_ITEM = re.compile(rb"^([+-]?)FLAGS(\.SILENT)?$", re.IGNORECASE)


def parse_store(tag: str, name: str, a: Args, uid: bool = False) -> Command:
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
        flags = parse_flags(a)
    else:
        values = []
        while not a.at_end():
            values.append(parse_flag(a.atom("flag")))
        flags = tuple(dict.fromkeys(values))
    a.end()
    return Store(tag, name, uid, seq, m.group(1).decode(), bool(m.group(2)), flags, unchangedsince)


def parse_copy(tag: str, name: str, a: Args, uid: bool = False) -> Command:
    seq = parse_sequence_set(a.atom("sequence set"))
    mailbox = a.astring("mailbox")
    a.end()
    return CopyMove(tag, name, uid, seq, mailbox)


#: SEARCH result options: ESEARCH (RFC 4731) and SEARCHRES (RFC 5182)
SEARCH_RETURN_OPTIONS = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE"})


def _return_options(a: Args) -> tuple[str, ...]:
    """``RETURN (option ...)`` of SEARCH (RFC 4731) and SORT (RFC 5267), if there: each option once, in the
    client's order; ``RETURN ()`` is ``RETURN (ALL)``."""
    returns: list[str] = []
    tok = a.peek()
    if tok is not None and tok[0] == ATOM and (tok[1] or b"").upper() == b"RETURN":
        a.pos += 1
        if not a.open():
            raise ParseError("expected RETURN (...)")
        while not a.close():
            option = a.atom("return option").decode("ascii", "replace").upper()
            if option not in SEARCH_RETURN_OPTIONS:
                raise ParseError(f"unknown search return option {option[:40]}")
            if option not in returns:
                returns.append(option)
        if not returns:
            returns.append("ALL")  # RFC 4731 3.1: RETURN () is RETURN (ALL)
    return tuple(returns)


def _criteria(a: Args) -> SearchKey:
    keys = []
    while not a.at_end():
        keys.append(parse_search_key(a))
    if not keys:
        raise ParseError("missing search criteria")
    return SearchKey("AND", tuple(keys))


def parse_search(tag: str, name: str, a: Args, uid: bool = False) -> Command:
    returns = _return_options(a)
    charset = None
    tok = a.peek()
    if tok is not None and tok[0] == ATOM and (tok[1] or b"").upper() == b"CHARSET":
        a.pos += 1
        charset = a.astring("charset").decode("ascii", "replace").upper()
    return Search(tag, name, uid, charset, _criteria(a), returns)


#: SORT keys: RFC 5256 and SORT=DISPLAY (RFC 5957)
SORT_KEYS = frozenset({"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"})


def parse_sort(tag: str, name: str, a: Args, uid: bool = False) -> Command:
    """``SORT [RETURN (options)] (criterion ...) charset search-key ...`` (RFC 5256 4, RFC 5267 4.2); a criterion
    is ``[REVERSE] key``."""
    returns = _return_options(a)
    if not a.open():
        raise ParseError("expected a parenthesized list of sort criteria")
    criteria: list[SortCriterion] = []
    while not a.close():
        word = a.atom("sort key").decode("ascii", "replace").upper()
        reverse = word == "REVERSE"
        if reverse:
            word = a.atom("sort key after REVERSE").decode("ascii", "replace").upper()
        if word not in SORT_KEYS:
            raise ParseError(f"unknown sort key {word[:40]}")
        criteria.append(SortCriterion(word, reverse))
    if not criteria:
        raise ParseError("empty list of sort criteria")
    charset = a.astring("charset").decode("ascii", "replace").upper()
    return Sort(tag, name, uid, charset, _criteria(a), returns, tuple(criteria))


def parse_thread(tag: str, name: str, a: Args, uid: bool = False) -> Command:
    """``THREAD algorithm charset search-key ...`` (RFC 5256 4)."""
    algorithm = a.atom("threading algorithm").decode("ascii", "replace").upper()
    if algorithm not in THREAD_ALGORITHMS:
        raise ParseError(f"unknown threading algorithm {algorithm[:40]} (REFERENCES or ORDEREDSUBJECT)")
    charset = a.astring("charset").decode("ascii", "replace").upper()
    return Thread(tag, name, uid, charset, _criteria(a), algorithm=algorithm)


def parse_uid(tag: str, name: str, a: Args) -> Command:
    sub = a.atom("UID command").upper().decode("ascii", "replace")
    handler = _UID_COMMANDS.get(sub)
    if handler is None:
        raise ParseError(f"unknown UID command {sub[:20]}")
    if sub == "EXPUNGE":
        seq = parse_sequence_set(a.atom("sequence set"))
        a.end()
        return UidExpunge(tag, "UID EXPUNGE", seq)
    return handler(tag, f"UID {sub}", a, True)


def parse_id(tag: str, name: str, a: Args) -> Command:
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


def parse_enable(tag: str, name: str, a: Args) -> Command:
    caps = []
    while not a.at_end():
        caps.append(a.atom("capability").decode("ascii", "replace").upper())
    if not caps:
        raise ParseError("ENABLE needs at least one capability")
    return Enable(tag, name, tuple(caps))


def parse_getquota(tag: str, name: str, a: Args) -> Command:
    root = a.astring("quota root")
    limits: list[tuple[str, int]] = []
    if name == "SETQUOTA":
        if not a.open():
            raise ParseError("expected (resource limit ...)")
        while not a.close():
            limits.append((a.atom("resource").decode("ascii", "replace").upper(), a.number("limit", bits=63)))
    a.end()
    return QuotaCommand(tag, name, root, tuple(limits))


def parse_compress(tag: str, name: str, a: Args) -> Command:
    mech = a.atom("mechanism").decode("ascii", "replace").upper()
    a.end()
    return Compress(tag, name, mech)


Parser = Callable[[str, str, Args], Command]

_UID_COMMANDS: dict[str, Callable[..., Command]] = {
    "FETCH": parse_fetch, "STORE": parse_store, "COPY": parse_copy, "MOVE": parse_copy, "SEARCH": parse_search,
    "SORT": parse_sort, "THREAD": parse_thread, "EXPUNGE": parse_simple,
}

# the states of an IMAP session (RFC 3501 3); which command is allowed in which is the session's command registry
NOT_AUTHENTICATED, AUTHENTICATED, SELECTED, LOGOUT = "not authenticated", "authenticated", "selected", "logout"


def parse(raw: RawCommand, parser: Parser) -> Command | CommandRejected:
    """The typed command ``parser`` makes of ``raw``, or a rejection whose text says what is wrong (a parse
    failure is a value). The session's command registry says which parser a command name has."""
    try:
        return parser(raw.tag, raw.name, Args(raw.args))
    except ParseError as exc:
        return CommandRejected(raw.tag, f"{raw.name}: {exc}")
