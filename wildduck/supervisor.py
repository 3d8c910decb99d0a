"""``wildduck serve --workers N``: one supervisor process and N worker processes on one node.

Python runs one thread at a time per process, so one server process uses about one core however many it has. The
supervisor binds every listening port (a port in use stops the start, as with one process), prepares what the
workers would otherwise race to create (the schema, the counters file, the self-signed certificate), then starts N
workers (``python -m wildduck serve`` with :data:`WORKER_ENV` set) that inherit the listening sockets and accept from
them, all from the same sockets: the supervisor binds them once, so a port given as 0 is one port for every worker,
and keeps them open, so connections waiting for a worker that exits are taken by the others or its replacement
instead of being reset. Which worker takes a connection is least-connections (``net/balance.py``): each worker
publishes its connection count per listener in a shared table, and a busier worker leaves a waiting connection to a
less busy one for a few milliseconds.

The workers share the SQLite database (WAL: readers in every process, writers serialized by SQLite's lock), the
counters file (failed logins, per-user connection slots, the maintenance lease: ``adapters/sqlite/counters.py``) and
their nudges (each worker has a socket ``wildduck-<i>.sock`` and a persistent link to every other: ``MeshPubSub``).
The supervisor owns ``wildduck.sock``: nudges published by other processes of the node (``wildduck deliver``, the
CLI) are relayed to every worker; ``wildduck status`` gets the workers' numbers summed; ``/metrics`` gets every
worker's metrics with a ``worker`` label.

A worker that exits unexpectedly is replaced (after a backoff when it keeps failing at once); a worker whose
supervisor dies stops gracefully (a "lifeline" pipe it inherits reads end-of-file). SIGTERM/SIGINT to the supervisor
stops the workers gracefully (each drains as a single server does) and then itself; SIGHUP is passed to the workers
(certificates, log files).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import socket
from dataclasses import dataclass
from functools import partial
from typing import Any

import trio

from wildduck import __version__, metrics
from wildduck.adapters.local.node import MeshPubSub, Query, ask, serve_node_pubsub
from wildduck.adapters.sqlite.counters import open_sqlite_counters
from wildduck.app import (
    WorkerRole,
    bind_ports,
    check_startable,
    counters_file,
    log_ready,
    node_socket,
    open_store,
    serve,
)
from wildduck.config import Config
from wildduck.errors import ConfigError
from wildduck.log import reopen_log_files
from wildduck.net.balance import LoadBoard
from wildduck.net.listeners import Bound
from wildduck.net.tls import generate_self_signed

log = logging.getLogger(__name__)

#: the environment variable that makes ``wildduck serve`` a worker: JSON {index, count, fds: {listener: [fd]}, ready}
WORKER_ENV = "WILDDUCK_WORKER"
#: seconds a worker may take to start before the supervisor gives up on it
START_TIMEOUT = 120.0
#: a worker that ran shorter than this before it exited counts as failing at start (restarts back off)
STABLE_AFTER = 10.0
#: longest UNIX socket path (sun_path is 108 bytes with its NUL)
_MAX_SOCKET_PATH = 107


@dataclass(slots=True)
class _Worker:
    index: int
    process: trio.Process | None = None
    started: float = 0.0


class Supervisor:
    def __init__(self, config: Config, command: list[str], sockets: dict[str, list[trio.SocketListener]]) -> None:
        self.config = config
        self.command = command
        #: the listening sockets (by listener name) every worker accepts from; the metrics socket is ours
        self.sockets = sockets
        self.count = config.server.workers
        self.workers = [_Worker(i) for i in range(self.count)]
        self.board = LoadBoard.create(self.count, sorted(name for name in sockets if name != "metrics"))
        #: every listener's address (the metrics one is served here, the others by the workers)
        self.bound: dict[str, Bound] = {}
        self._stop = trio.Event()
        #: the workers hold the read end; this process holds the only write end, so they see EOF when it dies
        self._lifeline = os.pipe()

    def stop(self) -> None:
        self._stop.set()

    def _fds(self) -> dict[str, list[int]]:
        return {name: [s.socket.fileno() for s in group] for name, group in self.sockets.items()}

    def _spec(self, index: int, ready_fd: int) -> str:
        return json.dumps({"index": index, "count": self.count, "fds": self._fds(), "ready": ready_fd,
                           "lifeline": self._lifeline[0], "board": self.board.spec()})

    async def run(self, *, task_status: trio.TaskStatus[dict[str, Bound]] = trio.TASK_STATUS_IGNORED) -> None:
        bound: dict[str, Bound] = {}
        for name, group in self.sockets.items():
            host, port = group[0].socket.getsockname()[:2]
            bound[name] = Bound(name, host, port)
        metrics_sockets = self.sockets.pop("metrics", None)
        self.bound = bound
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._signals)
            relay = MeshPubSub([node_socket(self.config, i) for i in range(self.count)])
            await nursery.start(relay.run)
            queries: dict[str, Query] = {"status": self.status_json, "unlock": self.unlock_json}
            await nursery.start(partial(serve_node_pubsub, queries=queries), node_socket(self.config), relay)
            if metrics_sockets:
                await nursery.start(partial(metrics.serve_metrics, render=self.render_metrics), metrics_sockets)
            for worker in self.workers:
                await nursery.start(self._keep, worker)
            log_ready(bound.values(), self.count)
            task_status.started(bound)
            await self._stop.wait()
            log.info("stopping %d workers", self.count)
            for worker in self.workers:
                self._signal(worker, signal.SIGTERM)
            await _close(self.sockets)  # no new connections queue up for workers that are leaving
            with trio.move_on_after(self.config.server.shutdown_timeout + 15):
                for worker in self.workers:
                    if worker.process is not None:
                        await worker.process.wait()
            for worker in self.workers:
                if worker.process is not None and worker.process.returncode is None:
                    log.error("worker %d (pid %d) did not stop in time; killing it", worker.index,
                              worker.process.pid)
                    self._signal(worker, signal.SIGKILL)
            nursery.cancel_scope.cancel()
        log.info("stopped")

    def _signal(self, worker: _Worker, signum: int) -> None:
        if worker.process is not None and worker.process.returncode is None:
            try:
                worker.process.send_signal(signum)
            except ProcessLookupError:
                pass

    async def _keep(self, worker: _Worker, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run worker ``index``; report started once its first process serves; replace it whenever it exits."""
        first = True
        failures = 0
        while not self._stop.is_set():
            proc, ready = await self._start(worker)
            if first:
                if not ready:
                    code = await proc.wait()
                    raise ConfigError(f"worker {worker.index} exited with status {code} before it served "
                                      "(its log lines above say why)")
                first = False
                task_status.started()
            code = await proc.wait()
            worker.process = None
            self.board.clear(worker.index)  # the others stop leaving connections to it
            if self._stop.is_set():
                return
            ran = trio.current_time() - worker.started
            failures = failures + 1 if ran < STABLE_AFTER else 0
            delay = min(2.0 ** failures, 30.0) if failures else 0.0
            log.error("worker %d (pid %d) exited with status %s after %.0f s; starting another%s", worker.index,
                      proc.pid, code, ran, f" in {delay:.0f} s" if delay else "")
            with trio.move_on_after(delay):
                await self._stop.wait()

    async def _start(self, worker: _Worker) -> tuple[trio.Process, bool]:
        """Start one process for ``worker``; whether it said it serves (False: it exited first)."""
        read_fd, write_fd = os.pipe()
        fds = [fd for group in self._fds().values() for fd in group] + [self._lifeline[0], self.board.fd]
        env = {**os.environ, WORKER_ENV: self._spec(worker.index, write_fd)}
        try:
            # a session of its own: Ctrl-C in a terminal reaches the supervisor only, which stops the workers in
            # order (a worker that got SIGINT itself could exit first and look like a crash)
            proc = await trio.lowlevel.open_process(self.command, pass_fds=[*fds, write_fd],
                                                    env=env, start_new_session=True)
        finally:
            os.close(write_fd)
        worker.process, worker.started = proc, trio.current_time()
        ready = False
        async with trio.lowlevel.FdStream(read_fd) as pipe:
            with trio.move_on_after(START_TIMEOUT):
                ready = await pipe.receive_some(1) == b"1"
        if not ready and proc.returncode is None:
            log.error("worker %d did not start within %.0f s", worker.index, START_TIMEOUT)
            proc.kill()
        return proc, ready

    async def _signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:
                if signum == signal.SIGHUP:
                    reopen_log_files()
                    for worker in self.workers:
                        self._signal(worker, signal.SIGHUP)
                else:
                    log.info("received %s", signal.Signals(signum).name)
                    self.stop()

    async def _ask_all(self, name: str) -> list[tuple[int, Any]]:
        """Each serving worker's answer to query ``name`` (decoded JSON), asked at once."""
        answers: list[tuple[int, Any]] = []

        async def one(index: int) -> None:
            answer = await ask(node_socket(self.config, index), name)
            if answer is not None:
                try:
                    answers.append((index, json.loads(answer)))
                except ValueError:
                    log.warning("worker %d answered %s with %r", index, name, answer[:200])

        async with trio.open_nursery() as nursery:
            for worker in self.workers:
                nursery.start_soon(one, worker.index)
        return sorted(answers, key=lambda a: a[0])

    async def status_json(self, _argument: str = "") -> str:
        """``wildduck status``: the workers' connections summed, each worker's pid and connections."""
        answers = await self._ask_all("status")
        connections: dict[str, int] = {}
        for _, st in answers:
            for name, n in st.get("connections", {}).items():
                connections[name] = connections.get(name, 0) + n
        deliveries = [st["last_delivery"] for _, st in answers if st.get("last_delivery")]
        first = answers[0][1] if answers else {}
        return json.dumps({
            "version": __version__,
            "pid": os.getpid(),
            "listeners": {b.name: f"{b.host}:{b.port}" for b in self.bound.values()},
            "connections": connections,
            "database_bytes": first.get("database_bytes", 0),
            "last_delivery": max(deliveries, key=dt.datetime.fromisoformat) if deliveries else None,
            "stopping": self._stop.is_set(),
            "workers": [{"index": i, "pid": st.get("pid"), "connections": st.get("connections", {})}
                        for i, st in answers],
        })

    async def unlock_json(self, user_id: str) -> str:
        """``wildduck user unlock``: the counters are shared, so one worker's answer is the node's."""
        for worker in self.workers:
            answer = await ask(node_socket(self.config, worker.index), "unlock", user_id)
            if answer is not None:
                return answer
        return json.dumps({"error": "no worker is serving"})

    async def render_metrics(self) -> bytes:
        return metrics.merge_expositions([(str(i), text) for i, text in await self._ask_all("metrics")])


