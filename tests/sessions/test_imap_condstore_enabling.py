"""CONDSTORE enabling commands (RFC 7162 3.1) while a mailbox is selected: the first one tells the client the
mailbox's HIGHESTMODSEQ in an untagged OK, and from then on flag changes carry MODSEQ (ImapTest's esearch-condstore,
run now that ESEARCH is advertised, relies on it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sessions.imap_transcripts import imap_server, run, selected

TWO = "@deliver alice\nSubject: a\n\n1\n@end\n@deliver alice\nSubject: b\n\n2\n@end\n"
LOGIN = "C: a LOGIN alice pw\nS: a OK [CAPABILITY {{.*}}] logged in\nC: b SELECT INBOX\n" + selected(
    "b", exists=2, recent=2, unseen=1, uidnext=3, modseq="3")

ENABLING = {
    "FETCH MODSEQ": "C: c FETCH 1 (MODSEQ)\nS: * OK [HIGHESTMODSEQ 4] highest\nS: * 1 FETCH (MODSEQ (4))\n"
                    "S: c OK FETCH completed\n",
    "CHANGEDSINCE": "C: c FETCH 1:* (FLAGS) (CHANGEDSINCE 3)\nS: * OK [HIGHESTMODSEQ 4] highest\n"
                    "S: * 1 FETCH (MODSEQ (4) FLAGS (\\Seen \\Recent))\nS: c OK FETCH completed\n",
    "SEARCH MODSEQ": "C: c SEARCH MODSEQ 4\nS: * OK [HIGHESTMODSEQ 4] highest\nS: * SEARCH 1 (MODSEQ 4)\n"
                     "S: c OK SEARCH completed\n",
    "UNCHANGEDSINCE": "C: c STORE 2 (UNCHANGEDSINCE 9) +FLAGS.SILENT (\\Draft)\n"
                      "S: * OK [HIGHESTMODSEQ 4] highest\nS: * 2 FETCH (FLAGS (\\Draft \\Recent) MODSEQ (5))\n"
                      "S: c OK STORE completed\n",
}


@pytest.mark.parametrize("command", list(ENABLING))
async def test_first_enabling_command_reports_highestmodseq(tmp_path: Path, command: str) -> None:
    # a change of this session's own first (the view has not replayed it: the report must still include it)
    before = "C: s STORE 1 +FLAGS (\\Seen)\nS: * 1 FETCH (FLAGS (\\Seen \\Recent))\nS: s OK STORE completed\n"
    after = ("C: d STORE 1 -FLAGS (\\Seen)\nS: * 1 FETCH (FLAGS (\\Recent) MODSEQ ({{\\d+}}))\n"
             "S: d OK STORE completed\n"
             "C: e FETCH 1 (MODSEQ)\nS: * 1 FETCH (MODSEQ ({{\\d+}}))\nS: e OK FETCH completed\n")
    async with imap_server(tmp_path, "alice") as srv:
        await run(srv, TWO + LOGIN + before + ENABLING[command] + after, command)
