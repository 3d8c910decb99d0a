"""``wildduck serve --workers N``: one node, several server processes on the same ports and the same data.

Every test runs a real supervisor with two workers and talks to it with real clients. The workers take connections
least-connections first (``net/balance.py``), so tests that need both workers open a few connections and check with
``wildduck status`` that each worker holds some.
"""

from __future__ import annotations

import http.client
import imaplib
import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.test_serve import imap_login, wait_for
from wildduck.testing.server import ServerProcess

ADDRESS = "ann@example.com"


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A data directory with a short path (the workers' UNIX sockets live there; their paths are limited)."""
    with tempfile.TemporaryDirectory(prefix="wdw-", dir="/tmp") as tmp:
        yield Path(tmp)


def write_config(root: Path, extra: str = "", workers: int = 2) -> Path:
    path = root / "wildduck.toml"
    path.write_text(f'[server]\ndata_dir = "{root / "data"}"\nshutdown_timeout = 2.0\nworkers = {workers}\n'
                    "[lmtp]\nport = 0\n[imap]\nport = 0\ntls_port = 0\n[pop3]\nport = 0\ntls_port = 0\n"
                    f"[metrics]\nenabled = true\nport = 0\n{extra}")
    return path


def wd(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wildduck", "--config", str(config), *args], capture_output=True,
                          text=True, timeout=60)


def prepared_config(root: Path, extra: str = "") -> Path:
    """A two-worker configuration under ``root`` with its store and the user ann."""
    config = write_config(root, extra)
    prepare(config)
    return config


def prepare(config: Path) -> None:
    assert wd(config, "init").returncode == 0
    created = wd(config, "user", "create", "ann", "--password", "pw", "--address", ADDRESS)
    assert created.returncode == 0, created.stderr


def status(config: Path) -> dict:  # type: ignore[type-arg]
    answer = wd(config, "status", "--json")
    assert answer.returncode == 0, answer.stderr
    return json.loads(answer.stdout)  # type: ignore[no-any-return]


def imap(server: ServerProcess) -> imaplib.IMAP4:
    client = imaplib.IMAP4(*server.address("imap"), timeout=30)
    client.login("ann", "pw")
    return client


def on_both_workers(config: Path, server: ServerProcess, most: int = 40) -> list[imaplib.IMAP4]:
    """IMAP sessions, opened until each worker holds at least one."""
    clients: list[imaplib.IMAP4] = []
    while len(clients) < most:
        clients.append(imap(server))
        if len(clients) >= 4:
            held = [sum(w["connections"].values()) for w in status(config)["workers"]]
            if len(held) == 2 and all(held):
                return clients
    raise AssertionError(f"{most} connections all went to one worker")


def expect(client: imaplib.IMAP4, wanted: bytes) -> None:
    """The next untagged response of an IDLEing client that is not RECENT contains ``wanted``."""
    line = client.readline()
    while line.endswith(b" RECENT\r\n"):
        line = client.readline()
    assert wanted in line, line


def deliver(server: ServerProcess, subject: str) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "x@example.org", ADDRESS, subject
    msg.set_content("hello\n")
    with smtplib.LMTP(*server.address("lmtp"), timeout=30) as lmtp:
        lmtp.send_message(msg)


def test_two_workers_share_the_ports_and_report_as_one_node(short_dir: Path) -> None:
    config = prepared_config(short_dir)
    with ServerProcess(config) as server:
        assert any("2 workers" in line and "ready" in line for line in server.log)
        clients = on_both_workers(config, server)
        st = status(config)
        assert st["pid"] == server.proc.pid  # type: ignore[union-attr]
        assert len({w["pid"] for w in st["workers"]}) == 2 and server.proc.pid not in {w["pid"] for w in st["workers"]}  # type: ignore[union-attr]
        assert st["connections"]["imap"] == len(clients)  # summed over the workers
        assert {name: tuple(a.rsplit(":", 1)) for name, a in st["listeners"].items()} == {
            name: (host, str(port)) for name, (host, port) in server.ports.items()}  # metrics too
        with urllib.request.urlopen(f"http://127.0.0.1:{server.address('metrics')[1]}/metrics", timeout=30) as r:
            text = r.read().decode()
        logins = [line for line in text.splitlines() if line.startswith("wildduck_logins_total{")]
        assert {'worker="0"' in line for line in logins} == {True, False}  # both workers' samples, labelled
        assert text.count("# TYPE wildduck_logins_total counter") == 1
        # the sessions stay open: the workers say BYE to them and stop
    assert server.proc is not None and server.proc.returncode == 0
    assert not any("did not stop in time" in line for line in server.log), "every worker stopped by itself"
    data = short_dir / "data"
    assert not list(data.glob("*.sock")), "sockets are removed at shutdown"


def test_connections_go_to_the_worker_that_holds_fewer(short_dir: Path) -> None:
    config = prepared_config(short_dir)
    with ServerProcess(config) as server:
        clients = [imap(server) for _ in range(12)]  # one at a time: each is served before the next connects
        held = sorted(w["connections"].get("imap", 0) for w in status(config)["workers"])
        assert sum(held) == 12 and held[1] - held[0] <= 2, held  # a kernel hash gives 8/4 or worse one time in 4
        for c in clients[:5]:
            c.logout()
        wait_for(lambda: status(config)["connections"]["imap"] == 7)
        clients = clients[5:] + [imap(server) for _ in range(5)]
        held = sorted(w["connections"].get("imap", 0) for w in status(config)["workers"])
        assert sum(held) == 12 and held[1] - held[0] <= 2, held
        for c in clients:
            c.logout()


def test_api_connections_go_to_the_worker_that_holds_fewer(short_dir: Path) -> None:
    """The API port is balanced like the mail ports: 10 keep-alive clients (a webmail's backends, a benchmark)
    split evenly over the workers instead of going to whichever woke first."""
    config = prepared_config(short_dir, '[api]\nenabled = true\nport = 0\naccess_control = false\n')
    with ServerProcess(config) as server:
        host, port = server.address("api")
        clients = []
        for _ in range(10):  # one at a time, each answered (and so counted) before the next connects
            client = http.client.HTTPConnection(host, port, timeout=30)
            client.request("GET", "/users")
            answer = client.getresponse()
            assert answer.status == 200 and answer.getheader("Connection") != "close"
            answer.read()
            clients.append(client)
        held = sorted(w["connections"].get("api", 0) for w in status(config)["workers"])
        assert sum(held) == 10 and held[1] - held[0] <= 2, held
        assert status(config)["connections"]["api"] == 10
        for client in clients:
            client.close()
        wait_for(lambda: status(config)["connections"]["api"] == 0)


def test_a_change_in_one_worker_reaches_idle_sessions_in_every_worker(short_dir: Path) -> None:
    """LMTP delivery, IMAP STORE and `wildduck deliver` (through the supervisor) all push to IDLE everywhere."""
    config = prepared_config(short_dir)
    with ServerProcess(config) as server:
        clients = on_both_workers(config, server)
        for c in clients:
            c.select("INBOX")
            c.sock.settimeout(15)
            c.send(b"I1 IDLE\r\n")
            assert c.readline().startswith(b"+")
        deliver(server, "one")
        for c in clients:
            expect(c, b"* 1 EXISTS\r\n")
        store = imap(server)
        store.select("INBOX")
        store.store("1", "+FLAGS", "\\Flagged")
        for c in clients:
            expect(c, b"\\Flagged")
        piped = subprocess.run([sys.executable, "-m", "wildduck", "--config", str(config), "deliver", ADDRESS],
                               input=b"Subject: two\r\n\r\nhi\r\n", capture_output=True, timeout=60)
        assert piped.returncode == 0, piped.stderr
        for c in clients:
            expect(c, b"* 2 EXISTS\r\n")
        for c in clients:
            c.send(b"DONE\r\n")
        store.logout()


def test_concurrent_appends_through_both_workers_get_distinct_uids(short_dir: Path) -> None:
    """UID allocation is one counter for the node: 8 or more clients spread over the workers append 20 messages
    each."""
    config = prepared_config(short_dir)
    with ServerProcess(config) as server:
        clients = on_both_workers(config, server)
        while len(clients) < 8:
            clients.append(imap(server))
        errors: list[str] = []

        def append(c: imaplib.IMAP4, n: int) -> None:
            for i in range(20):
                typ, data = c.append("INBOX", "", None, f"Subject: c{n} m{i}\r\n\r\nbody\r\n".encode())
                if typ != "OK":
                    errors.append(repr(data))

        threads = [threading.Thread(target=append, args=(c, n)) for n, c in enumerate(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors
        check = imap(server)
        check.select("INBOX")
        total = 20 * len(clients)
        typ, data = check.uid("SEARCH", "ALL")
        assert [int(u) for u in data[0].split()] == list(range(1, total + 1))
        typ, data = check.status("INBOX", "(MESSAGES UIDNEXT)")
        assert f"MESSAGES {total} UIDNEXT {total + 1}".encode() in data[0]


def test_the_per_user_connection_limit_holds_across_workers(short_dir: Path) -> None:
    config = prepared_config(short_dir)
    config.write_text(config.read_text().replace("[imap]\n", "[imap]\nmax_connections_per_user = 6\n"))
    with ServerProcess(config) as server:
        clients = on_both_workers(config, server, most=6)
        while len(clients) < 6:
            clients.append(imap(server))
        refused = 0
        for _ in range(6):  # whichever worker takes them, the seventh and later are refused
            with pytest.raises(imaplib.IMAP4.error, match="(?i)too many"):
                imap(server)
            refused += 1
        clients.pop().logout()
        time.sleep(0.2)
        clients.append(imap(server))  # a slot was given back
        assert refused == 6


def test_a_worker_that_dies_is_replaced_and_the_others_keep_serving(short_dir: Path) -> None:
    config = prepared_config(short_dir)
    with ServerProcess(config) as server:
        clients = on_both_workers(config, server)
        before = {w["index"]: w["pid"] for w in status(config)["workers"]}
        os.kill(before[1], signal.SIGKILL)
        wait_for(lambda: {w["index"]: w["pid"] for w in status(config)["workers"]}.get(1, before[1]) != before[1])
        alive = 0
        for c in clients:
            try:
                c.noop()
                alive += 1
            except (imaplib.IMAP4.abort, OSError):
                pass  # the sessions of the killed worker are gone with it
        assert 0 < alive < len(clients)
        for _ in range(10):  # new connections are served, by both workers
            imap(server).logout()
        assert any("worker 1" in line and "starting another" in line for line in server.log)
        deliver(server, "after the restart")
    assert server.proc is not None and server.proc.returncode == 0


def test_workers_stop_when_the_supervisor_is_killed(short_dir: Path) -> None:
    config = prepared_config(short_dir)
    server = ServerProcess(config).start()
    pids = [w["pid"] for w in status(config)["workers"]]
    server.kill()

    def gone() -> bool:
        for pid in pids:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            try:  # a zombie (exited, not yet reaped by init) counts as gone
                if Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z"):
                    continue
            except OSError:
                continue
            return False
        return True

    wait_for(gone, timeout=30)
    with pytest.raises(OSError):
        socket.create_connection(server.address("imap"), timeout=5)


def test_unlock_reaches_the_shared_counters(short_dir: Path) -> None:
    config = prepared_config(short_dir, "[limits]\nauth_failures = 2\n")

    def login(server: ServerProcess, password: str) -> str:
        return imap_login(server, "ann", password)

    with ServerProcess(config) as server:
        for _ in range(2):
            assert "invalid" in login(server, "wrong").lower()
        for _ in range(6):  # locked out on every worker: the failures are counted in the node's counters file
            assert "too many failed logins" in login(server, "pw")
        unlocked = wd(config, "user", "unlock", "ann")
        assert unlocked.returncode == 0 and "unlocked ann" in unlocked.stdout
        for _ in range(6):
            assert login(server, "pw") == "ok"


@pytest.mark.parametrize(("setting", "complaint"), [("0", "must be from 1 to 64"), ("65", "must be from 1 to 64")])
def test_a_bad_worker_count_is_refused(short_dir: Path, setting: str, complaint: str) -> None:
    config = write_config(short_dir, workers=1)
    config.write_text(config.read_text().replace("workers = 1", f"workers = {setting}"))
    out = wd(config, "check-config")
    assert out.returncode != 0 and complaint in out.stderr


def test_a_data_directory_too_long_for_the_sockets_is_a_clear_error(short_dir: Path) -> None:
    deep = short_dir / ("d" * 60) / ("e" * 40)
    deep.mkdir(parents=True)
    config = write_config(deep)
    out = subprocess.run([sys.executable, "-m", "wildduck", "serve", "--config", str(config)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode != 0 and "would be longer than" in out.stderr


def test_ctrl_c_in_a_terminal_stops_everything_in_order(short_dir: Path) -> None:
    """SIGINT to the server's whole process group (what a terminal sends on Ctrl-C): the supervisor stops the
    workers in order; none is mistaken for a crash and restarted."""
    config = prepared_config(short_dir)
    proc = subprocess.Popen([sys.executable, "-m", "wildduck", "serve", "--config", str(config)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)  # a group of its own, as a shell job has
    assert proc.stderr is not None
    log = []
    for raw in proc.stderr:
        log.append(raw.decode(errors="replace"))
        if " ready (" in log[-1]:
            break
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    rest = "".join(log) + err.decode(errors="replace")
    assert proc.returncode == 0, rest
    assert "starting another" not in rest and "did not stop in time" not in rest
