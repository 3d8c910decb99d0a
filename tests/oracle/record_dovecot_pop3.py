"""Record Dovecot's POP3 answers as fixtures: the oracle of tests/protocols/pop3/test_dovecot_oracle.py.

Run by hand, from the repository root, after installing Debian's Dovecot (``apt-get install dovecot-imapd
dovecot-pop3d``; the package's own service is not used and need not run)::

    .venv/bin/python -m tests.oracle.record_dovecot_pop3               # record every conversation
    .venv/bin/python -m tests.oracle.record_dovecot_pop3 dele-rset     # only the conversations named

It starts a private Dovecot in a temporary directory serving IMAP and POP3 (``wildduck.testing.dovecot`` with
``protocols="imap pop3"``: its own configuration, a maildir, one passwd-file user, plaintext USER/PASS and AUTH
PLAIN on free loopback ports, no SSL, logs in the temporary directory; nothing of the system's Dovecot or other
services is touched). Before every conversation it empties the user's INBOX and APPENDs the message set (byte for
byte, over ``imaplib``'s connection, in the order of their names), then holds the conversation: one or more POP3
sessions, one after the other, each a list of command lines sent one at a time (a command is sent only once the
answer to the one before is read; a ``pipelined`` session sends its first ``skip`` lines so and then all the others
in one write), and writes Dovecot's answers, every byte kept.

The messages (``MESSAGES`` below, written as ``tests/oracle/fixtures/pop3/NN-name.eml``) cover the edge cases of
RETR and TOP: lines that start with ".", a message without a blank line after its header, one without a final
CRLF, one that is a header line without any line end, an empty body, blank lines that start the body, mixed line
endings, long lines, 8-bit text, a multipart message with a base64 attachment. The conversations
(``CONVERSATIONS``) exercise every command in both states, commands in the wrong state, bad and missing arguments,
unknown commands, out-of-range message numbers, DELE/RSET/QUIT sequences (checked from a second session), TOP with
0, 1 and many lines, LIST/UIDL with and without argument, CAPA before and after login, AUTH PLAIN with and without
an initial response, failed logins, the limits on bad commands, over-long lines, bytes that are not printable
ASCII, pipelining, and QUIT in both states. For each conversation ``NAME`` it writes
``tests/oracle/fixtures/pop3/NAME.json``::

    {"dovecot": "<dovecot --version>", "name": "NAME", "about": "...", "messages": ["01-plain.eml", ...],
     "sessions": [{"pipelined": false, "skip": 0, "greeting": "+OK ...\\r\\n",
                   "exchanges": [{"command": "STAT", "response": "+OK 13 9131\\r\\n"}, ...],
                   "eof": true, "trailing": ""}]}

``response`` is everything the server sent for the command (the first line and, for a multi-line answer, every
line up to the terminating ``.``), as bytes decoded as latin-1; ``""`` means the server had closed the connection.
A command is sent with CRLF appended unless it already ends with LF (then it is sent as written). ``eof`` says
whether the server closed the connection after the last answer (within a few seconds), ``trailing`` is anything
it sent after that last answer. A session whose last command is not QUIT is dropped by the client (no UPDATE
state). The conversation client (``talk``) is shared with the test, which holds the same conversations with our
server and compares.
"""

from __future__ import annotations

import base64
import contextlib
import imaplib
import json
import random
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.oracle import wire
from wildduck.testing import dovecot

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures" / "pop3"
DOVECOT = dovecot.DOVECOT
USER, PASSWORD = "oracle", "oracle-pw"

#: seconds to wait for an answer before giving up (Dovecot delays a failed login by two seconds)
ANSWER_TIMEOUT = 15.0


def plain(authz: str, user: str, password: str) -> str:
    """A SASL PLAIN response, base64."""
    return base64.b64encode(f"{authz}\0{user}\0{password}".encode()).decode()


GOOD_PLAIN = plain("", USER, PASSWORD)
LOGIN = [f"USER {USER}", f"PASS {PASSWORD}"]


# --- the messages ------------------------------------------------------------------------------------------------

