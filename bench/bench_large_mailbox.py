#!/usr/bin/env python3
"""A 100,000-message INBOX: SELECT, EXAMINE, ``UID FETCH 1:* (FLAGS)``, ``FETCH 1:* (ENVELOPE)``, STATUS, SEARCH on
a header address, the sent date, a subject word and the size, SORT by ARRIVAL, DATE, FROM, SUBJECT and SIZE, THREAD
by REFERENCES and ORDEREDSUBJECT, and the server's memory with the mailbox selected, against Debian's Dovecot in the
same run.

    python bench/bench_large_mailbox.py [--quick] [--messages 100000] [--repeat 5] [--against REV] [--no-dovecot]

The wildduck mailbox is filled through the store (``prepare`` + ``append_messages`` in batches of 1,000, run with
each build's own interpreter, so that a revision fills a database of its own schema) and kept under
``/tmp/wd-bench-large/`` (``$WILDDUCK_BENCH_CACHE``) per schema version and message count: later runs copy it.
Dovecot's maildir is written directly (``cur/`` files with their flags in the name, no keywords).
Messages: ~1 KB each, a From/To/Subject/Date/Message-ID header and a short text body; 70 % are ``\\Seen``, 5 %
``\\Flagged``, 2 % ``\\Answered``; wildduck's also carry a keyword on 1 % (Dovecot's have none).

The client is a raw socket (no parsing beyond finding the tagged reply), one connection per server, on loopback.
Each command runs ``--repeat`` times and the table holds medians; the first SELECT (cold: the server's caches and,
for Dovecot, its index are built) is reported on its own row, and so is the first of each SORT and THREAD (in the
order of :data:`ORDERINGS`, before the repeats: what a server keeps of one, e.g. wildduck's sort keys read by SORT
ARRIVAL, serves the next ones; ``bench_search.py`` measures each in a fresh process). Each SORT and THREAD answer
must hold every message, and is compared with Dovecot's. The server's RSS is read with the mailbox selected
(wildduck: the server process; Dovecot: the ``imap`` process serving the connection). Each SEARCH reply is checked
against the number of messages the generator made to match (:data:`SEARCHES`).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from _builds import Build, current_build, fill_once, revision_build  # noqa: E402

from wildduck.testing.dovecot import DOVECOT, private_dovecot  # noqa: E402
from wildduck.testing.server import process_memory  # noqa: E402

USER, PASSWORD = "bench", "benchpass"
CACHE = Path(os.environ.get("WILDDUCK_BENCH_CACHE", "/tmp/wd-bench-large"))

#: runs with the build's own Python (cwd = the build's tree): fills DATA_DIR with COUNT messages
FILL = r'''
import datetime as dt, random, sys, trio
from pathlib import Path
sys.path.insert(0, ".")
from wildduck.app import open_services
try:
    from wildduck.domain.messages import prepare
except ImportError:
    from wildduck.domain.delivery import prepare
from wildduck.model import NewMessage
from wildduck.testing.server import test_config
sys.path.insert(0, sys.argv[3])
from bench_large_mailbox import message_bytes, message_flags

async def main(data_dir, count):
    async with open_services(test_config(Path(data_dir))) as services:
        user = await services.users.create("bench", "benchpass", address="bench@example.com", quota=1 << 40)
        store = services.store if hasattr(services, "store") else services.backends.messages
        inbox = await services.backends.mailboxes.find_mailbox(user.id, "INBOX") if not hasattr(
            services, "store") else await store.find_mailbox(user.id, "INBOX")
        base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        for start in range(0, count, 1000):
            batch = [NewMessage(user.id, inbox.id, prepare(message_bytes(n)), flags=message_flags(n, True),
                                internal_date=base + dt.timedelta(minutes=n))
                     for n in range(start, min(start + 1000, count))]
            await store.append_messages(batch)

trio.run(main, sys.argv[1], int(sys.argv[2]))
'''


def message_bytes(n: int) -> bytes:
    rng = random.Random(n)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo"]
    body = " ".join(rng.choice(words) for _ in range(120))
    lines = "\r\n".join(body[i:i + 72] for i in range(0, len(body), 72))
    day = 1 + n % 28
    return (f"From: Sender {n % 500} <sender{n % 500}@example.net>\r\nTo: Bench <bench@example.com>\r\n"
            f"Cc: list{n % 7}@example.org\r\nSubject: message number {n} about {rng.choice(words)}\r\n"
            f"Date: Mon, {day:02d} Jan 2024 10:{n % 60:02d}:00 +0000\r\nMessage-ID: <m{n}@example.net>\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{lines}\r\n").encode()


#: (label, command, which generated messages match): the SEARCH keys answered from the header, the date and the size
SEARCHES: list[tuple[str, str, Callable[[int, bytes], bool]]] = [
    ("UID SEARCH FROM <address>", "UID SEARCH FROM sender7@example.net", lambda n, raw: n % 500 == 7),
    ("UID SEARCH SENTSINCE <date>", "UID SEARCH SENTSINCE 28-Jan-2024", lambda n, raw: n % 28 == 27),
    ("UID SEARCH SUBJECT <word>", "UID SEARCH SUBJECT juliet",
     lambda n, raw: b"juliet" in raw.split(b"\r\nSubject: ", 1)[1].split(b"\r\n", 1)[0]),
    ("UID SEARCH LARGER <n>", "UID SEARCH LARGER 1060", lambda n, raw: len(raw) > 1060),
]


#: (label, command): SORT (RFC 5256) of the whole mailbox by each key the issue names, and THREAD by both
#: algorithms; every answer must hold every message, and each server's answer is compared with Dovecot's
ORDERINGS: list[tuple[str, str]] = [
    *((f"UID SORT ({key})", f"UID SORT ({key}) UTF-8 ALL") for key in ("ARRIVAL", "DATE", "FROM", "SUBJECT", "SIZE")),
    *((f"UID THREAD {algorithm}", f"UID THREAD {algorithm} UTF-8 ALL") for algorithm in ("REFERENCES",
                                                                                         "ORDEREDSUBJECT")),
]


def ordering_answer(reply: bytes, label: str) -> bytes:
    """The ``* SORT`` / ``* THREAD`` line of ``reply``."""
    word = b"* SORT" if "SORT" in label else b"* THREAD"
    return reply[reply.index(word):].split(b"\r\n", 1)[0]


def search_counts(count: int) -> dict[str, int]:
    """How many of the ``count`` generated messages each of :data:`SEARCHES` finds."""
    raws = [message_bytes(n) for n in range(count)]
    return {label: sum(matches(n, raw) for n, raw in enumerate(raws)) for label, _, matches in SEARCHES}


def message_flags(n: int, keywords: bool) -> tuple[str, ...]:
    r = (n * 2654435761) % 100
    flags: list[str] = []
    if r < 70:
        flags.append("\\Seen")
    if r % 20 == 3:
        flags.append("\\Flagged")
    if r % 50 == 7:
        flags.append("\\Answered")
    if keywords and r == 42:
        flags.append("$Important")
    return tuple(flags)


def schema_version(build: Build) -> str:
    proc = subprocess.run([build.python, "-c", "from wildduck.adapters.sqlite.schema import SCHEMA_VERSION as v; "
                           "print(v)"], capture_output=True, text=True, cwd=build.root, check=True)
    return proc.stdout.strip()


def filled_data(build: Build, count: int) -> Path:
    """The cached data directory for ``build``'s schema (filled now if missing)."""
    return fill_once(build, CACHE / f"schema{schema_version(build)}-{count}", FILL, str(count), str(HERE))


