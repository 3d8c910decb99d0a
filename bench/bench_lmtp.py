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

    python bench/bench_lmtp.py --deployment all [--instances 1,2] [--repeat 2]

measures the deployments side by side instead (bench/_deployments.py): the single node (sqlite, one process with
its ``--workers``) and the scaled-out one (mongodb+redis: a private FerretDB and redis-server per run, with
``--instances`` ``wildduck serve`` processes on them, the clients split over the instances), all with the Cython
build; the ratio is over the sqlite row. The table adds the CPU per message of the servers and of the backend
(FerretDB and Redis). FerretDB's lookups are table scans: keep the runs short.

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
from _deployments import SINGLE, Row, add_arguments, backend, rows, servers  # noqa: E402
from bench_imap import tree_cpu_seconds  # noqa: E402

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


def drive(addresses: list[tuple[str, int]], recipient: str, clients: int, seconds: float, shared: bool,
          cpu_pids: tuple[list[int], list[int]] = ([], [])) -> dict[str, float]:
    """``clients`` connections (client k to ``addresses[k % len(addresses)]``) sending messages to ``recipient``
    for ``seconds``: messages, rate, MB/s, refused deliveries, and the CPU seconds the processes of ``cpu_pids``
    (servers, backend: each with its descendants) used meanwhile."""
    messages = [message(i, shared) for i in range(200)] if shared else []
    raw_bytes = 0
    done = 0
    refused: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(k: int) -> None:
        nonlocal raw_bytes, done
        with LMTPClient(*addresses[k % len(addresses)]) as c:
            c.lhlo()
            i = k
            while not stop.is_set():
                msg = messages[i % len(messages)] if shared else message(i, False)
                _r, replies = c.send_message("bench@example.net", [recipient], msg)
                with lock:
                    if replies and replies[0][0] == 250:
                        done += 1
                        raw_bytes += len(msg)
                    else:
                        refused.append(repr(replies or _r))
                i += clients

    def cpu() -> list[float]:
        return [sum(tree_cpu_seconds(pid) for pid in pids) for pids in cpu_pids]

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    cpu_before = cpu()
    started = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    server_cpu, backend_cpu = cpu()
    if refused:
        print(f"    {len(refused)} deliveries refused, the first: {refused[0][:300]}", flush=True)
    return {"msgs": done, "rate": done / elapsed, "mbps": raw_bytes / elapsed / 1e6, "raw": raw_bytes,
            "refused": len(refused), "srv_cpu": server_cpu - cpu_before[0], "bk_cpu": backend_cpu - cpu_before[1]}


def run_server(workdir: Path, build: Build, env: dict[str, str], clients: int, seconds: float,
               shared: bool, workers: int = 1, row: Row = SINGLE) -> dict[str, float]:
    """One run against ``build`` on the deployment of ``row``, every part of it fresh under ``workdir``."""
    sections: dict[str, dict[str, object]] = {"lmtp": {"port": 0}, "imap": {"enabled": False},
                                              "limits": {"max_connections": clients + 10}}
    user = ("user", "create", "user", "--password", "pw", "--address", "user@example.com", "--quota", "100G")
    with backend(row.deployment, workdir) as store, \
            servers(build, workdir, store, row.instances, sections, workers=workers, env=env,
                    setup=(user,)) as running:
        pids = [s.proc.pid for s in running if s.proc is not None]
        result = drive([s.address("lmtp") for s in running], "user@example.com", clients, seconds, shared,
                       (pids, store.pids))
        result["disk"] = store.stored_bytes(workdir)
    if result["refused"]:
        logged = [line for s in running for line in s.log if any(w in line for w in (" ERROR ", "Traceback"))]
        for line in logged[:5]:
            print(f"    server log: {line[:300]}")
    return result


