from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from wildduck.testing.server import RunningServer, running_server


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A running server with IMAP and the user alice (password pw, alice@example.com)."""
    async with running_server(tmp_path / "data", {"imap": {"enabled": True}}) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")
        yield srv
