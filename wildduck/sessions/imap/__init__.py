"""The IMAP server side: one session per connection (``session.py``), its commands (``commands.py`` for the any,
not-authenticated and authenticated states, ``selected.py``, ``idle.py``), SEARCH compilation (``search.py``) and
the one command registry (``registry.py``)."""

from __future__ import annotations

import ssl

import trio

from wildduck.sessions._runner import Connection, Lifecycle, run_session
from wildduck.sessions.imap.registry import REGISTRY
from wildduck.sessions.imap.session import IMAPServices, IMAPSession, IMAPSettings

__all__ = ["IMAPServices", "IMAPSettings", "serve_imap_connection"]


async def serve_imap_connection(stream: trio.abc.Stream, services: IMAPServices, settings: IMAPSettings, *,
                                peer: str = "", tls_context: ssl.SSLContext | None = None,
                                tls_active: bool = False, send_timeout: float = 60.0,
                                lifecycle: Lifecycle | None = None) -> None:
    """Serve one IMAP connection until LOGOUT, EOF, autologout, a broken stream or shutdown."""
    conn = Connection(stream, peer, send_timeout=send_timeout, lifecycle=lifecycle or Lifecycle(),
                      tls_active=tls_active)
    session = IMAPSession(conn, services, settings, REGISTRY, tls_context=tls_context)
    await run_session(session, "imap")
