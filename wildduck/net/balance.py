"""Least-connections balancing of one node's worker processes over shared listening sockets.

With ``wildduck serve --workers N`` every worker accepts from the same listening sockets. Left alone, whichever
worker wakes first takes a connection (a burst goes to one of them), and a kernel hash over per-worker sockets
(``SO_REUSEPORT``) spreads a few long connections unevenly (10 POP3 downloads over 2 workers are rarely 5 and 5).
Instead each worker publishes how many connections it holds on each listener in a small shared table, a
:class:`LoadBoard` (a memory file the supervisor creates and every worker maps), and a worker that holds more than
another live worker lets the others take a waiting connection first: it accepts it only if it is still waiting
:data:`DEFER` seconds later (the others are busy, or gone). A worker's entries are :data:`ABSENT` until it serves
and again once it stops accepting or exits, so nobody defers to a worker that cannot take connections.
"""

from __future__ import annotations

import mmap
import os
import tempfile
from dataclasses import dataclass

#: the entry of a worker that does not accept on that listener (not started, stopping, or gone)
ABSENT = 2**31 - 1
#: how long a busier worker leaves a waiting connection to the others
DEFER = 0.005


class LoadBoard:
    """``workers`` × ``len(names)`` connection counts in shared memory (32-bit entries: aligned stores and loads of
    them are atomic, and a count read a moment late only makes one choice less even)."""

    def __init__(self, fd: int, workers: int, names: list[str]) -> None:
        self.fd = fd
        self.workers = workers
        self.names = list(names)
        self._map = mmap.mmap(fd, max(4 * workers * len(self.names), 4))
        self._cells = memoryview(self._map).cast("i")

    @classmethod
    def create(cls, workers: int, names: list[str]) -> LoadBoard:
        """A new board (every entry :data:`ABSENT`) whose ``fd`` the workers inherit."""
        if hasattr(os, "memfd_create"):
            fd = os.memfd_create("wildduck-load")  # close-on-exec: inherited only where passed (pass_fds)
        else:  # pragma: no cover - POSIX systems without memfd
            fd = os.dup(tempfile.TemporaryFile().fileno())
        os.ftruncate(fd, max(4 * workers * len(names), 4))
        board = cls(fd, workers, names)
        for i in range(len(board._cells)):
            board._cells[i] = ABSENT
        return board

    def spec(self) -> dict[str, object]:
        return {"fd": self.fd, "workers": self.workers, "names": self.names}

    @classmethod
    def from_spec(cls, spec: dict[str, object]) -> LoadBoard:
        fd, workers, names = spec["fd"], spec["workers"], spec["names"]
        assert isinstance(fd, int) and isinstance(workers, int) and isinstance(names, list)
        return cls(fd, workers, [str(n) for n in names])

    def seat(self, worker: int, name: str) -> Seat | None:
        """Worker ``worker``'s entry for listener ``name`` (None for a listener the board does not balance)."""
        if name not in self.names:
            return None
        return Seat(self, worker, self.names.index(name))

    def clear(self, worker: int) -> None:
        """Every entry of ``worker`` :data:`ABSENT` (the supervisor, when that worker exits)."""
        for slot in range(len(self.names)):
            self._cells[slot * self.workers + worker] = ABSENT

    def counts(self, name: str) -> list[int | None]:
        """Each worker's connections on listener ``name`` (None: absent)."""
        base = self.names.index(name) * self.workers
        return [None if (v := self._cells[base + w]) == ABSENT else v for w in range(self.workers)]

    def close(self) -> None:
        self._cells.release()
        self._map.close()
        os.close(self.fd)


@dataclass(slots=True)
class Seat:
    """One worker's entry for one listener."""

    board: LoadBoard
    worker: int
    slot: int

    def publish(self, connections: int) -> None:
        self.board._cells[self.slot * self.board.workers + self.worker] = connections

    def leave(self) -> None:
        self.board._cells[self.slot * self.board.workers + self.worker] = ABSENT

    def busier(self, connections: int) -> bool:
        """Whether some other live worker holds fewer connections on this listener than ``connections``."""
        cells, workers = self.board._cells, self.board.workers
        base = self.slot * workers
        for w in range(workers):
            if w != self.worker and cells[base + w] < connections:  # ABSENT is never less
                return True
        return False
