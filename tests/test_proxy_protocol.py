"""The PROXY protocol on the LMTP, IMAP and POP3 listeners (``net/proxy.py``): headers parsed exactly, taken only
from the configured balancers, and the client's address used for the login rules and the logs; then Debian's
HAProxy (``send-proxy`` and ``send-proxy-v2``) in front of a real server."""

from __future__ import annotations

import imaplib
import ipaddress
import os
import poplib
import re
import smtplib
import socket
import struct
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest
import trio

from tests.test_serve import wait_for, write_config
from wildduck.config import load_config
from wildduck.errors import ConfigError
from wildduck.net.proxy import (
    V2_SIGNATURE,
    ClosedBeforeHeader,
    ProxiedSource,
    ProxyHeaderError,
    ProxyPolicy,
    parse_v1,
    parse_v2,
    read_header,
)
from wildduck.testing import haproxy
from wildduck.testing.server import ServerProcess, free_port

ADDRESS = "ann@example.com"


def v2(source: str, sport: int, dest: str = "127.0.0.1", dport: int = 143, *, command: int = 1,
       tlv: bytes = b"") -> bytes:
    src, dst = ipaddress.ip_address(source), ipaddress.ip_address(dest)
    family = 0x11 if src.version == 4 else 0x21
    payload = src.packed + dst.packed + struct.pack("!HH", sport, dport) + tlv
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(payload)) + payload


# --- the headers, sans I/O ----------------------------------------------------------------------------------------

def test_v1_headers() -> None:
    assert parse_v1(b"PROXY TCP4 198.51.100.7 192.0.2.1 51234 143\r\n") == ProxiedSource(
        ipaddress.ip_address("198.51.100.7"), 51234)
    six = parse_v1(b"PROXY TCP6 2001:db8::7 2001:db8::1 51234 993\r\n")
    assert six.peer("x") == "2001:db8::7:51234"
    assert parse_v1(b"PROXY UNKNOWN\r\n").peer("10.0.0.1:5") == "10.0.0.1:5"
    for bad in (b"PROXY TCP4 198.51.100.7 192.0.2.1 51234\r\n", b"PROXY TCP4 2001:db8::7 192.0.2.1 1 2\r\n",
                b"PROXY TCP4 198.51.100.7 192.0.2.1 70000 143\r\n", b"PROXY TCP4 1.2.3.4 1.2.3.4 +1 143\r\n",
                b"PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n", b"GET / HTTP/1.0\r\n", b"PROXY TCP4 " + b"1" * 120 + b"\r\n"):
        with pytest.raises(ProxyHeaderError):
            parse_v1(bad)


def test_v2_headers() -> None:
    header = v2("203.0.113.9", 40000, tlv=b"\x04\x00\x02ab")  # a TLV is skipped
    assert parse_v2(header[:16], header[16:]) == ProxiedSource(ipaddress.ip_address("203.0.113.9"), 40000)
    six = v2("2001:db8::9", 4000, "2001:db8::1")
    assert parse_v2(six[:16], six[16:]).peer("x") == "2001:db8::9:4000"
    local = v2("203.0.113.9", 40000, command=0)
    assert parse_v2(local[:16], local[16:]).address is None  # the balancer's health check
    with pytest.raises(ProxyHeaderError):
        parse_v2(b"\r\n\r\n\x00\r\nQUIT\n\x31\x11\x00\x0c", bytes(12))  # version 3
    with pytest.raises(ProxyHeaderError):
        parse_v2(V2_SIGNATURE + b"\x21\x11\xff\xff", b"")  # 65535 bytes announced
    with pytest.raises(ProxyHeaderError):
        parse_v2(V2_SIGNATURE + b"\x21\x11\x00\x04", bytes(4))  # IPv4 addresses cut short


def test_policy_trusts_listed_balancers_only() -> None:
    policy = ProxyPolicy.of(["10.0.0.0/8", "::1", "192.0.2.4"])
    assert policy.trusts("10.1.2.3") and policy.trusts("::1") and policy.trusts("192.0.2.4")
    assert policy.trusts("::ffff:10.9.9.9"), "an IPv4 balancer seen on an IPv6 socket"
    assert not policy.trusts("192.0.2.5") and not policy.trusts("127.0.0.1") and not policy.trusts("?")
    with pytest.raises(ValueError):
        ProxyPolicy.of(["10.0.0.300"])


