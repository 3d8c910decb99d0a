"""API requests counted (and timed) by method, route template and status, on the server's own ``/metrics`` port."""

from __future__ import annotations

import re

import httpx
import pytest
from trio_websocket import ConnectionRejected, open_websocket_url

from tests.api.conftest import ROOT_TOKEN, Api

USER_ROUTE = "/users/<user_id>"
UPDATES_ROUTE = "/users/<user_id>/updates"


async def scrape(api: Api) -> dict[tuple[str, str], float]:
    """The samples of the API's metrics: (name, labels) → value."""
    host, port = api.server.address("metrics")
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://{host}:{port}/metrics")).text
    out: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        m = re.match(r"^(wildduck_api_\w+)\{(.*)\} (\S+)$", line)
        if m:
            labels = ",".join(sorted(m.group(2).split(",")))
            out[(m.group(1), labels)] = float(m.group(3))
    return out


def key(name: str, method: str, route: str, status: int, **more: str) -> tuple[str, str]:
    labels = {"method": method, "route": route, "status": str(status), **more}
    return name, ",".join(sorted(f'{k}="{v}"' for k, v in labels.items()))


async def test_requests_are_counted_and_timed_by_route_template_and_status(api: Api) -> None:
    user = await api.create_user("alice")
    before = await scrape(api)
    for _ in range(3):
        assert (await api.root.get(f"/users/{user}")).status_code == 200
    assert (await api.root.get("/users/" + "0" * 24)).status_code == 404  # the same template
    assert (await api.anonymous.get(f"/users/{user}")).status_code == 403
    assert (await api.root.get("/no/such/route")).status_code == 404
    host, port = api.server.address("api")
    async with open_websocket_url(f"ws://{host}:{port}/users/{user}/updates?accessToken={ROOT_TOKEN}") as ws:
        await ws.get_message()
    with pytest.raises(ConnectionRejected):
        async with open_websocket_url(f"ws://{host}:{port}/users/{user}/updates?accessToken=wrong"):
            pass
    after = await scrape(api)

    def grew(name: str, method: str, route: str, status: int, **more: str) -> float:
        k = key(name, method, route, status, **more)
        return after.get(k, 0) - before.get(k, 0)

    assert grew("wildduck_api_requests_total", "GET", USER_ROUTE, 200) == 3
    assert grew("wildduck_api_requests_total", "GET", USER_ROUTE, 404) == 1
    assert grew("wildduck_api_requests_total", "GET", USER_ROUTE, 403) == 1
    assert grew("wildduck_api_requests_total", "GET", "unmatched", 404) == 1
    assert grew("wildduck_api_requests_total", "GET", UPDATES_ROUTE, 101) == 1
    assert grew("wildduck_api_requests_total", "GET", UPDATES_ROUTE, 403) == 1
    assert grew("wildduck_api_request_seconds_count", "GET", USER_ROUTE, 200) == 3
    assert grew("wildduck_api_request_seconds_bucket", "GET", USER_ROUTE, 200, le="+Inf") == 3
    assert after[key("wildduck_api_request_seconds_sum", "GET", USER_ROUTE, 200)] > 0
    assert key("wildduck_api_request_seconds_count", "GET", UPDATES_ROUTE, 101) not in after  # a session: untimed
