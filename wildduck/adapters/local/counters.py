"""In-process ``Counters`` for the single node: plain dictionaries (every session runs in this process).

Every method does its reads and writes without a checkpoint in between, so in one trio run each is atomic; the
checkpoint comes after. Times come from an injectable monotonic clock (seconds), so tests drive TTLs without
sleeping.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import trio

from wildduck.ports.counters import Window

#: windows kept before expired ones are swept
_SWEEP_AT = 10_000


class LocalCounters:
    """``Counters`` in one process: fixed windows, slot leases and named leases, each with an expiry time."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, tuple[int, float]] = {}  # key -> (count, closes at)
        self._slots: dict[str, dict[str, float]] = {}  # key -> token -> expires at
        self._leases: dict[str, tuple[str, float]] = {}  # name -> (owner, expires at)

    def _current(self, key: str, now: float) -> tuple[int, float]:
        count, closes = self._windows.get(key, (0, 0.0))
        return (count, closes) if closes > now else (0, 0.0)

    async def window(self, key: str) -> Window:
        now = self._clock()
        count, closes = self._current(key, now)
        await trio.lowlevel.checkpoint()
        return Window(count, max(closes - now, 0.0))

    async def increment(self, key: str, window: float) -> Window:
        """Count one event (atomically: no checkpoint between the read and the write) and return the count."""
        now = self._clock()
        count, closes = self._current(key, now)
        if not count:
            closes = now + window
        if len(self._windows) >= _SWEEP_AT:
            self._windows = {k: v for k, v in self._windows.items() if v[1] > now}
        self._windows[key] = (count + 1, closes)
        await trio.lowlevel.checkpoint()
        return Window(count + 1, closes - now)

    async def decrement(self, key: str) -> None:
        now = self._clock()
        count, closes = self._current(key, now)
        if count:
            self._windows[key] = (count - 1, closes)
        await trio.lowlevel.checkpoint()

    async def reset(self, key: str) -> None:
        self._windows.pop(key, None)
        await trio.lowlevel.checkpoint()

    def _live_slots(self, key: str, now: float) -> dict[str, float]:
        """The unexpired slots of ``key`` (expired ones are dropped here)."""
        held = {token: expires for token, expires in self._slots.get(key, {}).items() if expires > now}
        if held:
            self._slots[key] = held
        else:
            self._slots.pop(key, None)
        return held

    async def acquire_slot(self, key: str, limit: int, ttl: float) -> str | None:
        """One of ``limit`` slots for ``ttl`` seconds (a token), or None while all are held."""
        now = self._clock()
        held = self._live_slots(key, now)
        token: str | None = None
        if len(held) < limit:
            token = secrets.token_hex(8)
            self._slots[key] = {**held, token: now + ttl}
        await trio.lowlevel.checkpoint()
        return token

    async def renew_slot(self, key: str, token: str, ttl: float) -> bool:
        """Extend a held slot to ``ttl`` seconds from now; False if it had expired (the slot is lost)."""
        now = self._clock()
        held = self._live_slots(key, now)
        renewed = token in held
        if renewed:
            held[token] = now + ttl
        await trio.lowlevel.checkpoint()
        return renewed

    async def renew_slots(self, held: Sequence[tuple[str, str]], ttl: float) -> list[bool]:
        return [await self.renew_slot(key, token, ttl) for key, token in held]

    async def release_slot(self, key: str, token: str) -> None:
        held = self._live_slots(key, self._clock())
        held.pop(token, None)
        if not held:
            self._slots.pop(key, None)
        await trio.lowlevel.checkpoint()

    async def slots(self, key: str) -> int:
        """Slots of ``key`` held (unexpired) now."""
        count = len(self._live_slots(key, self._clock()))
        await trio.lowlevel.checkpoint()
        return count

    async def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        """Take or extend the lease ``name`` for ``ttl`` seconds; False while another owner holds it."""
        now = self._clock()
        holder, expires = self._leases.get(name, ("", 0.0))
        taken = expires <= now or holder == owner
        if taken:
            self._leases[name] = (owner, now + ttl)
        await trio.lowlevel.checkpoint()
        return taken

    async def release_lease(self, name: str, owner: str) -> None:
        """Give the lease up if ``owner`` holds it; otherwise nothing happens."""
        if self._leases.get(name, ("", 0.0))[0] == owner:
            del self._leases[name]
        await trio.lowlevel.checkpoint()


if TYPE_CHECKING:
    from wildduck.ports.counters import Counters

    def _fills_the_role(c: LocalCounters) -> Counters:
        """mypy checks here that ``LocalCounters`` implements the port."""
        return c
