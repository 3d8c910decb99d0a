"""UIDONLY (RFC 9586): after ``ENABLE UIDONLY`` the session speaks of messages by UID alone.

What a command may not say: a message sequence number anywhere (the FETCH, STORE, COPY, MOVE, SEARCH, SORT and
THREAD forms without UID; a sequence set among the search keys of UID SEARCH, UID SORT and UID THREAD; the
message sequence match data of SELECT/EXAMINE's QRESYNC parameter). Such a command is ``BAD [UIDREQUIRED]``
(:func:`refusal`), checked once in ``IMAPSession.command`` before any handler runs. ``$`` (SEARCHRES) names UIDs,
so it stays allowed.

What the server no longer says: ``* n FETCH`` becomes ``* uid UIDFETCH`` (without a UID item unless the client
asked for one: the response's number is the UID; ``response``), ``* n EXPUNGE`` becomes ``* VANISHED uid-set``
(``IMAPSession.render``), and SELECT/EXAMINE leave out ``[UNSEEN n]`` and, replacing a selected mailbox, start
with ``[CLOSED]`` (as with QRESYNC). ``* n EXISTS`` still counts the messages. ``ENABLE UIDONLY`` is BAD once a
mailbox is selected (``commands.enable``).
This module imports only the grammar, so the session can use it.
"""

from __future__ import annotations

from wildduck.protocols.imap import grammar as g

#: the response code of a refused command (RFC 9586)
CODE = "UIDREQUIRED"
CAPABILITY = "UIDONLY"
#: the commands whose non-UID form names messages by sequence number
_BY_SEQUENCE = (g.Fetch, g.Store, g.CopyMove, g.Search)


def uses_sequence_numbers(key: g.SearchKey) -> bool:
    """Whether a search key (or one nested in it) is a message sequence set (``$`` is not: it holds UIDs)."""
    if key.op == "SEQ":
        return not key.args[0].last_result
    return any(isinstance(a, g.SearchKey) and uses_sequence_numbers(a) for a in key.args)


def refusal(cmd: g.Command) -> str | None:
    """Why ``cmd`` cannot be run once UIDONLY is enabled (the text of its ``BAD [UIDREQUIRED]``), or None."""
    if isinstance(cmd, _BY_SEQUENCE) and not cmd.uid:
        base = cmd.name
        return f"{base} uses message sequence numbers, use UID {base} (UIDONLY is enabled)"
    if isinstance(cmd, g.Search) and uses_sequence_numbers(cmd.criteria):
        return "message sequence numbers in search criteria are not allowed once UIDONLY is enabled"
    if isinstance(cmd, g.Select) and cmd.qresync is not None and cmd.qresync.match is not None:
        return "message sequence match data is not allowed once UIDONLY is enabled"
    return None


def response(uidonly: bool, seq: int, uid: int) -> bytes:
    """The start of a FETCH response for the message (``seq``, ``uid``): ``* seq FETCH (``, or with UIDONLY
    ``* uid UIDFETCH (``."""
    return b"* %d UIDFETCH (" % uid if uidonly else b"* %d FETCH (" % seq
