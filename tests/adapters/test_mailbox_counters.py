"""The mailbox counters STATUS reads (messages, unseen, size: kept with the mailbox, never counted) equal a recount
after any mix of appends, copies, moves, expunges, flag changes, POP3's flag-and-move and mailbox deletions, also
when two stores (two processes) write to one database, and when a change fails half-way (quota)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.adapters.conftest import STORES, make_user, open_instances, open_store, prepared
from wildduck.adapters.sqlite import open_sqlite_store
from wildduck.errors import QuotaExceeded
from wildduck.model import FlagMode, MailboxSpec, NewMessage, User

FLAGS = ["\\Seen", "\\Flagged", "\\Deleted", "$x", "\\seen"]
flag_lists = st.lists(st.sampled_from(FLAGS), max_size=3, unique=True).map(tuple)
uid_lists = st.lists(st.integers(1, 12), max_size=5)
box_numbers = st.integers(0, 2)

operations = st.lists(st.one_of(
    st.tuples(st.just("append"), box_numbers, st.lists(flag_lists, min_size=1, max_size=4),
              st.integers(1, 400)),
    st.tuples(st.just("flags"), box_numbers, uid_lists, st.sampled_from(list(FlagMode)), flag_lists),
    st.tuples(st.just("copy"), box_numbers, uid_lists, box_numbers),
    st.tuples(st.just("move"), box_numbers, uid_lists, box_numbers),
    st.tuples(st.just("expunge"), box_numbers, uid_lists),
    st.tuples(st.just("flag_and_move"), box_numbers, uid_lists, uid_lists, st.one_of(st.none(), box_numbers)),
    st.tuples(st.just("delete"), box_numbers),
), max_size=12)


async def recount_matches(store: Any, box_ids: list[str]) -> None:
    for box_id in box_ids:
        status = await store.mailbox_status(box_id)
        snapshot = await store.mailbox_snapshot(box_id)
        records = await store.get_messages(box_id, [m.uid for m in snapshot.messages], content=False)
        unseen = [m.uid for m in snapshot.messages if "\\Seen" not in m.flags]
        first = snapshot.messages.index(next(m for m in snapshot.messages if m.uid == unseen[0])) + 1 if unseen else 0
        recent = sum(m.uid >= snapshot.mailbox.recent_from for m in snapshot.messages)
        assert (status.messages, status.unseen, status.size, status.first_unseen, status.recent) == (
            len(records), len(unseen), sum(r.size for r in records), first, recent)
        quick = await store.mailbox_status(box_id, first_unseen=False)
        assert (quick.messages, quick.unseen, quick.size, quick.first_unseen) == (
            status.messages, status.unseen, status.size, None)
    assert await store.check_integrity() == []


async def run(stores: list[Any], user: User, ops: list[tuple[Any, ...]], names: itertools.count[int]) -> None:
    boxes = [(await stores[0].create_mailbox(user.id, MailboxSpec(f"b{next(names)}"))).id for _ in range(3)]
    for step, op in enumerate(ops):
        store = stores[step % len(stores)]
        kind, box = op[0], boxes[op[1]]
        try:
            if kind == "append":
                await store.append_messages([NewMessage(user.id, box, prepared("x" * op[3]), flags, quota=6000)
                                             for flags in op[2]])
            elif kind == "flags":
                await store.set_flags(box, op[2], op[3], list(op[4]))
            elif kind in ("copy", "move"):
                await store.copy_messages(box, op[2], boxes[op[3]], move=kind == "move", quota=6000)
            elif kind == "expunge":
                await store.expunge(box, op[2])
            elif kind == "flag_and_move":
                await store.flag_and_move(box, op[2], ["\\Seen"], op[3], None if op[4] is None else boxes[op[4]])
            else:
                await store.delete_mailbox(box)
                boxes[op[1]] = (await store.create_mailbox(user.id, MailboxSpec(f"b{next(names)}"))).id
        except QuotaExceeded:
            pass  # the whole change is rolled back, counters included
    await recount_matches(stores[0], boxes)
    for box in boxes:  # each run leaves the store as small as it found it
        await stores[0].delete_mailbox(box)


@pytest.mark.parametrize("kind", STORES)
def test_counters_equal_a_recount(kind: str, tmp_path: Path) -> None:
    async def start() -> tuple[Any, User]:
        store = await open_store(kind, tmp_path)
        return store, await make_user(store, quota=1 << 30)

    store, user = trio.run(start)
    names = itertools.count()

    @settings(max_examples=150, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(operations)
    def check(ops: list[tuple[Any, ...]]) -> None:
        trio.run(run, [store], user, ops, names)

    try:
        check()
    finally:
        trio.run(store.close)


@pytest.mark.parametrize("kind", STORES)
def test_counters_with_two_writers_on_one_database(kind: str, tmp_path: Path) -> None:
    """Two stores on one database (two processes or instances: SQLite serializes their transactions, MongoDB has
    none), taking turns and running at the same time."""
    async def main() -> None:
        a, b = await open_instances(kind, tmp_path)
        try:
            user = await make_user(a, quota=1 << 30)
            names = itertools.count()
            ops: list[tuple[Any, ...]] = [("append", 0, [("\\Seen",), (), ("$x",)], 10), ("append", 1, [()], 20),
                                          ("flags", 0, [1, 2], FlagMode.ADD, ("\\Seen",)), ("copy", 0, [1, 2, 3], 1),
                                          ("move", 1, [1, 2], 2), ("flag_and_move", 2, [1], [2], None),
                                          ("expunge", 0, [3]), ("flags", 1, [3, 4], FlagMode.REPLACE, ())]
            await run([a, b], user, ops, names)
            box_a = await a.create_mailbox(user.id, MailboxSpec("shared"))

            async def writer(store: Any, n: int) -> None:
                for i in range(15):
                    await store.append_messages([NewMessage(user.id, box_a.id, prepared(f"m{n}{i}"),
                                                            ("\\Seen",) if i % 2 else ())])
                    await store.set_flags(box_a.id, [1 + (i * 7 + n) % 10], FlagMode.REPLACE,
                                          ["\\Seen"] if i % 3 else [])
                    if i % 5 == 4:
                        await store.expunge(box_a.id, [1 + (i + n) % 12])

            async with trio.open_nursery() as nursery:
                nursery.start_soon(writer, a, 0)
                nursery.start_soon(writer, b, 1)
            await recount_matches(a, [box_a.id])
            await recount_matches(b, [box_a.id])
        finally:
            await a.close()
            await b.close()

    trio.run(main)


def test_counters_survive_a_crash(tmp_path: Path) -> None:
    """A store that goes away without closing (a crash: its connections dropped, WAL left behind) leaves counters
    that equal a recount when the database is opened again."""
    async def main() -> None:
        path = tmp_path / "crash.db"
        s = await open_sqlite_store(path)
        user = await make_user(s, quota=1 << 30)
        inbox = await s.find_mailbox(user.id, "INBOX")
        await s.append_messages([NewMessage(user.id, inbox.id, prepared(), flags) for flags in [(), ("\\Seen",)]])
        await s.set_flags(inbox.id, [1], FlagMode.ADD, ["\\Seen"])
        for conn in s._all:  # no checkpoint, no clean close
            conn.close()
        s._all.clear()
        s._writer = None
        await s._group_writer.stop()
        s._reader_threads.stop()
        again = await open_sqlite_store(path)
        try:
            status = await again.mailbox_status(inbox.id)
            assert (status.messages, status.unseen) == (2, 0)
            await recount_matches(again, [inbox.id])
        finally:
            await again.close()

    trio.run(main)
