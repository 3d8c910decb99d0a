"""Real clients in a known state, for tests that drive a server over sockets."""

from __future__ import annotations

import imaplib
import poplib


def idling(address: tuple[str, int], user: str, password: str) -> imaplib.IMAP4:
    """An imaplib client of ``user`` in IDLE on INBOX, reading with a 10 s deadline (a deadline, not a measurement:
    a push normally takes milliseconds)."""
    m = imaplib.IMAP4(*address, timeout=30)
    m.login(user, password)
    m.select("INBOX")
    tag = m._new_tag().decode()  # type: ignore[attr-defined,unused-ignore]
    m.send(f"{tag} IDLE\r\n".encode())
    assert m.readline().startswith(b"+ ")
    m.sock.settimeout(10)
    return m


def pop3_session(address: tuple[str, int], user: str, password: str) -> poplib.POP3:
    """A poplib client of ``user`` in the transaction state."""
    p = poplib.POP3(*address, timeout=10)
    p.user(user)
    p.pass_(password)
    return p