def fill_maildir(maildir: Path, count: int) -> None:
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    base = 1704103200
    for n in range(count):
        data = message_bytes(n)
        letters = "".join(sorted(c for f, c in (("\\Answered", "R"), ("\\Flagged", "F"), ("\\Seen", "S"))
                                 if f in message_flags(n, False)))
        path = maildir / "cur" / f"{base + n}.M{n}P1.bench,S={len(data)}:2,{letters}"
        path.write_bytes(data)
        os.utime(path, (base + n * 60, base + n * 60))


def receive_reply(sock: socket.socket, tag: bytes) -> bytes:
    """Everything the server sends up to and including the tagged reply of ``tag`` (its whole line)."""
    chunks: list[bytes] = []
    tail = b"\r\n"
    marker = b"\r\n" + tag + b" "
    while True:
        data = sock.recv(1 << 20)
        if not data:
            raise RuntimeError("connection closed")
        chunks.append(data)
        window = tail + data
        i = window.find(marker)
        if i >= 0 and window.find(b"\r\n", i + 2) >= 0:
            return b"".join(chunks)
        tail = window[-200:]


class Client:
    """A raw IMAP client: sends a command, reads until its tagged reply."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.n = 0
        self.buf = b""
        while b"\r\n" not in self.buf:
            self.buf += self.sock.recv(65536)
        self.buf = b""

    def command(self, text: str) -> tuple[float, bytes]:
        self.n += 1
        tag = b"x%d" % self.n
        started = time.perf_counter()
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        reply = receive_reply(self.sock, tag)
        took = time.perf_counter() - started
        marker = b"\r\n" + tag + b" "
        full = b"\r\n" + reply
        status = full[full.rfind(marker) + len(marker):]
        if not status.startswith(b"OK"):
            raise RuntimeError(f"{text}: {status[:200]!r}")
        return took, reply

    def close(self) -> None:
        try:
            self.command("LOGOUT")
        except (OSError, RuntimeError):
            pass
        self.sock.close()


def measure(client: Client, repeat: int, memory: Callable[[], int], count: int,
            found: dict[str, int], answers: dict[str, bytes]) -> dict[str, float]:
    """Times in seconds (medians), the RSS in bytes; ``found``: the number of UIDs each SEARCH must return;
    ``answers`` gets the SORT and THREAD answers."""
    out: dict[str, float] = {}
    client.command(f"LOGIN {USER} {PASSWORD}")
    took, reply = client.command("SELECT INBOX")
    assert b"* %d EXISTS" % count in reply, reply[:300]
    out["SELECT (first)"] = took
    runs: dict[str, list[float]] = {}
    commands = [("SELECT", "SELECT INBOX"), ("EXAMINE", "EXAMINE INBOX"), ("SELECT", "SELECT INBOX"),
                ("UID FETCH 1:* (FLAGS)", "UID FETCH 1:* (FLAGS)"), ("FETCH 1:* (ENVELOPE)", "FETCH 1:* (ENVELOPE)"),
                ("STATUS", "STATUS INBOX (MESSAGES UNSEEN UIDNEXT)"),
                *((label, text) for label, text, _ in SEARCHES)]
    for label, text in ORDERINGS:  # the first of each in the session: nothing of it kept by the server yet
        took, reply = client.command(text)
        out[f"{label} (first)"] = took
        answers[label] = ordering_answer(reply, label)
        numbers = answers[label].replace(b"(", b" ").replace(b")", b" ").split()[2:]
        assert len(numbers) == count, (label, len(numbers))
    commands += ORDERINGS
    for _ in range(repeat):
        for label, text in commands:
            took, reply = client.command(text)
            if "FETCH" in label:
                assert reply.count(b" FETCH (") == count, (label, reply.count(b" FETCH ("))
            if "SEARCH" in label:
                line = reply[reply.index(b"* SEARCH"):].split(b"\r\n", 1)[0]
                assert len(line.split()) - 2 == found[label], (label, len(line.split()) - 2, found[label])
            runs.setdefault(label, []).append(took)
    out.update({label: statistics.median(times) for label, times in runs.items()})
    client.command("SELECT INBOX")
    client.command("UID FETCH 1:* (FLAGS)")
    out["RSS"] = memory()
    return out


def server_config(build: Build, count: int, workdir: Path) -> Path:
    """A configuration under ``workdir`` serving IMAP on a copy of the filled ``count``-message mailbox."""
    source = filled_data(build, count)
    data = workdir / "data"
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(source, data)
    config = workdir / "wildduck.toml"
    config.write_text(f'[server]\ndata_dir = "{data}"\n[lmtp]\nport = 0\n[imap]\nport = 0\ntls_port = 0\n'
                      "[pop3]\nport = 0\ntls_port = 0\n[metrics]\nenabled = false\n")
    return config


def run_wildduck(build: Build, count: int, repeat: int, workdir: Path, found: dict[str, int],
                 answers: dict[str, bytes]) -> dict[str, float]:
    config = server_config(build, count, workdir)
    with build.server(config) as server:
        assert server.proc is not None
        pid = server.proc.pid
        client = Client(server.address("imap")[1])
        before = process_memory(pid)["VmRSS"]
        try:
            result = measure(client, repeat, lambda: process_memory(pid)["VmRSS"], count, found, answers)
        finally:
            client.close()
        result["RSS before"] = before
    return result


def _imap_processes(port: int) -> list[int]:
    """The ``imap`` processes of the private instance listening on ``port``."""
    name = f"dovecot-wildduck-private-{port}/imap\0".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "cmdline").read_bytes() == name:
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def run_dovecot(binary: str, count: int, repeat: int, workdir: Path, found: dict[str, int],
                answers: dict[str, bytes]) -> dict[str, float]:
    directory = workdir / "dovecot"
    shutil.rmtree(directory, ignore_errors=True)
    maildir = directory / "home" / USER / "Maildir"
    fill_maildir(maildir, count)  # before the start: the instance owns the home, we give it the maildir
    with private_dovecot(directory, USER, PASSWORD, binary=binary, speed=True) as instance:
        owner = maildir.parent.stat()
        subprocess.run(["chown", "-R", f"{owner.st_uid}:{owner.st_gid}", str(maildir)], check=True)

        def memory() -> int:
            return max(process_memory(pid)["VmRSS"] for pid in _imap_processes(instance.port))

        client = Client(instance.port)
        try:
            return measure(client, repeat, memory, count, found, answers)
        finally:
            client.close()


ROWS = ["SELECT (first)", "SELECT", "EXAMINE", "UID FETCH 1:* (FLAGS)", "FETCH 1:* (ENVELOPE)", "STATUS",
        *(label for label, _, _ in SEARCHES), *(label for label, _ in ORDERINGS),
        *(f"{label} (first)" for label, _ in ORDERINGS)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10,000 messages, 2 repeats")
    parser.add_argument("--messages", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--against", action="append", default=[], metavar="REV")
    parser.add_argument("--build", default=None, metavar="REV", help="measure REV instead of this tree")
    parser.add_argument("--dovecot", default=os.environ.get("DOVECOT", DOVECOT))
    parser.add_argument("--no-dovecot", action="store_true")
    args = parser.parse_args(argv)
    count = args.messages or (10_000 if args.quick else 100_000)
    repeat = args.repeat or (2 if args.quick else 5)
    builds = [revision_build(args.build) if args.build else current_build()]
    builds += [revision_build(rev) for rev in args.against]
    for b in builds:
        print(b.describe())
    dovecot = None if args.no_dovecot else shutil.which(args.dovecot)
    if not args.no_dovecot and dovecot is None:
        print(f"Dovecot not found ({args.dovecot}): apt-get install dovecot-imapd, or --no-dovecot",
              file=sys.stderr)
        raise SystemExit(2)
    found = search_counts(count)
    print("SEARCH matches: " + ", ".join(f"{label} {n:,}" for label, n in found.items()))
    results: dict[str, dict[str, float]] = {}
    answers: dict[str, dict[str, bytes]] = {}
    with tempfile.TemporaryDirectory(prefix="wd-bench-large-") as tmp:
        Path(tmp).chmod(0o755)  # Dovecot's unprivileged processes read their files below it
        for b in builds:
            print(f"measuring {b.label} ...", flush=True)
            results[b.label] = run_wildduck(b, count, repeat, Path(tmp), found, answers.setdefault(b.label, {}))
            print(f"  {b.label}: " + ", ".join(f"{k} {v * 1000:,.1f} ms" for k, v in results[b.label].items()
                                              if "RSS" not in k), flush=True)
        if dovecot:
            print("measuring dovecot ...", flush=True)
            results["dovecot"] = run_dovecot(dovecot, count, repeat, Path(tmp), found,
                                             answers.setdefault("dovecot", {}))
            print("  dovecot: " + ", ".join(f"{k} {v * 1000:,.1f} ms" for k, v in results["dovecot"].items()
                                            if "RSS" not in k), flush=True)
    names = list(results)
    first = builds[0].label
    ratios = [(first, other) for other in names[1:]]
    print(f"\n{count:,} messages, medians of {repeat} (ms; ratio = {first} time / other time)\n")
    print("| " + " | ".join(["operation", *names, *(f"{a}/{b}" for a, b in ratios)]) + " |")
    print("|---|" + "---:|" * (len(names) + len(ratios)))
    for row in ROWS:
        cells = [f"{results[n][row] * 1000:,.1f}" for n in names]
        cells += [f"{results[a][row] / results[b][row]:,.2f}×" for a, b in ratios]
        print(f"| {row} | " + " | ".join(cells) + " |")
    cells = [f"{results[n]['RSS'] / 1e6:,.1f} MB" for n in names]
    cells += [f"{results[a]['RSS'] / results[b]['RSS']:,.2f}×" for a, b in ratios]
    print("| RSS with the mailbox selected | " + " | ".join(cells) + " |")
    if "dovecot" in answers:
        for b in builds:
            same = [label for label, _ in ORDERINGS if answers[b.label][label] == answers["dovecot"][label]]
            other = [label for label, _ in ORDERINGS if label not in same]
            print(f"{b.label}: answers equal to Dovecot's: {', '.join(same) or 'none'}"
                  + (f"; different: {', '.join(other)}" if other else ""))
    for b in builds:
        r = results[b.label]
        print(f"{b.label}: RSS before login {r['RSS before'] / 1e6:,.1f} MB, selected "
              f"{r['RSS'] / 1e6:,.1f} MB (+{(r['RSS'] - r['RSS before']) / 1e6:,.1f} MB)")


if __name__ == "__main__":
    main()
