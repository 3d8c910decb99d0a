"""Security regression: HTTP/1.1 connections that the server never closed (quart-trio 0.12 with Hypercorn cancelled
the end of every response before Hypercorn could close the connection or start its keep-alive timer), so every
client that went quiet held a socket until it chose to leave: an idle-connection DoS and an fd leak.

Raw sockets, so that nothing but the server decides when the connection ends.
On the single node only: the HTTP transport ends connections alike on every deployment."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.api.conftest import ROOT_TOKEN, api_overrides
from wildduck.testing.server import running_server

REQUEST = b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Access-Token: " + ROOT_TOKEN.encode() + b"\r\n"


async def read_until_eof(stream: trio.SocketStream, seconds: float) -> tuple[bytes, bool]:
    """Everything the server sends within ``seconds``, and whether it closed the connection by then."""
    data = b""
    with trio.move_on_after(seconds):
        while chunk := await stream.receive_some(65536):
            data += chunk
        return data, True
    return data, False


async def test_connection_close_is_honoured(tmp_path: Path) -> None:
    async with running_server(tmp_path, api_overrides(keep_alive_timeout=30.0)) as srv:
        stream = await trio.open_tcp_stream(*srv.address("api"))
        async with stream:
            await stream.send_all(REQUEST + b"Connection: close\r\n\r\n")
            data, closed = await read_until_eof(stream, 5)
        assert data.startswith(b"HTTP/1.1 200") and b'"success":true' in data
        assert closed, "the server kept the connection open after Connection: close"


async def test_idle_keep_alive_connection_is_closed_after_the_timeout(tmp_path: Path) -> None:
    async with running_server(tmp_path, api_overrides(keep_alive_timeout=0.5)) as srv:
        stream = await trio.open_tcp_stream(*srv.address("api"))
        async with stream:
            await stream.send_all(REQUEST + b"\r\n")
            start = trio.current_time()
            data, closed = await read_until_eof(stream, 5)
            waited = trio.current_time() - start
        assert data.count(b"HTTP/1.1 200") == 1
        assert closed, "an idle keep-alive connection was never closed"
        assert 0.4 < waited < 3, waited


async def test_keep_alive_serves_several_requests_then_closes(tmp_path: Path) -> None:
    async with running_server(tmp_path, api_overrides(keep_alive_timeout=0.5)) as srv:
        stream = await trio.open_tcp_stream(*srv.address("api"))
        async with stream:
            for _ in range(3):  # kept alive between requests
                await stream.send_all(REQUEST + b"\r\n")
                head = b""
                with trio.fail_after(5):
                    while b'"success":true' not in head:
                        head += await stream.receive_some(65536)
            await stream.send_all(REQUEST + b"Connection: close\r\n\r\n")
            data, closed = await read_until_eof(stream, 5)
        assert b"HTTP/1.1 200" in data and closed


async def test_an_error_response_closes_too(tmp_path: Path) -> None:
    """The refusal path (403 before any route runs) ends the same way."""
    async with running_server(tmp_path, api_overrides()) as srv:
        stream = await trio.open_tcp_stream(*srv.address("api"))
        async with stream:
            await stream.send_all(b"GET /users HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data, closed = await read_until_eof(stream, 5)
        assert data.startswith(b"HTTP/1.1 403") and b'"code":"InvalidToken"' in data and closed


async def test_shutdown_closes_idle_connections_at_once(tmp_path: Path) -> None:
    async with running_server(tmp_path, api_overrides(keep_alive_timeout=60.0)) as srv:
        stream = await trio.open_tcp_stream(*srv.address("api"))
        await stream.send_all(REQUEST + b"\r\n")
        with trio.fail_after(5):
            while b'"success":true' not in await stream.receive_some(65536):
                pass
        start = trio.current_time()
        srv.stop()
        data, closed = await read_until_eof(stream, 5)
        await stream.aclose()
        assert closed and trio.current_time() - start < 2.5
        assert srv.stopped is not None
        with trio.fail_after(5):
            await srv.stopped.wait()


async def test_an_http_1_0_request_ends_its_connection(tmp_path: Path) -> None:
    async with running_server(tmp_path, api_overrides(keep_alive_timeout=30.0)) as srv:
        stream = await trio.open_tcp_stream(*srv.address("api"))
        async with stream:
            await stream.send_all(REQUEST.replace(b"HTTP/1.1", b"HTTP/1.0") + b"\r\n")
            data, closed = await read_until_eof(stream, 5)
        assert b" 200" in data.split(b"\r\n", 1)[0] and closed
