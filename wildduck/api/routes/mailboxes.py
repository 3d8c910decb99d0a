"""Mailboxes: ``GET|POST /users/:user/mailboxes``, ``GET|PUT|DELETE /users/:user/mailboxes/:mailbox`` (``resolve``
with ``?path=`` for a GET by path)."""

from __future__ import annotations

from typing import Any

from quart import Response, jsonify
from quart_trio import QuartTrio

from wildduck.api.context import Api
from wildduck.api.schemas import (
    BOOLEAN,
    FALSE,
    ID,
    OBJECT_ID,
    STRING,
    ApiError,
    Field,
    array_of,
    component,
    input_error,
    nullable,
    obj,
    success,
    takes,
)
from wildduck.domain.mailboxes import SEPARATOR
from wildduck.errors import AlreadyExists, NotPermitted
from wildduck.model import Mailbox, User

LIST = {"specialUse": Field("bool", default=False), "showHidden": Field("bool", default=False),
        "counters": Field("bool", default=False), "sizes": Field("bool", default=False)}
#: WildDuck's mailbox options this release has no storage for: accepted only with their "off" value
UNSUPPORTED = {"hidden": Field("bool"), "retention": Field("int", min=0), "encryptMessages": Field("bool")}
CREATE = {"path": Field(required=True, min=1, max=1024), **UNSUPPORTED}
UPDATE = {"path": Field(min=1, max=1024), "subscribed": Field("bool"), **UNSUPPORTED}
GET = {"path": Field(min=1, max=1024)}
ID_PATTERN = {"type": "string", "pattern": f"^{OBJECT_ID.pattern}$"}

_COUNT = {"type": "integer", "minimum": 0}
#: a mailbox as :func:`_mailbox` renders it
MAILBOX = {"id": ID, "name": STRING, "path": STRING, "specialUse": nullable(STRING),
           "modifyIndex": {"type": "integer", "minimum": 0}, "subscribed": BOOLEAN, "hidden": FALSE,
           "encryptMessages": FALSE}
#: an entry of the listing: ``size`` with ``sizes``, ``total`` and ``unseen`` with ``counters``
LISTED = component("ListedMailbox", obj({**MAILBOX, "size": _COUNT, "total": _COUNT, "unseen": _COUNT},
                                        optional=("size", "total", "unseen")))
LIST_ANSWER = success({"results": array_of(LISTED)})
GET_ANSWER = success({**MAILBOX, "total": _COUNT, "unseen": _COUNT})
CREATE_ANSWER = success({"id": ID})


def _check_unsupported(values: dict[str, Any]) -> None:
    bad = {k: f'"{k}" is not supported by this server' for k in UNSUPPORTED if values.get(k)}
    if bad:
        raise input_error(bad)


def _order(entry: tuple[Mailbox, bool]) -> tuple[bool, bool, bool, str]:
    """WildDuck's listing order: INBOX, INBOX's children, subscribed before unsubscribed, then by path."""
    mailbox, subscribed = entry
    return mailbox.path != "INBOX", not mailbox.path.startswith("INBOX/"), not subscribed, mailbox.path


def _mailbox(m: Mailbox, subscribed: bool) -> dict[str, Any]:
    return {"id": m.id, "name": m.path.rsplit(SEPARATOR, 1)[-1], "path": m.path, "specialUse": m.special_use,
            "modifyIndex": m.highest_modseq, "subscribed": subscribed, "hidden": False, "encryptMessages": False}


def _cannot(message: str) -> ApiError:
    return ApiError(400, "CANNOT", message)