def run_dovecot(workdir: Path, clients: int, seconds: float, shared: bool) -> dict[str, float]:
    """The same clients against Debian's Dovecot LMTP (maildir, its default mail_fsync = optimized: each
    delivered file is fsynced before the 250), configured for speed."""
    workdir.chmod(0o755)  # Dovecot's unprivileged processes must reach the maildir
    with private_dovecot(workdir / "dovecot", "user", "pw", speed=True, protocols="imap lmtp") as dovecot:
        assert dovecot.lmtp_port is not None
        result = drive([("127.0.0.1", dovecot.lmtp_port)], "user@example.com", clients, seconds, shared,
                       ([dovecot.pid], []))
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
    add_arguments(parser)
    args = parser.parse_args(argv)
    dovecot = not args.no_dovecot
    if dovecot and not (Path(DOVECOT).exists() and Path("/usr/lib/dovecot/lmtp").exists()):
        raise SystemExit("the Dovecot baseline needs Debian's dovecot-imapd and dovecot-lmtpd (or --no-dovecot)")
    deployments = rows(args)
    seconds = args.seconds or (3.0 if args.quick else 20.0)
    current = revision_build(args.build) if args.build else current_build()
    print("current " + current.describe())
    builds: list[tuple[str, Build, dict[str, str]]]
    if args.against:
        against = revision_build(args.against)
        if against.commit == current.commit:
            raise SystemExit("--against names the same commit as the current build")
        print("against " + against.describe())
        # the baseline first, as in the pure/Cython comparison: the ratio is the second row over the first
        builds = [(against.label, against, {}), (current.label, current, {})]
    elif deployments == [SINGLE]:
        builds = [("pure", current, {"WILDDUCK_NO_EXTENSIONS": "1"}), ("cython", current, {})]
    else:  # deployments side by side: the Cython build on each, the sqlite row the baseline
        builds = [("cython", current, {})]
    impls = [(name if deployments == [SINGLE] else f"{name} {row.label}", build, env, row)
             for row in deployments for name, build, env in builds]
    print(f"{args.clients} clients, {seconds:.0f} s per run, 50 KB messages with a 30 KB attachment, "
          f"{args.repeat} run(s) per row" + (", alternating" if args.repeat > 1 else "")
          + ("" if deployments == [SINGLE] else ", deployments " + ", ".join(r.label for r in deployments)))
    for shared in (True, False):
        label = "same attachment" if shared else "unique attachments"
        width = max(len(f"{label}, {name}") for name, *_ in [*impls, ("dovecot",)]) + 1
        runs: dict[str, list[dict[str, float]]] = {name: [] for name, *_ in impls}
        if dovecot:
            runs["dovecot"] = []
        for i in range(args.repeat):
            order: list[tuple[str, Build | None, dict[str, str], Row]] = [*impls, ("dovecot", None, {}, SINGLE)][
                :len(impls) + dovecot]
            for name, build, env, row in order if i % 2 == 0 else order[::-1]:
                with tempfile.TemporaryDirectory() as tmp:
                    r = (run_dovecot(Path(tmp), args.clients, seconds, shared) if build is None else
                         run_server(Path(tmp), build, env, args.clients, seconds, shared, args.workers, row))
                runs[name].append(r)
                if args.repeat > 1:
                    print(f"  run {i + 1} {label + ', ' + name:{width}} {r['msgs']:6.0f} msgs {r['rate']:8.1f} "
                          "msgs/s", flush=True)
        print(f"{'run':{width}} {'msgs':>6} {'msgs/s':>8} {'MB/s':>6} {'disk/msg':>9} {'disk/raw':>9} {'ratio':>6}"
              f" {'srv ms/msg':>10} {'bk ms/msg':>9}" + ("  msgs/s per run (spread)" if args.repeat > 1 else ""))
        base = statistics.median(r["rate"] for r in runs[impls[0][0]]) or 1.0
        for name, rs in runs.items():
            med = {k: statistics.median(r[k] for r in rs)
                   for k in ("msgs", "rate", "mbps", "raw", "disk", "srv_cpu", "bk_cpu")}
            rates = [r["rate"] for r in rs]
            spread = (f"  {' '.join(f'{x:.1f}' for x in rates)} ({(max(rates) - min(rates)) / med['rate']:.0%})"
                      if args.repeat > 1 else "")
            msgs = max(med["msgs"], 1)
            print(f"{label + ', ' + name:{width}} {med['msgs']:6.0f} {med['rate']:8.1f} {med['mbps']:6.2f} "
                  f"{med['disk'] / msgs / 1024:7.1f}KB {med['disk'] / max(med['raw'], 1):9.1%} "
                  f"{med['rate'] / base:5.2f}x {1000 * med['srv_cpu'] / msgs:10.2f} "
                  f"{1000 * med['bk_cpu'] / msgs:9.2f}" + spread)
        refused = {name: sum(r["refused"] for r in rs) for name, rs in runs.items()}
        if any(refused.values()):
            print("refused deliveries (all runs): " + ", ".join(f"{n} {c}" for n, c in refused.items() if c))
        if dovecot:
            theirs = statistics.median(r["rate"] for r in runs["dovecot"])
            if not theirs:
                raise SystemExit("Dovecot delivered nothing: see its log")
            for name, build, env, _row in impls:
                if build is current and not env:
                    ours = statistics.median(r["rate"] for r in runs[name])
                    print(f"** {label}: wildduck {name} ({args.workers} worker{'s' * (args.workers > 1)}) / "
                          f"dovecot msgs/s {ours / theirs:.2f}x")
        if args.against and args.repeat > 1:
            for k in range(0, len(impls), 2):  # per deployment: REV, then current
                (was, *_), (now, *_) = impls[k:k + 2]
                pairs = zip(runs[now], runs[was], strict=True)
                cur = statistics.median(r["rate"] for r in runs[now])
                old = statistics.median(r["rate"] for r in runs[was])
                print(f"** {label}: {now} / {was} msgs/s {cur / old:.2f}x (medians); "
                      "per round " + " ".join(f"{a['rate'] / b['rate']:.2f}" for a, b in pairs))
        if any(refused[name] for name, build, *_ in impls if build is current):
            raise SystemExit(f"FAILED: wildduck refused deliveries ({label})")


if __name__ == "__main__":
    main()
