"""Record Dovecot's SORT (RFC 5256), ESORT (RFC 5267 4) and SORT=DISPLAY (RFC 5957) answers: the oracle of
tests/protocols/imap/test_esearch_oracle.py (the ``sort`` case).

Run by hand, from the repository root, after installing Debian's Dovecot (``apt-get install dovecot-imapd``; the
package's own service is not used and need not run)::

    .venv/bin/python -m tests.oracle.record_dovecot_sort

It starts a private Dovecot (``wildduck.testing.dovecot``), APPENDs the messages of ``MESSAGES`` (byte for byte
from ``tests/oracle/sort-corpus.txt``, each with its own internal date) to INBOX, runs the ``SETUP`` commands
(copies that share internal dates, flags, one message expunged) and then every command of ``COMMANDS`` in order,
and writes ``tests/oracle/sort.json`` in the shape of ``esearch.json`` (``untagged`` normalized by
:func:`tests.oracle.record_dovecot_esearch.normalize`, through its ``run``).

The corpus is made for the rules that are easy to get wrong: subjects with RFC 2047 encoded words, ``Re:`` /
``Fwd:`` / ``[blob]`` / ``(fwd)`` / ``[fwd: ...]`` around the same base subject, a message without Subject, Date
headers in several zones, missing and unparseable (DATE falls back to the internal date), display names encoded or
quoted or absent (DISPLAYFROM falls back to the address), messages without To or Cc, and equal keys everywhere (the
tie-break is the sequence number, and REVERSE does not reverse it).

Left out on purpose: charsets other than US-ASCII and UTF-8 (Dovecot converts ISO-8859-1 and others; wildduck
answers NO [BADCHARSET], which RFC 5256 allows), and ``REVERSE REVERSE key`` (Dovecot takes it as the key not
reversed; RFC 5256's grammar has one REVERSE per key, and wildduck answers BAD).
"""

from __future__ import annotations

import imaplib
import sys
from pathlib import Path
from typing import Any

from tests.oracle import wire
from tests.oracle.record_dovecot_esearch import run

HERE = Path(__file__).resolve().parent
ANSWERS = HERE / "sort.json"
USER, PASSWORD = "oracle", "oracle-pw"


def corpus(path: Path) -> list[tuple[str, bytes]]:
    """(internal date, message) of each message of the corpus file: after a line ``=== date``, its lines (CRLF)."""
    messages: list[tuple[str, list[str]]] = []
    for line in path.read_text(encoding="utf-8").split("\n")[:-1]:
        if line.startswith("=== "):
            messages.append((line[4:], []))
        elif messages:
            messages[-1][1].append(line)
    return [(date, ("\r\n".join(lines) + "\r\n").encode()) for date, lines in messages]


#: the messages (tests/oracle/sort-corpus.txt): sizes differ except where equal on purpose (messages 4 and 5)
MESSAGES = corpus(HERE / "sort-corpus.txt")

#: after the APPENDs: 1 and 9 copied (the copies keep their internal dates: ARRIVAL ties), \Seen on some, message
#: 7 expunged (a UID gap)
SETUP = [
    "SELECT INBOX",
    "COPY 1,9 INBOX",
    "NOOP",
    "STORE 2,4,6,8,10 +FLAGS.SILENT (\\Seen)",
    "STORE 7 +FLAGS.SILENT (\\Deleted)",
    "EXPUNGE",
]

_ALL_KEYS = ["ARRIVAL", "DATE", "SIZE", "SUBJECT", "FROM", "TO", "CC", "DISPLAYFROM", "DISPLAYTO"]

