"""Record Dovecot's ESEARCH (RFC 4731) and SEARCHRES (RFC 5182) answers: the oracle of
tests/protocols/imap/test_esearch_oracle.py.

Run by hand, from the repository root, after installing Debian's Dovecot (``apt-get install dovecot-imapd``; the
package's own service is not used and need not run)::

    .venv/bin/python -m tests.oracle.record_dovecot_esearch

It starts a private Dovecot in a temporary directory (``wildduck.testing.dovecot``: its own configuration, a
maildir, one passwd-file user, plaintext LOGIN on a free loopback port; nothing of the system's Dovecot is touched),
APPENDs the messages of ``MESSAGES`` (made here, byte for byte) to INBOX, runs the ``SETUP`` commands (flags, one
message expunged so that the UIDs have a gap) and then every command of ``COMMANDS`` in order, one at a time, and
writes ``tests/oracle/esearch.json``::

    {"dovecot": "<dovecot --version>", "answers": [{"command": "SEARCH RETURN (MIN) ALL", "status": "OK",
                                                    "untagged": ["* ESEARCH (TAG \\"$\\") MIN 1"]}, ...]}

``untagged`` are the untagged responses of the command, each without its CRLF, normalized by :func:`normalize`
(the tag in ``(TAG "...")`` becomes ``$``; MOD-SEQUENCE values, which each server counts its own way, become
``n``; of a ``* OK [CODE] text`` line only the code is kept); ``status`` is the tagged response's OK, NO or BAD
(its text is each server's own). The test runs the same session against wildduck (``session``, shared) and
compares.
"""

from __future__ import annotations

import imaplib
import re
import sys
from pathlib import Path
from typing import Any

from tests.oracle import wire

HERE = Path(__file__).resolve().parent
ANSWERS = HERE / "esearch.json"
USER, PASSWORD = "oracle", "oracle-pw"

#: eight messages: subjects and senders to search for, sizes that differ
MESSAGES = [
    (f"From: {sender}@example.net\r\nTo: {USER}@example.com\r\nSubject: {subject}\r\n"
     f"Date: Mon, 0{i % 9 + 1} Nov 2026 10:00:00 +0000\r\nMessage-ID: <m{i}@example.net>\r\n\r\n"
     + body * (i + 1) + "\r\n").encode()
    for i, (sender, subject, body) in enumerate([
        ("ann", "report one", "numbers "), ("bob", "lunch", "pizza "), ("ann", "report two", "more numbers "),
        ("carol", "holiday", "beach "), ("bob", "report three", "final numbers "), ("dave", "lunch again", "soup "),
        ("ann", "misc", "nothing "), ("carol", "report four", "the end "),
    ])
]

#: after the APPENDs: \Seen on 2, 4, 6, 8; \Flagged on 3; message 5 (UID 5) expunged, so UIDs are 1:4,6:8
SETUP = [
    "SELECT INBOX",
    "STORE 2,4,6,8 +FLAGS.SILENT (\\Seen)",
    "STORE 3 +FLAGS.SILENT (\\Flagged)",
    "STORE 5 +FLAGS.SILENT (\\Deleted)",
    "EXPUNGE",
]

