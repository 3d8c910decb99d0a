"""Logging a protocol session in, the same way for IMAP and POP3: the password check (rate limit and penalty in
:class:`~wildduck.domain.auth.LoginService`), the connection slot and the nudge subscription, the metrics and the
log lines. Each protocol renders the refusals (``RateLimited``, ``AuthFailed``, ``TooManyConnections``) its way.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack

from wildduck import metrics
from wildduck.domain.auth import LoginService, UserSession
from wildduck.errors import AuthFailed, RateLimited, TooManyConnections
from wildduck.log import connection_user

log = logging.getLogger(__name__)


async def log_in(login: LoginService, stack: AsyncExitStack, protocol: str, username: str, password: str, *,
                 peer: str, max_connections: int) -> UserSession:
    """Check the credentials and take one of the user's ``max_connections`` slots for ``protocol``; the slot and
    the subscription are held until ``stack`` closes. Raises RateLimited, AuthFailed or TooManyConnections (each
    counted and logged here)."""
    shown = username[:100]
    try:
        user = await login.authenticate(username, password, peer=peer, protocol=protocol.upper())
    except RateLimited as exc:
        metrics.LOGINS.labels(protocol, "limited").inc()
        log.warning("%s login for %r from %s refused: %s", protocol, shown, peer, exc)
        raise
    except AuthFailed:
        metrics.LOGINS.labels(protocol, "failed").inc()
        log.info("failed %s login for %r from %s", protocol, shown, peer)
        raise
    try:
        session = await stack.enter_async_context(login.session(user, protocol, max_connections))
    except TooManyConnections:
        metrics.LOGINS.labels(protocol, "busy").inc()
        log.warning("%s from %s: too many simultaneous %s connections", user.username, peer, protocol)
        raise
    metrics.LOGINS.labels(protocol, "ok").inc()
    connection_user.set(user.username)
    log.info("%s logged in over %s from %s", user.username, protocol, peer)
    return session
