#!/usr/bin/env python3
"""Resynchronizing a 100,000-message INBOX after 1,000 changes made elsewhere: QRESYNC (RFC 7162) against the
full resync of a client without CONDSTORE and against CONDSTORE alone, on wildduck and on Debian's Dovecot in the
same run.

    python bench/bench_qresync.py [--quick] [--messages 100000] [--rounds 5] [--repeat 3] [--changes 1000]
                                   [--settle 2] [--build REV] [--no-dovecot]

The mailbox is the one of ``bench_large_mailbox.py`` (the same generator, the same cache under
``/tmp/wd-bench-large/`` keyed by schema version and message count; Dovecot's maildir written directly), served
by a real ``wildduck serve`` on loopback, then by a private Dovecot. A client has synchronized: it knows
UIDVALIDITY, HIGHESTMODSEQ, UIDNEXT and every UID with its flags (read by a full fetch). Each round, a second
session (logged in all along, INBOX selected) makes ``--changes`` changes: 60 % flag changes on distinct random
messages (``\\Seen``, ``\\Flagged`` or the keyword ``$Label1`` toggled, so every one is a change), 20 % expunges
(``UID STORE +FLAGS.SILENT (\\Deleted)`` + ``UID EXPUNGE``) and 20 % new messages (MULTIAPPEND with LITERAL+, 50
a command). Then the client resynchronizes from what it knew, on a fresh connection (LOGIN is not timed), three
ways:

(a) **QRESYNC**, one round trip: ``ENABLE QRESYNC``, ``SELECT INBOX (QRESYNC (uidvalidity modseq known-uids
    (seq-match-data)))`` and ``UID FETCH <old UIDNEXT>:* (FLAGS)`` pipelined (known-uids limits the server's FETCH
    answers to messages the client knew, RFC 7162 3.2.5.1, so the new ones are fetched by UID); the client applies
    ``* VANISHED (EARLIER)`` and the FETCH answers;
(b) **full**: ``SELECT INBOX``, then ``UID FETCH 1:* (FLAGS)`` (what a client without CONDSTORE does);
(c) **CONDSTORE**: ``SELECT INBOX (CONDSTORE)``, then ``UID FETCH 1:* (FLAGS) (CHANGEDSINCE modseq)`` and
    ``UID SEARCH ALL`` pipelined (the UIDs gone are the known ones SEARCH no longer lists).

After the changes the benchmark waits ``--settle`` seconds (2: a client comes back later, and Dovecot rescans
a maildir changed within the last second), then a fresh connection reads the true state (``SELECT (CONDSTORE)``
+ ``UID FETCH 1:* (FLAGS)``): its SELECT, the first after the changes, is timed on a row of its own (wildduck
brings its shared view of the mailbox up to date there, Dovecot syncs the maildir), so that this cost does not land
on whichever resync comes first. Then each resync runs ``--repeat`` times (3), the order rotating. Time is wall
time from the first command sent to the last tagged reply read (meanwhile the client only looks for the tag;
parsing and applying the answers is timed apart, "client ms"); bytes are what the client received and sent.

**Every resync is checked**: each method's view (UIDs and flags, ``\\Recent`` aside) and the HIGHESTMODSEQ it
would keep must equal the true state, and the true state must equal the benchmark's own model of the mailbox (the
previous state plus the changes it made). A difference is printed and makes the exit status 1. The true state is
what the client knows for the next round. The table holds medians over rounds x repeats.

Both servers' files are on tmpfs (``/dev/shm``, or ``$WILDDUCK_BENCH_TMP``): removing 100,000 maildir files from
this VM's disk, mounted with ``discard``, takes minutes. The resyncs read from memory either way.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from _builds import Build, current_build, report_errors, revision_build  # noqa: E402
from bench_large_mailbox import (  # noqa: E402
    PASSWORD,
    USER,
    fill_maildir,
    message_bytes,
    receive_reply,
    server_config,
)

from wildduck.testing.dovecot import DOVECOT, private_dovecot  # noqa: E402

Flags = frozenset[str]

#: the flags a flag change toggles, with their weights
TOGGLED = [("\\Seen", 5), ("\\Flagged", 3), ("$Label1", 2)]
METHODS = ["qresync", "full", "condstore"]
LABELS = {
    "qresync": "(a) QRESYNC: ENABLE + SELECT (QRESYNC (...)) + UID FETCH new:*, 1 round trip",
    "full": "(b) full: SELECT, UID FETCH 1:* (FLAGS)",
    "condstore": "(c) CONDSTORE: SELECT (CONDSTORE), UID FETCH 1:* (FLAGS) (CHANGEDSINCE m) + UID SEARCH ALL",
}


# -- the wire ---------------------------------------------------------------------------------------------------------

_LITERAL = re.compile(rb"\{(\d+)\+?\}$")


class Conn:
    """A raw IMAP connection: pipelined commands, read to the last one's tagged reply, then split into lines
    (literals kept inline)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.n = 0
        buf = b""
        while b"\r\n" not in buf:
            buf += self.sock.recv(65536)
        self.received = self.sent = 0

    def run(self, *commands: bytes) -> tuple[float, list[bytes], int, int]:
        """Send ``commands`` at once; (seconds to the last tagged reply, the lines, bytes received, bytes sent).
        Every command must end OK."""
        tags = []
        out = []
        for text in commands:
            self.n += 1
            tags.append(b"x%d" % self.n)
            out.append(tags[-1] + b" " + text + b"\r\n")
        data = b"".join(out)
        started = time.perf_counter()
        self.sock.sendall(data)
        reply = receive_reply(self.sock, tags[-1])
        took = time.perf_counter() - started
        lines = split_lines(reply)
        if not lines[-1].startswith(tags[-1] + b" "):
            raise RuntimeError(f"the reply does not end with {tags[-1]!r}: {lines[-1][:200]!r}")
        for tag, text in zip(tags, commands, strict=True):
            status = next((line for line in lines if line.startswith(tag + b" ")), None)
            if status is None or not status[len(tag) + 1:].startswith(b"OK"):
                raise RuntimeError(f"{text[:100]!r}: {status!r}")
        self.received += len(reply)
        self.sent += len(data)
        return took, lines, len(reply), len(data)

    def login(self) -> None:
        self.run(f"LOGIN {USER} {PASSWORD}".encode())

    def close(self) -> None:
        try:
            self.run(b"LOGOUT")
        except (OSError, RuntimeError):
            pass
        self.sock.close()


