"""Recomposing stored messages, pure-Python reference implementation (``_compose.pyx`` is the Cython twin).

``encode_base64(data, line, nl, final_nl)`` is the base64 form of ``data`` in lines of ``line`` characters (the
last one may be shorter) separated by ``nl``, with ``nl`` after the last line too when ``final_nl`` (an empty
``data`` gives ``nl`` then, else nothing). It is how an attachment stored decoded gets its original bytes back
(``wildduck.protocols.mime.store``); ``line`` is at least 1.

``stuff_dots(data)`` is ``data.replace(b"\r\n.", b"\r\n..")`` (the dot-stuffing of RETR/TOP, see
``wildduck.protocols._base.DotStuffer``); the Cython build finds the dots with ``memchr``, which skips base64
text (no dots) at memory speed where ``bytes.replace`` stops at every line end.
"""

from __future__ import annotations

import binascii


def encode_base64(data: bytes, line: int, nl: bytes, final_nl: bool) -> bytes:
    if line < 1:
        raise ValueError("line must be at least 1")
    encoded = binascii.b2a_base64(data, newline=False)
    out = nl.join([encoded[i:i + line] for i in range(0, len(encoded), line)])
    return out + nl if final_nl else out


def stuff_dots(data: bytes) -> bytes:
    """``data`` with a dot added after every CRLF that a dot follows (the inside of POP3/SMTP dot-stuffing); the
    object itself when there is none."""
    return data.replace(b"\r\n.", b"\r\n..")
