"""THREAD and UID THREAD (RFC 5256): the messages SEARCH would find for the criteria (``selected.matching``),
threaded by ``THREAD=REFERENCES`` or ``THREAD=ORDEREDSUBJECT`` (:mod:`wildduck.protocols.imap.threads`).

What threading reads of a message was kept at delivery (its base subject, whether that removed a reply marker, its
Message-ID and the ids its References or In-Reply-To name), so a THREAD reads records without content, a batch at a
time, and parses no header.
"""

from __future__ import annotations

from wildduck.protocols.imap import grammar as g
from wildduck.protocols.imap import threads
from wildduck.protocols.mime.headers import message_ids
from wildduck.sessions.imap.selected import matching, refuse_charset
from wildduck.sessions.imap.session import IMAPSession

#: records read from the store per round trip (records without content: a few hundred bytes each)
THREAD_BATCH = 5000
ALGORITHMS = {"REFERENCES": threads.references, "ORDEREDSUBJECT": threads.ordered_subject}


async def thread_records(s: IMAPSession, uids: list[int], numbers: dict[int, int]) -> list[threads.ThreadRecord]:
    """The threading data of the messages ``uids``, numbered by ``numbers`` (UID -> what the answer reports); a
    message expunged by another session meanwhile is left out (RFC 2180)."""
    mailbox_id = s.selected.mailbox.id
    out: list[threads.ThreadRecord] = []
    for start in range(0, len(uids), THREAD_BATCH):
        for r in await s.s.messages.records(mailbox_id, uids[start:start + THREAD_BATCH], content=False):
            own = message_ids(r.message_id)
            sent = r.header_date if r.header_date is not None else r.internal_date
            out.append(threads.ThreadRecord(numbers[r.uid], r.base_subject, sent.timestamp(),
                                            own[0] if own else None, r.references, r.subject_reply))
    return out


async def thread_(s: IMAPSession, cmd: g.Command) -> None:
    """``* THREAD (...)`` of the matching messages, by sequence number or (UID THREAD) by UID. The charset must be
    UTF-8 or US-ASCII, else NO [BADCHARSET]."""
    assert isinstance(cmd, g.Thread)
    if cmd.charset not in ("UTF-8", "US-ASCII"):
        refuse_charset(s, cmd.tag, ())
        return
    uids, _modseqs, _with_modseq = await matching(s, cmd.criteria, uid=cmd.uid, save=False)
    view = s.selected
    if cmd.uid:
        numbers = {u: u for u in uids}
    else:
        position = dict(zip(view.uids, range(1, len(view.uids) + 1), strict=True))
        numbers = {u: position[u] for u in uids}
    records = await thread_records(s, uids, numbers)
    s.send(threads.thread_response(ALGORITHMS[cmd.algorithm](records)))
    s.note_held_back()
    s.ok(cmd.tag, f"{cmd.name} completed")
