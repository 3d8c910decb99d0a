"""The PROXY protocol (HAProxy's, versions 1 and 2): a load balancer in front of the listeners tells who the client is.

A TCP load balancer connects to us from its own address; with ``proxy_protocol = true`` on a listener, it first sends
one header naming the client's address, and logs, rate limits and the "plaintext login only from loopback" rule then
see the client, not the balancer. Headers are taken only from the addresses in ``proxy_from`` (anyone else could
claim to be anyone); a connection from elsewhere is closed. A header must arrive within a deadline and is read to
its exact end, never into the client's own bytes (an implicit-TLS client's ClientHello follows it at once).

Version 1 is a text line (``PROXY TCP4 198.51.100.7 192.0.2.1 51234 143\\r\\n``, at most 107 bytes), version 2 a
binary header (a 12-byte signature, version and command, family, length, addresses, optional TLVs that are
skipped). ``UNKNOWN`` (v1) and ``LOCAL`` (v2: the balancer's own health checks) keep the connection's address.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass

import trio

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
#: the longest v1 header, CRLF included (the specification's own limit)
V1_MAX = 107
#: v2 headers longer than this (addresses plus TLVs) are refused
V2_MAX_PAYLOAD = 2048

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ProxyHeaderError(ValueError):
    """The bytes are not a PROXY header (the message says what is wrong)."""


class ClosedBeforeHeader(ProxyHeaderError):
    """The connection closed before its first byte: a balancer's plain TCP health check."""


@dataclass(frozen=True, slots=True)
class ProxiedSource:
    """Who the client is, as the header says; None for UNKNOWN/LOCAL (the connection's own address stands)."""

    address: Address | None
    port: int = 0

    def peer(self, fallback: str) -> str:
        """The ``host:port`` form the sessions use for the client."""
        return fallback if self.address is None else f"{self.address}:{self.port}"


def parse_v1(line: bytes) -> ProxiedSource:
    """A complete v1 header, CRLF included."""
    if len(line) > V1_MAX or not line.startswith(b"PROXY ") or not line.endswith(b"\r\n"):
        raise ProxyHeaderError("not a PROXY v1 line")
    fields = line[:-2].decode("ascii", "replace").split(" ")
    if len(fields) >= 2 and fields[1] == "UNKNOWN":
        return ProxiedSource(None)
    if len(fields) != 6 or fields[1] not in ("TCP4", "TCP6"):
        raise ProxyHeaderError(f"PROXY v1: expected TCP4/TCP6 and four fields, got {len(fields) - 1} fields")
    try:
        source = ipaddress.ip_address(fields[2])
        ipaddress.ip_address(fields[3])
        ports = [int(p) for p in fields[4:6]]
    except ValueError as exc:
        raise ProxyHeaderError(f"PROXY v1: {exc}") from None
    if source.version != (4 if fields[1] == "TCP4" else 6):
        raise ProxyHeaderError(f"PROXY v1: {fields[2]} is no {fields[1]} address")
    if not all(0 <= p <= 65535 and str(p) == f for p, f in zip(ports, fields[4:6], strict=True)):
        raise ProxyHeaderError("PROXY v1: bad port")
    return ProxiedSource(source, ports[0])


def v2_length(head: bytes) -> int:
    """The payload length announced by the first 16 bytes of a v2 header (signature checked)."""
    if len(head) != 16 or not head.startswith(V2_SIGNATURE):
        raise ProxyHeaderError("not a PROXY v2 header")
    if head[12] >> 4 != 2:
        raise ProxyHeaderError(f"PROXY v2: version {head[12] >> 4}")
    length: int = struct.unpack("!H", head[14:16])[0]
    if length > V2_MAX_PAYLOAD:
        raise ProxyHeaderError(f"PROXY v2: {length} bytes of addresses and TLVs")
    return length


def parse_v2(head: bytes, payload: bytes) -> ProxiedSource:
    """A v2 header: its first 16 bytes and the payload they announce."""
    if len(payload) != v2_length(head):
        raise ProxyHeaderError("PROXY v2: payload length differs from its header")
    command, family = head[12] & 0x0F, head[13]
    if command == 0x0:  # LOCAL: the balancer speaking for itself
        return ProxiedSource(None)
    if command != 0x1:
        raise ProxyHeaderError(f"PROXY v2: command {command}")
    if family == 0x11:  # TCP over IPv4
        if len(payload) < 12:
            raise ProxyHeaderError("PROXY v2: short IPv4 addresses")
        return ProxiedSource(ipaddress.IPv4Address(payload[0:4]), struct.unpack("!H", payload[8:10])[0])
    if family == 0x21:  # TCP over IPv6
        if len(payload) < 36:
            raise ProxyHeaderError("PROXY v2: short IPv6 addresses")
        return ProxiedSource(ipaddress.IPv6Address(payload[0:16]), struct.unpack("!H", payload[32:34])[0])
    if family == 0x00:  # UNSPEC
        return ProxiedSource(None)
    raise ProxyHeaderError(f"PROXY v2: family 0x{family:02x} is not TCP")


async def _exactly(sock: trio.socket.SocketType, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = await sock.recv(n - len(data))
        if not chunk:
            raise ProxyHeaderError("connection closed inside the PROXY header")
        data += chunk
    return data


async def read_header(sock: trio.socket.SocketType) -> ProxiedSource:
    """Read one header (v1 or v2) from ``sock``, consuming exactly its bytes. The caller sets the deadline."""
    first = await sock.recv(1)
    if not first:
        raise ClosedBeforeHeader("closed before a PROXY header")
    start = first + await _exactly(sock, 7)
    if start == V2_SIGNATURE[:8]:
        head = start + await _exactly(sock, 8)
        return parse_v2(head, await _exactly(sock, v2_length(head)))
    if not start.startswith(b"PROXY "):
        raise ProxyHeaderError("no PROXY header where one was expected")
    line = start
    while b"\r\n" not in line:
        if len(line) >= V1_MAX:
            raise ProxyHeaderError(f"PROXY v1 line longer than {V1_MAX} bytes")
        # the rest is usually in the socket already: peek for the end, then take exactly that much
        ahead = await sock.recv(V1_MAX - len(line), socket.MSG_PEEK)
        if not ahead:
            raise ProxyHeaderError("connection closed inside the PROXY header")
        end = (line + ahead).find(b"\r\n", len(line) - 1)
        line += await _exactly(sock, len(ahead) if end < 0 else end + 2 - len(line))
    return parse_v1(line)


@dataclass(frozen=True, slots=True)
class ProxyPolicy:
    """A listener's PROXY settings: the balancers allowed to send headers, and how long a header may take."""

    sources: tuple[Network, ...]
    timeout: float = 10.0

    @classmethod
    def of(cls, sources: Iterable[str], timeout: float = 10.0) -> ProxyPolicy:
        """From addresses or networks (``10.0.0.0/8``, ``::1``); ValueError naming a bad one."""
        return cls(tuple(ipaddress.ip_network(s.strip(), strict=False) for s in sources), timeout)

    def trusts(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.sources)
