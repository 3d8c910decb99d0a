"""Byte-exact IMAP exchanges for the Dovecot oracle, on top of an ``imaplib.IMAP4`` connection.

``imaplib`` logs in and owns the socket; APPEND and FETCH go through its public ``send``/``readline``/``read`` so
that nothing is rewritten on the way (``IMAP4.append`` turns every line ending into CRLF, and ``IMAP4.fetch``
splits literals from their lines). Shared by ``record_dovecot.py`` (recording) and the oracle test (comparing).
"""

from __future__ import annotations

import imaplib
import itertools
import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")
_FETCH = re.compile(rb"\* (\d+) FETCH \(")
_tags = itertools.count(1)

#: the items fetched for every message, before the per-part ones (see :func:`items_for`)
BASE_ITEMS = [
    "ENVELOPE",
    "BODYSTRUCTURE",
    "BODY",
    "RFC822.SIZE",
    "BODY.PEEK[]",
    "BODY.PEEK[HEADER]",
    "BODY.PEEK[TEXT]",
    "BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]",
    "BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT)]",
    "BODY.PEEK[]<10.20>",
]


@dataclass
class Tagged:
    """The end of a command: the untagged responses before it (each with its literals) and the tagged line."""

    untagged: list[bytes]
    status: str
    line: bytes


def _tag() -> bytes:
    return b"W%d" % next(_tags)


def read_response(m: imaplib.IMAP4) -> bytes:
    """One whole response: a line and, for every literal it announces, the literal and the rest of the line."""
    out = bytearray()
    while True:
        line = m.readline()
        if not line:
            raise EOFError("connection closed")
        out += line
        lit = _LITERAL.search(line)
        if lit is None:
            return bytes(out)
        out += m.read(int(lit.group(1)))


def until_tagged(m: imaplib.IMAP4, tag: bytes) -> Tagged:
    untagged: list[bytes] = []
    while True:
        resp = read_response(m)
        if resp.startswith(tag + b" "):
            status = resp[len(tag) + 1:].split(b" ", 1)[0].decode("ascii", "replace")
            return Tagged(untagged, status, resp)
        untagged.append(resp)


def command(m: imaplib.IMAP4, text: bytes) -> Tagged:
    tag = _tag()
    m.send(tag + b" " + text + b"\r\n")
    return until_tagged(m, tag)


def append(m: imaplib.IMAP4, mailbox: str, message: bytes) -> Tagged:
    """APPEND ``message`` exactly as given (synchronizing literal)."""
    tag = _tag()
    m.send(tag + b" APPEND " + mailbox.encode() + b" {%d}\r\n" % len(message))
    first = read_response(m)
    if not first.startswith(b"+"):
        if first.startswith(tag + b" "):
            return Tagged([], first[len(tag) + 1:].split(b" ", 1)[0].decode(), first)
        raise AssertionError(f"unexpected answer to APPEND: {first!r}")
    m.send(message + b"\r\n")
    return until_tagged(m, tag)


def fetch(m: imaplib.IMAP4, seq: int, item: str) -> bytes:
    """The data of ``* seq FETCH (...)`` for one item: what is between the parentheses, byte for byte."""
    done = command(m, b"FETCH %d (%s)" % (seq, item.encode()))
    if done.status != "OK":
        raise AssertionError(f"FETCH {item} failed: {done.line!r}")
    found = [r for r in done.untagged if (mm := _FETCH.match(r)) is not None and int(mm.group(1)) == seq]
    if len(found) != 1 or not found[0].endswith(b")\r\n"):
        raise AssertionError(f"FETCH {item}: expected one FETCH response, got {done.untagged!r}")
    resp = found[0]
    return resp[_FETCH.match(resp).end():-3]  # type: ignore[union-attr]


