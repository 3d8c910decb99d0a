"""Debian's HAProxy in front of test servers: a TCP load balancer with the listeners and backends a test names."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def unavailable() -> str | None:
    """Why HAProxy cannot run here (None: it can)."""
    return None if os.path.exists(HAPROXY) else "haproxy is not installed (apt-get install haproxy)"


@contextmanager
def running(directory: Path, listeners: Mapping[str, tuple[int, Sequence[str]]], *,
            balance: str = "roundrobin") -> Iterator[subprocess.Popen[bytes]]:
    """HAProxy in TCP mode with ``listeners``: name -> (front port on 127.0.0.1, its ``server`` lines without the
    keyword, e.g. ``"a 127.0.0.1:1143 check inter 200ms"``), until the block ends. Returns once every front port
    accepts connections."""
    sections = "".join(
        f"listen {name}\n  bind 127.0.0.1:{port}\n  balance {balance}\n"
        + "".join(f"  server {line}\n" for line in servers)
        for name, (port, servers) in listeners.items())
    config = directory / "haproxy.cfg"
    config.write_text("global\n  maxconn 200\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n"
                      f"  timeout server 60s\n{sections}")
    proxy = subprocess.Popen([HAPROXY, "-db", "-f", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        for port, _ in listeners.values():
            while True:  # until HAProxy listens
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if proxy.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("haproxy did not start") from None
                    time.sleep(0.1)
        yield proxy
    finally:
        proxy.terminate()
        proxy.wait(10)
