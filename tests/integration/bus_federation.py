"""An in-process federation on 127.0.0.1 for integration tests: real servers, real TLS.

Registry, population adapter and both gateways run as real gRPC servers on
ephemeral ports in the test's event loop; nothing of ours is mocked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from zhol.adapters.population.seed import seed_database
from zhol.adapters.population.server import PopulationServer, PopulationSettings, serve
from zhol.cli.demo import CLIENT, CONSUMER_GATEWAY, PROVIDER_GATEWAY
from zhol.cli.federation import (
    CORE_AGENCIES,
    Layout,
    Ports,
    gateways_of,
    init_registry_dir,
    provision_gateways,
)
from zhol.core.grpcerr import trailer_value
from zhol.core.metadata import ERROR_KEY
from zhol.gateway.server import RunningGateway, start_gateway
from zhol.gateway.settings import load_gateway_settings
from zhol.population.v1 import population_pb2
from zhol.registry.server import start_registry
from zhol.registry.settings import load_registry_settings

GET_PERSON = "/zhol.population.v1.PopulationRegistry/GetPerson"
PORTAL_GATEWAY = "KZ/GOV/MDDIAI/gw1"
MAX_MESSAGE_BYTES = 64 * 1024


@dataclass
class ShiftableClock:
    """System time plus an offset a test can move (expiry, clock skew)."""

    offset_ms: int = 0

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms


@dataclass
class Federation:
    layout: Layout
    ports: Ports
    registry: grpc.aio.Server
    population: PopulationServer
    gateways: dict[str, RunningGateway]
    clocks: dict[str, ShiftableClock] = field(default_factory=dict)

    @property
    def consumer(self) -> RunningGateway:
        return self.gateways[CONSUMER_GATEWAY]

    @property
    def provider(self) -> RunningGateway:
        return self.gateways[PROVIDER_GATEWAY]

    def is_address(self, gateway_id: str = CONSUMER_GATEWAY) -> str:
        return f"127.0.0.1:{self.gateways[gateway_id].is_port}"

    async def restart_gateway(self, gateway_id: str, settings: str = "") -> RunningGateway:
        """Stop ``gateway_id``, add ``settings`` (gateway.toml lines) and start it again."""
        await self.gateways.pop(gateway_id).stop(0)
        if settings:
            toml = self.layout.gateway(gateway_id) / "gateway.toml"
            toml.write_text(toml.read_text() + settings)
        return await self.start_gateway(gateway_id)

    async def start_gateway(self, gateway_id: str) -> RunningGateway:
        clock = self.clocks.setdefault(gateway_id, ShiftableClock())
        settings = load_gateway_settings(self.layout.gateway(gateway_id))
        # A gateway restarted in the same process may find its old listener not yet
        # closed by grpc's core threads; give the port a moment rather than flake.
        for attempt in range(20):
            try:
                running = await start_gateway(settings, clock=clock)
                break
            except RuntimeError as err:
                if "bind" not in str(err).lower() or attempt == 19:
                    raise
                await asyncio.sleep(0.1)
        self.gateways[gateway_id] = running
        return running

    async def stop(self) -> None:
        for running in self.gateways.values():
            await running.stop(0)
        await self.population.stop(0)
        await self.registry.stop(0)


async def start_federation(
    root: Path,
    persons: int = 200,
    agencies: tuple[str, ...] = CORE_AGENCIES,
    registry_overrides: Mapping[str, Any] | None = None,
) -> Federation:
    layout = Layout(root)
    init_registry_dir(layout)
    ports = Ports.choose()
    settings = load_registry_settings(
        layout.registry,
        overrides={
            "listen": ports.address(ports.registry),
            "max_message_bytes": MAX_MESSAGE_BYTES,
            **(registry_overrides or {}),
        },
    )
    registry, _ = await start_registry(settings)
    layout.population_db.parent.mkdir(parents=True, exist_ok=True)
    seed_database(layout.population_db, count=persons, seed=7)
    population = await serve(
        PopulationSettings(db_path=layout.population_db, listen=ports.address(ports.population))
    )
    await provision_gateways(layout, ports, agencies)
    federation = Federation(layout, ports, registry, population, {})
    # The population and pension gateways, and the portal's when it is asked for; a
    # test starts any other agency's gateway itself.
    started = (PROVIDER_GATEWAY, CONSUMER_GATEWAY, PORTAL_GATEWAY)
    for spec in gateways_of(agencies):
        if spec.id in started:
            await federation.start_gateway(spec.id)
    return federation


def bus_metadata(
    client: str | None = CLIENT,
    data_subject: str = "",
    purpose: str | None = "integration test",
    user_id: str | None = "EE:tester",
) -> tuple[tuple[str, str], ...]:
    md = []
    if client is not None:
        md.append(("zhol-client", client))
    if user_id is not None:
        md.append(("zhol-user-id", user_id))
    if purpose is not None:
        md.append(("zhol-purpose", purpose))
    if data_subject:
        md.append(("zhol-data-subject", data_subject))
    return tuple(md)


async def call_raw(
    address: str,
    path: str,
    body: bytes,
    metadata: tuple[tuple[str, str], ...],
    timeout: float = 10.0,
) -> tuple[bytes, dict[str, str]]:
    """Call a method as raw bytes; returns the body and the trailing metadata."""
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(path)(body, metadata=metadata, timeout=timeout)
        answer = await call
        trailers = {k: v for k, v in (await call.trailing_metadata() or ())}
        return answer, trailers


async def get_person(address: str, iin: str, **md: str | None) -> population_pb2.Person:
    body, _ = await call_raw(
        address,
        GET_PERSON,
        population_pb2.GetPersonRequest(iin=iin).SerializeToString(),
        bus_metadata(data_subject=iin, **md),  # type: ignore[arg-type]
    )
    return population_pb2.Person.FromString(body)


def error_code(exc: grpc.aio.AioRpcError) -> str | None:
    """The zhol-error trailer of a failed call (None when the provider itself answered)."""
    return trailer_value(exc.trailing_metadata(), ERROR_KEY)