# --- reading BODYSTRUCTURE to enumerate part paths --------------------------------------------------------------
def parse(data: bytes) -> Any:
    """IMAP data (as in FETCH answers) to nested lists of bytes / int / None."""

    def value(i: int) -> tuple[Any, int]:
        while data[i:i + 1] == b" ":
            i += 1
        c = data[i:i + 1]
        if c == b"(":
            items: list[Any] = []
            i += 1
            while True:
                while data[i:i + 1] == b" ":
                    i += 1
                if data[i:i + 1] == b")":
                    return items, i + 1
                v, i = value(i)
                items.append(v)
        if c == b'"':
            out = bytearray()
            i += 1
            while data[i:i + 1] != b'"':
                if data[i:i + 1] == b"\\":
                    i += 1
                out += data[i:i + 1]
                i += 1
            return bytes(out), i + 1
        if c == b"{":
            close = data.index(b"}", i)
            n = int(data[i + 1:close].rstrip(b"+"))
            start = close + 3
            return data[start:start + n], start + n
        m = re.compile(rb"[^ ()]+").match(data, i)
        assert m is not None, data[i:]
        tok = m.group()
        if tok.upper() == b"NIL":
            return None, m.end()
        return (int(tok) if tok.isdigit() else tok), m.end()

    v, _ = value(0)
    return v


def _is_multipart(body: Any) -> bool:
    return isinstance(body, list) and bool(body) and isinstance(body[0], list)


def _children(body: Any) -> list[Any]:
    """The parts of a multipart: the lists before its subtype."""
    out: list[Any] = []
    for item in body:
        if not isinstance(item, list):
            break
        out.append(item)
    return out


def _is_message(body: Any) -> bool:
    return (isinstance(body, list) and len(body) > 8 and isinstance(body[0], bytes) and isinstance(body[1], bytes)
            and body[0].lower() == b"message" and body[1].lower() in (b"rfc822", b"global")
            and isinstance(body[8], list))


def part_paths(structure: Any) -> Iterator[tuple[str, bool]]:
    """(path, is an encapsulated message) for every part of a BODYSTRUCTURE, depth first (RFC 3501 6.4.5)."""

    def message(body: Any, prefix: str) -> Iterator[tuple[str, bool]]:
        if _is_multipart(body):
            for n, child in enumerate(_children(body), 1):
                yield from part(child, f"{prefix}{n}")
        else:
            yield from part(body, f"{prefix}1")

    def part(body: Any, path: str) -> Iterator[tuple[str, bool]]:
        yield path, _is_message(body)
        if _is_multipart(body):
            for n, child in enumerate(_children(body), 1):
                yield from part(child, f"{path}.{n}")
        elif _is_message(body):
            yield from message(body[8], f"{path}.")

    yield from message(structure, "")


def items_for(bodystructure_answer: bytes) -> list[str]:
    """Every item fetched for a message, given the server's ``BODYSTRUCTURE (...)`` answer."""
    structure = parse(bodystructure_answer[len(b"BODYSTRUCTURE "):])
    items = list(BASE_ITEMS)
    last_top = 0
    for path, is_message in part_paths(structure):
        items += [f"BODY.PEEK[{path}]", f"BODY.PEEK[{path}.MIME]"]
        if is_message:
            items += [f"BODY.PEEK[{path}.HEADER]", f"BODY.PEEK[{path}.TEXT]"]
        if "." not in path:
            last_top = int(path)
    items.append(f"BODY.PEEK[{last_top + 1}]")  # a part that does not exist
    return items


def record(session: Callable[[imaplib.IMAP4], list[Any]], answers: Path, label: str, user: str,
           password: str) -> int:
    """Run ``session`` against a private Dovecot (logged in as ``user``) and write its answers, with Dovecot's
    version, to ``answers`` as JSON: the ``main`` of each recording script."""
    from wildduck.testing import dovecot

    version = dovecot.version(dovecot.DOVECOT)
    tmp = Path(tempfile.mkdtemp(prefix=f"dovecot-{label}-"))
    try:
        with dovecot.private_dovecot(tmp, user, password) as instance:
            m = imaplib.IMAP4("127.0.0.1", instance.port)
            m.login(user, password)
            recorded = session(m)
            m.logout()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    answers.write_text(json.dumps({"dovecot": version, "answers": recorded}, indent=1, ensure_ascii=True) + "\n")
    print(f"{len(recorded)} answers recorded from Dovecot {version} in {answers}")
    return 0
