"""The Quart-Trio application: WildDuck's HTTP API over the domain services.

Every request is authenticated first (:meth:`~wildduck.api.context.Api.authenticate`; a WebSocket's opening request
too, refused with an HTTP answer). Errors leave in WildDuck's shape, ``{"error", "code"[, "details"]}``; a bad
request is never a 500. Every request is counted (and timed) in the metrics by its route's template and status.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import trio
from hypercorn.typing import ASGIReceiveCallable, ASGIReceiveEvent, ASGISendCallable, ASGISendEvent
from quart import Response, g, has_request_context, request
from quart.typing import ResponseTypes
from quart_trio import QuartTrio
from quart_trio.asgi import TrioASGIHTTPConnection
from quart_trio.wrappers import TrioWebsocket
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException

from wildduck.api import docs, openapi
from wildduck.api.context import Api, ApiServices, ApiSettings, incoming
from wildduck.api.routes import register_all
from wildduck.api.schemas import ApiError, invalid_input
from wildduck.domain.mailboxes import NoSuchMailbox
from wildduck.errors import AuthFailed, InvalidInput, RateLimited, StoreError
from wildduck.metrics import API_REQUESTS, API_SECONDS

log = logging.getLogger(__name__)

#: seconds a response refusing a request (413) waits for the rest of the request's body before the connection
#: closes: closing with unread data makes the kernel send a reset, and the client loses the response
LINGER = 2.0


class _ClosingHTTPConnection(TrioASGIHTTPConnection):
    """Two fixes to how quart-trio 0.12 ends an HTTP exchange.

    * It runs a request as two tasks, one reading the request, one sending the response, and cancels both when
      either ends. Hypercorn announces the end of the exchange (``http.disconnect``) from *inside* the response's
      final ``send``, so the reader ends and cancels that send before Hypercorn has decided what comes next: the
      connection is neither closed (``Connection: close``) nor given its keep-alive timer, and stays open until
      the client goes. The final send is shielded (it is bounded: a few bytes to the socket, under Hypercorn's own
      shielded write).
    * A response sent before the request's body has arrived (a body over the size limit) waits up to
      :data:`LINGER` seconds for the rest of it, read and dropped, before that final send: Hypercorn closes a
      connection whose request was not read to its end, and closing over unread data loses the response."""

    async def __call__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        received_all = trio.Event()

        async def receive_tracked() -> ASGIReceiveEvent:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                received_all.set()
            return message

        self._received_all = received_all
        await super().__call__(receive_tracked, send)

    async def _send_response(self, send: ASGISendCallable, response: ResponseTypes) -> None:
        async def send_end_shielded(message: ASGISendEvent) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                with trio.move_on_after(LINGER):
                    await self._received_all.wait()
                with trio.CancelScope(shield=True):
                    await send(message)
            else:
                await send(message)

        await super()._send_response(send_end_shielded, response)


class _CountedWebsocket(TrioWebsocket):
    """A WebSocket counted in the API's metrics (status 101) when it is accepted."""

    _counted = False

    async def accept(self, headers: dict[str, str] | Headers | None = None, subprotocol: str | None = None) -> None:
        await super().accept(headers, subprotocol)
        if not self._counted:
            self._counted = True
            _count(None)


class ApiApp(QuartTrio):
    asgi_http_class = _ClosingHTTPConnection
    websocket_class = _CountedWebsocket
    #: set by :meth:`wildduck.api.serve.ApiServer.stop`: long-lived responses (the update streams) end
    stopping: trio.Event


def error_response(status: int, body: Mapping[str, Any]) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status=status, mimetype="application/json")


#: HTTP errors of the framework (no such route, wrong method, body too large) as WildDuck's codes
_HTTP_CODES = {400: "BadRequest", 404: "ResourceNotFound", 405: "MethodNotAllowed", 408: "RequestTimeout",
               413: "PayloadTooLarge", 415: "UnsupportedMediaType"}


