"""Other processes of the node (``wildduck deliver``, the administrative CLI) reach the running server's sessions
at once: their nudges go over the server's socket in the data directory."""

from __future__ import annotations

import imaplib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from wildduck.testing.clients import idling
from wildduck.testing.server import ServerProcess

MESSAGE = b"From: a@example.net\r\nTo: alice@example.com\r\nSubject: from the LDA\r\n\r\nhello\r\n"


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "wildduck.toml"
    path.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\nshutdown_timeout = 2.0\n'
                    f"[lmtp]\nport = 0\n[imap]\nport = 0\ntls_port = 0\n[pop3]\nport = 0\ntls_port = 0\n"
                    "[metrics]\nport = 0\n")
    return path


def cli(config: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "wildduck", "--config", str(config), *args], input=stdin,
                          capture_output=True, timeout=60, check=True)




def test_deliver_from_the_cli_wakes_idle_clients(tmp_path: Path) -> None:
    """Defect: ``wildduck deliver`` stored the message and an IDLEing client saw nothing for 40 s."""
    config = write_config(tmp_path)
    server = ServerProcess(config).start()
    try:
        cli(config, "user", "create", "alice", "--password", "pw", "--address", "alice@example.com")
        sock_path = tmp_path / "data" / "wildduck.sock"
        assert stat.S_IMODE(os.stat(sock_path).st_mode) == 0o600  # only the server's account may publish
        m = idling(server.address("imap"), "alice", "pw")
        cli(config, "deliver", "alice@example.com", stdin=MESSAGE)
        lines = []
        while not lines or not lines[-1].startswith(b"* 1 EXISTS"):
            try:
                lines.append(m.readline().rstrip())
            except TimeoutError:
                raise AssertionError(f"no EXISTS while idling: {lines}") from None
        m.send(b"DONE\r\n")
        m.logout()
    finally:
        assert server.terminate() == 0
    assert not (tmp_path / "data" / "wildduck.sock").exists()  # removed when the server stops


async def test_status_is_read_from_the_running_server(tmp_path: Path) -> None:
    import json

    from wildduck.adapters.local.node import ask
    from wildduck.testing.server import running_server

    async with running_server(tmp_path) as srv:
        sock = srv.services.config.data_dir / "wildduck.sock"
        answer = await ask(sock, "status")
        assert answer is not None
        status = json.loads(answer)
        assert set(status["listeners"]) >= {"lmtp", "imap", "metrics"}
        assert status["connections"]["imap"] == 0 and status["database_bytes"] > 0
        assert json.loads(await ask(sock, "nonsense") or "{}") == {"error": "unknown query"}
    assert await ask(sock, "status") is None  # no server any more


def test_status_command_and_serve_with_data_dir_and_json_log(tmp_path: Path) -> None:
    import json

    data = tmp_path / "elsewhere"
    log = tmp_path / "wd.log"
    config = tmp_path / "wildduck.toml"
    config.write_text(f'[server]\nlog_format = "json"\nlog_file = "{log}"\n'
                      "[lmtp]\nport = 0\n[imap]\nport = 0\ntls_port = 0\n[pop3]\nport = 0\ntls_port = 0\n"
                      "[metrics]\nport = 0\n")
    assert subprocess.run([sys.executable, "-m", "wildduck", "--config", str(config), "status"],
                          capture_output=True, timeout=60).returncode == 1  # no server yet
    proc = subprocess.Popen([sys.executable, "-m", "wildduck", "serve", "--config", str(config), "--data-dir",
                             str(data)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        import time

        deadline = time.monotonic() + 60
        while not (data / "wildduck.sock").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        # the administrative commands name the same data directory through the configuration's override
        cfg2 = tmp_path / "admin.toml"
        cfg2.write_text(config.read_text().replace("[server]\n", f'[server]\ndata_dir = "{data}"\n'))
        out = cli(cfg2, "status").stdout.decode()
        assert "imap" in out and "lmtp" in out and "connections" in out and "last delivery" in out
        st = json.loads(cli(cfg2, "status", "--json").stdout)
        assert st["pid"] == proc.pid
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert any("ready" in r["message"] for r in records) and all({"time", "level", "logger"} <= set(r)
                                                                   for r in records)


def test_sessions_of_a_deleted_user_end_with_bye(tmp_path: Path) -> None:
    """Defect: after ``wildduck user delete dave`` dave's open IMAP session still answered NOOP and STORE with OK,
    and APPEND dropped the connection with a traceback."""
    config = write_config(tmp_path)
    server = ServerProcess(config).start()
    try:
        cli(config, "user", "create", "dave", "--password", "pw", "--address", "dave@example.com")
        idle = idling(server.address("imap"), "dave", "pw")
        busy = imaplib.IMAP4(*server.address("imap"))
        busy.login("dave", "pw")
        cli(config, "user", "delete", "dave", "--yes")
        assert idle.readline().startswith(b"* BYE this account is no longer available")
        with pytest.raises(imaplib.IMAP4.abort):  # BYE instead of OK, then the connection closes
            busy.noop()
        assert not any("Traceback" in line for line in server.log)
    finally:
        assert server.terminate() == 0
