"""Record Dovecot's BINARY (RFC 3516) answers: the oracle of tests/protocols/imap/test_binary_oracle.py.

Run by hand, from the repository root, after installing Debian's Dovecot (``apt-get install dovecot-imapd``; the
package's own service is not used and need not run)::

    .venv/bin/python -m tests.oracle.record_dovecot_binary

It starts a private Dovecot (``wildduck.testing.dovecot``), APPENDs the messages of ``MESSAGES`` (made here, byte
for byte) to INBOX with ordinary literals, selects INBOX and runs every command of ``COMMANDS`` (BINARY.SIZE and
BINARY.PEEK of every part of every message, whole and in ranges), and writes ``tests/oracle/binary.json``::

    {"dovecot": "<dovecot --version>", "answers": [{"command": "FETCH 1 (BINARY.SIZE[1])", "status": "OK",
                                                    "untagged": ["* 1 FETCH (BINARY.SIZE[1] 11)"]}, ...]}

``untagged`` are the command's untagged responses byte for byte (literals and ``~{n}`` literal8 announcements
included), without the final CRLF, as latin-1 text; ``status`` is the tagged OK, NO or BAD (the text is each
server's own; a NO's response code is kept: ``NO [UNKNOWN-CTE]``).

Left out on purpose, where Dovecot departs from RFC 3516 and wildduck does not: BINARY[1.MIME], BINARY[TEXT] and a
partial BINARY.SIZE (Dovecot answers them; the grammar has none of them, wildduck says BAD), and BINARY.SIZE of a
decodable part of a message that also has a part in an unknown encoding (Dovecot refuses it for the whole
message; wildduck answers it).
"""

from __future__ import annotations

import base64
import imaplib
import re
import sys
from pathlib import Path
from typing import Any

from tests.oracle import wire

HERE = Path(__file__).resolve().parent
ANSWERS = HERE / "binary.json"
USER, PASSWORD = "oracle", "oracle-pw"

_HEAD = b"From: a@example.net\r\nTo: b@example.com\r\nSubject: %s\r\nMIME-Version: 1.0\r\n"
_BYTES = bytes(range(1, 256)) + b"\x00\x00tail"  # every octet value, NULs last (base64 carries them)


def _part(ctype: bytes, cte: bytes | None, body: bytes) -> bytes:
    header = b"Content-Type: " + ctype + b"\r\n"
    if cte is not None:
        header += b"Content-Transfer-Encoding: " + cte + b"\r\n"
    return header + b"\r\n" + body


def _multipart(subject: bytes, parts: list[bytes]) -> bytes:
    body = b"".join(b"--zz\r\n" + p + b"\r\n" for p in parts)
    return _HEAD % subject + b"Content-Type: multipart/mixed; boundary=zz\r\n\r\npreamble\r\n" + body + b"--zz--\r\n"


_B64 = base64.encodebytes(_BYTES).replace(b"\n", b"\r\n").rstrip(b"\r\n")
#: part paths of each message, for ``COMMANDS``
MESSAGES: list[tuple[bytes, list[str]]] = [
    # one part: quoted-printable with soft breaks, trailing white space, =XX (an encoded NUL too)
    (_HEAD % b"qp" + _part(b"text/plain; charset=utf-8", b"Quoted-Printable",
                           b"caf=C3=A9 au  \r\nlait=\r\n, soft =  \r\nbreak=3D=3d=00end\r\nlast line=\r\n"), [""]),
    # one part in base64 (lower-case encoding name), every octet
    (_HEAD % b"b64" + _part(b"application/octet-stream", b"base64", _B64 + b"\r\n"), [""]),
    (_multipart(b"mixed", [
        _part(b"text/plain", None, b"plain text, no encoding"),
        _part(b"text/plain", b"7bit", b"seven bit"),
        _part(b"text/html", b"8bit", "eight bit \u00e9".encode()),
        _part(b"image/png", b"BASE64", _B64[:40] + b"\r\n" + _B64[40:200]),
        _part(b"text/plain", b"quoted-printable", b"a=\r\nb=20\r\n=E2=82=AC"),
        _part(b"message/rfc822", None, _HEAD % b"inner" + _part(b"text/plain", b"base64", b"aW5uZXIgdGV4dA==")),
        _part(b"multipart/alternative; boundary=yy", None,
              b"--yy\r\n" + _part(b"text/plain", b"base64", b"YWx0ZXJuYXRpdmU=") + b"\r\n--yy\r\n"
              + _part(b"text/plain", b"quoted-printable", b"=41=42") + b"\r\n--yy--"),
    ]), ["", "1", "2", "3", "4", "5", "6", "6.1", "7", "7.1", "7.2", "9"]),
    # an encoding no server undoes: NO [UNKNOWN-CTE], for the part and for the message
    (_multipart(b"uuencoded", [_part(b"text/plain", None, b"fine"),
                               _part(b"text/plain", b"x-uuencode", b"begin 644 f\r\n#86)C\r\n`\r\nend")]),
     ["", "2"]),
]

COMMANDS = [
    *(f"FETCH {seq} (BINARY.SIZE[{path}])" for seq, (_m, paths) in enumerate(MESSAGES, 1) for path in paths),
    *(f"FETCH {seq} (BINARY.PEEK[{path}])" for seq, (_m, paths) in enumerate(MESSAGES, 1) for path in paths),
    "FETCH 1 (BINARY.PEEK[1]<0.4> BINARY.PEEK[1]<4.20> BINARY.PEEK[1]<40.100> BINARY.PEEK[1]<200>)",
    "FETCH 2 (BINARY.PEEK[1]<250.10> BINARY.PEEK[1]<0.3>)",
    "FETCH 3 (BINARY.SIZE[4] BINARY.PEEK[4]<10.5> BINARY.SIZE[6.1] BINARY.PEEK[5]<1.2>)",
    "FETCH 4 (BINARY.PEEK[1])",
    "FETCH 1:3 (BINARY.SIZE[1])",
    "FETCH 3:4 (BINARY.SIZE[2])",
]

def command(m: imaplib.IMAP4, text: str) -> dict[str, Any]:
    """Run one command: its status (with a NO's response code) and its untagged responses, byte for byte
    (``wire`` reads a literal8 as any literal: its announcement ends in ``{n}``)."""
    done = wire.command(m, text.encode())
    status = done.status
    code = re.match(rb"\S+ NO (\[[^\]]*\])", done.line)
    if code is not None:
        status += " " + code.group(1).decode()
    return {"command": text, "status": status,
            "untagged": [r.removesuffix(b"\r\n").decode("latin-1") for r in done.untagged]}


def session(m: imaplib.IMAP4) -> list[dict[str, Any]]:
    """Append ``MESSAGES`` to INBOX, select it, run every command of ``COMMANDS``: their answers."""
    for message, _paths in MESSAGES:
        appended = wire.append(m, "INBOX", message)
        assert appended.status == "OK", appended.line
    assert command(m, "EXAMINE INBOX")["status"] == "OK"
    return [command(m, line) for line in COMMANDS]


def main() -> int:
    return wire.record(session, ANSWERS, "binary", USER, PASSWORD)


if __name__ == "__main__":
    sys.exit(main())
