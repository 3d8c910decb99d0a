"""Line endings of a message as it is accepted for storage."""

from __future__ import annotations

import re

_BARE_LF = re.compile(rb"(?<!\r)\n")


def crlf(raw: bytes) -> bytes:
    """``raw`` with every bare LF made CRLF (a lone CR is left alone), as Dovecot stores an APPENDed message.

    RFC 5322 lines end in CRLF; a message APPENDed with bare LFs (an mbox import, a script) is then fetched back
    with the line endings IMAP clients expect, and RFC822.SIZE counts them. Returns ``raw`` itself when it has no
    bare LF.
    """
    if raw.count(b"\n") == raw.count(b"\r\n"):
        return raw
    return _BARE_LF.sub(b"\r\n", raw)
