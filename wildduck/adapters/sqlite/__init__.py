"""SQLite adapter: every storage role of the single-node deployment in one database file."""

from wildduck.adapters.sqlite.store import SqliteStore, open_sqlite_store

__all__ = ["SqliteStore", "open_sqlite_store"]
