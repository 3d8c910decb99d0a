"""Serving the API with Hypercorn inside the server's nursery, on sockets bound before anything else started."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import trio
from hypercorn.config import Config as HyperConfig
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState, LifespanState
from hypercorn.utils import wrap_app
from quart_trio import QuartTrio

from wildduck.api.app import ApiApp
from wildduck.net.balance import Seat
from wildduck.net.listeners import Bound, Listener

log = logging.getLogger(__name__)


#: bytes of an HTTP/1.1 request line and headers at most (an event id of up to 64 KiB fits, see routes/updates.py)
MAX_REQUEST_HEAD = 80 * 1024


#: the answer to a connection over the limit (plain HTTP; an HTTPS one is closed: it would need a handshake first)
BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 61\r\n"
        b"Retry-After: 1\r\nConnection: close\r\n\r\n"
        b'{"error":"Too many connections","code":"ServiceUnavailable"}\n')


async def _busy(stream: trio.abc.Stream, _peer: str) -> None:
    await stream.send_all(BUSY)


class ApiServer:
    """Hypercorn serving ``app`` (HTTP/1.1 and HTTP/2; HTTPS when ``tls`` names a certificate and key) on
    ``sockets``. Run :meth:`run` with ``nursery.start`` (it reports the bound address); :meth:`stop` stops
    accepting, closes idle keep-alive connections at once, ends the live update streams (an :class:`ApiApp`'s
    ``stopping``) and gives requests in flight ``graceful_timeout`` seconds; :attr:`done` is set once it has
    stopped.

    Connections are accepted by the server's own :class:`~wildduck.net.listeners.Listener` (Hypercorn serves each
    accepted connection with its ``TCPServer``, and the app's lifespan with its ``Lifespan``): with several worker
    processes sharing the port, ``seat`` balances them by least connections as on the mail ports (Hypercorn's own
    accept loop lets whichever worker wakes first take a connection, and 10 keep-alive clients split 9 and 1), and
    more than ``max_connections`` open connections are refused.

    ``send_timeout``: a connection whose client has acknowledged nothing sent to it for that many seconds is
    dropped by the kernel (``TCP_USER_TIMEOUT``, set on the listening sockets and so on every connection).
    Hypercorn's writes cannot be interrupted otherwise: a client that stops reading a live stream would hold its
    connection, and the task writing to it, forever.

    Hypercorn's own WebSocket pings stay off: its ping task outlives the connection it pings by up to one
    interval (holding the connection's tasks, and delaying shutdown); the update streams send a message when idle
    instead."""

    def __init__(self, app: QuartTrio, sockets: list[trio.SocketListener], *, tls: tuple[Path, Path] | None,
                 keep_alive_timeout: float, graceful_timeout: float, name: str = "api",
                 send_timeout: float | None = None, max_connections: int = 1000, seat: Seat | None = None) -> None:
        self.app = app
        self.sockets = sockets
        self.name = name
        self.max_connections = max_connections
        self.seat = seat
        self.config = HyperConfig()
        self.config.keep_alive_timeout = keep_alive_timeout
        self.config.graceful_timeout = graceful_timeout
        self.config.accesslog = None  # an access log would carry ?accessToken= values
        self.config.errorlog = logging.getLogger("wildduck.api.http")
        self.config.include_server_header = False
        # an HTTP/1.1 request line and headers up to this size (Hypercorn's default is 16 KiB): a stream position
        # (Last-Event-ID, ?lastEventId=) of a user with many mailboxes may need more; HTTP/2 allows 64 KiB
        self.config.h11_max_incomplete_size = MAX_REQUEST_HEAD
        if send_timeout is not None and hasattr(socket, "TCP_USER_TIMEOUT"):
            for listener in sockets:
                listener.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT,
                                           max(1, int(send_timeout * 1000)))
        if tls is not None:
            self.config.certfile, self.config.keyfile = str(tls[0]), str(tls[1])
        self._tls = tls is not None
        self._stop = trio.Event()
        self.done = trio.Event()
        #: accepts the connections, once :meth:`run` has started (its ``active``: connections open)
        self.listener: Listener | None = None

    def stop(self) -> None:
        self._stop.set()
        if isinstance(self.app, ApiApp):
            self.app.stopping.set()

    async def run(self, *, task_status: trio.TaskStatus[Bound] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until :meth:`stop` (then gracefully) or cancellation (at once)."""
        app = wrap_app(self.app, self.config.wsgi_max_body_size, None)
        context = WorkerContext(None)
        state: LifespanState = {}
        lifespan = Lifespan(app, self.config, state)
        ssl_context = self.config.create_ssl_context() if self._tls else None

        async def serve_connection(stream: trio.abc.Stream, _peer: str) -> None:
            if ssl_context is not None:  # Hypercorn's TCPServer does the handshake (with a deadline) and ALPN
                stream = trio.SSLStream(stream, ssl_context, server_side=True, https_compatible=True)
            await TCPServer(app, self.config, context, ConnectionState(state.copy()), stream)  # type: ignore[arg-type]

        host, port = self.sockets[0].socket.getsockname()[:2]
        self.listener = listener = Listener(self.name, host, port, serve_connection,
                                            max_connections=self.max_connections, seat=self.seat,
                                            on_overload=None if self._tls else _busy)
        listener.sockets, self.sockets = self.sockets, []
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(lifespan.handle_lifespan)
                await lifespan.wait_for_startup()
                bound = await nursery.start(listener.run)
                task_status.started(bound)
                await self._stop.wait()
                listener.stop_accepting()
                # idle keep-alive connections close now (each waits on this), and a connection closes after the
                # response in flight (Hypercorn's protocols check it)
                await context.terminated.set()
                listener.drain(self.config.graceful_timeout)
                await listener.drained.wait()
                await lifespan.wait_for_shutdown()
                nursery.cancel_scope.cancel()
        finally:
            self.done.set()
