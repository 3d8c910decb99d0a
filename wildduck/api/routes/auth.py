"""``POST /preauth`` (does a username exist and may it log in; root only), ``POST /authenticate`` (a password
check, optionally issuing a user token), ``DELETE /authenticate`` and ``GET /authenticated``."""

from __future__ import annotations

from quart import Response, jsonify, request
from quart_trio import QuartTrio

from wildduck.api.context import Api
from wildduck.api.routes.users import main_address
from wildduck.api.schemas import FALSE, ID, STRING, ApiError, Field, input_error, success, takes
from wildduck.errors import InvalidInput, NotFound

SCOPES = ("master", "imap", "pop3", "smtp")

AUTHENTICATE = {
    "username": Field(required=True, min=1, max=256),
    "password": Field(required=True, min=1, max=256),
    "protocol": Field(default="API", max=64),
    "scope": Field(default="master"),
    "appId": Field(max=1024, empty_is_none=True),
    "token": Field("bool", default=False),
}


PREAUTH = {"username": Field(required=True, min=1, max=256), "scope": Field(default="master")}

#: who authenticated (``address``: the main address, "" when none)
_WHO = {"id": ID, "username": STRING, "address": STRING, "scope": {"enum": list(SCOPES)}, "require2fa": FALSE}
PREAUTH_ANSWER = success(_WHO)
AUTHENTICATE_ANSWER = success({**_WHO, "require2faEnabled": FALSE, "requirePasswordChange": FALSE,
                               "token": {"type": "string", "minLength": 1,
                                         "description": "with token=true: a user token"}}, optional=("token",))


def _scope(values: dict[str, object]) -> None:
    if values["scope"] not in SCOPES:
        raise input_error({"scope": f'"scope" must be one of [{", ".join(SCOPES)}]'})


def register(app: QuartTrio, api: Api) -> None:
    sv = api.services

    @app.post("/preauth")
    @takes(PREAUTH, returns=PREAUTH_ANSWER)
    async def preauth() -> Response:
        api.require_root()
        values = await api.values()
        _scope(values)
        try:
            user = await sv.users.find(values["username"])
        except (NotFound, InvalidInput):
            user = None
        if user is None or user.disabled:
            raise ApiError(403, "AuthFailed", "Authentication failed")
        return jsonify({"success": True, "id": user.id, "username": user.username,
                        "address": await main_address(api, user), "scope": values["scope"], "require2fa": False})

    @app.post("/authenticate")
    @takes(AUTHENTICATE, returns=AUTHENTICATE_ANSWER)
    async def authenticate() -> Response:
        values = await api.values()
        _scope(values)
        if values["token"] and values["scope"] != "master":
            raise input_error({"scope": '"scope" must be [master]'})
        # the same rate limit (per account and source) and penalty as IMAP and POP3 logins
        user = await sv.login.authenticate(values["username"], values["password"], peer=request.remote_addr,
                                               protocol="API")
        body = {
            "success": True,
            "id": user.id,
            "username": user.username,
            "address": await main_address(api, user),
            "scope": values["scope"],
            "require2fa": False,
            "require2faEnabled": False,
            "requirePasswordChange": False,
        }
        if values["token"]:
            body["token"] = await sv.tokens.issue(user)
        return jsonify(body)

    @app.delete("/authenticate")
    @takes({}, returns=success())
    async def invalidate() -> Response:
        await api.values()
        token = api.caller().token
        if token is not None:
            await sv.tokens.revoke(token)
        return jsonify({"success": True})

    @app.get("/authenticated")
    @takes({}, returns=success())
    async def authenticated() -> Response:
        await api.values()
        return jsonify({"success": True})
