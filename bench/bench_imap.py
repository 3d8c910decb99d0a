#!/usr/bin/env python3
"""IMAP end to end: ImapTest stress against a real ``wildduck serve`` and against Dovecot, in the same run.

    python bench/bench_imap.py [--quick] [--clients 10] [--seconds 30] [--repeat 1] [--imaptest PATH]

ImapTest (https://github.com/dovecot/imaptest, not packaged by Debian: see bench/README.md for the build) runs its
default stress profile: ``clients`` concurrent connections for one user, each logging in, selecting INBOX and doing
a random mix of LIST, STATUS, FETCH, STORE, EXPUNGE and APPEND (messages from the shared corpus mbox), then logging
out and starting over. The baseline in the same run is Debian's Dovecot (``/usr/sbin/dovecot``), configured for speed
(long-lived login processes, pre-forked imap processes, maildir in a temporary directory, a passwd-file user with a
PLAIN password, its own base_dir and port: nothing system-wide is touched). The ratio is wildduck over Dovecot.

Printed per server: ImapTest's totals as operations per second, its error count, and the CPU time the server used
(Dovecot: all of its processes). ImapTest itself runs on the same two cores. If ImapTest reports any error against
wildduck the benchmark fails (exit status 1) after printing the figures. Without ImapTest or Dovecot it says how to
get them and exits with status 2.

    python bench/bench_imap.py --scripted [TESTS_DIR]

runs ImapTest's scripted protocol tests (the ``src/tests`` directory of its source tree; by default the ``tests``
directory next to the binary) against a fresh wildduck instead, and fails unless every test passes.

    python bench/bench_imap.py --against REV [--build REV2] [--repeat 3]

also measures wildduck at git revision REV in the same run (a checkout with its own venv and Cython extensions
under /tmp, made or reused by bench/_builds.py), started and driven exactly like the current one; the runs
alternate between the builds and Dovecot, and the table adds the ratio current/REV. ``--build REV2`` measures a
fixed revision instead of this tree (checked out the same way). With ``--scripted`` both builds run the scripts;
only the current build's failures fail the benchmark.

    python bench/bench_imap.py --deployment all [--instances 1,2] [--repeat 2]

runs every wildduck on the deployments side by side (bench/_deployments.py): the single node (sqlite) and the
scaled-out one (mongodb+redis: a private FerretDB and redis-server per run, with ``--instances`` ``wildduck
serve`` processes on them, behind HAProxy round robin when there are several); the table adds the ratio of each row
over the sqlite one and the CPU of the backend (FerretDB, Redis, HAProxy). ``--scripted`` runs the scripts on
each deployment. FerretDB's lookups are table scans: keep the runs short.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _builds import Build, BuildServer, current_build, revision_build  # noqa: E402
from _deployments import SINGLE, Row, add_arguments, backend, front, rows, servers  # noqa: E402

from wildduck.testing.dovecot import private_dovecot  # noqa: E402
from wildduck.testing.server import process_memory  # noqa: E402

DEFAULT_MBOX = REPO / "tests" / "data" / "imaptest.mbox"
DOVECOT_LIBDIR = "/usr/lib/dovecot"
USER, PASSWORD = "bench", "bench-password"
COUNTERS = ("Logi", "List", "Stat", "Sele", "Fetc", "Fet2", "Stor", "Dele", "Expu", "Appe", "Logo")
CLK_TCK = os.sysconf("SC_CLK_TCK")

HOW_TO_GET_IMAPTEST = """\
ImapTest not found ({where}). It is not packaged by Debian: build it from its source (github.com/dovecot/imaptest,
branch release-2.3) against Debian's dovecot-dev, as bench/README.md describes, then pass its path with --imaptest
or the IMAPTEST environment variable."""

HOW_TO_GET_DOVECOT = """\
Dovecot not found ({where}): apt-get install dovecot-imapd (the system service it starts is not used; this
benchmark runs its own instance from a temporary directory), or pass --dovecot PATH, or --no-dovecot."""


# --- helpers -----------------------------------------------------------------------------------------------------

def tree_cpu_seconds(root: int) -> float:
    """User + system CPU of ``root`` and every live descendant, plus what they reaped (cutime/cstime)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        # fields[0] is state (field 3 of stat); ppid is field 4, utime..cstime are fields 14..17
        stats[int(entry)] = (int(fields[1]), sum(int(x) for x in fields[11:15]) / CLK_TCK)
    children: dict[int, list[int]] = {}
    for pid, (ppid, _cpu) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1]
        todo.extend(children.get(pid, ()))
    return total


