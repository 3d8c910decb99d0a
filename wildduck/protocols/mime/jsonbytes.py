"""Header bytes in JSON: ``str`` when valid UTF-8, else ``{"b": "<base64>"}`` (lossless for any bytes)."""

from __future__ import annotations

import base64
from typing import Any


def to_json(data: bytes | None) -> Any:
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"b": base64.b64encode(data).decode("ascii")}


def from_json(value: Any) -> bytes | None:
    """The original bytes of a value made by :func:`to_json`."""
    if value is None:
        return None
    if isinstance(value, dict):
        return base64.b64decode(value["b"])
    return str(value).encode("utf-8")
