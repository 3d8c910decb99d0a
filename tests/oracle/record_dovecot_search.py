"""Record Dovecot's answers to SEARCH's text and header keys (BODY, TEXT, FROM, TO, CC, BCC, SUBJECT, HEADER): the
oracle of tests/sessions/test_search_oracle.py.

Run by hand, from the repository root, after installing Debian's Dovecot (``apt-get install dovecot-imapd``; the
package's own service is not used and need not run; its fts plugins are not enabled, so Dovecot answers BODY and
TEXT by a substring search of the decoded text, which is the behaviour compared)::

    .venv/bin/python -m tests.oracle.record_dovecot_search

It starts a private Dovecot (``wildduck.testing.dovecot``), APPENDs the messages of ``tests/oracle/messages/search/``
(byte for byte, in file name order: message n is the n-th file) to INBOX, selects it and runs every command of
``COMMANDS`` in order, and writes ``tests/oracle/search.json`` in the shape of ``esearch.json`` (``untagged``
normalized by :func:`tests.oracle.record_dovecot_esearch.normalize`).

Each message of the corpus is made for one rule (its file name says which): transfer encodings
(quoted-printable with soft line breaks inside a word, base64), charsets of text parts (ISO-8859-1, windows-1252,
KOI8-R, ISO-2022-JP, UTF-8, undeclared 8-bit, unknown), which parts are text (every ``text/*`` part, attachments
included, never ``application/*`` or images), HTML as written, encapsulated messages, and in headers every copy of
a repeated field, RFC 2047 encoded words (B and Q, adjacent words joined, a character split across two words),
raw UTF-8 and Latin-1 header bytes, folding. The commands search each rule, with needles that must and must not
match, substrings, case folding of non-ASCII text, and needles sent as ``CHARSET UTF-8`` literals.

A command is written as text; a needle in ``«...»`` is sent as a synchronizing literal of its UTF-8 bytes (the
JSON keeps the command as written).

Left out on purpose: search charsets other than UTF-8 and US-ASCII (Dovecot converts ISO-8859-1 and others;
wildduck answers NO [BADCHARSET], which RFC 3501 6.4.4 allows).
"""

from __future__ import annotations

import imaplib
import itertools
import re
import sys
from pathlib import Path
from typing import Any

from tests.oracle import wire
from tests.oracle.record_dovecot_esearch import normalize

HERE = Path(__file__).resolve().parent
ANSWERS = HERE / "search.json"
CORPUS = HERE / "messages" / "search"
USER, PASSWORD = "oracle", "oracle-pw"

#: the messages, in sequence-number order (file name order)
MESSAGES = [p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))]

SETUP = ["SELECT INBOX"]

