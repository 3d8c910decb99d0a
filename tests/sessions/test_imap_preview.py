"""PREVIEW (RFC 8970) against the whole server over a socket: the first text of each kind of message, decoded,
white space collapsed, at most 256 characters; NIL without text; \\Seen untouched; UTF-8 as a literal unless
UTF8=ACCEPT is on; the text of a big body kept out of the skeleton."""

from __future__ import annotations

import base64
import imaplib
import re
from pathlib import Path

import pytest
import trio

from tests.sessions.imap_transcripts import imap_server, run, selected
from wildduck.domain import preview
from wildduck.domain.preview import PREVIEW_LENGTH
from wildduck.testing.server import RunningServer

LATIN1 = base64.b64encode("Grüße aus Köln, à bientôt".encode("latin-1")).decode()
MESSAGES = [
    # 1: plain text, runs of blanks and line breaks made one space, quoted lines and signature kept
    "Subject: plain\n\nHello   there,\n\n  how are\tyou?\n> quoted line\n-- \nsig\n",
    # 2: base64 in ISO-8859-1
    f"Subject: latin\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: base64\n\n{LATIN1}\n",
    # 3: quoted-printable with a soft line break
    "Subject: qp\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
    "caf=C3=A9 au lait, soft=\n break\n",
    # 4: multipart/alternative: the text/plain part, not the HTML one
    "Subject: alt\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=b\n\n--b\n"
    "Content-Type: text/plain\n\nthe plain words\n--b\nContent-Type: text/html\n\n<p>the <b>html</b> words</p>\n"
    "--b--\n",
    # 5: HTML only: converted to text
    "Subject: html\nContent-Type: text/html\n\n<html><head><style>p {color: red}</style></head><body>"
    "<p>Hello <b>bold</b>&amp; more</p><p>second</p></body></html>\n",
    # 6: no text at all
    "Subject: pdf\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
    "Content-Type: application/pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--b--\n",
    # 7: long: cut at 256 characters
    "Subject: long\n\n" + " ".join(f"word{i}" for i in range(200)) + "\n",
    # 8: an empty body
    "Subject: empty\n\n",
]
DELIVERIES = "".join(f"@deliver alice\n{m}@end\n" for m in MESSAGES)
LONG = " ".join(f"word{i}" for i in range(200))[:PREVIEW_LENGTH]

TRANSCRIPT = DELIVERIES + r"""C: a LOGIN alice pw
S: a OK [CAPABILITY {{[^\]]*}} BINARY PREVIEW STATUS=SIZE {{[^\]]*}}] logged in
C: b EXAMINE INBOX
""" + selected("b", exists=8, recent=8, unseen=1, uidnext=9, readonly=True) + r"""C: c FETCH 1 PREVIEW
S: * 1 FETCH (PREVIEW "Hello there, how are you? > quoted line -- sig")
S: c OK FETCH completed
C: d FETCH 2 (PREVIEW)
S: * 2 FETCH (PREVIEW {30}
S: Grüße aus Köln, à bientôt)
S: d OK FETCH completed
C: e UID FETCH 3:5 (PREVIEW (LAZY))
S: * 3 FETCH (UID 3 PREVIEW {25}
S: café au lait, soft break)
S: * 4 FETCH (UID 4 PREVIEW "the plain words")
S: * 5 FETCH (UID 5 PREVIEW "Hello bold& more second")
S: e OK UID FETCH completed
C: f FETCH 6 (FLAGS PREVIEW)
S: * 6 FETCH (PREVIEW NIL FLAGS (\Recent))
S: f OK FETCH completed
C: g FETCH 7:8 PREVIEW (LAZY)
S: * 7 FETCH (PREVIEW "LONG")
S: * 8 FETCH (PREVIEW NIL)
S: g OK FETCH completed
""".replace("LONG", LONG)

BIG_TEXT = "The start of a big one. " + "All work and no play. " * 16000
BIG = ("Subject: big\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
       f"Content-Type: text/plain\n\n{BIG_TEXT}\n--b--\n")
