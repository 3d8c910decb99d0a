"""Answers equal to Dovecot's: ESEARCH and SEARCHRES (tests/oracle/esearch.json, recorded by
tests/oracle/record_dovecot_esearch.py), SORT, ESORT and SORT=DISPLAY (tests/oracle/sort.json, by
tests/oracle/record_dovecot_sort.py), BINARY (tests/oracle/binary.json, by tests/oracle/record_dovecot_binary.py)
and THREAD (tests/oracle/thread.json, by tests/oracle/record_dovecot_thread.py): the same session (messages, setup,
commands) against a fresh wildduck, each command's untagged responses compared
after the recorder's normalization, and its status. Dovecot itself is not needed.

For BINARY one difference is normalized: when a FETCH fails with NO [UNKNOWN-CTE], Dovecot has sent
``* n FETCH (UID n)`` for the message it gave up on; wildduck sends nothing for it. Those lines are dropped from
Dovecot's answers."""

from __future__ import annotations

import imaplib
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import trio

from tests.oracle import record_dovecot_binary, record_dovecot_esearch, record_dovecot_sort, record_dovecot_thread
from tests.sessions.imap_transcripts import imap_server

_UID_STUB = re.compile(r"^\* \d+ FETCH \(UID \d+\)$")


def _ours(oracle: ModuleType, address: tuple[str, int]) -> list[dict[str, Any]]:
    m = imaplib.IMAP4(*address)
    try:
        m.login("alice", "pw")
        return oracle.session(m)  # type: ignore[no-any-return]
    finally:
        m.logout()


def _without_uid_stubs(answer: dict[str, Any]) -> dict[str, Any]:
    if not answer["status"].startswith("NO"):
        return answer
    return {**answer, "untagged": [u for u in answer["untagged"] if not _UID_STUB.match(u)]}


def _thread_data(answer: dict[str, Any]) -> dict[str, Any]:
    """Dovecot writes an empty THREAD answer ``* THREAD `` (a space and nothing); RFC 5256's thread-data is
    ``"THREAD" [SP 1*thread-list]``, which wildduck follows: ``* THREAD``."""
    return {**answer, "untagged": [u.rstrip(" ") if u.startswith("* THREAD") else u for u in answer["untagged"]]}


@pytest.mark.parametrize(("oracle", "expected"), [(record_dovecot_esearch, lambda a: a),
                                                  (record_dovecot_sort, lambda a: a),
                                                  (record_dovecot_binary, _without_uid_stubs),
                                                  (record_dovecot_thread, _thread_data)],
                         ids=["esearch", "sort", "binary", "thread"])
async def test_answers_match_dovecot(tmp_path: Path, oracle: ModuleType, expected: Any) -> None:
    recorded = json.loads(oracle.ANSWERS.read_text())
    assert recorded["dovecot"] and [a["command"] for a in recorded["answers"]] == oracle.COMMANDS, \
        f"the fixture is out of date: run python -m {oracle.__name__}"
    async with imap_server(tmp_path, "alice") as srv:
        with trio.fail_after(120):
            ours = await trio.to_thread.run_sync(_ours, oracle, srv.address("imap"))
    problems = [f"{theirs['command']}:\n  dovecot: {theirs['status']} {theirs['untagged']}\n"
                f"  ours:    {mine['status']} {mine['untagged']}"
                for theirs, mine in zip(map(expected, recorded["answers"]), ours, strict=True) if theirs != mine]
    assert not problems, f"{len(problems)} of {len(ours)} answers differ from Dovecot's:\n" + "\n".join(problems)
