"""The demo federation: who exists, where each part listens, and how to provision it.

Shared by `zhol demo`, `zhol bench` and the integration tests, so all three
build the same federation the same way; only how components are started differs.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

from core.clock import SystemClock
from core.ids import GatewayId, SubsystemId
from gateway.localconf import LocalConfStore
from gateway.provision import ServiceOffer, init_gateway, register_subsystem
from registry.provision import init_registry
from zhol.population.v1 import population_pb2

INSTANCE = "KZ"
POPULATION_SERVICE = "zhol.population.v1.PopulationRegistry"
POPULATION_METHODS = tuple(
    m.name for m in population_pb2.DESCRIPTOR.services_by_name["PopulationRegistry"].methods
)
POPULATION_READ_METHODS = ("GetPerson", "ListPersons", "GetAddress", "GetFamily")
POPULATION_TOPICS = (
    "zhol.population.v1.BirthRegistered",
    "zhol.population.v1.DeathRegistered",
    "zhol.population.v1.AddressChanged",
)


@dataclass(frozen=True, slots=True)
class GatewaySpec:
    id: str
    member_name: str
    dir_name: str


@dataclass(frozen=True, slots=True)
class SubsystemSpec:
    id: str
    gateway: str
    services: tuple[str, ...]  # gRPC services its IS offers through the bus
    adapter: str  # which adapter implements it ("" = consumer only)
    topics: tuple[str, ...] = ()  # event topics it publishes


GATEWAYS = (
    GatewaySpec("KZ/GOV/MJ/gw1", "Ministry of Justice", "mj-gw1"),
    GatewaySpec("KZ/GOV/MLSPP/gw1", "Ministry of Labour and Social Protection", "mlspp-gw1"),
)
SUBSYSTEMS = (
    SubsystemSpec(
        "KZ/GOV/MJ/population",
        "KZ/GOV/MJ/gw1",
        (POPULATION_SERVICE,),
        "population",
        POPULATION_TOPICS,
    ),
    SubsystemSpec("KZ/GOV/MLSPP/pension", "KZ/GOV/MLSPP/gw1", (), ""),
)
# (client, provider service or method): pension may read the population registry.
RIGHTS = tuple(
    ("KZ/GOV/MLSPP/pension", f"KZ/GOV/MJ/population/{POPULATION_SERVICE}/{method}")
    for method in POPULATION_READ_METHODS
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Ports:
    host: str
    registry: int
    population: int
    gateway_is: dict[str, int]
    gateway_peer: dict[str, int]

    @classmethod
    def choose(cls, host: str = "127.0.0.1") -> Ports:
        return cls(
            host=host,
            registry=free_port(),
            population=free_port(),
            gateway_is={g.id: free_port() for g in GATEWAYS},
            gateway_peer={g.id: free_port() for g in GATEWAYS},
        )

    @classmethod
    def load_or_choose(cls, path: Path, host: str = "127.0.0.1") -> Ports:
        """Reuse the ports of an earlier run (the registry knows the gateways by them)."""
        if path.exists():
            return cls(**json.loads(path.read_text()))
        ports = cls.choose(host)
        path.write_text(json.dumps(asdict(ports), indent=2))
        return ports

    def address(self, port: int) -> str:
        return f"{self.host}:{port}"


@dataclass(frozen=True)
class Layout:
    """Where each component keeps its files inside the federation's data directory."""

    root: Path

    @property
    def registry(self) -> Path:
        return self.root / "registry"

    @property
    def anchor(self) -> Path:
        return self.registry / "anchor.pem"

    def gateway(self, gateway_id: str) -> Path:
        spec = next(g for g in GATEWAYS if g.id == gateway_id)
        return self.root / "gateways" / spec.dir_name

    @property
    def population_db(self) -> Path:
        return self.root / "adapters" / "population" / "population.db"

    @property
    def ports_file(self) -> Path:
        return self.root / "ports.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def federation_json(self) -> Path:
        return self.root / "federation.json"


def init_registry_dir(layout: Layout) -> None:
    layout.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    init_registry(layout.registry, INSTANCE, auto_approve=True)


async def provision_gateways(layout: Layout, ports: Ports) -> None:
    """Register both gateways, their subsystems and services, and the access rights.

    Needs the registry running at ports.registry. Idempotent, so a second demo
    run on the same directory only refreshes the local service addresses.
    """
    registry = ports.address(ports.registry)
    for spec in GATEWAYS:
        await init_gateway(
            layout.gateway(spec.id),
            GatewayId.parse(spec.id),
            registry,
            layout.anchor,
            ports.address(ports.gateway_peer[spec.id]),
            member_name=spec.member_name,
            is_listen=ports.address(ports.gateway_is[spec.id]),
        )
    for sub in SUBSYSTEMS:
        offers = [
            ServiceOffer(service, POPULATION_METHODS, ports.address(ports.population))
            for service in sub.services
        ]
        await register_subsystem(
            layout.gateway(sub.gateway),
            GatewayId.parse(sub.gateway),
            registry,
            SubsystemId.parse(sub.id),
            offers,
            topics=sub.topics,
        )
    for client, target in RIGHTS:
        provider = "/".join(target.split("/")[:4])
        gateway = next(s.gateway for s in SUBSYSTEMS if s.id == provider)
        local = LocalConfStore(layout.gateway(gateway) / "local.db")
        try:
            local.allow(SubsystemId.parse(client), target, SystemClock().now_ms())
        finally:
            local.close()


def write_federation_json(layout: Layout, ports: Ports) -> dict[str, object]:
    """federation.json: what an IS developer in any language needs to find the bus."""
    document = {
        "instance": INSTANCE,
        "anchor": str(layout.anchor.resolve()),
        "registry": {"address": ports.address(ports.registry)},
        "gateways": [
            {
                "id": spec.id,
                "member": "/".join(spec.id.split("/")[:3]),
                "is_address": ports.address(ports.gateway_is[spec.id]),
                "peer_address": ports.address(ports.gateway_peer[spec.id]),
                "data_dir": str(layout.gateway(spec.id).resolve()),
            }
            for spec in GATEWAYS
        ],
        "subsystems": [
            {
                "id": sub.id,
                "gateway": sub.gateway,
                "services": [
                    f"{sub.id}/{service}/{method}"
                    for service in sub.services
                    for method in POPULATION_METHODS
                ],
            }
            for sub in SUBSYSTEMS
        ],
        "adapters": {"population": {"address": ports.address(ports.population)}},
    }
    tmp = layout.federation_json.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(tmp, layout.federation_json)
    return document
