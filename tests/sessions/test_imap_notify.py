"""NOTIFY (RFC 5465) over sockets: session A sets NOTIFY and reads what is pushed to it between commands while
session B (imaplib), LMTP delivery and the HTTP API change things, on each deployment (on "mongodb+redis" B,
delivery and the API go to a second server instance: the nudges travel through Redis); the bounds
(NOTIFICATIONOVERFLOW); and the answers compared with Dovecot's (tests/oracle/notify.json, recorded by
tests/oracle/record_dovecot_notify.py). The grammar's errors and every filter and event are in
tests/transcripts/imap/notify.txt."""

from __future__ import annotations

import imaplib
import json
import re
import socket
import time
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.api.conftest import ROOT_TOKEN, api_overrides
from tests.deployments import Deployment
from tests.oracle import record_dovecot_notify as oracle
from tests.sessions.imap_transcripts import imap_server
from wildduck.sessions.imap import notify
from wildduck.testing.lmtp_client import LMTPClient
from wildduck.testing.server import RunningServer, running_server

MESSAGE = b"From: ann@example.net\r\nTo: alice@example.com\r\nSubject: hello\r\n\r\nhello\r\n"


def _deliver(srv: RunningServer, message: bytes = MESSAGE) -> None:
    with LMTPClient(*srv.address("lmtp")) as c:
        c.lhlo()
        assert c.send_message("sender@example.net", ["alice@example.com"], message)[1][0][0] == 250


def _expect(a: oracle._Conn, *expected: str) -> None:
    """The next lines A is sent (unsolicited) are ``expected`` (UIDVALIDITY and MODSEQ values normalized)."""
    got = [oracle.normalize(a.line(10.0) or "<nothing within 10 s>") for _ in expected]
    assert got == list(expected)


def _session(a_server: RunningServer, b_server: RunningServer, user_id: str, inbox: str) -> None:
    a = oracle._Conn(a_server.address("imap"))
    assert a.command("LOGIN alice pw")["status"].startswith("OK")
    a.command("SELECT INBOX")
    answer = a.command("NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge FlagChange)) "
                       "(personal (MessageNew MessageExpunge MailboxName SubscriptionChange))")
    assert answer["status"] == "OK"
    b = imaplib.IMAP4(*b_server.address("imap"))
    b.login("alice", "pw")
    host, port = b_server.address("api")
    api = httpx.Client(base_url=f"http://{host}:{port}", headers={"X-Access-Token": ROOT_TOKEN})
    try:
        # another session appends to another mailbox: STATUS
        assert b.append("Trash", None, None, MESSAGE)[0] == "OK"
        _expect(a, "* STATUS Trash (MESSAGES 1 UIDNEXT 2 UIDVALIDITY n UNSEEN 1)")
        # a delivery to the selected mailbox: EXISTS and the FETCH asked for
        _deliver(b_server)
        _expect(a, "* 1 EXISTS", "* 1 RECENT", "* 1 FETCH (UID 1 FLAGS (\\Recent))")
        # the API flags it: the FETCH carries the UID (RFC 5465 5.1)
        response = api.put(f"/users/{user_id}/mailboxes/{inbox}/messages/1", json={"flagged": True})
        assert response.status_code == 200, response.text
        _expect(a, "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))")
        # the API creates a mailbox (subscribed), another session renames and unsubscribes it
        response = api.post(f"/users/{user_id}/mailboxes", json={"path": "Projects"})
        assert response.status_code == 200, response.text
        _expect(a, '* LIST (\\HasNoChildren \\Subscribed) "/" Projects')
        assert b.rename("Projects", "Work")[0] == "OK"
        _expect(a, '* LIST (\\HasNoChildren \\Subscribed) "/" Work ("OLDNAME" (Projects))')
        assert b.unsubscribe("Work")[0] == "OK"
        _expect(a, '* LIST (\\HasNoChildren) "/" Work')
        # another session expunges in the selected mailbox
        b.select("INBOX")
        b.store("1", "+FLAGS.SILENT", "(\\Deleted)")
        _expect(a, "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Deleted \\Recent))")
        b.expunge()
        _expect(a, "* 1 EXPUNGE")
        # NOTIFY NONE: nothing more is pushed
        assert a.command("NOTIFY NONE")["status"] == "OK"
        _deliver(b_server)
        assert a.pushed(0.5) == []
        assert a.command("NOOP")["untagged"] == ["* 1 EXISTS", "* 1 RECENT"]
    finally:
        api.close()
        b.logout()
        a.sock.close()