COMMANDS = [
    # 1 quoted-printable: a soft line break inside a word, encoded octets, "=" then white space then a line break
    "SEARCH BODY kaleidoscope",
    "SEARCH CHARSET UTF-8 BODY «café»",
    "SEARCH CHARSET UTF-8 BODY «CRÈME BRÛLÉE»",
    "SEARCH BODY \"after the equals\"",
    "SEARCH BODY \"kaleido=\"",
    # 2 base64 UTF-8
    "SEARCH BODY zeppelin",
    "SEARCH CHARSET UTF-8 BODY «grüße aus münchen»",
    # 3 ISO-8859-1, 4 windows-1252 (a soft break after an encoded octet), 5 KOI8-R, 6 ISO-2022-JP
    "SEARCH CHARSET UTF-8 BODY «façade»",
    "SEARCH CHARSET UTF-8 BODY «RENÉE»",
    "SEARCH CHARSET UTF-8 BODY «“smart quotes”»",
    "SEARCH CHARSET UTF-8 BODY «5 €»",
    "SEARCH CHARSET UTF-8 BODY «résumé-worthy»",
    "SEARCH CHARSET UTF-8 BODY «мир»",
    "SEARCH CHARSET UTF-8 BODY «ПРИВЕТ»",
    "SEARCH CHARSET UTF-8 BODY «французских булок»",
    "SEARCH CHARSET UTF-8 BODY «東京»",
    "SEARCH CHARSET UTF-8 TEXT «日本語»",
    # 7 a base64 text attachment; 8 and 23 application/* content is not text
    "SEARCH BODY xylophone",
    "SEARCH BODY quagmire",
    "SEARCH BODY marmalade",
    "SEARCH BODY narwhal",
    "SEARCH TEXT narwhal",
    "SEARCH BODY \"wrapper text\"",
    # 9 HTML is searched as written (markup, entities)
    "SEARCH BODY pumpernickel",
    "SEARCH BODY hello",
    "SEARCH BODY \"<b>lo</b>\"",
    "SEARCH BODY &ouml;",
    "SEARCH BODY titled",
    "SEARCH BODY rhubarb",
    # 10 every copy of a repeated header
    "SEARCH SUBJECT apple",
    "SEARCH SUBJECT banana",
    "SEARCH TO second@example.org",
    "SEARCH HEADER X-Tag omega",
    "SEARCH HEADER X-Tag alpha",
    # 11 encoded words (Q with underscores, B, inside a quoted display name), address forms
    "SEARCH CHARSET UTF-8 SUBJECT «café crème»",
    "SEARCH CHARSET UTF-8 FROM «jürgen müller»",
    "SEARCH CHARSET UTF-8 FROM «Müller <juergen@»",
    "SEARCH FROM juergen@example.org",
    "SEARCH CHARSET UTF-8 TO «séné»",
    "SEARCH CHARSET UTF-8 CC «naïve»",
    "SEARCH BCC hidden",
    "SEARCH CHARSET UTF-8 TEXT «brûlée»",
    # 12 words split across encoded words
    "SEARCH SUBJECT unbelievable",
    "SEARCH SUBJECT \"unbeliev able\"",
    "SEARCH CHARSET UTF-8 HEADER X-Split «éé»",
    "SEARCH CHARSET UTF-8 HEADER X-Split «café»",
    "SEARCH CHARSET UTF-8 HEADER X-Halves «é»",
    # 13 raw UTF-8 headers, 14 raw Latin-1 headers
    "SEARCH CHARSET UTF-8 SUBJECT «ünïcödé»",
    "SEARCH CHARSET UTF-8 SUBJECT «STRASSE»",
    "SEARCH CHARSET UTF-8 SUBJECT «straße»",
    "SEARCH CHARSET UTF-8 SUBJECT «οδος»",
    "SEARCH CHARSET UTF-8 FROM «zoë»",
    "SEARCH CHARSET UTF-8 SUBJECT «déjà»",
    "SEARCH CHARSET UTF-8 FROM «andré»",
    # 15 case folding of non-ASCII body text
    "SEARCH CHARSET UTF-8 BODY «STRASSE»",
    "SEARCH CHARSET UTF-8 BODY «straße»",
    "SEARCH CHARSET UTF-8 BODY «οδός»",
    "SEARCH CHARSET UTF-8 BODY «σοφος»",
    "SEARCH CHARSET UTF-8 BODY «école»",
    "SEARCH CHARSET UTF-8 BODY «ärger»",
    "SEARCH CHARSET UTF-8 BODY «istanbul»",
    "SEARCH CHARSET UTF-8 BODY «finance»",
    # 16 an encapsulated message: its header and body are body text
    "SEARCH BODY tangerine",
    "SEARCH BODY gooseberry",
    "SEARCH BODY quince",
    "SEARCH CHARSET UTF-8 BODY «grüße»",
    "SEARCH CHARSET UTF-8 BODY «über»",
    "SEARCH SUBJECT gooseberry",
    # 17 other text/* types, 18 format=flowed, 19 folded headers and line breaks in bodies
    "SEARCH BODY walrus",
    "SEARCH BODY persimmon",
    "SEARCH BODY \"soft broken\"",
    "SEARCH BODY \"soft \"",
    "SEARCH BODY \"flowed continuation\"",
    "SEARCH SUBJECT \"that is folded\"",
    "SEARCH SUBJECT \"that    is folded\"",
    "SEARCH SUBJECT \"twice over\"",
    "SEARCH HEADER X-Empty \"\"",
    "SEARCH HEADER X-Custom mixedcase",
    "SEARCH BODY \"here line\"",
    "SEARCH BODY \"here.\"",
    # 20 unknown charset, undeclared UTF-8; 24 undeclared Latin-1
    "SEARCH BODY lemonade",
    "SEARCH CHARSET UTF-8 BODY «piñata»",
    "SEARCH CHARSET UTF-8 BODY «björk»",
    "SEARCH BODY sings",
    # 21 substrings, short needles, LIKE's wildcards, backslashes
    "SEARCH BODY \"100%\"",
    "SEARCH BODY off_sale",
    "SEARCH BODY \"C:\\\\temp\"",
    "SEARCH BODY cdefg",
    "SEARCH BODY j",
    "SEARCH BODY \"a*b?c\"",
    "SEARCH SUBJECT \"[promo]\"",
    "SEARCH SUBJECT %",
    "SEARCH SUBJECT _",
    "SEARCH BODY \"\"",
    # 22 nested multiparts, an image, an unknown transfer encoding
    "SEARCH BODY armadillo",
    "SEARCH BODY \"armadillo s\"",
    "SEARCH BODY pangolin",
    "SEARCH BODY okapi",
    # 25 an encoded word in a body is text as written; MIME part headers
    "SEARCH BODY \"=?utf-8?q?encoded\"",
    "SEARCH CHARSET UTF-8 BODY «encodedé»",
    "SEARCH BODY \"cv text\"",
    "SEARCH BODY Content-Type",
    "SEARCH TEXT Content-Type",
    # TEXT sees the header too (field names included), BODY does not
    "SEARCH TEXT message-id",
    "SEARCH BODY sender@example.net",
    "SEARCH TEXT \"from: sender\"",
    "SEARCH CHARSET UTF-8 TEXT «jürgen»",
    # TEXT sees the header of every part too (MIME headers, an encapsulated message's header)
    "SEARCH TEXT gooseberry",
    "SEARCH TEXT quince",
    "SEARCH TEXT notes.txt",
    "SEARCH TEXT \"x-tag: omega\"",
    "SEARCH CHARSET UTF-8 TEXT «café crème»",
    # 26 address forms: what FROM, TO and CC see of an address list; white space in SUBJECT and HEADER
    "SEARCH FROM \"the boss\"",
    "SEARCH FROM \"doe, john\"",
    "SEARCH FROM \"\\\"doe\"",
    "SEARCH FROM \"john <john.doe@\"",
    "SEARCH HEADER From \"the boss\"",
    "SEARCH TO undisclosed",
    "SEARCH CC \"first@example.com, \"",
    "SEARCH CC team",
    "SEARCH CC \"b@example.com, c@\"",
    "SEARCH CHARSET UTF-8 CC «zoë <z@»",
    "SEARCH SUBJECT \"addresses and spaces\"",
    "SEARCH SUBJECT \"that  is\"",
    "SEARCH HEADER Subject \"that is folded\"",
    "SEARCH HEADER Subject \"that   is folded\"",
    "SEARCH HEADER X-Spaces \"two  spaces\"",
    "SEARCH HEADER X-Spaces \"two spaces\"",
    "SEARCH HEADER X-Spaces \"spaces tab\"",
    "SEARCH CHARSET UTF-8 HEADER Subject «café crème»",
    "SEARCH SUBJECT vu",
    "SEARCH FROM andre@example.org",
    # 27 which parts are text (a type without subtype, an unparseable one, upper case, message/*), how the
    # transfer encoding and charset are read; 20's unknown charset is read as UTF-8
    "SEARCH BODY walnut",
    "SEARCH BODY chestnut",
    "SEARCH BODY hazelnut",
    "SEARCH CHARSET UTF-8 BODY «café bytes»",
    "SEARCH BODY pecan",
    "SEARCH BODY almond",
    "SEARCH BODY \"upper qp\"",
    "SEARCH BODY mystery",
    "SEARCH CHARSET UTF-8 BODY «naïve and»",
    # combined
    "SEARCH OR BODY zeppelin SUBJECT apple",
    "SEARCH NOT BODY e",
    "UID SEARCH TEXT tangerine SUBJECT forwarded",
]