COMMANDS = [
    *(f"SORT ({key}) UTF-8 ALL" for key in _ALL_KEYS),
    *(f"SORT (REVERSE {key}) UTF-8 ALL" for key in _ALL_KEYS),
    *(f"UID SORT ({key}) UTF-8 ALL" for key in _ALL_KEYS),
    # several keys, REVERSE on some
    "SORT (SUBJECT DATE) UTF-8 ALL",
    "SORT (SUBJECT REVERSE DATE) UTF-8 ALL",
    "SORT (REVERSE SUBJECT ARRIVAL) UTF-8 ALL",
    "SORT (FROM SUBJECT) UTF-8 ALL",
    "SORT (CC REVERSE SIZE) UTF-8 ALL",
    "SORT (DISPLAYTO DISPLAYFROM) UTF-8 ALL",
    "SORT (ARRIVAL REVERSE ARRIVAL) UTF-8 ALL",
    "sort (reverse date) utf-8 all",
    # search criteria: through SEARCH
    "SORT (SUBJECT) UTF-8 SUBJECT lunch",
    "SORT (DATE) US-ASCII UNSEEN",
    "SORT (SIZE) UTF-8 2:6",
    "UID SORT (REVERSE ARRIVAL) UTF-8 UID 3:10",
    "SORT (FROM) UTF-8 OR FROM bob TO ann",
    "SORT (SUBJECT) UTF-8 SUBJECT {5+}\r\ncaf\u00e9",
    "SORT (DATE) UTF-8 DELETED",
    "UID SORT (DATE) UTF-8 1000",
    # ESORT
    "SORT RETURN (MIN MAX COUNT ALL) (SUBJECT) UTF-8 ALL",
    "SORT RETURN () (REVERSE DATE) UTF-8 ALL",
    "SORT RETURN (ALL) (ARRIVAL) UTF-8 ALL",
    "SORT RETURN (ALL) (REVERSE ARRIVAL) UTF-8 ALL",
    "UID SORT RETURN (ALL) (SIZE) UTF-8 ALL",
    "UID SORT RETURN (MIN MAX) (REVERSE SIZE) UTF-8 ALL",
    "SORT RETURN (COUNT) (DATE) UTF-8 UNSEEN",
    "SORT RETURN (MIN) (DATE) UTF-8 DELETED",
    "SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 DELETED",
    # SEARCHRES with SORT (RFC 5182 2.4)
    "SORT RETURN (SAVE) (DATE) UTF-8 FROM bob",
    "UID SEARCH $",
    "SORT (REVERSE SUBJECT) UTF-8 $",
    "SORT RETURN (SAVE MIN) (REVERSE SIZE) UTF-8 ALL",
    "UID SEARCH $",
    "SORT RETURN (SAVE MAX ALL) (SUBJECT) UTF-8 UNSEEN",
    "UID SEARCH $",
    "UID SORT RETURN (SAVE COUNT) (DATE) UTF-8 SUBJECT budget",
    "SEARCH $",
    # errors
    "SORT (FOO) UTF-8 ALL",
    "SORT () UTF-8 ALL",
    "SORT SUBJECT UTF-8 ALL",
    "SORT (REVERSE) UTF-8 ALL",
    "SORT (SUBJECT UTF-8 ALL",
    "SORT (SUBJECT) UTF-8",
    "SORT (SUBJECT)",
    "SORT (SUBJECT) UTF-8 NOSUCHKEY",
    "SORT RETURN (FOO) (SUBJECT) UTF-8 ALL",
    "SORT (SUBJECT) X-NO-SUCH-CHARSET ALL",
    "SORT RETURN (SAVE) (SUBJECT) X-NO-SUCH-CHARSET ALL",
    "UID SEARCH $",
]


def session(m: imaplib.IMAP4) -> list[dict[str, Any]]:
    """Append ``MESSAGES`` to INBOX (each with its internal date), run ``SETUP``, then every command of
    ``COMMANDS``: their answers."""
    for date, message in MESSAGES:
        appended = wire.append(m, f'INBOX "{date}"', message)
        assert appended.status == "OK", appended.line
    return run(m, SETUP, COMMANDS)


def main() -> int:
    return wire.record(session, ANSWERS, "sort", USER, PASSWORD)


if __name__ == "__main__":
    sys.exit(main())
