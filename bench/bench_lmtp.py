#!/usr/bin/env python3
"""LMTP end to end on loopback: a real ``wildduck serve`` process, concurrent clients, bytes on disk.

    python bench/bench_lmtp.py [--quick] [--clients 10] [--seconds 20] [--workers N] [--no-dovecot]

Each client (a thread with its own connection) sends 50 KB messages carrying a 30 KB attachment as fast as the
server acknowledges them. Two workloads: every message carries the SAME attachment (a newsletter: deduplicated),
or each carries its own random one (compression only). The baseline in the same run is the same server with the
pure-Python speedups (WILDDUCK_NO_EXTENSIONS=1); the ratio is Cython over pure. The same clients also drive Debian's
Dovecot LMTP (``dovecot-lmtpd``; maildir, its default ``mail_fsync = optimized``, which fsyncs each delivered
message before the 250; pre-forked lmtp processes), and the last line is wildduck (Cython) over Dovecot. Clients
and servers share the machine's cores, so these are figures for the whole loop, not for the server alone.
``--workers N`` runs wildduck with N server processes.

    python bench/bench_lmtp.py --against REV [--build REV2] [--repeat 3]

measures this tree's server (Cython) against wildduck at git revision REV (Cython; its own checkout and venv
under /tmp, made or reused by bench/_builds.py) instead of against the pure-Python build: same clients, same
messages, the runs alternating between the two; the ratio is current over REV. ``--build REV2`` measures a fixed
revision instead of this tree. With ``--repeat N`` every row is run N times (alternating) and medians are printed.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _builds import Build, current_build, revision_build  # noqa: E402

from wildduck.testing.dovecot import DOVECOT, private_dovecot  # noqa: E402
from wildduck.testing.lmtp_client import LMTPClient  # noqa: E402

SHARED_ATTACHMENT = os.urandom(30_000)


def message(n: int, shared: bool) -> bytes:
    text = b"".join(b"Line %05d of message %d: some realistic words in a mail body...\r\n" % (i, n)
                    for i in range(120))
    attachment = SHARED_ATTACHMENT if shared else os.urandom(30_000)
    b64 = base64.encodebytes(attachment).replace(b"\n", b"\r\n")
    return (b"From: bench@example.net\r\nTo: user@example.com\r\nSubject: bench %d\r\n"
            b"Message-ID: <bench-%d@example.net>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=BB\r\n\r\n--BB\r\nContent-Type: text/plain\r\n\r\n" % (n, n)
            + text + b"--BB\r\nContent-Type: application/pdf; name=report.pdf\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + b64 + b"--BB--\r\n")


def drive(host: str, port: int, recipient: str, clients: int, seconds: float, shared: bool) -> dict[str, float]:
    """``clients`` connections sending messages to ``recipient`` for ``seconds``: messages, rate, MB/s."""
    messages = [message(i, shared) for i in range(200)] if shared else []
    raw_bytes = 0
    done = 0
    lock = threading.Lock()
    stop = threading.Event()

    def client(k: int) -> None:
        nonlocal raw_bytes, done
        with LMTPClient(host, port) as c:
            c.lhlo()
            i = k
            while not stop.is_set():
                msg = messages[i % len(messages)] if shared else message(i, False)
                _r, replies = c.send_message("bench@example.net", [recipient], msg)
                if replies and replies[0][0] == 250:
                    with lock:
                        done += 1
                        raw_bytes += len(msg)
                i += clients

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {"msgs": done, "rate": done / elapsed, "mbps": raw_bytes / elapsed / 1e6, "raw": raw_bytes}


def run_server(workdir: Path, build: Build, env: dict[str, str], clients: int, seconds: float,
               shared: bool, workers: int = 1) -> dict[str, float]:
    data_dir = workdir / "data"
    config = workdir / "wildduck.toml"
    config.write_text(f'[server]\ndata_dir = "{data_dir}"\n{build.workers_setting(workers)}'
                      "[lmtp]\nport = 0\n[imap]\nenabled = false\n"
                      f"[limits]\nmax_connections = {clients + 10}\n")
    build.init_store(config, env=env)
    build.run("--config", str(config), "user", "create", "user", "--password", "pw",
              "--address", "user@example.com", "--quota", "100G", env=env)
    with build.server(config, env=env) as server:
        result = drive(*server.address("lmtp"), "user@example.com", clients, seconds, shared)
    db = data_dir / "wildduck.db"
    wal = data_dir / "wildduck.db-wal"
    result["disk"] = db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    return result


def run_dovecot(workdir: Path, clients: int, seconds: float, shared: bool) -> dict[str, float]:
    """The same clients against Debian's Dovecot LMTP (maildir, its default mail_fsync = optimized: each
    delivered file is fsynced before the 250), configured for speed."""
    workdir.chmod(0o755)  # Dovecot's unprivileged processes must reach the maildir
    with private_dovecot(workdir / "dovecot", "user", "pw", speed=True, protocols="imap lmtp") as dovecot:
        assert dovecot.lmtp_port is not None
        result = drive("127.0.0.1", dovecot.lmtp_port, "user@example.com", clients, seconds, shared)
        home = dovecot.directory / "home" / "user"
        result["disk"] = sum(f.stat().st_size for f in home.rglob("*") if f.is_file())
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1, help="wildduck server processes ([server] workers)")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--repeat", type=int, default=1, help="runs per row (alternating); medians are printed")
    parser.add_argument("--against", metavar="REV",
                        help="baseline: wildduck at git revision REV (Cython) instead of the pure-Python build")
    parser.add_argument("--build", metavar="REV", help="measure wildduck at REV instead of this tree")
    parser.add_argument("--no-dovecot", action="store_true", help="no Dovecot row (it needs dovecot-lmtpd)")
    args = parser.parse_args(argv)
    dovecot = not args.no_dovecot
    if dovecot and not (Path(DOVECOT).exists() and Path("/usr/lib/dovecot/lmtp").exists()):
        raise SystemExit("the Dovecot baseline needs Debian's dovecot-imapd and dovecot-lmtpd (or --no-dovecot)")
    seconds = args.seconds or (3.0 if args.quick else 20.0)
    current = revision_build(args.build) if args.build else current_build()
    print("current " + current.describe())
    if args.against:
        against = revision_build(args.against)
        if against.commit == current.commit:
            raise SystemExit("--against names the same commit as the current build")
        print("against " + against.describe())
        # the baseline first, as in the pure/Cython comparison: the ratio is the second row over the first
        impls = [(against.label, against, {}), (current.label, current, {})]
    else:
        impls = [("pure", current, {"WILDDUCK_NO_EXTENSIONS": "1"}), ("cython", current, {})]
    print(f"{args.clients} clients, {seconds:.0f} s per run, 50 KB messages with a 30 KB attachment, "
          f"{args.repeat} run(s) per row" + (", alternating" if args.repeat > 1 else ""))
    for shared in (True, False):
        label = "same attachment" if shared else "unique attachments"
        runs: dict[str, list[dict[str, float]]] = {name: [] for name, _b, _e in impls}
        if dovecot:
            runs["dovecot"] = []
        for i in range(args.repeat):
            rows: list[tuple[str, Build | None, dict[str, str]]] = [*impls, ("dovecot", None, {})][
                :len(impls) + dovecot]
            for name, build, env in rows if i % 2 == 0 else rows[::-1]:
                with tempfile.TemporaryDirectory() as tmp:
                    r = (run_dovecot(Path(tmp), args.clients, seconds, shared) if build is None else
                         run_server(Path(tmp), build, env, args.clients, seconds, shared, args.workers))
                runs[name].append(r)
                if args.repeat > 1:
                    print(f"  run {i + 1} {label + ', ' + name:34} {r['msgs']:6.0f} msgs {r['rate']:8.1f} msgs/s",
                          flush=True)
        print(f"{'run':34} {'msgs':>6} {'msgs/s':>8} {'MB/s':>6} {'disk/msg':>9} {'disk/raw':>9} {'ratio':>6}"
              + ("  msgs/s per run (spread)" if args.repeat > 1 else ""))
        base = statistics.median(r["rate"] for r in runs[impls[0][0]])
        for name, rs in runs.items():
            med = {k: statistics.median(r[k] for r in rs) for k in ("msgs", "rate", "mbps", "raw", "disk")}
            rates = [r["rate"] for r in rs]
            spread = (f"  {' '.join(f'{x:.1f}' for x in rates)} ({(max(rates) - min(rates)) / med['rate']:.0%})"
                      if args.repeat > 1 else "")
            print(f"{label + ', ' + name:34} {med['msgs']:6.0f} {med['rate']:8.1f} {med['mbps']:6.2f} "
                  f"{med['disk'] / max(med['msgs'], 1) / 1024:7.1f}KB {med['disk'] / max(med['raw'], 1):9.1%} "
                  f"{med['rate'] / base:5.2f}x" + spread)
        if dovecot:
            ours = statistics.median(r["rate"] for r in runs[impls[-1][0]])
            theirs = statistics.median(r["rate"] for r in runs["dovecot"])
            if not theirs:
                raise SystemExit("Dovecot delivered nothing: see its log")
            print(f"** {label}: wildduck {impls[-1][0]} ({args.workers} worker{'s' * (args.workers > 1)}) / dovecot "
                  f"msgs/s {ours / theirs:.2f}x")
        if args.against and args.repeat > 1:
            pairs = zip(runs[impls[1][0]], runs[impls[0][0]], strict=True)
            cur = statistics.median(r["rate"] for r in runs[impls[1][0]])
            print(f"** {label}: {impls[1][0]} / {impls[0][0]} msgs/s {cur / base:.2f}x (medians); "
                  "per round " + " ".join(f"{a['rate'] / b['rate']:.2f}" for a, b in pairs))


if __name__ == "__main__":
    main()
