"""Round trips counted: a pymongo command listener that counts the commands each operation sends."""

from __future__ import annotations

import threading
from collections import Counter

from pymongo.monitoring import CommandFailedEvent, CommandListener, CommandStartedEvent, CommandSucceededEvent


class CommandCounter(CommandListener):
    """Counts the commands sent (by name: ``insert``, ``find``, ``update``...), from every thread of the client.
    ``take()`` returns the counts since the last ``take()`` and starts again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def started(self, event: CommandStartedEvent) -> None:
        with self._lock:
            self._counts[event.command_name] += 1

    def succeeded(self, event: CommandSucceededEvent) -> None:
        pass

    def failed(self, event: CommandFailedEvent) -> None:
        pass

    def take(self) -> Counter[str]:
        with self._lock:
            counts, self._counts = self._counts, Counter()
        return counts
