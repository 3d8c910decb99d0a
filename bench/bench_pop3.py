#!/usr/bin/env python3
"""POP3 end to end on loopback: a real ``wildduck serve`` against Dovecot's POP3, in the same run.

    python bench/bench_pop3.py [--quick] [--clients 10] [--seconds 10] [--repeat 1] [--messages 200]

Two workloads, each for ``seconds`` with ``clients`` concurrent clients (one process each, raw sockets), against
one user whose INBOX holds ``messages`` messages (about 7 MB: mostly 1 to 10 KB text messages with some lines
starting with dots, a quarter 50 KB messages carrying a 30 KB base64 attachment, and four of 1 MB):

* **logins**: connect, read the greeting, USER, PASS, STAT, QUIT, over and over; logins/s;
* **RETR**: log in, RETR every message (reading each answer to its terminating line), QUIT without DELE, over and
  over; MB/s of POP3 answers received (their bytes on the wire, dot-stuffing and the terminating line included).

Before the measurement every server gets one warm-up session that RETRs every message; the messages it returns
(dot-stuffing undone) must be the ones delivered, byte for byte, or the benchmark fails.

The baseline in the same run is Debian's Dovecot (``/usr/sbin/dovecot``, package ``dovecot-pop3d``), a private
instance (``wildduck.testing.dovecot``, ``protocols="imap pop3"``, ``speed=True``: long-lived login processes and
pre-forked imap and pop3 processes, a passwd-file user with a {PLAIN} password, maildir in a temporary directory,
its own base_dir and ports; nothing system-wide is touched), filled by IMAP APPEND; wildduck is filled over LMTP.
The ratio is wildduck over Dovecot. A third row, **stub**, is the clients against a stub server in this
benchmark (asyncio, every answer prepared in memory): the clients' own ceiling on this machine, to show that they
are not what limits the servers (``--no-stub`` skips it). Printed per server: the rates, errors, and the CPU time
the server used (all of its processes) and the clients used, per login and per MB.

    python bench/bench_pop3.py --against REV [--build REV2] [--repeat 3]

also measures wildduck at git revision REV (a checkout with its own venv under /tmp, made or reused by
bench/_builds.py; it must have the POP3 server), started and driven exactly like the current one; the runs
alternate between the servers and the table adds the ratio current/REV. ``--build REV2`` measures a fixed revision
instead of this tree. Any error against the current build (a refused login, a wrong message, a closed connection)
fails the benchmark (exit status 1) after the figures. Without Dovecot it says how to get it and exits with status
2 (or pass ``--no-dovecot``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import imaplib
import multiprocessing
import multiprocessing.connection
import os
import random
import resource
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _builds import Build, chosen_builds, report_errors  # noqa: E402
from bench_imap import tree_cpu_seconds  # noqa: E402

from wildduck.testing.dovecot import private_dovecot  # noqa: E402
from wildduck.testing.lmtp_client import LMTPClient  # noqa: E402

USER, PASSWORD = "bench", "bench-password"
ADDRESS = f"{USER}@example.com"

HOW_TO_GET_DOVECOT = """\
Dovecot not found ({where}): apt-get install dovecot-imapd dovecot-pop3d (the system service it starts is not
used; this benchmark runs its own instance from a temporary directory), or pass --dovecot PATH, or --no-dovecot."""


# --- the mailbox -------------------------------------------------------------------------------------------------

def _text(rng: random.Random, lines: int) -> bytes:
    words = [b"mail", b"server", b"message", b"POP3", b"the", b"of", b"and", b"retrieve", b"quota", b"inbox",
             b"delivery", b"attachment", b"report", b"meeting", b"tomorrow", b"."]
    out = []
    for _ in range(lines):
        line = b" ".join(rng.choice(words) for _ in range(rng.randrange(4, 14)))
        out.append(b"." + line if rng.random() < 0.05 else line)  # some lines start with a dot (stuffed)
    return b"\r\n".join(out) + b"\r\n"


def _message(n: int, body: bytes, attachment: bytes | None) -> bytes:
    head = (b"From: sender%d@example.net\r\nTo: %s\r\nSubject: bench message %d\r\n"
            b"Date: Mon, 1 Dec 2025 10:00:00 +0000\r\nMessage-ID: <pop3-bench-%d@example.net>\r\nMIME-Version: 1.0\r\n"
            % (n % 7, ADDRESS.encode(), n, n))
    if attachment is None:
        return head + b"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + body
    b64 = base64.encodebytes(attachment).replace(b"\n", b"\r\n")
    return (head + b"Content-Type: multipart/mixed; boundary=BB\r\n\r\n--BB\r\nContent-Type: text/plain\r\n\r\n"
            + body + b"--BB\r\nContent-Type: application/pdf; name=report.pdf\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + b64 + b"--BB--\r\n")


def mailbox(count: int) -> list[bytes]:
    """``count`` messages, the same every run: four of 1 MB, a quarter of 50 KB with a 30 KB attachment, the rest
    1 to 10 KB of text; in a shuffled order."""
    rng = random.Random(1939)
    kinds = ["big"] * min(4, count) + ["attachment"] * (count // 4)
    kinds += ["text"] * (count - len(kinds))
    rng.shuffle(kinds)
    out = []
    for n, kind in enumerate(kinds):
        if kind == "big":
            out.append(_message(n, _text(rng, 40), rng.randbytes(760_000)))
        elif kind == "attachment":
            out.append(_message(n, _text(rng, 150), rng.randbytes(30_000)))
        else:
            out.append(_message(n, _text(rng, rng.randrange(15, 150)), None))
    return out


# --- the client ----------------------------------------------------------------------------------------------------

class ClientError(Exception):
    pass


class POP3Connection:
    """A raw POP3 connection for the benchmark: no pipelining, so an answer is always the end of what was received."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray(1 << 20)
        self.view = memoryview(self.buf)
        self.line()  # the greeting

    def close(self) -> None:
        self.sock.close()

    def line(self) -> bytes:
        data = b""
        while not data.endswith(b"\r\n"):
            n = self.sock.recv_into(self.buf, 4096)
            if n == 0:
                raise ClientError(f"connection closed (after {data[:100]!r})")
            data += self.buf[:n]
        return data

    def command(self, line: bytes) -> bytes:
        self.sock.sendall(line + b"\r\n")
        answer = self.line()
        if not answer.startswith(b"+OK"):
            raise ClientError(f"{line.split()[0].decode()}: {answer[:200]!r}")
        return answer

    def retr(self, number: int, keep: bool = False) -> tuple[int, bytes]:
        """RETR: the bytes of the whole answer received, and (``keep``) the message with the stuffing undone."""
        self.sock.sendall(b"RETR %d\r\n" % number)
        total = 0
        tail = b""
        kept = bytearray() if keep else None
        while True:
            n = self.sock.recv_into(self.buf)
            if n == 0:
                raise ClientError(f"RETR {number}: connection closed")
            if total == 0 and not self.buf.startswith(b"+OK"):
                raise ClientError(f"RETR {number}: {bytes(self.buf[:min(n, 200)])!r}")
            total += n
            if kept is not None:
                kept += self.view[:n]
            tail = (tail + self.view[max(0, n - 5):n])[-5:]
            # a dot-stuffed message never holds CRLF "." CRLF: only the terminating line makes this tail
            if tail == b"\r\n.\r\n":
                break
        if kept is None:
            return total, b""
        body = bytes(kept).split(b"\r\n", 1)[1][:-3]
        if body.startswith(b"."):
            body = body[1:]
        return total, body.replace(b"\r\n..", b"\r\n.")

    def login(self) -> int:
        self.command(b"USER " + USER.encode())
        self.command(b"PASS " + PASSWORD.encode())
        return int(self.command(b"STAT").split()[1])

    def quit(self) -> None:
        self.command(b"QUIT")
        self.sock.recv(100)  # the server closes first
        self.close()


