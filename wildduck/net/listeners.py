"""TCP listeners supervised by Trio: plain or implicit TLS, connection caps, crash isolation, graceful drain."""

from __future__ import annotations

import itertools
import logging
import math
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from wildduck import metrics
from wildduck.errors import ConfigError
from wildduck.log import connection_id
from wildduck.net.tls import ReloadableTLS

log = logging.getLogger(__name__)

#: ``handler(stream, peer)`` serves one connection.
Handler = Callable[[trio.abc.Stream, str], Awaitable[None]]

TLS_HANDSHAKE_TIMEOUT = 30.0

_conn_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Bound:
    name: str
    host: str
    port: int


def _peer_of(stream: trio.SocketStream) -> str:
    try:
        addr = stream.socket.getpeername()
    except OSError:
        return "?"
    return f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else str(addr)


async def bind(name: str, host: str, port: int) -> list[trio.SocketListener]:
    """Listening sockets for ``host:port``; a ConfigError naming the listener and the address when that fails."""
    try:
        return await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        raise ConfigError(f"{name} {host}:{port}: {exc.strerror or exc}") from None


async def bind_spread(name: str, host: str, port: int, copies: int) -> list[list[trio.SocketListener]]:
    """``copies`` sets of listening sockets on one address (one set per worker process), each socket with an accept
    queue of its own (``SO_REUSEPORT``): the kernel spreads new connections evenly over the sets by a hash of the
    client's address, where processes sharing one socket would take them unevenly (whoever wakes first). Port 0
    becomes one free port for every set. ConfigError naming the listener and address when binding fails."""
    sets: list[list[trio.SocketListener]] = [[] for _ in range(copies)]
    try:
        infos = await trio.socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _, address in infos:
            chosen = address
            for group in sets:
                sock = trio.socket.socket(family, kind, proto)
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                    if family == socket.AF_INET6:
                        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    await sock.bind(chosen)
                    chosen = sock.getsockname()  # port 0: the port the first set got
                    sock.listen(socket.SOMAXCONN)
                except BaseException:
                    sock.close()
                    raise
                group.append(trio.SocketListener(sock))
    except OSError as exc:
        for group in sets:
            for listener in group:
                await listener.aclose()
        raise ConfigError(f"{name} {host}:{port}: {exc.strerror or exc}") from None
    return sets


class Listener:
    """One listening service. Run :meth:`run` with ``nursery.start``; it reports the bound address."""

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        handler: Handler,
        *,
        max_connections: int,
        tls: ReloadableTLS | None = None,
        on_overload: Handler | None = None,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.handler = handler
        self.max_connections = max_connections
        self.tls = tls
        self.on_overload = on_overload
        self.active = 0
        #: sockets bound before the listener runs (``serve`` binds every port before it creates anything)
        self.sockets: list[trio.SocketListener] | None = None
        self._accept_scope = trio.CancelScope()
        self._conn_scope: trio.CancelScope | None = None
        self.drained = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[Bound] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen until :meth:`stop_accepting`, then wait for connections (see :meth:`drain`).

        Cancellation closes the listening socket and every connection at once.
        """
        listeners = self.sockets or await bind(self.name, self.host, self.port)
        self.sockets = None
        sockname = listeners[0].socket.getsockname()
        bound = Bound(self.name, sockname[0], sockname[1])
        try:
            async with trio.open_nursery() as conns:
                self._conn_scope = conns.cancel_scope
                with self._accept_scope:
                    await trio.serve_listeners(
                        self._serve_one, listeners, handler_nursery=conns,
                        task_status=_Forward(task_status, bound),
                    )
                for lst in listeners:
                    await lst.aclose()
        finally:
            self.drained.set()

    def stop_accepting(self) -> None:
        """Close the listening socket; connections in progress continue."""
        self._accept_scope.cancel()

    def drain(self, timeout: float) -> None:
        """Give connections ``timeout`` seconds to finish, then cancel them."""
        if self._conn_scope is not None:
            self._conn_scope.deadline = trio.current_time() + timeout if math.isfinite(timeout) else math.inf

    async def _handshake(self, stream: trio.SocketStream, seconds: float) -> trio.abc.Stream | None:
        """The stream to talk over: TLS on implicit-TLS listeners (None if the handshake failed in time)."""
        if self.tls is None:
            return stream
        conn = trio.SSLStream(stream, self.tls.context, server_side=True)
        with trio.move_on_after(seconds):
            try:
                await conn.do_handshake()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                log.info("%s: TLS handshake failed", self.name)
                return None
            return conn
        log.info("%s: TLS handshake timed out", self.name)
        return None

    async def _serve_one(self, stream: trio.SocketStream) -> None:
        # one id per connection, set once: every log line of this task (listener and session) carries it
        connection_id.set(f"{self.name}#{next(_conn_ids)}")
        peer = _peer_of(stream)
        try:  # dead peers are noticed even on idle connections
            stream.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        except OSError:
            pass
        if self.active >= self.max_connections:
            log.warning("%s: refusing connection from %s: %d connections open", self.name, peer, self.active)
            try:
                if self.on_overload is not None:
                    with trio.move_on_after(5):
                        # an implicit-TLS client hears the refusal inside TLS, never as plaintext
                        refusal = await self._handshake(stream, 5)
                        if refusal is not None:
                            await self.on_overload(refusal, peer)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            finally:
                await trio.aclose_forcefully(stream)
            return
        self.active += 1
        gauge = metrics.CONNECTIONS.labels(self.name)
        gauge.inc()
        conn: trio.abc.Stream | None = stream
        try:
            conn = await self._handshake(stream, TLS_HANDSHAKE_TIMEOUT)
            if conn is None:
                return
            log.debug("connection from %s", peer)
            await self.handler(conn, peer)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            log.debug("connection from %s closed: %r", peer, exc)
        except Exception:  # one client's crash must never take the listener down
            log.exception("connection from %s failed", peer)
        finally:
            self.active -= 1
            gauge.dec()
            await trio.aclose_forcefully(conn or stream)


class _Forward:
    """Reports the bound address instead of serve_listeners' list of listeners."""

    def __init__(self, task_status: trio.TaskStatus[Bound], bound: Bound) -> None:
        self._task_status = task_status
        self._bound = bound

    def started(self, value: object = None) -> None:
        self._task_status.started(self._bound)
