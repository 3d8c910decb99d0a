"""Record Dovecot's NOTIFY (RFC 5465) answers: the oracle of tests/sessions/test_imap_notify.py.

Run by hand, from the repository root, after installing Debian's Dovecot (``apt-get install dovecot-imapd``; the
package's own service is not used and need not run)::

    .venv/bin/python -m tests.oracle.record_dovecot_notify

It starts a private Dovecot in a temporary directory (``wildduck.testing.dovecot``), runs every scenario of
``SCENARIOS`` over two connections of the same user (A, which sets NOTIFY, and B, which changes things), and writes
``tests/oracle/notify.json``::

    {"dovecot": "<dovecot --version>", "scenarios": {"<name>": [{"conn": "A", "command": "...",
        "status": "OK", "untagged": [...]}, {"pushed": [...]}, ...]}}

A step is a command on A or B (its untagged responses and the status of its tagged response), or ``PUSH``: what A
received unsolicited within :data:`QUIET` seconds. Lines are normalized by :func:`normalize` (UIDVALIDITY, MODSEQ
and MAILBOXID values become ``n``; of a status response only the status and the response code's name are kept:
the texts, and what follows BADEVENT, are each server's own). The scenarios use the mailboxes they create (under
``work``) and INBOX, never the default mailboxes wildduck gives every user. The test runs the same scenarios
against wildduck (:func:`run`, shared) and compares.
"""

from __future__ import annotations

import json
import re
import socket
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ANSWERS = HERE / "notify.json"
USER, PASSWORD = "oracle", "oracle-pw"
#: seconds without a byte after which a push is taken to be over (Dovecot's are not instant)
QUIET = 3.0
PUSH = "PUSH"
MESSAGE = "From: ann@example.net\r\nTo: oracle@example.com\r\nSubject: hello\r\n\r\nhello\r\n"

#: name → steps: ("A" or "B", command) or PUSH
SCENARIOS: dict[str, list[Any]] = {
    "selected": [
        ("B", "CREATE work"),
        ("A", "SELECT INBOX"),
        ("A", "NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge FlagChange))"),
        ("B", "SELECT INBOX"),
        ("B", f"APPEND INBOX {{{len(MESSAGE)}+}}\r\n{MESSAGE}"), PUSH,
        ("B", "STORE 1 +FLAGS (\\Flagged)"), PUSH,
        ("B", "STORE 1 +FLAGS (\\Deleted)"), PUSH,
        ("B", "EXPUNGE"), PUSH,
        ("A", "NOTIFY NONE"),
        ("B", f"APPEND INBOX {{{len(MESSAGE)}+}}\r\n{MESSAGE}"), PUSH,
        ("A", "NOOP"),
    ],
    "status": [
        ("B", "CREATE work"),
        ("B", "CREATE work2"),
        ("A", "NOTIFY SET STATUS (mailboxes (work) (MessageNew MessageExpunge))"),
        ("B", f"APPEND work {{{len(MESSAGE)}+}}\r\n{MESSAGE}"), PUSH,
        ("B", f"APPEND work2 {{{len(MESSAGE)}+}}\r\n{MESSAGE}"), PUSH,
        ("A", "NOTIFY SET STATUS (mailboxes (work work2) (MessageNew MessageExpunge FlagChange))"),
        ("B", "SELECT work2"),
        ("B", "STORE 1 +FLAGS (\\Seen)"), PUSH,
        ("B", "STORE 1 +FLAGS (\\Deleted)"), PUSH,
        ("B", "EXPUNGE"), PUSH,
    ],
    "names": [
        ("A", "NOTIFY SET (mailboxes (workx worky) (MailboxName SubscriptionChange))"),
        ("B", "CREATE workx"), PUSH,
        ("B", "RENAME workx worky"), PUSH,
        ("B", "SUBSCRIBE worky"), PUSH,
        ("B", "UNSUBSCRIBE worky"), PUSH,
        ("B", "DELETE worky"), PUSH,
        ("B", "CREATE other"), PUSH,
    ],
    "errors": [
        ("A", "NOTIFY SET (selected (MessageNew))"),
        ("A", "NOTIFY SET (selected (MessageExpunge))"),
        ("A", "NOTIFY SET (personal (FlagChange))"),
        ("A", "NOTIFY SET (inboxes (MessageNew (UID) MessageExpunge))"),
        ("A", "NOTIFY SET (personal (ServerMetadataChange))"),
        ("A", "NOTIFY SET (personal (MailboxMetadataChange))"),
        ("A", "NOTIFY SET (selected (MessageNew MessageExpunge AnnotationChange))"),
        ("A", "NOTIFY SET (personal (NoSuchEvent))"),
        ("A", "NOTIFY SET (nosuchfilter (MessageNew MessageExpunge))"),
        ("A", "NOTIFY SET"),
        ("A", "NOTIFY FOO"),
        ("A", "NOTIFY SET (personal NONE)"),
        ("A", "NOTIFY SET (selected-delayed (MessageNew MessageExpunge)) (inboxes NONE)"),
        ("A", "NOTIFY NONE"),
    ],
}