@pytest.mark.parametrize("header", [b"PROXY TCP4 198.51.100.7 192.0.2.1 51234 143\r\n", v2("198.51.100.7", 51234)])
async def test_read_header_takes_exactly_the_header(header: bytes) -> None:
    """The client's first bytes (a TLS ClientHello at once, on an implicit-TLS port) stay unread; a header split
    over several segments is read whole."""
    ours, theirs = trio.socket.socketpair()
    with ours, theirs:
        async with trio.open_nursery() as nursery:
            async def send() -> None:
                for i in range(0, len(header), 5):
                    await theirs.send(header[i:i + 5])
                    await trio.sleep(0.01)
                await theirs.send(b"\x16\x03\x01 client bytes")

            nursery.start_soon(send)
            source = await read_header(ours)
        assert source == ProxiedSource(ipaddress.ip_address("198.51.100.7"), 51234)
        assert await ours.recv(100) == b"\x16\x03\x01 client bytes"


async def test_read_header_refuses_what_is_no_header() -> None:
    ours, theirs = trio.socket.socketpair()
    with ours, theirs:
        await theirs.send(b"a1 LOGIN ann pw\r\n")
        with pytest.raises(ProxyHeaderError):
            await read_header(ours)
    ours, theirs = trio.socket.socketpair()
    with ours:
        theirs.close()  # a balancer's TCP health check: connect, close
        with pytest.raises(ClosedBeforeHeader):
            await read_header(ours)
    ours, theirs = trio.socket.socketpair()
    with ours:
        await theirs.send(b"PROXY TCP4 1.2.3.4")
        theirs.close()
        with pytest.raises(ProxyHeaderError, match="closed inside"):
            await read_header(ours)


# --- a real server -----------------------------------------------------------------------------------------------

