"""``GET /health``: 200 ``{"success": true, "version"}`` when the store and the counters answer, else 500."""

from __future__ import annotations

from quart import Response, jsonify
from quart_trio import QuartTrio

from wildduck.api.context import Api
from wildduck.api.schemas import STRING, ApiError, success, takes


def register(app: QuartTrio, api: Api) -> None:
    @app.get("/health")
    @takes({}, returns=success({"version": STRING}))
    async def health() -> Response:
        await api.values()
        problems = await api.services.health.problems()
        if problems:
            raise ApiError(500, "HealthCheckFailed", "Not answering: " + ", ".join(problems))
        return jsonify({"success": True, "version": api.settings.version})
