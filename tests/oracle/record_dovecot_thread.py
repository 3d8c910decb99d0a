"""Record Dovecot's THREAD answers (RFC 5256: REFERENCES and ORDEREDSUBJECT): the oracle of
tests/protocols/imap/test_esearch_oracle.py (the ``thread`` case).

Run by hand, from the repository root, after installing Debian's Dovecot (``apt-get install dovecot-imapd``)::

    .venv/bin/python -m tests.oracle.record_dovecot_thread

It starts a private Dovecot, APPENDs the messages of ``MESSAGES`` to INBOX (each with its internal date), runs
``SETUP`` (one message expunged) and then every command of ``COMMANDS``, and writes ``tests/oracle/thread.json`` in
the shape of ``esearch.json``.

The corpus is made for the rules of RFC 5256 §3: a chain by References, replies by In-Reply-To alone, a parent that
is missing (a dummy with two children kept at the top; with one child, promoted), two threads of one base subject
merged (``Re:`` grouping), References that loop, a message referring to itself, a duplicate Message-ID, messages
without Message-ID, unparseable and missing Dates (the internal date then), and a long References chain.
"""

from __future__ import annotations

import imaplib
import sys
from pathlib import Path
from typing import Any

from tests.oracle import wire
from tests.oracle.record_dovecot_esearch import run

HERE = Path(__file__).resolve().parent
ANSWERS = HERE / "thread.json"
USER, PASSWORD = "oracle", "oracle-pw"


def _message(subject: str, date: str | None, message_id: str | None, *, refs: str = "", reply_to: str = "") -> bytes:
    head = f"From: someone@example.org\r\nTo: oracle@example.com\r\nSubject: {subject}\r\n"
    if date is not None:
        head += f"Date: {date}\r\n"
    if message_id is not None:
        head += f"Message-ID: <{message_id}>\r\n"
    if refs:
        head += f"References: {refs}\r\n"
    if reply_to:
        head += f"In-Reply-To: {reply_to}\r\n"
    return (head + "\r\n" + f"about {subject}\r\n").encode()


_D = "Mon, 02 Mar 2026 {:02d}:00:00 +0000"
#: (internal date, message)
MESSAGES: list[tuple[str, bytes]] = [
    ("01-Mar-2026 10:00:00 +0000", _message("Plans", _D.format(1), "p1@x")),
    ("01-Mar-2026 10:01:00 +0000", _message("Re: Plans", _D.format(3), "p2@x", refs="<p1@x>")),
    ("01-Mar-2026 10:02:00 +0000", _message("Re: Plans", _D.format(2), "p3@x", reply_to="<p1@x>")),
    ("01-Mar-2026 10:03:00 +0000", _message("Re: Re: Plans", _D.format(4), "p4@x", refs="<p1@x> <p2@x>")),
    # two replies to a message that is not there: a dummy parent
    ("01-Mar-2026 10:04:00 +0000", _message("Re: Lost", _D.format(5), "l2@x", refs="<lost@x>")),
    ("01-Mar-2026 10:05:00 +0000", _message("Re: Lost", _D.format(6), "l3@x", refs="<lost@x>")),
    # one reply to a missing parent: promoted
    ("01-Mar-2026 10:06:00 +0000", _message("Re: Alone", _D.format(7), "a2@x", refs="<gone@x>")),
    # same base subject, no references: grouped by subject
    ("01-Mar-2026 10:07:00 +0000", _message("Budget", _D.format(8), "b1@x")),
    ("01-Mar-2026 10:08:00 +0000", _message("Re: budget", _D.format(9), "b2@x")),
    ("01-Mar-2026 10:09:00 +0000", _message("Fwd: [team] Budget", _D.format(10), "b3@x")),
    # a loop in the references, and a message that refers to itself
    ("01-Mar-2026 10:10:00 +0000", _message("Loop", _D.format(11), "o1@x", refs="<o2@x>")),
    ("01-Mar-2026 10:11:00 +0000", _message("Re: Loop", _D.format(12), "o2@x", refs="<o1@x>")),
    ("01-Mar-2026 10:12:00 +0000", _message("Self", _D.format(13), "s1@x", refs="<s1@x>")),
    # a duplicate Message-ID, messages without one, a bad and a missing Date
    ("01-Mar-2026 10:13:00 +0000", _message("Dup", _D.format(14), "d1@x")),
    ("01-Mar-2026 10:14:00 +0000", _message("Dup again", _D.format(15), "d1@x")),
    ("01-Mar-2026 10:15:00 +0000", _message("No id", _D.format(16), None)),
    ("01-Mar-2026 10:16:00 +0000", _message("Re: No id", "garbage", None)),
    ("01-Mar-2026 09:00:00 +0000", _message("Undated", None, "u1@x")),
    # a long chain, each naming all its ancestors
    *((f"01-Mar-2026 11:{k:02d}:00 +0000",
       _message("Re: Chain" if k else "Chain", _D.format(17), f"c{k}@x",
                refs=" ".join(f"<c{j}@x>" for j in range(k))))
      for k in range(8)),
    # a reply whose References skip a level that exists (c3), and In-Reply-To disagreeing with References
    ("01-Mar-2026 12:00:00 +0000", _message("Re: Chain", _D.format(18), "c9@x", refs="<c0@x> <c1@x>",
                                            reply_to="<c5@x>")),
]

SETUP = [
    "SELECT INBOX",
    "STORE 1,8 +FLAGS.SILENT (\\Seen)",
    "STORE 14 +FLAGS.SILENT (\\Deleted)",
    "EXPUNGE",
]

COMMANDS = [
    "THREAD REFERENCES UTF-8 ALL",
    "THREAD ORDEREDSUBJECT UTF-8 ALL",
    "UID THREAD REFERENCES UTF-8 ALL",
    "UID THREAD ORDEREDSUBJECT UTF-8 ALL",
    "THREAD REFERENCES US-ASCII SEEN",
    "THREAD REFERENCES UTF-8 UNSEEN",
    "THREAD REFERENCES UTF-8 SUBJECT chain",
    "THREAD ORDEREDSUBJECT UTF-8 SUBJECT budget",
    "UID THREAD REFERENCES UTF-8 UID 1:5",
    "THREAD REFERENCES UTF-8 DELETED",
    "thread references utf-8 all",
    # errors
    "THREAD NOSUCH UTF-8 ALL",
    "THREAD REFERENCES UTF-8",
    "THREAD REFERENCES",
    "THREAD",
    "THREAD REFERENCES UTF-8 NOSUCHKEY",
    "THREAD REFERENCES X-NO-SUCH-CHARSET ALL",
]


def session(m: imaplib.IMAP4) -> list[dict[str, Any]]:
    """Append ``MESSAGES`` to INBOX, run ``SETUP``, then every command of ``COMMANDS``: their answers."""
    for date, message in MESSAGES:
        appended = wire.append(m, f'INBOX "{date}"', message)
        assert appended.status == "OK", appended.line
    return run(m, SETUP, COMMANDS)


def main() -> int:
    return wire.record(session, ANSWERS, "thread", USER, PASSWORD)


if __name__ == "__main__":
    sys.exit(main())