@dataclass
class Counts:
    operations: int = 0  # login cycles, or messages retrieved
    received: int = 0  # bytes of RETR answers
    errors: list[str] = field(default_factory=list)
    cpu: float = 0.0  # the client process's CPU seconds


def login_loop(host: str, port: int, start: float, deadline: float) -> Counts:
    counts = Counts()
    _sleep_until(start)
    while time.monotonic() < deadline:
        try:
            c = POP3Connection(host, port)
            try:
                c.login()
                c.quit()
            finally:
                c.close()
            counts.operations += 1
        except (ClientError, OSError) as exc:
            counts.errors.append(str(exc))
            if len(counts.errors) > 20:
                break
    return counts


def retr_loop(host: str, port: int, start: float, deadline: float) -> Counts:
    counts = Counts()
    _sleep_until(start)
    while time.monotonic() < deadline:
        try:
            c = POP3Connection(host, port)
            try:
                count = c.login()
                for number in range(1, count + 1):
                    received, _ = c.retr(number)
                    counts.operations += 1
                    counts.received += received
                    if time.monotonic() >= deadline:
                        break
                c.quit()
            finally:
                c.close()
        except (ClientError, OSError) as exc:
            counts.errors.append(str(exc))
            if len(counts.errors) > 20:
                break
    return counts


