"""Prometheus metrics on their own loopback port: what an administrator graphs and alerts on."""

from __future__ import annotations

import imaplib
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import trio

from wildduck.testing.lmtp_client import LMTPClient
from wildduck.testing.server import running_server

MESSAGE = b"From: a@example.net\r\nTo: alice@example.com\r\nSubject: hi\r\n\r\nhello\r\n"


def _value(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if m and m.group(1) == name and ",".join(sorted((m.group(2) or "").split(","))) == want:
            return float(m.group(3))
    return 0.0


async def test_metrics_count_logins_deliveries_and_commands(tmp_path: Path) -> None:
    async with running_server(tmp_path) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")
        host, port = srv.address("metrics")
        url = f"http://{host}:{port}/metrics"

        def scrape() -> str:
            with urllib.request.urlopen(url, timeout=10) as r:
                assert r.headers["Content-Type"].startswith("text/plain")
                return str(r.read().decode())

        def traffic() -> None:
            with LMTPClient(*srv.address("lmtp")) as c:
                c.lhlo()
                _r, replies = c.send_message("s@example.net", ["alice@example.com", "nobody@example.com"],
                                             MESSAGE)
            m = imaplib.IMAP4(*srv.address("imap"))
            with pytest.raises(imaplib.IMAP4.error):
                m.login("alice", "wrong")
            m.login("alice", "pw")
            m.select("INBOX")
            m.fetch("1", "(FLAGS)")
            m.logout()

        with trio.fail_after(60):
            before = await trio.to_thread.run_sync(scrape)
            await trio.to_thread.run_sync(traffic)
            after = await trio.to_thread.run_sync(scrape)

        def delta(name: str, **labels: str) -> float:
            return _value(after, name, **labels) - _value(before, name, **labels)

        assert delta("wildduck_deliveries_total", code="250") == 1
        assert delta("wildduck_deliveries_total", code="550") == 1
        assert delta("wildduck_logins_total", protocol="imap", result="ok") == 1
        assert delta("wildduck_logins_total", protocol="imap", result="failed") == 1
        assert delta("wildduck_command_seconds_count", protocol="imap", command="FETCH") == 1
        assert delta("wildduck_store_call_seconds_count", kind="read") > 0
        assert "wildduck_connections" in after and "wildduck_database_bytes" in after

        def not_found() -> int:
            try:
                urllib.request.urlopen(url.replace("/metrics", "/other"), timeout=10)
            except urllib.error.HTTPError as exc:
                return exc.code
            return 200

        assert await trio.to_thread.run_sync(not_found) == 404
