"""Whether the store and the counters answer (the API's ``GET /health``)."""

from __future__ import annotations

import logging

from wildduck.ports import Counters, Maintenance

log = logging.getLogger(__name__)


class HealthService:
    def __init__(self, maintenance: Maintenance, counters: Counters) -> None:
        self.maintenance = maintenance
        self.counters = counters

    async def problems(self) -> list[str]:
        """What does not answer (empty when all is well): one query through the store's reader thread, one
        read of the counters. Cancellation: the reads are abandoned."""
        found = []
        try:
            await self.maintenance.storage_bytes()
        except Exception:
            log.exception("health check: the store does not answer")
            found.append("store")
        try:
            await self.counters.window("health")
        except Exception:
            log.exception("health check: the counters do not answer")
            found.append("counters")
        return found
