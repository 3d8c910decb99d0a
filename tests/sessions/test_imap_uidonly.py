"""UIDONLY (RFC 9586) over sockets with imaplib (the strict line-by-line cases are the transcripts
``tests/transcripts/imap/uidonly*.txt``): a session that enabled UIDONLY sees another session's flag changes and
expunges, and LMTP deliveries, as ``* uid UIDFETCH`` and ``* VANISHED`` (never ``FETCH`` or ``EXPUNGE``), whether
it IDLEs or NOOPs; a QRESYNC client resynchronizes in one SELECT with UIDFETCH responses; sequence numbers are
refused with ``BAD [UIDREQUIRED]``; other sessions are unaffected."""

from __future__ import annotations

import imaplib
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from tests.sessions.imap_transcripts import imap_server
from wildduck.protocols.imap.receiver import CommandRejected, RawCommand, Receiver
from wildduck.sessions.imap import registry, uidonly
from wildduck.testing.lmtp_client import LMTPClient
from wildduck.testing.server import RunningServer

#: how long a push may take to arrive
PUSH_WITHIN = 10.0


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with imap_server(tmp_path, "alice") as srv:
        yield srv


def deliver(srv: RunningServer, subject: str) -> None:
    with LMTPClient(*srv.address("lmtp")) as c:
        c.lhlo()
        message = f"Subject: {subject}\r\n\r\nx\r\n".encode()
        _r, replies = c.send_message("s@example.net", ["alice@example.com"], message)
        assert replies[0][0] == 250


def login(srv: RunningServer, *enable: str) -> imaplib.IMAP4:
    m = imaplib.IMAP4(*srv.address("imap"))
    m.sock.settimeout(PUSH_WITHIN)
    m.login("alice", "pw")
    if enable:
        typ, data = m._simple_command("ENABLE", *enable)
        assert typ == "OK"
        assert m.untagged_responses.pop("ENABLED") == [" ".join(enable).encode()]
    return m


def number(m: imaplib.IMAP4, code: str) -> int:
    """The number of the response code ``code`` the server last sent (``[UIDVALIDITY n]``)."""
    value = m.untagged_responses[code][0]
    assert isinstance(value, bytes)
    return int(value)


def read_until(m: imaplib.IMAP4, wanted: bytes) -> list[bytes]:
    """The lines the server pushes up to and including the first that starts with ``wanted``."""
    lines: list[bytes] = []
    deadline = time.monotonic() + PUSH_WITHIN
    while time.monotonic() < deadline:
        line = m.readline().rstrip(b"\r\n")
        lines.append(line)
        if line.startswith(wanted):
            return lines
    raise AssertionError(f"no {wanted!r} among {lines!r}")


def no_sequence_numbers(lines: list[bytes]) -> None:
    """No FETCH nor EXPUNGE response (both carry a message sequence number) among ``lines``."""
    assert not [line for line in lines if re.match(rb"\* \d+ (FETCH|EXPUNGE)\b", line)], lines


async def test_an_idling_uidonly_session_sees_changes_by_uid(server: RunningServer) -> None:
    """While the UIDONLY session IDLEs, another session flags a message (UIDFETCH), expunges one (VANISHED) and a
    delivery arrives (EXISTS, a count); the IMAP4rev1 session itself keeps its sequence numbers."""
    def go() -> None:
        for i in range(1, 4):
            deliver(server, f"m{i}")
        a = login(server, "UIDONLY")
        assert "UIDONLY" in a.capabilities
        typ, data = a.select("INBOX")
        assert (typ, data) == ("OK", [b"3"])
        assert "UNSEEN" not in a.untagged_responses  # [UNSEEN n] names a sequence number
        b = login(server)
        b.select("INBOX")
        assert b.untagged_responses.get("UNSEEN") == [b"1"]

        a.send(b"i1 IDLE\r\n")
        assert a.readline().startswith(b"+ ")
        assert b.store("2", "+FLAGS", r"(\Flagged)")[0] == "OK"
        pushed = read_until(a, b"* 2 UIDFETCH")
        assert pushed[-1] == rb"* 2 UIDFETCH (FLAGS (\Flagged \Recent))"
        b.store("1", "+FLAGS.SILENT", r"(\Deleted)")
        assert b.expunge() == ("OK", [b"1"])  # IMAP4rev1 session: * 1 EXPUNGE
        pushed += read_until(a, b"* VANISHED")
        assert pushed[-1] == b"* VANISHED 1"
        deliver(server, "m4")
        pushed += read_until(a, b"* 3 EXISTS")  # messages 2, 3 and the new 4: a count, not a number
        a.send(b"DONE\r\n")
        pushed += read_until(a, b"i1 ")
        assert pushed[-1] == b"i1 OK IDLE terminated"
        no_sequence_numbers(pushed)

        # NOOP: a MOVE by the other session is VANISHED here; a flag change UIDFETCH
        typ, data = b.uid("MOVE", "3", "Trash")
        assert typ == "OK"
        b.uid("STORE", "4", "+FLAGS", r"(\Seen)")
        a.noop()
        assert a.response("VANISHED") == ("VANISHED", [b"3"])
        assert a.response("UIDFETCH") == ("UIDFETCH", [rb"4 (FLAGS (\Seen \Recent))"])
        assert a.response("FETCH") == ("FETCH", [None]) and a.response("EXPUNGE") == ("EXPUNGE", [None])

        # the client's own commands, by UID only
        typ, data = a.uid("FETCH", "1:*", "(FLAGS)")
        assert typ == "OK" and a.response("UIDFETCH") == (
            "UIDFETCH", [rb"2 (FLAGS (\Flagged \Recent))", rb"4 (FLAGS (\Seen \Recent))"])
        for command in (lambda: a.fetch("1", "(FLAGS)"), lambda: a.store("1", "+FLAGS", r"(\Seen)"),
                        lambda: a.copy("1", "Trash"), lambda: a.search(None, "ALL"),
                        lambda: a.uid("SEARCH", "1:*")):
            with pytest.raises(imaplib.IMAP4.error, match=r"UIDREQUIRED"):
                command()
        assert a.uid("SEARCH", "UID 1:*") == ("OK", [b"2 4"])
        assert a.uid("STORE", "2", "-FLAGS", r"(\Flagged)")[0] == "OK"
        assert a.response("UIDFETCH") == ("UIDFETCH", [rb"2 (FLAGS (\Recent))"])
        # the other session was told of that change with its own sequence numbers
        b.noop()
        assert b.response("FETCH") == ("FETCH", [rb"1 (FLAGS ())"])
        for m in (a, b):
            m.logout()

    await trio.to_thread.run_sync(go)