async def test_pushes_from_other_sessions_delivery_and_the_api(tmp_path: Path, deployment: Deployment) -> None:
    overrides = deployment.overrides({"imap": {"enabled": True}, "pop3": {"port": 0, "tls_port": 0},
                                      **api_overrides()})
    async with AsyncExitStack() as stack:
        one = await stack.enter_async_context(running_server(tmp_path / "one", overrides))
        user = await one.services.users.create("alice", "pw", address="alice@example.com")
        two = one
        if deployment.name != "sqlite":  # a second instance on the same store and Redis
            two = await stack.enter_async_context(running_server(tmp_path / "two", overrides))
        inbox = await one.services.mailboxes.get(user.id, "INBOX")
        await trio.to_thread.run_sync(_session, one, two, user.id, inbox.id)


def _overflow(address: tuple[str, int], srv: RunningServer) -> None:
    a = oracle._Conn(address)
    a.command("LOGIN alice pw")
    a.command("SELECT INBOX")
    assert a.command("NOTIFY SET (selected (MessageNew (UID BODY.PEEK[]) MessageExpunge))")["status"] == "OK"
    _deliver(srv, MESSAGE + b"x" * 2000 + b"\r\n")
    pushed = a.pushed(1.0)
    assert pushed[:2] == ["* 1 EXISTS", "* 1 RECENT"] and pushed[-1] == "* OK [NOTIFICATIONOVERFLOW]"
    _deliver(srv)  # notifications are off, as after NOTIFY NONE
    assert a.pushed(0.5) == []
    assert a.command("NOOP")["untagged"] == ["* 2 EXISTS", "* 2 RECENT"]
    assert a.command("NOTIFY SET (personal (MessageNew MessageExpunge))")["status"] == "NO [NOTIFICATIONOVERFLOW]"
    a.sock.close()


