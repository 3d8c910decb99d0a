"""SEARCH's text and header keys answered as Dovecot answers them (tests/oracle/search.json, recorded by
tests/oracle/record_dovecot_search.py from the corpus tests/oracle/messages/search/): the same session (messages
appended byte for byte, then every command) against a fresh wildduck over a real socket, each command's status and
untagged responses compared after the recorder's normalization. Dovecot itself is not needed.

Where Dovecot's answer is not followed, :data:`DEVIATIONS` holds ours, with the reason."""

from __future__ import annotations

import imaplib
import json
from pathlib import Path
from typing import Any

import trio

from tests.oracle import record_dovecot_search as oracle
from tests.sessions.imap_transcripts import imap_server

#: command -> (our untagged answer, why it is not Dovecot's)
DEVIATIONS: dict[str, tuple[list[str], str]] = {}


def _ours(address: tuple[str, int]) -> list[dict[str, Any]]:
    m = imaplib.IMAP4(*address)
    try:
        m.login("alice", "pw")
        return oracle.session(m)
    finally:
        m.logout()


def _expected(answer: dict[str, Any]) -> dict[str, Any]:
    deviation = DEVIATIONS.get(answer["command"])
    return answer if deviation is None else {**answer, "untagged": deviation[0]}


async def test_search_answers_match_dovecot(tmp_path: Path) -> None:
    recorded = json.loads(oracle.ANSWERS.read_text())
    assert recorded["dovecot"] and [a["command"] for a in recorded["answers"]] == oracle.COMMANDS, \
        "the fixture is out of date: run python -m tests.oracle.record_dovecot_search"
    assert set(DEVIATIONS) <= set(oracle.COMMANDS)
    async with imap_server(tmp_path, "alice") as srv:
        with trio.fail_after(120):
            ours = await trio.to_thread.run_sync(_ours, srv.address("imap"))
    problems = [f"{theirs['command']}:\n  dovecot: {theirs['status']} {theirs['untagged']}\n"
                f"  ours:    {mine['status']} {mine['untagged']}"
                for theirs, mine in zip(map(_expected, recorded["answers"]), ours, strict=True) if theirs != mine]
    assert not problems, f"{len(problems)} of {len(ours)} answers differ from Dovecot's:\n" + "\n".join(problems)


async def test_messages_indexed_before_the_dovecot_rules_match_by_them_after_the_migration(tmp_path: Path) -> None:
    """Text indexed before ``search_fold`` was kept ``casefold``-ed (accents precomposed); schema v15 indexes it
    again as an ingest would, so a needle finds it by the rules of a fresh ingest (``cafe`` in ``Café``)."""
    import sqlite3

    from tests.adapters.conftest import make_user, open_store, prepared
    from wildduck.model import NewMessage

    store = await open_store("sqlite", tmp_path)
    try:
        user = await make_user(store)
        inbox = await store.find_mailbox(user.id, "INBOX")
        await store.append_messages([NewMessage(user.id, inbox.id, prepared(t)) for t in ("Café Crème", "cafe")])
    finally:
        await store.close()
    conn = sqlite3.connect(tmp_path / "store.db")
    with conn:  # message 1 as an older version indexed it, in a database of that version (v14)
        conn.execute("UPDATE message_text SET body = ? WHERE rowid = (SELECT text_id FROM messages WHERE uid = 1)",
                     ("Café Crème".casefold(),))
        conn.execute("PRAGMA user_version = 14")
    conn.close()
    store = await open_store("sqlite", tmp_path)
    try:
        assert await store.text_search(inbox.id, "CAFÉ CRÈME", headers_too=False) == {1}
        assert await store.text_search(inbox.id, "cafe", headers_too=False) == {1, 2}  # "é" decomposed now
        assert await store.text_search(inbox.id, "è", headers_too=False) == {1}  # a short needle: instr
    finally:
        await store.close()
