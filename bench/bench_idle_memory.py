#!/usr/bin/env python3
"""Memory per idle IMAP connection, and how fast a delivery reaches the IDLE sessions (a real ``wildduck serve``).

    python bench/bench_idle_memory.py [--quick] [--connections 2000] [--users 10] [--deliveries 5]

The benchmark opens ``connections`` plain IMAP connections on loopback (trio tasks in this process), spread evenly
over ``users`` users; each one LOGINs, SELECTs INBOX and enters IDLE. The server's memory is read from
/proc/PID/status (VmRSS, RssAnon) and /proc/PID/smaps_rollup (Pss) after a warm-up connection and again once every
connection is idling; the difference over the number of connections is the cost of one idle IDLE session. Then
messages are delivered over LMTP to the first user, one at a time: every IDLE connection of that user must see
``* n EXISTS`` (the others must see nothing), and the time from the LMTP 250 reply to each ``EXISTS`` is the push
latency (negative when the push arrives before the LMTP reply). Clients and server share the machine's cores.
Target: under 50 KB per connection.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import trio

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from wildduck.testing.lmtp_client import LMTPClient  # noqa: E402
from wildduck.testing.server import ServerProcess, process_memory  # noqa: E402

PASSWORD = "idle-bench-password"
TARGET_BYTES = 50 * 1024


def raise_nofile(needed: int) -> None:
    """Raise this process's open-file limit; the server subprocess inherits it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed and os.geteuid() == 0:
        hard = needed
    new_soft = hard if hard == resource.RLIM_INFINITY else min(hard, max(soft, needed))
    resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
    if new_soft != resource.RLIM_INFINITY and new_soft < needed:
        raise SystemExit(f"RLIMIT_NOFILE is {new_soft}, {needed} needed: raise the hard limit (ulimit -Hn)")


def config_text(data_dir: Path, connections: int) -> str:
    """Listener and limit settings; a per-user connection cap, if this version has one, is lifted."""
    import wildduck

    defaults = tomllib.loads((Path(wildduck.__file__).parent / "default.toml").read_text())
    imap = "port = 0\ntls_port = 0\n"
    for key in ("max_connections_per_user", "max_connections_per_ip"):
        if key in defaults.get("imap", {}):
            imap += f"{key} = {connections + 100}\n"
    return (f'[server]\ndata_dir = "{data_dir}"\n[lmtp]\nport = 0\n[pop3]\nport = 0\ntls_port = 0\n[imap]\n{imap}'
            f"[limits]\nmax_connections = {connections + 100}\nidle_timeout = 3600.0\n")


def message(n: int) -> bytes:
    return (b"From: bench@example.net\r\nTo: idle0@example.com\r\nSubject: push %d\r\n"
            b"Message-ID: <idle-bench-%d@example.net>\r\n\r\nA short message for the IDLE sessions.\r\n" % (n, n))


class Tracker:
    """Wakes the delivery loop once every watched connection has seen ``* n EXISTS``."""

    def __init__(self) -> None:
        self.n = 0
        self.pending: set[int] = set()
        self.done = trio.Event()

    def expect(self, n: int, conns: list[Conn]) -> None:
        self.n, self.pending, self.done = n, {c.index for c in conns if not c.saw(n)}, trio.Event()
        if not self.pending:
            self.done.set()

    def seen(self, conn: Conn, n: int) -> None:
        if n == self.n and conn.index in self.pending:
            self.pending.discard(conn.index)
            if not self.pending:
                self.done.set()


@dataclass
class Conn:
    index: int
    user: int
    tracker: Tracker | None = None
    stream: trio.SocketStream | None = None
    buf: bytes = b""
    exists: list[tuple[int, float]] = field(default_factory=list)  # (n, perf_counter when seen)
    error: str | None = None

    async def read_line(self) -> bytes:
        assert self.stream is not None
        while b"\r\n" not in self.buf:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                raise ConnectionError("connection closed by the server")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    async def until_tagged(self, tag: bytes) -> bytes:
        while True:
            line = await self.read_line()
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(line.decode(errors="replace"))
                return line

    async def open(self, host: str, port: int) -> None:
        self.stream = await trio.open_tcp_stream(host, port)
        greeting = await self.read_line()
        if not greeting.startswith(b"* OK"):
            raise RuntimeError(greeting.decode(errors="replace"))
        await self.stream.send_all(b'a LOGIN idle%d "%s"\r\n' % (self.user, PASSWORD.encode()))
        await self.until_tagged(b"a")
        await self.stream.send_all(b"b SELECT INBOX\r\n")
        await self.until_tagged(b"b")
        await self.stream.send_all(b"c IDLE\r\n")
        while not (await self.read_line()).startswith(b"+"):
            pass

    async def watch(self) -> None:
        """Record every ``* n EXISTS`` until cancelled."""
        while True:
            line = await self.read_line()
            parts = line.split()
            if len(parts) == 3 and parts[0] == b"*" and parts[2].upper() == b"EXISTS":
                self.exists.append((int(parts[1]), time.perf_counter()))
                if self.tracker is not None:
                    self.tracker.seen(self, int(parts[1]))

    def saw(self, n: int) -> float | None:
        return next((t for k, t in self.exists if k == n), None)

    async def close(self) -> None:
        if self.stream is not None:
            with trio.move_on_after(5):
                try:
                    await self.stream.send_all(b"DONE\r\nd LOGOUT\r\n")
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
            await trio.aclose_forcefully(self.stream)