def _attachment_message() -> bytes:
    rng = random.Random(1939)
    payload = bytes(rng.randrange(256) for _ in range(3000))
    b64 = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    text = b"".join(b"Line %02d of the text part.\r\n" % i for i in range(1, 21))
    return (b"From: sender@example.net\r\nTo: oracle@example.com\r\nSubject: with an attachment\r\n"
            b"Date: Mon, 1 Dec 2025 10:00:00 +0000\r\nMessage-ID: <att@example.net>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\nThis is a multipart message.\r\n\r\n--b1\r\n"
            b"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + text + b"\r\n--b1\r\n"
            b"Content-Type: application/octet-stream; name=data.bin\r\nContent-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename=data.bin\r\n\r\n" + b64 + b"\r\n--b1--\r\n")


_HEAD = b"From: a@example.com\r\nTo: oracle@example.com\r\n"

#: name → exact bytes APPENDed; the order of the names is the order of the maildrop (message number 1 first)
MESSAGES: dict[str, bytes] = {
    "01-plain": _HEAD + b"Subject: plain\r\nDate: Mon, 1 Dec 2025 09:00:00 +0000\r\n\r\n"
                + b"".join(b"body line %d\r\n" % i for i in range(1, 11)),
    "02-dot-lines": _HEAD + b"Subject: lines starting with dots\r\n\r\n.\r\n..\r\n.leading dot\r\n"
                    b"..two leading dots\r\n .space then dot\r\nmiddle . dot\r\n...\r\n. \r\n.\r\n",
    "03-attachment": _attachment_message(),
    "04-no-body-separator": _HEAD + b"Subject: header only, no blank line\r\n",
    "05-no-final-crlf": _HEAD + b"Subject: no final CRLF\r\n\r\nfirst line\r\nsecond line\r\nthe last line has no CRLF",
    "06-header-no-newline": b"Subject: a header line without any line end",
    "07-empty-body": _HEAD + b"Subject: empty body\r\n\r\n",
    "08-blank-lines-first": _HEAD + b"Subject: blank lines start the body\r\n\r\n\r\n\r\nthird body line\r\n"
                            b"fourth\r\n",
    "09-mixed-line-endings": b"From: a@example.com\nTo: oracle@example.com\r\nSubject: mixed line endings\n\n"
                             b"line with LF\nline with CRLF\r\n.dot after LF\nlast\n",
    "10-long-lines": _HEAD + b"Subject: long lines\r\n\r\n" + b"x" * 998 + b"\r\n" + b"y" * 2500 + b"\r\n"
                     + b".z" * 600 + b"\r\nshort\r\n",
    "11-eight-bit": _HEAD + "Subject: =?utf-8?q?=C3=A9t=C3=A9?=\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    "Content-Transfer-Encoding: 8bit\r\n\r\nÉté à Genève, ça va.\r\n.ñ line\r\n".encode()
                    + b"latin-1 \xe9t\xe9\r\n",
    "12-blank-header": b"\r\nthe message starts with a blank line: its header is empty\r\nsecond\r\n",
    "13-folded-header": _HEAD + b"Subject: a folded\r\n header field\r\nX-Long: one\r\n\ttwo\r\n\tthree\r\n\r\n"
                        b"body 1\r\nbody 2\r\n",
}

N = len(MESSAGES)


# --- the conversations -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Session:
    """One POP3 connection: its command lines (the last not QUIT: the client drops the connection)."""

    commands: list[str]
    pipelined: bool = False  # every line after the first ``skip`` ones is sent in one write
    skip: int = 0


@dataclass(frozen=True)
class Conversation:
    name: str
    about: str
    sessions: list[Session] = field(default_factory=list)


def _one(name: str, about: str, commands: list[str]) -> Conversation:
    return Conversation(name, about, [Session(commands)])


