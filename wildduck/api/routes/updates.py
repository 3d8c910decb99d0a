"""``GET /users/:user/updates``: the user's change stream, as an EventSource (``text/event-stream``) or, on the same
path with ``Upgrade: websocket``, as a WebSocket.

Both are :meth:`wildduck.domain.updates.UpdatesService.follow`: the journal is replayed after the client's last
event id (without one, from the start of the kept journal, as WildDuck does), then changes follow live: each nudge
of the user's channel makes the stream read the mailboxes it names. Every event carries the stream position as its
id (see :class:`wildduck.domain.updates.Position`: this server's journal is per mailbox, so an id is not
WildDuck's 24 hex digits; clients echo it unchanged). After 15 idle seconds the mailbox list is checked (a mailbox
created elsewhere sends no nudge) and the client hears that the stream is alive. At server shutdown both end
cleanly (the EventSource's response ends; the WebSocket closes with 1001).

EventSource: the position after ``Last-Event-ID`` (header or query parameter); each event is WildDuck's payload as
indented JSON on ``data:`` lines, then its ``id:``; ``: ready`` after the replay, ``: idling N`` when idle.

WebSocket: the position after ``?lastEventId=``; one JSON text message per event, ``{"type": "event", "id",
"data"}`` (``data`` is the EventSource's payload), then ``{"type": "ready", "id"}`` after the replay and
``{"type": "idle", "id"}`` when idle (any message's ``id`` is a place to resume from): the keep-alive, which a
browser's script can see (a ping frame it cannot; a client's pings are answered). Messages from the client are
read and ignored. A client that stops reading has :data:`SEND_QUEUE` messages kept for it, then it is dropped
(close code 1008, and the kernel ends the connection after ``[limits] send_timeout``).

A stream opened with a user token checks it again every :data:`IDLE` seconds without events and after every
:data:`RECHECK` seconds of them: once it is revoked (``DELETE /authenticate``), expired, or void (the password
changed, the user was disabled or deleted) the stream ends (the WebSocket with close code 1008). The check renews
the token's sliding TTL, as any request with it does; its maximum lifetime still ends it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

import trio
from quart import Response, request, websocket
from quart_trio import QuartTrio

from wildduck.api.context import Api
from wildduck.api.schemas import Field, input_error, takes
from wildduck.domain.tokens import token_fingerprint
from wildduck.domain.updates import Batch, Position, Update
from wildduck.model import User

log = logging.getLogger(__name__)

#: seconds without an event after which the client hears that the stream is alive (and proxies stay awake)
IDLE = 15.0
#: nudges arriving within this many seconds of the first are read together
COALESCE = 0.05
#: WebSocket messages kept for a client that does not read them; one more and the client is dropped
SEND_QUEUE = 1000
#: seconds a WebSocket's close (and, at shutdown, the messages still queued before it) may take
CLOSE_TIMEOUT = 5.0
#: seconds of a busy stream (events, no idle pause) between two checks of its user token
RECHECK = 60.0
#: the close codes: server shutting down, a client that stopped reading or whose token is no longer valid
GOING_AWAY = 1001
POLICY = 1008

EVENT_ID = Field(empty_is_none=True, max=1 << 16)
PARAMS = {"Last-Event-ID": EVENT_ID}
WEBSOCKET_PARAMS = {"lastEventId": EVENT_ID}


def event(update: Update) -> bytes:
    """One event as WildDuck writes it: the JSON payload (indented, one ``data:`` line each), then its id."""
    data = json.dumps(update.data, indent=2, ensure_ascii=False)
    return ("data: " + data.replace("\n", "\ndata: ") + f"\nid: {update.position.encode()}\n\n").encode()


def message(kind: str, position: Position, data: dict[str, Any] | None = None) -> str:
    """One WebSocket message: ``{"type", "id"[, "data"]}``."""
    out: dict[str, Any] = {"type": kind, "id": position.encode()}
    if data is not None:
        out["data"] = data
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


def messages(batch: Batch) -> list[str]:
    """A batch of the stream as WebSocket messages: its events, then ``ready`` (after the replay) or ``idle``."""
    out = [message("event", update.position, update.data) for update in batch.updates]
    if batch.replay or batch.idle:
        out.append(message("ready" if batch.replay else "idle", batch.position))
    return out


def register(app: QuartTrio, api: Api) -> None:
    updates = api.services.updates

    async def start_of(user: User, event_id: str | None, field: str) -> Position:
        """Where the client resumes: after ``event_id`` (named ``field`` in an error), else the journal's start."""
        if not event_id:
            return await updates.start(user.id)
        try:
            return Position.decode(event_id)
        except ValueError:
            raise input_error({field: f'"{field}" must be an event id of this stream'}) from None

    def follow(user: User, start: Position) -> AsyncGenerator[Batch]:
        return updates.follow(user.id, start, idle=IDLE, coalesce=COALESCE, stopping=api.stopping)

    def still_valid() -> Callable[[Batch], Awaitable[bool]]:
        """For the request's caller: a check, after each batch, of whether the stream may go on (a user token is
        checked again when the stream idles and every :data:`RECHECK` seconds)."""
        token = api.presented_token() if api.caller().token is not None else None
        checked = trio.current_time()

        async def check(batch: Batch) -> bool:
            nonlocal checked
            if token is None or (not batch.idle and trio.current_time() - checked < RECHECK):
                return True
            checked = trio.current_time()
            if await api.services.tokens.check(token) is not None:
                return True
            log.info("updates stream ended: token %s is no longer valid", token_fingerprint(token))
            return False

        return check

    @app.get("/users/<user_id>/updates")
    @takes(PARAMS, produces="text/event-stream")
    async def stream(user_id: str) -> Response:
        params = await api.params()
        if request.headers.get("Last-Event-ID"):
            params["Last-Event-ID"] = request.headers["Last-Event-ID"]
        values = await api.values(params)
        user = await api.target_user(user_id)
        start = await start_of(user, values.get("Last-Event-ID"), "Last-Event-ID")
        valid = still_valid()

        async def body() -> AsyncIterator[bytes]:
            idle = 0
            async with aclosing(follow(user, start)) as batches:
                async for batch in batches:
                    if not await valid(batch):
                        return
                    for update in batch.updates:
                        yield event(update)
                    if batch.replay:
                        yield b": ready\n\n"
                    elif batch.idle:
                        idle += 1
                        yield f": idling {idle}\n\n".encode()

        return Response(body(), status=200, mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.websocket("/users/<user_id>/updates")
    @takes(WEBSOCKET_PARAMS)
    async def stream_websocket(user_id: str) -> None:
        values = await api.values()
        user = await api.target_user(user_id)
        start = await start_of(user, values.get("lastEventId"), "lastEventId")
        valid = still_valid()
        await websocket.accept()
        queue, outbox = trio.open_memory_channel[str](SEND_QUEUE)
        sent_all = trio.Event()

        async def send_queued() -> None:
            async for text in outbox:
                await websocket.send(text)
            sent_all.set()

        async def ignore_incoming() -> None:
            while True:
                await websocket.receive()

        dropped = refused = False
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ignore_incoming)
            nursery.start_soon(send_queued)
            async with aclosing(follow(user, start)) as batches:
                async for batch in batches:
                    if not await valid(batch):
                        refused = True
                        break
                    try:
                        for text in messages(batch):
                            queue.send_nowait(text)
                    except trio.WouldBlock:
                        dropped = True
                        break
            queue.close()
            if dropped:
                log.info("updates WebSocket of %s: the client stopped reading; dropped", user.username)
            elif not refused:  # the server is stopping: what is queued goes first
                with trio.move_on_after(CLOSE_TIMEOUT):
                    await sent_all.wait()
            nursery.cancel_scope.cancel()
        with trio.move_on_after(CLOSE_TIMEOUT):
            if dropped:
                await websocket.close(POLICY, "too slow: messages were not read")
            elif refused:
                await websocket.close(POLICY, "the access token is no longer valid")
            else:
                await websocket.close(GOING_AWAY, "server shutting down")
