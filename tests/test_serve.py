"""``wildduck serve`` as a process: readiness, signals, refusing unavailable listeners, self-signed TLS."""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wildduck.testing.server import ServerProcess


def write_config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "wildduck.toml"
    # no fixed metrics port (a server running on this machine may have it); ``extra`` keys without a table of their
    # own land in [pop3]
    path.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\nshutdown_timeout = 2.0\n[metrics]\nport = 0\n'
                    f"[lmtp]\nport = 0\n[imap]\nport = 0\ntls_port = 0\n[pop3]\nport = 0\ntls_port = 0\n{extra}")
    return path


def imap_login(server: ServerProcess, user: str, password: str) -> str:
    """"ok", or the server's refusal of an IMAP LOGIN."""
    import imaplib

    client = imaplib.IMAP4(*server.address("imap"), timeout=30)
    try:
        client.login(user, password)
        return "ok"
    except imaplib.IMAP4.error as exc:
        return str(exc)
    finally:
        client.shutdown()


def wait_for(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_serve_reports_ready_and_stops_on_sigterm(tmp_path: Path) -> None:
    server = ServerProcess(write_config(tmp_path)).start()
    try:
        host, port = server.address("lmtp")
        with socket.create_connection((host, port), timeout=10) as sock:
            assert sock.recv(1024).startswith(b"220 ")
        assert any("ready" in line for line in server.log)
        assert (tmp_path / "data" / "wildduck.db").exists()
        assert (tmp_path / "data" / "tls-selfsigned-cert.pem").exists()  # generated on first start
    finally:
        code = server.terminate()
    assert code == 0
    assert any("shutting down" in line for line in server.log)


def test_sigint_also_stops_cleanly(tmp_path: Path) -> None:
    server = ServerProcess(write_config(tmp_path)).start()
    assert server.proc is not None
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(30) == 0


def test_sighup_reloads_certificates(tmp_path: Path) -> None:
    server = ServerProcess(write_config(tmp_path, "starttls = true\n")).start()
    try:
        assert (tmp_path / "data" / "tls-selfsigned-cert.pem").exists()
        key = tmp_path / "data" / "tls-selfsigned-key.pem"
        assert key.stat().st_mode & 0o077 == 0, "private key must not be readable by others"
        assert server.proc is not None
        server.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: any("reloaded TLS certificate" in line for line in server.log))
        # still serving after the reload
        with socket.create_connection(server.address("lmtp"), timeout=10) as sock:
            assert sock.recv(1024).startswith(b"220 ")
    finally:
        assert server.terminate() == 0


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = tmp_path / "c.toml"
        config.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\n[lmtp]\nport = {port}\n'
                          '[imap]\nenabled = false\n')
        proc = subprocess.run([sys.executable, "-m", "wildduck", "serve", "--config", str(config)],
                              capture_output=True, timeout=60)
    assert proc.returncode == 1
    assert f"lmtp 127.0.0.1:{port}: ".encode() in proc.stderr and b"in use" in proc.stderr
    assert not (tmp_path / "data").exists()  # no database, no certificate before the ports are known to be good


def test_generated_certificate_is_valid_for_localhost(tmp_path: Path) -> None:
    from wildduck.net.tls import generate_self_signed

    cert, key = generate_self_signed(tmp_path, "mail.example.org")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    again = generate_self_signed(tmp_path, "mail.example.org")
    assert again == (cert, key)  # generated once, then reused
    from cryptography import x509

    names = x509.load_pem_x509_certificate(cert.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert "mail.example.org" in names.get_values_for_type(x509.DNSName)


def test_user_unlock_clears_a_lockout_in_the_running_server(tmp_path: Path) -> None:
    """The failed-login counts live in the server; ``wildduck user unlock`` asks it over its node socket."""

    config = write_config(tmp_path, "[limits]\nauth_failures = 2\n")
    wd = [sys.executable, "-m", "wildduck", "--config", str(config)]
    subprocess.run([*wd, "init"], check=True, capture_output=True, timeout=60)
    subprocess.run([*wd, "user", "create", "alice", "--password", "right", "--address", "alice@example.com"],
                   check=True, capture_output=True, timeout=60)

    def login(password: str) -> str:
        return imap_login(server, "alice", password)

    with ServerProcess(config) as server:
        assert "invalid" in login("wrong").lower()
        assert "invalid" in login("wrong").lower()
        assert "too many failed logins" in login("right")  # locked out, right password or not
        unlocked = subprocess.run([*wd, "user", "unlock", "alice"], capture_output=True, timeout=60)
        assert unlocked.returncode == 0 and b"unlocked alice" in unlocked.stdout
        assert login("right") == "ok"


@pytest.mark.parametrize(("extra", "complaint"), [
    ("[imap]\nport = 2424\n[lmtp]\nport = 2424\n", "port 2424 on 127.0.0.1 is also used by [lmtp]"),
    ('[tls]\ncert = "/nonexistent/c.pem"\nkey = "/nonexistent/k.pem"\n', "[tls] cert: no such file"),
    ('[imap]\nhost = "no such host.invalid"\n', "[imap] host: cannot listen on"),
    ('[api]\nenabled = true\nhost = "0.0.0.0"\naccess_control = false\n', "[api] access_control = false"),
    ("[pop3]\nport = 2424\n[lmtp]\nport = 2424\n", "port 2424 on 127.0.0.1 is also used by [lmtp]"),
])
def test_check_config_refuses_what_serve_refuses(tmp_path: Path, extra: str, complaint: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\n[metrics]\nport = 0\n{extra}')
    wd = [sys.executable, "-m", "wildduck", "--config", str(path)]
    checked = subprocess.run([*wd, "check-config"], capture_output=True, timeout=60)
    served = subprocess.run([*wd, "serve"], capture_output=True, timeout=60)
    for proc in (checked, served):
        assert proc.returncode != 0 and complaint in proc.stderr.decode(), proc.stderr
        assert len(proc.stderr.decode().strip().splitlines()) == 1  # one line, no traceback
    assert not (tmp_path / "data").exists()  # nothing created for a configuration serve refuses


def test_a_newer_schema_is_one_line(tmp_path: Path) -> None:
    import sqlite3

    data = tmp_path / "data"
    data.mkdir()
    with sqlite3.connect(data / "wildduck.db") as conn:
        conn.execute("PRAGMA user_version = 999")
    path = tmp_path / "c.toml"
    path.write_text(f'[server]\ndata_dir = "{data}"\n[metrics]\nport = 0\n[lmtp]\nport = 0\n[imap]\nport = 0\n'
                    "tls_port = 0\n[pop3]\nport = 0\ntls_port = 0\n")
    served = subprocess.run([sys.executable, "-m", "wildduck", "--config", str(path), "serve"],
                            capture_output=True, timeout=60)
    lines = served.stderr.decode().strip().splitlines()
    assert served.returncode != 0 and "newer than this wildduck" in lines[-1] and len(lines) <= 2, lines
