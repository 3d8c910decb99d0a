"""Prometheus metrics, in one registry of this process; ``serve_metrics`` answers ``GET /metrics`` on its own
loopback port ([metrics] in the configuration) until the HTTP API serves them too.

A leaf module (it imports nothing of wildduck), so that every layer may count what it does.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import trio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)

CONNECTIONS = Gauge("wildduck_connections", "Open client connections", ["listener"], registry=REGISTRY)
LOGINS = Counter("wildduck_logins", "Login attempts by outcome (ok, failed, limited, busy)",
                 ["protocol", "result"], registry=REGISTRY)
DELIVERIES = Counter("wildduck_deliveries", "LMTP recipients by reply code (250 delivered; 4xx/5xx refused)",
                     ["code"], registry=REGISTRY)
COMMANDS = Histogram("wildduck_command_seconds", "Time to answer one command", ["protocol", "command"],
                     registry=REGISTRY, buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                                                 5, 10))
STORE_CALLS = Histogram("wildduck_store_call_seconds", "Time of one storage call (thread hop and transaction)",
                        ["kind"], registry=REGISTRY,
                        buckets=(0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1))
BLOB_BYTES = Gauge("wildduck_blob_stored_bytes", "Bytes the blob store keeps (after compression)",
                   registry=REGISTRY)
DATABASE_BYTES = Gauge("wildduck_database_bytes", "Bytes the database takes on disk", registry=REGISTRY)
API_REQUESTS = Counter("wildduck_api_requests", "HTTP API requests by method, route template and status (a "
                       "WebSocket: its opening request, 101 when accepted)", ["method", "route", "status"],
                       registry=REGISTRY)
API_SECONDS = Histogram("wildduck_api_request_seconds", "Time to answer one HTTP API request (to the response's "
                        "head: a stream's events are not counted)", ["method", "route", "status"],
                        registry=REGISTRY, buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5,
                                                    1, 2, 5))

#: longest request head accepted by the metrics endpoint
_MAX_REQUEST = 8192


def render() -> bytes:
    """The metrics in Prometheus' text format."""
    return generate_latest(REGISTRY)


def merge_expositions(parts: Sequence[tuple[str, str]]) -> bytes:
    """Several processes' metrics (``(worker, text)`` in Prometheus' text format) as one: every sample gets a
    ``worker`` label, each family keeps one HELP and TYPE line and all its samples together."""
    families: dict[str, tuple[list[str], list[str]]] = {}
    for worker, text in parts:
        current: tuple[list[str], list[str]] | None = None
        for line in text.splitlines():
            if line.startswith(("# HELP ", "# TYPE ")):
                current = families.setdefault(line.split(" ", 3)[2], ([], []))
                if line not in current[0]:
                    current[0].append(line)
            elif line and not line.startswith("#") and current is not None:
                current[1].append(_labelled(line, "worker", worker))
    lines = [line for head, samples in families.values() for line in (*head, *samples)]
    return ("\n".join(lines) + "\n").encode() if lines else b""


def _labelled(sample: str, key: str, value: str) -> str:
    name, brace, rest = sample.partition("{")
    if brace:
        return f'{name}{{{key}="{value}",{rest}'
    name, _, rest = sample.partition(" ")
    return f'{name}{{{key}="{value}"}} {rest}'


async def _local() -> bytes:
    return render()


async def _answer(stream: trio.abc.Stream, produce: Callable[[], Awaitable[bytes]]) -> None:
    head = b""
    with trio.move_on_after(10):
        while b"\r\n\r\n" not in head and b"\n\n" not in head and len(head) < _MAX_REQUEST:
            data = await stream.receive_some(4096)
            if not data:
                return
            head += data
        request = head.split(b"\r\n", 1)[0].split()
        if len(request) >= 2 and request[0] == b"GET" and request[1].split(b"?")[0] == b"/metrics":
            body, status, kind = await produce(), b"200 OK", CONTENT_TYPE_LATEST.encode()
        else:
            body, status, kind = b"not found: try /metrics\n", b"404 Not Found", b"text/plain"
        await stream.send_all(b"HTTP/1.1 " + status + b"\r\nContent-Type: " + kind + b"\r\nContent-Length: "
                              + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)


async def serve_metrics(listeners: list[trio.SocketListener], *,
                        render: Callable[[], Awaitable[bytes]] = _local,
                        task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED) -> None:
    """Answer ``GET /metrics`` on the bound ``listeners`` until cancelled (with what ``render`` gives: this
    process's metrics unless told otherwise); reports the bound address."""
    bound = listeners[0].socket.getsockname()
    task_status.started((bound[0], bound[1]))

    async def one(stream: trio.SocketStream) -> None:
        try:
            async with stream:
                await _answer(stream, render)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    await trio.serve_listeners(one, listeners)