def deliver(host: str, port: int, n: int) -> tuple[float, float]:
    """One LMTP delivery to idle0; (time the transaction started, time of the 250 reply)."""
    with LMTPClient(host, port) as c:
        c.lhlo()
        started = time.perf_counter()
        _rcpt, replies = c.send_message("bench@example.net", ["idle0@example.com"], message(n))
        acked = time.perf_counter()
        if not replies or replies[0][0] != 250:
            raise RuntimeError(f"delivery refused: {replies}")
        c.quit()
    return started, acked


@dataclass
class Outcome:
    opened: int = 0
    failed: list[str] = field(default_factory=list)
    open_seconds: float = 0.0
    mem_base: dict[str, int] = field(default_factory=dict)
    mem_idle: dict[str, int] = field(default_factory=dict)
    mem_closed: dict[str, int] = field(default_factory=dict)
    latencies: list[list[float]] = field(default_factory=list)  # per delivery, seconds after the 250 reply
    since_start: list[list[float]] = field(default_factory=list)  # per delivery, seconds after MAIL FROM
    missing: list[int] = field(default_factory=list)  # per delivery, sampled connections that saw nothing
    stray: int = 0  # EXISTS seen on connections of other users


async def run_clients(args: argparse.Namespace, server: ServerProcess) -> Outcome:
    assert server.proc is not None
    pid = server.proc.pid
    host, port = server.address("imap")
    lmtp_host, lmtp_port = server.address("lmtp")
    out = Outcome()

    # warm-up: one full cycle per user, so that lazy imports and caches (the login cache among them: a burst of
    # first logins would otherwise each verify the argon2 hash) are in the baseline
    for u in range(args.users):
        warm = Conn(-1 - u, u)
        await warm.open(host, port)
        await warm.close()
    await trio.sleep(1.0)
    out.mem_base = process_memory(pid)

    tracker = Tracker()
    conns = [Conn(i, i % args.users, tracker) for i in range(args.connections)]
    limit = trio.Semaphore(args.parallel)

    async def open_one(conn: Conn) -> None:
        async with limit:
            try:
                await conn.open(host, port)
                out.opened += 1
            except (OSError, RuntimeError, trio.BrokenResourceError) as exc:
                conn.error = f"{type(exc).__name__}: {exc}"
                out.failed.append(f"connection {conn.index}: {conn.error}")

    started = time.perf_counter()
    with trio.fail_after(args.open_timeout):
        async with trio.open_nursery() as nursery:
            for conn in conns:
                nursery.start_soon(open_one, conn)
    out.open_seconds = time.perf_counter() - started
    await trio.sleep(2.0)  # let the server settle (freed buffers, finished tasks)
    out.mem_idle = process_memory(pid)

    alive = [c for c in conns if c.error is None]
    sample = [c for c in alive if c.user == 0]
    profiler = None
    if args.profile:  # py-spy on the server during the deliveries only; SIGINT makes it write the file
        profiler = await trio.lowlevel.open_process(
            [args.profile, "record", "--pid", str(pid), "--rate", "250", "--format", "raw",
             "-o", str(args.profile_out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await trio.sleep(1.0)
    async with trio.open_nursery() as watchers:
        for conn in alive:
            watchers.start_soon(conn.watch)
        for n in range(1, args.deliveries + 1):
            tracker.expect(n, sample)
            t_start, t_ack = await trio.to_thread.run_sync(deliver, lmtp_host, lmtp_port, n)
            with trio.move_on_after(args.push_timeout):
                await tracker.done.wait()
            seen = [t for t in (c.saw(n) for c in sample) if t is not None]
            out.latencies.append([t - t_ack for t in seen])
            out.since_start.append([t - t_start for t in seen])
            out.missing.append(len(sample) - len(seen))
            await trio.sleep(0.2)
        watchers.cancel_scope.cancel()
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        await profiler.wait()
        print(f"py-spy profile of the server during the deliveries: {args.profile_out}")
    out.stray = sum(len(c.exists) for c in alive if c.user != 0)

    async with trio.open_nursery() as nursery:
        for conn in alive:
            nursery.start_soon(conn.close)
    await trio.sleep(2.0)
    out.mem_closed = process_memory(pid)
    return out


def fmt_ms(values: list[float]) -> str:
    if not values:
        return "-"
    values = sorted(values)
    p90 = values[min(len(values) - 1, int(0.9 * len(values)))]
    return f"min {values[0] * 1000:.1f}  median {statistics.median(values) * 1000:.1f}  " \
           f"p90 {p90 * 1000:.1f}  max {values[-1] * 1000:.1f} ms"


def report(args: argparse.Namespace, out: Outcome) -> bool:
    """Print the figures; False if something failed (connections refused, pushes missing)."""
    ok = True
    print(f"opened {out.opened}/{args.connections} IDLE connections in {out.open_seconds:.1f} s "
          f"({out.opened / max(out.open_seconds, 1e-9):.0f}/s: LOGIN + SELECT + IDLE)")
    if out.failed:
        ok = False
        print(f"{len(out.failed)} connection(s) failed; the first ones:")
        for line in out.failed[:10]:
            print("  " + line)
    n = max(out.opened, 1)
    print(f"{'server memory':16}{'baseline':>12}{'all idling':>12}{'closed':>12}{'per connection':>16}")
    for key in ("VmRSS", "RssAnon", "Pss", "Pss_Anon"):
        if key in out.mem_base and key in out.mem_idle:
            per = (out.mem_idle[key] - out.mem_base[key]) / n
            print(f"{key:16}{out.mem_base[key] / 2**20:10.1f}MB{out.mem_idle[key] / 2**20:10.1f}MB"
                  f"{out.mem_closed.get(key, 0) / 2**20:10.1f}MB{per / 1024:13.1f} KB")
    per_conn = (out.mem_idle["VmRSS"] - out.mem_base["VmRSS"]) / n
    print(f"bytes per idle IDLE connection (VmRSS): {per_conn:,.0f} "
          f"({'within' if per_conn < TARGET_BYTES else 'ABOVE'} the {TARGET_BYTES // 1024} KB target)")
    sample = args.connections // args.users
    print(f"push: {args.deliveries} LMTP deliveries to idle0, watched on its {sample} IDLE connections")
    for i, (lat, since, missing) in enumerate(zip(out.latencies, out.since_start, out.missing, strict=True), 1):
        print(f"  delivery {i}: after the 250 reply {fmt_ms(lat)}; "
              f"after MAIL FROM, max {max(since or [0]) * 1000:.1f} ms"
              + (f"; {missing} connection(s) saw no EXISTS" if missing else ""))
    all_lat = [x for lat in out.latencies for x in lat]
    medians = [statistics.median(lat) for lat in out.latencies if lat]
    maxima = [max(lat) for lat in out.latencies if lat]
    if medians:
        print("push latency after the 250 reply, median over deliveries: "
              f"median {statistics.median(medians) * 1000:.1f} ms, "
              f"slowest connection {statistics.median(maxima) * 1000:.1f} ms")
        print(f"all pushes: {fmt_ms(all_lat)}")
    if any(out.missing):
        ok = False
        print(f"FAILED: {sum(out.missing)} expected EXISTS responses did not arrive within {args.push_timeout:.0f} s")
    if out.stray:
        ok = False
        print(f"FAILED: {out.stray} EXISTS responses arrived on connections of other users")
    return ok


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 connections, 2 deliveries")
    parser.add_argument("--connections", type=int, default=None, help="IDLE connections (default 2000)")
    parser.add_argument("--users", type=int, default=10, help="users the connections are spread over")
    parser.add_argument("--deliveries", type=int, default=None, help="LMTP deliveries to time (default 5)")
    parser.add_argument("--parallel", type=int, default=50, help="connections being set up at once")
    parser.add_argument("--open-timeout", type=float, default=600.0)
    parser.add_argument("--push-timeout", type=float, default=30.0)
    parser.add_argument("--profile", metavar="PY_SPY", help="record the server during the deliveries with py-spy")
    parser.add_argument("--profile-out", type=Path, default=Path("wildduck-idle-push.pyspy.txt"))
    args = parser.parse_args(argv)
    args.connections = args.connections or (200 if args.quick else 2000)
    args.deliveries = args.deliveries or (2 if args.quick else 5)
    args.users = max(1, min(args.users, args.connections))
    raise_nofile(args.connections + 1000)

    with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp:
        workdir = Path(tmp)
        config = workdir / "wildduck.toml"
        config.write_text(config_text(workdir / "data", args.connections) + "[metrics]\nenabled = false\n")
        subprocess.run([sys.executable, "-m", "wildduck", "--config", str(config), "init"], check=True,
                       capture_output=True)
        for u in range(args.users):
            subprocess.run([sys.executable, "-m", "wildduck", "--config", str(config), "user", "create", f"idle{u}",
                            "--password", PASSWORD, "--address", f"idle{u}@example.com"],
                           check=True, capture_output=True)
        print(f"{args.connections} IDLE connections over {args.users} users, "
              f"{args.connections // args.users} per user; server RLIMIT_NOFILE "
              f"{resource.getrlimit(resource.RLIMIT_NOFILE)[0]}")
        with ServerProcess(config) as server:
            out = trio.run(run_clients, args, server)
            errors = [line for line in server.log if " ERROR " in line or "Traceback" in line]
        ok = report(args, out)
        if errors:
            ok = False
            print(f"{len(errors)} error line(s) in the server log; the first ones:")
            for line in errors[:10]:
                print("  " + line[:300])
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
