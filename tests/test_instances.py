"""Two ``wildduck serve`` instances sharing one MongoDB-protocol store (FerretDB) and one Redis, as the scaled-out
deployment runs them: an IDLE client on one sees what the other stored, UIDs stay unique and increasing under
concurrent APPENDs through both, and the per-user connection limit counts both. The CLI administers the shared
store (and refuses what only the embedded store has: backup and restore)."""

from __future__ import annotations

import imaplib
import os
import secrets
import smtplib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.test_serve import imap_login
from tests.test_workers import ADDRESS, deliver, expect, imap
from wildduck.domain.auth import SLOT_TTL
from wildduck.testing import ferretdb, haproxy
from wildduck.testing.redis import RedisServer, private_redis
from wildduck.testing.server import ServerProcess, free_port

if (reason := ferretdb.unavailable()) is not None:
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI=true: {reason}")
    pytest.skip(reason, allow_module_level=True)


@dataclass
class Backend:
    mongodb: str
    redis: RedisServer


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    (tmp_path / "ferretdb").mkdir()
    with ferretdb.running(tmp_path / "ferretdb") as store, private_redis(tmp_path / "redis") as redis_server:
        yield Backend(store.uri.rstrip("/") + f"/wd{secrets.token_hex(3)}", redis_server)


def instance_config(root: Path, name: str, backend: Backend, extra: str = "") -> Path:
    directory = root / name
    directory.mkdir()
    config = directory / "wildduck.toml"
    config.write_text(
        f'[server]\ndata_dir = "{directory / "data"}"\nshutdown_timeout = 2.0\n'
        "[lmtp]\nport = 0\n[imap]\nport = 0\ntls_port = 0\nmax_connections_per_user = 3\n"
        "[pop3]\nport = 0\ntls_port = 0\n[metrics]\nenabled = false\n"
        f'[store]\nbackend = "mongodb"\nuri = "{backend.mongodb}"\n'
        '[pubsub]\nbackend = "redis"\n[counters]\nbackend = "redis"\n'
        f'[redis]\nurl = "{backend.redis.url}"\n{extra}')
    return config


def wd(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wildduck", "--config", str(config), *args], capture_output=True,
                          text=True, timeout=120)


