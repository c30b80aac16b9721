"""Gateways serve again within seconds of the registry's return from an outage.

The registry stays away long enough for the configuration to expire (the gateways'
clocks moved past its expiry) and for gRPC's reconnect backoff to grow: while it is
away, a listener on its port accepts and drops every connection, so the test sees each
attempt to reach it. The registry comes back on the same port right after an attempt,
the worst moment for a client that waits out a backoff before dialling again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio
from grpc_health.v1 import health_pb2

from tests.integration.bus_federation import (
    MAX_MESSAGE_BYTES,
    Federation,
    ShiftableClock,
    start_federation,
)
from tests.integration.test_health_checks import check
from tests.waiting import until
from zhol.cli.demo import CONSUMER_GATEWAY, PROVIDER_GATEWAY
from zhol.registry.server import start_registry
from zhol.registry.settings import load_registry_settings

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
GATEWAYS = (CONSUMER_GATEWAY, PROVIDER_GATEWAY)
# The target: every gateway serving again within 5 s of the registry's return.
RECOVERY_S = 5.0
# Away at least this long, or until gRPC's backoff shows (attempts this far apart).
OUTAGE_S = 12.0
BACKED_OFF_GAP_S = 3.5


@pytest_asyncio.fixture
async def fed(tmp_path) -> AsyncIterator[Federation]:  # type: ignore[no-untyped-def]
    federation = await start_federation(tmp_path, persons=5)
    yield federation
    await federation.stop()


async def test_gateways_serve_again_within_seconds_of_the_registrys_return(
    fed: Federation,
) -> None:
    address = fed.ports.address(fed.ports.registry)
    await fed.registry.stop(0)
    attempts: list[float] = []
    loop = asyncio.get_running_loop()

    async def drop(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        attempts.append(loop.time())
        writer.close()

    host, port = address.rsplit(":", 1)
    down = await asyncio.start_server(drop, host, int(port))
    try:
        # Every gateway's configuration runs out while the registry is away.
        expires_at_ms = max(fed.gateways[g].conf.current().conf.expires_at_ms for g in GATEWAYS)
        offset_ms = expires_at_ms - ShiftableClock().now_ms() + 1000
        for gateway_id in GATEWAYS:
            fed.clocks[gateway_id].offset_ms = offset_ms
        for gateway_id in GATEWAYS:
            address_is = fed.is_address(gateway_id)
            await until(lambda a=address_is: _is(a, NOT_SERVING), timeout=10, what="expired")

        started = loop.time()

        def away_long_enough() -> bool:
            gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
            backed_off = any(gap >= BACKED_OFF_GAP_S for gap in gaps)
            return backed_off or loop.time() - started >= OUTAGE_S

        await until(away_long_enough, timeout=OUTAGE_S + 60, what="an outage")
        # Back right after an attempt, as far as possible from the next one.
        seen = len(attempts)
        await until(lambda: len(attempts) > seen, timeout=60, what="another attempt")
    finally:
        down.close()
        await down.wait_closed()
    settings = load_registry_settings(
        fed.layout.registry,
        overrides={"listen": address, "max_message_bytes": MAX_MESSAGE_BYTES},
    )
    fed.registry, _ = await start_registry(settings, ShiftableClock(offset_ms))
    for gateway_id in GATEWAYS:
        address_is = fed.is_address(gateway_id)
        await until(
            lambda a=address_is: _is(a, SERVING),
            timeout=RECOVERY_S,
            what=f"{gateway_id} serving again",
        )


async def _is(address: str, status: int) -> bool:
    return await check(address) == status