READ_WRITE = (DELIVERIES + f"@deliver alice\n{BIG}@end\n" + r"""C: a LOGIN alice pw
S: a OK [CAPABILITY {{[^\]]*}}] logged in
C: b ENABLE UTF8=ACCEPT
S: * ENABLED UTF8=ACCEPT
S: b OK ENABLE completed
C: c SELECT INBOX
""" + selected("c", exists=9, recent=9, unseen=1, uidnext=10) + r"""C: d FETCH 2,3 (PREVIEW FLAGS)
S: * 2 FETCH (PREVIEW "Grüße aus Köln, à bientôt" FLAGS (\Recent))
S: * 3 FETCH (PREVIEW "café au lait, soft break" FLAGS (\Recent))
S: d OK FETCH completed
# the big body is kept out of the skeleton: its blob is read
C: e FETCH 9 (PREVIEW RFC822.SIZE)
S: * 9 FETCH (PREVIEW "BIGPREVIEW" RFC822.SIZE {{\d+}})
S: e OK FETCH completed
# PREVIEW set no \Seen; the second time it is the kept one
C: f FETCH 1:9 (FLAGS)
""" + "".join(f"S: * {n} FETCH (FLAGS (\\Recent))\n" for n in range(1, 10)) + r"""S: f OK FETCH completed
C: g FETCH 2 PREVIEW
S: * 2 FETCH (PREVIEW "Grüße aus Köln, à bientôt")
S: g OK FETCH completed
C: h FETCH 1 (PREVIEW (LAZY FOO))
S: h BAD FETCH: unknown preview modifier FOO
C: i FETCH 1 (PREVIEW ())
S: i BAD FETCH: empty preview modifier list
""").replace("BIGPREVIEW", " ".join(BIG_TEXT.split())[:PREVIEW_LENGTH])


@pytest.mark.parametrize("name", ["TRANSCRIPT", "READ_WRITE"])
async def test_transcript(tmp_path: Path, name: str) -> None:
    async with imap_server(tmp_path, "alice") as srv:
        await run(srv, {"TRANSCRIPT": TRANSCRIPT, "READ_WRITE": READ_WRITE}[name], name)


async def test_the_big_body_is_read_from_its_blob(tmp_path: Path) -> None:
    """The READ_WRITE transcript's big message has its text body cut out of the skeleton (so its preview came from
    the blob), and previews are kept per process by message id, the least recently used dropped first."""
    async with imap_server(tmp_path, "alice") as server:
        await run(server, READ_WRITE, "READ_WRITE")
        alice = await server.services.users.find("alice")
        inbox = await server.services.mailboxes.get(alice.id, "INBOX")
        (big,) = await server.services.messages.records(inbox.id, [9], content=True)
        assert big.parts and b"All work and no play" not in big.skeleton
        assert preview.CACHE.get(big.id) == (True, " ".join(BIG_TEXT.split())[:PREVIEW_LENGTH])
        kept = preview.PreviewCache(max_entries=2)
        for key in ("a", "b", "c"):
            kept.put(key, key.upper())
        assert kept.get("a") == (False, None) and kept.get("c") == (True, "C")


FIXTURES = sorted((Path(__file__).parent.parent / "oracle" / "fixtures").glob("*.eml"))


async def test_every_fixture_message_has_a_preview_or_nil(tmp_path: Path) -> None:
    """The FETCH oracle's real and malformed messages: each gets PREVIEW, a string of at most 256 characters or
    NIL, in one FETCH."""

    def go(srv: RunningServer) -> None:
        with imaplib.IMAP4(*srv.address("imap")) as m:
            m.login("alice", "pw")
            # the ones APPEND refuses (a NUL byte in a literal, for one) are not stored
            stored = sum(m.append("INBOX", None, None, path.read_bytes())[0] == "OK" for path in FIXTURES)
            assert stored > 50
            m.select("INBOX")
            typ, data = m.fetch("1:*", "(PREVIEW)")
            assert typ == "OK"
            texts: list[str | None] = []
            for item in data:
                if isinstance(item, tuple):  # a literal
                    texts.append(item[1].decode("utf-8"))
                elif isinstance(item, bytes) and item.endswith(b"PREVIEW NIL)"):
                    texts.append(None)
                elif isinstance(item, bytes) and (hit := re.search(rb'PREVIEW "(.*)"\)$', item)):
                    texts.append(re.sub(rb"\\(.)", rb"\1", hit.group(1)).decode("utf-8"))  # a quoted string
            assert len(texts) == stored
            bad = [t for t in texts if not (t is None or 0 < len(t) <= PREVIEW_LENGTH and t == " ".join(t.split()))]
            assert not bad
            assert sum(t is not None for t in texts) > stored // 2

    async with imap_server(tmp_path, "alice") as srv:
        await trio.to_thread.run_sync(go, srv)