def _sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.monotonic()))


def _child(work: Callable[[str, int, float, float], Counts], host: str, port: int, start: float, deadline: float,
           out: multiprocessing.connection.Connection) -> None:
    counts = work(host, port, start, deadline)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    counts.cpu = usage.ru_utime + usage.ru_stime
    out.send(counts)
    out.close()


@dataclass
class Phase:
    """One workload against one server."""

    operations: int
    received: int
    seconds: float
    server_cpu: float
    client_cpu: float
    errors: list[str]

    @property
    def rate(self) -> float:
        return self.operations / self.seconds

    @property
    def mbps(self) -> float:
        return self.received / self.seconds / 1e6


def run_clients(work: Callable[[str, int, float, float], Counts], address: tuple[str, int], clients: int,
                seconds: float, server_pid: int | None) -> Phase:
    """``clients`` processes running ``work`` together for ``seconds``."""
    ctx = multiprocessing.get_context("fork")
    start = time.monotonic() + 0.5  # every process is forked and waiting
    deadline = start + seconds
    pipes, procs = [], []
    for _ in range(clients):
        receiver, sender = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_child, args=(work, *address, start, deadline, sender))
        p.start()
        sender.close()
        pipes.append(receiver)
        procs.append(p)
    _sleep_until(start)
    cpu_before = tree_cpu_seconds(server_pid) if server_pid else 0.0
    results: list[Counts] = []
    for receiver in pipes:
        try:
            results.append(receiver.recv())
        except EOFError:
            results.append(Counts(errors=["a client process died"]))
    elapsed = time.monotonic() - start
    server_cpu = tree_cpu_seconds(server_pid) - cpu_before if server_pid else 0.0
    for p in procs:
        p.join()
    return Phase(sum(r.operations for r in results), sum(r.received for r in results), elapsed, server_cpu,
                 sum(r.cpu for r in results), [e for r in results for e in r.errors])


def warm_up(address: tuple[str, int], messages: list[bytes]) -> list[str]:
    """One session that RETRs every message; the errors (a message not returned exactly as delivered)."""
    c = POP3Connection(*address)
    try:
        count = c.login()
        if count != len(messages):
            return [f"STAT says {count} messages, {len(messages)} were delivered"]
        errors = []
        for number, message in enumerate(messages, 1):
            _, body = c.retr(number, keep=True)
            if body != message:
                digest = hashlib.sha256(body).hexdigest()[:12]
                errors.append(f"RETR {number} returned {len(body)} bytes (sha256 {digest}), not the {len(message)} "
                              "delivered")
        c.quit()
        return errors
    finally:
        c.close()


