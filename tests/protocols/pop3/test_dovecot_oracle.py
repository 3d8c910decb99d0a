"""POP3 answers compared with Dovecot's, recorded in tests/oracle/fixtures/pop3/ by tests/oracle/record_dovecot_pop3.py.

Every recorded conversation is held again with a fresh server: the same user and password, the same messages
delivered (exact bytes) into INBOX in the same order, the same command lines sent the same way (one at a time, or
pipelined). For every command the status must be Dovecot's (``+OK``, ``-ERR``, the ``+`` of a SASL challenge, or
no answer because the connection was closed); the text after the status may differ. Beyond the status:

* RETR and TOP: the lines after the first (the message, dot-stuffed, and the terminating ``.``) are byte for byte
  Dovecot's;
* STAT, and LIST with an argument: the numbers after ``+OK`` are Dovecot's (sizes count CRLF line ends);
* LIST without argument: the listing lines are Dovecot's;
* UIDL: the same message numbers and number of lines; each unique-id is 1 to 70 characters in 0x21..0x7E (RFC 1939
  7) but its value is ours; over a conversation the unique-ids must repeat and differ where Dovecot's do (a message
  keeps its unique-id from one session to the next, two messages never share one);
* CAPA: every capability Dovecot announces is among ours (by tag; Dovecot's own ``CAPA`` line excepted), the rest
  may differ (we implement extensions Dovecot does not); the mechanism list of AUTH: the status only;
* after the last answer: whether the server closed the connection, and that it sent nothing more.

Where Dovecot's status is not ours on purpose, ``ALLOWED_DIFFERENCES`` gives our statuses for the whole session and
the reason; the entry must still be a difference (a stale one fails). Dovecot itself is not needed: only the
fixtures.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.oracle.record_dovecot_pop3 import CONVERSATIONS, MESSAGES, PASSWORD, USER, Session, multiline, talk
from wildduck.testing.server import running_server

FIXTURES = Path(__file__).resolve().parents[2] / "oracle" / "fixtures" / "pop3"
CASES = sorted(FIXTURES.glob("*.json"))

_UNIQUE_ID = re.compile(r"[\x21-\x7e]{1,70}")

_LOGIN_LIMIT = ("RFC 1939 and 2449 set no limit on bad commands or failed logins; each server closes the connection "
                "at a limit of its own (Dovecot's login process: at the command after three bad ones, even QUIT, and "
                "after the third failed login at the next PASS; its pop3 process: at the 22nd bad command in a row; "
                "ours: at the 20th bad command in a row, and at once after the third failed login)")
_USER_WITHOUT_NAME = ("RFC 1939 7: USER takes a name (\"USER name\", \"Arguments: a string identifying a mailbox "
                      "(required)\"); Dovecot answers +OK to USER alone and fails the PASS that follows, we refuse the "
                      "USER itself; either way no one logs in")
_UTF8 = ("RFC 6856 2: UTF8 is valid in the AUTHORIZATION state for a server that announces it; we announce and "
         "implement it, Dovecot 2.3 does not (it answers -ERR to an unknown command)")
_NO_ARGUMENT = ("RFC 1939 3: a server MUST answer a syntactically invalid command with -ERR, and STAT, RSET, NOOP "
                "(RFC 1939 5) and CAPA (RFC 2449 5) take no argument: we refuse one, Dovecot ignores it. Both accept "
                "QUIT with an argument (ours is lenient there)")
_PASS_AFTER_USER = ("RFC 1939 7: PASS \"may only be given in the AUTHORIZATION state immediately after a "
                     "successful USER command\"; Dovecot still takes it after a CAPA in between, we refuse it")
_LONG_LINE = ("RFC 2449 4: a server must accept command lines of at least 255 octets and says nothing of longer "
              "ones; Dovecot closes the connection at a line over its buffer, we refuse the line with -ERR and go on")
_NUL = ("RFC 1939 3: keywords and arguments consist of printable ASCII characters; Dovecot reads a command up to a "
        "NUL byte and runs it (NOOP NUL: +OK), we refuse the line")
#: (conversation, session index) → (why Dovecot's statuses differ on purpose, our statuses for every exchange:
#: "+OK", "-ERR", "+" (a SASL challenge) or "EOF" (no answer: the connection was closed))
ALLOWED_DIFFERENCES: dict[tuple[str, int], tuple[str, list[str]]] = {
    ("too-many-bad-commands-before-login", 0): (_LOGIN_LIMIT, ["-ERR"] * 5 + ["+OK"]),
    ("too-many-bad-commands-after-login", 0): (_LOGIN_LIMIT, ["+OK", "+OK"] + ["-ERR"] * 20 + ["EOF"] * 3),
    ("three-failed-logins", 0): (_LOGIN_LIMIT, ["+OK", "-ERR", "+OK", "-ERR", "-ERR", "EOF", "EOF", "EOF", "EOF"]),
    ("pass-before-user", 0): (_USER_WITHOUT_NAME, ["-ERR", "-ERR", "+OK", "+OK", "+OK", "+OK"]),
    ("user-then-other-command", 0): (_PASS_AFTER_USER, ["+OK", "+OK", "-ERR", "-ERR", "+OK"]),
    ("long-command-lines", 1): (_LONG_LINE, ["+OK", "+OK", "-ERR", "-ERR", "+OK", "+OK"]),
    ("odd-bytes-in-commands", 0): (_NUL, ["+OK", "+OK", "-ERR", "-ERR", "-ERR", "-ERR", "+OK", "+OK"]),
    ("utf8", 0): (_UTF8, ["+OK", "+OK", "+OK", "-ERR", "+OK", "+OK"]),
    ("noop-rset-stat-arguments", 0): (_NO_ARGUMENT, ["+OK", "+OK", "+OK", "-ERR", "+OK", "-ERR", "-ERR", "-ERR",
                                                     "+OK"]),
}


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def status(response: str) -> str:
    if not response:
        return "EOF"
    for name in ("+OK", "-ERR"):
        if response.startswith(name) and response[len(name):len(name) + 1] in ("", " ", "\r"):
            return name
    if response.startswith("+ ") or response == "+\r\n":
        return "+"
    return f"?{response[:20]!r}"


def _lines(response: str) -> list[str]:
    """The lines of a multi-line answer after the first, without the terminating ``.``."""
    lines = response.split("\r\n")
    assert lines[-2:] == [".", ""], response[-20:]
    return lines[1:-2]


def _uidl_lines(response: str) -> list[tuple[str, str]]:
    return [tuple(line.split(" ", 1)) for line in _lines(response)]  # type: ignore[misc]


class Comparison:
    """Compares one conversation, exchange by exchange; collects the problems."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.problems: list[str] = []
        # unique-id → the index of its first appearance, for each server (the patterns must be equal)
        self.ids: dict[str, dict[str, int]] = {"dovecot": {}, "ours": {}}

    def problem(self, where: str, what: str, theirs: str, ours: str) -> None:
        self.problems.append(f"{where}: {what}\n  dovecot: {_show(theirs)}\n  ours:    {_show(ours)}")

    def unique_ids(self, where: str, theirs: list[tuple[str, str]], ours: list[tuple[str, str]]) -> None:
        if [n for n, _ in theirs] != [n for n, _ in ours]:
            self.problem(where, "UIDL message numbers differ", repr(theirs), repr(ours))
            return
        for (_n, uid) in ours:
            if not _UNIQUE_ID.fullmatch(uid):
                self.problem(where, "a unique-id is not 1 to 70 characters in 0x21..0x7E", "", uid)
        pattern = {}
        for server, listing in (("dovecot", theirs), ("ours", ours)):
            seen = self.ids[server]
            pattern[server] = [seen.setdefault(uid, len(seen)) for _n, uid in listing]
        if pattern["dovecot"] != pattern["ours"]:
            self.problem(where, "unique-ids do not repeat where Dovecot's do (same message, same id; distinct "
                         "messages, distinct ids)", repr(theirs), repr(ours))

    def exchange(self, where: str, command: str, theirs: str, ours: str, expected_status: str | None) -> None:
        want = status(theirs) if expected_status is None else expected_status
        if status(ours) != want:
            self.problem(where, f"status {status(ours)}, expected {want}" + ("" if expected_status is None else
                                                                             " (an allowed difference)"),
                         theirs, ours)
            return
        if want != "+OK" or status(theirs) != "+OK":
            return
        name, _, arg = command.strip().partition(" ")
        name, arg = name.upper(), arg.strip()
        if multiline(command, theirs.encode("latin-1")) != multiline(command, ours.encode("latin-1")):
            self.problem(where, "one answer is multi-line, the other not", theirs, ours)
        elif name in ("RETR", "TOP"):
            if ours.partition("\r\n")[2] != theirs.partition("\r\n")[2]:
                self.problem(where, f"{name} content differs", theirs, ours)
        elif name == "STAT" or (name == "LIST" and arg):
            if ours.split()[1:3] != theirs.split()[1:3]:
                self.problem(where, f"{name} numbers differ", theirs, ours)
        elif name == "LIST":
            if _lines(ours) != _lines(theirs):
                self.problem(where, "LIST listing differs", theirs, ours)
        elif name == "CAPA":
            tags = {line.split(" ")[0].upper() for line in _lines(ours)}
            missing = {line.split(" ")[0].upper() for line in _lines(theirs)} - tags - {"CAPA"}
            if missing:
                self.problem(where, f"capabilities Dovecot announces are missing: {sorted(missing)}", theirs, ours)
        elif name == "UIDL" and arg:
            self.unique_ids(where, [tuple(theirs.split()[1:3])], [tuple(ours.split()[1:3])])  # type: ignore[list-item]
        elif name == "UIDL":
            self.unique_ids(where, _uidl_lines(theirs), _uidl_lines(ours))

    def session(self, index: int, recorded: dict[str, Any], ours: dict[str, Any]) -> None:
        allowed = ALLOWED_DIFFERENCES.get((self.name, index))
        exchanges = recorded["exchanges"]
        if allowed is not None:
            reason, statuses = allowed
            assert len(statuses) == len(exchanges), f"session {index}: {len(statuses)} statuses listed"
            assert statuses != [status(e["response"]) for e in exchanges], \
                f"session {index}: listed as a difference but Dovecot agrees ({reason})"
        if status(ours["greeting"]) != status(recorded["greeting"]):
            self.problem(f"session {index} greeting", "status differs", recorded["greeting"], ours["greeting"])
        for i, (theirs, mine) in enumerate(zip(exchanges, ours["exchanges"], strict=True)):
            assert theirs["command"] == mine["command"]
            self.exchange(f"session {index}, {i}: {theirs['command'][:40]!r}", theirs["command"], theirs["response"],
                          mine["response"], None if allowed is None else allowed[1][i])
        if ours["eof"] != recorded["eof"]:
            self.problem(f"session {index} end", "the connection was closed by one server only",
                         str(recorded["eof"]), str(ours["eof"]))
        if ours["trailing"]:
            self.problem(f"session {index} end", "bytes after the last answer", recorded["trailing"],
                         ours["trailing"])


