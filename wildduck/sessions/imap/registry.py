"""The one IMAP command registry: each command's name, the states it is allowed in, and its handler.

To add a command: write its parser in ``protocols/imap/grammar/commands.py`` (``parse_x(tag, name, args)`` returning
a typed command value), its handler in ``commands.py``, ``selected.py`` or a new sibling module (``async def
handler(session, cmd)``), and add one row below: name, the states it is allowed in, parser, handler. ``UID FETCH``
and the other UID forms are parsed by the UID row and handled by the row of the command they prefix.
"""

from __future__ import annotations

from wildduck.protocols.imap import grammar as g
from wildduck.protocols.imap.receiver import CommandRejected, RawCommand
from wildduck.sessions.imap import commands as c
from wildduck.sessions.imap import idle as i
from wildduck.sessions.imap import notify as n
from wildduck.sessions.imap import selected as s
from wildduck.sessions.imap import sort as o
from wildduck.sessions.imap import threading as t
from wildduck.sessions.imap.session import Entry

_ANY = frozenset({g.NOT_AUTHENTICATED, g.AUTHENTICATED, g.SELECTED})
_NOT_AUTH = frozenset({g.NOT_AUTHENTICATED})
_AUTH = frozenset({g.AUTHENTICATED, g.SELECTED})
_SEL = frozenset({g.SELECTED})

_ROWS: tuple[Entry, ...] = (
    Entry("CAPABILITY", _ANY, g.parse_simple, c.capability),
    Entry("NOOP", _ANY, g.parse_simple, c.noop),
    Entry("LOGOUT", _ANY, g.parse_simple, c.logout),
    Entry("ID", _ANY, g.parse_id, c.id_),
    Entry("STARTTLS", _NOT_AUTH, g.parse_simple, c.starttls),
    Entry("LOGIN", _NOT_AUTH, g.parse_login, c.login),
    Entry("AUTHENTICATE", _NOT_AUTH, g.parse_authenticate, c.authenticate),
    Entry("UNAUTHENTICATE", _AUTH, g.parse_simple, c.unauthenticate),
    Entry("ENABLE", _AUTH, g.parse_enable, c.enable),
    Entry("NAMESPACE", _AUTH, g.parse_simple, c.namespace),
    Entry("SELECT", _AUTH, g.parse_select, c.select),
    Entry("EXAMINE", _AUTH, g.parse_select, c.select),
    Entry("CREATE", _AUTH, g.parse_create, c.create),
    Entry("DELETE", _AUTH, g.parse_mailbox, c.delete),
    Entry("RENAME", _AUTH, g.parse_rename, c.rename),
    Entry("SUBSCRIBE", _AUTH, g.parse_mailbox, c.subscribe),
    Entry("UNSUBSCRIBE", _AUTH, g.parse_mailbox, c.subscribe),
    Entry("LIST", _AUTH, g.parse_list, c.list_),
    Entry("LSUB", _AUTH, g.parse_list, c.list_),
    Entry("STATUS", _AUTH, g.parse_status, c.status),
    Entry("APPEND", _AUTH, g.parse_append, c.append),
    Entry("IDLE", _AUTH, g.parse_simple, i.idle),
    Entry("NOTIFY", _AUTH, g.parse_notify, n.notify),
    Entry("GETQUOTAROOT", _AUTH, g.parse_mailbox, c.getquotaroot),
    Entry("GETQUOTA", _AUTH, g.parse_getquota, c.getquota),
    Entry("SETQUOTA", _AUTH, g.parse_getquota, c.setquota),
    Entry("COMPRESS", _AUTH, g.parse_compress, c.compress),
    Entry("CHECK", _SEL, g.parse_simple, s.check),
    Entry("CLOSE", _SEL, g.parse_simple, s.close),
    Entry("UNSELECT", _SEL, g.parse_simple, s.unselect),
    Entry("EXPUNGE", _SEL, g.parse_simple, s.expunge),
    Entry("FETCH", _SEL, g.parse_fetch, s.fetch),
    Entry("STORE", _SEL, g.parse_store, s.store),
    Entry("COPY", _SEL, g.parse_copy, s.copy),
    Entry("MOVE", _SEL, g.parse_copy, s.copy),
    Entry("SEARCH", _SEL, g.parse_search, s.search),
    Entry("SORT", _SEL, g.parse_sort, o.sort_),
    Entry("THREAD", _SEL, g.parse_thread, t.thread_),
    # UID FETCH/STORE/COPY/MOVE/SEARCH/SORT/THREAD/EXPUNGE: the UID parser picks the form, the base command handles it
    Entry("UID", _SEL, g.parse_uid, None),
)

REGISTRY: dict[str, Entry] = {e.name: e for e in _ROWS}


def parse(raw: RawCommand) -> g.Command | CommandRejected:
    """The typed command for ``raw`` (a rejection for unknown commands and bad arguments), without a session:
    what the fuzz harness and the parser benchmark drive."""
    entry = REGISTRY.get(raw.name)
    if entry is None:
        return CommandRejected(raw.tag, f"unknown command {raw.name[:40]}")
    return g.parse(raw, entry.parser)