_LITERAL = re.compile(r"«(.*?)»")
_tags = itertools.count(1)


def command(m: imaplib.IMAP4, text: str) -> wire.Tagged:
    """Send ``text`` (its ``«...»`` needles as synchronizing literals of their UTF-8 bytes), then read the answer."""
    tag = b"S%d" % next(_tags)
    pieces = _LITERAL.split(text)  # text, literal, text, ...
    line = pieces[0].encode()
    for i in range(1, len(pieces), 2):
        data = pieces[i].encode()
        m.send(tag + b" " + line + b"{%d}\r\n" % len(data) if i == 1 else line + b"{%d}\r\n" % len(data))
        go = wire.read_response(m)
        if not go.startswith(b"+"):
            raise AssertionError(f"literal refused: {go!r}")
        line = data + pieces[i + 1].encode()
    m.send((line if len(pieces) > 1 else tag + b" " + line) + b"\r\n")
    return wire.until_tagged(m, tag)


def session(m: imaplib.IMAP4) -> list[dict[str, Any]]:
    """Append ``MESSAGES`` to INBOX, run ``SETUP``, then every command of ``COMMANDS``: their answers."""
    for message in MESSAGES:
        appended = wire.append(m, "INBOX", message)
        assert appended.status == "OK", appended.line
    for line in SETUP:
        done = wire.command(m, line.encode())
        assert done.status == "OK", done.line
    answers = []
    for line in COMMANDS:
        done = command(m, line)
        answers.append({"command": line, "status": done.status, "untagged": [normalize(r) for r in done.untagged]})
    return answers


def main() -> int:
    return wire.record(session, ANSWERS, "search", USER, PASSWORD)


if __name__ == "__main__":
    sys.exit(main())
