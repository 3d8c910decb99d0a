"""The selected-mailbox view and its journal replay, over the real SQLite store."""

from __future__ import annotations

from pathlib import Path

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
