"""A small, correct LMTP client for tests, benchmarks and examples (blocking sockets).

Unlike ``smtplib.LMTP`` it reads one reply per accepted recipient after DATA (RFC 2033 4.2).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Sequence

Reply = tuple[int, str]


def dot_stuff(data: bytes) -> bytes:
    """Message bytes as sent after DATA: leading dots doubled, CRLF-terminated, then the terminator."""
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


class LMTPError(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(f"{reply[0]} {reply[1]}")
        self.reply = reply


class LMTPClient:
    """``with LMTPClient(host, port) as c: c.lhlo(); c.mail(...); c.rcpt(...); c.data(msg)``."""

    def __init__(self, host: str, port: int, *, timeout: float = 30.0) -> None:
        self.sock: socket.socket | ssl.SSLSocket = socket.create_connection((host, port), timeout=timeout)
        self._buf = b""
        self.greeting = self.read_reply()
        self.capabilities: list[str] = []

    # low level ---------------------------------------------------------------------------------------------
    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _read_line(self) -> bytes:
        while b"\n" not in self._buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by the server")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.rstrip(b"\r")

    def read_reply(self) -> Reply:
        """One (possibly multi-line) reply: (code, text with lines joined by newlines)."""
        lines = []
        while True:
            line = self._read_line()
            if len(line) < 3 or not line[:3].isdigit():
                raise LMTPError((0, f"malformed reply {line[:80]!r}"))
            lines.append(line[4:].decode("utf-8", "replace"))
            if line[3:4] != b"-":
                return int(line[:3]), "\n".join(lines)

    def command(self, line: str | bytes) -> Reply:
        self.send_raw((line.encode() if isinstance(line, str) else line) + b"\r\n")
        return self.read_reply()

    # commands ----------------------------------------------------------------------------------------------
    def lhlo(self, name: str = "client.example") -> Reply:
        reply = self.command(f"LHLO {name}")
        if reply[0] == 250:
            self.capabilities = [c.upper() for c in reply[1].split("\n")[1:]]
        return reply

    def mail(self, sender: str, params: str = "") -> Reply:
        return self.command(f"MAIL FROM:<{sender}>{' ' + params if params else ''}")

    def rcpt(self, address: str) -> Reply:
        return self.command(f"RCPT TO:<{address}>")

    def data(self, message: bytes, accepted: int) -> list[Reply]:
        """Send the message; returns one reply per accepted recipient (or the single DATA refusal)."""
        reply = self.command("DATA")
        if reply[0] != 354:
            return [reply]
        self.send_raw(dot_stuff(message))
        return [self.read_reply() for _ in range(accepted)]

    def rset(self) -> Reply:
        return self.command("RSET")

    def noop(self) -> Reply:
        return self.command("NOOP")

    def quit(self) -> Reply:
        try:
            return self.command("QUIT")
        finally:
            self.close()

    def starttls(self, context: ssl.SSLContext, server_hostname: str = "localhost") -> Reply:
        reply = self.command("STARTTLS")
        if reply[0] == 220:
            self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname)
            self._buf = b""
        return reply

    def send_message(self, sender: str, recipients: Sequence[str], message: bytes,
                     params: str = "") -> tuple[list[Reply], list[Reply]]:
        """Pipelined MAIL (with ``params``), RCPTs and DATA in one write (RFC 2920). Returns (RCPT replies,
        per-recipient replies after DATA); the second list is empty when nothing was accepted."""
        mail = f"MAIL FROM:<{sender}>{' ' + params if params else ''}"
        lines = [mail] + [f"RCPT TO:<{r}>" for r in recipients] + ["DATA"]
        self.send_raw("".join(line + "\r\n" for line in lines).encode())
        mail_reply = self.read_reply()
        rcpt_replies = [self.read_reply() for _ in recipients]
        data_reply = self.read_reply()
        if mail_reply[0] != 250:
            return [mail_reply, *rcpt_replies], []
        if data_reply[0] != 354:
            return rcpt_replies, []
        self.send_raw(dot_stuff(message))
        accepted = sum(1 for r in rcpt_replies if r[0] == 250)
        return rcpt_replies, [self.read_reply() for _ in range(accepted)]

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> LMTPClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
