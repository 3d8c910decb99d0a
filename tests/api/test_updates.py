"""``/users/:user/updates`` consumed by a streaming HTTP client: the journal replayed, live changes from the API
and from LMTP, reconnecting with ``Last-Event-ID`` gets exactly what was missed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.api.conftest import Api, lmtp_deliver, serving_api
from tests.api.test_messages import inbox_of, plain, upload_raw
from tests.deployments import Deployment


class Events:
    """Server-sent events read from a streaming response: (payload, id)."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()
        self.last_id = ""

    async def _item(self) -> dict[str, Any] | str:
        """The next event, or comment line."""
        data: list[str] = []
        async for line in self.lines:
            if line.startswith("data: "):
                data.append(line[6:])
            elif line.startswith("id: "):
                self.last_id = line[4:]
            elif line.startswith(":") and not data:
                return line
            elif line == "" and data:
                event: dict[str, Any] = json.loads("\n".join(data))
                return event
        raise AssertionError("the stream ended")

    async def next(self) -> dict[str, Any]:
        """The next event (comments skipped)."""
        with trio.fail_after(20):
            while isinstance(item := await self._item(), str):
                pass
        return item

    async def replayed(self) -> list[dict[str, Any]]:
        """The events up to the end of the replay (the ``: ready`` comment)."""
        events = []
        with trio.fail_after(20):
            while (item := await self._item()) != ": ready":
                if not isinstance(item, str):
                    events.append(item)
        return events

    async def until(self, command: str) -> dict[str, Any]:
        while True:
            event = await self.next()
            if event["command"] == command:
                return event


@asynccontextmanager
async def stream(client: httpx.AsyncClient, user: str, last_id: str | None = None) -> AsyncIterator[Events]:
    headers = {"Last-Event-ID": last_id} if last_id else {}
    async with client.stream("GET", f"/users/{user}/updates", headers=headers) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        yield Events(r)


async def test_replay_then_live_then_resume_after_the_last_event(api: Api) -> None:
    user = await api.create_user("alice", address="alice@example.com")
    inbox = await inbox_of(api, user)
    await upload_raw(api, user, inbox, plain("first"))
    box = (await api.root.post(f"/users/{user}/mailboxes", json={"path": "Projects"})).json()["id"]
    async with stream(api.root, user) as events:
        replayed = [await events.next(), await events.next()]
        assert (replayed[0]["command"], replayed[0]["mailbox"], replayed[0]["uid"]) == ("EXISTS", inbox, 1)
        assert replayed[0]["unseen"] is False and replayed[0]["flags"] == ["\\Seen"]
        assert replayed[1] == {"command": "COUNTERS", "mailbox": inbox, "total": 1, "unseen": 0}

        r = await api.root.put(f"/users/{user}/mailboxes/{inbox}/messages/1", json={"flagged": True})
        assert r.status_code == 200
        fetch = await events.until("FETCH")
        assert (fetch["uid"], sorted(fetch["flags"])) == (1, ["\\Flagged", "\\Seen"])

        await trio.to_thread.run_sync(lmtp_deliver, api, "alice@example.com", plain("delivered"))
        exists = await events.until("EXISTS")
        assert (exists["uid"], exists["unseen"]) == (2, True)
        assert await events.until("COUNTERS") == {"command": "COUNTERS", "mailbox": inbox, "total": 2, "unseen": 1}
        seen_up_to = events.last_id

        await api.root.put(f"/users/{user}/mailboxes/{box}", json={"path": "Done"})
        renamed = await events.until("RENAME")
        assert renamed == {"command": "RENAME", "mailbox": box, "path": "Done"}

    # missed while disconnected: a delete and a deleted mailbox
    assert (await api.root.delete(f"/users/{user}/mailboxes/{inbox}/messages/1")).status_code == 200
    assert (await api.root.delete(f"/users/{user}/mailboxes/{box}")).status_code == 200
    async with stream(api.root, user, seen_up_to) as events:
        missed = [await events.next() for _ in range(3)]
        with trio.move_on_after(0.5):  # and nothing more
            extra = await events.next()
            raise AssertionError(f"unexpected {extra}")
    commands = [(e["command"], e["mailbox"]) for e in missed]
    assert ("EXPUNGE", inbox) in commands and ("DELETE", box) in commands
    assert {"command": "COUNTERS", "mailbox": inbox, "total": 1, "unseen": 1} in missed
    assert not any(e["command"] == "EXISTS" and e["mailbox"] == inbox for e in missed)  # nothing seen before


async def test_bad_event_ids_and_other_users(api: Api) -> None:
    alice = await api.create_user("alice")
    await api.create_user("bob")
    r = await api.root.get(f"/users/{alice}/updates", headers={"Last-Event-ID": "not-an-id"})
    assert r.status_code == 400 and "Last-Event-ID" in r.json()["details"]
    async with api.client(await api.user_token("bob")) as bob:
        r = await bob.get(f"/users/{alice}/updates")
        assert r.status_code == 403 and r.json()["code"] == "MissingPrivileges"
        async with stream(bob, "me") as events:
            with trio.move_on_after(0.5):
                await events.next()


async def test_the_stream_ends_at_server_shutdown(tmp_path: Path, deployment: Deployment) -> None:
    async with serving_api(tmp_path / "data", deployment=deployment) as api:
        user = await api.create_user("alice")
        async with stream(api.root, user) as events:
            await events.replayed()
            start = trio.current_time()
            api.server.stop()
            with trio.fail_after(10):
                rest = [line async for line in events.lines]  # the response ends: no error, no reset
            assert trio.current_time() - start < 2 and all(not line or line.startswith(":") for line in rest)


async def test_a_revoked_or_void_token_ends_the_stream(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The token is checked again while the stream idles: revoked (DELETE /authenticate) or made void by a
    password change, the stream ends; the root token's stream goes on."""
    from wildduck.api.routes import updates

    monkeypatch.setattr(updates, "IDLE", 0.3)
    user = await api.create_user("alice")
    for end in ("revoke", "password"):
        token = await api.user_token("alice")
        async with api.client(token) as alice, alice.stream("GET", "/users/me/updates") as r:
            assert r.status_code == 200
            lines = r.aiter_lines()
            with trio.fail_after(10):
                while not (await lines.__anext__()).startswith(": idling"):
                    pass
                if end == "revoke":
                    assert (await alice.delete("/authenticate")).json() == {"success": True}
                else:
                    r2 = await api.root.put(f"/users/{user}", json={"password": "another-pass"})
                    assert r2.json() == {"success": True}
                rest = [line async for line in lines]  # ends by itself, within the next idle pause
            assert all(not line or line.startswith(":") for line in rest)
    async with api.root.stream("GET", f"/users/{user}/updates") as r:
        lines = r.aiter_lines()
        idles = 0
        with trio.fail_after(10):
            while idles < 3:
                idles += (await lines.__anext__()).startswith(": idling")


async def test_a_long_event_id_is_read_not_refused_for_its_size(api: Api) -> None:
    """A user with many mailboxes has long stream positions: a 20 KiB Last-Event-ID (past Hypercorn's default of
    16 KiB for a request head) is read and judged (here: not a position of this stream), not refused unread."""
    user = await api.create_user("alice")
    r = await api.root.get(f"/users/{user}/updates", headers={"Last-Event-ID": "v1." + "A" * 20_000})
    assert r.status_code == 400 and set(r.json()["details"]) == {"Last-Event-ID"}
