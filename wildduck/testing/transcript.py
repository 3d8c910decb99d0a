"""Protocol transcripts: what a client sends and, line by line, what the server must answer.

A transcript is a text file:

    # a comment; blank lines are ignored
    @deliver alice                  deliver the following lines (until @end) to alice over LMTP, CRLF line ends
    Subject: hello
    @end
    C: a LOGIN alice pw             a line sent on connection 1 (CRLF appended)
    S: a OK [CAPABILITY {{.*}}] logged in
    C2: b NOOP                      connection 2 (connections open on first use; their greetings are skipped)
    S2: b OK NOOP completed
    C: c NOOP \\                    a trailing backslash sends the line without CRLF (the next C: continues it)

Each ``S:`` line must equal the next line the server sends on that connection, except for ``{{regex}}`` parts,
which must match a regular expression, and ``{{name:regex}}`` parts, which also capture the text as ``name``; later
lines use it as ``{{$name}}``. Expected lines are checked in order, so an unexpected response fails the
transcript at the line where it appears. ``@sleep 0.2`` waits (for IDLE pushes to be given time to not happen).
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
_LINE = re.compile(r"^(C|S)(\d*): ?(.*)$")


class TranscriptFailure(AssertionError):
    pass


@dataclass
class Step:
    kind: str  # "send", "expect", "deliver", "sleep"
    connection: int = 1
    text: str = ""
    lineno: int = 0
    crlf: bool = True
    user: str = ""
    message: bytes = b""


def parse(text: str) -> list[Step]:
    steps: list[Step] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line, lineno = lines[i], i + 1
        i += 1
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("@deliver "):
            body: list[str] = []
            while i < len(lines) and lines[i] != "@end":
                body.append(lines[i])
                i += 1
            if i == len(lines):
                raise ValueError(f"line {lineno}: @deliver without @end")
            i += 1
            steps.append(Step("deliver", user=line.split()[1], message=("\r\n".join(body) + "\r\n").encode(),
                              lineno=lineno))
            continue
        if line.startswith("@sleep "):
            steps.append(Step("sleep", text=line.split()[1], lineno=lineno))
            continue
        m = _LINE.match(line)
        if m is None:
            raise ValueError(f"line {lineno}: not a C:, S: or @ line: {line!r}")
        who, conn, rest = m.group(1), int(m.group(2) or 1), m.group(3)
        if who == "C":
            crlf = not rest.endswith("\\")
            steps.append(Step("send", conn, rest if crlf else rest[:-1], lineno, crlf))
        else:
            steps.append(Step("expect", conn, rest, lineno))
    return steps


def _pattern(expected: str, captured: dict[str, str]) -> re.Pattern[str]:
    out, pos = [], 0
    for m in _PLACEHOLDER.finditer(expected):
        out.append(re.escape(expected[pos:m.start()]))
        inner = m.group(1)
        if inner.startswith("$"):
            out.append(re.escape(captured[inner[1:]]))
        elif re.match(r"^[a-z_]\w*:", inner):
            name, _, rx = inner.partition(":")
            out.append(f"(?P<{name}>{rx})")
        else:
            out.append(f"(?:{inner})")
        pos = m.end()
    out.append(re.escape(expected[pos:]))
    return re.compile("".join(out), re.S)


@dataclass
class _Connection:
    sock: socket.socket
    buf: bytes = b""

    def readline(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line.decode("utf-8", "replace")


@dataclass
class Runner:
    """Runs transcripts against a server at ``address``; ``deliver(user, message)`` delivers mail."""

    address: tuple[str, int]
    deliver: Callable[[str, bytes], None]
    timeout: float = 10.0
    log: list[str] = field(default_factory=list)

    def run(self, text: str, name: str = "transcript") -> None:
        connections: dict[int, _Connection] = {}
        captured: dict[str, str] = {}

        def conn(n: int) -> _Connection:
            if n not in connections:
                c = _Connection(socket.create_connection(self.address, timeout=self.timeout))
                c.readline(self.timeout)  # the greeting
                connections[n] = c
            return connections[n]

        try:
            for step in parse(text):
                if step.kind == "deliver":
                    self.deliver(step.user, step.message)
                elif step.kind == "sleep":
                    time.sleep(float(step.text))
                elif step.kind == "send":
                    data = step.text.encode() + (b"\r\n" if step.crlf else b"")
                    self.log.append(f"C{step.connection}: {step.text}")
                    conn(step.connection).sock.sendall(data)
                else:
                    try:
                        got = conn(step.connection).readline(self.timeout)
                    except (TimeoutError, ConnectionError) as exc:
                        raise TranscriptFailure(f"{name}:{step.lineno}: expected {step.text!r}, got {exc!r}\n"
                                                + "\n".join(self.log[-15:])) from None
                    self.log.append(f"S{step.connection}: {got}")
                    m = _pattern(step.text, captured).fullmatch(got)
                    if m is None:
                        raise TranscriptFailure(f"{name}:{step.lineno}: expected {step.text!r}\n"
                                                f"{' ' * len(name)}  but got  {got!r}\n" + "\n".join(self.log[-15:]))
                    captured.update({k: v for k, v in m.groupdict().items() if v is not None})
        finally:
            for c in connections.values():
                c.sock.close()


def load(path: Path) -> str:
    return path.read_text(encoding="utf-8")
