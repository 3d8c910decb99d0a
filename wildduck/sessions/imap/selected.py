"""IMAP commands of the selected state: CHECK, CLOSE, UNSELECT, EXPUNGE, FETCH, STORE, COPY, MOVE, SEARCH (and
the search and answer halves SORT shares, ``sort.py``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from wildduck.domain import preview
from wildduck.domain.messages import OpenedMessage
from wildduck.domain.sync import expunged_since
from wildduck.model import FlagMode, MessageRecord
from wildduck.model import search as q
from wildduck.protocols.imap import grammar as g
from wildduck.protocols.imap import serializer
from wildduck.protocols.imap.fetch import (
    MessageView,
    UnknownCTE,
    binary_item,
    binary_size,
    body_item,
    internaldate,
    sets_seen,
)
from wildduck.sessions.imap.search import compile_key, uses_modseq
from wildduck.sessions.imap.session import EMPTY_RESULT, IMAPSession

#: FETCH items answered from a record without its content (no skeleton, parts or MIME tree)
_META_ITEMS = frozenset({"FLAGS", "UID", "MODSEQ", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE",
                         "EMAILID", "THREADID", "SAVEDATE"})
#: messages read from the store per round trip during FETCH
FETCH_BATCH = 100
#: the same when no message content is read (records without skeleton or parts: a few hundred bytes each)
FETCH_META_BATCH = 2000
_RFC822_SECTIONS = {"RFC822": "", "RFC822.HEADER": "HEADER", "RFC822.TEXT": "TEXT"}


def targets(s: IMAPSession, sequence: g.SequenceSet, uid: bool) -> list[tuple[int, int]]:
    """(sequence number, UID) of the messages a sequence set names (merge-joined, never per-range scans); ``$`` is
    the saved search result (RFC 5182), the messages of its UIDs still in the mailbox."""
    uids = s.selected.uids
    if sequence.last_result:
        sequence, uid = s.saved_result, True
    if not uids:
        return []
    if uid:
        return [(i + 1, uids[i]) for i in sequence.select_uids(uids)]
    return [(n, uids[n - 1]) for n in sequence.select_seqs(len(uids))]


def valid_sequence(s: IMAPSession, sequence: g.SequenceSet) -> bool:
    """Whether a message sequence set names only existing numbers (``$`` always does: RFC 5182 2.1)."""
    count = len(s.selected.uids)
    return all((lo is None or lo <= count) and (hi is None or hi <= count) for lo, hi in sequence.ranges)


async def check(s: IMAPSession, cmd: g.Command) -> None:
    await s.sync(force=True)
    s.ok(cmd.tag, "CHECK completed")


async def close(s: IMAPSession, cmd: g.Command) -> None:
    view = s.selected
    if not view.readonly:
        deleted = view.with_flag("\\Deleted")
        if deleted:
            await s.s.messages.expunge(view.mailbox, deleted, origin=s.origin)
    s.unselect()
    s.ok(cmd.tag, f"{cmd.name} completed")


async def unselect(s: IMAPSession, cmd: g.Command) -> None:
    s.unselect()
    s.ok(cmd.tag, "UNSELECT completed")


async def expunge(s: IMAPSession, cmd: g.Command) -> None:
    view = s.selected
    if view.readonly:
        s.no(cmd.tag, "mailbox is read-only", "READ-ONLY")
        return
    await s.sync()
    wanted = None
    if isinstance(cmd, g.UidExpunge):
        wanted = {u for _s, u in targets(s, cmd.sequence, True)}
    deleted = [u for u in view.with_flag("\\Deleted") if wanted is None or u in wanted]
    if deleted and await s.s.messages.expunge(view.mailbox, deleted, origin=s.origin):
        view.dirty = True  # our own nudge is skipped
    await s.sync()
    s.ok(cmd.tag, f"{cmd.name} completed")


async def fetch(s: IMAPSession, cmd: g.Command) -> None:
    assert isinstance(cmd, g.Fetch)
    view = s.selected
    if cmd.vanished and not s.qresync:
        s.bad(cmd.tag, "VANISHED needs ENABLE QRESYNC first")
        return
    if not cmd.uid and not valid_sequence(s, cmd.sequence):
        await s.sync(expunge=False)
        s.bad(cmd.tag, "invalid message sequence number")
        return
    await s.sync(expunge=cmd.uid)
    items = list(cmd.items)
    # UID FETCH answers with the UID even when not asked, except with UIDONLY: a UIDFETCH's number is the UID
    if cmd.uid and not s.uidonly and not any(i.name == "UID" for i in items):
        items.insert(0, g.FetchItem("UID", label="UID"))
    if cmd.changedsince is not None and not any(i.name == "MODSEQ" for i in items):
        items.append(g.FetchItem("MODSEQ", label="MODSEQ"))
    if any(i.name == "MODSEQ" for i in items):
        s.enable_condstore()
    if cmd.vanished:
        await _vanished_earlier(s, cmd)
    chosen = targets(s, cmd.sequence, cmd.uid)
    if cmd.changedsince is not None:
        chosen = [(n, u) for n, u in chosen if view.modseqs.get(u, 0) > cmd.changedsince]
    seen = sets_seen(items)
    marks_seen = seen and not view.readonly
    needs_record = any(i.name not in ("FLAGS", "UID", "MODSEQ") for i in items)
    # PREVIEW reads the record's content (skeleton, MIME tree) and the blobs of its text bodies only
    needs_preview = any(i.name == "PREVIEW" for i in items)
    needs_content = any(i.name not in _META_ITEMS and i.name != "PREVIEW"
                        and not (i.name == "BODY" and i.section is None) for i in items)
    if not needs_record and not marks_seen:
        await _fetch_from_view(s, chosen, items)
        s.note_held_back()
        s.ok(cmd.tag, f"{cmd.name} completed")
        return
    step = FETCH_BATCH if needs_content or needs_preview else FETCH_META_BATCH
    for start in range(0, len(chosen), step):
        batch = chosen[start:start + step]
        uids = [u for _n, u in batch]
        records: dict[int, MessageRecord] = {}
        opened: dict[int, OpenedMessage] = {}
        texts: dict[str, str | None] = {}
        if needs_record:
            found = await s.s.messages.records(view.mailbox.id, uids, content=needs_content or needs_preview)
            if needs_content:
                opened = {o.record.uid: o for o in await s.s.messages.open_records(found)}
            if needs_preview:
                texts = await preview.previews(s.s.messages, found)
            records = {r.uid: r for r in found}
        if marks_seen:
            unseen = [u for u in uids if "\\Seen" not in view.flags.get(u, ())]
            if unseen:
                view.apply(await s.s.messages.mark_seen(view.mailbox, unseen, origin=s.origin))
        if needs_record and not needs_content and not needs_preview:
            await _fetch_meta(s, batch, items, records, with_flags=marks_seen)
            continue
        for seq, uid in batch:
            record = records.get(uid)
            if needs_record and record is None:
                continue  # expunged by another session meanwhile (RFC 2180): skip, no error
            try:
                _fetch_one(s, seq, uid, items, record, opened.get(uid), texts, with_flags=marks_seen)
            except UnknownCTE as exc:  # RFC 3516 4.3; the messages before it were answered
                s.no(cmd.tag, str(exc), "UNKNOWN-CTE")
                return
            await s.flush_if_large()
    s.note_held_back()
    s.ok(cmd.tag, f"{cmd.name} completed")


async def _vanished_earlier(s: IMAPSession, cmd: g.Fetch) -> None:
    """UID FETCH ... (CHANGEDSINCE n VANISHED) (RFC 7162 3.2.6): ``* VANISHED (EARLIER)`` of the UIDs of the set
    expunged after MODSEQ n, before the FETCH responses (``*`` reaches UIDNEXT - 1: the highest UIDs may be the
    expunged ones). When the journal no longer goes back to n: every UID of the set not in the mailbox."""
    assert cmd.changedsince is not None
    view = s.selected
    sequence = s.saved_result if cmd.sequence.last_result else cmd.sequence
    ranges, _exact = await expunged_since(view, cmd.changedsince, sequence.resolve(view.mailbox.uid_next - 1))
    s.send(serializer.vanished(ranges, earlier=True))


def structure_form(record: MessageRecord, name: str, utf8: bool) -> bytes:
    """ENVELOPE, BODYSTRUCTURE or BODY of a record: the IMAP form the store keeps, the UTF8=ACCEPT one if the
    session enabled it and it differs."""
    if name == "ENVELOPE":
        plain, wide = record.imap_envelope, record.imap_envelope_utf8
    elif name == "BODYSTRUCTURE":
        plain, wide = record.imap_bodystructure, record.imap_bodystructure_utf8
    else:
        plain, wide = record.imap_body, record.imap_body_utf8
    return wide if utf8 and wide is not None else plain


#: responses rendered between two looks at the output buffer (metadata FETCH)
_META_CHUNK = 200


async def _fetch_meta(s: IMAPSession, batch: list[tuple[int, int]], items: list[g.FetchItem],
                      records: dict[int, MessageRecord], *, with_flags: bool) -> None:
    """FETCH of items that a record without content answers (``_META_ITEMS`` and BODY): each response is one
    ``fetch_line`` of its items in the order asked, FLAGS last, byte for byte what ``_fetch_one`` sends (a label
    and its value are two words of the line: it joins them with the same space)."""
    view = s.selected
    utf8 = s.utf8
    kinds = [i.name for i in items if i.name != "FLAGS"]
    flags_too = with_flags or len(kinds) < len(items)
    modseqs = view.modseqs
    send = s.send
    fetch_line = serializer.fetch_line
    uidonly = s.uidonly
    done = 0
    for seq, uid in batch:
        record = records.get(uid)
        if record is None:
            continue  # expunged by another session meanwhile (RFC 2180): skip, no error
        values: list[bytes] = []
        for kind in kinds:
            if kind == "ENVELOPE":
                wide = record.imap_envelope_utf8
                values += (b"ENVELOPE", wide if utf8 and wide is not None else record.imap_envelope)
            elif kind == "UID":
                values.append(b"UID %d" % uid)
            elif kind == "MODSEQ":
                values.append(b"MODSEQ (%d)" % modseqs.get(uid, 0))
            elif kind == "INTERNALDATE":
                values += (b"INTERNALDATE", internaldate(record.internal_date))
            elif kind == "RFC822.SIZE":
                values.append(b"RFC822.SIZE %d" % record.size)
            elif kind in _ID_ITEMS:
                values += (kind.encode("ascii"), id_item(record, kind))
            else:
                values += (kind.encode("ascii"), structure_form(record, kind, utf8))
        if flags_too:
            send(s.keyword_announcement((uid,)))
            values += (b"FLAGS", serializer.flag_list(view.flags_of(uid)))
        send(serializer.uidfetch_line(uid, values) if uidonly else fetch_line(seq, values))
        done += 1
        if done % _META_CHUNK == 0:
            await s.flush_if_large()
    await s.flush_if_large()


#: what ``_fetch_from_view`` renders for each item (the same bytes ``_fetch_one`` and ``iter_fetch`` produce)
_VIEW_ITEMS = {"UID": b"UID %d", "MODSEQ": b"MODSEQ (%d)", "FLAGS": b"FLAGS %s"}
#: responses rendered between two looks at the output buffer
_VIEW_CHUNK = 1000


async def _fetch_from_view(s: IMAPSession, chosen: list[tuple[int, int]], items: list[g.FetchItem]) -> None:
    """FETCH of FLAGS, UID and MODSEQ only: every answer is in the view's table, so the responses are rendered
    straight from its arrays (one format per response; each distinct flag list serialized once), byte for byte
    what ``_fetch_one`` sends, keyword announcements included."""
    view = s.selected
    table = view.table
    uids, modseqs, flag_ids, sets = table.uids, table.modseqs, table.flag_ids, table.flag_sets.sets
    kinds = [i.name for i in items if i.name != "FLAGS"]
    with_flags = len(kinds) < len(items)
    if with_flags:
        kinds.append("FLAGS")
    uidonly = s.uidonly  # ``* uid UIDFETCH (...)`` (RFC 9586)
    head = b"* %d UIDFETCH (" if uidonly else b"* %d FETCH ("
    template = head + b" ".join(_VIEW_ITEMS[k] for k in kinds) + b")\r\n"
    recent = view.recent
    rendered: dict[tuple[int, bool], bytes] = {}  # (flag list number, \Recent) → ``(flags...)``
    announced: set[int] = set()  # flag lists whose keywords the client has been told about
    out: list[bytes] = []
    for start in range(0, len(chosen), _VIEW_CHUNK):
        for seq, uid in chosen[start:start + _VIEW_CHUNK]:
            i = seq - 1
            args: list[int | bytes] = [uid if uidonly else seq]
            for kind in kinds:
                if kind == "UID":
                    args.append(uid)
                elif kind == "MODSEQ":
                    args.append(modseqs[i] if uids[i] == uid else 0)
                else:
                    number = flag_ids[i]
                    if number not in announced:
                        announcement = s.keyword_announcement((uid,))
                        if announcement:
                            s.send(b"".join(out))
                            out.clear()
                            s.send(announcement)
                        announced.add(number)
                    key = (number, uid in recent)
                    flags = rendered.get(key)
                    if flags is None:
                        flags = rendered[key] = serializer.flag_list(
                            (*sets[number], "\\Recent") if key[1] else sets[number])
                    args.append(flags)
            out.append(template % tuple(args))
        s.send(b"".join(out))
        out.clear()
        await s.flush_if_large()


#: the FETCH items of RFC 8474 (EMAILID, THREADID) and RFC 8514 (SAVEDATE)
_ID_ITEMS = frozenset({"EMAILID", "THREADID", "SAVEDATE"})


def id_item(record: MessageRecord, name: str) -> bytes:
    """EMAILID (the same for every copy of the message), THREADID or SAVEDATE (when it was saved into this
    mailbox) of ``record``."""
    if name == "EMAILID":
        return b"(%s)" % record.email_id.encode("ascii")
    if name == "THREADID":
        return b"(%s)" % record.thread_id.encode("ascii")
    return internaldate(record.saved) if record.saved is not None else b"NIL"


def _fetch_one(s: IMAPSession, seq: int, uid: int, items: list[g.FetchItem], record: MessageRecord | None,
               opened: OpenedMessage | None, texts: dict[str, str | None], *, with_flags: bool) -> None:
    """One FETCH response; ``texts`` holds the previews by record id when PREVIEW is asked for."""
    view = s.selected
    values: list[tuple[str, bytes | serializer.Streamed]] = []
    message = None
    for item in items:
        name = item.name
        if name == "UID":
            values.append(("UID", b"%d" % uid))
        elif name == "FLAGS":
            continue  # added at the end, after \Seen may have been set
        elif name == "MODSEQ":
            values.append(("MODSEQ", b"(%d)" % view.modseqs.get(uid, 0)))
        elif record is None:
            continue
        elif name == "INTERNALDATE":
            values.append(("INTERNALDATE", internaldate(record.internal_date)))
        elif name == "RFC822.SIZE":
            values.append(("RFC822.SIZE", b"%d" % record.size))
        elif name in ("ENVELOPE", "BODYSTRUCTURE", "BODY") and item.section is None:
            values.append((name, structure_form(record, name, s.utf8)))
        elif name in _ID_ITEMS:
            values.append((name, id_item(record, name)))
        elif name == "PREVIEW":  # RFC 8970: UTF-8, a literal when 8-bit and UTF8=ACCEPT is off
            values.append(("PREVIEW", serializer.nstring(texts.get(record.id), utf8=s.utf8)))
        else:
            assert opened is not None
            if message is None:
                message = MessageView(record.skeleton, record.parts, record.mime_tree, opened.get_blob)
            if name in _RFC822_SECTIONS:
                values.append((name, body_item(message, g.FetchItem("BODY", _RFC822_SECTIONS[name], label=name))))
            elif name == "BINARY":
                values.append((item.label, binary_item(message, item)))
            elif name == "BINARY.SIZE":
                values.append((item.label, binary_size(message, item)))
            else:
                values.append((item.label, body_item(message, item)))
    if with_flags or any(i.name == "FLAGS" for i in items):
        s.send(s.keyword_announcement((uid,)))
        values.append(("FLAGS", serializer.flag_list(view.flags_of(uid))))
    fetched = serializer.iter_fetch(uid, values, kind=b"UIDFETCH") if s.uidonly else serializer.iter_fetch(seq, values)
    for chunk in fetched:
        s.send(chunk)


async def store(s: IMAPSession, cmd: g.Command) -> None:
    assert isinstance(cmd, g.Store)
    view = s.selected
    if view.readonly:
        s.no(cmd.tag, "mailbox is read-only", "READ-ONLY")
        return
    if not cmd.uid and not valid_sequence(s, cmd.sequence):
        s.bad(cmd.tag, "invalid message sequence number")
        return
    await s.sync(expunge=cmd.uid)
    if cmd.unchangedsince is not None:
        s.enable_condstore()
    chosen = targets(s, cmd.sequence, cmd.uid)
    change = await s.s.messages.set_flags(view.mailbox, [u for _n, u in chosen], FlagMode(cmd.mode), cmd.flags,
                                          unchangedsince=cmd.unchangedsince, origin=s.origin)
    view.apply(change)
    changed = {c.uid for c in change.changed}
    modified = set(change.modified)
    for seq, uid in chosen:
        if uid in changed or (not cmd.silent and uid not in modified):
            if not cmd.silent or (s.condstore and uid in changed and cmd.unchangedsince is not None):
                s.send(s.flags_response(seq, uid, with_uid=cmd.uid or s.qresync))
    s.send(s.keyword_announcement(changed))
    s.note_held_back()
    if change.modified:
        seqs = ",".join(str(u) if cmd.uid else str(view.seq_of(u)) for u in change.modified)
        s.ok(cmd.tag, "conditional STORE failed for some messages", f"MODIFIED {seqs}")
    else:
        s.ok(cmd.tag, f"{cmd.name} completed")


async def copy(s: IMAPSession, cmd: g.Command) -> None:
    assert isinstance(cmd, g.CopyMove)
    view = s.selected
    if not cmd.uid and not valid_sequence(s, cmd.sequence):
        s.bad(cmd.tag, "invalid message sequence number")
        return
    target = await s.mailbox(cmd.mailbox, target=True)
    move = cmd.name.endswith("MOVE")
    if move and view.readonly:
        s.no(cmd.tag, "mailbox is read-only", "READ-ONLY")
        return
    uids = [u for _n, u in targets(s, cmd.sequence, cmd.uid)]
    if move:
        pairs = await s.s.messages.move(view.mailbox, uids, target, origin=s.origin)
    else:
        pairs = await s.s.messages.copy(view.mailbox, uids, target, user=s.user, origin=s.origin)
    if pairs and (move or target.id == view.mailbox.id):
        view.dirty = True  # our own nudges are skipped
    code = None
    if pairs:
        code = (f"COPYUID {target.uid_validity} {serializer.number_set([p[0] for p in pairs])} "
                f"{serializer.number_set([p[1] for p in pairs])}")
    if move:
        if code:
            s.send(serializer.untagged(f"OK [{code}] moved"))
        await s.sync()
        s.ok(cmd.tag, f"{cmd.name} completed")
    else:
        await s.sync(expunge=cmd.uid)
        s.ok(cmd.tag, f"{cmd.name} completed", code)


#: the result options after which ``$`` keeps every match, not only the MIN/MAX ones (RFC 5182 2.4)
_SAVE_ALL = frozenset({"ALL", "COUNT"})
_EXTREMES = frozenset({"MIN", "MAX"})


async def search(s: IMAPSession, cmd: g.Command) -> None:
    """SEARCH and UID SEARCH: ``* SEARCH``, or with result options (RFC 4731) ``* ESEARCH``; ``SAVE`` (RFC 5182)
    keeps the result for ``$`` (only the MIN/MAX messages when those are asked without ALL or COUNT), and a SAVE
    that fails (NO) leaves ``$`` empty; a BAD one changes nothing."""
    assert isinstance(cmd, g.Search)
    options = cmd.return_options
    if cmd.charset not in (None, "UTF-8", "US-ASCII"):
        refuse_charset(s, cmd.tag, options)
        return
    uids, modseqs, with_modseq = await matching(s, cmd.criteria, uid=cmd.uid, save="SAVE" in options)
    if not options and s.rev2:  # RFC 9051 6.4.4: every SEARCH is answered with ESEARCH, as RETURN (ALL)
        options = ("ALL",)
    answer(s, cmd, "SEARCH", options, uids, modseqs, with_modseq)


def refuse_charset(s: IMAPSession, tag: str, options: tuple[str, ...]) -> None:
    """NO [BADCHARSET] for a SEARCH or SORT in a charset other than UTF-8 and US-ASCII; a SAVE empties ``$``."""
    if "SAVE" in options:
        s.saved_result = EMPTY_RESULT
    s.no(tag, "unsupported charset", "BADCHARSET (UTF-8 US-ASCII)")


async def matching(s: IMAPSession, criteria: g.SearchKey, *, uid: bool,
                   save: bool) -> tuple[list[int], Mapping[int, int], bool]:
    """The UIDs of the messages that match the search ``criteria`` (ascending) and their MODSEQs, after the journal
    was replayed (expunges only for the UID form), and whether a MODSEQ key asks for MODSEQ in the answer (only
    when something matched). ``ALL`` is the view's UIDs, without the search service. With ``save``, ``$`` is empty
    until the caller saves the result: what it stays if the search fails (NO)."""
    await s.sync(expunge=uid)
    view = s.selected
    with_modseq = uses_modseq(criteria)
    if with_modseq:
        s.enable_condstore()
    query = compile_key(criteria, view, dt.datetime.now(dt.UTC), saved=s.saved_result)
    if save:
        s.saved_result = EMPTY_RESULT
    if isinstance(query, q.All):
        return list(view.uids), view.modseqs, False
    found = await s.s.search.search(view.mailbox.id, query, uids=view.uids, flags=view.flags,
                                    modseqs=view.modseqs, recent=frozenset(view.recent))
    return [f.uid for f in found], {f.uid: f.modseq for f in found}, with_modseq and bool(found)


def answer(s: IMAPSession, cmd: g.Search, name: str, options: tuple[str, ...], uids: list[int],
           modseqs: Mapping[int, int], with_modseq: bool) -> None:
    """The answer of SEARCH or SORT (``name``) for the messages ``uids``, in the order of the answer: ``* name
    n ...``, or with result options ``* ESEARCH`` (RFC 4731, ESORT: RFC 5267 4.2, where MIN and MAX are the first
    and last in that order), and the tagged OK; SAVE keeps the result for ``$``. ``modseqs``: their MODSEQs, read
    with ``with_modseq`` only."""
    view = s.selected
    if cmd.uid:
        numbers = uids
    elif len(uids) * 16 > len(view.uids):  # many: one pass over the view rather than a search per message
        position = dict(zip(view.uids, range(1, len(view.uids) + 1), strict=True))
        numbers = [position[u] for u in uids]
    else:
        numbers = [view.seq_of(u) for u in uids]
    if not options:
        line = " ".join([name, *map(str, numbers)])
        if with_modseq:
            line += f" (MODSEQ {max(modseqs[u] for u in uids)})"
        s.send(serializer.untagged(line))
        s.note_held_back()
        s.ok(cmd.tag, f"{cmd.name} completed")
        return
    returned = uids  # the messages MODSEQ covers and SAVE keeps: only MIN/MAX ones if neither ALL nor COUNT
    if uids and _SAVE_ALL.isdisjoint(options) and not _EXTREMES.isdisjoint(options):
        returned = [u for u, kind in ((uids[0], "MIN"), (uids[-1], "MAX")) if kind in options]
    if "SAVE" in options:
        s.saved_result = g.SequenceSet.of_numbers(returned)
    if options != ("SAVE",):  # SAVE alone answers nothing but the tagged OK
        modseq = max(modseqs[u] for u in returned) if with_modseq else None
        s.send(serializer.esearch(cmd.tag, cmd.uid, options, numbers, modseq))
    s.note_held_back()
    s.ok(cmd.tag, f"{cmd.name} completed")