# --- the servers -------------------------------------------------------------------------------------------------

@dataclass
class Result:
    logins: Phase
    retr: Phase
    errors: list[str]


def measure(address: tuple[str, int], messages: list[bytes], args: argparse.Namespace,
            server_pid: int | None) -> Result:
    errors = warm_up(address, messages)
    logins = run_clients(login_loop, address, args.clients, args.seconds, server_pid)
    retr = run_clients(retr_loop, address, args.clients, args.seconds, server_pid)
    return Result(logins, retr, errors + logins.errors + retr.errors)


def wildduck_config(workdir: Path, build: Build, clients: int, workers: int = 1) -> Path:
    defaults = (build.root / "wildduck" / "default.toml").read_text()
    if "[pop3]" not in defaults:
        raise SystemExit(f"wildduck {build.label} has no POP3 server")
    config = workdir / "wildduck.toml"
    config.write_text(f'[server]\ndata_dir = "{workdir / "data"}"\n{build.workers_setting(workers)}'
                      "[lmtp]\nport = 0\n[imap]\nenabled = false\n"
                      f"[pop3]\nport = 0\ntls_port = 0\nmax_connections_per_user = {clients * 2 + 10}\n"
                      f"[limits]\nmax_connections = {clients * 4 + 100}\n")
    return config


def run_wildduck(build: Build, messages: list[bytes], args: argparse.Namespace, workdir: Path) -> Result:
    config = wildduck_config(workdir, build, args.clients, args.workers)
    build.init_store(config)
    build.run("--config", str(config), "user", "create", USER, "--password", PASSWORD, "--address", ADDRESS,
              "--quota", "100G")
    with build.server(config) as server:
        assert server.proc is not None
        with LMTPClient(*server.address("lmtp")) as lmtp:
            lmtp.lhlo()
            for message in messages:
                _r, replies = lmtp.send_message("sender@example.net", [ADDRESS], message)
                if not replies or replies[0][0] != 250:
                    raise SystemExit(f"LMTP delivery to wildduck {build.label} failed: {replies}")
        result = measure(server.address("pop3"), messages, args, server.proc.pid)
        if server.proc.poll() is not None:
            result.errors.append(f"the server exited during the run with status {server.proc.poll()}")
    result.errors += [line for line in server.log if any(w in line for w in (" ERROR ", " CRITICAL ", "Traceback"))]
    return result


def run_dovecot(messages: list[bytes], args: argparse.Namespace, workdir: Path) -> Result:
    workdir.chmod(0o755)  # Dovecot's unprivileged processes must reach the instance directory below it
    try:
        with private_dovecot(workdir / "dovecot", USER, PASSWORD, binary=args.dovecot, speed=True,
                             protocols="imap pop3") as instance:
            assert instance.pop3_port is not None
            m = imaplib.IMAP4("127.0.0.1", instance.port)
            m.login(USER, PASSWORD)
            for message in messages:
                status, _ = m.append("INBOX", None, None, message)
                if status != "OK":
                    raise SystemExit(f"APPEND to Dovecot failed: {status}")
            m.logout()
            result = measure(("127.0.0.1", instance.pop3_port), messages, args, instance.pid)
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None
    log = workdir / "dovecot" / "dovecot.log"
    lines = log.read_text().splitlines() if log.exists() else []
    result.errors += [line for line in lines if "Error:" in line or "Panic:" in line or "Fatal:" in line]
    return result


# --- the stub: the clients' ceiling --------------------------------------------------------------------------------

def _stub_answers(messages: list[bytes]) -> dict[bytes, bytes]:
    answers = {b"USER": b"+OK\r\n", b"PASS": b"+OK logged in\r\n",
               b"STAT": b"+OK %d %d\r\n" % (len(messages), sum(map(len, messages))), b"QUIT": b"+OK bye\r\n"}
    for n, message in enumerate(messages, 1):
        stuffed = (b"." if message.startswith(b".") else b"") + message.replace(b"\r\n.", b"\r\n..")
        answers[b"RETR %d" % n] = b"+OK %d octets\r\n" % len(message) + stuffed + b".\r\n"
    return answers


