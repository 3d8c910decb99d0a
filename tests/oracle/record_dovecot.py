"""Record Dovecot's FETCH answers as fixtures: the oracle of tests/protocols/imap/test_dovecot_oracle.py.

Run by hand, from the repository root, after installing Debian's Dovecot (``apt-get install dovecot-imapd``; the
package's own service is not used and need not run)::

    .venv/bin/python -m tests.oracle.record_dovecot            # record every message
    .venv/bin/python -m tests.oracle.record_dovecot nul-bytes  # only the messages named (file stems)

It starts a private Dovecot in a temporary directory (its own configuration, a maildir, one passwd-file user,
plaintext LOGIN on a free loopback port, no SSL, logs in the temporary directory; nothing of the system's Dovecot
or other services is touched), APPENDs each message (byte for byte, over ``imaplib``'s connection) to a mailbox of
its own, and FETCHes, one item per command, ENVELOPE, BODYSTRUCTURE, BODY, RFC822.SIZE, BODY.PEEK[],
BODY.PEEK[HEADER], BODY.PEEK[TEXT], BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)], BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT)],
BODY.PEEK[]<10.20>, and for every part path n found in Dovecot's BODYSTRUCTURE (through message/rfc822 parts too)
BODY.PEEK[n] and BODY.PEEK[n.MIME], plus BODY.PEEK[n.HEADER] and BODY.PEEK[n.TEXT] for message/rfc822 parts, and
one part number past the last.

The messages: a selection of the shared corpus (``tests/data/imaptest.mbox``, stored as ``corpus-NN.eml``,
NN its index in the mbox, line endings made CRLF) and the hand-written malformed ones in ``tests/oracle/messages/``.
For each message ``NAME`` it writes ``tests/oracle/fixtures/NAME.eml`` (the exact bytes appended) and
``NAME.json``::

    {"dovecot": "<dovecot --version>", "message": "NAME.eml", "append": "OK",
     "answers": [{"item": "BODY.PEEK[1]", "response": "BODY[1] {5}\\r\\nhello"}, ...]}

``response`` is the data between the parentheses of ``* 1 FETCH (...)``, every byte kept: the string is the bytes
decoded as latin-1. ``append`` is the status of the APPEND (a message Dovecot refuses has no answers).
"""

from __future__ import annotations

import contextlib
import imaplib
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.corpus import MBOX, corpus, crlf
from tests.oracle import wire
from wildduck.testing import dovecot

HERE = Path(__file__).resolve().parent
MESSAGES = HERE / "messages"
FIXTURES = HERE / "fixtures"
DOVECOT = dovecot.DOVECOT
USER, PASSWORD = "oracle", "oracle-pw"

#: indexes in the corpus mbox of the messages recorded (all of it but near duplicates: 48 messages, 65 KB)
CORPUS = [i for i in range(48) if i not in (8, 12, 20, 29)]

@contextlib.contextmanager
def private_dovecot() -> Iterator[tuple[int, Path]]:
    """A private Dovecot under a temporary directory; yields (port, directory)."""
    tmp = Path(tempfile.mkdtemp(prefix="dovecot-oracle-"))
    try:
        with dovecot.private_dovecot(tmp, USER, PASSWORD, binary=DOVECOT) as instance:
            yield instance.port, tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def messages() -> dict[str, bytes]:
    """The message set: name → exact bytes appended."""
    out: dict[str, bytes] = {}
    mbox = corpus()
    assert len(mbox) == 48, f"unexpected corpus {MBOX}"
    for i in CORPUS:
        out[f"corpus-{i:02d}"] = crlf(mbox[i])
    for path in sorted(MESSAGES.glob("*.eml")):
        out[path.stem] = path.read_bytes()
    return out


def record(m: imaplib.IMAP4, name: str, message: bytes, version: str) -> dict[str, object]:
    mailbox = f"m-{name}"
    created = wire.command(m, f'CREATE "{mailbox}"'.encode())
    assert created.status == "OK", created.line
    appended = wire.append(m, mailbox, message)
    result: dict[str, object] = {"dovecot": version, "message": f"{name}.eml", "append": appended.status,
                                 "answers": []}
    if appended.status != "OK":
        return result
    selected = wire.command(m, f'EXAMINE "{mailbox}"'.encode())
    assert selected.status == "OK", selected.line
    structure = wire.fetch(m, 1, "BODYSTRUCTURE")
    result["answers"] = [{"item": item, "response": wire.fetch(m, 1, item).decode("latin-1")}
                         for item in wire.items_for(structure)]
    return result


def main(argv: list[str]) -> int:
    version = dovecot.version(DOVECOT)
    chosen = messages()
    if argv:
        unknown = set(argv) - set(chosen)
        if unknown:
            print(f"unknown messages: {sorted(unknown)}", file=sys.stderr)
            return 2
        chosen = {k: v for k, v in chosen.items() if k in argv}
    FIXTURES.mkdir(exist_ok=True)
    with private_dovecot() as (port, _tmp):
        m = imaplib.IMAP4("127.0.0.1", port)
        m.login(USER, PASSWORD)
        total = 0
        for name, message in chosen.items():
            result = record(m, name, message, version)
            (FIXTURES / f"{name}.eml").write_bytes(message)
            (FIXTURES / f"{name}.json").write_text(json.dumps(result, indent=1, ensure_ascii=True) + "\n")
            answers = result["answers"]
            assert isinstance(answers, list)
            total += len(answers)
            print(f"{name}: APPEND {result['append']}, {len(answers)} answers")
        m.logout()
    print(f"{len(chosen)} messages, {total} answers recorded from Dovecot {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
