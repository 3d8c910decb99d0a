"""FETCH answers byte for byte equal to Dovecot's, recorded in tests/oracle/fixtures/ by tests/oracle/record_dovecot.py.

Each fixture message is APPENDed (exact bytes) to a fresh server and every recorded item is fetched again; the data
of our ``* 1 FETCH (...)`` must be Dovecot's, label included. Dovecot itself is not needed: only the fixtures.
"""

from __future__ import annotations

import imaplib
import json
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.oracle import wire
from wildduck.testing.server import running_server

FIXTURES = Path(__file__).resolve().parents[2] / "oracle" / "fixtures"
CASES = sorted(FIXTURES.glob("*.json"))

_NO_BLANK_LINE = "RFC 3501 6.4.5: a message with no body and no blank line gets none; lines are returned as written"

#: (message, item) → (why our answer differs from Dovecot's: RFC 3501 is on our side, our exact answer)
EXPECTED_DIFFERENCES: dict[tuple[str, str], tuple[str, bytes]] = {
    ("no-body-separator", "BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]"):
        (_NO_BLANK_LINE, b"BODY[HEADER.FIELDS (SUBJECT FROM)] {45}\r\nFrom: a@example.com\r\n"
                         b"Subject: no empty line\r\n"),
    ("no-body-separator-crlf", "BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]"):
        (_NO_BLANK_LINE, b"BODY[HEADER.FIELDS (SUBJECT FROM)] {71}\r\nFrom: a@example.com\r\n"
                         b"Subject: header ends with CRLF but no empty line\r\n"),
    ("only-header-no-newline", "BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]"):
        (_NO_BLANK_LINE, b"BODY[HEADER.FIELDS (SUBJECT FROM)] {10}\r\nSubject: x"),
}


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _fetch_all(address: tuple[str, int], message: bytes, items: list[str]) -> tuple[str, list[bytes]]:
    m = imaplib.IMAP4(*address)
    try:
        m.login("alice", "pw")
        appended = wire.append(m, "INBOX", message)
        if appended.status != "OK":
            return appended.status, []
        assert wire.command(m, b"EXAMINE INBOX").status == "OK"
        return appended.status, [wire.fetch(m, 1, item) for item in items]
    finally:
        m.logout()


def _show(data: bytes) -> str:
    text = repr(data)
    return text if len(text) <= 600 else text[:600] + "..."


@pytest.mark.parametrize("fixture", CASES, ids=[p.stem for p in CASES])
async def test_fetch_answers_match_dovecot(tmp_path: Path, fixture: Path) -> None:
    recorded = _load(fixture)
    message = (FIXTURES / recorded["message"]).read_bytes()
    answers = recorded["answers"]
    items = [a["item"] for a in answers]
    async with running_server(tmp_path, {"imap": {"enabled": True}}) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")
        with trio.fail_after(120):
            status, ours = await trio.to_thread.run_sync(_fetch_all, srv.address("imap"), message, items)
    assert status == recorded["append"], f"APPEND: Dovecot said {recorded['append']}, we said {status}"
    problems: list[str] = []
    for answer, got in zip(answers, ours, strict=True):
        expected = answer["response"].encode("latin-1")
        source = "dovecot"
        exception = EXPECTED_DIFFERENCES.get((fixture.stem, answer["item"]))
        if exception is not None:
            assert exception[1] != expected, f"{answer['item']}: listed as a difference but Dovecot agrees"
            expected, source = exception[1], f"ours ({exception[0]})"
        if got != expected:
            problems.append(f"{answer['item']}:\n  {source}: {_show(expected)}\n  ours: {_show(got)}")
    assert not problems, f"{len(problems)} of {len(answers)} answers differ from Dovecot's:\n" + "\n".join(problems)


def test_fixtures_are_present() -> None:
    assert len(CASES) >= 40
    for path in CASES:
        recorded = _load(path)
        assert (FIXTURES / recorded["message"]).is_file()
        assert recorded["dovecot"]
