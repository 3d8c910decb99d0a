"""Serving the API with Hypercorn inside the server's nursery, on sockets bound before anything else started."""

from __future__ import annotations

import logging
import socket
from functools import partial
from pathlib import Path

import trio
from hypercorn.config import Config as HyperConfig
from hypercorn.config import Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app
from quart_trio import QuartTrio

from wildduck.api.app import ApiApp
from wildduck.net.listeners import Bound

log = logging.getLogger(__name__)


#: bytes of an HTTP/1.1 request line and headers at most (an event id of up to 64 KiB fits, see routes/updates.py)
MAX_REQUEST_HEAD = 80 * 1024


class ApiServer:
    """Hypercorn serving ``app`` (HTTP/1.1 and HTTP/2; HTTPS when ``tls`` names a certificate and key) on
    ``sockets``. Run :meth:`run` with ``nursery.start`` (it reports the bound address); :meth:`stop` stops
    accepting, closes idle keep-alive connections at once, ends the live update streams (an :class:`ApiApp`'s
    ``stopping``) and gives requests in flight ``graceful_timeout`` seconds; :attr:`done` is set once it has
    stopped.

    ``send_timeout``: a connection whose client has acknowledged nothing sent to it for that many seconds is
    dropped by the kernel (``TCP_USER_TIMEOUT``, set on the listening sockets and so on every connection).
    Hypercorn's writes cannot be interrupted otherwise: a client that stops reading a live stream would hold its
    connection, and the task writing to it, forever.

    Hypercorn's own WebSocket pings stay off: its ping task outlives the connection it pings by up to one
    interval (holding the connection's tasks, and delaying shutdown); the update streams send a message when idle
    instead."""

    def __init__(self, app: QuartTrio, sockets: list[trio.SocketListener], *, tls: tuple[Path, Path] | None,
                 keep_alive_timeout: float, graceful_timeout: float, name: str = "api",
                 send_timeout: float | None = None) -> None:
        self.app = app
        self.sockets = sockets
        self.name = name
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

    def stop(self) -> None:
        self._stop.set()
        if isinstance(self.app, ApiApp):
            self.app.stopping.set()

    async def run(self, *, task_status: trio.TaskStatus[Bound] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until :meth:`stop` (then gracefully) or cancellation (at once)."""
        name = self.sockets[0].socket.getsockname()
        bound = Bound(self.name, name[0], name[1])
        plain = [socket.socket(fileno=s.socket.detach()) for s in self.sockets]
        self.sockets = []
        sockets = Sockets(secure_sockets=plain if self._tls else [], insecure_sockets=[] if self._tls else plain,
                          quic_sockets=[])
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(partial(worker_serve, wrap_app(self.app, self.config.wsgi_max_body_size, None),
                                            self.config, sockets=sockets, shutdown_trigger=self._stop.wait))
                task_status.started(bound)
        finally:
            for s in plain:
                s.close()
            self.done.set()