def _show(text: str) -> str:
    shown = repr(text)
    return shown if len(shown) <= 400 else shown[:300] + " ... " + shown[-100:]


def _replay(recorded: dict[str, Any]) -> Session:
    commands = [e["command"] for e in recorded["exchanges"]]
    return Session(commands, pipelined=recorded["pipelined"], skip=recorded["skip"])


@pytest.mark.parametrize("fixture", CASES, ids=[p.stem for p in CASES])
async def test_pop3_answers_match_dovecot(tmp_path: Path, fixture: Path) -> None:
    recorded = _load(fixture)
    messages = [(FIXTURES / name).read_bytes() for name in recorded["messages"]]
    comparison = Comparison(recorded["name"])
    # no STLS: the recorded Dovecot has no TLS either (stls-unavailable)
    async with running_server(tmp_path, {"pop3": {"starttls": False}}) as srv:
        await srv.services.users.create(USER, PASSWORD, address=f"{USER}@example.com")
        recipient = await srv.services.delivery.resolve(f"{USER}@example.com")
        for message in messages:
            await srv.services.delivery.deliver(message, [recipient])
        host, port = srv.address("pop3")
        with trio.fail_after(120):
            for index, session in enumerate(recorded["sessions"]):
                ours = await trio.to_thread.run_sync(functools.partial(talk, host, port, _replay(session)))
                comparison.session(index, session, ours)
    count = sum(len(s["exchanges"]) for s in recorded["sessions"])
    assert not comparison.problems, (f"{len(comparison.problems)} of {count} answers differ from Dovecot's:\n"
                                     + "\n".join(comparison.problems))


def test_fixtures_are_complete() -> None:
    """Every conversation of the recorder has its fixture, made from the recorder's messages (the .eml files)."""
    assert {p.stem for p in CASES} == {c.name for c in CONVERSATIONS}
    for path in CASES:
        recorded = _load(path)
        assert recorded["dovecot"]
        assert recorded["messages"] == [f"{name}.eml" for name in MESSAGES]
        sessions = {c.name: c for c in CONVERSATIONS}[recorded["name"]].sessions
        assert [[e["command"] for e in s["exchanges"]] for s in recorded["sessions"]] == [s.commands for s in sessions]
    for name, message in MESSAGES.items():
        assert (FIXTURES / f"{name}.eml").read_bytes() == message


def test_allowed_differences_exist() -> None:
    for name, index in ALLOWED_DIFFERENCES:
        assert (FIXTURES / f"{name}.json").is_file(), name
        assert index < len(_load(FIXTURES / f"{name}.json")["sessions"])
