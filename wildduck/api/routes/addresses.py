"""Addresses: ``GET /addresses``, ``GET /addresses/resolve/:address``, ``POST|GET /users/:user/addresses``,
``GET|DELETE /users/:user/addresses/:address``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from quart import Response, jsonify
from quart_trio import QuartTrio

from wildduck.api.context import Api
from wildduck.api.schemas import OBJECT_ID, PAGING, ApiError, Field, page_of, takes
from wildduck.errors import AlreadyExists, InvalidInput, NotFound
from wildduck.model import Address, User

LIST = {"query": Field(trim=True, lowercase=True, max=255, empty_is_none=True),
        "tags": Field(trim=True, max=1024, empty_is_none=True),
        "requiredTags": Field(trim=True, max=1024, empty_is_none=True),
        "metaData": Field("bool"), "internalData": Field("bool"), **PAGING}
CREATE = {"address": Field(required=True, min=1, max=320), "main": Field("bool", default=False),
          "allowWildcard": Field("bool")}
READ = {"metaData": Field("bool"), "internalData": Field("bool")}


def iso(when: dt.datetime) -> str:
    """A time as JavaScript's ``Date.toJSON`` writes it (WildDuck's dates): UTC, milliseconds, ``Z``."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _address(a: Address) -> dict[str, Any]:
    return {"id": a.id, "address": a.address, "main": a.main, "tags": [], "created": iso(a.created)}


def _not_found() -> ApiError:
    return ApiError(404, "AddressNotFound", "Invalid or unknown address")


def register(app: QuartTrio, api: Api) -> None:
    sv = api.services

    async def one_of(user: User, address_id: str) -> Address:
        if not OBJECT_ID.fullmatch(address_id):
            raise ApiError(400, "InputValidationError", '"address" must be a 24 character hex string',
                           {"address": '"address" must be a 24 character hex string'})
        found = next((a for a in await sv.users.addresses(user) if a.id == address_id.lower()), None)
        if found is None:
            raise _not_found()
        return found

    async def by_id(address_id: str) -> Address:
        for user in await sv.users.all():
            for a in await sv.users.addresses(user):
                if a.id == address_id:
                    return a
        raise _not_found()

    @app.get("/addresses")
    @takes(LIST)
    async def list_addresses() -> Response:
        api.require_root()
        values = await api.values()
        found: list[Address] = []
        if not values.get("tags") and not values.get("requiredTags"):  # no address has tags in this release
            for user in await sv.users.all():
                found.extend(await sv.users.addresses(user))
        query = values.get("query")
        if query:
            found = [a for a in found if query in a.address]
        found.sort(key=lambda a: a.id)
        listing = page_of(found, lambda a: a.id, values)
        results = [{"id": a.id, "address": a.address, "user": a.user_id, "forwarded": False,
                    "forwardedDisabled": False, "tags": []} for a in listing["results"]]
        return jsonify({"success": True, "query": query or "", **listing, "results": results})

    @app.get("/addresses/resolve/<address>")
    @takes({"allowWildcard": Field("bool")})
    async def resolve_address(address: str) -> Response:
        api.require_root()
        await api.values()
        try:
            if OBJECT_ID.fullmatch(address):
                found = await by_id(address.lower())
            else:
                found = await sv.users.resolve_address(address)
        except (NotFound, InvalidInput):
            raise _not_found() from None
        return jsonify({"success": True, "id": found.id, "address": found.address, "user": found.user_id,
                        "tags": [], "created": iso(found.created)})

    @app.post("/users/<user_id>/addresses")
    @takes(CREATE)
    async def create_address(user_id: str) -> Response:
        values = await api.values()
        user = await api.target_user(user_id)
        if values.get("allowWildcard"):
            raise ApiError(400, "InputValidationError", "wildcard addresses are not supported",
                           {"allowWildcard": '"allowWildcard" wildcard addresses are not supported'})
        try:
            created = await sv.users.add_address(user, values["address"], main=values["main"])
        except AlreadyExists:
            raise ApiError(400, "AddressExistsError", "This email address already exists") from None
        return jsonify({"success": True, "id": created.id})

    @app.get("/users/<user_id>/addresses")
    @takes(READ)
    async def user_addresses(user_id: str) -> Response:
        await api.values()
        user = await api.target_user(user_id)
        found = sorted(await sv.users.addresses(user), key=lambda a: a.addrview)
        return jsonify({"success": True, "results": [_address(a) for a in found]})

    @app.get("/users/<user_id>/addresses/<address_id>")
    @takes(READ)
    async def user_address(user_id: str, address_id: str) -> Response:
        await api.values()
        user = await api.target_user(user_id)
        return jsonify({"success": True, **_address(await one_of(user, address_id))})

    @app.delete("/users/<user_id>/addresses/<address_id>")
    @takes({})
    async def delete_address(user_id: str, address_id: str) -> Response:
        await api.values()
        user = await api.target_user(user_id)
        found = await one_of(user, address_id)
        if found.main:
            raise ApiError(400, "NotPermitted", "Can not delete main address")
        await sv.users.remove_address(found.address)
        return jsonify({"success": True})
