"""THREAD and UID THREAD (RFC 5256): the messages SEARCH would find for the criteria (``selected.matching``),
threaded by ``THREAD=REFERENCES`` or ``THREAD=ORDEREDSUBJECT`` (:mod:`wildduck.protocols.imap.threads`).

What threading reads of a message was kept at delivery (its base subject, whether that removed a reply marker, its
Message-ID and the ids its References or In-Reply-To name), so a THREAD reads only those (``Messages.thread_keys``:
tuples in the field order of :class:`~wildduck.protocols.imap.threads.ThreadRecord`, numbered by UID), a batch at
a time, and parses no header. They never change for a UID while the mailbox keeps its UIDVALIDITY, so the process
keeps them (:data:`KEPT`, a :class:`~wildduck.sessions.imap.sort.SortKeys` of its own): a THREAD reads those of the
messages it has not seen before only. The records are numbered by UID, which orders the messages as their sequence
numbers do (the tie-break is the same), and the answer maps UIDs to sequence numbers as it is written. The
threading runs with the cyclic garbage collector paused (what it allocates has no cycles left and is freed by
reference counting). The process keeps the last answers too (:class:`ThreadAnswers`): the same command over the
same messages, numbered the same, is answered with the bytes written before.
"""

from __future__ import annotations

import gc
from array import array
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from wildduck.protocols.imap import grammar as g
from wildduck.protocols.imap import threads
from wildduck.sessions.imap.selected import matching, refuse_charset
from wildduck.sessions.imap.session import IMAPSession
from wildduck.sessions.imap.sort import SortKeys

#: messages whose threading data is read from the store per round trip (a hundred bytes or so each)
THREAD_BATCH = 10_000
ALGORITHMS = {"REFERENCES": threads.references, "ORDEREDSUBJECT": threads.ordered_subject}
#: this process's threading data of recently threaded mailboxes, by (mailbox id, UIDVALIDITY) and UID
KEPT: SortKeys[threads.ThreadRecord] = SortKeys()


class ThreadAnswers:
    """The last ``* THREAD`` answers of this process, by (mailbox id, UIDVALIDITY, algorithm, by UID), each with
    the messages it threads and (by sequence number) the UIDs that numbered them: an answer depends on nothing
    else, as what threading reads of a message never changes."""

    def __init__(self, limit: int = 8) -> None:
        self.limit = limit
        self.answers: OrderedDict[tuple[str, int, str, bool], tuple[list[int], array[int] | None, bytes]] = \
            OrderedDict()

    def get(self, key: tuple[str, int, str, bool], uids: list[int], numbered: array[int] | None) -> bytes | None:
        kept = self.answers.get(key)
        if kept is None or kept[0] != uids or kept[1] != numbered:
            return None
        self.answers.move_to_end(key)
        return kept[2]

    def put(self, key: tuple[str, int, str, bool], uids: list[int], numbered: array[int] | None,
            answer: bytes) -> None:
        self.answers[key] = (list(uids), array(numbered.typecode, numbered) if numbered is not None else None, answer)
        self.answers.move_to_end(key)
        while len(self.answers) > self.limit:
            self.answers.popitem(last=False)


#: this process's
ANSWERS = ThreadAnswers()


@contextmanager
def _no_collection() -> Iterator[None]:
    """The cyclic garbage collector paused: threading 100,000 messages makes some 100,000 containers, which would
    otherwise set off collections over the whole heap again and again (a third of the time)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def thread_records(s: IMAPSession, uids: list[int]) -> list[threads.ThreadRecord]:
    """The threading data of the messages ``uids``, numbered by UID, in their order; a message expunged by another
    session meanwhile is left out (RFC 2180)."""
    view = s.selected
    mailbox = (view.mailbox.id, view.mailbox.uid_validity)
    kept = KEPT.of(mailbox)
    get = kept.get
    missing = [u for u in uids if u not in kept]
    make = threads.ThreadRecord._make
    for start in range(0, len(missing), THREAD_BATCH):
        rows = await s.s.messages.thread_keys(mailbox[0], missing[start:start + THREAD_BATCH])
        kept.update(zip([r[0] for r in rows], map(make, rows), strict=True))
    if missing:
        KEPT.keep(mailbox, kept, frozenset(view.uids))
    return [r for u in uids if (r := get(u)) is not None]


async def thread_(s: IMAPSession, cmd: g.Command) -> None:
    """``* THREAD (...)`` of the matching messages, by sequence number or (UID THREAD) by UID. The charset must be
    UTF-8 or US-ASCII, else NO [BADCHARSET]."""
    assert isinstance(cmd, g.Thread)
    if cmd.charset not in ("UTF-8", "US-ASCII"):
        refuse_charset(s, cmd.tag, ())
        return
    uids, _modseqs, _with_modseq = await matching(s, cmd.criteria, uid=cmd.uid, save=False)
    view = s.selected
    key = (view.mailbox.id, view.mailbox.uid_validity, cmd.algorithm, cmd.uid)
    numbered = None if cmd.uid else view.uids
    answer = ANSWERS.get(key, uids, numbered)
    if answer is None:
        records = await thread_records(s, uids)
        numbers = None if numbered is None else dict(zip(numbered, range(1, len(numbered) + 1), strict=True))
        with _no_collection():
            answer = threads.thread_response(ALGORITHMS[cmd.algorithm](records), numbers)
        if len(records) == len(uids):  # none expunged meanwhile
            ANSWERS.put(key, uids, numbered, answer)
    s.send(answer)
    s.note_held_back()
    s.ok(cmd.tag, f"{cmd.name} completed")
