"""``/users/:user/updates`` as a WebSocket (the same path, with an upgrade), consumed with trio-websocket: the
journal replayed, an IMAP APPEND and an LMTP delivery arriving live, resuming with ``lastEventId``, tokens, the
idle message, a client that stops reading dropped, and a clean close at server shutdown."""

from __future__ import annotations

import imaplib
import json
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    WebSocketConnection,
    open_websocket_url,
    wrap_client_stream,
)

from tests.api.conftest import ROOT_TOKEN, Api, api_overrides, lmtp_deliver, serving_api
from tests.api.test_messages import inbox_of, plain, upload_raw
from tests.deployments import Deployment
from wildduck.api.routes import updates


def url(api: Api, user: str, query: str) -> str:
    host, port = api.server.address("api")
    return f"ws://{host}:{port}/users/{user}/updates?{query}"


@asynccontextmanager
async def updates_ws(api: Api, user: str, token: str = ROOT_TOKEN, last_id: str | None = None,
                     ) -> AsyncIterator[WebSocketConnection]:
    query = f"accessToken={token}" + (f"&lastEventId={last_id}" if last_id else "")
    async with open_websocket_url(url(api, user, query)) as ws:
        yield ws


async def receive(ws: WebSocketConnection) -> dict[str, Any]:
    with trio.fail_after(20):
        message: dict[str, Any] = json.loads(await ws.get_message())
    assert isinstance(message["id"], str) and message["id"].startswith("v1.")
    return message


async def until(ws: WebSocketConnection, kind: str, command: str | None = None) -> dict[str, Any]:
    """The next message of ``kind`` (and, for events, with ``command``)."""
    while True:
        message = await receive(ws)
        if message["type"] == kind and (command is None or message["data"]["command"] == command):
            return message


def imap_append(api: Api, username: str, raw: bytes) -> None:
    with imaplib.IMAP4(*api.server.address("imap")) as client:
        client.login(username, "secret-pass")
        status, _ = client.append("INBOX", "", None, raw)
        assert status == "OK"


async def test_replay_imap_append_lmtp_delivery_then_resume(api: Api) -> None:
    user = await api.create_user("alice", address="alice@example.com")
    inbox = await inbox_of(api, user)
    await upload_raw(api, user, inbox, plain("first"))
    async with updates_ws(api, user) as ws:
        replayed = await receive(ws)
        assert replayed["type"] == "event"
        assert (replayed["data"]["command"], replayed["data"]["mailbox"], replayed["data"]["uid"]) \
            == ("EXISTS", inbox, 1)
        counters = await receive(ws)
        assert counters["data"] == {"command": "COUNTERS", "mailbox": inbox, "total": 1, "unseen": 0}
        ready = await receive(ws)
        assert ready["type"] == "ready" and "data" not in ready

        await trio.to_thread.run_sync(imap_append, api, "alice", plain("appended over IMAP"))
        appended = await until(ws, "event", "EXISTS")
        assert (appended["data"]["mailbox"], appended["data"]["uid"], appended["data"]["unseen"]) \
            == (inbox, 2, True)

        await trio.to_thread.run_sync(lmtp_deliver, api, "alice@example.com", plain("delivered over LMTP"))
        delivered = await until(ws, "event", "EXISTS")
        assert (delivered["data"]["uid"], delivered["data"]["unseen"]) == (3, True)
        counted = await until(ws, "event", "COUNTERS")
        assert counted["data"] == {"command": "COUNTERS", "mailbox": inbox, "total": 3, "unseen": 2}
        seen_up_to = counted["id"]

    # missed while disconnected: a flag change and a new mailbox
    r = await api.root.put(f"/users/{user}/mailboxes/{inbox}/messages/3", json={"flagged": True})
    assert r.status_code == 200
    box = (await api.root.post(f"/users/{user}/mailboxes", json={"path": "Projects"})).json()["id"]
    async with updates_ws(api, user, last_id=seen_up_to) as ws:
        missed = []
        while (message := await receive(ws))["type"] == "event":
            missed.append(message["data"])
        assert message["type"] == "ready"
    commands = [(e["command"], e["mailbox"]) for e in missed]
    assert ("FETCH", inbox) in commands and ("CREATE", box) in commands
    assert not any(e["command"] == "EXISTS" for e in missed)  # nothing seen before comes again
    fetch = next(e for e in missed if e["command"] == "FETCH")
    assert fetch["uid"] == 3 and "\\Flagged" in fetch["flags"]


async def test_the_ready_id_resumes_where_the_replay_ended(api: Api) -> None:
    user = await api.create_user("alice", address="alice@example.com")
    inbox = await inbox_of(api, user)
    await upload_raw(api, user, inbox, plain("first"))
    async with updates_ws(api, user) as ws:
        ready = await until(ws, "ready")
    async with updates_ws(api, user, last_id=ready["id"]) as ws:
        assert (await receive(ws))["type"] == "ready"  # nothing replayed twice


