"""grpc.health.v1.Health answered by asking a probe on each Check (registry, adapters).

The gateway has its own periodic watch (gateway/health.py): its status depends on
state that changes without anyone asking. Servers whose health is "can I read my
database right now" simply ask, off the event loop, when a prober asks them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class ProbedHealth(health_aio.HealthServicer):
    """SERVING for ``services`` while ``probe`` (blocking; run in a thread) returns True.

    Watch streams see a change when a Check (or a new Watch) notices it. A change is
    logged once, as a WARNING, on ``logger``.
    """

    def __init__(
        self, probe: Callable[[], bool], logger: logging.Logger, services: Sequence[str] = ("",)
    ) -> None:
        super().__init__()
        self._probe = probe
        self._log = logger
        self._services = tuple(services)
        self._serving: bool | None = None

    async def refresh(self) -> bool:
        """Probe once and publish the result; returns whether serving."""
        serving = await asyncio.to_thread(self._probe)
        if serving != self._serving:
            if self._serving is not None or not serving:
                self._log.warning("health %s", "SERVING" if serving else "NOT_SERVING")
            self._serving = serving
            for service in self._services:
                await self.set(service, SERVING if serving else NOT_SERVING)
        return serving

    async def Check(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC name
        await self.refresh()
        return await super().Check(request, context)

    async def Watch(self, request: Any, context: Any) -> None:  # noqa: N802 - gRPC name
        await self.refresh()
        await super().Watch(request, context)
