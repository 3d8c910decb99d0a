"""The connection lifecycle every protocol session shares: reads with an idle deadline, writes with a send
deadline, STARTTLS (the protocol discards what was buffered before the handshake), COMPRESS, the goodbye on
shutdown, and the one place that turns a broken connection into a log line instead of a crash.

A session object implements :class:`Session` (``run`` and ``goodbye``); :func:`run_session` drives it.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import trio

from wildduck.net.compress import DeflateStream

log = logging.getLogger(__name__)

READ_SIZE = 65536
#: seconds the goodbye may take on shutdown
GOODBYE_TIMEOUT = 2.0


class SessionEnded(Exception):
    """End the session after what is queued has been sent (LOGOUT, QUIT, a fatal protocol error)."""


class ShuttingDown(Exception):
    """The server is stopping: the session says its protocol's goodbye and ends."""


class SendTimedOut(Exception):
    """The client stopped reading: a write did not finish within the send deadline."""


class Lifecycle:
    """The server's stop signal, seen by every session: waits for client input are interrupted at once; commands
    in progress are not (the session notices before its next read)."""

    def __init__(self) -> None:
        self.stopping = False
        self._waits: set[trio.CancelScope] = set()

    def stop(self) -> None:
        self.stopping = True
        for scope in list(self._waits):
            scope.cancel()

    @contextmanager
    def waiting(self) -> Iterator[None]:
        """A wait for the client that shutdown may interrupt (raises ShuttingDown then)."""
        if self.stopping:
            raise ShuttingDown
        scope = trio.CancelScope()
        self._waits.add(scope)
        try:
            with scope:
                yield
        finally:
            self._waits.discard(scope)
        if scope.cancelled_caught and self.stopping:
            raise ShuttingDown


class Connection:
    """One client connection's stream with deadlines on both directions."""

    def __init__(self, stream: trio.abc.Stream, peer: str, *, send_timeout: float, lifecycle: Lifecycle,
                 tls_active: bool = False) -> None:
        self.stream = stream
        self.peer = peer
        self.send_timeout = send_timeout
        self.lifecycle = lifecycle
        self.tls_active = tls_active
        self.bytes_in = 0
        self.bytes_out = 0

    @property
    def from_loopback(self) -> bool:
        """The client connects from this machine (``peer`` is a loopback address)."""
        host = self.peer.rsplit(":", 1)[0].strip("[]")
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    @property
    def compressed(self) -> bool:
        return isinstance(self.stream, DeflateStream)

    async def receive(self, idle_timeout: float) -> bytes | None:
        """The next bytes from the client (b"" at EOF), or None when it stayed silent for ``idle_timeout``."""
        with self.lifecycle.waiting():
            with trio.move_on_after(idle_timeout):
                data = await self.stream.receive_some(READ_SIZE)
                self.bytes_in += len(data)
                return bytes(data)
        return None

    async def send(self, data: bytes) -> None:
        """Write ``data``; SendTimedOut when the client does not take it within the send deadline. A write is
        never abandoned half-way otherwise (the connection is closed after a timeout)."""
        if not data:
            return
        with trio.move_on_after(self.send_timeout):
            await self.stream.send_all(data)
            self.bytes_out += len(data)
            return
        raise SendTimedOut

    async def start_tls(self, context: ssl.SSLContext, handshake_seconds: float = 30.0) -> bool:
        """Switch to TLS as the server side; False if the handshake did not finish in time."""
        tls = trio.SSLStream(self.stream, context, server_side=True)
        with trio.move_on_after(handshake_seconds):
            await tls.do_handshake()
            self.stream = tls
            self.tls_active = True
            return True
        return False

    def start_compression(self, pending: bytes) -> None:
        """COMPRESS=DEFLATE from here on; ``pending`` holds bytes already read, which are compressed input."""
        self.stream = DeflateStream(self.stream, pending=pending)


class Session(Protocol):
    """What :func:`run_session` drives."""

    conn: Connection

    async def run(self) -> None:
        """Serve until the protocol ends; raise SessionEnded to end after flushing."""
        ...

    def goodbye(self) -> bytes:
        """The protocol's words for "the server is going away" (``* BYE``, ``421``, ``-ERR``)."""
        ...

    async def flush(self) -> None:
        ...


async def run_session(session: Session, name: str) -> None:
    """Run ``session`` to its end and close its stream: a disconnect, a timeout or a shutdown is a log line,
    never a crash (internal errors still propagate to the listener, which logs them)."""
    conn = session.conn
    started = trio.current_time()
    try:
        try:
            await session.run()
        except SessionEnded:
            await session.flush()
        except ShuttingDown:
            with trio.move_on_after(GOODBYE_TIMEOUT):
                await conn.stream.send_all(session.goodbye())
            log.info("%s: closed for shutdown", name)
    except SendTimedOut:
        log.info("%s: client stopped reading for %.0f s; closing", name, conn.send_timeout)
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        log.info("%s: connection lost (%s)", name, type(exc.__cause__ or exc).__name__)
    except ssl.SSLError as exc:
        log.info("%s: TLS error: %s", name, exc)
    finally:
        log.info("%s connection from %s closed after %.1f s, %d bytes in, %d out", name, conn.peer or "?",
                 trio.current_time() - started, conn.bytes_in, conn.bytes_out)
        await trio.aclose_forcefully(conn.stream)
