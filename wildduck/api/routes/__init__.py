"""The routes, one module per resource family; each ``register(app, api)`` adds its own."""

from __future__ import annotations

from quart_trio import QuartTrio

from wildduck.api.context import Api
from wildduck.api.routes import addresses, auth, health, mailboxes, messages, search, updates, users


def register_all(app: QuartTrio, api: Api) -> None:
    for module in (auth, users, addresses, mailboxes, messages, search, updates, health):
        module.register(app, api)
