"""A private ``redis-server`` for tests: its own directory, a free loopback port (and a UNIX socket), no
persistence, stopped at the end; it can be killed, paused and started again on the same port (tests of a Redis that
goes away). :class:`RedisSentinel` runs a Sentinel (the same program with ``--sentinel``) that monitors one."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from wildduck.testing.server import free_port

#: seconds a starting redis-server has to answer PING
START_TIMEOUT = 30.0


def redis_server_binary() -> str:
    """The ``redis-server`` program. Under pytest, a missing one skips the test, or fails it when ``CI=true``."""
    path = shutil.which("redis-server")
    if path is None:
        import pytest

        if os.environ.get("CI") == "true":
            pytest.fail("redis-server (Debian package redis-server) is not installed; CI must run the Redis tests")
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    return path


class RedisServer:
    """One ``redis-server`` process on ``127.0.0.1:port`` with its files in ``directory``."""

    def __init__(self, directory: Path, port: int | None = None, binary: str | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.binary = binary or redis_server_binary()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def unix_socket(self) -> Path:
        return self.directory / "redis.sock"

    def arguments(self) -> list[str]:
        return ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--unixsocket", str(self.unix_socket), "--unixsocketperm", "700"]

    def start(self) -> RedisServer:
        """Start it (again: on the same port) and wait until it answers."""
        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - the child keeps it
        with log:
            self.proc = subprocess.Popen(
                [self.binary, *self.arguments(), "--dir", str(self.directory), "--daemonize", "no"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                text = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server on port {self.port} did not start:\n{text}")
            time.sleep(0.02)
        return self

    def answers(self) -> bool:
        """True when the server answers PING now."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL (what it held is gone: nothing is saved)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def pause(self) -> None:
        """SIGSTOP: the server keeps its connections and accepts new ones, but answers nothing."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class RedisSentinel(RedisServer):
    """A Sentinel on its own port that monitors ``master`` as the service ``service``."""

    def __init__(self, directory: Path, master: RedisServer, service: str = "wildduck") -> None:
        super().__init__(directory, binary=master.binary)
        self.master = master
        self.service = service

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.port}/{self.service}/0"

    def arguments(self) -> list[str]:
        config = self.directory / "sentinel.conf"  # Sentinel rewrites its configuration file: one of its own
        config.write_text(f"port {self.port}\nbind 127.0.0.1\n"
                          f"sentinel monitor {self.service} 127.0.0.1 {self.master.port} 1\n")
        return [str(config), "--sentinel"]


@contextmanager
def private_redis(directory: Path) -> Iterator[RedisServer]:
    """A started private redis-server, stopped on exit."""
    server = RedisServer(directory).start()
    try:
        yield server
    finally:
        server.stop()