def _stub_server(messages: list[bytes], ready: multiprocessing.connection.Connection) -> None:
    answers = _stub_answers(messages)

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"+OK stub ready\r\n")
        while line := await reader.readline():
            command = line.rstrip(b"\r\n")
            key = command if command.startswith(b"RETR") else command.split(b" ", 1)[0]
            writer.write(answers.get(key, b"-ERR unknown\r\n"))
            await writer.drain()
            if key == b"QUIT":
                break
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(session, "127.0.0.1", 0, backlog=512)
        ready.send(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


@contextlib.contextmanager
def stub_server(messages: list[bytes]) -> Iterator[tuple[tuple[str, int], int]]:
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_stub_server, args=(messages, sender), daemon=True)
    proc.start()
    try:
        yield ("127.0.0.1", receiver.recv()), proc.pid  # type: ignore[misc]
    finally:
        proc.terminate()
        proc.join()


def run_stub(messages: list[bytes], args: argparse.Namespace) -> Result:
    with stub_server(messages) as (address, pid):
        return measure(address, messages, args, pid)


# --- report ------------------------------------------------------------------------------------------------------

def ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


@dataclass
class Summary:
    logins: float
    mbps: float
    retr_rate: float
    login_server_cpu: float  # ms per login cycle
    login_client_cpu: float
    retr_server_cpu: float  # ms per MB received
    retr_client_cpu: float
    errors: list[str]
    runs: list[tuple[float, float]]  # (logins/s, MB/s) of every run

    @classmethod
    def of(cls, results: list[Result]) -> Summary:
        def med(f: Callable[[Result], float]) -> float:
            return statistics.median(f(r) for r in results)
        return cls(
            logins=med(lambda r: r.logins.rate), mbps=med(lambda r: r.retr.mbps), retr_rate=med(lambda r: r.retr.rate),
            login_server_cpu=med(lambda r: 1000 * r.logins.server_cpu / max(r.logins.operations, 1)),
            login_client_cpu=med(lambda r: 1000 * r.logins.client_cpu / max(r.logins.operations, 1)),
            retr_server_cpu=med(lambda r: 1000 * r.retr.server_cpu / max(r.retr.received / 1e6, 1e-9)),
            retr_client_cpu=med(lambda r: 1000 * r.retr.client_cpu / max(r.retr.received / 1e6, 1e-9)),
            errors=[e for r in results for e in r.errors],
            runs=[(r.logins.rate, r.retr.mbps) for r in results])


