"""Logging: one line per record, to stderr, each carrying the connection it belongs to.

The listener sets :data:`connection_id` once per connection (``imap#12``) and the session adds the user once known
(:data:`connection_user`); every log line written in that connection's task shows both. Libraries only use
module-level loggers; nothing logs a password or a message body.
"""

from __future__ import annotations

import json
import logging
import sys
import time
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


class JSONFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``connection`` and ``user``
    (when in a connection), ``message``, and ``error`` (the traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        cid, user = connection_id.get(), connection_user.get()
        if cid:
            out["connection"] = cid
        if user:
            out["user"] = user
        out["message"] = record.getMessage()
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup_logging(level: str = "info", *, fmt: str = "text", file: str = "") -> None:
    """Configure the root logger (idempotent): ``fmt`` "text" or "json", to ``file`` (appended; reopened by
    :func:`reopen_log_files`) or stderr."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    handler: logging.Handler = logging.FileHandler(file, encoding="utf-8") if file else \
        logging.StreamHandler(sys.stderr)
    handler.addFilter(ConnectionFilter())
    handler.setFormatter(JSONFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s%(conn)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())


def reopen_log_files() -> None:
    """Reopen the log file (after logrotate moved it away; the server calls this on SIGHUP)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.acquire()
            try:
                handler.close()
                handler.stream = handler._open()
            finally:
                handler.release()
