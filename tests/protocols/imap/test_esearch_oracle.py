"""ESEARCH and SEARCHRES answers equal to Dovecot's, recorded in tests/oracle/esearch.json by
tests/oracle/record_dovecot_esearch.py: the same session (messages, setup, commands) against a fresh wildduck, each
command's untagged responses compared after the same normalization, and its status. Dovecot itself is not needed."""

from __future__ import annotations

import imaplib
import json
from pathlib import Path
from typing import Any

import trio

from tests.oracle import record_dovecot_esearch as oracle
from tests.sessions.imap_transcripts import imap_server


def _ours(address: tuple[str, int]) -> list[dict[str, Any]]:
    m = imaplib.IMAP4(*address)
    try:
        m.login("alice", "pw")
        return oracle.session(m)
    finally:
        m.logout()


async def test_esearch_answers_match_dovecot(tmp_path: Path) -> None:
    recorded = json.loads(oracle.ANSWERS.read_text())
    assert recorded["dovecot"] and [a["command"] for a in recorded["answers"]] == oracle.COMMANDS, \
        "the fixture is out of date: run python -m tests.oracle.record_dovecot_esearch"
    async with imap_server(tmp_path, "alice") as srv:
        with trio.fail_after(120):
            ours = await trio.to_thread.run_sync(_ours, srv.address("imap"))
    problems = [f"{theirs['command']}:\n  dovecot: {theirs['status']} {theirs['untagged']}\n"
                f"  ours:    {mine['status']} {mine['untagged']}"
                for theirs, mine in zip(recorded["answers"], ours, strict=True) if theirs != mine]
    assert not problems, f"{len(problems)} of {len(ours)} answers differ from Dovecot's:\n" + "\n".join(problems)
