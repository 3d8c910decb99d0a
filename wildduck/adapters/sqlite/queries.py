"""SQL helpers of the SQLite adapter that its roles and its migrations share (``schema.py`` may import this module,
not the roles': ``base`` imports ``schema``): ``IN (...)`` lists in chunks, and reading blobs."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import wildduck.adapters.sqlite.codec as codec
from wildduck.errors import NotFound

#: values bound per ``IN (...)`` list (SQLite's limit is far above; smaller statements plan and cache better)
_IN_CHUNK = 500


def placeholders(n: int) -> str:
    """``?,?,...`` with ``n`` marks."""
    return ",".join("?" * n)


def select_in(conn: sqlite3.Connection, sql: str, values: Sequence[Any], args: Sequence[Any] = ()) -> list[sqlite3.Row]:
    """Rows of ``sql`` for every value of ``values``: ``{in}`` in ``sql`` stands for the ``IN (...)`` list, bound
    after ``args``. Runs one statement per chunk of values; with sorted values and an ``ORDER BY`` on the same
    column, the rows come in order."""
    rows: list[sqlite3.Row] = []
    for start in range(0, len(values), _IN_CHUNK):
        chunk = values[start:start + _IN_CHUNK]
        rows.extend(conn.execute(sql.format(**{"in": placeholders(len(chunk))}), (*args, *chunk)))
    return rows


def read_blobs(conn: sqlite3.Connection, hashes: Iterable[str]) -> dict[str, bytes]:
    """Decompressed bytes of each blob; NotFound if any is missing."""
    wanted = sorted(set(hashes))
    found = {row[0]: codec.unpack(row[1], row[2], row[3]) for row in select_in(
        conn, "SELECT hash, data, compressed, raw_size FROM blobs WHERE hash IN ({in})", wanted)}
    missing = [h for h in wanted if h not in found]
    if missing:
        raise NotFound(f"missing blob {missing[0]}")
    return found
