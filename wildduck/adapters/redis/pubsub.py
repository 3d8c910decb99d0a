"""The ``PubSub`` role on Redis: nudges between every instance of a scaled-out deployment.

Subscribers live in this process as with :class:`~wildduck.adapters.local.pubsub.LocalPubSub` (bounded queues, a
``Resync`` after a loss); this class adds one Redis subscription per channel that has subscribers here, however
many (N sessions of one user cost one ``SUBSCRIBE``), and sends what is published here to Redis.

* **Publishing** never blocks and never raises: a nudge is offered to this process's subscribers at once, then put
  in an outbox that one thread (``wildduck-redis-publish``) sends in pipelined batches. A message on Redis is
  ``"<instance> <nudge>"`` (:meth:`~wildduck.model.Nudge.encode`): an instance skips its own. While Redis does not
  answer, or the outbox is full, nudges are dropped (logged once); once a publish succeeds again, a ``!`` goes to
  the channel ``<prefix>!all``, which tells every instance's subscribers to resync.
* **Receiving**: one thread (``wildduck-redis-pubsub``) owns the subscriber connection. It forwards what arrives
  into the event loop in batches (``trio.from_thread``), subscribes channels as sessions ask, unsubscribes those
  nobody here follows any more, and sends a PING when idle (no PONG within ``timeout``: the connection is lost).
  Requests reach it through a queue; a message on this instance's control channel (``<prefix>!<instance>``) wakes
  it, since it waits in the connection's read.
* **A lost connection** (Redis restarted, a network cut): the thread reconnects with backoff (up to 5 s) and
  subscribes every channel that has subscribers; once Redis confirms, every subscriber gets a ``Resync`` and
  re-reads its journals, so no update is lost. ``subscribe`` never waits for Redis while it is away. Meanwhile
  sessions poll: every failed reconnection at least :data:`POLL_WHILE_DOWN` seconds after the last poll gives every
  subscriber a ``Resync`` (changes of other instances, which cannot nudge, show up within about 5 s).
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import outcome
import redis
import trio

from wildduck.adapters._threads import wait_for_thread
from wildduck.adapters.local.pubsub import LocalPubSub, LocalSubscription
from wildduck.adapters.redis.client import close, connect
from wildduck.adapters.redis.urls import describe
from wildduck.model import Nudge

log = logging.getLogger(__name__)

#: seconds the receiving thread waits for a message before it looks at its requests, its stop flag and the PING
_POLL = 1.0
#: while Redis is away, subscribers get a ``Resync`` (re-read their journals) at most this often
POLL_WHILE_DOWN = 2.0
#: seconds of silence on the subscriber connection after which the thread sends a PING
KEEPALIVE = 10.0
#: most messages forwarded into the event loop (or published) at once
_BATCH = 256
#: longest wait between two attempts to reach Redis, in seconds
_MAX_BACKOFF = 5.0
#: nudges the outbox holds while Redis is slow; beyond, they are dropped (and everybody resyncs afterwards)
OUTBOX_SIZE = 10_000

_STOP = object()


@dataclass
class _Barrier:
    event: trio.Event = field(default_factory=trio.Event)
    reached: bool = False


class RedisPubSub(LocalPubSub):
    """``PubSub`` through Redis: every instance that uses the same server and prefix sees the others' nudges."""

    def __init__(self, url: str, *, prefix: str = "wildduck:", call_timeout: float = 2.0, buffer_size: int = 256,
                 outbox_size: int = OUTBOX_SIZE, keepalive: float = KEEPALIVE) -> None:
        super().__init__(buffer_size)
        self.url = url
        self.prefix = prefix
        #: seconds a Redis call may take; also how long ``subscribe`` waits for Redis to confirm
        self.timeout = call_timeout
        #: seconds of silence after which the subscriber connection is checked with a PING
        self.keepalive = keepalive
        #: names this instance on Redis: its own nudges come back marked with it, and are skipped
        self.instance = secrets.token_hex(6)
        self._control = f"{prefix}!{self.instance}"
        self._everyone = f"{prefix}!all"
        # one connection publishes, one receives
        self._client = connect(url, connections=2, timeout=call_timeout)
        self._outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._outbox_size = outbox_size
        #: nudges dropped because the outbox was full (the publisher resyncs everybody when it changes)
        self._drops = 0
        #: channels (Redis names) to subscribe, for the receiving thread
        self._requests: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._token: trio.lowlevel.TrioToken | None = None
        # the event loop's view (changed only there)
        self._connected = False
        self._up = trio.Event()  # set while connected
        self._resync_on_connect = False
        self._confirmed: set[str] = set()  # channels Redis confirmed since the connection was made
        self._pending: dict[str, trio.Event] = {}  # channels asked for, not confirmed yet
        self._late: set[str] = set()  # channels whose subscribers did not wait for the confirmation
        self._barriers: dict[int, _Barrier] = {}
        self._next_barrier = 0
        self._outage = False  # the connection was lost (or never made), and that was logged
        self._polled = 0.0  # when subscribers last got a Resync during the outage
        self._closing = False
        #: the receiving thread's wait before it reconnects (changed only there)
        self._backoff = 0.0

    def start(self) -> None:
        """Start the publishing and receiving threads (from the trio run they belong to); they connect in the
        background."""
        self._token = trio.lowlevel.current_trio_token()
        self._threads = [threading.Thread(target=self._publish_loop, name="wildduck-redis-publish", daemon=True),
                         threading.Thread(target=self._receive_loop, name="wildduck-redis-pubsub", daemon=True)]
        for thread in self._threads:
            thread.start()

    @property
    def connected(self) -> bool:
        """True while the subscriber connection is up (every channel followed here is subscribed)."""
        return self._connected

    async def wait_connected(self) -> None:
        """Wait until the subscriber connection is up."""
        await self._up.wait()

    # -- publishing ---------------------------------------------------------------------------------------------

    async def publish(self, channel: str, nudge: Nudge) -> None:
        """Offer ``nudge`` to this process's subscribers of ``channel`` and queue it for Redis; never blocks, never
        raises (nudges are lossy: a nudge dropped while Redis is away is followed by a resync everywhere)."""
        await self.publish_here(channel, nudge)
        self._send(self.prefix + channel, f"{self.instance} {nudge.encode()}")

    def _send(self, channel: str, payload: str) -> None:
        if self._outbox.qsize() >= self._outbox_size:
            if self._drops % OUTBOX_SIZE == 0:  # the first, then one line per outbox full
                log.warning("Redis is too slow: nudges are dropped (sessions resync once it keeps up)")
            self._drops += 1
            return
        self._outbox.put((channel, payload))

    async def flush(self) -> bool:
        """Wait until what was published here so far has been sent to Redis: True, or False if some was dropped
        (Redis did not answer). Cancellation returns at once."""
        ok: bool = await wait_for_thread(self._outbox.put, abandon_on_cancel=True)
        return ok

    async def sync(self) -> bool:
        """Wait until every message Redis accepted before this call (from any instance) has reached this
        process's subscribers: True, or False when Redis is away. (Tests and tools: normal operation never needs
        to wait for a nudge.)"""
        if not self._connected:
            await trio.lowlevel.checkpoint()
            return False
        number, self._next_barrier = self._next_barrier, self._next_barrier + 1
        barrier = self._barriers[number] = _Barrier()
        self._outbox.put((self._control, f"b {number}"))
        if not await self.flush():
            del self._barriers[number]
            return False
        await barrier.event.wait()
        return barrier.reached

    def _publish_loop(self) -> None:
        """The publishing thread: sends the outbox in pipelined batches, answers ``flush``, resyncs everybody
        after a loss."""
        dirty, backoff, drops = False, 0.0, 0
        while True:
            try:
                first = self._outbox.get(timeout=backoff) if dirty else self._outbox.get()
                items = [first]
            except queue.Empty:
                items = []
            while len(items) < _BATCH:
                try:
                    items.append(self._outbox.get_nowait())
                except queue.Empty:
                    break
            messages = [item for item in items if isinstance(item, tuple)]
            if self._drops != drops:
                drops, dirty = self._drops, True
            ok = True
            if messages or dirty:
                try:
                    with self._client.pipeline(transaction=False) as pipe:
                        if dirty:
                            pipe.publish(self._everyone, "!")
                        for channel, payload in messages:
                            pipe.publish(channel, payload)
                        pipe.execute()
                except redis.RedisError as exc:
                    if not dirty:
                        log.warning("cannot publish to Redis at %s (%s): nudges are dropped until it answers",
                                    describe(self.url), exc)
                    dirty, ok, backoff = True, False, min(max(backoff * 2, 0.05), _MAX_BACKOFF)
                else:
                    if dirty:
                        log.info("publishing to Redis again; every instance resyncs")
                    dirty, backoff = False, 0.0
            for item in items:
                if callable(item):  # a flush
                    item(outcome.Value(ok))
            if any(item is _STOP for item in items):
                return

    # -- subscribing --------------------------------------------------------------------------------------------

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[LocalSubscription]:
        """Subscribe for the duration of the ``async with`` block. Waits (at most ``timeout`` seconds) until Redis
        confirms the channel's subscription, unless this process follows it already or Redis is away."""
        async with super().subscribe(channel) as sub:
            await self._join(channel)
            yield sub

    async def _join(self, channel: str) -> None:
        if channel in self._confirmed:
            await trio.lowlevel.checkpoint()
            return
        event = self._pending.get(channel)
        if event is None:
            event = self._pending[channel] = trio.Event()
            self._requests.put(self.prefix + channel)
            if self._connected:
                self._send(self._control, "w")  # wakes the receiving thread
        if not self._connected:
            # nudges published meanwhile are lost: a Resync follows the confirmation
            self._late.add(channel)
            self._resync_on_connect = True
            await trio.lowlevel.checkpoint()
            return
        with trio.move_on_after(self.timeout):
            await event.wait()
        if not event.is_set():
            log.warning("Redis did not confirm the subscription of %s in %.1f s", channel, self.timeout)
            self._late.add(channel)

    # the receiving thread's requests to the event loop (run there, in order)

    def _wanted(self) -> list[str]:
        """The channels to subscribe on a new connection: every one with subscribers here."""
        if self._late:  # covered now: their subscribers get the Resync of the connection
            self._resync_on_connect = True
            self._late.clear()
        return [self.prefix + channel for channel in self._subscribers]

    def _idle(self, channels: list[str]) -> list[str]:
        """Those of ``channels`` (Redis names) that nobody here follows any more: forgotten here, to unsubscribe."""
        idle = [name for name in channels if not self.subscriber_count(name[len(self.prefix):])]
        for name in idle:
            channel = name[len(self.prefix):]
            self._confirmed.discard(channel)
            event = self._pending.pop(channel, None)
            if event is not None:
                event.set()
        return idle

    async def _handle(self, events: list[tuple[Any, ...]]) -> None:
        """What the receiving thread saw, in order."""
        for event in events:
            kind = event[0]
            if kind == "nudge":
                await self.publish_here(event[1], event[2])
            elif kind == "subscribed":
                channel = event[1]
                waiter = self._pending.pop(channel, None)
                if waiter is not None:
                    waiter.set()
                if self.subscriber_count(channel):
                    self._confirmed.add(channel)
                if channel in self._late:
                    self._late.discard(channel)
                    self.resync_all()
            elif kind == "connected":
                self._connected = True
                self._up.set()
                if self._outage:
                    log.info("connected to Redis at %s again; every session resyncs", describe(self.url))
                    self._outage = False
                if self._resync_on_connect:
                    self._resync_on_connect = False
                    self.resync_all()
            elif kind == "lost":
                if not self._outage:
                    log.warning("no connection to Redis at %s (%s); sessions poll their journals until it is back",
                                describe(self.url), event[1])
                    self._outage, self._polled = True, trio.current_time()
                elif trio.current_time() - self._polled >= POLL_WHILE_DOWN:
                    self._polled = trio.current_time()
                    self.resync_all()  # no nudge can come: the sessions look for themselves
                self._connected, self._resync_on_connect = False, True
                if self._up.is_set():
                    self._up = trio.Event()
                self._confirmed.clear()
                for waiter in self._pending.values():
                    waiter.set()
                self._pending.clear()
                for barrier in self._barriers.values():
                    barrier.event.set()
                self._barriers.clear()
            elif kind == "resync":
                self.resync_all()
            elif kind == "barrier":
                waiting = self._barriers.pop(event[1], None)
                if waiting is not None:
                    waiting.reached = True
                    waiting.event.set()

    # -- the receiving thread -----------------------------------------------------------------------------------

    def _in_loop(self, fn: Callable[..., Any], *args: Any) -> Any:
        return trio.from_thread.run_sync(fn, *args, trio_token=self._token)

    def _receive_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._listen()
            except (trio.RunFinishedError, trio.Cancelled):
                return
            except Exception as exc:
                if self._stopping.is_set():
                    return
                if not isinstance(exc, redis.RedisError | OSError):
                    log.exception("Redis subscriber failed; reconnecting")
                try:
                    trio.from_thread.run(self._handle, [("lost", str(exc) or type(exc).__name__)],
                                         trio_token=self._token)
                except (trio.RunFinishedError, trio.Cancelled):
                    return
                self._backoff = min(max(self._backoff * 2, 0.05), _MAX_BACKOFF)
                self._stopping.wait(self._backoff)

    def _listen(self) -> None:
        """One connection's life: subscribe what this process follows, then forward until it breaks."""
        pubsub = self._client.pubsub()  # type: ignore[no-untyped-call]
        try:
            subscribed = set(self._in_loop(self._wanted))
            # the control channel last: its confirmation means every channel before it is subscribed
            pubsub.subscribe(*subscribed, self._everyone, self._control)
            now = time.monotonic()
            heard, ping_sent, swept = now, 0.0, now
            woken = False
            while not self._stopping.is_set():
                asked: set[str] = set()
                while True:
                    try:
                        asked.add(self._requests.get_nowait())
                    except queue.Empty:
                        break
                if asked:
                    pubsub.subscribe(*asked)  # again if subscribed already: each request gets a confirmation
                    subscribed |= asked
                now = time.monotonic()
                if woken or now - swept >= _POLL:
                    idle = self._in_loop(self._idle, sorted(subscribed))
                    if idle:
                        pubsub.unsubscribe(*idle)
                        subscribed.difference_update(idle)
                    swept = now
                if ping_sent and now - ping_sent > self.timeout:
                    raise redis.ConnectionError(f"no answer to PING in {self.timeout:.1f} s")
                if not ping_sent and now - heard >= self.keepalive:
                    pubsub.ping()
                    ping_sent = now
                events: list[tuple[Any, ...]] = []
                woken = False
                message = pubsub.get_message(timeout=_POLL)
                while message is not None:
                    heard, ping_sent = time.monotonic(), 0.0
                    woken |= self._parse(message, events)
                    if len(events) >= _BATCH:
                        break
                    message = pubsub.get_message(timeout=0)
                if events:
                    trio.from_thread.run(self._handle, events, trio_token=self._token)
        finally:
            pubsub.close()

    def _parse(self, message: dict[str, Any], events: list[tuple[Any, ...]]) -> bool:
        """Append what ``message`` means to ``events``; True when it is a wake-up."""
        kind, name, data = message["type"], message["channel"], message["data"]
        if kind == "subscribe":
            if name == self._control:
                events.append(("connected",))
                self._backoff = 0.0
            elif name != self._everyone:
                events.append(("subscribed", name[len(self.prefix):]))
        elif kind == "message":
            if name == self._control:
                if data.startswith("b ") and data[2:].isdigit():
                    events.append(("barrier", int(data[2:])))
                return True
            if name == self._everyone:
                events.append(("resync",))
            else:
                origin, _, text = data.partition(" ")
                if origin != self.instance:
                    events.append(("nudge", name[len(self.prefix):], Nudge.decode(text)))
        return False

    # -- closing ------------------------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Send what was published (at most ``timeout`` seconds), stop the threads, close every subscription."""
        if self._token is not None and not self._closing:
            self._closing = True
            with trio.move_on_after(self.timeout):
                await self.flush()
            self._stopping.set()
            self._outbox.put((self._control, "w"))  # wakes the receiving thread
            self._outbox.put(_STOP)
            for thread in self._threads:
                await trio.to_thread.run_sync(thread.join, self.timeout + _POLL, abandon_on_cancel=True)
        close(self._client)
        await super().aclose()


async def open_redis_pubsub(url: str, *, prefix: str = "wildduck:", call_timeout: float = 2.0,
                            buffer_size: int = 256, keepalive: float = KEEPALIVE) -> RedisPubSub:
    """Pub/sub through the Redis server at ``url`` (see :mod:`wildduck.adapters.redis.client` for the URL forms);
    it connects in the background and keeps reconnecting."""
    pubsub = RedisPubSub(url, prefix=prefix, call_timeout=call_timeout, buffer_size=buffer_size,
                         keepalive=keepalive)
    pubsub.start()
    await trio.lowlevel.checkpoint()
    return pubsub


if TYPE_CHECKING:
    from wildduck.ports.pubsub import PubSub

    def _fills_the_role(c: RedisPubSub) -> PubSub:
        """mypy checks here that ``RedisPubSub`` implements the port."""
        return c
