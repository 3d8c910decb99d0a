"""Addresses: ``GET /addresses``, ``GET /addresses/resolve/:address``, ``POST|GET /users/:user/addresses``,
``GET|PUT|DELETE /users/:user/addresses/:address``."""

from __future__ import annotations

from typing import Any

from quart import Response, jsonify
from quart_trio import QuartTrio

from wildduck.api.context import Api
from wildduck.api.paging import keyset_page
from wildduck.api.schemas import (
    BOOLEAN,
    DATE_TIME,
    FALSE,
    ID,
    OBJECT_ID,
    PAGING,
    STRING,
    ApiError,
    Field,
    array_of,
    component,
    invalid_input,
    listing,
    obj,
    success,
    takes,
)
from wildduck.domain.rendering import iso
from wildduck.errors import AlreadyExists, InvalidInput, NotFound
from wildduck.model import Address, Listing, User

LIST = {"query": Field(trim=True, lowercase=True, max=255, empty_is_none=True),
        "tags": Field("tags", lowercase=True, max=128, empty_is_none=True),
        "requiredTags": Field("tags", lowercase=True, max=128, empty_is_none=True),
        "metaData": Field("bool"), "internalData": Field("bool"), **PAGING}
CREATE = {"address": Field(required=True, min=1, max=320), "name": Field(trim=True, max=128, empty_is_none=True),
          "main": Field("bool", default=False), "tags": Field("tags", max=128), "allowWildcard": Field("bool")}
UPDATE = {"address": Field(trim=True, min=1, max=320, empty_is_none=True), "name": Field(trim=True, max=128),
          "main": Field("bool"), "tags": Field("tags", max=128)}
READ = {"metaData": Field("bool"), "internalData": Field("bool")}

_TAGS = array_of(STRING)
#: one of a user's addresses (:func:`_address`)
_ADDRESS = {"id": ID, "name": STRING, "address": STRING, "main": BOOLEAN, "tags": _TAGS, "created": DATE_TIME}
USER_ADDRESS = component("UserAddress", obj(_ADDRESS))
LIST_ANSWER = listing(component("ListedAddress", obj({
    "id": ID, "name": STRING, "address": STRING, "user": ID, "forwarded": FALSE, "forwardedDisabled": FALSE,
    "tags": _TAGS})), {"query": STRING})
RESOLVE_ANSWER = success({"id": ID, "name": STRING, "address": STRING, "user": ID, "tags": _TAGS,
                          "created": DATE_TIME})
CREATE_ANSWER = success({"id": ID})
USER_ADDRESSES_ANSWER = success({"results": array_of(USER_ADDRESS)})
USER_ADDRESS_ANSWER = success(_ADDRESS)


def _address(a: Address) -> dict[str, Any]:
    return {"id": a.id, "name": a.name, "address": a.address, "main": a.main, "tags": list(a.tags),
            "created": iso(a.created)}


def _not_found() -> ApiError:
    return ApiError(404, "AddressNotFound", "Invalid or unknown address")


def register(app: QuartTrio, api: Api) -> None:
    sv = api.services

    async def one_of(user: User, address_id: str) -> Address:
        if not OBJECT_ID.fullmatch(address_id):
            raise ApiError(400, "InputValidationError", '"address" must be a 24 character hex string',
                           {"address": '"address" must be a 24 character hex string'})
        try:
            return await sv.users.get_address(user, address_id.lower())
        except NotFound:
            raise _not_found() from None

    @app.get("/addresses")
    @takes(LIST, returns=LIST_ANSWER)
    async def list_addresses() -> Response:
        api.require_root()
        values = await api.values()
        query = values.get("query")
        base = Listing(query=query, tags=values.get("tags") or (), required_tags=values.get("requiredTags") or ())
        total = await sv.users.count_addresses(base)
        listing = await keyset_page(values, base, sv.users.list_all_addresses, lambda a: a.id, total)
        results = [{"id": a.id, "name": a.name, "address": a.address, "user": a.user_id, "forwarded": False,
                    "forwardedDisabled": False, "tags": list(a.tags)} for a in listing["results"]]
        return jsonify({"success": True, "query": query or "", **listing, "results": results})

    @app.get("/addresses/resolve/<address>")
    @takes({"allowWildcard": Field("bool")}, returns=RESOLVE_ANSWER)
    async def resolve_address(address: str) -> Response:
        api.require_root()
        await api.values()
        try:
            if OBJECT_ID.fullmatch(address):
                found = await sv.users.address_by_id(address.lower())
            else:
                found = await sv.users.resolve_address(address)
        except (NotFound, InvalidInput):
            raise _not_found() from None
        return jsonify({"success": True, "id": found.id, "name": found.name, "address": found.address,
                        "user": found.user_id, "tags": list(found.tags), "created": iso(found.created)})

    @app.post("/users/<user_id>/addresses")
    @takes(CREATE, returns=CREATE_ANSWER)
    async def create_address(user_id: str) -> Response:
        values = await api.values()
        user = await api.target_user(user_id)
        if values.get("allowWildcard"):
            raise ApiError(400, "InputValidationError", "wildcard addresses are not supported",
                           {"allowWildcard": '"allowWildcard" wildcard addresses are not supported'})
        try:
            created = await sv.users.add_address(user, values["address"], main=values["main"],
                                                 name=values.get("name") or "", tags=values.get("tags") or ())
        except AlreadyExists:
            raise ApiError(400, "AddressExistsError", "This email address already exists") from None
        except InvalidInput as exc:
            raise invalid_input(exc, "address") from None
        return jsonify({"success": True, "id": created.id})

    @app.get("/users/<user_id>/addresses")
    @takes(READ, returns=USER_ADDRESSES_ANSWER)
    async def user_addresses(user_id: str) -> Response:
        await api.values()
        user = await api.target_user(user_id)
        found = sorted(await sv.users.addresses(user), key=lambda a: a.addrview)
        return jsonify({"success": True, "results": [_address(a) for a in found]})

    @app.get("/users/<user_id>/addresses/<address_id>")
    @takes(READ, returns=USER_ADDRESS_ANSWER)
    async def user_address(user_id: str, address_id: str) -> Response:
        await api.values()
        user = await api.target_user(user_id)
        return jsonify({"success": True, **_address(await one_of(user, address_id))})

    @app.put("/users/<user_id>/addresses/<address_id>")
    @takes(UPDATE)
    async def update_address(user_id: str, address_id: str) -> Response:
        """Rename the address, change its name or tags, or make it the user's main address."""
        values = await api.values()
        user = await api.target_user(user_id)
        found = await one_of(user, address_id)
        if values.get("main") is False:
            raise ApiError(400, "InputValidationError", "Cannot unset main status")
        if not any(k in values for k in UPDATE):
            raise ApiError(400, "InputValidationError", "Nothing was changed")
        try:
            await sv.users.update_address(user, found.id, address=values.get("address"), name=values.get("name"),
                                          main=values.get("main"), tags=values.get("tags"))
        except AlreadyExists:
            raise ApiError(400, "AddressExistsError", "This email address already exists") from None
        except InvalidInput as exc:
            raise invalid_input(exc, "address") from None
        except NotFound:
            raise _not_found() from None
        return jsonify({"success": True})

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
