"""Running servers for tests and benchmarks: in-process (trio) and as a real ``wildduck serve`` subprocess."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from wildduck.config import Config, load_config
from wildduck.net.listeners import Bound

if TYPE_CHECKING:
    from wildduck.app import Services
    from wildduck.ports import Backends


def test_config(data_dir: Path, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults with ``data_dir``, every listener on an ephemeral port, plus ``overrides`` (section → values)."""
    merged: dict[str, dict[str, Any]] = {
        "server": {"data_dir": str(data_dir), "shutdown_timeout": 2.0},
        "lmtp": {"port": 0},
        "imap": {"port": 0, "tls_port": 0},  # 0 disables implicit TLS: tests that want it pick a port
        "pop3": {"port": 0, "tls_port": 0},
        "api": {"port": 0},
        "metrics": {"port": 0},
    }
    for section, values in (overrides or {}).items():
        merged.setdefault(section, {}).update(values)
    return load_config(overrides=merged)


@dataclass
class RunningServer:
    services: Services
    bound: dict[str, Bound]
    #: stops the server as SIGTERM does (sessions get their goodbye, commands in flight finish)
    stop: Callable[[], None] = lambda: None
    #: set once the server has stopped
    stopped: trio.Event | None = None

    @property
    def store(self) -> Any:
        """The storage adapter behind every role (one object on the single node), for tests that check what was
        stored."""
        return self.services.backends.maintenance

    def address(self, name: str) -> tuple[str, int]:
        b = self.bound[name]
        return b.host, b.port


@asynccontextmanager
async def running_server(data_dir: Path, overrides: dict[str, Any] | None = None, *,
                         wrap: Callable[[Backends], Backends] | None = None) -> AsyncIterator[RunningServer]:
    """Run the whole server in this trio run; stop it (gracefully) on exit. ``wrap`` may put a fault-injecting
    layer around the real backends (tests of storage failures and races)."""
    from wildduck.app import Server, build_services, open_services

    config = test_config(data_dir, overrides)
    async with open_services(config, server=True) as services:
        if wrap is not None:
            services = build_services(config, wrap(services.backends))
        server = Server(services)
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(server.run)
            try:
                yield RunningServer(services, bound, server.stop, server.stopped)
            finally:
                server.stop()


_next_port: list[int] = []


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A TCP port on loopback that is free now (for listeners that cannot take port 0), chosen *below* the kernel's
    ephemeral range: a port from that range can be taken by any port-0 bind or outgoing connection between this call
    and the server's bind (seen in CI as "Address already in use"); one below it cannot. Successive calls walk
    upwards from a per-process random start, so two calls never return the same port."""
    low, _ = _ephemeral_range()
    top = low if low > 12000 else 65535
    base = 10000
    if not _next_port:
        _next_port.append(base + (os.getpid() * 7919) % (top - base))
    for _ in range(top - base):
        port = _next_port[0]
        _next_port[0] = base + (port + 1 - base) % (top - base)
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError("no free TCP port on loopback")


def process_memory(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon, RssFile (from /proc/PID/status) and Pss, Pss_Anon (from smaps_rollup, when the kernel has
    it) of a process, in bytes."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0]) * 1024
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("Pss", "Pss_Anon"):
                out[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return out


_READY = re.compile(r"ready \(.*?\): (.*)$")


class ServerProcess:
    """``python -m wildduck serve`` in a child process, for crash tests and macro benchmarks.

    The ready line of the log tells the bound ports, so every listener may use port 0.
    """

    def __init__(self, config_file: Path, *, env: dict[str, str] | None = None) -> None:
        self.config_file = config_file
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.ports: dict[str, tuple[str, int]] = {}
        self.log: list[str] = []
        self._ready = threading.Event()

    def start(self, timeout: float = 60.0) -> ServerProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wildduck", "serve", "--config", str(self.config_file)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=self.env,
        )
        threading.Thread(target=self._read_log, daemon=True).start()
        if not self._ready.wait(timeout):
            self.kill()
            raise RuntimeError("server did not become ready:\n" + "\n".join(self.log[-30:]))
        if not self.ports:
            raise RuntimeError("server exited before it was ready:\n" + "\n".join(self.log[-30:]))
        return self

    def _read_log(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.log.append(line)
            m = _READY.search(line)
            if m:
                for item in m.group(1).split(", "):
                    name, _, hostport = item.partition(" ")
                    host, _, port = hostport.rpartition(":")
                    self.ports[name] = (host, int(port))
                self._ready.set()
        self._ready.set()

    def address(self, name: str) -> tuple[str, int]:
        return self.ports[name]

    def kill(self) -> None:
        """SIGKILL: no chance to clean up (crash test)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.terminate()
            except subprocess.TimeoutExpired:
                self.kill()