_VALUE = re.compile(r"(UIDVALIDITY|HIGHESTMODSEQ|MODSEQ) \(?\d+")
_MAILBOXID = re.compile(r"MAILBOXID \([^)]*\)")
_STATUS = re.compile(r"^(\* |)(OK|NO|BAD)( \[([A-Z-]+)[^\]]*\])?.*$")


def normalize(line: str) -> str:
    """A response as compared (see the module's description)."""
    m = _STATUS.match(line)
    if m is not None:
        return f"{m.group(1)}{m.group(2)}" + (f" [{m.group(4)}]" if m.group(4) else "")
    return _MAILBOXID.sub("MAILBOXID (n)", _VALUE.sub(lambda v: v.group(0).split(" ")[0] + " n", line))


class _Conn:
    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=10)
        self.buf = b""
        self.n = 0
        self.line()  # the greeting

    def line(self, timeout: float = 10.0) -> str | None:
        self.sock.settimeout(timeout)
        while b"\r\n" not in self.buf:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not data:
                raise ConnectionError("closed")
            self.buf += data
        raw, self.buf = self.buf.split(b"\r\n", 1)
        text = raw.decode("utf-8", "replace")
        literal = re.search(r"\{(\d+)\}$", text)
        if literal is not None:  # a literal's bytes, and the rest of the response, on one line
            size = int(literal.group(1))
            while len(self.buf) < size:
                self.buf += self.sock.recv(65536)
            body, self.buf = self.buf[:size], self.buf[size:]
            text += body.decode("utf-8", "replace").replace("\r\n", "\\r\\n") + (self.line() or "")
        return text

    def command(self, text: str) -> dict[str, Any]:
        self.n += 1
        tag = f"t{self.n}"
        self.sock.sendall(f"{tag} {text}\r\n".encode())
        untagged: list[str] = []
        while True:
            got = self.line()
            if got is None:
                raise TimeoutError(text)
            if got.startswith(tag + " "):
                return {"command": text.split("\r\n")[0], "status": normalize(got[len(tag) + 1:]),
                        "untagged": [normalize(u) for u in untagged]}
            untagged.append(got)

    def pushed(self, quiet: float) -> list[str]:
        out = []
        while (got := self.line(quiet)) is not None:
            out.append(normalize(got))
        return out


def run(address: tuple[str, int], user: str, password: str, *,
        quiet: float = QUIET) -> dict[str, list[dict[str, Any]]]:
    """Every scenario, each on two fresh connections of ``user``: the steps' answers (a push is over after
    ``quiet`` seconds without a byte)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name, steps in SCENARIOS.items():
        conns = {"A": _Conn(address), "B": _Conn(address)}
        for c in conns.values():
            c.command(f"LOGIN {user} {password}")
        answers: list[dict[str, Any]] = []
        for step in steps:
            if step == PUSH:
                answers.append({"pushed": conns["A"].pushed(quiet)})
            else:
                answers.append({"conn": step[0], **conns[step[0]].command(step[1])})
        for c in conns.values():
            c.sock.close()
        cleaner = _Conn(address)  # a fresh connection: B may have selected what it deletes
        cleaner.command(f"LOGIN {user} {password}")
        for mailbox in ("work", "work2", "other"):
            cleaner.command(f"DELETE {mailbox}")
        cleaner.sock.close()
        out[name] = answers
    return out


def main() -> None:
    import tempfile

    from wildduck.testing.dovecot import private_dovecot, version

    with tempfile.TemporaryDirectory() as tmp, private_dovecot(Path(tmp), USER, PASSWORD) as dovecot:
        scenarios = run(("127.0.0.1", dovecot.port), USER, PASSWORD)
    ANSWERS.write_text(json.dumps({"dovecot": version(), "scenarios": scenarios}, indent=1) + "\n")
    print(f"wrote {ANSWERS}", file=sys.stderr)


if __name__ == "__main__":
    main()
