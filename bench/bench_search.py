#!/usr/bin/env python3
"""SEARCH BODY/TEXT on a big mailbox: the FTS5 trigram index against a full scan, then IMAP end to end; SORT of the
whole mailbox, in its steps and end to end.

    python bench/bench_search.py [--quick] [--messages 100000] [--sort-only] [--skip-steps] [--data DIR]

A mailbox of N synthetic messages (quick: 10,000) is filled through the store (``append_messages`` in batches of
1,000, each message parsed by ``prepare`` like a delivery), with bodies of ~80 words drawn from a 30,000-word
vocabulary, so that a word is in a few dozen messages and a frequent one in many thousands.

Micro (no sockets): ``text_search`` through the index vs the baseline in the same run, a full scan of the same
text in Python (what SEARCH did before the index: read every message's text and look for the needle). Macro: a
real ``wildduck serve`` on the same data, ``UID SEARCH`` over imaplib, time per command.

SORT (RFC 5256) of every message: micro, per key, how the sort keys were read before schema v14 (the records
without content, the keys made of them) against how they are read now (``Messages.sort_keys``: the keys kept at
ingest, from one covering index), and the ordering, in CPU ms; macro, ``UID SORT (key) UTF-8 ALL`` and ``UID THREAD
(REFERENCES|ORDEREDSUBJECT) UTF-8 ALL`` over imaplib, each in a fresh server process: the first command after the
server started (nothing kept in the process) and the median of the repeats, wall-clock and the server's CPU time
(every thread: on a busy machine the steadier figure), against the baseline a client without SORT has,
``UID FETCH 1:* (ENVELOPE INTERNALDATE RFC822.SIZE)`` (what it would fetch to sort by itself). The messages have a
Date header (one in 50 has none: DATE falls back to the internal date), a display name for most senders, and a
subject among 2,000 base subjects, a third of them with ``Re:`` or ``Fwd:``; a third reply to the one before.
``--data DIR`` keeps the filled mailbox (100,000 messages take minutes to fill) and reuses it; a newer schema migrates
it on open (the time is reported): copy it first to compare two builds on the same data.
"""

from __future__ import annotations

import argparse
import imaplib
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wildduck.app import open_services  # noqa: E402
from wildduck.domain.messages import prepare  # noqa: E402
from wildduck.model import NewMessage  # noqa: E402
from wildduck.testing.server import ServerProcess, test_config  # noqa: E402

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(LETTERS) for _ in range(rng.randint(4, 10))))
    return sorted(words)


_PREFIXES = ["", "", "", "", "Re: ", "RE: Re: ", "Fwd: ", "[list] Re: "]
_DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def message(rng: random.Random, words: list[str], n: int) -> bytes:
    # half the words from 300 common ones (each in ~1 message of 8), half from the whole vocabulary
    body = " ".join(rng.choice(words[:300]) if rng.random() < 0.5 else rng.choice(words) for _ in range(80))
    lines = "\r\n".join(body[i:i + 70] for i in range(0, len(body), 70))
    sender = n % 500
    frm = f"sender{sender}@example.net"
    if sender % 5:
        frm = f"Sender {words[sender].title()} <s{sender}@example.net>"
    date = "" if n % 50 == 0 else (f"Date: {_DAYS[n % 7]}, {1 + n % 28:02d} Nov 2026 {n % 24:02d}:{n % 60:02d}:00 "
                                   f"{'+0100' if n % 3 else '-0500'}\r\n")
    # a third of the messages reply to the one before (threads of two and three for THREAD=REFERENCES)
    refs = f"In-Reply-To: <m{n - 1}@example.net>\r\nReferences: <m{n - 1}@example.net>\r\n" if n % 3 and n else ""
    return (f"From: {frm}\r\nTo: user@example.com\r\nSubject: {rng.choice(_PREFIXES)}message {n % 2000} "
            f"{words[n % 2000]}\r\n{date}Message-ID: <m{n}@example.net>\r\n{refs}\r\n{lines}\r\n").encode()