async def supervise(config: Config, command: list[str], *,
                    task_status: trio.TaskStatus[dict[str, Bound]] = trio.TASK_STATUS_IGNORED) -> None:
    """Bind the ports, prepare the data directory, run ``config.server.workers`` workers until stopped."""
    count = config.server.workers
    check_startable(config)
    longest = node_socket(config, count - 1)
    if len(os.fsencode(longest.absolute())) > _MAX_SOCKET_PATH:
        raise ConfigError(f"[server] data_dir: the workers' sockets ({longest.absolute()}) would be longer than "
                          f"{_MAX_SOCKET_PATH} bytes; use a shorter data directory or workers = 1")
    sockets = await bind_ports(config)
    try:
        # what the workers would otherwise race to create
        config.data_dir.mkdir(parents=True, exist_ok=True)
        store = await open_store(config)  # the schema (SQLite) or the collections and indexes (MongoDB), once
        await store.close()
        if config.counters.backend == "local":
            counters = await open_sqlite_counters(counters_file(config))
            await counters.close()
        if not config.tls.cert:
            await trio.to_thread.run_sync(generate_self_signed, config.data_dir, config.server.hostname)
        await Supervisor(config, command, sockets).run(task_status=task_status)
    finally:
        await _close(sockets)


async def _close(sockets: dict[str, list[trio.SocketListener]]) -> None:
    for group in sockets.values():
        for s in group:
            await s.aclose()


