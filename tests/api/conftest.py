"""A real server (every listener, on each deployment: the ``api`` fixture runs its tests on "sqlite" and on
"mongodb+redis") with the API on a free port, and an HTTP client for it."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deployments import Deployment
from wildduck.testing.lmtp_client import LMTPClient
from wildduck.testing.server import RunningServer, running_server

ROOT_TOKEN = "root-token-for-tests"


def api_overrides(**api: Any) -> dict[str, dict[str, Any]]:
    return {"api": {"enabled": True, "access_token": "sha256:" + hashlib.sha256(ROOT_TOKEN.encode()).hexdigest(),
                    **api},
            "server": {"email_domain": "example.com"}}


@dataclass
class Api:
    server: RunningServer
    #: sends the root token
    root: httpx.AsyncClient
    #: sends no token
    anonymous: httpx.AsyncClient
    base: str

    def client(self, token: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, headers={"X-Access-Token": token}, timeout=30)

    async def create_user(self, username: str, password: str = "secret-pass", **more: Any) -> str:
        r = await self.root.post("/users", json={"username": username, "password": password, **more})
        assert r.status_code == 200, r.text
        user_id: str = r.json()["id"]
        return user_id

    async def user_token(self, username: str, password: str = "secret-pass") -> str:
        r = await self.anonymous.post("/authenticate", json={"username": username, "password": password,
                                                             "token": True})
        assert r.status_code == 200, r.text
        token: str = r.json()["token"]
        return token


def lmtp_deliver(api: Api, to: str, raw: bytes) -> None:
    """Deliver ``raw`` to ``to`` over the LMTP port of ``api``'s server (blocking: run it in a thread)."""
    with LMTPClient(*api.server.address("lmtp")) as lmtp:
        lmtp.lhlo()
        lmtp.send_message("a@example.org", [to], raw)


@asynccontextmanager
async def serving_api(data_dir: Path, overrides: dict[str, dict[str, Any]] | None = None,
                      deployment: Deployment | None = None) -> AsyncIterator[Api]:
    """A running server (``overrides``: :func:`api_overrides` by default; on ``deployment``, else the single
    node) and the clients of its API."""
    overrides = overrides or api_overrides()
    async with running_server(data_dir, deployment.overrides(overrides) if deployment else overrides) as srv:
        host, port = srv.address("api")
        base = f"http://{host}:{port}"
        async with httpx.AsyncClient(base_url=base, headers={"X-Access-Token": ROOT_TOKEN}, timeout=30) as root, \
                httpx.AsyncClient(base_url=base, timeout=30) as anonymous:
            yield Api(srv, root, anonymous, base)


@pytest.fixture
async def api(tmp_path: Path, deployment: Deployment) -> AsyncIterator[Api]:
    async with serving_api(tmp_path / "data", deployment=deployment) as served:
        yield served