async def test_a_qresync_client_resynchronizes_by_uid(server: RunningServer) -> None:
    """A client that knew the mailbox at some MODSEQ selects it with QRESYNC and UIDONLY: VANISHED (EARLIER) of
    what was expunged since and ``* uid UIDFETCH (MODSEQ FLAGS)`` of what changed; sequence match data is BAD."""
    def go() -> None:
        for i in range(1, 5):
            deliver(server, f"m{i}")
        c = login(server, "QRESYNC", "UIDONLY")
        c.select("INBOX")
        uv, known = (number(c, code) for code in ("UIDVALIDITY", "HIGHESTMODSEQ"))
        c.logout()

        b = login(server)
        b.select("INBOX")
        b.uid("STORE", "2", "+FLAGS.SILENT", r"(\Deleted)")
        b.expunge()
        b.uid("STORE", "4", "+FLAGS", r"(\Flagged)")
        b.logout()

        c = login(server, "QRESYNC", "UIDONLY")
        with pytest.raises(imaplib.IMAP4.error, match=r"UIDREQUIRED"):
            c._simple_command("SELECT", f"INBOX (QRESYNC ({uv} {known} 1:4 (1:3 1:3)))")
        typ, _data = c._simple_command("SELECT", f"INBOX (QRESYNC ({uv} {known} 1:4))")
        assert typ == "OK"
        got = c.untagged_responses
        assert got.get("VANISHED") == [b"(EARLIER) 2"]
        [changed] = got["UIDFETCH"]
        assert isinstance(changed, bytes)
        assert re.fullmatch(rb"4 \(MODSEQ \(\d+\) FLAGS \(\\Flagged\)\)", changed), changed
        assert got["EXISTS"] == [b"3"] and "FETCH" not in got and "UNSEEN" not in got
        c.logout()

    await trio.to_thread.run_sync(go)


@pytest.mark.parametrize(("line", "refused"), [
    (b"FETCH 1 (FLAGS)", True), (b"FETCH $ (FLAGS)", True), (b"STORE 1:* +FLAGS (\\Seen)", True),
    (b"COPY 1 Trash", True), (b"MOVE 2 Trash", True), (b"SEARCH UID 1", True), (b"SORT (DATE) UTF-8 ALL", True),
    (b"THREAD REFERENCES UTF-8 ALL", True), (b"UID SEARCH 1:*", True), (b"UID SEARCH NOT (OR SEEN 3)", True),
    (b"UID SORT (DATE) UTF-8 UNSEEN 2", True), (b"UID THREAD REFERENCES UTF-8 NOT 1", True),
    (b"SELECT INBOX (QRESYNC (1 2 1:9 (1,3 4,7)))", True),
    (b"UID FETCH 1:* (FLAGS)", False), (b"UID STORE 1 +FLAGS (\\Seen)", False), (b"UID COPY 1:* Trash", False),
    (b"UID MOVE $ Trash", False), (b"UID SEARCH UID 1:* NOT $", False), (b"UID SEARCH $", False),
    (b"UID SORT (DATE) UTF-8 ALL", False), (b"UID EXPUNGE 1:3", False), (b"EXPUNGE", False),
    (b"SELECT INBOX (QRESYNC (1 2 1:9))", False), (b"EXAMINE INBOX", False), (b"NOOP", False),
])
def test_which_commands_name_sequence_numbers(line: bytes, refused: bool) -> None:
    """What ``uidonly.refusal`` turns away: every non-UID command that names messages, a sequence set at any depth
    of the search keys, QRESYNC's sequence match data; ``$`` holds UIDs and is allowed."""
    rx = Receiver(max_line=4096, max_literal=4096)
    rx.receive_data(b"t " + line + b"\r\n")
    event = rx.next_event()
    assert isinstance(event, RawCommand)
    cmd = registry.parse(event)
    assert not isinstance(cmd, CommandRejected), cmd
    assert (uidonly.refusal(cmd) is not None) == refused
