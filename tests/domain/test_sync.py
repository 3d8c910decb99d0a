"""The selected-mailbox view and its journal replay, over the real SQLite store."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import trio

from wildduck.app import open_services
from wildduck.domain.sync import Appeared, Expunged, FlagsChanged
from wildduck.model import FlagMode
from wildduck.testing.server import test_config as make_config

MESSAGE = b"Subject: s\r\n\r\nbody\r\n"


async def test_a_flag_change_then_an_expunge_in_one_replay_reports_the_flags_as_they_were(tmp_path: Path) -> None:
    """Regression (ImapTest stress): the FETCH of a flag change was rendered after the whole replay, when a later
    expunge in the same replay had already dropped the message: ``* 1 FETCH (FLAGS () MODSEQ (0))``."""
    async with open_services(make_config(tmp_path)) as s:
        alice = await s.users.create("alice", "pw", address="alice@example.com")
        inbox = await s.mailboxes.get(alice.id, "INBOX")
        first = await s.messages.append(alice, inbox, MESSAGE)
        view = await s.sync.open_view(inbox, readonly=False, origin="me")
        change = await s.messages.set_flags(inbox, [first.uid], FlagMode.ADD, ["\\Seen"], origin="other")
        await s.messages.expunge(inbox, [first.uid], origin="other")
        second = await s.messages.append(alice, inbox, MESSAGE, origin="other")
        changes = await view.refresh(force=True)
        assert changes == [
            FlagsChanged(1, first.uid, ("\\Seen", "\\Recent"), change.changed[0].modseq),
            Expunged(1, first.uid),
            Appeared((second.uid,), 1, 1),
        ]
        assert list(view.uids) == [second.uid] and view.known_modseq >= second.modseq


class Counting:
    """The real store, counting the journal reads and \\Recent claims that reach it."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.reads: list[int] = []
        self.claims: list[int] = []

    async def read_journal(self, mailbox_id: str, since: int) -> Any:
        self.reads.append(since)
        return await self.store.read_journal(mailbox_id, since)

    async def claim_recent(self, mailbox_id: str, up_to: int) -> int:
        self.claims.append(up_to)
        return int(await self.store.claim_recent(mailbox_id, up_to))


async def test_sessions_woken_together_share_one_journal_read_and_one_claim(tmp_path: Path) -> None:
    """Fifty views of one mailbox, a delivery, fifty refreshes at once: one read, one claim; each view gets its
    own entries, and the new messages are \\Recent in exactly one view."""
    async with open_services(make_config(tmp_path)) as s:
        alice = await s.users.create("alice", "pw", address="alice@example.com")
        inbox = await s.mailboxes.get(alice.id, "INBOX")
        await s.messages.append(alice, inbox, MESSAGE)
        views = [await s.sync.open_view(inbox, readonly=False, origin=f"v{i}") for i in range(50)]
        behind = views[0]
        counting = Counting(s.backends.journal)
        s.sync.shared.journal = counting  # type: ignore[assignment]
        s.sync.shared.messages = counting  # type: ignore[assignment]
        flagged = await s.messages.set_flags(inbox, [1], FlagMode.ADD, ["\\Flagged"], origin="other")
        await behind.refresh(force=True)  # one view is ahead of the others by that flag change
        counting.reads.clear()
        new = [await s.messages.append(alice, inbox, MESSAGE, origin="other") for _ in range(3)]
        results: dict[int, list[Any]] = {}

        async def refresh(i: int) -> None:
            results[i] = await views[i].refresh(force=True)

        async with trio.open_nursery() as nursery:
            for i in range(len(views)):
                nursery.start_soon(refresh, i)
        assert len(counting.reads) == 1 and counting.reads[0] < flagged.changed[0].modseq
        assert counting.claims == [new[-1].uid + 1]
        uids = tuple(m.uid for m in new)
        for i, changes in results.items():
            appeared = [c for c in changes if isinstance(c, Appeared)]
            assert [a.uids for a in appeared] == [uids], i
            flags = [c for c in changes if isinstance(c, FlagsChanged)]
            assert len(flags) == (0 if i == 0 else 1), i  # the view that knew the flag change is not told again
        assert sum(len(v.recent & set(uids)) for v in views) == len(uids)  # each new message recent once
        assert [len(v.recent & set(uids)) for v in views].count(len(uids)) == 1


async def test_a_read_that_started_is_not_joined(tmp_path: Path) -> None:
    """A refresh that asks after the shared read began gets a read of its own (it must see what it was nudged
    about)."""
    async with open_services(make_config(tmp_path)) as s:
        alice = await s.users.create("alice", "pw", address="alice@example.com")
        inbox = await s.mailboxes.get(alice.id, "INBOX")
        early = await s.sync.open_view(inbox, readonly=True, origin="a")
        late = await s.sync.open_view(inbox, readonly=True, origin="b")
        counting = Counting(s.backends.journal)
        s.sync.shared.journal = counting  # type: ignore[assignment]
        await s.messages.append(alice, inbox, MESSAGE, origin="other")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(early.refresh, force=True))
            await trio.lowlevel.checkpoint()
            await trio.lowlevel.checkpoint()  # the first read has started
            second = await s.messages.append(alice, inbox, MESSAGE, origin="other")
            late.dirty = True
            changes = await late.refresh()
        assert len(counting.reads) == 2
        assert [c for c in changes if isinstance(c, Appeared)][0].uids[-1] == second.uid
