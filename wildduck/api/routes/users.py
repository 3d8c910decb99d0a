"""Users: ``GET|POST /users``, ``GET /users/resolve/:username``, ``GET|PUT|DELETE /users/:user``,
``PUT /users/:user/logout``, ``POST /users/:user/quota/reset``, ``POST /quota/reset``, ``GET
/users/:user/authlog[/:event]``."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from quart import Response, current_app, jsonify, request
from quart_trio import QuartTrio

from wildduck.api.context import ROOT, Api
from wildduck.api.paging import keyset_page
from wildduck.api.schemas import (
    BOOLEAN,
    DATE_TIME,
    FALSE,
    ID,
    INTEGER,
    OBJECT_ID,
    PAGING,
    STRING,
    TRUE,
    ApiError,
    Field,
    array_of,
    component,
    listing,
    obj,
    page_of,
    success,
    takes,
)
from wildduck.domain.rendering import iso
from wildduck.errors import AlreadyExists, AuthFailed, InvalidInput, NotFound, RateLimited
from wildduck.model import AuthEvent, Listing, User

log = logging.getLogger(__name__)

LIST = {
    "query": Field(lowercase=True, max=255, empty_is_none=True),
    "forward": Field(lowercase=True, max=255, empty_is_none=True),
    "tags": Field("tags", lowercase=True, max=128, empty_is_none=True),
    "requiredTags": Field("tags", lowercase=True, max=128, empty_is_none=True),
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
    "tags": Field("tags", max=128),
    "allowUnsafe": Field("bool"),
}

UPDATE = {
    "password": Field(min=1, max=256),
    "existingPassword": Field(min=1, max=256),
    "name": Field(trim=True, max=256),
    "tags": Field("tags", max=128),
    "quota": Field("int", min=0),
    "disabled": Field("bool"),
    "allowUnsafe": Field("bool"),
}
#: what a user may change of its own account (the rest needs the root token)
OWN_CHANGES = frozenset({"password", "name"})

AUTHLOG = {
    "action": Field(trim=True, lowercase=True, max=100, empty_is_none=True),
    "filterip": Field(trim=True, max=100, empty_is_none=True),
    **PAGING,
}

LOGOUT = {
    "reason": Field(trim=True, max=128, empty_is_none=True),
}


_COUNT = {"type": "integer", "minimum": 0}
_QUOTA = obj({"allowed": _COUNT, "used": _COUNT})
_STRINGS = array_of(STRING)
#: a user as ``GET /users`` lists it (:func:`_listed`)
_USER = {"id": ID, "username": STRING, "name": STRING, "address": STRING, "tags": _STRINGS, "targets": _STRINGS,
         "enabled2fa": _STRINGS, "autoreply": FALSE, "encryptMessages": FALSE, "encryptForwarded": FALSE,
         "quota": _QUOTA, "hasPasswordSet": BOOLEAN, "activated": TRUE, "disabled": BOOLEAN, "suspended": FALSE}
LIST_ANSWER = listing(component("ListedUser", obj(_USER)), {"query": STRING})
ID_ANSWER = success({"id": ID})
GET_ANSWER = success({
    **{k: v for k, v in _USER.items() if k != "quota"}, "language": {"type": "null"}, "retention": FALSE,
    "spamLevel": INTEGER, "metaData": obj({}), "internalData": obj({}),
    "limits": obj({"quota": _QUOTA, "pop3MaxMessages": obj({"allowed": _COUNT}),
                   "imapMaxConnections": obj({"allowed": _COUNT, "used": _COUNT})}),
    "fromWhitelist": _STRINGS, "featureFlags": obj({}), "disabledScopes": _STRINGS, "passwordPwned": FALSE,
    "require2faEnabled": FALSE, "requirePasswordChange": FALSE})
DELETE_ANSWER = success({"user": ID, "addresses": obj({"deleted": _COUNT})})
QUOTA_ANSWER = success({"storageUsed": _COUNT, "previousStorageUsed": _COUNT})
TASK_ANSWER = success({"task": STRING})
_EVENT = {"id": ID, "action": STRING, "result": {"enum": ["success", "fail"]}, "key": STRING, "protocol": STRING,
          "ip": STRING, "source": STRING, "created": DATE_TIME, "last": DATE_TIME,
          "events": {"type": "integer", "minimum": 1}, "expires": DATE_TIME}
AUTHLOG_ANSWER = listing(component("AuthEvent", obj(_EVENT)), {"action": STRING}, optional=("action",))
EVENT_ANSWER = success(_EVENT)


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
        "tags": list(user.tags),
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
    @takes(LIST, allow_unknown=True, returns=LIST_ANSWER)
    async def list_users() -> Response:
        values = await api.values()
        caller = api.caller()
        query = values.get("query")
        if caller.role == ROOT:
            base = Listing(query=query, tags=values.get("tags") or (), required_tags=values.get("requiredTags") or ())
            if not values.get("forward"):  # this release has no forwarding targets: nothing matches one
                total = await sv.users.count_users(base)
                listing = await keyset_page(values, base, sv.users.list_users, lambda u: u.id, total)
            else:
                listing = page_of([], lambda u: u.id, values)
        elif caller.user is not None:  # a user token lists its own user only
            own = caller.user
            matches = (not values.get("forward") and _tagged(own, values)
                       and (not query or query in own.username.lower() or query in await main_address(api, own)))
            listing = page_of([own] if matches else [], lambda u: u.id, values)
        else:
            raise ApiError(403, "MissingPrivileges", "Not enough privileges")
        results = [_listed(api, user, await main_address(api, user)) for user in listing["results"]]
        return jsonify({"success": True, "query": query or "", **listing, "results": results})

    @app.post("/users")
    @takes(CREATE, returns=ID_ANSWER)
    async def create_user() -> Response:
        api.require_root()
        values = await api.values()
        try:
            user = await sv.users.create(values["username"], values["password"], address=values.get("address"),
                                         quota=values.get("quota"), name=values.get("name") or "",
                                         tags=values.get("tags") or ())
        except AlreadyExists as exc:
            code = "AddressExistsError" if "address" in str(exc) else "UserExistsError"
            raise ApiError(400, code, str(exc)) from None
        return jsonify({"success": True, "id": user.id})

    @app.get("/users/resolve/<username>")
    @takes({}, returns=ID_ANSWER)
    async def resolve_user(username: str) -> Response:
        api.require_root()
        await api.values()
        try:
            user = await sv.users.find(username)
        except NotFound:
            raise ApiError(404, "UserNotFound", "This user does not exist") from None
        return jsonify({"success": True, "id": user.id})

    @app.get("/users/<user_id>")
    @takes({}, returns=GET_ANSWER)
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
        changes = {k for k in values if k in ("password", "quota", "disabled", "name", "tags")}
        if not changes:
            raise ApiError(400, "InputValidationError", "Nothing was changed")
        if caller.role != ROOT and changes - OWN_CHANGES:
            raise ApiError(403, "MissingPrivileges", "Not enough privileges")
        if "password" in values:
            existing = values.get("existingPassword")
            if existing is None and caller.role != ROOT:
                raise ApiError(400, "InputValidationError", '"existingPassword" is required',
                               {"existingPassword": '"existingPassword" is required'})
            if existing is not None:
                try:
                    await sv.login.authenticate(user.username, existing, peer=request.remote_addr, protocol="API")
                except (AuthFailed, RateLimited):
                    raise ApiError(403, "AuthFailed", "Password verification failed") from None
            await sv.users.set_password(user, values["password"])
        if "name" in values or "tags" in values:
            try:
                await sv.users.set_profile(user, name=values.get("name"), tags=values.get("tags"))
            except InvalidInput as exc:
                raise ApiError(400, "InputValidationError", str(exc), {exc.field or "tags": str(exc)}) from None
        if "quota" in values:
            await sv.users.set_quota(user, values["quota"])
        if "disabled" in values:
            await sv.users.set_disabled(user, values["disabled"])
        return jsonify({"success": True})

    @app.delete("/users/<user_id>")
    @takes({}, returns=DELETE_ANSWER)
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

    @app.post("/users/<user_id>/quota/reset")
    @takes({}, returns=QUOTA_ANSWER)
    async def reset_quota(user_id: str) -> Response:
        """Recount the storage the user's messages take (the quota's ``used``)."""
        api.require_root()
        await api.values()
        user = await api.target_user(user_id)
        try:
            before, after = await sv.users.recount_storage(user)
        except NotFound:
            raise ApiError(404, "UserNotFound", "This user does not exist") from None
        return jsonify({"success": True, "storageUsed": after, "previousStorageUsed": before})

    @app.post("/quota/reset")
    @takes({}, returns=TASK_ANSWER)
    async def reset_all_quotas() -> Response:
        """Recount the storage of every user, in the background (the answer names the task: its end is logged)."""
        api.require_root()
        await api.values()
        task = secrets.token_hex(12)
        current_app.add_background_task(_recount_all, task)
        return jsonify({"success": True, "task": task})

    async def _recount_all(task: str) -> None:
        try:
            done = await sv.users.recount_all_storage()
        except Exception:
            log.exception("quota recount task %s failed", task)
            return
        log.info("quota recount task %s: recounted %d users", task, done)

    @app.get("/users/<user_id>/authlog")
    @takes(AUTHLOG, returns=AUTHLOG_ANSWER)
    async def authlog(user_id: str) -> Response:
        """The user's authentication events, newest first."""
        values = await api.values()
        user = await api.target_user(user_id)
        action, ip = values.get("action"), values.get("filterip")
        total = await sv.login.authlog.count(user, action=action, ip=ip)
        listing = await keyset_page(values, Listing(), lambda page: sv.login.authlog.page(
            user, page, action=action, ip=ip), lambda e: e.id, total)
        body = {"success": True, **({"action": action} if action else {}), **listing,
                "results": [_event(e) for e in listing["results"]]}
        return jsonify(body)

    @app.get("/users/<user_id>/authlog/<event_id>")
    @takes({}, returns=EVENT_ANSWER, path={"event_id": ID})
    async def authlog_event(user_id: str, event_id: str) -> Response:
        await api.values()
        user = await api.target_user(user_id)
        if not OBJECT_ID.fullmatch(event_id):
            raise ApiError(400, "InputValidationError", '"event" must be a 24 character hex string',
                           {"event": '"event" must be a 24 character hex string'})
        try:
            event = await sv.login.authlog.event(user, event_id.lower())
        except NotFound:
            raise ApiError(404, "EventNotFound", "Event was not found") from None
        return jsonify({"success": True, **_event(event)})


def _tagged(user: User, values: dict[str, Any]) -> bool:
    """Whether ``user`` has one of the ``tags`` and all of the ``requiredTags`` asked for."""
    own = {t.lower() for t in user.tags}
    wanted = values.get("tags") or ()
    return (not wanted or bool(own & set(wanted))) and set(values.get("requiredTags") or ()) <= own


def _event(e: AuthEvent) -> dict[str, Any]:
    """One authentication log entry in WildDuck's shape."""
    return {"id": e.id, "action": e.action, "result": e.result, "key": e.key, "protocol": e.protocol, "ip": e.ip,
            "source": e.source, "created": iso(e.created), "last": iso(e.last), "events": e.events,
            "expires": iso(e.expires)}