def imaptest_env() -> dict[str, str]:
    lib = os.environ.get("LD_LIBRARY_PATH", "")
    return {**os.environ, "LD_LIBRARY_PATH": DOVECOT_LIBDIR + (":" + lib if lib else "")}


@dataclass
class Result:
    """One ImapTest run against one server."""

    totals: dict[str, int]
    seconds: int
    errors: list[str]
    warnings: list[str]
    server_cpu: float  # seconds of user + system CPU of the server (all its processes; every instance)
    client_cpu: float  # the same for ImapTest
    stdout: str
    stderr: str
    server_log_errors: list[str] = field(default_factory=list)
    server_exit: int | None = None  # the server's exit status if it died during the run
    server_log_tail: list[str] = field(default_factory=list)
    rss: int = 0
    backend_cpu: float = 0.0  # the same for FerretDB, Redis and HAProxy (mongodb+redis)

    @property
    def rates(self) -> dict[str, float]:
        return {k: self.totals.get(k, 0) / self.seconds for k in COUNTERS}


def run_imaptest(imaptest: str, address: tuple[str, int], mbox: Path, clients: int, seconds: int,
                 server_pids: list[int], workdir: Path, backend_pids: list[int] | None = None) -> Result:
    """One ImapTest stress run; totals, errors, and the CPU the servers and the backend (process trees) and
    ImapTest used."""
    host, port = address
    cmd = [imaptest, f"host={host}", f"port={port}", f"user={USER}", f"pass={PASSWORD}", f"mbox={mbox}",
           f"clients={clients}", f"secs={seconds}"]

    def cpu(pids: list[int]) -> float:
        return sum(tree_cpu_seconds(pid) for pid in pids)

    cpu_before, backend_before = cpu(server_pids), cpu(backend_pids or [])
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, env=imaptest_env(), cwd=workdir, timeout=seconds + 120)
    server_cpu = cpu(server_pids) - cpu_before
    backend_cpu = cpu(backend_pids or []) - backend_before
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (children_after.ru_utime - children_before.ru_utime
                  + children_after.ru_stime - children_before.ru_stime)
    out = proc.stdout.decode(errors="replace")
    err = proc.stderr.decode(errors="replace")
    totals = parse_totals(out)
    if totals is None:
        raise SystemExit(f"ImapTest printed no totals (exit status {proc.returncode}):\n{out[-3000:]}\n{err[-3000:]}")
    errors = [line for line in err.splitlines() if line.startswith(("Error:", "Panic:", "Fatal:"))]
    warnings = [line for line in err.splitlines() if line.startswith("Warning:")]
    return Result(totals, seconds, errors, warnings, server_cpu, client_cpu, out, err, backend_cpu=backend_cpu)


def parse_totals(out: str) -> dict[str, int] | None:
    """The line of numbers after ``Totals:`` and its header, two lines of percentages."""
    lines = out.splitlines()
    try:
        start = lines.index("Totals:")
    except ValueError:
        return None
    header = lines[start + 1].split()
    for line in lines[start + 2:]:
        numbers = line.split()
        if numbers and all(n.isdigit() for n in numbers) and len(numbers) == len(header):
            return dict(zip(header, map(int, numbers), strict=True))
    return None


# --- wildduck ----------------------------------------------------------------------------------------------------

def wildduck_settings(args: argparse.Namespace, build: Build) -> dict[str, dict[str, object]]:
    """Store and limit settings (every listener is on a port of its own choosing); a per-user connection cap, if
    this version has one, is lifted."""
    defaults = tomllib.loads((build.root / "wildduck" / "default.toml").read_text())
    cap = args.clients * 4 + 100
    store: dict[str, object] = {"synchronous": args.synchronous} if args.synchronous else {}
    if args.fsync_all:
        store["fsync_all"] = True
    return {"store": store, "limits": {"max_connections": cap},
            "imap": {key: cap for key in ("max_connections_per_user", "max_connections_per_ip")
                     if key in defaults.get("imap", {})}}


