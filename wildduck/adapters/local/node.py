"""Pub/sub across the processes of one node: the server listens on a UNIX socket in its data directory, and
other processes (``wildduck deliver``, the administrative CLI) hand it the nudges they publish, so that a
delivery from any process reaches the server's sessions at once.

The socket is created with mode 0600 (only the account that runs the server may publish). The wire format is one
line per nudge: ``channel TAB nudge`` (see :meth:`wildduck.model.Nudge.encode`), at most :data:`MAX_LINE` bytes.
A line ``?name argument`` asks the server one of its ``queries`` (``wildduck status``, ``wildduck user unlock``);
the answer is one line.
Delivery stays best effort, as for every nudge: the journal is the truth.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import trio

from wildduck.adapters.local.pubsub import LocalPubSub
from wildduck.model import Nudge

log = logging.getLogger(__name__)

#: longest line accepted from a publisher
MAX_LINE = 1024
#: nudges accepted per connection (a publisher opens one per batch)
MAX_LINES = 10_000
#: seconds a forwarder waits for the server
FORWARD_TIMEOUT = 1.0


def _encode(channel: str, nudge: Nudge) -> bytes:
    return f"{channel}\t{nudge.encode()}\n".encode()


class ForwardingPubSub(LocalPubSub):
    """A ``PubSub`` for processes other than the server: local fan-out, and every nudge also goes to the running
    server's socket (nothing happens when no server runs)."""

    def __init__(self, socket_path: Path, buffer_size: int = 256) -> None:
        super().__init__(buffer_size)
        self.socket_path = socket_path

    async def publish(self, channel: str, nudge: Nudge) -> None:
        await super().publish(channel, nudge)
        if not _exists(self.socket_path):
            return
        with trio.move_on_after(FORWARD_TIMEOUT):
            try:
                stream = await trio.open_unix_socket(str(self.socket_path))
            except OSError as exc:  # a stale socket of a server that is gone
                log.debug("no server at %s: %s", self.socket_path, exc)
                return
            async with stream:
                try:
                    await stream.send_all(_encode(channel, nudge))
                except trio.BrokenResourceError:
                    pass


Query = Callable[[str], Awaitable[str]]


async def ask(socket_path: Path, name: str, argument: str = "") -> str | None:
    """The running server's answer to query ``name`` (None when no server runs there)."""
    if not _exists(socket_path):
        return None
    with trio.move_on_after(10):
        try:
            stream = await trio.open_unix_socket(str(socket_path))
        except OSError:
            return None
        async with stream:
            await stream.send_all(f"?{name} {argument}".rstrip().encode() + b"\n")
            answer = b""
            while not answer.endswith(b"\n"):
                data = await stream.receive_some(65536)
                if not data:
                    break
                answer += data
            return answer.decode("utf-8", "replace").strip()
    return None


async def serve_node_pubsub(socket_path: Path, pubsub: LocalPubSub, *, queries: Mapping[str, Query] | None = None,
                            task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Accept nudges from other processes of this node and publish them on ``pubsub`` until cancelled; answer
    ``queries``."""
    _remove(socket_path)  # left by a server that did not stop cleanly (the data directory is ours)
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old = os.umask(0o177)
        try:
            await sock.bind(str(socket_path))
        finally:
            os.umask(old)
        os.chmod(socket_path, 0o600)
        sock.listen(64)
        listener = trio.SocketListener(sock)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.ENAMETOOLONG or "too long" in str(exc):
            log.warning("cannot listen on %s (path too long): other processes' deliveries will show up at the "
                        "next NOOP instead of at once", socket_path)
            task_status.started()
            return
        raise
    task_status.started()
    async def handle(stream: trio.SocketStream) -> None:
        await _one(stream, pubsub, queries or {})

    try:
        async with trio.open_nursery() as nursery:
            await trio.serve_listeners(handle, [listener], handler_nursery=nursery)
    finally:
        _remove(socket_path)


def _exists(path: Path) -> bool:
    """Whether a server's socket is there (a local, instant file-system call)."""
    return path.exists()


def _remove(path: Path) -> None:
    """Remove the socket file if there is one (a local, instant file-system call)."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass


async def _one(stream: trio.abc.Stream, pubsub: LocalPubSub, queries: Mapping[str, Query]) -> None:
    buf = b""
    lines = 0
    with trio.move_on_after(10):
        async with stream:
            while lines < MAX_LINES:
                try:
                    data = await stream.receive_some(4096)
                except trio.BrokenResourceError:
                    return
                if not data:
                    return
                buf += data
                while b"\n" in buf:
                    line, _, buf = buf.partition(b"\n")
                    lines += 1
                    if line.startswith(b"?"):
                        name, _, argument = line[1:].decode("utf-8", "replace").strip().partition(" ")
                        query = queries.get(name)
                        answer = await query(argument) if query is not None else '{"error": "unknown query"}'
                        await stream.send_all(answer.encode() + b"\n")
                        continue
                    channel, sep, text = line.decode("utf-8", "replace").partition("\t")
                    if sep:
                        await pubsub.publish(channel, Nudge.decode(text))
                if len(buf) > MAX_LINE:
                    log.warning("dropping a publisher that sent a line over %d bytes", MAX_LINE)
                    return