def split_lines(reply: bytes) -> list[bytes]:
    """The response lines of ``reply`` (CRLF-terminated; a line ending in a literal goes on after it)."""
    lines: list[bytes] = []
    pos = 0
    size = len(reply)
    while pos < size:
        end = reply.find(b"\r\n", pos)
        if end < 0:
            raise RuntimeError(f"a partial line at the end: {reply[pos:pos + 200]!r}")
        if reply[end - 1:end] != b"}":
            lines.append(reply[pos:end])
            pos = end + 2
            continue
        parts = []
        while True:
            line = reply[pos:end]
            m = _LITERAL.search(line)
            if m is None:
                parts.append(line)
                pos = end + 2
                break
            n = int(m.group(1))
            parts.append(line + b"\r\n" + reply[end + 2:end + 2 + n])
            pos = end + 2 + n
            end = reply.find(b"\r\n", pos)
        lines.append(b"".join(parts))
    return lines


def uid_set(uids: Iterable[int]) -> str:
    """Ascending UIDs as an IMAP sequence set with ranges."""
    out: list[str] = []
    start = prev = None
    for uid in uids:
        if prev is not None and uid == prev + 1:
            prev = uid
            continue
        if start is not None:
            out.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = uid
    if start is not None:
        out.append(str(start) if start == prev else f"{start}:{prev}")
    return ",".join(out)


def parse_set(text: bytes) -> Iterable[int]:
    for part in text.split(b","):
        lo, _, hi = part.partition(b":")
        a, b = int(lo), int(hi or lo)
        yield from range(min(a, b), max(a, b) + 1)


_FLAG_SETS: dict[bytes, Flags] = {}


