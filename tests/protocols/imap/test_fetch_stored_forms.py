"""FETCH of ENVELOPE, BODYSTRUCTURE and BODY answers from the IMAP forms the store keeps (schema v9): the bytes
must be those rendered from the JSON-able structure data, with and without UTF8=ACCEPT, whether the FETCH reads
only metadata (one line per message from the stored forms) or content too (a body section in the same FETCH)."""

from __future__ import annotations

import imaplib
import re
from pathlib import Path

import trio

from tests.oracle import wire
from wildduck.protocols import mime
from wildduck.protocols.imap import serializer
from wildduck.protocols.mime import bodystructure
from wildduck.protocols.mime.lines import crlf
from wildduck.testing.server import running_server

FIXTURES = Path(__file__).resolve().parents[2] / "oracle" / "fixtures"
MESSAGES = [
    b"From: A <a@example.com>\r\nSubject: plain\r\n\r\nhi\r\n",
    "From: \"Jörg  Ü\" <j@example.com>\r\nSubject: Grüße \"x\"\r\nTo: b@example.com\r\n\r\nhi\r\n".encode(),
    "From: Jörg <j@example.com>\r\nSubject: Grüße\r\nTo: b@example.com\r\n\r\nhi\r\n".encode(),
    b"Content-Type: multipart/mixed; boundary=b\r\nSubject: m\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n"
    b"Subject: inner \xc3\xa9\r\nFrom: x\x00y <x@y>\r\n\r\nx\r\n--b\r\nContent-Type: text/plain; name=\"\xe9\"\r\n\r\n"
    b"t\r\n--b--\r\n",
    (FIXTURES / "8bit-headers.eml").read_bytes(),
    (FIXTURES / "8bit-latin1-headers.eml").read_bytes(),
]
_ITEM = re.compile(rb"(ENVELOPE|BODYSTRUCTURE|BODY) ")


def expected(raw: bytes, name: str, utf8: bool) -> bytes:
    a = mime.analyze(crlf(raw))
    if name == "ENVELOPE":
        return serializer.envelope(a.envelope, utf8=utf8)
    if name == "BODYSTRUCTURE":
        return serializer.body_structure(a.bodystructure, utf8=utf8)
    return serializer.body_structure(bodystructure.body(a.bodystructure), utf8=utf8)


def _session(address: tuple[str, int], utf8: bool) -> dict[tuple[int, str, str], bytes]:
    m = imaplib.IMAP4(*address)
    got: dict[tuple[int, str, str], bytes] = {}
    try:
        m.login("alice", "pw")
        if utf8:
            assert wire.command(m, b"ENABLE UTF8=ACCEPT").status == "OK"
        assert wire.command(m, b"EXAMINE INBOX").status == "OK"
        for seq in range(1, len(MESSAGES) + 1):
            for name in ("ENVELOPE", "BODYSTRUCTURE", "BODY"):
                got[(seq, name, "meta")] = wire.fetch(m, seq, name)
                # with a body section the FETCH reads the whole record: the other path must say the same
                both = wire.fetch(m, seq, f"{name} BODY.PEEK[HEADER.FIELDS (X-NONE)]")
                got[(seq, name, "content")] = both[:both.rindex(b" BODY[HEADER.FIELDS")]
        # every message in one FETCH, several items in one line
        done = wire.command(m, b"FETCH 1:* (UID ENVELOPE RFC822.SIZE BODYSTRUCTURE FLAGS)")
        assert done.status == "OK" and len(done.untagged) == len(MESSAGES)
        for response in done.untagged:
            seq = int(response.split(b" ", 2)[1])
            got[(seq, "ALL", "meta")] = response
    finally:
        m.logout()
    return got


async def test_stored_forms_are_the_rendered_forms(tmp_path: Path) -> None:
    async with running_server(tmp_path, {"imap": {"enabled": True}}) as srv:
        await srv.services.users.create("alice", "pw", address="alice@example.com")
        m = await trio.to_thread.run_sync(imaplib.IMAP4, *srv.address("imap"))
        try:
            await trio.to_thread.run_sync(m.login, "alice", "pw")
            for raw in MESSAGES:
                assert (await trio.to_thread.run_sync(wire.append, m, "INBOX", raw)).status == "OK"
        finally:
            await trio.to_thread.run_sync(m.logout)
        with trio.fail_after(120):
            answers = {utf8: await trio.to_thread.run_sync(_session, srv.address("imap"), utf8)
                       for utf8 in (False, True)}
    for utf8, got in answers.items():
        for seq, raw in enumerate(MESSAGES, 1):
            for name in ("ENVELOPE", "BODYSTRUCTURE", "BODY"):
                want = name.encode() + b" " + expected(raw, name, utf8)
                assert got[(seq, name, "meta")] == want, (utf8, seq, name)
                assert got[(seq, name, "content")] == want, (utf8, seq, name)
            line = got[(seq, "ALL", "meta")]
            assert expected(raw, "ENVELOPE", utf8) in line and expected(raw, "BODYSTRUCTURE", utf8) in line
            assert line.startswith(b"* %d FETCH (UID %d ENVELOPE " % (seq, seq)) and b" FLAGS (" in line
    # the 8-bit messages really differ between the two modes (the UTF8=ACCEPT forms are used)
    assert answers[False][(3, "ENVELOPE", "meta")] != answers[True][(3, "ENVELOPE", "meta")]
    assert answers[False][(4, "BODYSTRUCTURE", "meta")] != answers[True][(4, "BODYSTRUCTURE", "meta")]
