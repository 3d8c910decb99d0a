"""IDLE (RFC 2177): push of changes while the client waits.

Two helper tasks for the whole command, one reading the client (its bytes go to the receiver), one waiting for
nudges; each only rings a doorbell and records what it saw. This task alone decides: DONE, the journal, the
timeout, the client gone, the server stopping. No exception is raised inside the helpers' nursery (a helper's
failure is a recorded fact, not control flow), so the session's own goodbye (``* BYE``) is always sent.
"""

from __future__ import annotations

import trio

from wildduck.model import Nudge
from wildduck.protocols.imap import grammar as g
from wildduck.protocols.imap import serializer
from wildduck.protocols.imap.receiver import ConnectionClosed, IdleDone, Mode
from wildduck.sessions._runner import READ_SIZE, SessionEnded
from wildduck.sessions.imap.session import IMAPSession, bye_text


class _Idle:
    def __init__(self, s: IMAPSession) -> None:
        self.s = s
        # a flag and an Event rather than a memory channel: a third of the memory, for every idling session
        self.rung = False
        self.doorbell = trio.Event()
        self.nudged = False
        #: the nudge that ended the account (deleted, disabled, logged out)
        self.account_gone: Nudge | None = None
        self.lost: BaseException | None = None

    def wake(self) -> None:
        self.rung = True
        self.doorbell.set()

    async def reader(self) -> None:
        s = self.s
        try:
            while True:
                data = await s.conn.stream.receive_some(READ_SIZE)
                s.conn.bytes_in += len(data)
                s.rx.receive_data(data)
                self.wake()
                if not data:
                    return
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self.lost = exc
            self.wake()

    async def listener(self) -> None:
        s = self.s
        assert s.login is not None
        async for item in s.login.subscription:  # nudges name mailboxes; the journal says what changed
            if isinstance(item, Nudge) and item.ends_account:
                self.account_gone = item
                self.wake()
            elif s.note(item):  # the selected view's nudges, or with NOTIFY those it wants (RFC 5465 4)
                self.nudged = True
                self.wake()


    async def wait(self, cmd: g.Command) -> str:
        """Answer events until the command ends; returns why ("done", "bad", "timeout", "closed", "gone")."""
        s = self.s
        deadline = trio.current_time() + s.settings.idle_timeout
        while True:
            event = s.rx.next_event()
            if isinstance(event, IdleDone):
                return "done" if event.valid else "bad"
            if isinstance(event, ConnectionClosed) or self.lost is not None:
                return "closed"
            if self.account_gone is not None:
                return "account gone"
            if self.nudged:
                self.nudged = False
                await s.push(idle=True)
                continue
            if not self.rung:
                with trio.move_on_at(deadline) as timer, s.conn.lifecycle.waiting():
                    await self.doorbell.wait()
                if timer.cancelled_caught:
                    return "timeout"
            self.rung = False
            self.doorbell = trio.Event()


async def idle(s: IMAPSession, cmd: g.Command) -> None:
    s.send(serializer.continuation("idling"))
    await s.push(idle=True, force=True)
    s.rx.set_mode(Mode.IDLE)
    state = _Idle(s)
    outcome = "closed"
    error: Exception | None = None
    try:
        async with trio.open_nursery() as helpers:
            helpers.start_soon(state.reader)
            helpers.start_soon(state.listener)
            try:
                outcome = await state.wait(cmd)
            except Exception as exc:  # raised again below: exceptions never cross the nursery (no ExceptionGroup)
                error = exc
            finally:
                helpers.cancel_scope.cancel()
    finally:
        s.rx.set_mode(Mode.NORMAL)
    if error is not None:
        raise error
    if outcome == "done":
        s.ok(cmd.tag, "IDLE terminated")
    elif outcome == "bad":
        s.bad(cmd.tag, "expected DONE")
    elif outcome == "timeout":
        s.send(serializer.untagged("BYE IDLE timed out"))
        raise SessionEnded
    elif outcome == "account gone":
        assert state.account_gone is not None
        s.send(serializer.untagged(f"BYE {bye_text(state.account_gone)}"))
        raise SessionEnded
    else:
        raise SessionEnded
