"""The API in ``wildduck serve``: its port in the ready line and in ``wildduck status``, curl over HTTP/1.1,
HTTPS and HTTP/2, a clean SIGTERM, the start-up refusals; CORS and the body size limit.
On both deployments the tests that store; TLS, the per-process connection limit, refusals and CORS: single node."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import ROOT_TOKEN, api_overrides, serving_api
from tests.deployments import Deployment
from wildduck.testing.server import ServerProcess, free_port, running_server

TOKEN_HASH = "sha256:" + hashlib.sha256(ROOT_TOKEN.encode()).hexdigest()


def write_config(tmp_path: Path, api: str = "", deployment: Deployment | None = None) -> Path:
    path = tmp_path / "wildduck.toml"
    path.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\nshutdown_timeout = 2.0\n'
                    'email_domain = "example.com"\n'
                    "[lmtp]\nport = 0\n[imap]\nport = 0\ntls_port = 0\n[pop3]\nport = 0\ntls_port = 0\n"
                    f'[metrics]\nport = 0\n[api]\nenabled = true\nport = 0\naccess_token = "{TOKEN_HASH}"\n{api}'
                    + (deployment.toml() if deployment else ""))
    return path


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", "--max-time", "20", *args], capture_output=True, text=True, timeout=60)


def test_serve_reports_the_api_and_curl_uses_it(tmp_path: Path, deployment: Deployment) -> None:
    config = write_config(tmp_path, deployment=deployment)
    with ServerProcess(config) as server:
        host, port = server.address("api")
        base = f"http://{host}:{port}"
        done = curl("-H", f"X-Access-Token: {ROOT_TOKEN}", f"{base}/health")
        assert json.loads(done.stdout) == {"success": True, "version": json.loads(done.stdout)["version"]}
        made = curl("-H", f"Authorization: Bearer {ROOT_TOKEN}", "-H", "Content-Type: application/json",
                    "-d", '{"username": "alice", "password": "secret-pass"}', f"{base}/users")
        user_id = json.loads(made.stdout)["id"]
        listed = json.loads(curl(f"{base}/users/{user_id}/mailboxes?accessToken={ROOT_TOKEN}").stdout)
        assert [m["path"] for m in listed["results"]][0] == "INBOX"
        refused = curl("-w", "%{http_code}", "-o", "/dev/null", f"{base}/users")
        assert refused.stdout == "403"
        status = subprocess.run([sys.executable, "-m", "wildduck", "--config", str(config), "status", "--json"],
                                capture_output=True, timeout=60)
        assert json.loads(status.stdout)["listeners"]["api"] == f"{host}:{port}"
        assert not any(ROOT_TOKEN in line for line in server.log)  # the token is never logged
        assert server.terminate() == 0


def test_https_and_http2(tmp_path: Path) -> None:
    with ServerProcess(write_config(tmp_path, "tls = true\n")) as server:
        host, port = server.address("api")
        url = f"https://{host}:{port}/health"
        for version in ("--http1.1", "--http2"):
            done = curl("-k", version, "-w", "\n%{http_version}", "-H", f"X-Access-Token: {ROOT_TOKEN}", url)
            body, _, http_version = done.stdout.rpartition("\n")
            assert json.loads(body)["success"] is True, done
            assert http_version == ("1.1" if version == "--http1.1" else "2")
        plain = curl("-w", "%{http_code}", f"http://{host}:{port}/health")
        assert plain.stdout in ("000", "400") or plain.returncode != 0  # no plaintext on the TLS port


def test_connections_over_the_limit_get_503_and_the_others_are_served(tmp_path: Path) -> None:
    """``[limits] max_connections`` holds on the API port too: a connection beyond it is answered 503 and closed;
    once one closes, a new one is served."""
    config = write_config(tmp_path)
    config.write_text(config.read_text() + "[limits]\nmax_connections = 2\n")
    with ServerProcess(config) as server:
        base = "http://{}:{}".format(*server.address("api"))
        headers = {"X-Access-Token": ROOT_TOKEN}
        with httpx.Client(base_url=base, headers=headers) as first, httpx.Client(base_url=base, headers=headers) \
                as second:
            assert first.get("/health").status_code == 200 and second.get("/health").status_code == 200
            refused = curl("-i", f"{base}/health")  # a third connection while both stay open (keep-alive)
            assert refused.stdout.startswith("HTTP/1.1 503"), refused
            assert '"code":"ServiceUnavailable"' in refused.stdout
            assert first.get("/health").status_code == 200  # the two are unaffected
        for _ in range(50):  # the server sees the two close a moment later
            served = curl("-w", "%{http_code}", "-o", "/dev/null", "-H", f"X-Access-Token: {ROOT_TOKEN}",
                          f"{base}/health")
            if served.stdout == "200":
                break
            time.sleep(0.1)
        assert served.stdout == "200"


def test_an_api_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    port = free_port()
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        config = write_config(tmp_path).read_text().replace("[api]\nenabled = true\nport = 0",
                                                            f"[api]\nenabled = true\nport = {port}")
        path = tmp_path / "busy.toml"
        path.write_text(config)
        proc = subprocess.run([sys.executable, "-m", "wildduck", "serve", "--config", str(path)],
                              capture_output=True, timeout=60)
    assert proc.returncode == 1
    assert f"api 127.0.0.1:{port}: ".encode() in proc.stderr and b"in use" in proc.stderr


@pytest.mark.parametrize(("extra", "complaint"), [
    ('host = "0.0.0.0"\naccess_control = false\n', "[api] access_control = false"),
    ('access_token = "sha256:abc"\n', "[api] access_token: expected sha256: and 64 hex digits"),
    ('cert = "/nonexistent/c.pem"\nkey = "/nonexistent/k.pem"\n', "[api] cert: no such file"),
    ("keep_alive_timeout = 0\n", "[api] keep_alive_timeout: must be positive"),
])
def test_check_config_refuses_bad_api_settings(tmp_path: Path, extra: str, complaint: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\n[metrics]\nport = 0\n'
                    f"[api]\nenabled = true\nport = 0\n{extra}")
    checked = subprocess.run([sys.executable, "-m", "wildduck", "--config", str(path), "check-config"],
                             capture_output=True, timeout=60)
    assert checked.returncode != 0 and complaint in checked.stderr.decode(), checked.stderr
    assert len(checked.stderr.decode().strip().splitlines()) == 1


async def test_access_control_off_is_allowed_on_loopback(tmp_path: Path) -> None:
    async with running_server(tmp_path, {"api": {"enabled": True, "access_control": False,
                                                 "host": "127.0.0.1"}}) as srv:
        host, port = srv.address("api")
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            assert (await client.get("/health")).status_code == 200


async def test_cors_preflight_and_headers(tmp_path: Path) -> None:
    async with running_server(tmp_path, api_overrides(cors_origins="https://mail.example.com, https://b.example")) \
            as srv:
        host, port = srv.address("api")
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            pre = await client.options("/users", headers={"Origin": "https://mail.example.com",
                                                          "Access-Control-Request-Method": "POST"})
            assert pre.status_code == 204
            assert pre.headers["Access-Control-Allow-Origin"] == "https://mail.example.com"
            assert "X-Access-Token" in pre.headers["Access-Control-Allow-Headers"]
            r = await client.get("/health", headers={"Origin": "https://b.example", "X-Access-Token": ROOT_TOKEN})
            assert r.headers["Access-Control-Allow-Origin"] == "https://b.example"
            r = await client.get("/health", headers={"Origin": "https://evil.example", "X-Access-Token": ROOT_TOKEN})
            assert "Access-Control-Allow-Origin" not in r.headers
            refused = await client.get("/users", headers={"Origin": "https://b.example"})
            assert refused.status_code == 403 and refused.headers["Access-Control-Allow-Origin"] == "https://b.example"


async def test_a_body_over_the_limit_is_refused(tmp_path: Path, deployment: Deployment) -> None:
    async with serving_api(tmp_path / "data", api_overrides(max_body_size=2048), deployment) as api:
        r = await api.root.post("/users", json={"username": "a", "password": "x" * 4000})
        assert r.status_code == 413 and r.json()["code"] == "PayloadTooLarge"

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
            yield b'{"username": "a", "password": "'
            for _ in range(10):
                yield b"x" * 1000
            yield b'"}'

        # the server reads the rest of the body before it answers and closes: otherwise the client, still
        # sending, would get a reset instead of the answer
        r = await api.root.post("/users", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and r.json()["code"] == "PayloadTooLarge"
        assert (await api.root.get("/users")).json()["total"] == 0  # nothing was created
        r = await api.root.post("/users", json={"username": "a", "password": "x" * 100, "address": "a@example.com"})
        assert r.status_code == 200  # under the limit