@contextmanager
def wildduck_servers(args: argparse.Namespace, workdir: Path, build: Build,
                     row: Row = SINGLE) -> Iterator[tuple[list[BuildServer], list[int]]]:
    """The deployment of ``row``, fresh under ``workdir``, with the benchmark user: the started servers of
    ``build`` and the backend's processes."""
    user = ("user", "create", USER, "--password", PASSWORD, "--address", f"{USER}@example.com", "--quota", "100G")
    with backend(row.deployment, workdir) as store, \
            servers(build, workdir, store, row.instances, wildduck_settings(args, build), workers=args.workers,
                    setup=(user,)) as running:
        yield running, store.pids


def profile_path(args: argparse.Namespace, build: Build) -> Path:
    """Where py-spy writes the profile of ``build``: --profile-out, with the label before the suffix for REV."""
    out: Path = args.profile_out
    return out if build is args.builds[0] else out.with_name(f"{out.stem}-{build.label}{out.suffix}")


def run_wildduck(args: argparse.Namespace, workdir: Path, build: Build, row: Row = SINGLE) -> Result:
    with wildduck_servers(args, workdir, build, row) as (running, backend_pids), \
            front(workdir, running, "imap") as (address, proxy_pids):
        pids = [server.proc.pid for server in running if server.proc is not None]
        if args.profile:  # the first instance
            profile = subprocess.Popen(
                [args.profile, "record", "--pid", str(pids[0]), "--subprocesses", "--rate", "200",
                 "--format", "raw", "--gil",
                 "--duration", str(args.seconds), "-o", str(profile_path(args, build))],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        result = run_imaptest(args.imaptest, address, args.mbox, args.clients, args.seconds, pids, workdir,
                              backend_pids + proxy_pids)
        if args.profile:
            profile.wait(60)
        result.rss = sum(process_memory(pid).get("VmRSS", 0) for pid in pids)
        exits = [server.proc.poll() for server in running if server.proc is not None]
        result.server_exit = next((code for code in exits if code is not None), None)
    for server in running:
        result.server_log_errors += [line for line in server.log
                                     if any(w in line for w in (" ERROR ", " CRITICAL ", "Traceback"))]
        result.server_log_tail += server.log[-40 // len(running):]
    if result.server_exit is not None:
        result.server_log_errors.append(f"a server exited during the run with status {result.server_exit}")
    return result


def run_scripted(args: argparse.Namespace) -> None:
    """ImapTest's scripted protocol tests (``test=DIR``) against a fresh wildduck of each build on each deployment
    row; exit status 1 if any fails against the current build."""
    tests = Path(args.scripted)
    if not tests.is_dir():
        raise SystemExit(f"no ImapTest test directory {tests} (the src/tests directory of the ImapTest source tree)")
    passed: dict[tuple[str, Row], bool] = {}
    for build in args.builds:
        for row in args.rows:
            with tempfile.TemporaryDirectory(prefix="bench-imap-scripted-") as tmp, \
                    wildduck_servers(args, Path(tmp), build, row) as (running, _pids), \
                    front(Path(tmp), running, "imap") as ((host, port), _proxy):
                proc = subprocess.run([args.imaptest, f"host={host}", f"port={port}", f"user={USER}",
                                       f"pass={PASSWORD}", f"test={tests}"],
                                      capture_output=True, env=imaptest_env(), cwd=tmp, timeout=1800)
            out = (proc.stdout + proc.stderr).decode(errors="replace")
            on = "" if args.rows == [SINGLE] else f" on {row.label}"
            print(f"ImapTest scripted tests ({tests}) against wildduck {build.describe()}{on}:")
            print(out.rstrip())
            summary = re.search(r"(\d+) test groups: (\d+) failed", out)
            commands = re.findall(r"(\d+)/(\d+) individual commands failed", out)
            passed[build.label, row] = not (proc.returncode != 0 or summary is None or summary.group(2) != "0"
                                            or any(f != "0" for f, _n in commands))
            print(f"=> {'passed' if passed[build.label, row] else 'FAILED'} ({build.label}{on})\n")
    failed = [row.label for row in args.rows if not passed[args.builds[0].label, row]]
    if failed:
        print("FAILED: ImapTest scripted tests failed against wildduck on " + ", ".join(failed), file=sys.stderr)
        raise SystemExit(1)


# --- Dovecot -----------------------------------------------------------------------------------------------------

def run_dovecot(args: argparse.Namespace, workdir: Path) -> Result:
    workdir.chmod(0o755)  # Dovecot's unprivileged processes must reach the instance directory below it
    try:
        with private_dovecot(workdir / "dovecot", USER, PASSWORD, binary=args.dovecot, speed=True) as instance:
            result = run_imaptest(args.imaptest, ("127.0.0.1", instance.port), args.mbox, args.clients, args.seconds,
                                  [instance.pid], workdir)
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None
    log = workdir / "dovecot" / "dovecot.log"
    lines = log.read_text().splitlines() if log.exists() else []
    result.server_log_errors = [line for line in lines if "Error:" in line or "Panic:" in line or "Fatal:" in line]
    result.server_log_tail = lines[-40:]
    return result


# --- report ------------------------------------------------------------------------------------------------------

@dataclass
class Summary:
    """Medians over the runs of one server; errors of every run."""

    rates: dict[str, float]
    server_cpu: float
    client_cpu: float
    backend_cpu: float
    errors: list[str]
    server_log_errors: list[str]
    failed_log_tail: list[str]  # the server log's end, from the first run with errors
    logins: list[float]  # logins/s of every run, in run order (for the spread)

    @classmethod
    def of(cls, runs: list[Result]) -> Summary:
        return cls(
            rates={k: statistics.median(r.rates[k] for r in runs) for k in COUNTERS},
            server_cpu=statistics.median(r.server_cpu for r in runs),
            client_cpu=statistics.median(r.client_cpu for r in runs),
            backend_cpu=statistics.median(r.backend_cpu for r in runs),
            errors=[e for r in runs for e in r.errors],
            server_log_errors=[e for r in runs for e in r.server_log_errors],
            failed_log_tail=next((r.server_log_tail for r in runs if r.errors or r.server_log_errors), []),
            logins=[r.rates["Logi"] for r in runs],
        )


def ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def ratio_pairs(entries: list[tuple[str, Build, Row]], builds: list[Build], dovecot: bool) -> list[tuple[str, str]]:
    """The ratios to print: every wildduck row over Dovecot; every other deployment row of the current build over
    its first (sqlite) row; the current build over each REV on the same row."""
    pairs = [(name, "dovecot") for name, _b, _r in entries] if dovecot else []
    current = {row: name for name, build, row in entries if build is builds[0]}
    first = next(iter(current.values()))
    pairs += [(name, first) for name in current.values() if name != first]
    pairs += [(current[row], name) for name, build, row in entries if build is not builds[0]]
    return pairs


def print_table(results: dict[str, Summary], seconds: int, pairs: list[tuple[str, str]]) -> None:
    """Medians per server, then the ``pairs`` of ratios (``a/b``: ``a`` over ``b``)."""
    w = max([12] + [len(a) + len(b) + 2 for a, b in pairs] + [len(name) + 1 for name in results])
    has_backend = any(r.backend_cpu for r in results.values())
    print(f"{'per second':{w}}" + "".join(f"{k:>7}" for k in COUNTERS) + f"{'errors':>7}{'srv CPU':>9}{'cli CPU':>9}"
          + (f"{'bk CPU':>9}" if has_backend else ""))
    for name, r in results.items():
        print(f"{name:{w}}" + "".join(f"{r.rates[k]:7.1f}" for k in COUNTERS)
              + f"{len(r.errors):7d}{r.server_cpu:8.1f}s{r.client_cpu:8.1f}s"
              + (f"{r.backend_cpu:8.1f}s" if has_backend else ""))
    for a, b in pairs:
        ra, rb = results[a], results[b]
        print(f"{a + '/' + b:{w}}" + "".join(f"{ratio(ra.rates[k], rb.rates[k]):6.2f}x" for k in COUNTERS))

    def per_cycle(r: Summary) -> str:
        cycles = max(r.rates["Logi"] * seconds, 1)
        return f"{1000 * r.server_cpu / cycles:.2f} ms" + (
            f" (+ backend {1000 * r.backend_cpu / cycles:.2f} ms)" if r.backend_cpu else "")

    print("server CPU per login cycle: " + ", ".join(f"{name} {per_cycle(r)}" for name, r in results.items()))
    if len(next(iter(results.values())).logins) > 1:
        print("logins/s per run (spread = (max - min) / median): " + "; ".join(
            f"{name} " + " ".join(f"{x:.1f}" for x in r.logins)
            + f" ({(max(r.logins) - min(r.logins)) / statistics.median(r.logins):.0%})"
            for name, r in results.items()))
    for a, b in pairs:
        ra, rb = results[a], results[b]
        line = (f"{a} / {b}: logins/s {ratio(ra.rates['Logi'], rb.rates['Logi']):.2f}x, "
                f"FETCH/s {ratio(ra.rates['Fetc'], rb.rates['Fetc']):.2f}x")
        if len(ra.logins) > 1 and len(ra.logins) == len(rb.logins):
            # runs i of both servers were neighbours in time: the ratio per round shows how much of it is noise
            line += "; logins/s ratio per round " + " ".join(f"{ratio(x, y):.2f}" for x, y in zip(ra.logins,
                                                                                            rb.logins, strict=True))
        print(("** " if b != "dovecot" else "") + line)


def error_kinds(errors: list[str]) -> list[tuple[str, int]]:
    """ImapTest error lines grouped (client names and numbers blanked), most frequent first; one example each."""
    kinds: dict[str, tuple[str, int]] = {}
    for line in errors:
        key = re.sub(r"\d+", "N", line)
        example, count = kinds.get(key, (line, 0))
        kinds[key] = (example, count + 1)
    return sorted(kinds.values(), key=lambda kv: -kv[1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 s runs")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1, help="wildduck server processes ([server] workers)")
    parser.add_argument("--synchronous", choices=("full", "normal"), help="wildduck's [store] synchronous")
    parser.add_argument("--fsync-all", action="store_true", help="wildduck's [store] fsync_all = true")
    parser.add_argument("--seconds", type=int, default=None, help="ImapTest secs= (default 30, --quick 5)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per server (alternating); medians are printed")
    parser.add_argument("--imaptest", default=os.environ.get("IMAPTEST", "imaptest"),
                        help="ImapTest binary (default: $IMAPTEST, else imaptest on PATH)")
    parser.add_argument("--dovecot", default=os.environ.get("DOVECOT", "/usr/sbin/dovecot"))
    parser.add_argument("--no-dovecot", action="store_true", help="wildduck only (no baseline, no ratio)")
    parser.add_argument("--mbox", type=Path, default=Path(os.environ.get("IMAPTEST_MBOX", DEFAULT_MBOX)))
    parser.add_argument("--profile", metavar="PY_SPY", help="record the wildduck server with this py-spy binary")
    parser.add_argument("--profile-out", type=Path, default=Path("wildduck-imap.pyspy.txt"))
    parser.add_argument("--show-errors", type=int, default=20, help="error lines to print per server")
    parser.add_argument("--against", metavar="REV", action="append", default=[],
                        help="also measure wildduck at git revision REV in the same run (its own checkout and venv "
                             "under /tmp, see bench/_builds.py); the table adds current/REV; may be repeated")
    parser.add_argument("--build", metavar="REV",
                        help="measure wildduck at REV (checked out like --against) as the current build, instead of "
                             "this tree")
    parser.add_argument("--scripted", metavar="TESTS_DIR", nargs="?", const="",
                        help="instead of the stress run, run ImapTest's scripted tests (default directory: "
                             "tests/ next to the imaptest binary, as in a build tree) against wildduck")
    add_arguments(parser)
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (5 if args.quick else 30)

    found = shutil.which(args.imaptest)
    if found is None:
        print(HOW_TO_GET_IMAPTEST.format(where=args.imaptest), file=sys.stderr)
        raise SystemExit(2)
    args.imaptest = found
    args.builds = [revision_build(args.build) if args.build else current_build()]
    args.builds += [revision_build(rev) for rev in args.against]
    if len({b.commit for b in args.builds}) < len(args.builds):
        raise SystemExit("--against names the same commit as the current build")
    for b in args.builds:
        print(("current " if b is args.builds[0] else "against ") + b.describe())
    args.rows = rows(args)
    if args.scripted is not None:
        args.scripted = args.scripted or str(Path(args.imaptest).resolve().parent / "tests")
        run_scripted(args)
        return
    if not args.no_dovecot:
        found = shutil.which(args.dovecot)
        if found is None:
            print(HOW_TO_GET_DOVECOT.format(where=args.dovecot), file=sys.stderr)
            raise SystemExit(2)
        args.dovecot = found
    if not args.mbox.is_file():
        raise SystemExit(f"mbox {args.mbox} not found (--mbox or IMAPTEST_MBOX)")

    # a row per build and deployment (the rows named by the build alone when only the single node runs)
    entries = [(b.label if args.rows == [SINGLE] else f"{b.label} {row.label}", b, row)
               for row in args.rows for b in args.builds]
    order: list[tuple[str, Build | None, Row]] = [*entries] + ([] if args.no_dovecot else [("dovecot", None, SINGLE)])
    print(f"ImapTest stress: clients={args.clients} secs={args.seconds} user={USER} mbox={args.mbox.name}, "
          f"{args.repeat} run(s) per server, alternating (" + ", ".join(name for name, *_ in order)
          + ", then the reverse order)")
    width = max(9, *(len(name) for name, *_ in order))
    runs: dict[str, list[Result]] = {name: [] for name, *_ in order}
    for i in range(args.repeat):
        for name, build, row in order if i % 2 == 0 else order[::-1]:
            with tempfile.TemporaryDirectory(prefix="bench-imap-") as tmp:
                r = (run_dovecot(args, Path(tmp)) if build is None else run_wildduck(args, Path(tmp), build, row))
            runs[name].append(r)
            print(f"  run {i + 1} {name:{width}} Logi {r.totals.get('Logi', 0):6d}  "
                  f"Fetc {r.totals.get('Fetc', 0):6d}  errors {len(r.errors)}  server CPU {r.server_cpu:.1f} s"
                  + (f"  backend CPU {r.backend_cpu:.1f} s" if r.backend_cpu else "")
                  + (f"  RSS {r.rss / 2**20:.0f} MiB" if r.rss else ""), flush=True)
    results = {name: Summary.of(rs) for name, rs in runs.items()}
    print()
    print_table(results, args.seconds, ratio_pairs(entries, args.builds, not args.no_dovecot))
    if args.profile:
        for b in args.builds:
            print(f"py-spy profile of the wildduck server {b.label} (last run): {profile_path(args, b)}")

    current = {name for name, build, _row in entries if build is args.builds[0]}
    failed: list[str] = []
    for name, summary in results.items():
        if summary.errors:
            print(f"\n{name}: ImapTest reported {len(summary.errors)} error(s); the most frequent ones:")
            for line, count in error_kinds(summary.errors)[:args.show_errors]:
                print(f"  {count:6d} x {line[:300]}")
        if summary.server_log_errors:
            print(f"\n{name}: {len(summary.server_log_errors)} error line(s) in the server log; the first ones:")
            for line in summary.server_log_errors[:args.show_errors]:
                print("  " + line[:300])
        if summary.failed_log_tail:
            print(f"\n{name}: the end of the server log of the first run with errors:")
            for line in summary.failed_log_tail:
                print("  | " + line[:300])
        if name in current and (summary.errors or summary.server_log_errors):
            failed.append(name)
    if failed:
        print(f"\nFAILED: ImapTest found errors against wildduck ({', '.join(failed)})", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