_NUMBERS = [str(i) for i in range(1, N + 1)]
CONVERSATIONS: list[Conversation] = [
    _one("capa-before-login", "CAPA in the AUTHORIZATION state", ["CAPA", "QUIT"]),
    _one("quit-before-login", "QUIT in the AUTHORIZATION state: no UPDATE state", ["QUIT"]),
    # Dovecot's login process ends the session at the next command after three bad ones (even QUIT gets "-ERR Too
    # many invalid bad commands"): these sessions stay at two before login (too-many-bad-commands-* test the limits)
    Conversation("transaction-commands-before-login", "every TRANSACTION command in the AUTHORIZATION state",
                 [Session(["STAT", "LIST", "QUIT"]), Session(["LIST 1", "UIDL", "QUIT"]),
                  Session(["UIDL 1", "RETR 1", "QUIT"]), Session(["TOP 1 0", "DELE 1", "QUIT"]),
                  Session(["RSET", "NOOP", "CAPA", *LOGIN, "STAT", "QUIT"])]),
    Conversation("unknown-commands", "unknown commands before and after login",
                 [Session(["FOO", "XYZZY 1 2", "QUIT"]),
                  Session(["LAST", "APOP oracle 0123456789abcdef0123456789abcdef", "QUIT"]),
                  Session([*LOGIN, "FOO", "BAR baz", "LAST", "APOP x", "STAT", "QUIT"])]),
    _one("too-many-bad-commands-before-login", "unknown commands in a row before login",
         ["FOO", "FOO", "FOO", "FOO", "FOO", "QUIT"]),
    _one("too-many-bad-commands-after-login", "unknown commands in a row after login",
         [*LOGIN, *["FOO"] * 22, "QUIT"]),
    _one("empty-lines", "an empty line and a line of spaces before and after login",
         ["", "   ", *LOGIN, "", "   ", "STAT", "QUIT"]),
    _one("lowercase-commands", "command names are case-insensitive (RFC 1939 3)",
         [f"user {USER}", f"pass {PASSWORD}", "stat", "list 1", "uidl 1", "Retr 1", "tOp 2 1", "dele 3",
          "rset", "noop", "capa", "quit"]),
    _one("lf-line-ends", "commands that end with a bare LF",
         [f"USER {USER}\n", f"PASS {PASSWORD}\n", "STAT\n", "LIST 1\n", "QUIT\n"]),
    _one("user-pass", "USER/PASS, then QUIT in the TRANSACTION state", [*LOGIN, "STAT", "QUIT"]),
    _one("pass-before-user", "PASS without USER, USER without a name, then a good login",
         [f"PASS {PASSWORD}", "USER", *LOGIN, "STAT", "QUIT"]),
    _one("three-failed-logins", "three wrong passwords in a row, then the right one",
         [f"USER {USER}", "PASS wrong1", f"USER {USER}", "PASS wrong2", f"AUTH PLAIN {plain('', USER, 'wrong3')}",
          *LOGIN, "STAT", "QUIT"]),
    _one("wrong-password", "a wrong password, then the right one",
         [f"USER {USER}", "PASS wrong", "STAT", *LOGIN, "STAT", "QUIT"]),
    _one("unknown-user", "a user that does not exist", ["USER nobody", "PASS whatever", "STAT", *LOGIN, "QUIT"]),
    _one("user-twice", "USER given twice: the second name counts",
         ["USER nobody", f"USER {USER}", f"PASS {PASSWORD}", "STAT", "QUIT"]),
    _one("user-then-other-command", "a command between USER and PASS",
         [f"USER {USER}", "CAPA", f"PASS {PASSWORD}", "STAT", "QUIT"]),
    _one("pass-empty", "PASS without a password", [f"USER {USER}", "PASS", *LOGIN, "QUIT"]),
    _one("auth-plain-initial-response", "AUTH PLAIN with an initial response (RFC 5034)",
         [f"AUTH PLAIN {GOOD_PLAIN}", "STAT", "QUIT"]),
    _one("auth-plain-continuation", "AUTH PLAIN, the credentials after the empty challenge",
         ["AUTH PLAIN", GOOD_PLAIN, "STAT", "QUIT"]),
    _one("auth-plain-lowercase", "the mechanism name is case-insensitive", [f"auth plain {GOOD_PLAIN}", "QUIT"]),
    _one("auth-plain-authzid", "an authorization identity equal to the user",
         [f"AUTH PLAIN {plain(USER, USER, PASSWORD)}", "STAT", "QUIT"]),
    _one("auth-plain-wrong-password", "AUTH PLAIN with a wrong password, then a good one",
         [f"AUTH PLAIN {plain('', USER, 'wrong')}", f"AUTH PLAIN {GOOD_PLAIN}", "QUIT"]),
    _one("auth-plain-malformed", "AUTH PLAIN answers that are not base64 or lack fields; cancelling with *",
         ["AUTH PLAIN !!!notbase64", f"AUTH PLAIN {base64.b64encode(b'no-nul-bytes').decode()}", "AUTH PLAIN",
          "*", *LOGIN, "QUIT"]),
    _one("auth-without-mechanism", "AUTH without an argument", ["AUTH", *LOGIN, "QUIT"]),
    _one("auth-plain-empty", "an empty initial response (=), a challenge answered with something not base64",
         ["AUTH PLAIN =", "AUTH PLAIN", "!!!", *LOGIN, "QUIT"]),
    _one("auth-unknown-mechanism", "AUTH with a mechanism the server does not offer",
         ["AUTH X-UNKNOWN", "AUTH CRAM-MD5x", f"AUTH PLAIN {GOOD_PLAIN}", "QUIT"]),
    _one("auth-other-authzid", "an authorization identity other than the user (no master users here)",
         [f"AUTH PLAIN {plain('someone-else', USER, PASSWORD)}", *LOGIN, "QUIT"]),
    _one("capa-after-login", "CAPA in the TRANSACTION state", [*LOGIN, "CAPA", "QUIT"]),
    _one("authorization-commands-after-login", "USER, PASS, AUTH, STLS in the TRANSACTION state",
         [*LOGIN, f"USER {USER}", f"PASS {PASSWORD}", f"AUTH PLAIN {GOOD_PLAIN}", "AUTH", "STLS", "STAT", "QUIT"]),
    _one("stls-unavailable", "STLS on a server without TLS", ["STLS", *LOGIN, "QUIT"]),
    _one("stat-list-uidl", "STAT, LIST and UIDL with and without argument",
         [*LOGIN, "STAT", "LIST", "UIDL", "LIST 1", "UIDL 1", f"LIST {N}", f"UIDL {N}", "LIST 5", "UIDL 5",
          "QUIT"]),
    _one("list-uidl-bad-arguments", "LIST and UIDL with out-of-range and malformed message numbers",
         [*LOGIN, "LIST 0", f"LIST {N + 1}", "LIST 99999", "LIST -1", "LIST abc", "LIST 1x", "LIST 01",
          "LIST +1", "LIST 4294967297", "LIST 1 2", "LIST  1", "LIST 1 ", "UIDL 0", f"UIDL {N + 1}", "UIDL x",
          "UIDL 1 2", "STAT", "QUIT"]),
    _one("retr-every-message", "RETR of every message (dot-stuffing, line ends, no final CRLF)",
         [*LOGIN, *[f"RETR {n}" for n in _NUMBERS], "QUIT"]),
    _one("retr-bad-arguments", "RETR without, with out-of-range and with malformed message numbers",
         [*LOGIN, "RETR", "RETR 0", f"RETR {N + 1}", "RETR x", "RETR -2", "RETR 1 2", "STAT", "QUIT"]),
    _one("top-zero-lines", "TOP n 0 of every message: the header and the blank line",
         [*LOGIN, *[f"TOP {n} 0" for n in _NUMBERS], "QUIT"]),
    _one("top-one-line", "TOP n 1 of every message",
         [*LOGIN, *[f"TOP {n} 1" for n in _NUMBERS], "QUIT"]),
    _one("top-many-lines", "TOP with 3, 10, 25 lines and more lines than the message has",
         [*LOGIN, *[f"TOP {n} {k}" for n in ("1", "2", "3", "5", "8", "9", "12") for k in ("3", "10")],
          "TOP 3 25", "TOP 3 1000", "TOP 5 1000", "TOP 10 1", "TOP 10 2", "QUIT"]),
    _one("top-bad-arguments", "TOP with missing, malformed and out-of-range arguments",
         [*LOGIN, "TOP", "TOP 1", "TOP 1 x", "TOP x 1", "TOP 0 1", f"TOP {N + 1} 1", "TOP 1 -1", "TOP 1 1 1",
          "TOP 1 4294967296", "TOP 1 99999999999999999999", "TOP 1  1",
          "STAT", "QUIT"]),
    _one("noop-rset-stat-arguments", "NOOP, RSET, STAT, CAPA, QUIT with an argument they do not take",
         [*LOGIN, "NOOP", "NOOP x", "RSET", "RSET x", "STAT x", "CAPA x", "QUIT x"]),
    _one("dele-rset", "DELE, commands on a deleted message, RSET undoes, QUIT without deletions",
         [*LOGIN, "DELE 1", "DELE 1", "STAT", "LIST", "UIDL", "LIST 1", "UIDL 1", "RETR 1", "TOP 1 0", "LIST 2",
          "RSET", "STAT", "LIST 1", "RETR 1", "DELE 2", "RSET", "QUIT"]),
    _one("dele-bad-arguments", "DELE without, with out-of-range and with malformed message numbers",
         [*LOGIN, "DELE", "DELE 0", f"DELE {N + 1}", "DELE x", "DELE 1 2", "STAT", "QUIT"]),
    Conversation("dele-quit", "DELE then QUIT removes the messages: a second session sees the rest, renumbered",
                 [Session([*LOGIN, "UIDL", "DELE 1", "DELE 3", f"DELE {N}", "STAT", "QUIT"]),
                  Session([*LOGIN, "STAT", "LIST", "UIDL", "RETR 1", "RETR 2", "QUIT"])]),
    Conversation("dele-without-quit", "a session dropped without QUIT changes nothing",
                 [Session([*LOGIN, "DELE 1", "DELE 2", "STAT"]),
                  Session([*LOGIN, "STAT", "UIDL", "QUIT"])]),
    Conversation("dele-every-message", "every message deleted: empty listings, then an empty maildrop",
                 [Session([*LOGIN, *[f"DELE {n}" for n in _NUMBERS], "STAT", "LIST", "UIDL", "RETR 1", "QUIT"]),
                  Session([*LOGIN, "STAT", "LIST", "UIDL", "LIST 1", "UIDL 1", "RETR 1", "TOP 1 0", "DELE 1",
                           "RSET", "QUIT"])]),
    Conversation("uidl-stable", "UIDL is the same in the next session; RETR does not change it",
                 [Session([*LOGIN, "UIDL", "RETR 2", "QUIT"]), Session([*LOGIN, "UIDL", "UIDL 2", "QUIT"])]),
    Conversation("pipelined", "commands pipelined after the login (RFC 2449 6.6)",
                 [Session([*LOGIN, "STAT", "LIST", "UIDL 2", "RETR 2", "TOP 3 2", "DELE 1", "LIST 1", "RSET",
                           "NOOP", "QUIT"], pipelined=True, skip=2)]),
    Conversation("pipelined-login", "the login and the commands after it in one write",
                 [Session([*LOGIN, "STAT", "LIST 1", "RETR 6", "QUIT"], pipelined=True)]),
    _one("odd-bytes-in-commands", "non-ASCII look-alikes, a tab for a space, a NUL byte",
         [*LOGIN, "\u017ftat", "LIST \u0661", "LIST\t1", "NOOP\x00", "STAT", "QUIT"]),
    Conversation("long-command-lines", "lines longer than RFC 2449 4 asks servers to take (255 octets)",
                 [Session(["USER " + "a" * 300, f"USER {USER}", f"PASS {PASSWORD}", "STAT", "QUIT"]),
                  Session([*LOGIN, "LIST " + "1" * 300, "NOOP " + "x" * 5000, "STAT", "QUIT"])]),
    _one("utf8", "UTF8 (RFC 6856) before and after login", ["UTF8", *LOGIN, "UTF8", "STAT", "QUIT"]),
]


