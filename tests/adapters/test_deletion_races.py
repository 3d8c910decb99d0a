"""Deleting a mailbox (or its user) while another instance writes into it: on MongoDB there is no transaction to
keep them apart. Once a deletion has returned, no write on any instance may store into the mailbox again (its
journal ends with a ``GONE`` marker), and what a write that was already under way stored after the mailbox was
emptied is swept by maintenance (``sweep_deleted``): afterwards the store is consistent (no message of no mailbox,
references and storage ledgers exact)."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
import trio

from tests.adapters.conftest import STORES, make_user, prepared
from wildduck.errors import NotFound
from wildduck.model import AppendResult, MailboxSpec, NewMessage

PDF = b"%PDF-1.4 " + bytes(range(256)) * 8


def later() -> dt.datetime:
    """A sweep horizon past every deletion so far."""
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)


@pytest.mark.parametrize("kind", STORES)
async def test_appends_racing_mailbox_deletions_leave_nothing_behind(instances: list[Any]) -> None:
    a, b = instances
    user = await make_user(a)
    rng = random.Random(7)
    late: list[str] = []
    for n in range(12):
        box = await a.create_mailbox(user.id, MailboxSpec(f"Box{n}"))
        deleted = trio.Event()

        async def appender(k: int, n: int = n, box_id: str = box.id, deleted: trio.Event = deleted) -> None:
            for i in range(8):
                after = deleted.is_set()
                [result] = await b.append_messages([NewMessage(user.id, box_id, prepared(
                    f"m{n}-{k}-{i}", attachments=(PDF, f"{n}-{i}".encode() * 50)))])
                if after and isinstance(result, AppendResult):
                    late.append(f"box {n}: an append begun after the deletion stored UID {result.uid}")
                assert isinstance(result, AppendResult | NotFound), result

        async with trio.open_nursery() as nursery:
            nursery.start_soon(appender, 0)
            nursery.start_soon(appender, 1)
            await trio.sleep(rng.uniform(0.0, 0.25))
            await a.delete_mailbox(box.id)
            deleted.set()
        with pytest.raises(NotFound):
            _raise_outcome(await b.append_messages([NewMessage(user.id, box.id, prepared("after"))]))
    assert late == []
    await a.sweep_deleted(later())
    assert await a.check_integrity() == []
    assert await b.sweep_deleted(later()) == 0  # nothing left for a second sweep


def _raise_outcome(results: list[Any]) -> None:
    [result] = results
    if isinstance(result, Exception):
        raise result


@pytest.mark.parametrize("kind", STORES)
async def test_appends_racing_a_user_deletion_leave_nothing_behind(instances: list[Any]) -> None:
    a, b = instances
    for n in range(4):
        user = await make_user(a, f"u{n}")
        inbox = await b.find_mailbox(user.id, "INBOX")

        async def appender(k: int, n: int = n, user_id: str = user.id, inbox_id: str = inbox.id) -> None:
            for i in range(6):
                [result] = await b.append_messages([NewMessage(user_id, inbox_id, prepared(
                    f"u{n}-{k}-{i}", attachments=(PDF,)))])
                assert isinstance(result, AppendResult | NotFound), result

        async with trio.open_nursery() as nursery:
            nursery.start_soon(appender, 0)
            nursery.start_soon(appender, 1)
            await trio.sleep(0.05 * n)
            await a.delete_user(user.id)
    await a.sweep_deleted(later())
    assert await a.check_integrity() == []


@pytest.mark.parametrize("kind", STORES)
async def test_the_sweep_waits_for_its_horizon(instances: list[Any]) -> None:
    """A deletion newer than the horizon is left alone (writes racing it may still be under way)."""
    a, _b = instances
    user = await make_user(a)
    box = await a.create_mailbox(user.id, MailboxSpec("Soon"))
    _raise_outcome(await a.append_messages([NewMessage(user.id, box.id, prepared("x", attachments=(PDF,)))]))
    await a.delete_mailbox(box.id)
    assert await a.sweep_deleted(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)) == 0
    assert await a.sweep_deleted(later()) == 0  # the deletion itself removed the message
    assert await a.check_integrity() == []
