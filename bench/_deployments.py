"""Deployments for the macro benchmarks: ``--deployment sqlite|mongodb+redis|all`` and ``--instances N[,M...]``.

"sqlite" is the single node (the embedded store, in-process nudges and counters): one ``wildduck serve`` (with its
``--workers``), as the benchmarks always ran it. "mongodb+redis" is the scaled-out deployment, as
``tests/deployments.py`` builds it for the protocol suites: a private FerretDB (``wildduck.testing.ferretdb``, the
tests' server, its SQLite handler in the run's temporary directory) and a private ``redis-server``
(``wildduck.testing.redis``), fresh for every run, and N ``wildduck serve`` processes on them, each with a data
directory of its own. A client reaches one of them: LMTP clients are split over the instances, ImapTest (one host
and port) goes through Debian's HAProxy in TCP mode, round robin (``wildduck.testing.haproxy``), when there is more
than one. The sqlite rows always have one instance (several processes of a single node are ``--workers``).

FerretDB is not MongoDB: its ``_id`` lookups are table scans, so its rates fall as the data grows. Keep these runs
short; the rates measure wildduck's work plus FerretDB's, and the round trips per operation (bench/README.md) are
what predicts a real cluster.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _builds import Build, BuildServer

from tests.deployments import DEPLOYMENTS, Deployment
from wildduck.testing import ferretdb, haproxy
from wildduck.testing.redis import private_redis
from wildduck.testing.server import free_port

Sections = Mapping[str, Mapping[str, Any]]

#: every listener of a benchmark's server on a port of its own choosing (the ready line tells it): several instances,
#: and other runs on the machine, must not meet on the default ports
EPHEMERAL: dict[str, dict[str, Any]] = {"lmtp": {"port": 0}, "imap": {"port": 0, "tls_port": 0},
                                        "pop3": {"port": 0, "tls_port": 0}, "api": {"port": 0}}


@dataclass(frozen=True)
class Row:
    """One deployment with a number of ``wildduck serve`` instances: a row of a benchmark's table."""

    deployment: str
    instances: int = 1

    @property
    def label(self) -> str:
        return self.deployment + (f" x{self.instances}" if self.instances > 1 else "")


SINGLE = Row("sqlite")


def _counts(text: str) -> list[int]:
    try:
        counts = [int(n) for n in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("instance counts are 1 or more")
    return counts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--deployment", choices=(*DEPLOYMENTS, "all"), default="sqlite",
                        help="sqlite (the single node, the default), mongodb+redis (a private FerretDB and Redis), "
                             "or all (a row of each in the same run; the ratios are over the sqlite row)")
    parser.add_argument("--instances", type=_counts, default=[1], metavar="N[,M...]",
                        help="wildduck serve processes on the one mongodb+redis backend (a row for each count given; "
                             "the sqlite row has one)")


def rows(args: argparse.Namespace) -> list[Row]:
    """The rows ``--deployment`` and ``--instances`` ask for, the sqlite one (the baseline) first. Fails with exit
    status 2 when a tool a row needs is missing."""
    names = DEPLOYMENTS if args.deployment == "all" else (args.deployment,)
    if names == ("sqlite",) and args.instances != [1]:
        raise SystemExit("--instances is for the mongodb+redis deployment (--deployment mongodb+redis or all); "
                         "several processes of the single node are --workers N")
    chosen = [SINGLE] if "sqlite" in names else []
    if "mongodb+redis" in names:
        missing = (ferretdb.unavailable() or (None if shutil.which("redis-server") else
                                              "redis-server is not installed (Debian package redis-server)"))
        if missing:
            print(f"the mongodb+redis deployment cannot run here: {missing}")
            raise SystemExit(2)
        chosen += [Row("mongodb+redis", n) for n in dict.fromkeys(args.instances)]
    return chosen


@dataclass
class Backend:
    """The shared part of a deployment while a run lasts: its configuration sections and its processes."""

    deployment: Deployment
    pids: list[int] = field(default_factory=list)  # FerretDB and redis-server (none for sqlite)
    data: Path | None = None  # FerretDB's data directory

    def stored_bytes(self, workdir: Path) -> int:
        """Bytes the store holds on disk: the SQLite file and its write-ahead log of the first instance under
        ``workdir``, or every file of FerretDB's data directory (its own SQLite files: not what MongoDB would
        take)."""
        if self.data is not None:
            return sum(f.stat().st_size for f in self.data.rglob("*") if f.is_file())
        files = [instance_dir(workdir, 0) / "data" / name for name in ("wildduck.db", "wildduck.db-wal")]
        return sum(f.stat().st_size for f in files if f.exists())


def instance_dir(workdir: Path, k: int) -> Path:
    return workdir / f"wildduck-{k}"


@contextmanager
def backend(deployment: str, workdir: Path) -> Iterator[Backend]:
    """The backend of ``deployment`` under ``workdir``, stopped when the block ends."""
    if deployment == "sqlite":
        yield Backend(Deployment("sqlite"))
        return
    (workdir / "ferretdb").mkdir()
    with ferretdb.running(workdir / "ferretdb") as store, private_redis(workdir / "redis") as redis_server:
        assert redis_server.proc is not None
        yield Backend(Deployment(deployment, {
            "store": {"backend": "mongodb", "uri": store.uri.rstrip("/") + "/bench"},
            "pubsub": {"backend": "redis"},
            "counters": {"backend": "redis"},
            "redis": {"url": redis_server.url},
        }), [store.process.pid, redis_server.proc.pid], workdir / "ferretdb" / "data")


@contextmanager
def servers(build: Build, workdir: Path, shared: Backend, instances: int, sections: Sections, *,
            workers: int = 1, env: dict[str, str] | None = None,
            setup: tuple[tuple[str, ...], ...] = ()) -> Iterator[list[BuildServer]]:
    """``instances`` started ``wildduck serve`` processes of ``build`` on ``shared``, each with its own data
    directory under ``workdir`` and a configuration of ``sections`` (over :data:`EPHEMERAL`, plus the backend's
    sections); ``setup`` holds CLI commands (``user create ...``) run once, through the first instance's
    configuration, before they start."""
    settings = Deployment("", {name: dict(values) for name, values in sections.items()}).overrides(EPHEMERAL)
    configs = []
    for k in range(instances):
        directory = instance_dir(workdir, k)
        directory.mkdir()
        config = directory / "wildduck.toml"
        config.write_text(f'[server]\ndata_dir = "{directory / "data"}"\n{build.workers_setting(workers)}'
                          + Deployment("", shared.deployment.overrides(settings)).toml())
        build.init_store(config, env=env)
        configs.append(config)
    for command in setup:
        build.run("--config", str(configs[0]), *command, env=env)
    with ExitStack() as stack:
        yield [stack.enter_context(build.server(config, env=env)) for config in configs]


@contextmanager
def front(workdir: Path, running: list[BuildServer], name: str) -> Iterator[tuple[tuple[str, int], list[int]]]:
    """Where clients of the listener ``name`` connect: the server itself, or HAProxy (TCP, round robin) in front of
    several; with the pids to count as the backend's (HAProxy's)."""
    if len(running) == 1:
        yield running[0].address(name), []
        return
    if (reason := haproxy.unavailable()) is not None:
        raise SystemExit(f"{len(running)} instances behind one port need HAProxy: {reason}")
    port = free_port()
    lines = [f"i{k} {host}:{p}" for k, server in enumerate(running) for host, p in [server.address(name)]]
    with haproxy.running(workdir, {name: (port, lines)}) as proxy:
        yield ("127.0.0.1", port), [proxy.pid]
