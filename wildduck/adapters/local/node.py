"""Pub/sub across the processes of one node: the server listens on a UNIX socket in its data directory, and
other processes (``wildduck deliver``, the administrative CLI) hand it the nudges they publish, so that a
delivery from any process reaches the server's sessions at once.

The socket is created with mode 0600 (only the account that runs the server may publish). The wire format is one
line per nudge: ``channel TAB nudge`` (see :meth:`wildduck.model.Nudge.encode`), at most :data:`MAX_LINE` bytes.
A line ``?name argument`` asks the server one of its ``queries`` (``wildduck status``, ``wildduck user unlock``);
the answer is one line.
Delivery stays best effort, as for every nudge: the journal is the truth.

With several worker processes (``wildduck serve --workers N``) each worker listens on a socket of its own
(``wildduck-<i>.sock``) and keeps one persistent link to every other worker (:class:`MeshPubSub`): a connection that
starts with the line ``!peer`` has no deadline and no line limit. The supervisor owns ``wildduck.sock`` and relays
what other processes publish to every worker. A line ``!resync`` tells the receiver that nudges may have been lost on
the way (a link that broke or overflowed): every subscriber there gets a ``Resync`` and re-reads its journals.
"""

from __future__ import annotations

import errno
import logging
import math
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
#: nudges a link to another worker queues while that worker is slow; beyond, they are dropped and it resyncs
LINK_QUEUE = 10_000
#: seconds a link waits for one batch to be taken by the other worker before it reconnects (and resyncs it)
LINK_SEND_TIMEOUT = 5.0
#: most nudges sent to another worker in one write
LINK_BATCH = 1_000


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


class PeerLink:
    """One persistent link to another worker's socket: nudges are queued without blocking (bounded) and written in
    batches. Whatever may have been lost (the worker was away, the queue overflowed, a write timed out) is followed
    by ``!resync``, so that its subscribers re-read their journals instead of missing a change."""

    def __init__(self, socket_path: Path, queue_size: int = LINK_QUEUE) -> None:
        self.socket_path = socket_path
        self._send, self._receive = trio.open_memory_channel[bytes](queue_size)
        self._lost = False
        #: set once the link is connected (tests, and the supervisor's readiness)
        self.connected = trio.Event()

    def offer(self, line: bytes) -> None:
        try:
            self._send.send_nowait(line)
        except trio.WouldBlock:
            self._lost = True

    def _drop_queued(self) -> None:
        while True:
            try:
                self._receive.receive_nowait()
            except trio.WouldBlock:
                return

    async def run(self) -> None:
        """Keep the link up until cancelled (reconnecting with a short backoff while the other worker is away)."""
        delay = 0.05
        while True:
            try:
                stream = await trio.open_unix_socket(str(self.socket_path))
            except OSError:
                self._drop_queued()  # no one there to tell: the worker starts (or restarts) with fresh sessions
                await trio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            delay = 0.05
            async with stream:
                try:
                    await self._pump(stream)
                except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError, OSError) as exc:
                    log.info("link to %s lost (%s); reconnecting", self.socket_path.name, exc or type(exc).__name__)
                    self._lost = True
            self.connected = trio.Event()

    async def _pump(self, stream: trio.SocketStream) -> None:
        self._lost = False
        with trio.fail_after(LINK_SEND_TIMEOUT):
            await stream.send_all(b"!peer\n!resync\n")  # anything sent while we were apart may be lost
        self.connected.set()
        while True:
            batch = [await self._receive.receive()]
            while len(batch) < LINK_BATCH:
                try:
                    batch.append(self._receive.receive_nowait())
                except trio.WouldBlock:
                    break
            if self._lost:
                self._lost = False
                batch.append(b"!resync\n")
            with trio.fail_after(LINK_SEND_TIMEOUT):
                await stream.send_all(b"".join(batch))


class MeshPubSub(LocalPubSub):
    """``PubSub`` of one worker of a multi-process node: local fan-out, and every nudge also goes to each other
    worker over a :class:`PeerLink` (its :meth:`run` must run, e.g. in the server's nursery)."""

    def __init__(self, peers: list[Path], buffer_size: int = 256) -> None:
        super().__init__(buffer_size)
        self.links = [PeerLink(path) for path in peers]

    async def publish(self, channel: str, nudge: Nudge) -> None:
        line = _encode(channel, nudge)
        for link in self.links:
            link.offer(line)
        await self.publish_here(channel, nudge)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for link in self.links:
                nursery.start_soon(link.run)
            task_status.started()


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
    peer = False  # a persistent link from another worker: no deadline, no line limit
    with trio.CancelScope(deadline=trio.current_time() + 10) as scope:
        async with stream:
            while peer or lines < MAX_LINES:
                try:
                    data = await stream.receive_some(65536 if peer else 4096)
                except trio.BrokenResourceError:
                    return
                if not data:
                    return
                *complete, buf = (buf + data).split(b"\n")
                for line in complete:
                    lines += 1
                    if line == b"!peer":
                        peer = True
                        scope.deadline = math.inf
                    elif line == b"!resync":
                        pubsub.resync_all()
                    elif line.startswith(b"?"):
                        name, _, argument = line[1:].decode("utf-8", "replace").strip().partition(" ")
                        query = queries.get(name)
                        answer = await query(argument) if query is not None else '{"error": "unknown query"}'
                        await stream.send_all(answer.encode() + b"\n")
                    else:
                        channel, sep, text = line.decode("utf-8", "replace").partition("\t")
                        if not sep:
                            continue
                        if peer:  # another worker published it to its own sessions and to each worker: ours only
                            await pubsub.publish_here(channel, Nudge.decode(text))
                        else:  # another process of the node: ours, and relayed if we are the supervisor
                            await pubsub.publish(channel, Nudge.decode(text))
                if len(buf) > MAX_LINE:
                    log.warning("dropping a publisher that sent a line over %d bytes", MAX_LINE)
                    return
