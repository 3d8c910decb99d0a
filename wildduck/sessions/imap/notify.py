"""NOTIFY (RFC 5465): the events a client asked for, sent while it waits between commands and in IDLE.

A :class:`Notifier` is the session's NOTIFY SET. It is driven by the same nudges as IDLE (the session's
subscription; its ``alarm`` interrupts the wait for the client, ``IMAPSession.read_more``) and answers them in
rounds (:meth:`Notifier.deliver`):

* the selected mailbox (filters ``selected`` and ``selected-delayed``): the view's journal replay, rendered as for
  NOOP (EXPUNGE or VANISHED, FETCH of flags, EXISTS), with MessageNew's FETCH attributes for the new messages;
  ``selected-delayed`` holds expunges back between commands, and with them what the journal has after the first
  one (IDLE and the commands that allow EXPUNGE report them). A flag change's FETCH carries the UID (RFC 5465
  5.1). Without a selected filter nothing is pushed for the selected mailbox (RFC 5465 3.1: ``SELECTED NONE``);
  commands still report its changes as RFC 3501 asks;
* other mailboxes with message events: an untagged STATUS (MESSAGES UIDNEXT UIDVALIDITY UNSEEN, and HIGHESTMODSEQ
  with CONDSTORE or FlagChange) when a nudge names the mailbox and what it reports changed since the client was
  last told (without FlagChange, only a change of MESSAGES, UIDNEXT or UIDVALIDITY counts);
* MailboxName and SubscriptionChange: LIST responses from the difference between two reads of the user's
  hierarchy (created, ``\\NonExistent`` for deleted, ``OLDNAME`` for renamed; ``\\Subscribed`` when subscribed),
  read again on nudges that say the list may have changed (a deletion or rename, a create, a subscription, a
  mailbox the session does not know, a resync).

A mailbox that starts to match a filter with message events after the NOTIFY SET (created, subscribed, renamed
into a subtree by another session) gets a STATUS then (unless it is new and empty): what arrived in it before the
hierarchy was read is not lost.

Changes the client made itself are not notified (RFC 5465 5: SHOULD): nudges of its own origin are skipped, and
after its own CREATE, DELETE, RENAME, SUBSCRIBE or UNSUBSCRIBE the hierarchy is read again without a report (what
its own commands make watched starts from what it holds then, as the mailbox it leaves by a SELECT).

Bounds: one NOTIFY SET watches at most :data:`MAX_WATCHED` mailboxes (more is ``NO [NOTIFICATIONOVERFLOW]``);
one round sends at most :data:`MAX_ROUND_BYTES` and fetches at most :data:`MAX_FETCHED` new messages: past that
the round stops with ``* OK [NOTIFICATIONOVERFLOW]`` and NOTIFY is off, as after NOTIFY NONE (RFC 5465 5.8). Nudges
wait in the subscription's bounded queue (an overflow there is a resync: every watched mailbox is looked at
again), and each round's output is written, under the session's send deadline, before the next round begins.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from wildduck.domain import preview
from wildduck.domain.mailboxes import Hierarchy, HierarchyEntry, normalize_path
from wildduck.domain.sync import Appeared, Change, FlagsChanged
from wildduck.errors import DomainError, InvalidInput, StoreError
from wildduck.model import Mailbox, MailboxStatus, Nudge, Resync
from wildduck.protocols.imap import grammar as g
from wildduck.protocols.imap import serializer
from wildduck.protocols.imap.fetch import UnknownCTE
from wildduck.sessions.imap.commands import _list_line
from wildduck.sessions.imap.selected import FETCH_BATCH, _fetch_from_view, _fetch_meta, _fetch_one
from wildduck.sessions.imap.session import IMAPSession

log = logging.getLogger(__name__)

#: the events this server notifies (RFC 5465 5; no ANNOTATE, no METADATA), as BADEVENT lists them
SUPPORTED = ("MessageNew", "MessageExpunge", "FlagChange", "MailboxName", "SubscriptionChange")
#: mailboxes one NOTIFY SET may watch for message events
MAX_WATCHED = 1000
#: output of one round of notifications, and new messages one round fetches
MAX_ROUND_BYTES = 4 * 1024 * 1024
MAX_FETCHED = 1000
#: the commands that change the user's list of mailboxes or subscriptions
LIST_COMMANDS = frozenset({"CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE"})
_LIST_EVENTS = frozenset({"MailboxName", "SubscriptionChange"})
_META_ITEMS = frozenset({"FLAGS", "UID", "MODSEQ", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE",
                         "EMAILID", "THREADID", "SAVEDATE"})


class Overflow(Exception):
    """More notifications than one round may send."""


@dataclass(frozen=True, slots=True)
class _Filter:
    """A non-selected event group: its filter, the normalized names it gives, its events."""

    kind: str
    names: frozenset[str]
    events: frozenset[str]

    def matches(self, path: str, subscribed: bool) -> bool:
        if self.kind == "PERSONAL":
            return True
        if self.kind == "INBOXES":  # only INBOX receives mail here (RFC 5465 6.3)
            return path == "INBOX"
        if self.kind == "SUBSCRIBED":
            return subscribed
        if self.kind == "MAILBOXES":  # no wildcard expansion (RFC 5465 6.6)
            return path in self.names
        return any(path == n or path.startswith(n + "/") for n in self.names)  # SUBTREE (RFC 5465 6.5)


@dataclass(slots=True)
class _Watch:
    """A mailbox watched for message events: the events, and the STATUS values the client was last told (or
    that were current when watching began)."""

    events: frozenset[str]
    told: tuple[int, ...] | None = None
    #: created after the NOTIFY SET: what it held when created (empty) is what the client knows
    created: bool = False


def _names(s: IMAPSession, raw: Iterable[bytes]) -> frozenset[str]:
    out = set()
    for name in raw:
        try:
            out.add(normalize_path(s.decode_name(name)))
        except InvalidInput:
            continue  # a name no mailbox can have matches nothing
    return frozenset(out)


class Notifier:
    """One NOTIFY SET of a session (see the module's description)."""

    def __init__(self, s: IMAPSession, cmd: g.Notify) -> None:
        self.s = s
        chosen = next((group for group in cmd.groups if group.selected), None)
        self.selected_events = frozenset(chosen.events) if chosen is not None else frozenset()
        self.delayed = chosen is not None and chosen.filter == "SELECTED-DELAYED"
        self.fetch = chosen.fetch if chosen is not None else ()
        self.filters = tuple(_Filter(group.filter, _names(s, group.mailboxes), frozenset(group.events))
                             for group in cmd.groups if not group.selected)
        self.list_events = any(f.events & _LIST_EVENTS for f in self.filters)
        self.tree: Hierarchy | None = None
        #: mailbox id → path, as of the last read of the hierarchy
        self.paths: dict[str, str] = {}
        self.subscriptions: frozenset[str] = frozenset()
        self.watched: dict[str, _Watch] = {}
        self.selected_id: str | None = None
        self.pending: set[str] = set()
        self.list_dirty = False
        self.all_dirty = False

    # -- set up -----------------------------------------------------------------------------------------------
    async def start(self, *, status: bool) -> bool:
        """Read the hierarchy and what the watched mailboxes hold; with ``status`` (SET STATUS) send a STATUS for
        each (RFC 5465 3.1). False when they are more than :data:`MAX_WATCHED`."""
        await self._read_tree()
        self._rewatch()
        if len(self.watched) > MAX_WATCHED:
            return False
        if any(i.name == "MODSEQ" for i in self.fetch):
            self.s.enable_condstore()
        for mailbox_id, watch in self.watched.items():
            st = await self._status(mailbox_id)
            if st is not None:
                watch.told = self._values(st, watch)
                if status:
                    self.s.send(self._status_line(st, watch))
            await self.s.flush_if_large()
        return True

    # -- nudges -------------------------------------------------------------------------------------------------
    def _lists(self, nudge: Nudge) -> bool:
        """Whether a nudge may mean that the list of mailboxes or subscriptions changed."""
        return nudge.gone or nudge.modseq == 0 or nudge.mailbox_id not in self.paths

    def wants(self, nudge: Nudge) -> bool:
        """Whether a nudge (as it is queued) calls for a round now: cheap, and changes nothing."""
        if nudge.ends_account:
            return False
        if self._lists(nudge) and (self.list_events or bool(self.filters)):
            return True
        if nudge.origin == self.s.origin:
            return False
        if nudge.mailbox_id in self.watched:
            return True
        view = self.s.view
        return bool(self.selected_events) and view is not None and view.mailbox.id == nudge.mailbox_id

    def note(self, item: Nudge | Resync, *, selected: bool) -> bool:
        """Take a nudge in (``selected``: the selected view noted it); True if a round has something to do."""
        if isinstance(item, Resync):
            self.all_dirty = self.list_dirty = True
            return True
        wanted = selected and bool(self.selected_events)
        if self._lists(item):
            self.list_dirty = True
            wanted = wanted or self.list_events or bool(self.filters)
        if item.mailbox_id in self.watched and item.origin != self.s.origin:
            self.pending.add(item.mailbox_id)
            wanted = True
        return wanted

    # -- commands -----------------------------------------------------------------------------------------------
    async def before(self, cmd: g.Command) -> None:
        """Before a command that changes the mailbox list: report what others changed first."""
        if cmd.name in LIST_COMMANDS and self.list_dirty:
            await self.deliver(idle=False)

    async def after(self, cmd: g.Command) -> None:
        """After a command: the client's own list changes are not reported (the hierarchy is read again quietly);
        a new selection changes which mailboxes are watched."""
        view = self.s.view
        selected = view.mailbox.id if view is not None else None
        try:
            if cmd.name in LIST_COMMANDS:
                await self._read_tree()
                self.list_dirty = False
            if cmd.name in LIST_COMMANDS or selected != self.selected_id:
                added = self._rewatch()
                if len(self.watched) > MAX_WATCHED:
                    self._overflow()
                    return
                await self._baseline(added)
        except (DomainError, StoreError) as exc:
            log.warning("NOTIFY: could not read the mailboxes: %s", exc)

    # -- rounds -------------------------------------------------------------------------------------------------
    async def deliver(self, *, idle: bool, force: bool = False) -> None:
        """One round: the selected mailbox, the mailbox list, the watched mailboxes that were nudged. A store
        failure skips the rest of the round (the next nudge or resync tries again)."""
        s = self.s
        start = s.conn.bytes_out + s.out_size
        try:
            await self._selected(expunge=idle or not self.delayed, force=force, start=start)
            if self.list_dirty:
                await self._list_round(start)
            await self._status_round(start)
        except Overflow:
            self._overflow()
        except (DomainError, StoreError) as exc:
            log.warning("NOTIFY: a round failed: %s", exc)

    def _overflow(self) -> None:
        """Too much to send: notifications are off, as after NOTIFY NONE (RFC 5465 5.8)."""
        self.s.send(serializer.untagged("OK [NOTIFICATIONOVERFLOW] too many notifications, NOTIFY is off"))
        if self.s.notify is self:
            self.s.notify = None

    def _bound(self, start: int) -> None:
        s = self.s
        if s.conn.bytes_out + s.out_size - start > MAX_ROUND_BYTES:
            raise Overflow

    async def _selected(self, *, expunge: bool, force: bool, start: int) -> None:
        s = self.s
        view = s.view
        if view is None or not self.selected_events:
            return
        changes: list[Change] = await view.refresh(expunge=expunge, force=force)
        s.forget_recent()
        run: list[Change] = []
        for change in changes:  # RFC 5465 5.1: the FETCH of a flag change carries the UID
            if not isinstance(change, FlagsChanged):
                run.append(change)
                continue
            s.render(run)
            run = []
            if "FlagChange" in self.selected_events:
                flags = tuple(f for f in change.flags if f != "\\Recent") if s.rev2 else change.flags
                s.send(s.flags_response(change.seq, change.uid, with_uid=True, flags=flags, modseq=change.modseq))
        s.render(run)
        if self.fetch:
            for change in changes:
                if isinstance(change, Appeared):
                    await self._fetch_new(change.uids, start)

    async def _fetch_new(self, uids: tuple[int, ...], start: int) -> None:
        """MessageNew's FETCH attributes for new messages of the selected mailbox (RFC 5465 5.2): an unsolicited
        FETCH each, as FETCH renders it, never setting \\Seen (BODY[] is answered as BODY.PEEK[])."""
        if len(uids) > MAX_FETCHED:
            raise Overflow
        s = self.s
        view = s.selected
        chosen = [(seq, u) for u in uids if (seq := view.seq_of(u))]
        items = list(self.fetch)
        if (s.rev2 or s.qresync) and not s.uidonly and not any(i.name == "UID" for i in items):
            items.insert(0, g.FetchItem("UID", label="UID"))
        if all(i.name in ("FLAGS", "UID", "MODSEQ") for i in items):
            await _fetch_from_view(s, chosen, items)
            return
        preview_too = any(i.name == "PREVIEW" for i in items)
        content = any(i.name not in _META_ITEMS and i.name != "PREVIEW"
                      and not (i.name == "BODY" and i.section is None) for i in items)
        for at in range(0, len(chosen), FETCH_BATCH):
            batch = chosen[at:at + FETCH_BATCH]
            found = await s.s.messages.records(view.mailbox.id, [u for _n, u in batch], content=content or preview_too)
            records = {r.uid: r for r in found}
            if not content and not preview_too:
                await _fetch_meta(s, batch, items, records, with_flags=False)
            else:
                opened = {o.record.uid: o for o in await s.s.messages.open_records(found)} if content else {}
                texts = await preview.previews(s.s.messages, found) if preview_too else {}
                for seq, uid in batch:
                    record = records.get(uid)
                    if record is None:
                        continue  # expunged meanwhile
                    try:
                        _fetch_one(s, seq, uid, items, record, opened.get(uid), texts, with_flags=False)
                    except UnknownCTE:
                        continue
                    await s.flush_if_large()
                    self._bound(start)
            self._bound(start)

    async def _list_round(self, start: int) -> None:
        """LIST responses for what changed in the mailbox list since it was last read (RFC 5465 5.4, 5.5)."""
        old_paths, old_subs = dict(self.paths), self.subscriptions
        await self._read_tree()
        self.list_dirty = False
        if self.list_events:
            self._report_lists(old_paths, old_subs)
        added = self._rewatch()
        if len(self.watched) > MAX_WATCHED:
            raise Overflow
        # a mailbox that starts to match a filter (created, subscribed, renamed into a subtree) is told about in
        # full: a message may have arrived in it before this read (a new one that is still empty, not)
        for mailbox_id in added:
            self.watched[mailbox_id].created = mailbox_id not in old_paths
        self.pending.update(added)
        self._bound(start)

    def _report_lists(self, old_paths: dict[str, str], old_subs: frozenset[str]) -> None:
        assert self.tree is not None
        s = self.s
        entries = {e.path: e for e in self.tree.entries}
        subs = self.subscriptions
        told: set[str] = set()

        def wanted(event: str, *paths: str) -> bool:
            return any(event in f.events and f.matches(p, p in subs or p in old_subs)
                       for f in self.filters for p in paths)

        def attrs(path: str) -> list[str]:
            entry: HierarchyEntry | None = entries.get(path)
            if entry is None or entry.mailbox is None:
                return ["\\NonExistent"] + (["\\Subscribed"] if path in subs else [])
            out = ["\\HasChildren" if entry.has_children else "\\HasNoChildren"]
            return out + (["\\Subscribed"] if entry.subscribed else [])

        for mailbox_id, path in self.paths.items():
            old = old_paths.get(mailbox_id)
            if old == path or not wanted("MailboxName", path, *(() if old is None else (old,))):
                continue
            line = _list_line(s, "LIST", attrs(path), path)
            if old is not None:  # renamed (RFC 5465 5.4: OLDNAME, RFC 5258's extended data)
                line = line[:-2] + b' ("OLDNAME" (' + s.encode_name(old) + b"))\r\n"
                told.add(old)
            s.send(line)
            told.add(path)
        for mailbox_id, old in old_paths.items():
            if mailbox_id not in self.paths and wanted("MailboxName", old):
                s.send(_list_line(s, "LIST", ["\\NonExistent"], old))
                told.add(old)
        for path in sorted(subs ^ old_subs):
            if path not in told and wanted("SubscriptionChange", path):
                s.send(_list_line(s, "LIST", attrs(path), path))

    async def _status_round(self, start: int) -> None:
        """A STATUS for each nudged watched mailbox whose values changed (RFC 5465 5.1-5.3)."""
        chosen = list(self.watched) if self.all_dirty else [m for m in self.pending if m in self.watched]
        self.all_dirty = False
        self.pending.clear()
        for mailbox_id in chosen:
            watch = self.watched.get(mailbox_id)
            st = await self._status(mailbox_id)
            if watch is None or st is None:
                continue
            values = self._values(st, watch)
            counts = 3 if "FlagChange" not in watch.events else len(values)
            if watch.told is None and watch.created and st.messages == 0 and st.mailbox.uid_next == 1:
                watch.told = values  # nothing arrived between its creation and now
            elif watch.told is None or values[:counts] != watch.told[:counts]:
                self.s.send(self._status_line(st, watch))
                watch.told = values
                self._bound(start)
            await self.s.flush_if_large()

    # -- helpers ------------------------------------------------------------------------------------------------
    async def _read_tree(self) -> None:
        s = self.s
        self.tree = tree = await s.s.mailboxes.hierarchy(s.user.id)
        self.paths = {e.mailbox.id: e.path for e in tree.entries if e.mailbox is not None}
        self.subscriptions = frozenset(e.path for e in tree.entries if e.subscribed)

    def _rewatch(self) -> list[str]:
        """Recompute the watched mailboxes from the hierarchy and the selection; returns the newly watched."""
        assert self.tree is not None
        view = self.s.view
        self.selected_id = view.mailbox.id if view is not None else None
        fresh: dict[str, _Watch] = {}
        for e in self.tree.entries:
            m = e.mailbox
            if m is None or m.id == self.selected_id:  # the selected filters decide for the selected mailbox
                continue
            events = frozenset().union(*(f.events for f in self.filters if f.matches(e.path, e.subscribed)))
            events = events & {"MessageNew", "MessageExpunge", "FlagChange"}
            if events:
                kept = self.watched.get(m.id)
                fresh[m.id] = _Watch(events, kept.told if kept is not None else None)
        added = [m for m in fresh if m not in self.watched]
        self.watched = fresh
        return added

    async def _baseline(self, mailbox_ids: list[str]) -> None:
        """What newly watched mailboxes hold now: changes from here on are reported."""
        for mailbox_id in mailbox_ids:
            watch = self.watched.get(mailbox_id)
            st = await self._status(mailbox_id)
            if watch is not None and st is not None and watch.told is None:
                watch.told = self._values(st, watch)

    async def _status(self, mailbox_id: str) -> MailboxStatus | None:
        s = self.s
        try:
            mailbox: Mailbox = await s.s.mailboxes.get_by_id(mailbox_id)
            return await s.s.mailboxes.status(mailbox, first_unseen=False)
        except DomainError:
            return None  # gone meanwhile: the list round says so

    def _values(self, st: MailboxStatus, watch: _Watch) -> tuple[int, ...]:
        """MESSAGES UIDNEXT UIDVALIDITY UNSEEN, and HIGHESTMODSEQ with CONDSTORE or FlagChange (RFC 5465 5.1-5.3:
        what tells a client that flags changed)."""
        box = st.mailbox
        values = (st.messages, box.uid_next, box.uid_validity, st.unseen)
        return values + (box.highest_modseq,) if self.s.condstore or "FlagChange" in watch.events else values

    def _status_line(self, st: MailboxStatus, watch: _Watch) -> bytes:
        values = self._values(st, watch)
        names = ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ")
        body = " ".join(f"{n} {v}" for n, v in zip(names, values, strict=False))
        return b"* STATUS " + self.s.encode_name(st.mailbox.path) + f" ({body})\r\n".encode()


async def notify(s: IMAPSession, cmd: g.Command) -> None:
    """NOTIFY NONE and NOTIFY SET [STATUS] (RFC 5465 3.1): an unsupported event is NO [BADEVENT (the supported
    ones)]; too many mailboxes NO [NOTIFICATIONOVERFLOW]; a refused SET keeps what was set before. A SET sends
    the selected mailbox's pending changes first (its implicit NOOP)."""
    assert isinstance(cmd, g.Notify)
    if cmd.none:
        s.notify = None
        s.ok(cmd.tag, "NOTIFY completed")
        return
    unknown = [e for group in cmd.groups for e in group.events if e not in SUPPORTED]
    if unknown:
        s.no(cmd.tag, f"unsupported event {unknown[0]}", f"BADEVENT ({' '.join(SUPPORTED)})")
        return
    await s.sync(force=True)
    notifier = Notifier(s, cmd)
    if not await notifier.start(status=cmd.status):
        s.no(cmd.tag, f"NOTIFY would watch more than {MAX_WATCHED} mailboxes", "NOTIFICATIONOVERFLOW")
        return
    s.notify = notifier
    s.ok(cmd.tag, "NOTIFY completed")
