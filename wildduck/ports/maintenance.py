"""The ``Maintenance`` role: integrity checks and figures for administrators (work that runs under a lease)."""

from __future__ import annotations

from typing import Protocol


class Maintenance(Protocol):
    async def check_integrity(self) -> list[str]:
        """Problems found (empty when consistent): engine checks, blob reference counts that disagree with the
        messages, references to missing blobs, messages whose parts and references disagree."""
        ...

    async def storage_bytes(self) -> int:
        """Bytes the store takes on disk."""
        ...
