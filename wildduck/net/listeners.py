"""TCP listeners supervised by Trio: plain or implicit TLS, connection caps, crash isolation, graceful drain."""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

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
        self._accept_scope = trio.CancelScope()
        self._conn_scope: trio.CancelScope | None = None
        self.drained = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[Bound] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen until :meth:`stop_accepting`, then wait for connections (see :meth:`drain`).

        Cancellation closes the listening socket and every connection at once.
        """
        listeners = await trio.open_tcp_listeners(self.port, host=self.host)
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

    async def _serve_one(self, stream: trio.SocketStream) -> None:
        cid = next(_conn_ids)
        peer = _peer_of(stream)
        if self.active >= self.max_connections:
            log.warning("%s: refusing connection %d from %s: %d connections open", self.name, cid, peer, self.active)
            try:
                if self.on_overload is not None:
                    with trio.move_on_after(5):
                        await self.on_overload(stream, peer)
            finally:
                await trio.aclose_forcefully(stream)
            return
        self.active += 1
        conn: trio.abc.Stream = stream
        try:
            if self.tls is not None:
                conn = trio.SSLStream(stream, self.tls.context, server_side=True)
                with trio.move_on_after(TLS_HANDSHAKE_TIMEOUT) as scope:
                    await conn.do_handshake()
                if scope.cancelled_caught:
                    log.info("%s: connection %d from %s: TLS handshake timed out", self.name, cid, peer)
                    return
            log.debug("%s: connection %d from %s", self.name, cid, peer)
            await self.handler(conn, peer)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            log.debug("%s: connection %d from %s closed: %r", self.name, cid, peer, exc)
        except Exception:  # one client's crash must never take the listener down
            log.exception("%s: connection %d from %s failed", self.name, cid, peer)
        finally:
            self.active -= 1
            await trio.aclose_forcefully(conn)


class _Forward:
    """Reports the bound address instead of serve_listeners' list of listeners."""

    def __init__(self, task_status: trio.TaskStatus[Bound], bound: Bound) -> None:
        self._task_status = task_status
        self._bound = bound

    def started(self, value: object = None) -> None:
        self._task_status.started(self._bound)
