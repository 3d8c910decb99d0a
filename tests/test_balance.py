"""Least-connections accepting over a listening socket several workers share (``net/balance.py``).

The board is tested as a table, then two listeners (two "workers", each with its own descriptor of one listening
socket, as inherited by worker processes) serve real TCP connections in one process; ``tests/test_workers.py`` does
the same with real worker processes.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import trio

from wildduck.net.balance import LoadBoard
from wildduck.net.listeners import Listener


def test_a_worker_is_busier_only_than_live_workers_with_fewer_connections() -> None:
    board = LoadBoard.create(3, ["imap", "pop3"])
    try:
        a, b, c = (board.seat(w, "imap") for w in range(3))
        assert a is not None and b is not None and c is not None
        assert board.seat(0, "lmtp") is None  # not balanced
        assert not a.busier(5), "nobody else serves yet"
        a.publish(2)
        b.publish(3)
        assert not a.busier(2) and b.busier(3) and not b.busier(2)
        c.publish(0)
        assert a.busier(2) and a.busier(1) and not a.busier(0)
        board.clear(2)  # worker 2 exited
        assert board.counts("imap") == [2, 3, None]
        assert not a.busier(2)
        assert board.counts("pop3") == [None, None, None], "listeners are counted apart"
        b.leave()
        assert not a.busier(100)
        # a worker process maps the same memory from the inherited descriptor
        other = LoadBoard.from_spec({**board.spec(), "fd": os.dup(board.fd)})
        seat = other.seat(1, "pop3")
        assert seat is not None
        seat.publish(7)
        assert board.counts("pop3") == [None, 7, None]
        other.close()
    finally:
        board.close()


async def until(predicate: Callable[[], bool]) -> None:
    """Wait (polling: the state is another task's counters) until ``predicate()`` holds; 5 s at most."""
    for _ in range(500):
        if predicate():
            return
        await trio.sleep(0.01)
    raise AssertionError("condition not reached in 5 s")


async def _echo(stream: trio.abc.Stream, peer: str) -> None:
    await stream.send_all(b"hi\r\n")
    while await stream.receive_some(64):  # until the client closes
        pass


async def test_two_listeners_on_one_socket_take_connections_least_connections_first() -> None:
    shared = socket.create_server(("127.0.0.1", 0))
    port = shared.getsockname()[1]
    board = LoadBoard.create(2, ["imap"])
    listeners = []
    for worker in range(2):
        sock = trio.socket.from_stdlib_socket(socket.socket(fileno=os.dup(shared.fileno())))
        listener = Listener("imap", "127.0.0.1", port, _echo, max_connections=100, seat=board.seat(worker, "imap"))
        listener.sockets = [trio.SocketListener(sock)]
        listeners.append(listener)
    shared.close()
    clients: list[trio.SocketStream] = []

    async def connect() -> trio.SocketStream:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        assert await stream.receive_some(4) == b"hi\r\n"  # served: the count is published
        clients.append(stream)
        return stream

    try:
        async with trio.open_nursery() as nursery:
            for listener in listeners:
                await nursery.start(listener.run)
            assert board.counts("imap") == [0, 0]
            for _ in range(10):
                await connect()
            counts = board.counts("imap")
            assert [listener.active for listener in listeners] == counts
            assert sorted(counts) == [5, 5], counts  # type: ignore[type-var]
            # four connections end, wherever they were: the next four even the counts again
            for stream in clients[:4]:
                await stream.aclose()
            del clients[:4]
            await until(lambda: sum(listener.active for listener in listeners) == 6)
            for _ in range(4):
                await connect()
            assert board.counts("imap") == [5, 5]
            # a worker that stops accepting leaves the board: the other takes every connection, none waits for it
            listeners[0].stop_accepting()
            await until(lambda: board.counts("imap")[0] is None)
            before = listeners[1].active
            for _ in range(3):
                await connect()
            assert listeners[1].active == before + 3
            nursery.cancel_scope.cancel()
    finally:
        for stream in clients:
            await stream.aclose()
        board.close()