def flags_of(text: bytes) -> Flags:
    """A flag list as a set (case-folded, without ``\\Recent``); one object per distinct list."""
    flags = _FLAG_SETS.get(text)
    if flags is None:
        flags = _FLAG_SETS[text] = frozenset(f for f in text.decode().lower().split() if f != "\\recent")
    return flags


_FETCH = re.compile(rb"\* \d+ FETCH \((.*)\)$")
_UID = re.compile(rb"\bUID (\d+)")
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")
_CODE = re.compile(rb"^\* OK \[(UIDVALIDITY|UIDNEXT|HIGHESTMODSEQ) (\d+)\]")
_APPENDUID = re.compile(rb"\[APPENDUID \d+ ([0-9:,]+)\]")


@dataclass
class Answer:
    """What the client read in a resync."""

    exists: int = -1
    codes: dict[str, int] | None = None
    fetched: dict[int, Flags] | None = None  # in the order received (a later answer for a UID wins)
    vanished: list[int] | None = None
    searched: list[int] | None = None


def read_answer(lines: list[bytes]) -> Answer:
    a = Answer(codes={}, fetched={}, vanished=[], searched=None)
    assert a.codes is not None and a.fetched is not None and a.vanished is not None
    for line in lines:
        if not line.startswith(b"* "):
            continue
        m = _FETCH.match(line)
        if m is not None:
            inner = m.group(1)
            u, f = _UID.search(inner), _FLAGS.search(inner)
            if u is None:
                raise RuntimeError(f"a FETCH answer without UID: {line[:200]!r}")
            if f is not None:
                a.fetched[int(u.group(1))] = flags_of(f.group(1))
            continue
        if line.startswith(b"* VANISHED "):
            rest = line[len(b"* VANISHED "):]
            rest = rest.removeprefix(b"(EARLIER) ")
            a.vanished.extend(parse_set(rest))
        elif line.startswith(b"* SEARCH"):
            a.searched = [int(x) for x in line[len(b"* SEARCH"):].split()]
        elif line.endswith(b" EXISTS"):
            a.exists = int(line.split()[1])
        elif line.endswith(b" EXPUNGE"):
            raise RuntimeError(f"an EXPUNGE during a resync: {line!r}")
        elif (c := _CODE.match(line)) is not None:
            a.codes[c.group(1).decode()] = int(c.group(2))
    return a


# -- the client's state and the three resyncs -------------------------------------------------------------------------

@dataclass
class State:
    """What a synchronized client knows."""

    uid_validity: int
    modseq: int
    uid_next: int
    flags: dict[int, Flags]  # UID → flags, ascending UIDs


@dataclass
class Result:
    took: float
    received: int
    sent: int
    client: float  # seconds spent parsing and applying the answers
    view: dict[int, Flags]
    modseq: int | None  # HIGHESTMODSEQ the client would keep (None: a client without CONDSTORE)


def match_data(uids: list[int]) -> str:
    """Sequence match data as a client keeps it: a few (seq, UID) pairs, denser towards the end."""
    n = len(uids)
    seqs = sorted({1, n} | {n - (1 << k) for k in range(0, 40, 2) if n - (1 << k) >= 1})
    return f"({','.join(map(str, seqs))} {','.join(str(uids[s - 1]) for s in seqs)})"


def resync_qresync(port: int, known: State) -> Result:
    conn = Conn(port)
    try:
        conn.login()
        uids = list(known.flags)
        qresync = f"{known.uid_validity} {known.modseq} {uid_set(uids)} {match_data(uids)}" if uids else \
            f"{known.uid_validity} {known.modseq}"
        took, lines, received, sent = conn.run(
            b"ENABLE QRESYNC", f"SELECT INBOX (QRESYNC ({qresync}))".encode(),
            f"UID FETCH {known.uid_next}:* (FLAGS)".encode())
    finally:
        conn.close()
    started = time.perf_counter()
    a = read_answer(lines)
    assert a.codes is not None and a.fetched is not None and a.vanished is not None
    if a.codes.get("UIDVALIDITY") != known.uid_validity:
        raise RuntimeError("UIDVALIDITY changed")
    view = dict(known.flags)
    for uid in a.vanished:
        view.pop(uid, None)
    view.update(a.fetched)
    client = time.perf_counter() - started
    if a.exists != len(view):
        view[-1] = frozenset({f"EXISTS said {a.exists}, the view holds {len(view)}"})
    return Result(took, received, sent, client, view, a.codes.get("HIGHESTMODSEQ"))