async def _until_eof(fd: int) -> None:
    async with trio.lowlevel.FdStream(fd) as stream:
        while await stream.receive_some(64):
            pass


async def run_worker(config: Config, spec_text: str) -> None:
    """The worker side: serve the inherited sockets; tell the supervisor once serving; stop gracefully when the
    supervisor is gone (the lifeline pipe, whose only write end the supervisor holds, reads end-of-file)."""
    spec = json.loads(spec_text)
    role = WorkerRole(int(spec["index"]), int(spec["count"]), LoadBoard.from_spec(spec["board"]))
    inherited = {name: [trio.SocketListener(trio.socket.from_stdlib_socket(socket.socket(fileno=fd)))
                        for fd in fds] for name, fds in spec["fds"].items()}
    ready_fd = int(spec["ready"])
    stop = trio.Event()

    async def watch_supervisor() -> None:
        await _until_eof(int(spec["lifeline"]))
        log.warning("worker %d: the supervisor is gone; stopping", role.index)
        stop.set()

    async with trio.open_nursery() as nursery:
        async def run(*, task_status: trio.TaskStatus[dict[str, Bound]] = trio.TASK_STATUS_IGNORED) -> None:
            await serve(config, worker=role, inherited=inherited, stop=stop, task_status=task_status, freeze_gc=True)
            nursery.cancel_scope.cancel()  # stopped (SIGTERM, or the supervisor is gone): the watcher too

        nursery.start_soon(watch_supervisor)
        await nursery.start(run)
        os.write(ready_fd, b"1")
        os.close(ready_fd)
