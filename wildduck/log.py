"""Logging: one line per record, to stderr, each carrying the connection it belongs to.

The listener sets :data:`connection_id` once per connection (``imap#12``) and the session adds the user once known
(:data:`connection_user`); every log line written in that connection's task shows both. Libraries only use
module-level loggers; nothing logs a password or a message body.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

#: the connection a task serves ("" outside connections)
connection_id: ContextVar[str] = ContextVar("connection_id", default="")
#: the user logged in on it ("" before login)
connection_user: ContextVar[str] = ContextVar("connection_user", default="")


class ConnectionFilter(logging.Filter):
    """Adds ``record.conn``: `` [imap#12 alice]`` inside a connection, empty elsewhere."""

    def filter(self, record: logging.LogRecord) -> bool:
        cid, user = connection_id.get(), connection_user.get()
        record.conn = f" [{cid}{' ' + user if user else ''}]" if cid else ""
        return True


def setup_logging(level: str = "info") -> None:
    """Configure the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ConnectionFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s%(conn)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())