COMMANDS = [
    # ESEARCH: every option, alone and together, in both forms
    "SEARCH RETURN (MIN MAX COUNT ALL) ALL",
    "SEARCH RETURN () ALL",
    "SEARCH RETURN (ALL) SEEN",
    "SEARCH RETURN (ALL) UNSEEN",
    "SEARCH RETURN (MIN) UNSEEN",
    "SEARCH RETURN (MAX) UNSEEN",
    "SEARCH RETURN (COUNT) UNSEEN",
    "SEARCH RETURN (COUNT MAX MIN) SUBJECT report",
    "SEARCH RETURN (ALL) OR FLAGGED FROM carol",
    "SEARCH RETURN (ALL) 2:4,6",
    "SEARCH RETURN (ALL) 6:*",
    "UID SEARCH RETURN (ALL) ALL",
    "UID SEARCH RETURN () 1:*",
    "UID SEARCH RETURN (MIN MAX COUNT) NOT SEEN",
    "UID SEARCH RETURN (ALL) UID 4:6",
    "UID SEARCH RETURN (COUNT) FROM ann",
    # nothing found
    "SEARCH RETURN (ALL) DELETED",
    "SEARCH RETURN (MIN MAX COUNT ALL) SUBJECT nowhere",
    "SEARCH RETURN () 1000",
    "UID SEARCH RETURN (COUNT) 1000",
    "UID SEARCH RETURN (MIN) 1000",
    # errors
    "SEARCH RETURN (FOO) ALL",
    "SEARCH RETURN MIN ALL",
    "SEARCH RETURN (MIN)",
    # without RETURN: the classic answer
    "SEARCH SUBJECT report",
    "UID SEARCH UNSEEN",
    # SEARCHRES: SAVE alone answers nothing; "$" in SEARCH and FETCH, both forms
    "SEARCH RETURN (SAVE) SUBJECT report",
    "SEARCH $",
    "UID SEARCH $",
    "SEARCH RETURN (ALL) $ SEEN",
    "SEARCH RETURN (ALL) NOT $",
    "FETCH $ (UID)",
    "UID FETCH $ (UID)",
    # SAVE with MIN and/or MAX keeps only those; with ALL or COUNT every match
    "SEARCH RETURN (SAVE MIN) UNSEEN",
    "UID SEARCH $",
    "SEARCH RETURN (SAVE MIN MAX) UNSEEN",
    "UID SEARCH $",
    "SEARCH RETURN (SAVE MAX COUNT) UNSEEN",
    "UID SEARCH $",
    "UID SEARCH RETURN (SAVE ALL MIN) FROM ann",
    "SEARCH $",
    "UID SEARCH RETURN (SAVE COUNT) $ UNSEEN",
    "SEARCH $",
    # a BAD search keeps "$"; a NO one empties it
    "SEARCH RETURN (SAVE) NOSUCHKEY",
    "UID SEARCH $",
    "SEARCH RETURN (SAVE) CHARSET X-NO-SUCH-CHARSET ALL",
    "UID SEARCH $",
    "FETCH $ (UID)",
    # an empty result saved
    "SEARCH RETURN (SAVE) DELETED",
    "SEARCH RETURN (COUNT) $",
    # MODSEQ (the values are each server's own: compared as "n"), last, as it enables CONDSTORE
    "SEARCH RETURN (MIN) MODSEQ 1",
    "SEARCH RETURN (COUNT) MODSEQ 1",
    "UID SEARCH RETURN (MIN MAX) MODSEQ 1",
    "SEARCH RETURN (ALL) MODSEQ 999999",
]

_TAG = re.compile(rb'\(TAG "[^"]*"\)')
_MODSEQ = re.compile(rb"(MODSEQ \(?)\d+")
_CODE_TEXT = re.compile(rb"^(\* (?:OK|NO|BAD) \[[^\]]*\]).*$")


def normalize(response: bytes) -> str:
    """An untagged response as compared: without CRLF, ``(TAG "$")``, MOD-SEQUENCE values as ``n``, and of a
    ``* OK [CODE] text`` line only the code (the text is each server's own)."""
    line = _MODSEQ.sub(rb"\1n", _TAG.sub(b'(TAG "$")', response.removesuffix(b"\r\n")))
    return _CODE_TEXT.sub(rb"\1", line).decode("latin-1")


def session(m: imaplib.IMAP4) -> list[dict[str, Any]]:
    """Append ``MESSAGES`` to INBOX, run ``SETUP``, then every command of ``COMMANDS``: their answers."""
    for message in MESSAGES:
        appended = wire.append(m, "INBOX", message)
        assert appended.status == "OK", appended.line
    return run(m, SETUP, COMMANDS)


def run(m: imaplib.IMAP4, setup: list[str], commands: list[str]) -> list[dict[str, Any]]:
    """Run the ``setup`` commands (each must succeed), then ``commands``: their statuses and normalized untagged
    responses."""
    for line in setup:
        done = wire.command(m, line.encode())
        assert done.status == "OK", done.line
    answers = []
    for line in commands:
        done = wire.command(m, line.encode())
        answers.append({"command": line, "status": done.status, "untagged": [normalize(r) for r in done.untagged]})
    return answers


def main() -> int:
    return wire.record(session, ANSWERS, "esearch", USER, PASSWORD)


if __name__ == "__main__":
    sys.exit(main())