async def test_tokens_header_and_refusals(api: Api) -> None:
    alice = await api.create_user("alice")
    await api.create_user("bob")
    bob_token = await api.user_token("bob")
    host, port = api.server.address("api")
    for query, status, code in (("accessToken=wrong", 403, "InvalidToken"), ("", 403, "InvalidToken"),
                                (f"accessToken={bob_token}", 403, "MissingPrivileges"),
                                (f"accessToken={ROOT_TOKEN}&lastEventId=bogus", 400, "InputValidationError"),
                                (f"accessToken={ROOT_TOKEN}&since=1", 400, "InputValidationError")):
        with pytest.raises(ConnectionRejected) as refused:
            async with open_websocket_url(url(api, alice, query)):
                raise AssertionError(f"accepted: {query}")
        assert refused.value.status_code == status, query
        assert refused.value.body is not None and json.loads(refused.value.body)["code"] == code, query
    # a user token for its own user ("me"), in a header
    async with open_websocket_url(f"ws://{host}:{port}/users/me/updates",
                                  extra_headers=[(b"X-Access-Token", bob_token.encode())]) as ws:
        assert (await until(ws, "ready"))["type"] == "ready"
    async with open_websocket_url(f"ws://{host}:{port}/users/{alice}/updates",
                                  extra_headers=[(b"Authorization", f"Bearer {ROOT_TOKEN}".encode())]) as ws:
        assert (await until(ws, "ready"))["type"] == "ready"


async def test_idle_message_keeps_the_stream_alive(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(updates, "IDLE", 0.3)
    user = await api.create_user("alice")
    async with updates_ws(api, user) as ws:
        ready = await until(ws, "ready")
        idle = await receive(ws)
        assert idle["type"] == "idle" and idle["id"] == ready["id"]
        box = (await api.root.post(f"/users/{user}/mailboxes", json={"path": "Elsewhere"})).json()["id"]
        created = await until(ws, "event", "CREATE")  # a new mailbox is found at the latest when idle
        assert created["data"] == {"command": "CREATE", "mailbox": box, "path": "Elsewhere"}


async def test_server_shutdown_closes_with_going_away(tmp_path: Path, deployment: Deployment) -> None:
    async with serving_api(tmp_path / "data", deployment=deployment) as api:
        user = await api.create_user("alice")
        async with updates_ws(api, user) as ws:
            await until(ws, "ready")
            start = trio.current_time()
            api.server.stop()
            with pytest.raises(ConnectionClosed) as closed, trio.fail_after(10):
                while True:
                    await ws.get_message()
            assert closed.value.reason.code == 1001
            assert trio.current_time() - start < 2  # at once, not after the shutdown timeout


async def test_a_client_that_stops_reading_is_dropped(tmp_path: Path, deployment: Deployment,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(updates, "SEND_QUEUE", 20)
    caplog.set_level(logging.INFO, "wildduck.api.routes.updates")
    async with serving_api(tmp_path / "data", {**api_overrides(), "limits": {"send_timeout": 1.0}}, deployment) \
            as api:
        user = await api.create_user("alice")
        inbox = await inbox_of(api, user)
        for n in range(20):
            await upload_raw(api, user, inbox, plain(f"message {n}"))
        host, port = api.server.address("api")
        sock = trio.socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills soon
        await sock.connect((host, port))
        async with trio.open_nursery() as nursery:
            ws = await wrap_client_stream(nursery, trio.SocketStream(sock), host,
                                          f"/users/{user}/updates?accessToken={ROOT_TOKEN}", message_queue_size=1)
            # the client reads nothing while 20 messages change their flags, again and again
            with trio.fail_after(30):
                flagged = True
                while not any("stopped reading" in r.getMessage() for r in caplog.records):
                    r = await api.root.put(f"/users/{user}/mailboxes/{inbox}/messages",
                                           json={"message": "1:*", "flagged": flagged})
                    assert r.status_code == 200
                    flagged = not flagged
            # what the kernel had buffered can still be read, then the connection ends
            with pytest.raises(ConnectionClosed), trio.fail_after(10):
                while True:
                    await ws.get_message()
            nursery.cancel_scope.cancel()


async def test_upgrades_elsewhere_are_refused_in_json(api: Api) -> None:
    host, port = api.server.address("api")
    for path, status, code in (("/nowhere", 404, "ResourceNotFound"), ("/users/" + "0" * 24, 405, "MethodNotAllowed"),
                               ("/users/" + "0" * 24 + "/updates", 404, "UserNotFound")):
        with pytest.raises(ConnectionRejected) as refused:
            async with open_websocket_url(f"ws://{host}:{port}{path}?accessToken={ROOT_TOKEN}"):
                raise AssertionError(f"accepted: {path}")
        assert refused.value.status_code == status and refused.value.body is not None
        assert json.loads(refused.value.body)["code"] == code


async def test_a_revoked_token_closes_the_websocket(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(updates, "IDLE", 0.3)
    await api.create_user("alice")
    token = await api.user_token("alice")
    async with updates_ws(api, "me", token=token) as ws:
        await until(ws, "ready")
        async with api.client(token) as alice:
            assert (await alice.delete("/authenticate")).json() == {"success": True}
        with pytest.raises(ConnectionClosed) as closed, trio.fail_after(10):
            while True:
                await ws.get_message()
        assert closed.value.reason.code == 1008 and "no longer valid" in (closed.value.reason.reason or "")
