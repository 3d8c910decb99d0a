"""IMAP4rev1 command grammar: :class:`RawCommand` tokens to typed commands (RFC 3501 §9 and the extensions
wildduck advertises). Parse failures raise :class:`ParseError`; :func:`parse` turns them into values.

The package is split along the grammar's seams; every public name is re-exported here
(``from wildduck.protocols.imap import grammar as g``):

* :mod:`.args`: :class:`ParseError`, the :class:`Args` token cursor, flags and dates;
* :mod:`.sequence`: :class:`SequenceSet` (normalized once; bisect and merge-join resolution);
* :mod:`.fetch_items`: :class:`FetchItem` and the FETCH attribute parser;
* :mod:`.search_keys`: :class:`SearchKey` and the SEARCH key parser;
* :mod:`.commands`: the command values, one parser per command (``parse_login``, ...) and :func:`parse`, which
  runs one. Which command name has which parser, and is allowed in which state, is the session's one command
  registry (``wildduck.sessions.imap.registry``).
"""

from wildduck.protocols.imap.grammar.args import Args, ParseError, parse_date, parse_date_time, parse_flag, parse_flags
from wildduck.protocols.imap.grammar.commands import (
    AUTHENTICATED,
    LOGOUT,
    NOT_AUTHENTICATED,
    SELECTED,
    Append,
    AppendMessage,
    Authenticate,
    Command,
    Compress,
    CopyMove,
    Create,
    Enable,
    Fetch,
    Id,
    ListCommand,
    Login,
    MailboxCommand,
    Parser,
    Qresync,
    QuotaCommand,
    Rename,
    Search,
    Select,
    Simple,
    Sort,
    SortCriterion,
    Status,
    Store,
    Thread,
    UidExpunge,
    parse,
    parse_append,
    parse_authenticate,
    parse_compress,
    parse_copy,
    parse_create,
    parse_enable,
    parse_fetch,
    parse_getquota,
    parse_id,
    parse_list,
    parse_login,
    parse_mailbox,
    parse_rename,
    parse_search,
    parse_select,
    parse_simple,
    parse_sort,
    parse_status,
    parse_store,
    parse_thread,
    parse_uid,
)
from wildduck.protocols.imap.grammar.fetch_items import FetchItem, parse_fetch_item, parse_fetch_items
from wildduck.protocols.imap.grammar.notify import EventGroup, Notify, parse_notify
from wildduck.protocols.imap.grammar.search_keys import SearchKey, parse_search_key
from wildduck.protocols.imap.grammar.sequence import Range, SequenceSet, parse_sequence_set

__all__ = [
    "AUTHENTICATED", "LOGOUT", "NOT_AUTHENTICATED", "SELECTED",
    "EventGroup", "Notify", "parse_notify",
    "Append", "AppendMessage", "Args", "Authenticate", "Command", "Compress", "CopyMove", "Create", "Enable", "Fetch",
    "FetchItem", "Id",
    "ListCommand", "Login", "MailboxCommand", "ParseError", "QuotaCommand", "Qresync", "Range", "Rename",
    "Search", "SearchKey",
    "Parser", "Select", "SequenceSet", "Simple", "Sort", "SortCriterion", "Status", "Store", "Thread", "UidExpunge",
    "parse", "parse_date", "parse_date_time", "parse_fetch_item", "parse_fetch_items", "parse_flag", "parse_flags",
    "parse_search_key", "parse_sequence_set",
    "parse_append", "parse_authenticate", "parse_compress", "parse_copy", "parse_create", "parse_enable", "parse_fetch",
    "parse_getquota", "parse_id", "parse_list", "parse_login", "parse_mailbox", "parse_rename", "parse_search",
    "parse_select", "parse_simple", "parse_sort", "parse_status", "parse_thread", "parse_store", "parse_uid",
]
