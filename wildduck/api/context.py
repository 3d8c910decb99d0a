"""What the routes share: the services they call, the settings, who makes the request and what it may reach.

Every request is authenticated (:meth:`Api.authenticate`, run before each route): a token from ``?accessToken=``,
``X-Access-Token`` or ``Authorization: Bearer`` (that order, WildDuck's), compared by its SHA-256 with the root
token of the configuration, else checked as a user token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import trio
from quart import current_app, g, has_websocket_context, request, websocket
from quart.wrappers import Request, Websocket

from wildduck.api.schemas import OBJECT_ID, ApiError, declared, input_error, merge_params, validate
from wildduck.domain.auth import LoginService
from wildduck.domain.health import HealthService
from wildduck.domain.mailboxes import MailboxService, NoSuchMailbox
from wildduck.domain.messages import MessageService
from wildduck.domain.search import SearchService
from wildduck.domain.tokens import TokenService, TokenUse, token_fingerprint
from wildduck.domain.updates import UpdatesService
from wildduck.domain.users import UserService
from wildduck.errors import NotFound
from wildduck.model import Mailbox, User

log = logging.getLogger(__name__)

ROOT = "root"
USER = "user"
#: no token, with access control on: may only try a password (``POST /authenticate``)
ANONYMOUS = "anonymous"
#: routes (their rules) a request without a token may reach with access control on: a password check, the API's
#: description and its documentation page (``wildduck.api.docs``)
NO_TOKEN = frozenset({"/authenticate", "/openapi.json", "/docs", "/docs/<asset>"})


@dataclass(frozen=True, slots=True)
class ApiServices:
    """The domain services the routes call (nothing else: no port, no query)."""

    users: UserService
    login: LoginService
    tokens: TokenService
    mailboxes: MailboxService
    health: HealthService
    messages: MessageService
    search: SearchService
    updates: UpdatesService


@dataclass(frozen=True, slots=True)
class ApiSettings:
    #: every request needs a token; False: requests without one act as root (loopback only, checked at start)
    access_control: bool = True
    #: SHA-256 (hex) of the root token; empty: none
    root_token_sha256: str = ""
    max_body_size: int = 36 * 1024 * 1024
    #: CORS origins ("*": any)
    cors_origins: tuple[str, ...] = ("*",)
    #: what a user's ``limits`` report when the user has no quota of its own
    default_quota: int = 1 << 30
    imap_max_connections: int = 15
    pop3_max_messages: int = 250
    version: str = ""


def root_token_sha256(configured: str) -> str:
    """The SHA-256 (hex) of the configured root token: ``sha256:<hex>`` as given, a plain token hashed."""
    if not configured:
        return ""
    if configured.startswith("sha256:"):
        return configured[len("sha256:"):].lower()
    return hashlib.sha256(configured.encode()).hexdigest()


def incoming() -> Request | Websocket:
    """What is being answered: an HTTP request, or the opening request of a WebSocket."""
    return websocket if has_websocket_context() else request


@dataclass(frozen=True, slots=True)
class Caller:
    """Who makes the request: ``root`` (the root token, or no token with access control off), ``user`` (a user
    token: that user's resources only) or ``anonymous``."""

    role: str
    user: User | None = None
    token: TokenUse | None = None


@dataclass(slots=True)
class Api:
    """What the routes share: the services, the settings, and the helpers that check who may do what."""

    services: ApiServices
    settings: ApiSettings
    #: set when the server stops: the live update streams end (cleanly) at once
    stopping: trio.Event = field(default_factory=trio.Event)
    _cors_any: bool = field(init=False)

    def __post_init__(self) -> None:
        self._cors_any = "*" in self.settings.cors_origins

    # -- who calls ---------------------------------------------------------------------------------------------

    @staticmethod
    def caller() -> Caller:
        found: Caller = g.caller
        return found

    def require_root(self) -> None:
        if self.caller().role != ROOT:
            raise ApiError(403, "MissingPrivileges", "Not enough privileges")

    async def target_user(self, user_id: str) -> User:
        """The user a ``:user`` path parameter names (``me``: the caller's own), if the caller may reach it;
        400 for a malformed id, 403 for another user's, 404 when there is no such user."""
        caller = self.caller()
        if user_id == "me" and caller.user is not None:
            return caller.user
        if not OBJECT_ID.fullmatch(user_id):
            raise input_error({"user": '"user" must be a 24 character hex string'})
        user_id = user_id.lower()
        if caller.role != ROOT:
            if caller.user is None or caller.user.id != user_id:
                raise ApiError(403, "MissingPrivileges", "Not enough privileges")
            return caller.user
        try:
            return await self.services.users.get(user_id)
        except NotFound:
            raise ApiError(404, "UserNotFound", "This user does not exist") from None

    async def mailbox_of(self, user: User, mailbox_id: str, field: str = "mailbox") -> Mailbox:
        """The user's mailbox a ``:mailbox`` id names; 400 for a malformed id (naming ``field``), 404
        NoSuchMailbox when the user has no such mailbox."""
        if not OBJECT_ID.fullmatch(mailbox_id):
            raise input_error({field: f'"{field}" must be a 24 character hex string'})
        try:
            found = await self.services.mailboxes.get_by_id(mailbox_id.lower())
        except NotFound:
            raise NoSuchMailbox(mailbox_id) from None
        if found.user_id != user.id:
            raise NoSuchMailbox(mailbox_id)
        return found

    # -- input -------------------------------------------------------------------------------------------------

    @staticmethod
    async def params() -> dict[str, Any]:
        """The query string and the body (JSON or a form) merged, WildDuck's way; the token removed. (A
        WebSocket's opening request has the query string only.)"""
        query = dict(incoming().args.items())
        body: Any = None
        data = b"" if has_websocket_context() else await request.get_data(as_text=False)
        if data:
            kind = request.mimetype
            if kind == "application/x-www-form-urlencoded":
                body = dict((await request.form).items())
            else:
                try:
                    body = json.loads(data)
                except (ValueError, UnicodeDecodeError):
                    raise input_error({"body": '"body" must be valid JSON'}) from None
                if not isinstance(body, dict):  # JSON null too: a body that is there is an object
                    raise input_error({"body": '"body" must be a JSON object'})
        params = merge_params(query, body)
        params.pop("accessToken", None)
        return params

    async def values(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The request's parameters (``params``, else :meth:`params`) validated against what its route declares
        (:func:`~wildduck.api.schemas.takes`)."""
        asked = incoming()
        spec = declared(current_app.view_functions[asked.endpoint]) if asked.endpoint else None
        if spec is None:
            raise RuntimeError(f"{asked.path}: the route declares no parameters (@takes)")
        return validate(await self.params() if params is None else params, spec.fields,
                        allow_unknown=spec.allow_unknown)

    # -- authentication ----------------------------------------------------------------------------------------

    @staticmethod
    def presented_token() -> str | None:
        asked = incoming()
        token = asked.args.get("accessToken") or asked.headers.get("X-Access-Token")
        if not token:
            auth = asked.headers.get("Authorization", "")
            if auth[:7].lower() == "bearer ":
                token = auth[7:].strip()
        return token or None

    async def authenticate(self) -> Caller:
        """The caller of this request; 403 InvalidToken when a token is needed and none is valid."""
        token = self.presented_token()
        settings = self.settings
        if token is not None:
            digest = hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
            if settings.root_token_sha256 and hmac.compare_digest(digest, settings.root_token_sha256):
                return Caller(ROOT)
            use = await self.services.tokens.check(token)
            if use is not None:
                return Caller(USER, use.user, use)
            log.info("refused API token %s", token_fingerprint(token))
            raise ApiError(403, "InvalidToken", "Invalid accessToken value")
        rule = incoming().url_rule
        if settings.access_control and (rule is None or rule.rule not in NO_TOKEN):
            raise ApiError(403, "InvalidToken", "Invalid accessToken value")
        # no token: root with access control off; at /authenticate anyone may try a password
        return Caller(ANONYMOUS if settings.access_control else ROOT)

    # -- CORS ----------------------------------------------------------------------------------------------------

    def cors_headers(self, origin: str | None) -> dict[str, str]:
        if not origin or not (self._cors_any or origin in self.settings.cors_origins):
            return {}
        return {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true",
                "Vary": "Origin"}
