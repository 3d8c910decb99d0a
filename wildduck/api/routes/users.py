"""Users: ``GET|POST /users``, ``GET /users/resolve/:username``, ``GET|PUT|DELETE /users/:user``,
``PUT /users/:user/logout``."""

from __future__ import annotations

from typing import Any

from quart import Response, jsonify, request
from quart_trio import QuartTrio

from wildduck.api.context import ROOT, Api
from wildduck.api.schemas import PAGING, ApiError, Field, page_of, takes
from wildduck.errors import AlreadyExists, AuthFailed, NotFound, RateLimited
from wildduck.model import User

LIST = {
    "query": Field(lowercase=True, max=255, empty_is_none=True),
    "forward": Field(lowercase=True, max=255, empty_is_none=True),
    "tags": Field(trim=True, max=1024, empty_is_none=True),
    "requiredTags": Field(trim=True, max=1024, empty_is_none=True),
    "metaData": Field("bool"),
    "internalData": Field("bool"),
    **PAGING,
}

CREATE = {
    "username": Field(required=True, min=1, max=128),
    "password": Field(required=True, min=1, max=256),
    "address": Field(max=320, empty_is_none=True),
    "name": Field(max=256, empty_is_none=True),
    "quota": Field("int", min=0),
    "allowUnsafe": Field("bool"),
}

UPDATE = {
    "password": Field(min=1, max=256),
    "existingPassword": Field(min=1, max=256),
    "quota": Field("int", min=0),
    "disabled": Field("bool"),
    "allowUnsafe": Field("bool"),
}

LOGOUT = {
    "reason": Field(trim=True, max=128, empty_is_none=True),
}


async def main_address(api: Api, user: User) -> str:
    """The user's main address ("" when the user has none)."""
    found = [a for a in await api.services.users.addresses(user) if a.main]
    return found[0].address if found else ""


def _quota(api: Api, user: User) -> dict[str, int]:
    return {"allowed": user.quota if user.quota is not None else api.settings.default_quota,
            "used": max(user.storage_used, 0)}


def _listed(api: Api, user: User, address: str) -> dict[str, Any]:
    """One result of ``GET /users``."""
    return {
        "id": user.id,
        "username": user.username,
        "name": user.name,
        "address": address,
        "tags": [],
        "targets": [],
        "enabled2fa": [],
        "autoreply": False,
        "encryptMessages": False,
        "encryptForwarded": False,
        "quota": _quota(api, user),
        "hasPasswordSet": bool(user.password_hash),
        "activated": True,
        "disabled": user.disabled,
        "suspended": False,
    }


def register(app: QuartTrio, api: Api) -> None:
    sv = api.services

    @app.get("/users")
    @takes(LIST, allow_unknown=True)
    async def list_users() -> Response:
        values = await api.values()
        caller = api.caller()
        if caller.role == ROOT:
            users = await sv.users.all()
        elif caller.user is not None:  # a user token lists its own user only
            users = [caller.user]
        else:
            raise ApiError(403, "MissingPrivileges", "Not enough privileges")
        if values.get("tags") or values.get("requiredTags") or values.get("forward"):
            users = []  # this release has no tags and no forwarding targets: nothing matches them
        addresses: dict[str, str] = {}
        query = values.get("query")
        if query:
            matching = []
            for user in users:
                addresses[user.id] = await main_address(api, user)
                if query in user.username.lower() or query in addresses[user.id]:
                    matching.append(user)
            users = matching
        users.sort(key=lambda u: u.id)
        listing = page_of(users, lambda u: u.id, values)
        results = []
        for user in listing["results"]:
            address = addresses[user.id] if user.id in addresses else await main_address(api, user)
            results.append(_listed(api, user, address))
        return jsonify({"success": True, "query": query or "", **listing, "results": results})

    @app.post("/users")
    @takes(CREATE)
    async def create_user() -> Response:
        api.require_root()
        values = await api.values()
        try:
            user = await sv.users.create(values["username"], values["password"], address=values.get("address"),
                                         quota=values.get("quota"), name=values.get("name") or "")
        except AlreadyExists as exc:
            code = "AddressExistsError" if "address" in str(exc) else "UserExistsError"
            raise ApiError(400, code, str(exc)) from None
        return jsonify({"success": True, "id": user.id})

    @app.get("/users/resolve/<username>")
    @takes({})
    async def resolve_user(username: str) -> Response:
        api.require_root()
        await api.values()
        try:
            user = await sv.users.find(username)
        except NotFound:
            raise ApiError(404, "UserNotFound", "This user does not exist") from None
        return jsonify({"success": True, "id": user.id})

    @app.get("/users/<user_id>")
    @takes({})
    async def get_user(user_id: str) -> Response:
        await api.values()
        user = await api.target_user(user_id)
        imap_used = await sv.login.connections(user, "imap")
        body = {
            **_listed(api, user, await main_address(api, user)),
            "success": True,
            "language": None,
            "retention": False,
            "spamLevel": 50,
            "metaData": {},
            "internalData": {},
            "limits": {
                "quota": _quota(api, user),
                "pop3MaxMessages": {"allowed": api.settings.pop3_max_messages},
                "imapMaxConnections": {"allowed": api.settings.imap_max_connections, "used": imap_used},
            },
            "fromWhitelist": [],
            "featureFlags": {},
            "disabledScopes": [],
            "passwordPwned": False,
            "require2faEnabled": False,
            "requirePasswordChange": False,
        }
        body.pop("quota")  # a user's quota is under limits here
        return jsonify(body)

    @app.put("/users/<user_id>")
    @takes(UPDATE)
    async def update_user(user_id: str) -> Response:
        values = await api.values()
        user = await api.target_user(user_id)
        caller = api.caller()
        changes = {k for k in values if k in ("password", "quota", "disabled")}
        if not changes:
            raise ApiError(400, "InputValidationError", "Nothing was changed")
        if caller.role != ROOT and changes - {"password"}:
            raise ApiError(403, "MissingPrivileges", "Not enough privileges")
        if "password" in values:
            existing = values.get("existingPassword")
            if existing is None and caller.role != ROOT:
                raise ApiError(400, "InputValidationError", '"existingPassword" is required',
                               {"existingPassword": '"existingPassword" is required'})
            if existing is not None:
                try:
                    await sv.login.authenticate(user.username, existing, peer=request.remote_addr)
                except (AuthFailed, RateLimited):
                    raise ApiError(403, "AuthFailed", "Password verification failed") from None
            await sv.users.set_password(user, values["password"])
        if "quota" in values:
            await sv.users.set_quota(user, values["quota"])
        if "disabled" in values:
            await sv.users.set_disabled(user, values["disabled"])
        return jsonify({"success": True})

    @app.delete("/users/<user_id>")
    @takes({})
    async def delete_user(user_id: str) -> Response:
        api.require_root()
        await api.values()
        user = await api.target_user(user_id)
        addresses = await sv.users.addresses(user)
        await sv.users.delete(user)
        return jsonify({"success": True, "user": user.id, "addresses": {"deleted": len(addresses)}})

    @app.put("/users/<user_id>/logout")
    @takes(LOGOUT)
    async def logout_user(user_id: str) -> Response:
        """End the user's IMAP and POP3 sessions on every instance; they tell ``reason`` to the client."""
        values = await api.values()
        user = await api.target_user(user_id)
        await sv.users.logout(user, values.get("reason") or "Logout requested from API")
        return jsonify({"success": True})