def print_table(results: dict[str, Summary], builds: list[Build]) -> None:
    w = max([14] + [len(n) * 2 + 1 for n in results])
    print(f"{'':{w}} {'logins/s':>9} {'srv ms/login':>13} {'cli ms/login':>13} {'RETR MB/s':>10} {'msgs/s':>8} "
          f"{'srv ms/MB':>10} {'cli ms/MB':>10} {'errors':>7}")
    for name, s in results.items():
        print(f"{name:{w}} {s.logins:9.1f} {s.login_server_cpu:13.2f} {s.login_client_cpu:13.2f} {s.mbps:10.1f} "
              f"{s.retr_rate:8.1f} {s.retr_server_cpu:10.2f} {s.retr_client_cpu:10.2f} {len(s.errors):7d}")
    pairs = [(b.label, "dovecot") for b in builds if "dovecot" in results]
    pairs += [(builds[0].label, b.label) for b in builds[1:]]
    for a, b in pairs:
        ra, rb = results[a], results[b]
        line = (f"{a}/{b}: logins/s {ratio(ra.logins, rb.logins):.2f}x, RETR MB/s {ratio(ra.mbps, rb.mbps):.2f}x")
        if len(ra.runs) > 1 and len(ra.runs) == len(rb.runs):
            rounds = list(zip(ra.runs, rb.runs, strict=True))
            line += ("; per round logins " + " ".join(f"{ratio(x[0], y[0]):.2f}" for x, y in rounds)
                     + ", MB/s " + " ".join(f"{ratio(x[1], y[1]):.2f}" for x, y in rounds))
        print(("** " if b == "dovecot" else "   ") + line)
    if "stub" in results:
        stub = results["stub"]
        print(f"client ceiling (stub): {stub.logins:.0f} logins/s, {stub.mbps:.0f} MB/s; "
              + ", ".join(f"{name} reaches {ratio(s.logins, stub.logins):.0%} and {ratio(s.mbps, stub.mbps):.0%} of it"
                          for name, s in results.items() if name != "stub"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 s per workload")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1, help="wildduck server processes ([server] workers)")
    parser.add_argument("--seconds", type=float, default=None, help="per workload and server (default 10)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per server (alternating); medians are printed")
    parser.add_argument("--messages", type=int, default=200, help="messages in the INBOX (at most 250)")
    parser.add_argument("--dovecot", default=os.environ.get("DOVECOT", "/usr/sbin/dovecot"))
    parser.add_argument("--no-dovecot", action="store_true", help="wildduck only (no baseline, no ratio)")
    parser.add_argument("--no-stub", action="store_true", help="skip the stub server (the clients' ceiling)")
    parser.add_argument("--show-errors", type=int, default=10)
    parser.add_argument("--against", metavar="REV", action="append", default=[],
                        help="also measure wildduck at git revision REV (see bench/_builds.py); may be repeated")
    parser.add_argument("--build", metavar="REV", help="measure wildduck at REV as the current build")
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (3.0 if args.quick else 10.0)
    if not 1 <= args.messages <= 250:
        parser.error("--messages must be 1 to 250 (the maildrop shows the newest 250)")

    builds = chosen_builds(args.build, args.against)
    if not args.no_dovecot:
        found = shutil.which(args.dovecot)
        if found is None or not Path("/usr/lib/dovecot/pop3").exists():
            print(HOW_TO_GET_DOVECOT.format(where=args.dovecot if found is None else "/usr/lib/dovecot/pop3"),
                  file=sys.stderr)
            raise SystemExit(2)
        args.dovecot = found

    messages = mailbox(args.messages)
    by_label = {b.label: b for b in builds}
    servers = list(by_label) + ([] if args.no_dovecot else ["dovecot"])
    print(f"POP3: {args.clients} clients (processes), {args.seconds:.0f} s per workload, INBOX of {len(messages)} "
          f"messages ({sum(map(len, messages)) / 1e6:.1f} MB, largest {max(map(len, messages)) / 1e6:.1f} MB), "
          f"{args.repeat} run(s) per server, alternating (" + ", ".join(servers) + ")")
    runs: dict[str, list[Result]] = {name: [] for name in servers}
    for i in range(args.repeat):
        for name in servers if i % 2 == 0 else servers[::-1]:
            with tempfile.TemporaryDirectory(prefix=f"bench-pop3-{name}-") as tmp:
                r = (run_dovecot(messages, args, Path(tmp)) if name == "dovecot"
                     else run_wildduck(by_label[name], messages, args, Path(tmp)))
            runs[name].append(r)
            print(f"  run {i + 1} {name:9} logins/s {r.logins.rate:8.1f}  RETR MB/s {r.retr.mbps:7.1f}  "
                  f"errors {len(r.errors)}  server CPU {r.logins.server_cpu:.1f} + {r.retr.server_cpu:.1f} s",
                  flush=True)
    if not args.no_stub:
        runs["stub"] = [run_stub(messages, args)]
    results = {name: Summary.of(rs) for name, rs in runs.items()}
    print()
    print_table(results, builds)

    failed = False
    for name, summary in results.items():
        report_errors(name, summary.errors, args.show_errors)
        if summary.errors:
            failed = failed or name == builds[0].label
    if failed:
        print(f"\nFAILED: errors against wildduck ({builds[0].label})", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