def prepared(tmp_path: Path, extra: str) -> Path:
    config = write_config(tmp_path, extra)
    for args in (["init"], ["user", "create", "ann", "--password", "pw", "--address", ADDRESS]):
        done = subprocess.run([sys.executable, "-m", "wildduck", "--config", str(config), *args],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    return config


def raw_imap(server: ServerProcess, header: bytes) -> socket.socket:
    sock = socket.create_connection(server.address("imap"), timeout=30)
    sock.sendall(header)
    return sock


def closed_unanswered(sock: socket.socket) -> bool:
    """The server closed without a word (a reset, when it closed over bytes it did not read)."""
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


def read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def test_the_client_address_from_the_header_decides_plaintext_login(tmp_path: Path) -> None:
    config = prepared(tmp_path, "")
    text = config.read_text().replace("[imap]\n", '[imap]\nproxy_protocol = true\nproxy_from = "127.0.0.1"\n')
    config.write_text(text)
    with ServerProcess(config) as server:
        with raw_imap(server, b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 143\r\n") as sock:
            greeting = read_line(sock)
            assert b"LOGINDISABLED" in greeting, "203.0.113.7 is not loopback and not encrypted"
            sock.sendall(b"a LOGIN ann pw\r\n")
            assert read_line(sock).startswith(b"a NO [PRIVACYREQUIRED]")
        with raw_imap(server, v2("127.0.0.9", 40001)) as sock:  # loopback client: plaintext allowed
            assert b"LOGINDISABLED" not in read_line(sock)
            sock.sendall(b"a LOGIN ann pw\r\n")
            assert read_line(sock).startswith(b"a OK")
        wait_for(lambda: any("from 127.0.0.9:40001" in line for line in server.log))
        with raw_imap(server, b"a1 CAPABILITY\r\n") as sock:  # no header: closed, nothing said
            assert closed_unanswered(sock)
        wait_for(lambda: any("closing a connection" in line and "no PROXY header" in line for line in server.log))


def test_headers_only_from_proxy_from_and_tls_offloaded(tmp_path: Path) -> None:
    config = prepared(tmp_path, "")
    text = config.read_text().replace(
        "[imap]\n", '[imap]\nproxy_protocol = true\nproxy_from = "127.0.0.1"\ntls_offloaded = true\n').replace(
        "[pop3]\n", '[pop3]\nproxy_protocol = true\nproxy_from = "192.0.2.1"\n')
    config.write_text(text)
    with ServerProcess(config) as server:
        with raw_imap(server, b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 143\r\n") as sock:
            greeting = read_line(sock)
            assert b"LOGINDISABLED" not in greeting and b"STARTTLS" not in greeting, "TLS ended at the balancer"
            sock.sendall(b"a LOGIN ann pw\r\n")
            assert read_line(sock).startswith(b"a OK")
        with socket.create_connection(server.address("pop3"), timeout=30) as sock:  # 127.0.0.1 is no balancer
            sock.sendall(b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 110\r\n")
            assert closed_unanswered(sock)
        wait_for(lambda: any("not in proxy_from" in line for line in server.log))


@pytest.mark.parametrize(("section", "values", "complaint"), [
    ("imap", {"proxy_protocol": True, "proxy_from": ""}, "[imap] proxy_from: proxy_protocol = true needs"),
    ("lmtp", {"proxy_protocol": True, "proxy_from": "10.0.0.0/33"}, "[lmtp] proxy_from: '10.0.0.0/33' is no"),
    ("pop3", {"tls_offloaded": True}, "[pop3] tls_offloaded: needs proxy_protocol = true"),
])
def test_bad_proxy_settings_are_refused(section: str, values: dict[str, object], complaint: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(complaint)):
        load_config(overrides={section: values})


# --- HAProxy in front ----------------------------------------------------------------------------------------------

@pytest.fixture
def haproxy_available() -> None:
    reason = haproxy.unavailable()
    if reason is not None:
        if os.environ.get("CI") == "true":
            raise AssertionError(f"CI=true: {reason}: Debian's haproxy is needed by the load-balancer tests")
        pytest.skip(reason)


def test_haproxy_in_front_of_lmtp_imap_and_pop3(tmp_path: Path, haproxy_available: None) -> None:
    config = prepared(tmp_path, "")
    text = config.read_text()
    for section in ("lmtp", "imap", "pop3"):
        text = text.replace(f"[{section}]\n", f'[{section}]\nproxy_protocol = true\nproxy_from = "127.0.0.1"\n')
    config.write_text(text)
    with ServerProcess(config) as server:
        front = {name: free_port() for name in ("lmtp", "imap", "pop3")}
        sends = {"lmtp": "send-proxy", "imap": "send-proxy-v2 check check-send-proxy inter 200ms",
                 "pop3": "send-proxy-v2 check inter 200ms"}
        listeners = {name: (front[name], [f"wd {server.address(name)[0]}:{server.address(name)[1]} {sends[name]}"])
                     for name in front}
        with haproxy.running(tmp_path, listeners):
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = "x@example.org", ADDRESS, "through the balancer"
            msg.set_content("hello\n")

            class FromAddress(smtplib.LMTP):
                def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
                    return socket.create_connection((host, port), timeout, source_address=("127.0.0.7", 0))

            with FromAddress("127.0.0.1", front["lmtp"], timeout=30) as lmtp:
                lmtp.send_message(msg)

            class Imap(imaplib.IMAP4):
                def _create_socket(self, timeout: float | None) -> socket.socket:
                    return socket.create_connection((self.host, self.port), timeout,
                                                    source_address=("127.0.0.8", 0))

            client = Imap("127.0.0.1", front["imap"], timeout=30)
            client.login("ann", "pw")
            typ, data = client.select("INBOX")
            assert typ == "OK" and data == [b"1"]
            client.logout()
            pop = poplib.POP3("127.0.0.1", front["pop3"], timeout=30)
            pop.user("ann")
            pop.pass_("pw")
            assert pop.stat()[0] == 1
            pop.quit()
            for client_address in ("127.0.0.7", "127.0.0.8"):
                wait_for(lambda a=client_address: any(f"from {a}:" in line for line in server.log))  # type: ignore[misc]
            assert not any("not in proxy_from" in line for line in server.log)
            # HAProxy's health checks (with and without a PROXY header) are no warnings
            assert not any("WARNING" in line and "PROXY" in line for line in server.log), server.log