async def test_too_many_notifications_turn_notify_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A round that would send more than MAX_ROUND_BYTES stops with ``* OK [NOTIFICATIONOVERFLOW]`` and NOTIFY is
    off; a NOTIFY SET that would watch more than MAX_WATCHED mailboxes is ``NO [NOTIFICATIONOVERFLOW]``."""
    monkeypatch.setattr(notify, "MAX_ROUND_BYTES", 1000)
    monkeypatch.setattr(notify, "MAX_WATCHED", 3)
    async with imap_server(tmp_path, "alice") as srv:
        await trio.to_thread.run_sync(_overflow, srv.address("imap"), srv)


# -- the oracle --------------------------------------------------------------------------------------------------
#: commands where wildduck follows RFC 5465 and Dovecot 2.3 does not: (scenario, command) → (Dovecot's, ours)
DEVIATIONS = {
    # RFC 5465 8: notify-set = "SET" [status-indicator] SP event-groups (one group at least)
    ("errors", "NOTIFY SET"): ("OK", "BAD"),
    # RFC 5465 3.1: an event of an unsupported type is NO (not BAD), with BADEVENT
    ("errors", "NOTIFY SET (personal (NoSuchEvent))"): ("BAD", "NO [BADEVENT]"),
}
_STATUS = re.compile(r"^\* STATUS (\S+) \((.*)\)$")


def _comparable(line: str) -> str:
    """A pushed line as compared: no ``\\Recent`` (which session has it is each server's own), no UID in a FETCH
    (Dovecot leaves it out of a flag change's FETCH, which RFC 5465 5.1 asks for), no children attributes in LIST
    (a SHOULD wildduck follows), "/" as the separator (Dovecot's maildir has ".")."""
    line = line.replace(" \\Recent", "").replace("(\\Recent ", "(").replace("(\\Recent)", "()")
    line = re.sub(r"^(\* \d+ FETCH \()UID \d+ ", r"\1", line)
    if line.startswith("* LIST "):
        line = line.replace('"." ', '"/" ')
        for attr in ("\\HasNoChildren", "\\HasChildren"):
            line = line.replace(attr + " ", "").replace(" " + attr, "").replace(attr, "")
    return line


def _covers(ours: list[str], theirs: list[str]) -> list[str]:
    """Dovecot's lines that no line of ours covers (a STATUS of ours covers one with the same values of a subset of
    its items); each line of ours covers one of theirs."""
    left = Counter(_comparable(x) for x in ours)
    missing = []
    for line in (_comparable(x) for x in theirs):
        m = _STATUS.match(line)
        if m is not None:
            items = dict(zip(*[iter(m.group(2).split())] * 2, strict=True))
            found = next((o for o in left if left[o] and (s := _STATUS.match(o)) is not None
                          and s.group(1) == m.group(1)
                          and items.items() <= dict(zip(*[iter(s.group(2).split())] * 2, strict=True)).items()),
                         None)
        else:
            found = line if left[line] else None
        if found is None:
            missing.append(line)
        else:
            left[found] -= 1
    return missing


def _compare(name: str, theirs: list[dict[str, Any]], ours: list[dict[str, Any]]) -> None:
    assert [s.get("command") for s in ours] == [s.get("command") for s in theirs]
    notify_off = False
    for mine, dovecot in zip(ours, theirs, strict=True):
        if "pushed" in mine:
            if notify_off:
                assert mine["pushed"] == [], f"{name}: pushed after NOTIFY NONE"
            if name == "names":  # Dovecot is prompt here: step by step
                assert [_comparable(x) for x in mine["pushed"]] == [_comparable(x) for x in dovecot["pushed"]]
            continue
        expected = DEVIATIONS.get((name, mine["command"]), (dovecot["status"], dovecot["status"]))
        if mine["command"].startswith("NOTIFY"):  # the status and its code
            assert dovecot["status"] == expected[0] and mine["status"] == expected[1], (name, mine["command"])
        else:  # the setup's commands: the status (codes such as MAILBOXID are wildduck's own)
            assert mine["status"].split()[0] == dovecot["status"].split()[0], (name, mine["command"])
        if mine["conn"] == "A" and mine["command"].startswith("NOTIFY"):
            assert _covers(mine["untagged"], dovecot["untagged"]) == [], (name, mine["command"])
            assert len(mine["untagged"]) == len(dovecot["untagged"]), (name, mine["command"])
            notify_off = mine["command"] == "NOTIFY NONE"
    # Dovecot's maildir reports the selected mailbox's changes late (with the next change it notices), and some
    # not within the recorder's wait: every push of Dovecot's must be among ours, in the scenario as a whole
    pushed = [x for s in ours if "pushed" in s for x in s["pushed"]]
    assert _covers(pushed, [x for s in theirs if "pushed" in s for x in s["pushed"]]) == [], name


async def test_answers_match_dovecot(tmp_path: Path) -> None:
    recorded = json.loads(oracle.ANSWERS.read_text())
    assert recorded["dovecot"] and {
        name: [s.get("command") for s in steps] for name, steps in recorded["scenarios"].items()} == {
        name: [s[1].split("\r\n")[0] if s != oracle.PUSH else None for s in steps]
        for name, steps in oracle.SCENARIOS.items()}, "the fixture is out of date: run python -m " + oracle.__name__
    async with imap_server(tmp_path, "alice") as srv:
        ours = await trio.to_thread.run_sync(lambda: oracle.run(srv.address("imap"), "alice", "pw", quiet=0.5))
    for name, steps in recorded["scenarios"].items():
        _compare(name, steps, ours[name])


def _never_reads(srv: RunningServer) -> None:
    a = oracle._Conn(srv.address("imap"))
    a.command("LOGIN alice pw")
    a.command("SELECT INBOX")
    assert a.command("NOTIFY SET (selected (MessageNew (UID BODY.PEEK[]) MessageExpunge))")["status"] == "OK"
    a.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    big = MESSAGE + (b"y" * 998 + b"\r\n") * 300
    for _ in range(20):  # 6 MB of notifications that A never reads
        _deliver(srv, big)
    deadline = time.monotonic() + 30
    a.sock.settimeout(5)
    while time.monotonic() < deadline:  # what the server sent before it gave up, then the end of the connection
        try:
            if not a.sock.recv(1 << 20):
                break
        except ConnectionError:
            break
        except TimeoutError:
            raise AssertionError("the session of a client that never reads is still open") from None
    else:
        raise AssertionError("the session of a client that never reads was not ended")
    a.sock.close()


async def test_a_client_that_never_reads_is_let_go(tmp_path: Path) -> None:
    """Notifications are written under the send deadline, one round at a time: a client that stops reading holds
    one round's output and the subscription's bounded queue, and is disconnected when the deadline passes."""
    config = {"imap": {"enabled": True}, "pop3": {"port": 0, "tls_port": 0}, "limits": {"send_timeout": 1.0}}
    async with running_server(tmp_path, config) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")
        await trio.to_thread.run_sync(_never_reads, srv)
