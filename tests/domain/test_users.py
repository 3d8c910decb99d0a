"""User creation rules that do not need the delivery pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from wildduck.adapters.sqlite import open_sqlite_store
from wildduck.domain.users import UserService
from wildduck.errors import InvalidInput


@pytest.mark.parametrize("fqdn", ["localhost", "localhost.localdomain"])
async def test_an_empty_email_domain_that_resolves_to_localhost_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fqdn: str) -> None:
    monkeypatch.setattr("socket.getfqdn", lambda: fqdn)
    store = await open_sqlite_store(tmp_path / "u.db")
    try:
        users = UserService(store, email_domain=None)
        with pytest.raises(InvalidInput, match=r"\[server\] email_domain") as refused:
            await users.create("bob", "pw")
        assert refused.value.field == "email_domain"
        assert await users.all() == []
        # an explicit address, or a username that is one, needs no domain
        await users.create("bob", "pw", address="bob@example.com")
        await users.create("eve@example.net", "pw")
        # a configured domain is the administrator's choice, even "localhost"
        assert (await UserService(store, email_domain="localhost").create("zed", "pw")).username == "zed"
    finally:
        await store.close()