def _session(port: int, *steps: tuple[bytes, ...]) -> tuple[Answer, float, int, int, float]:
    """Log in, run each step's commands (pipelined within a step) in turn; (the answer read from every line,
    seconds the steps took, bytes received, bytes sent, seconds the client took to read the answer)."""
    conn = Conn(port)
    took = 0.0
    lines: list[bytes] = []
    received = sent = 0
    try:
        conn.login()
        for step in steps:
            t, more, r, w = conn.run(*step)
            took, received, sent = took + t, received + r, sent + w
            lines += more
    finally:
        conn.close()
    started = time.perf_counter()
    answer = read_answer(lines)
    return answer, took, received, sent, time.perf_counter() - started


def resync_full(port: int, known: State) -> Result:
    a, took, received, sent, client = _session(port, (b"SELECT INBOX",), (b"UID FETCH 1:* (FLAGS)",))
    started = time.perf_counter()
    assert a.fetched is not None
    view = dict(sorted(a.fetched.items()))
    if a.exists != len(view):
        view[-1] = frozenset({f"EXISTS said {a.exists}, the view holds {len(view)}"})
    return Result(took, received, sent, client + time.perf_counter() - started, view, None)


def resync_condstore(port: int, known: State) -> Result:
    a, took, received, sent, client = _session(
        port, (b"SELECT INBOX (CONDSTORE)",),
        (f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {known.modseq})".encode(), b"UID SEARCH ALL"))
    started = time.perf_counter()
    assert a.codes is not None and a.fetched is not None
    if a.searched is None:
        raise RuntimeError("no SEARCH answer")
    view: dict[int, Flags] = {}
    for uid in a.searched:
        flags = a.fetched.get(uid, known.flags.get(uid))
        view[uid] = flags if flags is not None else frozenset({"(a new message the FETCH did not report)"})
    return Result(took, received, sent, client + time.perf_counter() - started, view, a.codes.get("HIGHESTMODSEQ"))


RESYNCS: dict[str, Callable[[int, State], Result]] = {
    "qresync": resync_qresync, "full": resync_full, "condstore": resync_condstore}


def true_state(port: int) -> tuple[State, float]:
    """The server's state, read by a fresh full fetch; and how long its SELECT took."""
    conn = Conn(port)
    try:
        conn.login()
        took, lines, _, _ = conn.run(b"SELECT INBOX (CONDSTORE)")
        _, more, _, _ = conn.run(b"UID FETCH 1:* (FLAGS)")
    finally:
        conn.close()
    a = read_answer(lines + more)
    assert a.codes is not None and a.fetched is not None
    if a.exists != len(a.fetched):
        raise RuntimeError(f"the true state: EXISTS {a.exists}, {len(a.fetched)} FETCH answers")
    state = State(a.codes["UIDVALIDITY"], a.codes["HIGHESTMODSEQ"], a.codes["UIDNEXT"],
                  dict(sorted(a.fetched.items())))
    return state, took


def differences(got: dict[int, Flags], want: dict[int, Flags], shown: int = 5) -> list[str]:
    out = []
    for uid in sorted(set(got) | set(want)):
        if got.get(uid) != want.get(uid):
            g = sorted(got[uid]) if uid in got else "absent"
            w = sorted(want[uid]) if uid in want else "absent"
            out.append(f"UID {uid}: client {g}, server {w}")
    if len(out) > shown:
        out = out[:shown] + [f"... {len(out) - shown} more"]
    return out


# -- the other session's changes -------------------------------------------------------------------------------------

class Writer:
    """The session that changes the mailbox, and the model of what the mailbox holds after its changes."""

    def __init__(self, port: int, model: dict[int, Flags], seed: int) -> None:
        self.conn = Conn(port)
        self.conn.login()
        self.conn.run(b"SELECT INBOX")
        self.model = dict(model)
        self.seed = seed
        self.appended = 0

    def change(self, round_no: int, count: int, messages: int) -> tuple[float, str]:
        rng = random.Random(self.seed * 1000 + round_no)
        n_flags, n_expunge = count * 6 // 10, count * 2 // 10
        n_append = count - n_flags - n_expunge
        chosen = rng.sample(sorted(self.model), n_flags + n_expunge)
        started = time.perf_counter()
        groups: dict[tuple[str, str], list[int]] = {}
        names, weights = zip(*TOGGLED, strict=True)
        for uid in chosen[:n_flags]:
            flag = rng.choices(names, weights)[0]
            groups.setdefault(("-" if flag.lower() in self.model[uid] else "+", flag), []).append(uid)
        for (op, flag), uids in sorted(groups.items()):
            self.conn.run(f"UID STORE {uid_set(sorted(uids))} {op}FLAGS.SILENT ({flag})".encode())
            f = frozenset({flag.lower()})
            for uid in uids:
                self.model[uid] = (self.model[uid] | f) if op == "+" else (self.model[uid] - f)
        gone = uid_set(sorted(chosen[n_flags:]))
        if gone:
            self.conn.run(f"UID STORE {gone} +FLAGS.SILENT (\\Deleted)".encode())
            self.conn.run(f"UID EXPUNGE {gone}".encode())
            for uid in chosen[n_flags:]:
                del self.model[uid]
        for start in range(0, n_append, 50):
            parts = [b"APPEND INBOX"]
            new_flags = []
            for _ in range(start, min(start + 50, n_append)):
                flags = tuple(f for f, p in (("\\Seen", 0.5), ("\\Flagged", 0.1), ("$Label1", 0.1))
                              if rng.random() < p)
                data = message_bytes(messages + self.appended)
                self.appended += 1
                parts.append(b" (%s) {%d+}\r\n%s" % (" ".join(flags).encode(), len(data), data))
                new_flags.append(frozenset(f.lower() for f in flags))
            _, lines, _, _ = self.conn.run(b"".join(parts))
            m = _APPENDUID.search(lines[-1])
            if m is None:
                raise RuntimeError(f"APPEND without APPENDUID: {lines[-1][:200]!r}")
            uids = list(parse_set(m.group(1)))
            if len(uids) != len(new_flags):
                raise RuntimeError(f"APPENDUID names {len(uids)} UIDs for {len(new_flags)} messages")
            self.model.update(zip(uids, new_flags, strict=True))
        self.conn.run(b"NOOP")
        self.model = dict(sorted(self.model.items()))
        return time.perf_counter() - started, f"{n_flags} flag changes, {n_expunge} expunges, {n_append} appends"

    def close(self) -> None:
        self.conn.close()


# -- one server -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    messages: int
    rounds: int
    repeat: int  # resyncs of each kind per round
    changes: int  # per round
    settle: float  # seconds between the changes and the resyncs


def scenario(name: str, port: int, plan: Plan, errors: list[str]) -> dict[str, list[Result]]:
    """The rounds against one server: changes, the true state, the three resyncs ``repeat`` times each, the
    checks. ``"first SELECT"`` holds the time of the first SELECT after each round's changes (in ``took``)."""
    messages, rounds, repeat, changes = plan.messages, plan.rounds, plan.repeat, plan.changes
    started = time.perf_counter()
    known, _ = true_state(port)  # also the warm-up (the first SELECT of the mailbox)
    print(f"  {name}: {len(known.flags):,} messages, HIGHESTMODSEQ {known.modseq}, first full read "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    if len(known.flags) != messages:
        raise SystemExit(f"{name}: the mailbox holds {len(known.flags)} messages, not {messages}")
    writer = Writer(port, known.flags, seed=1)
    results: dict[str, list[Result]] = {m: [] for m in [*METHODS, "first SELECT"]}
    try:
        for r in range(rounds):
            took, what = writer.change(r, changes, messages)
            time.sleep(plan.settle)  # a client comes back later (and Dovecot rescans a maildir changed within 1 s)
            # the first SELECT after the changes brings the server's shared view of the mailbox up to date
            # (wildduck), whichever resync comes first: it is timed on its own row, not in a method's
            truth, first = true_state(port)
            results["first SELECT"].append(Result(first, 0, 0, 0.0, {}, None))
            for problem in differences(truth.flags, writer.model):
                errors.append(f"{name} round {r + 1}: the server's state differs from the changes made: {problem}")
            done: dict[str, list[Result]] = {m: [] for m in METHODS}
            for i in range(repeat):
                k = (r * repeat + i) % 3
                for m in METHODS[k:] + METHODS[:k]:
                    res = RESYNCS[m](port, known)
                    for problem in differences(res.view, truth.flags):
                        errors.append(f"{name} round {r + 1} {m}: {problem}")
                    if res.modseq is not None and res.modseq != truth.modseq:
                        errors.append(f"{name} round {r + 1} {m}: HIGHESTMODSEQ {res.modseq}, the server's is "
                                      f"{truth.modseq}")
                    res.view = {}  # checked: 100,000 entries per resync are not kept
                    done[m].append(res)
            for m in METHODS:
                results[m] += done[m]
            print(f"  {name} round {r + 1}: changes ({what}) {took:.2f} s; first SELECT {first * 1000:,.1f} ms; "
                  + ", ".join(f"{m} " + "/".join(f"{x.took * 1000:,.1f}" for x in done[m]) + " ms "
                              f"{done[m][0].received / 1000:,.1f} KB" for m in METHODS), flush=True)
            known = truth
    finally:
        writer.close()
    return results


def run_wildduck(build: Build, plan: Plan, workdir: Path, errors: list[str]) -> dict[str, list[Result]]:
    config = server_config(build, plan.messages, workdir)
    try:
        with build.server(config) as server:
            results = scenario(build.label, server.address("imap")[1], plan, errors)
            errors.extend(f"{build.label} server log: {line}" for line in server.log if " ERROR " in line)
            return results
    finally:
        shutil.rmtree(workdir / "data", ignore_errors=True)


def run_dovecot(binary: str, plan: Plan, workdir: Path, errors: list[str]) -> dict[str, list[Result]]:
    directory = workdir / "dovecot"
    shutil.rmtree(directory, ignore_errors=True)
    maildir = directory / "home" / USER / "Maildir"
    started = time.perf_counter()
    fill_maildir(maildir, plan.messages)
    print(f"  dovecot: maildir written in {time.perf_counter() - started:.1f} s", flush=True)
    try:
        with private_dovecot(directory, USER, PASSWORD, binary=binary, speed=True) as instance:
            owner = maildir.parent.stat()
            subprocess.run(["chown", "-R", f"{owner.st_uid}:{owner.st_gid}", str(maildir)], check=True)
            return scenario("dovecot", instance.port, plan, errors)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# -- the table ------------------------------------------------------------------------------------------------------

def med(results: list[Result], key: Callable[[Result], float]) -> float:
    return statistics.median(key(r) for r in results)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10,000 messages, 3 rounds")
    parser.add_argument("--messages", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3, help="resyncs of each kind per round (default 3)")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds between the changes and the resyncs")
    parser.add_argument("--changes", type=int, default=1000, help="changes per round (default 1,000)")
    parser.add_argument("--build", default=None, metavar="REV", help="measure REV instead of this tree")
    parser.add_argument("--dovecot", default=os.environ.get("DOVECOT", DOVECOT))
    parser.add_argument("--no-dovecot", action="store_true")
    args = parser.parse_args(argv)
    messages = args.messages or (10_000 if args.quick else 100_000)
    rounds = args.rounds or (3 if args.quick else 5)
    repeat = args.repeat
    plan = Plan(messages, rounds, repeat, args.changes, args.settle)
    if args.changes * 8 // 10 > messages:
        parser.error("--changes is too large for the mailbox")
    build = revision_build(args.build) if args.build else current_build()
    print(build.describe())
    dovecot = None if args.no_dovecot else shutil.which(args.dovecot)
    if not args.no_dovecot and dovecot is None:
        print(f"Dovecot not found ({args.dovecot}): apt-get install dovecot-imapd, or --no-dovecot", file=sys.stderr)
        raise SystemExit(2)
    errors: list[str] = []
    results: dict[str, dict[str, list[Result]]] = {}
    # on tmpfs when there is one: removing 100,000 maildir files from this VM's disk (mounted with discard) takes
    # minutes; both servers' files are there (the resyncs read from memory either way)
    scratch = os.environ.get("WILDDUCK_BENCH_TMP", "/dev/shm" if os.path.isdir("/dev/shm") else None)
    with tempfile.TemporaryDirectory(prefix="wd-bench-qresync-", dir=scratch) as tmp:
        Path(tmp).chmod(0o755)  # Dovecot's unprivileged processes read their files below it
        print(f"measuring {build.label} ...", flush=True)
        results[build.label] = run_wildduck(build, plan, Path(tmp), errors)
        if dovecot:
            print("measuring dovecot ...", flush=True)
            results["dovecot"] = run_dovecot(dovecot, plan, Path(tmp), errors)
    names = list(results)
    print(f"\n{messages:,} messages, {args.changes:,} changes per round, medians of {rounds} rounds x {repeat} "
          "(ms: wall time of the resync; KB received / sent; client ms: parsing and applying the answers)\n")
    head = ["resync"]
    for n in names:
        head += [f"{n} ms", f"{n} KB recv / sent", f"{n} client ms"]
    if len(names) > 1:
        head.append(f"{names[0]}/{names[1]} time")
    print("| " + " | ".join(head) + " |")
    print("|---|" + "---:|" * (len(head) - 1))
    for m in METHODS:
        cells = [LABELS[m]]
        for n in names:
            rs = results[n][m]
            cells += [f"{med(rs, lambda r: r.took) * 1000:,.1f}",
                      f"{med(rs, lambda r: r.received) / 1000:,.1f} / {med(rs, lambda r: r.sent) / 1000:,.1f}",
                      f"{med(rs, lambda r: r.client) * 1000:,.1f}"]
        if len(names) > 1:
            a, b = (med(results[n][m], lambda r: r.took) for n in names[:2])
            cells.append(f"{a / b:,.2f}×")
        print("| " + " | ".join(cells) + " |")
    for other in ("full", "condstore"):
        cells = [f"**{other} / QRESYNC**"]
        for n in names:
            rs, q = results[n][other], results[n]["qresync"]
            cells += [f"**{med(rs, lambda r: r.took) / med(q, lambda r: r.took):,.1f}×**",
                      f"{med(rs, lambda r: r.received) / med(q, lambda r: r.received):,.1f}×", ""]
        if len(names) > 1:
            cells.append("")
        print("| " + " | ".join(cells) + " |")
    cells = ["first SELECT after the changes (not in the rows above)"]
    for n in names:
        cells += [f"{med(results[n]['first SELECT'], lambda r: r.took) * 1000:,.1f}", "", ""]
    if len(names) > 1:
        a, b = (med(results[n]["first SELECT"], lambda r: r.took) for n in names[:2])
        cells.append(f"{a / b:,.2f}×")
    print("| " + " | ".join(cells) + " |")
    print()
    for n in names:
        for m in ("full", "condstore"):
            per_round = []
            for r in range(rounds):
                part = slice(r * repeat, (r + 1) * repeat)
                per_round.append(med(results[n][m][part], lambda x: x.took)
                                 / med(results[n]["qresync"][part], lambda x: x.took))
            print(f"{n}: {m} / QRESYNC time per round: " + ", ".join(f"{x:,.1f}" for x in per_round))
    report_errors("wrong answers", errors, 30)
    if errors:
        raise SystemExit(1)
    print("\nevery resync's view (UIDs, flags, HIGHESTMODSEQ) equalled the server's state, which equalled the changes "
          "made")


if __name__ == "__main__":
    main()