# --- the client --------------------------------------------------------------------------------------------------

def multiline(command: str, first_line: bytes) -> bool:
    """Whether ``first_line`` (the answer's first line) opens a multi-line answer to ``command`` (RFC 1939, 2449,
    5034): +OK to CAPA, RETR, TOP, and to LIST, UIDL and AUTH without an argument."""
    if not first_line.startswith(b"+OK"):
        return False
    name, _, arg = command.strip().partition(" ")
    name = name.upper()
    return name in ("CAPA", "RETR", "TOP") or (name in ("LIST", "UIDL", "AUTH") and not arg.strip())


class Client:
    """A raw POP3 connection that reads whole answers."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=ANSWER_TIMEOUT)
        self.buf = b""
        self.eof = False

    def close(self) -> None:
        self.sock.close()

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def line(self) -> bytes:
        """The next line with its CRLF; b"" at EOF (an incomplete last line is returned as it is)."""
        while b"\r\n" not in self.buf:
            if self.eof or not self._fill():
                rest, self.buf = self.buf, b""
                return rest
        at = self.buf.index(b"\r\n") + 2
        out, self.buf = self.buf[:at], self.buf[at:]
        return out

    def answer(self, command: str) -> bytes:
        first = self.line()
        out = first
        if multiline(command, first):
            while True:
                line = self.line()
                out += line
                if line in (b".\r\n", b""):
                    break
        return out

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            self.eof = True

    def rest(self, timeout: float) -> tuple[bool, bytes]:
        """Whether the server closes the connection within ``timeout`` seconds, and what it sent until then."""
        self.sock.settimeout(timeout)
        try:
            while not self.eof and self._fill():
                pass
        except OSError:
            pass
        rest, self.buf = self.buf, b""
        return self.eof, rest


def wire_form(command: str) -> bytes:
    return command.encode("utf-8") + (b"" if command.endswith("\n") else b"\r\n")


def talk(host: str, port: int, session: Session, *, eof_timeout: float = 5.0) -> dict[str, object]:
    """Hold one session; the record of it (see the module docstring)."""
    c = Client(host, port)
    try:
        greeting = c.line()
        exchanges: list[dict[str, str]] = []
        if session.pipelined:
            head, tail = session.commands[:session.skip], session.commands[session.skip:]
            for command in head:
                c.send(wire_form(command))
                exchanges.append({"command": command, "response": c.answer(command).decode("latin-1")})
            c.send(b"".join(wire_form(command) for command in tail))
            for command in tail:
                exchanges.append({"command": command, "response": c.answer(command).decode("latin-1")})
        else:
            for command in session.commands:
                if not c.eof:
                    c.send(wire_form(command))
                exchanges.append({"command": command, "response": "" if c.eof else
                                  c.answer(command).decode("latin-1")})
        quits = session.commands[-1].strip().upper().startswith("QUIT")
        eof, trailing = c.rest(eof_timeout) if quits or c.eof else c.rest(0.3)
    finally:
        c.close()
    return {"pipelined": session.pipelined, "skip": session.skip, "greeting": greeting.decode("latin-1"),
            "exchanges": exchanges, "eof": eof, "trailing": trailing.decode("latin-1")}


# --- recording ---------------------------------------------------------------------------------------------------

def fill_inbox(m: imaplib.IMAP4, messages: dict[str, bytes]) -> None:
    """Empty INBOX, then APPEND ``messages`` in order (exact bytes)."""
    assert wire.command(m, b"SELECT INBOX").status == "OK"
    assert wire.command(m, b"STORE 1:* +FLAGS.SILENT (\\Deleted)").status in ("OK", "BAD", "NO")
    assert wire.command(m, b"EXPUNGE").status == "OK"
    assert wire.command(m, b"CLOSE").status == "OK"
    for name, message in messages.items():
        appended = wire.append(m, "INBOX", message)
        assert appended.status == "OK", (name, appended.line)


@contextlib.contextmanager
def private_dovecot() -> Iterator[dovecot.PrivateDovecot]:
    tmp = Path(tempfile.mkdtemp(prefix="dovecot-pop3-oracle-"))
    try:
        with dovecot.private_dovecot(tmp, USER, PASSWORD, binary=DOVECOT, protocols="imap pop3") as instance:
            yield instance
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_complete(session: dict[str, object], name: str) -> None:
    """Every answer read was whole: nothing is left over (a wrong guess of multi-line would leave some)."""
    if session["trailing"]:
        raise AssertionError(f"{name}: bytes after the last answer: {session['trailing']!r}")


def main(argv: list[str]) -> int:
    version = dovecot.version(DOVECOT)
    chosen = CONVERSATIONS
    if argv:
        unknown = set(argv) - {c.name for c in CONVERSATIONS}
        if unknown:
            print(f"unknown conversations: {sorted(unknown)}", file=sys.stderr)
            return 2
        chosen = [c for c in CONVERSATIONS if c.name in argv]
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name, message in MESSAGES.items():
        (FIXTURES / f"{name}.eml").write_bytes(message)
    with private_dovecot() as instance:
        assert instance.pop3_port is not None
        m = imaplib.IMAP4("127.0.0.1", instance.port)
        m.login(USER, PASSWORD)
        for conversation in chosen:
            fill_inbox(m, MESSAGES)
            sessions: list[dict[str, object]] = []
            exchanges = 0
            for session in conversation.sessions:
                recorded = talk("127.0.0.1", instance.pop3_port, session)
                check_complete(recorded, conversation.name)
                sessions.append(recorded)
                exchanges += len(session.commands)
                time.sleep(0.2)  # the server finishes the session (UPDATE) before the next one logs in
            result = {"dovecot": version, "name": conversation.name, "about": conversation.about,
                      "messages": [f"{name}.eml" for name in MESSAGES], "sessions": sessions}
            (FIXTURES / f"{conversation.name}.json").write_text(json.dumps(result, indent=1, ensure_ascii=True)
                                                                + "\n")
            print(f"{conversation.name}: {len(sessions)} session(s), {exchanges} exchanges")
        m.logout()
    print(f"{len(chosen)} conversations recorded from Dovecot {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
