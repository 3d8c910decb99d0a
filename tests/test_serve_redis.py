"""``wildduck serve`` with its nudges and counters in Redis (a private redis-server; missing: skipped, failed in CI):
IDLE sees deliveries (LMTP, and ``wildduck deliver`` from another process, whose nudge can only come through
Redis), the per-user connection limit holds with its slots in Redis, and N sessions of a user cost one
subscription."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.test_serve import imap_login, wait_for
from tests.test_workers import ADDRESS, deliver, expect, imap, prepare
from wildduck.config import load_config
from wildduck.errors import ConfigError
from wildduck.testing.redis import RedisServer, private_redis
from wildduck.testing.server import ServerProcess


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with private_redis(tmp_path / "redis") as server:
        yield server


def test_one_server_with_redis_pubsub_and_counters(tmp_path: Path, redis_server: RedisServer) -> None:
    prefix = f"wd-{secrets.token_hex(3)}:"
    config = tmp_path / "wildduck.toml"
    config.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\nshutdown_timeout = 2.0\n'
        "[lmtp]\nport = 0\n[imap]\nport = 0\ntls_port = 0\nmax_connections_per_user = 2\n"
        "[pop3]\nport = 0\ntls_port = 0\n[metrics]\nenabled = false\n"
        '[pubsub]\nbackend = "redis"\n[counters]\nbackend = "redis"\n'
        f'[redis]\nurl = "{redis_server.url}"\nprefix = "{prefix}"\n')
    prepare(config)
    db = redis.Redis(port=redis_server.port, decode_responses=True)

    def user_channels() -> dict[str, int]:
        """Subscribers on Redis of each user channel."""
        return dict(db.pubsub_numsub(*db.pubsub_channels(f"{prefix}user:*")))

    def slots_held() -> int:
        return sum(db.zcard(key) for key in db.scan_iter(f"{prefix}s:imap:*"))

    with ServerProcess(config) as server:
        idle = imap(server)
        idle.select("INBOX")
        other = imap(server)
        assert list(user_channels().values()) == [1]  # two sessions of ann, one subscription
        assert slots_held() == 2  # the connection slots live in Redis
        refused = imap_login(server, "ann", "pw")
        assert "too many simultaneous connections" in refused, refused  # the limit, 2
        assert slots_held() == 2

        idle.sock.settimeout(30)
        idle.send(b"I1 IDLE\r\n")
        assert idle.readline().startswith(b"+")
        deliver(server, "one")  # LMTP, in the server's process
        expect(idle, b"* 1 EXISTS\r\n")
        piped = subprocess.run([sys.executable, "-m", "wildduck", "--config", str(config), "deliver", ADDRESS],
                               input=b"Subject: two\r\n\r\nhi\r\n", capture_output=True, timeout=60)
        assert piped.returncode == 0, piped.stderr
        expect(idle, b"* 2 EXISTS\r\n")  # another process: through Redis
        idle.send(b"DONE\r\n")
        while not (line := idle.readline()).startswith(b"I1 "):
            assert line.startswith(b"* "), line
        assert line.startswith(b"I1 OK"), line

        other.logout()
        wait_for(lambda: slots_held() == 1)  # released at logout
        assert imap_login(server, "ann", "pw") == "ok"
        idle.logout()
    assert server.proc is not None and server.proc.returncode == 0
    assert not any("Redis" in line and "WARNING" in line for line in server.log), server.log
    wait_for(lambda: not user_channels())  # the server unsubscribed at the end


def test_sessions_outlive_a_redis_outage(tmp_path: Path, redis_server: RedisServer) -> None:
    """Redis goes away under a logged-in session: it keeps working, sees a delivery by polling its journal (no
    nudge can come), logs out without a traceback (its slot expires by itself), and logins are refused as
    unavailable until Redis is back."""
    config = tmp_path / "wildduck.toml"
    config.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\nshutdown_timeout = 2.0\n'
        "[lmtp]\nport = 0\n[imap]\nport = 0\ntls_port = 0\n[pop3]\nport = 0\ntls_port = 0\n"
        '[metrics]\nenabled = false\n[pubsub]\nbackend = "redis"\n[counters]\nbackend = "redis"\n'
        f'[redis]\nurl = "{redis_server.url}"\ntimeout = 1.0\n')
    prepare(config)
    with ServerProcess(config) as server:
        idle = imap(server)
        idle.select("INBOX")
        redis_server.kill()
        idle.sock.settimeout(60)
        idle.send(b"I1 IDLE\r\n")
        assert idle.readline().startswith(b"+")
        piped = subprocess.run([sys.executable, "-m", "wildduck", "--config", str(config), "deliver", ADDRESS],
                               input=b"Subject: while Redis is away\r\n\r\nhi\r\n", capture_output=True, timeout=60)
        assert piped.returncode == 0, piped.stderr  # delivery needs no Redis; its nudge is lost
        expect(idle, b"* 1 EXISTS\r\n")  # found by polling
        idle.send(b"DONE\r\n")
        while not (line := idle.readline()).startswith(b"I1 "):
            pass
        assert line.startswith(b"I1 OK"), line
        assert "unavailable" in imap_login(server, "ann", "pw").lower()
        idle.logout()
        wait_for(lambda: any("could not release connection slot" in line for line in server.log))
        redis_server.start()
        wait_for(lambda: imap_login(server, "ann", "pw") == "ok", timeout=60)
    assert not any("Traceback" in line for line in server.log), server.log


@pytest.mark.parametrize(("overrides", "complaint"), [
    ({"pubsub": {"backend": "redis"}, "redis": {"url": "http://localhost"}}, "[redis] url: expected a URL"),
    ({"counters": {"backend": "redis"}, "redis": {"url": "redis+sentinel://s1/"}}, "[redis] url: expected /service"),
    ({"counters": {"backend": "redis"}, "redis": {"timeout": 0}}, "[redis] timeout: must be positive"),
    ({"pubsub": {"backend": "redis"}, "redis": {"threads": 0}}, "[redis] threads: must be from 1 to 64"),
    ({"pubsub": {"backend": "kafka"}}, "[pubsub] backend: must be one of 'local', 'redis'"),
])
def test_the_redis_configuration_is_checked(overrides: dict[str, dict[str, object]], complaint: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(complaint)):
        load_config(overrides=overrides)
    load_config(overrides={"redis": {"url": "http://unused"}})  # only checked when a backend uses it
