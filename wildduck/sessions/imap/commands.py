"""IMAP commands of the any, not-authenticated and authenticated states (RFC 3501 6.1-6.3 and extensions)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass

from wildduck.domain.mailboxes import Hierarchy, HierarchyEntry, parents
from wildduck.errors import AuthFailed, NotFound, RateLimited, TooManyConnections
from wildduck.model import Mailbox
from wildduck.protocols import mime
from wildduck.protocols._base import sasl_plain
from wildduck.protocols.imap import grammar as g
from wildduck.protocols.imap import serializer
from wildduck.protocols.imap.receiver import NEED_DATA, Mode, SaslResponse
from wildduck.protocols.mime import transfer
from wildduck.sessions._login import log_in
from wildduck.sessions._runner import SessionEnded
from wildduck.sessions.imap import qresync, uidonly
from wildduck.sessions.imap.session import SEPARATOR, IMAPSession

log = logging.getLogger(__name__)


# -- any state -----------------------------------------------------------------------------------------------------
async def capability(s: IMAPSession, cmd: g.Command) -> None:
    s.send(serializer.untagged(f"CAPABILITY {s.capabilities()}"))
    s.ok(cmd.tag, "CAPABILITY completed")


async def noop(s: IMAPSession, cmd: g.Command) -> None:
    await s.sync(force=True)
    s.ok(cmd.tag, f"{cmd.name} completed")


async def logout(s: IMAPSession, cmd: g.Command) -> None:
    s.send(serializer.untagged("BYE logging out"))
    s.ok(cmd.tag, "LOGOUT completed")
    raise SessionEnded


async def id_(s: IMAPSession, cmd: g.Command) -> None:
    s.send(serializer.untagged('ID ("name" "wildduck" "vendor" "wildduck")'))
    s.ok(cmd.tag, "ID completed")


async def starttls(s: IMAPSession, cmd: g.Command) -> None:
    if s.tls_context is None or s.conn.tls_active:
        s.bad(cmd.tag, "STARTTLS is not available")
        return
    s.ok(cmd.tag, "Begin TLS negotiation now")
    await s.flush()
    s.rx.discard_buffer()  # anything pipelined behind STARTTLS was sent in the clear: never execute it
    if not await s.conn.start_tls(s.tls_context):
        raise SessionEnded


# -- not authenticated -----------------------------------------------------------------------------------------------
async def _login(s: IMAPSession, tag: str, username: str, password: str) -> None:
    stack = AsyncExitStack()  # the login's own: UNAUTHENTICATE releases it before the session ends
    try:
        login = await log_in(s.s.login, stack, "imap", username, password, peer=s.conn.peer,
                             max_connections=s.settings.max_connections_per_user)
    except (RateLimited, TooManyConnections) as exc:
        s.no(tag, str(exc), "ALERT")
        return
    except AuthFailed:
        s.no(tag, "invalid credentials", "AUTHENTICATIONFAILED")
        return
    s.logged_in(login, stack)
    s.ok(tag, "logged in", f"CAPABILITY {s.capabilities()}")


async def login(s: IMAPSession, cmd: g.Command) -> None:
    assert isinstance(cmd, g.Login)
    if not s.login_allowed():
        s.no(cmd.tag, "plaintext login is disabled without TLS", "PRIVACYREQUIRED")
        return
    await _login(s, cmd.tag, cmd.username.decode("utf-8", "replace"), cmd.password.decode("utf-8", "replace"))


async def authenticate(s: IMAPSession, cmd: g.Command) -> None:
    assert isinstance(cmd, g.Authenticate)
    if cmd.mechanism != "PLAIN":
        s.no(cmd.tag, f"unsupported mechanism {cmd.mechanism}", "CANNOT")
        return
    if not s.login_allowed():
        s.no(cmd.tag, "authentication is disabled without TLS", "PRIVACYREQUIRED")
        return
    response = cmd.initial
    if response is None:
        s.send(serializer.continuation(""))
        s.rx.set_mode(Mode.SASL)
        try:
            while True:
                event = s.rx.next_event()
                if event is NEED_DATA:
                    await s.flush()
                    await s.read_more(60)
                    continue
                break
        finally:
            s.rx.set_mode(Mode.NORMAL)
        if not isinstance(event, SaslResponse):
            raise SessionEnded
        response = event.line
    if response == b"*":
        s.bad(cmd.tag, "authentication cancelled")
        return
    try:
        username, password = sasl_plain(response)
    except ValueError as exc:
        s.bad(cmd.tag, str(exc))
        return
    await _login(s, cmd.tag, username, password)


async def unauthenticate(s: IMAPSession, cmd: g.Command) -> None:
    """UNAUTHENTICATE (RFC 8437): back to the not-authenticated state on the same connection (see
    :meth:`IMAPSession.log_out`)."""
    user = s.user.username
    await s.log_out()
    log.info("%s logged out with UNAUTHENTICATE", user)
    s.ok(cmd.tag, "UNAUTHENTICATE completed")


# -- authenticated ---------------------------------------------------------------------------------------------------
async def enable(s: IMAPSession, cmd: g.Command) -> None:
    assert isinstance(cmd, g.Enable)
    if uidonly.CAPABILITY in cmd.capabilities and not s.uidonly and s.state == g.SELECTED:
        # RFC 9586 (and RFC 5161 3.1: ENABLE before any SELECT): the client holds sequence numbers already
        s.bad(cmd.tag, "ENABLE UIDONLY is only allowed before a mailbox is selected")
        return
    enabled = []
    for cap in cmd.capabilities:
        if cap == "CONDSTORE" and not s.condstore:
            s.enable_condstore()
            enabled.append(cap)
        elif cap == "QRESYNC" and not s.qresync:  # RFC 7162 3.2.3: implies CONDSTORE
            s.enable_condstore()
            s.qresync = True
            enabled.append(cap)
        elif cap == "UTF8=ACCEPT" and not s.utf8:
            s.utf8 = True
            enabled.append(cap)
        elif cap == "IMAP4REV2" and not s.rev2:
            s.enable_rev2()
            enabled.append("IMAP4rev2")
        elif cap == uidonly.CAPABILITY and not s.uidonly:
            s.uidonly = True
            enabled.append(cap)
    s.send(serializer.untagged("ENABLED" + "".join(" " + c for c in enabled)))
    s.ok(cmd.tag, "ENABLE completed")


async def namespace(s: IMAPSession, cmd: g.Command) -> None:
    s.send(serializer.untagged('NAMESPACE (("" "/")) NIL NIL'))
    s.ok(cmd.tag, "NAMESPACE completed")


async def select(s: IMAPSession, cmd: g.Command) -> None:
    """SELECT and EXAMINE, with CONDSTORE and QRESYNC (RFC 7162: the client's QRESYNC parameter is answered by
    :func:`qresync.resync_select` after the mailbox's responses)."""
    assert isinstance(cmd, g.Select) and s.login is not None
    if cmd.qresync is not None and not s.qresync:  # RFC 7162 3.2.5; the selected mailbox stays selected
        s.bad(cmd.tag, "the QRESYNC parameter needs ENABLE QRESYNC first")
        return
    closing = s.view is not None
    s.unselect()
    # RFC 9051 6.3.2, RFC 7162 3.2.11: before anything about the new one; with UIDONLY too, whose UIDFETCH and
    # VANISHED responses could otherwise be taken for the new mailbox's
    if closing and (s.rev2 or s.qresync or s.uidonly):
        s.send(serializer.untagged("OK [CLOSED] previous mailbox closed"))
    mailbox = await s.mailbox(cmd.mailbox)
    if cmd.condstore or cmd.qresync is not None:
        s.condstore = True
    view = await s.s.sync.open_view(mailbox, readonly=cmd.readonly, origin=s.origin)
    mailbox = view.mailbox
    s.keywords = view.keywords()
    s.view = view
    s.send(s.flags_lines())
    if s.rev2:  # RFC 9051 6.3.2: no RECENT, no UNSEEN code; the mailbox's name as a LIST response
        s.forget_recent()
        s.send(b"* %d EXISTS\r\n" % len(view.uids))
        s.send(_list_line(s, "LIST", (mailbox.special_use,) if mailbox.special_use else (), mailbox.path))
    else:
        s.send(b"* %d EXISTS\r\n* %d RECENT\r\n" % (len(view.uids), len(view.recent)))
        unseen = 0 if s.uidonly else view.first_unseen()  # RFC 9586: no response names a sequence number
        if unseen:
            s.send(serializer.untagged(f"OK [UNSEEN {unseen}] first unseen message"))
    s.send(serializer.untagged(f"OK [UIDVALIDITY {mailbox.uid_validity}] UIDs valid"))
    s.send(serializer.untagged(f"OK [UIDNEXT {mailbox.uid_next}] predicted next UID"))
    s.send(serializer.untagged(f"OK [MAILBOXID ({mailbox.id})] Ok"))  # RFC 8474 4.2
    s.send(serializer.untagged(f"OK [HIGHESTMODSEQ {mailbox.highest_modseq}] highest"))
    s.state = g.SELECTED
    if cmd.qresync is not None:
        await qresync.resync_select(s, cmd.qresync)
    # a change committed while the snapshot was read has nudged us: report it now rather than at the next NOOP
    await s.sync(expunge=True)
    s.ok(cmd.tag, f"{cmd.name} completed", "READ-ONLY" if cmd.readonly else "READ-WRITE")


async def create(s: IMAPSession, cmd: g.Command) -> None:
    """CREATE, with a special use (CREATE-SPECIAL-USE, RFC 6154 3): a use that cannot be given is NO [USEATTR]."""
    assert isinstance(cmd, g.Create)
    created = await s.s.mailboxes.create_with_use(s.user.id, s.decode_name(cmd.mailbox), cmd.uses)
    s.ok(cmd.tag, "CREATE completed", f"MAILBOXID ({created.id})")  # RFC 8474 4.1


async def delete(s: IMAPSession, cmd: g.Command) -> None:
    assert isinstance(cmd, g.MailboxCommand)
    mailbox = await s.mailbox(cmd.mailbox)
    await s.s.mailboxes.delete(s.user.id, mailbox.path)
    if s.view is not None and s.view.mailbox.id == mailbox.id:
        s.unselect()
    s.ok(cmd.tag, "DELETE completed")


async def rename(s: IMAPSession, cmd: g.Command) -> None:
    assert isinstance(cmd, g.Rename)
    renamed = await s.s.mailboxes.rename(s.user.id, s.decode_name(cmd.old), s.decode_name(cmd.new))
    if s.view is not None:
        for m in renamed:
            if m.id == s.view.mailbox.id:
                s.view.mailbox = m  # our own rename: nothing to report
    s.ok(cmd.tag, "RENAME completed")


async def subscribe(s: IMAPSession, cmd: g.Command) -> None:
    """SUBSCRIBE needs an existing mailbox; UNSUBSCRIBE takes any subscribed name, so that subscriptions
    outliving their mailbox can be removed."""
    assert isinstance(cmd, g.MailboxCommand)
    name = s.decode_name(cmd.mailbox)
    if cmd.name == "SUBSCRIBE":
        await s.s.mailboxes.subscribe(s.user.id, name)
    else:
        await s.s.mailboxes.unsubscribe(s.user.id, name)
    s.ok(cmd.tag, f"{cmd.name} completed")


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


def _list_line(s: IMAPSession, name: str, attrs: Sequence[str], path: str) -> bytes:
    return (b"* " + name.encode() + b" (" + " ".join(attrs).encode() + b') "/" ' + s.encode_name(path) + b"\r\n")


@dataclass(slots=True)
class _Row:
    """One LIST response: a name, whether it exists, and what the selection and RECURSIVEMATCH found."""

    entry: HierarchyEntry
    selected: bool = False
    #: a descendant satisfies the selection criteria but matches no pattern (RFC 5258 3.5: CHILDINFO)
    childinfo: bool = False


async def list_(s: IMAPSession, cmd: g.Command) -> None:
    """LIST with LIST-EXTENDED (RFC 5258): selection options (SUBSCRIBED, REMOTE: nothing is remote,
    RECURSIVEMATCH, SPECIAL-USE from RFC 6154), several patterns, return options (SUBSCRIBED, CHILDREN,
    SPECIAL-USE, STATUS from RFC 5819). A command in the extended syntax gets the attributes its options ask
    for; a basic LIST gets the children and special-use attributes (CHILDREN, SPECIAL-USE). LSUB is
    :func:`_lsub`."""
    assert isinstance(cmd, g.ListCommand)
    if cmd.name == "LIST" and cmd.patterns == (b"",) and not cmd.select_options:
        s.send(serializer.untagged(b'LIST (\\Noselect) "/" ""'))
        s.ok(cmd.tag, "LIST completed")
        return
    reference = s.decode_pattern(cmd.reference)
    regexes = [_pattern_regex(reference + s.decode_pattern(p)) for p in cmd.patterns]
    select, returns = set(cmd.select_options), set(cmd.return_options)
    by_subscription = cmd.name == "LSUB" or "SUBSCRIBED" in select
    by_use = "SPECIAL-USE" in select
    tree = await s.s.mailboxes.hierarchy(s.user.id, with_subscriptions=by_subscription or "SUBSCRIBED" in returns)
    if cmd.name == "LSUB":
        _lsub(s, cmd, tree, regexes)
        return
    rows = _list_rows(tree, regexes, by_subscription=by_subscription, by_use=by_use,
                      recursive="RECURSIVEMATCH" in select)
    children = not cmd.extended or "CHILDREN" in returns
    uses = not cmd.extended or by_use or "SPECIAL-USE" in returns
    subscriptions = by_subscription or "SUBSCRIBED" in returns  # RFC 5258 3.1: SUBSCRIBED implies its return
    childinfo = " (" + " ".join(f'"{o}"' for o in ("SUBSCRIBED", "SPECIAL-USE") if o in select) + ")"
    for row in rows:
        e, m = row.entry, row.entry.mailbox
        attrs = []
        if m is None:
            # a missing level is \\Noselect to a basic IMAP4rev1 LIST, otherwise \\NonExistent (which implies it:
            # RFC 5258 3, as Dovecot answers)
            attrs.append("\\NonExistent" if cmd.extended or s.rev2 or not e.level else "\\Noselect")
        if children:
            attrs.append("\\HasChildren" if e.has_children else "\\HasNoChildren")
        if uses and m is not None and m.special_use:
            attrs.append(m.special_use)
        if subscriptions and row.selected and e.subscribed:
            attrs.append("\\Subscribed")
        line = _list_line(s, "LIST", attrs, e.path)
        if row.childinfo:
            line = line[:-2] + b' ("CHILDINFO"' + childinfo.encode() + b")\r\n"
        s.send(line)
        if cmd.status_items and m is not None:
            await send_status(s, m, cmd.status_items)
    s.ok(cmd.tag, f"{cmd.name} completed")


def _list_rows(tree: Hierarchy, regexes: list[re.Pattern[str]], *, by_subscription: bool, by_use: bool,
               recursive: bool) -> list[_Row]:
    """The names a LIST answers, in the tree's order (missing superiors of the names RECURSIVEMATCH reports
    first). Without selection options: the mailboxes and the levels leading to mailboxes; with them, the names
    that satisfy every one (a subscribed name whose mailbox is gone too); with RECURSIVEMATCH, also the names
    with a descendant that satisfies them and matches no pattern."""
    def wanted(path: str) -> bool:
        return any(r.match(path) for r in regexes)

    selecting = by_subscription or by_use
    rows = {e.path: _Row(e) for e in tree.entries if e.mailbox is not None or e.level or selecting}
    for row in rows.values():
        e = row.entry
        row.selected = ((not by_subscription or e.subscribed)
                        and (not by_use or (e.mailbox is not None and bool(e.mailbox.special_use))))
    if recursive:
        for path, row in list(rows.items()):
            if not row.selected or wanted(path):
                continue
            for parent in parents(path):
                above = rows.get(parent)
                if above is None:
                    above = rows[parent] = _Row(HierarchyEntry(parent, None, False, True, level=True))
                above.childinfo = True
    found = [r for r in rows.values() if wanted(r.entry.path) and (r.selected or r.childinfo)]
    order = {e.path: i for i, e in enumerate(tree.entries)}

    def place(row: _Row) -> tuple[int, int, str]:  # missing names, then levels, then mailboxes (INBOX first)
        e = row.entry
        kind = 0 if e.path not in order else 1 if e.mailbox is None and not e.level else 2 if e.mailbox is None else 3
        return kind, order.get(e.path, 0), e.path

    return sorted(found, key=place)


def _lsub(s: IMAPSession, cmd: g.ListCommand, tree: Hierarchy, regexes: list[re.Pattern[str]]) -> None:
    """LSUB: subscribed names that match (\\Noselect when their mailbox is gone); with "%", a level that only
    leads to subscribed names below it is listed as \\Noselect (RFC 3501 6.3.9)."""
    paths = tree.paths()
    by_level = [r for r, p in zip(regexes, cmd.patterns, strict=True) if b"%" in p]  # "*" lists no levels
    found: dict[str, str] = {}
    for path in sorted(tree.subscriptions):
        if any(r.match(path) for r in regexes):
            found[path] = "" if path in paths else "\\Noselect"
        parts = path.split(SEPARATOR)
        for depth in range(1, len(parts)):
            ancestor = SEPARATOR.join(parts[:depth])
            if ancestor not in tree.subscriptions and any(r.match(ancestor) for r in by_level):
                found.setdefault(ancestor, "\\Noselect")
    for path, attrs in sorted(found.items()):
        s.send(_list_line(s, "LSUB", (attrs,) if attrs else (), path))
    s.ok(cmd.tag, "LSUB completed")


async def send_status(s: IMAPSession, mailbox: Mailbox, items: Sequence[str]) -> None:
    st = await s.s.mailboxes.status(mailbox, first_unseen=False)
    box = st.mailbox
    values: dict[str, int | str] = {
        "MESSAGES": st.messages, "RECENT": st.recent, "UIDNEXT": box.uid_next, "UIDVALIDITY": box.uid_validity,
        "UNSEEN": st.unseen, "HIGHESTMODSEQ": box.highest_modseq, "SIZE": st.size,
        "APPENDLIMIT": s.settings.max_message_size, "MAILBOXID": f"({box.id})"}
    if "DELETED" in items:  # RFC 9051 6.3.11
        values["DELETED"] = await s.s.messages.count_with_flag(box, "\\Deleted")
    body = " ".join(f"{item} {values[item]}" for item in items)
    s.send(b"* STATUS " + s.encode_name(box.path) + f" ({body})\r\n".encode())


async def status(s: IMAPSession, cmd: g.Command) -> None:
    assert isinstance(cmd, g.Status)
    await send_status(s, await s.mailbox(cmd.mailbox), cmd.items)
    s.ok(cmd.tag, "STATUS completed")


async def append(s: IMAPSession, cmd: g.Command) -> None:
    """APPEND, of one message or several (MULTIAPPEND, RFC 3502: all stored or none); APPENDUID names them all."""
    assert isinstance(cmd, g.Append)
    mailbox = await s.mailbox(cmd.mailbox, target=True)
    if not all(m.message for m in cmd.messages):
        s.no(cmd.tag, "empty message")
        return
    # a literal8 may carry NUL bytes, which no literal can: such parts are stored in base64 (RFC 3516 4.4)
    scanner = mime.scanner()
    batch = [(transfer.nul_parts_as_base64(m.message, scanner) if m.binary else m.message, m.flags, m.date)
             for m in cmd.messages]
    outcomes = await s.s.messages.append_all(s.user, mailbox, batch, origin=s.origin)
    if s.view is not None and s.view.mailbox.id == mailbox.id:
        s.view.dirty = True  # our own nudge is skipped
        await s.sync()
    uids = serializer.number_set([o.uid for o in outcomes])
    s.ok(cmd.tag, "APPEND completed", f"APPENDUID {outcomes[0].uid_validity} {uids}")


async def getquotaroot(s: IMAPSession, cmd: g.Command) -> None:
    assert isinstance(cmd, g.MailboxCommand)
    mailbox = await s.mailbox(cmd.mailbox)
    s.send(b"* QUOTAROOT " + s.encode_name(mailbox.path) + b' ""\r\n')
    await _send_quota(s)
    s.ok(cmd.tag, "GETQUOTAROOT completed")


async def _send_quota(s: IMAPSession) -> None:
    quota = await s.s.messages.quota(s.user.id)
    s.send(serializer.untagged(f'QUOTA "" (STORAGE {quota.used // 1024} {quota.limit // 1024})'))


async def getquota(s: IMAPSession, cmd: g.Command) -> None:
    assert isinstance(cmd, g.QuotaCommand)
    if cmd.root != b"":
        raise NotFound("no such quota root")
    await _send_quota(s)
    s.ok(cmd.tag, "GETQUOTA completed")


async def setquota(s: IMAPSession, cmd: g.Command) -> None:
    s.no(cmd.tag, "quotas are set by the administrator", "NOPERM")


async def compress(s: IMAPSession, cmd: g.Command) -> None:
    assert isinstance(cmd, g.Compress)
    if cmd.mechanism != "DEFLATE":
        s.bad(cmd.tag, f"unknown compression mechanism {cmd.mechanism}")
        return
    if s.conn.compressed:
        s.no(cmd.tag, "compression is already active", "COMPRESSIONACTIVE")
        return
    s.ok(cmd.tag, "DEFLATE active")
    await s.flush()
    # the client compresses right after its command's CRLF: what is buffered already is compressed input
    s.conn.start_compression(s.rx.take_buffer())