async def populate(data_dir: Path, count: int, words: list[str]) -> tuple[str, float]:
    rng = random.Random(7)
    config = test_config(data_dir)
    started = time.perf_counter()
    async with open_services(config) as services:
        user = await services.users.create("user", "pw", address="user@example.com", quota=1 << 40)
        inbox = await services.backends.mailboxes.find_mailbox(user.id, "INBOX")
        for start in range(0, count, 1000):
            batch = [NewMessage(user.id, inbox.id, prepare(message(rng, words, n)))
                     for n in range(start, min(start + 1000, count))]
            await services.backends.messages.append_messages(batch)
        mailbox_id = inbox.id
    return mailbox_id, time.perf_counter() - started


async def reopen(data_dir: Path) -> tuple[str, float]:
    """The mailbox of a data directory filled before, and how long opening the store took (a migration runs
    then)."""
    started = time.perf_counter()
    async with open_services(test_config(data_dir)) as services:
        opened = time.perf_counter() - started
        user = await services.backends.accounts.find_user("user")
        assert user is not None, f"no user in {data_dir}"
        inbox = await services.backends.mailboxes.find_mailbox(user.id, "INBOX")
    return inbox.id, opened


def timed(fn, repeat: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times = []
    result = None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def scan(db: Path, mailbox_id: str, needle: str) -> set[int]:
    """The baseline: every message's text read and searched in Python."""
    conn = sqlite3.connect(db)
    folded = needle.casefold()
    try:
        return {uid for uid, body in conn.execute(
            "SELECT m.uid, t.body FROM messages m JOIN message_text t ON t.rowid = m.text_id WHERE m.mailbox_id = ?",
            (mailbox_id,)) if folded in body.casefold()}
    finally:
        conn.close()


async def indexed(data_dir: Path, mailbox_id: str, needles: list[str], repeat: int) -> dict[str, tuple[float, int]]:
    out = {}
    async with open_services(test_config(data_dir)) as services:
        for needle in needles:
            times = []
            found: set[int] = set()
            for _ in range(repeat):
                t = time.perf_counter()
                found = await services.backends.search.text_search(mailbox_id, needle, headers_too=False)
                times.append(time.perf_counter() - t)
            out[needle] = (statistics.median(times), len(found))
    return out


SORT_KEYS = ["ARRIVAL", "DATE", "FROM", "SUBJECT", "SIZE", "REVERSE DATE", "DISPLAYFROM", "SUBJECT DATE"]


async def sort_steps(data_dir: Path, mailbox_id: str, repeat: int) -> dict[str, tuple[float, ...]]:
    """Per sort key, for messages whose keys the process does not keep yet (no session, no sockets): the way SORT
    read them before schema v14 (the records without content, read 5,000 per round trip, and the keys made of
    them: the ENVELOPE parsed, the subject and the addresses collated), then the way it reads them now (the keys
    the store kept, ``Messages.sort_keys``, 10,000 per round trip, as records), then the ordering; CPU seconds of
    this process (the store's threads included), medians of ``repeat`` runs. Without ``sort_keys`` (a build from
    before v14) the second column is 0."""
    from wildduck.protocols.imap import sort

    out = {}
    async with open_services(test_config(data_dir)) as services:
        uids = [r.uid for r in await services.messages.summaries(mailbox_id)]
        stored = getattr(services.messages, "sort_keys", None)
        for label in SORT_KEYS:
            criteria = _criteria(label)
            addresses = not {c.key for c in criteria}.isdisjoint(sort.ADDRESS_KEYS)
            runs = []
            for _ in range(repeat):
                t0 = time.process_time()
                records = []
                for start in range(0, len(uids), 5000):
                    records += await services.messages.records(mailbox_id, uids[start:start + 5000], content=False)
                made = [sort.record(r.uid, arrival=r.internal_date.timestamp(),
                                    sent=r.header_date.timestamp() if r.header_date else None, size=r.size,
                                    subject=r.subject, envelope=r.imap_envelope, addresses=addresses)
                        for r in records]
                t1 = time.process_time()
                keys = made
                if stored is not None:
                    keys = []
                    for start in range(0, len(uids), 10_000):
                        keys += map(sort.SortRecord._make, await stored(mailbox_id, uids[start:start + 10_000],
                                                                       addresses=addresses))
                    assert keys == made, label
                t2 = time.process_time()
                sort.order(keys, criteria)
                t3 = time.process_time()
                runs.append((t1 - t0, t2 - t1 if stored is not None else 0.0, t3 - t2))
            out[label] = tuple(statistics.median(r[i] for r in runs) for i in range(3))
    return out


def _criteria(label: str) -> list[Any]:
    from wildduck.protocols.imap import grammar as g

    words, criteria = label.split(), []
    while words:
        reverse = words[0] == "REVERSE"
        criteria.append(g.SortCriterion(words[1] if reverse else words[0], reverse))
        words = words[2:] if reverse else words[1:]
    return criteria


def _cpu(pid: int) -> float:
    """CPU seconds (user and system, every thread) of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _imap(server: ServerProcess) -> imaplib.IMAP4:
    imap = imaplib.IMAP4(*server.address("imap"))
    imap.login("user", "pw")
    imap.select("INBOX", readonly=True)
    return imap


def sort_macro(config: Path, count: int, repeat: int, imap: imaplib.IMAP4 | None = None) -> None:
    """UID SORT per key and UID THREAD per algorithm over imaplib, each in a server process of its own: the first
    command after the server started (nothing of the mailbox kept in the process) and the median of ``repeat``
    more. ``imap``: a session on a server already running, for the baseline."""
    def baseline(session: imaplib.IMAP4) -> float:
        base, reply = timed(lambda: session.uid("FETCH", "1:*", "(ENVELOPE INTERNALDATE RFC822.SIZE)"), repeat)
        assert reply[0] == "OK", reply  # type: ignore[index]
        return base

    if imap is not None:
        base = baseline(imap)
    else:
        with ServerProcess(config) as server:
            session = _imap(server)
            base = baseline(session)
            session.logout()
    print(f"\nSORT and THREAD end to end (a real server, {count:,} messages, imaplib; a fresh server process per "
          f"command), against the baseline a client without SORT has: UID FETCH 1:* (ENVELOPE INTERNALDATE "
          f"RFC822.SIZE) {base * 1000:,.0f} ms\n\n"
          "CPU ms: the server process's (every thread), per command.\n\n"
          "| command | first ms | first CPU ms | again ms | again CPU ms | baseline / first |\n"
          "|---|---:|---:|---:|---:|---:|")
    commands = [("SORT", f"({k})", "UTF-8", "ALL") for k in SORT_KEYS]
    commands += [("THREAD", a, "UTF-8", "ALL") for a in ("REFERENCES", "ORDEREDSUBJECT")]
    for command in commands:
        with ServerProcess(config) as server:
            assert server.proc is not None
            pid = server.proc.pid
            session = _imap(server)
            cpu = _cpu(pid)
            first, reply = timed(lambda c=command, m=session: m.uid(*c), 1)  # type: ignore[misc]
            first_cpu, cpu = _cpu(pid) - cpu, _cpu(pid)
            took, again = timed(lambda c=command, m=session: m.uid(*c), repeat)  # type: ignore[misc]
            again_cpu = (_cpu(pid) - cpu) / repeat
            session.logout()
        for typ, data in (reply, again):  # type: ignore[misc]
            assert typ == "OK", (command, typ)
            if command[0] == "SORT":
                assert len(data[0].split()) == count, command
        assert reply == again, command
        print(f"| UID {' '.join(command)} | {first * 1000:,.0f} | {first_cpu * 1000:,.0f} | {took * 1000:,.0f} | "
              f"{again_cpu * 1000:,.0f} | {base / first:,.1f}× |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--messages", type=int, default=None)
    parser.add_argument("--sort-only", action="store_true", help="only the SORT and THREAD measurements")
    parser.add_argument("--skip-steps", action="store_true", help="not the SORT steps (end to end only)")
    parser.add_argument("--data", type=Path, default=None,
                        help="keep the filled data directory here and reuse it when it holds a mailbox already (a "
                             "newer wildduck migrates it on open: copy it to compare builds)")
    args = parser.parse_args(argv)
    count = args.messages or (10_000 if args.quick else 100_000)
    repeat = 3 if args.quick else 5
    words = vocabulary(random.Random(3), 30_000)
    with tempfile.TemporaryDirectory(prefix="wd-bench-search-") as tmp:
        data_dir = args.data or Path(tmp) / "data"
        db = data_dir / "wildduck.db"
        if db.exists():
            mailbox_id, opened = trio.run(reopen, data_dir)
            print(f"{count:,} messages reused from {data_dir} (opened, migrations included, in {opened:.1f} s)")
        else:
            mailbox_id, fill = trio.run(populate, data_dir, count, words)
            print(f"{count:,} messages stored in {fill:.1f} s ({count / fill:,.0f} msgs/s)")
        size = sum(p.stat().st_size for p in data_dir.glob("wildduck.db*"))
        print(f"database {size / 1e6:.0f} MB")
        if not args.skip_steps:
            steps = trio.run(sort_steps, data_dir, mailbox_id, repeat)
            print(f"\nSORT of {count:,} messages, its steps (no sockets; CPU ms):\n\n| sort key | records read and "
                  "keys made (before v14) | stored keys read | ordered |\n|---|---:|---:|---:|")
            for label, cells in steps.items():
                print(f"| {label} | " + " | ".join(f"{seconds * 1000:,.0f}" for seconds in cells) + " |")
        if args.sort_only:
            sort_macro(_config(tmp, data_dir), count, repeat)
            return
        needles = {"rare word": words[-7], "frequent word": words[0], "phrase": f"{words[0]} {words[1]}",
                   "absent": "qqqzzzxxy", "two letters": "qz"}
        results = trio.run(indexed, data_dir, mailbox_id, list(needles.values()), repeat)
        print("\n| needle | matches | full scan ms | index ms | ratio |\n|---|---:|---:|---:|---:|")
        for label, needle in needles.items():
            base, found = timed(lambda n=needle: scan(db, mailbox_id, n), repeat)  # type: ignore[misc]
            took, matches = results[needle]
            assert matches == len(found), (needle, matches, len(found))  # type: ignore[arg-type]
            print(f"| {label} `{needle}` | {matches:,} | {base * 1000:,.1f} | {took * 1000:,.1f} | "
                  f"{base / took:,.1f}× |")
        with ServerProcess(_config(tmp, data_dir)) as server:
            imap = imaplib.IMAP4(*server.address("imap"))
            imap.login("user", "pw")
            imap.select("INBOX", readonly=True)
            print(f"\nIMAP end to end (a real server, {count:,} messages, imaplib):\n\n| command | matches | ms |\n"
                  "|---|---:|---:|")
            for command in (f"BODY {words[-7]}", f"TEXT {words[-7]}", f'BODY "{words[0]} {words[1]}"',
                            "BODY qqqzzzxxy", "UNSEEN", f"FROM sender7@example.net BODY {words[-7]}"):
                took, reply = timed(lambda c=command: imap.uid("SEARCH", c), repeat)  # type: ignore[misc]
                typ, data = reply  # type: ignore[misc]
                assert typ == "OK", reply
                print(f"| UID SEARCH {command} | {len(data[0].split()):,} | {took * 1000:,.1f} |")
            sort_macro(_config(tmp, data_dir), count, repeat, imap)
            imap.logout()


def _config(tmp: str, data_dir: Path) -> Path:
    config = Path(tmp) / "wildduck.toml"
    config.write_text(f'[server]\ndata_dir = "{data_dir}"\n[lmtp]\nport = 0\n[imap]\nport = 0\ntls_port = 0\n'
                      "[pop3]\nport = 0\ntls_port = 0\n")
    return config


if __name__ == "__main__":
    main()