def _count(status: int | None) -> None:
    """Count the request being answered (and, but for a WebSocket, the time to answer it) under its route's
    template; ``status`` None is an accepted WebSocket."""
    asked = incoming()
    route = asked.url_rule.rule if asked.url_rule is not None else "unmatched"
    labels = (asked.method, route, "101" if status is None else str(status))
    API_REQUESTS.labels(*labels).inc()
    started: float | None = g.get("started")
    if status is not None and started is not None and has_request_context():
        API_SECONDS.labels(*labels).observe(time.perf_counter() - started)


def create_app(services: ApiServices, settings: ApiSettings) -> ApiApp:
    """The application with every route of this release registered."""
    app = ApiApp("wildduck.api")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_size
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.json.sort_keys = False  # type: ignore[attr-defined]  # WildDuck's field order
    api = Api(services, settings)
    app.stopping = api.stopping

    @app.before_request
    async def before() -> Response | None:
        g.started = time.perf_counter()
        if request.method == "OPTIONS":  # CORS preflight
            headers = api.cors_headers(request.headers.get("Origin"))
            if headers:
                headers.update({
                    "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
                    "Access-Control-Allow-Headers": "X-Access-Token, Authorization, Content-Type",
                    "Access-Control-Max-Age": "600",
                })
            return Response("", status=204, headers=headers)
        g.caller = await api.authenticate()
        return None

    @app.before_websocket
    async def before_websocket() -> None:
        g.started = time.perf_counter()
        g.caller = await api.authenticate()  # refused: an HTTP response instead of the upgrade

    @app.after_websocket
    async def after_websocket(response: ResponseTypes | None) -> ResponseTypes | None:
        if response is not None:  # refused (an accepted one was counted then)
            _count(response.status_code)
        return response

    @app.after_request
    async def after(response: Response) -> Response:
        for key, value in api.cors_headers(request.headers.get("Origin")).items():
            response.headers[key] = value
        _count(response.status_code)
        return response

    @app.errorhandler(ApiError)
    async def api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.body())

    @app.errorhandler(InvalidInput)
    async def bad_input(exc: InvalidInput) -> Response:
        return await api_error(invalid_input(exc, "params"))

    @app.errorhandler(NoSuchMailbox)
    async def no_mailbox(exc: NoSuchMailbox) -> Response:
        return error_response(404, {"error": "This mailbox does not exist", "code": "NoSuchMailbox"})

    @app.errorhandler(RateLimited)
    async def rate_limited(exc: RateLimited) -> Response:
        return error_response(403, {"error": str(exc), "code": "RateLimitedError"})

    @app.errorhandler(AuthFailed)
    async def auth_failed(exc: AuthFailed) -> Response:
        return error_response(403, {"error": "Authentication failed", "code": "AuthFailed"})

    @app.errorhandler(StoreError)
    async def store_error(exc: StoreError) -> Response:
        log.error("API request %s %s: store error: %s", incoming().method, incoming().path, exc)
        return error_response(500, {"error": "Database error", "code": "InternalDatabaseError"})

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        message = f"{incoming().path} does not exist" if status == 404 else (exc.description or exc.name)
        response = error_response(status, {"error": message,
                                           "code": _HTTP_CODES.get(status, exc.name.replace(" ", ""))})
        allowed = getattr(exc, "valid_methods", None)
        if status == 405 and allowed:  # RFC 9110: a 405 names the methods the resource has
            response.headers["Allow"] = ", ".join(sorted(allowed))
        return response

    @app.errorhandler(Exception)
    async def crashed(exc: Exception) -> Response:
        log.exception("API request %s %s failed", incoming().method, incoming().path)
        return error_response(500, {"error": "Internal server error", "code": "InternalServerError"})

    register_all(app, api)
    openapi.register(app, api)
    docs.register(app, api)
    return app

