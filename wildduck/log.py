"""Logging setup for the CLI: one line per record, to stderr. Libraries only use module-level loggers."""

from __future__ import annotations

import logging
import sys


def setup_logging(level: str = "info") -> None:
    """Configure the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())