def register(app: QuartTrio, api: Api) -> None:
    sv = api.services

    async def mailbox_of(user: User, mailbox_id: str, path: str | None = None) -> Mailbox:
        """The user's mailbox by id (or by ``path`` when the id is ``resolve``); 404 NoSuchMailbox."""
        if mailbox_id == "resolve" and path is not None:
            return await sv.mailboxes.get(user.id, path)
        return await api.mailbox_of(user, mailbox_id)

    async def subscribed_of(user: User, mailbox: Mailbox) -> bool:
        hierarchy = await sv.mailboxes.hierarchy(user.id)
        return mailbox.subscribed or mailbox.path in hierarchy.subscriptions

    @app.get("/users/<user_id>/mailboxes")
    @takes(LIST, returns=LIST_ANSWER)
    async def list_mailboxes(user_id: str) -> Response:
        values = await api.values()
        user = await api.target_user(user_id)
        hierarchy = await sv.mailboxes.hierarchy(user.id)
        found = [(e.mailbox, e.subscribed) for e in hierarchy.entries if e.mailbox is not None]
        if values["specialUse"]:
            found = [(m, s) for m, s in found if m.path == "INBOX" or m.special_use]
        found.sort(key=_order)
        results = []
        for mailbox, subscribed in found:
            item = _mailbox(mailbox, subscribed)
            if values["counters"] or values["sizes"]:
                status = await sv.mailboxes.status(mailbox, first_unseen=False)
                if values["sizes"]:
                    item["size"] = status.size
                if values["counters"]:
                    item["total"], item["unseen"] = status.messages, status.unseen
            results.append(item)
        return jsonify({"success": True, "results": results})

    @app.post("/users/<user_id>/mailboxes")
    @takes(CREATE, returns=CREATE_ANSWER)
    async def create_mailbox(user_id: str) -> Response:
        values = await api.values()
        user = await api.target_user(user_id)
        _check_unsupported(values)
        try:
            created = await sv.mailboxes.create(user.id, values["path"], subscribed=True)
        except AlreadyExists:
            raise ApiError(400, "ALREADYEXISTS", "Mailbox creation failed with code MailboxAlreadyExists") from None
        return jsonify({"success": True, "id": created.id})

    @app.get("/users/<user_id>/mailboxes/<mailbox_id>")
    @takes(GET, returns=GET_ANSWER, path={"mailbox_id": {
        "anyOf": [ID_PATTERN, {"const": "resolve"}],
        "description": "a mailbox id (24 hex digits), or resolve: the mailbox at ?path="}})
    async def get_mailbox(user_id: str, mailbox_id: str) -> Response:
        values = await api.values()
        user = await api.target_user(user_id)
        mailbox = await mailbox_of(user, mailbox_id, values.get("path"))
        status = await sv.mailboxes.status(mailbox, first_unseen=False)
        return jsonify({"success": True, **_mailbox(mailbox, await subscribed_of(user, mailbox)),
                        "total": status.messages, "unseen": status.unseen})

    @app.put("/users/<user_id>/mailboxes/<mailbox_id>")
    @takes(UPDATE, returns=success())
    async def update_mailbox(user_id: str, mailbox_id: str) -> Response:
        values = await api.values()
        user = await api.target_user(user_id)
        _check_unsupported(values)
        mailbox = await mailbox_of(user, mailbox_id)
        if "path" not in values and "subscribed" not in values:
            raise ApiError(400, "InputValidationError", "Nothing was changed")
        if "path" in values:
            try:
                await sv.mailboxes.rename(user.id, mailbox.path, values["path"])
            except NotPermitted:
                raise _cannot("Mailbox update failed with code DisallowedMailboxMethod") from None
            except AlreadyExists:
                raise ApiError(400, "ALREADYEXISTS", "Mailbox rename failed with code MailboxAlreadyExists") from None
            mailbox = await sv.mailboxes.get_by_id(mailbox.id)
        if values.get("subscribed") is True:
            await sv.mailboxes.subscribe(user.id, mailbox.path)
        elif values.get("subscribed") is False and await subscribed_of(user, mailbox):
            await sv.mailboxes.unsubscribe(user.id, mailbox.path)
        return jsonify({"success": True})

    @app.delete("/users/<user_id>/mailboxes/<mailbox_id>")
    @takes({}, returns=success())
    async def delete_mailbox(user_id: str, mailbox_id: str) -> Response:
        await api.values()
        user = await api.target_user(user_id)
        mailbox = await mailbox_of(user, mailbox_id)
        try:
            await sv.mailboxes.delete(user.id, mailbox.path)
        except NotPermitted:
            raise _cannot("Mailbox deletion failed with code DisallowedMailboxMethod") from None
        return jsonify({"success": True})