def test_two_instances_share_mail_nudges_and_limits(tmp_path: Path, backend: Backend) -> None:
    config_a = instance_config(tmp_path, "a", backend)
    config_b = instance_config(tmp_path, "b", backend)
    made = wd(config_a, "init")
    assert made.returncode == 0 and "is ready" in made.stdout, made.stderr
    created = wd(config_a, "user", "create", "ann", "--password", "pw", "--address", ADDRESS)
    assert created.returncode == 0, created.stderr
    assert "MongoDB database" in created.stderr and "@" not in created.stderr.split("on", 1)[-1]
    refused = wd(config_b, "backup", str(tmp_path / "copy.db"))
    assert refused.returncode != 0 and "mongodump" in refused.stderr

    with ServerProcess(config_a) as a, ServerProcess(config_b) as b:
        idle = imap(a)
        idle.select("INBOX")
        idle.sock.settimeout(60)
        idle.send(b"I1 IDLE\r\n")
        assert idle.readline().startswith(b"+")
        deliver(b, "delivered to the other instance")
        expect(idle, b"* 1 EXISTS\r\n")  # B stored it in the shared store and nudged A through Redis
        flagger = imap(b)
        flagger.select("INBOX")
        assert flagger.store("1", "+FLAGS", "(\\Flagged)")[0] == "OK"
        expect(idle, b"FLAGS (")  # * 1 FETCH (FLAGS (\Flagged ...) ...) on A
        idle.send(b"DONE\r\n")
        while not (line := idle.readline()).startswith(b"I1 "):
            pass
        assert line.startswith(b"I1 OK"), line
        flagger.logout()

        # concurrent APPENDs through both instances: distinct UIDs, none missing, increasing per client
        uids: dict[str, list[int]] = {}
        errors: list[BaseException] = []

        def append(server: ServerProcess, who: str, count: int) -> None:
            try:
                client = imaplib.IMAP4(*server.address("imap"), timeout=60)
                client.login("ann", "pw")
                got = []
                for n in range(count):
                    typ, data = client.append("INBOX", "", None, f"Subject: {who} {n}\r\n\r\nbody\r\n".encode())
                    assert typ == "OK", data
                    got.append(int(data[0].split(b"APPENDUID ")[1].split()[1].rstrip(b"]")))
                uids[who] = got
                client.logout()
            except BaseException as exc:  # reported by the test thread
                errors.append(exc)

        threads = [threading.Thread(target=append, args=(server, who, 8))
                   for server, who in ((a, "a"), (b, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert not errors, errors
        every = uids["a"] + uids["b"]
        assert sorted(every) == list(range(2, 2 + len(every))), uids
        assert all(u == sorted(u) for u in uids.values())
        check = imap(a)
        typ, data = check.status("INBOX", "(MESSAGES UIDNEXT)")
        assert typ == "OK" and b"MESSAGES 17" in data[0] and b"UIDNEXT 18" in data[0], data

        # the per-user connection limit (3) counts the sessions on both instances
        third = imap(b)
        assert "too many simultaneous connections" in imap_login(b, "ann", "pw")  # idle (A), check (A), third (B)
        check.logout()
        assert imap_login(b, "ann", "pw") == "ok"
        idle.logout()
        third.logout()
    for server in (a, b):
        assert server.proc is not None and server.proc.returncode == 0
        assert not any("Traceback" in line for line in server.log), server.log


class _Lmtp(smtplib.LMTP):
    """An LMTP client of one message: the outcome of its DATA (True: 250), or False when the connection broke."""

    @classmethod
    def deliver_one(cls, port: int, subject: str) -> bool:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "x@example.org", ADDRESS, subject
        msg.set_content("hello\n")
        try:
            with cls("127.0.0.1", port, timeout=30) as lmtp:
                return not lmtp.send_message(msg)
        except (OSError, smtplib.SMTPException):
            return False


def _login(port: int) -> imaplib.IMAP4 | str:
    client = imaplib.IMAP4("127.0.0.1", port, timeout=30)
    try:
        client.login("ann", "pw")
    except imaplib.IMAP4.error as exc:
        client.shutdown()
        return str(exc)
    return client


def test_kill_9_behind_haproxy_loses_nothing_and_frees_its_slots(tmp_path: Path, backend: Backend) -> None:
    """Two instances behind HAProxy (round robin, health checks): deliveries go on while A is killed with SIGKILL;
    every delivery that got its 250 is stored, clients reconnect through HAProxy to B, and the connection slots A's
    sessions held expire (SLOT_TTL) so that the user may log in again."""
    if (reason := haproxy.unavailable()) is not None:
        if os.environ.get("CI") == "true":
            raise AssertionError(f"CI=true: {reason}")
        pytest.skip(reason)
    config_a = instance_config(tmp_path, "a", backend)
    config_b = instance_config(tmp_path, "b", backend)
    assert wd(config_a, "init").returncode == 0
    assert wd(config_a, "user", "create", "ann", "--password", "pw", "--address", ADDRESS).returncode == 0
    front = {"lmtp": free_port(), "imap": free_port()}
    with ServerProcess(config_a) as a, ServerProcess(config_b) as b, haproxy.running(tmp_path, {
            name: (port, [f"{s} {srv.address(name)[0]}:{srv.address(name)[1]} check inter 200ms fall 1 rise 2"
                          for s, srv in (("a", a), ("b", b))]) for name, port in front.items()}):
        held = [_login(front["imap"]) for _ in range(3)]  # round robin: on A, B, A (the limit is 3)
        assert all(isinstance(c, imaplib.IMAP4) for c in held), held
        assert "too many simultaneous connections" in str(_login(front["imap"]))
        acknowledged: list[str] = []
        failures: list[BaseException] = []
        stop = threading.Event()

        def deliveries() -> None:
            n = 0
            try:
                while not stop.is_set():
                    subject = f"delivery {n}"
                    if _Lmtp.deliver_one(front["lmtp"], subject):
                        acknowledged.append(subject)
                    n += 1
            except BaseException as exc:  # reported by the test thread
                failures.append(exc)

        sender = threading.Thread(target=deliveries)
        sender.start()
        try:
            while len(acknowledged) < 10:
                assert sender.is_alive(), failures
                time.sleep(0.05)
            a.kill()  # SIGKILL, in the middle of deliveries
            count = len(acknowledged)
            while len(acknowledged) < count + 10:  # deliveries go on through B
                assert sender.is_alive(), failures
                time.sleep(0.05)
        finally:
            stop.set()
            sender.join(120)
        # A's two sessions are gone with it; their slots expire and the user may log in again, through HAProxy
        deadline = time.monotonic() + SLOT_TTL + 20
        while isinstance(again := _login(front["imap"]), str):
            assert "too many simultaneous connections" in again, again
            assert time.monotonic() < deadline, "the dead instance's connection slots were not released"
            time.sleep(0.5)
        typ, data = again.select("INBOX")
        assert typ == "OK"
        typ, found = again.search(None, "ALL")
        subjects = set()
        for num in found[0].split():
            typ, fetched = again.fetch(num, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            subjects.add(fetched[0][1].decode().split(":", 1)[1].strip())
        assert set(acknowledged) <= subjects, sorted(set(acknowledged) - subjects)
        again.logout()
        for client in held:
            if isinstance(client, imaplib.IMAP4):
                try:
                    client.logout()
                except (OSError, imaplib.IMAP4.abort):
                    pass  # its instance was killed
    assert not any("Traceback" in line for line in b.log), b.log
