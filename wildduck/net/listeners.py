"""TCP listeners supervised by Trio: plain or implicit TLS, connection caps, crash isolation, graceful drain."""

from __future__ import annotations

import errno
import itertools
import logging
import math
import os
import select
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from wildduck import metrics
from wildduck.errors import ConfigError
from wildduck.log import connection_id
from wildduck.net.balance import DEFER, Seat
from wildduck.net.proxy import ClosedBeforeHeader, ProxyHeaderError, ProxyPolicy, read_header
from wildduck.net.tls import ReloadableTLS

log = logging.getLogger(__name__)

#: ``handler(stream, peer)`` serves one connection.
Handler = Callable[[trio.abc.Stream, str], Awaitable[None]]

TLS_HANDSHAKE_TIMEOUT = 30.0

_conn_ids = itertools.count(1)

#: accept() errors about the one connection that went away before it was taken (as trio's own listener ignores)
_IGNORED_ACCEPT_ERRORS = {errno.ECONNABORTED, errno.EPERM, errno.EPROTO}
#: accept() errors that pass when connections or memory are freed
_RESOURCE_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}


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
        seat: Seat | None = None,
        proxy: ProxyPolicy | None = None,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.handler = handler
        self.max_connections = max_connections
        self.tls = tls
        self.on_overload = on_overload
        self.active = 0
        #: with several workers: this worker's entry in the node's load board (see ``net/balance.py``)
        self.seat = seat
        #: PROXY protocol headers expected from these balancers (``net/proxy.py``); None: direct connections
        self.proxy = proxy
        #: connections accepted whose task has not started yet (they count as load already)
        self._starting = 0
        self._accepting = False
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
                    if self.seat is None:
                        await trio.serve_listeners(
                            self._serve_one, listeners, handler_nursery=conns,
                            task_status=_Forward(task_status, bound),
                        )
                    else:
                        try:
                            async with trio.open_nursery() as loops:
                                for lst in listeners:
                                    loops.start_soon(self._accept_balanced, lst, conns)
                                self._accepting = True
                                self._publish()
                                task_status.started(bound)
                        finally:
                            self._accepting = False
                            self.seat.leave()
                for lst in listeners:
                    await lst.aclose()
        finally:
            self.drained.set()

    def _publish(self) -> None:
        if self.seat is not None and self._accepting:
            self.seat.publish(self.active + self._starting)

    async def _accept_balanced(self, listener: trio.SocketListener, conns: trio.Nursery) -> None:
        """Accept from a socket the node's workers share, leaving a waiting connection to a less busy worker first
        (see ``net/balance.py``)."""
        assert self.seat is not None
        sock = listener.socket
        raw = socket.socket(fileno=os.dup(sock.fileno()))  # for accepts that must not wait
        raw.setblocking(False)
        waiting = select.poll()  # is a connection still waiting (not taken by another worker)?
        waiting.register(raw.fileno(), select.POLLIN)
        try:
            while True:
                await trio.lowlevel.wait_readable(sock)
                if self.seat.busier(self.active + self._starting):
                    # leave it to a less busy worker; watch meanwhile, so this worker is not asleep when the
                    # next connection should be its own
                    deadline = trio.current_time() + DEFER
                    while trio.current_time() < deadline:
                        await trio.sleep(DEFER / 5)
                        if not waiting.poll(0) or not self.seat.busier(self.active + self._starting):
                            break
                    if not waiting.poll(0):
                        continue
                try:
                    accepted, _ = raw.accept()
                except BlockingIOError:  # another worker took it
                    continue
                except OSError as exc:
                    if exc.errno in _IGNORED_ACCEPT_ERRORS:
                        continue
                    if exc.errno in _RESOURCE_ERRORS:
                        log.error("%s: cannot accept (%s); retrying in 0.1 s", self.name, exc.strerror)
                        await trio.sleep(0.1)
                        continue
                    raise
                self._starting += 1
                self._publish()
                conns.start_soon(self._serve_one, trio.SocketStream(trio.socket.from_stdlib_socket(accepted)))
        finally:
            raw.close()

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

    async def _proxied_peer(self, stream: trio.SocketStream, peer: str) -> str | None:
        """The client's address from the balancer's PROXY header (None: not a trusted balancer, or no header in
        time; logged)."""
        assert self.proxy is not None
        if peer == "?":  # gone already (a balancer's TCP health check connects and closes at once)
            log.debug("%s: a connection closed before it was served", self.name)
            return None
        balancer = peer.rsplit(":", 1)[0]
        if not self.proxy.trusts(balancer):
            log.warning("%s: closing a connection from %s: not in proxy_from (this port takes connections from "
                        "its load balancers only)", self.name, peer)
            return None
        with trio.move_on_after(self.proxy.timeout):
            try:
                source = await read_header(stream.socket)
            except ClosedBeforeHeader:
                log.debug("%s: %s closed before its PROXY header (a health check)", self.name, peer)
                return None
            except ProxyHeaderError as exc:
                log.warning("%s: closing a connection from %s: %s", self.name, peer, exc)
                return None
            except OSError as exc:
                log.info("%s: connection from %s lost in its PROXY header: %s", self.name, peer, exc)
                return None
            proxied = source.peer(peer)
            log.debug("%s: %s is %s (PROXY header)", self.name, peer, proxied)
            return proxied
        log.warning("%s: closing a connection from %s: no PROXY header within %.0f s", self.name, peer,
                    self.proxy.timeout)
        return None

    async def _serve_one(self, stream: trio.SocketStream) -> None:
        if self.seat is not None:
            self._starting -= 1
        # one id per connection, set once: every log line of this task (listener and session) carries it
        connection_id.set(f"{self.name}#{next(_conn_ids)}")
        peer = _peer_of(stream)
        try:  # dead peers are noticed even on idle connections
            stream.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        except OSError:
            pass
        if self.proxy is not None:
            proxied = await self._proxied_peer(stream, peer)
            if proxied is None:
                await trio.aclose_forcefully(stream)
                return
            peer = proxied
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
                self._publish()
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
            self._publish()
            gauge.dec()
            await trio.aclose_forcefully(conn or stream)


class _Forward:
    """Reports the bound address instead of serve_listeners' list of listeners."""

    def __init__(self, task_status: trio.TaskStatus[Bound], bound: Bound) -> None:
        self._task_status = task_status
        self._bound = bound

    def started(self, value: object = None) -> None:
        self._task_status.started(self._bound)
