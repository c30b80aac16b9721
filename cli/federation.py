"""The demo federation: who exists, where each part listens, and how to provision it.

Shared by `zhol demo`, `zhol bench` and the integration tests, so all three
build the same federation the same way; only how components are started differs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from google.protobuf.descriptor import FileDescriptor

from zhol.cli.ports import free_port
from zhol.cli.tsa import TsaPaths, init_tsa
from zhol.core.clock import SystemClock
from zhol.core.ids import GatewayId, SubsystemId
from zhol.gateway.localconf import LocalConfStore
from zhol.gateway.provision import ServiceOffer, init_gateway, register_subsystem
from zhol.gateway.subjects import file_descriptor_set
from zhol.population.v1 import population_pb2
from zhol.portal.feed import FEED_SUBSCRIPTIONS
from zhol.portal.reads import PORTAL_READS
from zhol.registry.provision import init_registry
from zhol.registry.settings import load_registry_settings, settings_toml

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
    """One agency system: what it offers, publishes, receives and may call."""

    id: str
    gateway: str
    services: tuple[str, ...]  # gRPC services its IS offers through the bus
    adapter: str  # which adapter implements it ("" = consumer only)
    topics: tuple[str, ...] = ()  # event topics it publishes
    subscribes: tuple[str, ...] = ()  # "publisher/topic" it receives
    calls: tuple[str, ...] = ()  # "provider/service/Method" it may call
    # May ask every gateway "who used my data" (zhol.bus.v1.Usage; the portal).
    reads_usage: bool = False
    # The Ports.adapters key of its EventSink when not its adapter's port (the portal).
    sink: str = ""

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(m for service in self.services for m in service_methods(service))


def _service_file(grpc_service: str) -> FileDescriptor:
    package = grpc_service.rpartition(".")[0]
    agency = package.split(".")[1]
    return importlib.import_module(f"zhol.{agency}.v1.{agency}_pb2").DESCRIPTOR


def service_methods(grpc_service: str) -> tuple[str, ...]:
    """Method names of a gRPC service, from its generated descriptor."""
    name = grpc_service.rpartition(".")[2]
    return tuple(m.name for m in _service_file(grpc_service).services_by_name[name].methods)


def service_descriptor_set(grpc_service: str) -> bytes:
    """The FileDescriptorSet a registry's service is registered with: gateways read each
    request's data subject from its marked fields (gateway/subjects.py)."""
    return file_descriptor_set(_service_file(grpc_service))


def _reads(provider: str, service: str, methods: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"{provider}/{service}/{m}" for m in methods)


POPULATION = "KZ/GOV/MJ/population"
PENSION = "KZ/GOV/MLSPP/pension"
HEALTH = "KZ/GOV/MOH/health"
EDUCATION = "KZ/GOV/MES/education"
# The citizen portal (zhol.portal): a consumer only, reading the registries for the
# signed-in citizen; its "adapter" port is the portal's HTTP port.
PORTAL = "KZ/GOV/MDDIAI/portal"
PORTAL_AGENCY = "portal"
# The portal's EventSink (its life-events feed), a gRPC port beside its HTTP one.
PORTAL_EVENTS = "portal-events"
_BIRTH, _DEATH, _ADDRESS = (f"{POPULATION}/{t}" for t in POPULATION_TOPICS)

GATEWAYS = (
    GatewaySpec("KZ/GOV/MJ/gw1", "Ministry of Justice", "mj-gw1"),
    GatewaySpec("KZ/GOV/MLSPP/gw1", "Ministry of Labour and Social Protection", "mlspp-gw1"),
    GatewaySpec("KZ/GOV/MOH/gw1", "Ministry of Health", "moh-gw1"),
    GatewaySpec("KZ/GOV/MES/gw1", "Ministry of Education and Science", "mes-gw1"),
    GatewaySpec(
        "KZ/GOV/MDDIAI/gw1",
        "Ministry of Digital Development, Innovations and Aerospace Industry",
        "mddiai-gw1",
    ),
)
SUBSYSTEMS = (
    SubsystemSpec(
        POPULATION, "KZ/GOV/MJ/gw1", (POPULATION_SERVICE,), "population", POPULATION_TOPICS
    ),
    SubsystemSpec(
        PENSION,
        "KZ/GOV/MLSPP/gw1",
        ("zhol.pension.v1.PensionRegistry",),
        "pension",
        (
            "zhol.pension.v1.BenefitAssigned",
            "zhol.pension.v1.PensionAssigned",
            "zhol.pension.v1.PaymentsStopped",
            "zhol.pension.v1.BenefitRecalculated",
        ),
        (_BIRTH, _DEATH, f"{HEALTH}/zhol.health.v1.DisabilityEstablished"),
        _reads(POPULATION, POPULATION_SERVICE, POPULATION_READ_METHODS)
        # the survivor pension of a child of 18 to 22 in full-time study (rules.SURVIVOR_STUDENT)
        + _reads(EDUCATION, "zhol.education.v1.EducationRegistry", ("ListStudies",)),
    ),
    SubsystemSpec(
        HEALTH,
        "KZ/GOV/MOH/gw1",
        ("zhol.health.v1.HealthRegistry",),
        "health",
        (
            "zhol.health.v1.DisabilityEstablished",
            "zhol.health.v1.ClinicAttached",
            "zhol.health.v1.AttachmentClosed",
        ),
        (_BIRTH, _DEATH, _ADDRESS),
        _reads(POPULATION, POPULATION_SERVICE, ("GetPerson", "GetAddress", "GetFamily"))
        + _reads(PENSION, "zhol.pension.v1.PensionRegistry", ("IsInsuredByContributions",))
        # clinic attachment by the place of study (health rules.ATTACHMENT)
        + _reads(EDUCATION, "zhol.education.v1.EducationRegistry",
                 ("ListEnrolments", "ListSchools"))
        # clinic attachment by the place of work, and by a college or university; the
        # student's state-paid insurance (health rules.ATTACHMENT, rules.STUDENT)
        + _reads(PENSION, "zhol.pension.v1.PensionRegistry", ("GetEmploymentPeriods",))
        + _reads(EDUCATION, "zhol.education.v1.EducationRegistry", ("ListStudies",)),
    ),
    SubsystemSpec(
        EDUCATION,
        "KZ/GOV/MES/gw1",
        ("zhol.education.v1.EducationRegistry",),
        "education",
        (
            "zhol.education.v1.QueuedForKindergarten",
            "zhol.education.v1.QueueEntryMoved",
            "zhol.education.v1.EnrolledInSchool",
            "zhol.education.v1.PlacedInKindergarten",
        ),
        (_BIRTH, _DEATH, _ADDRESS),
        _reads(POPULATION, POPULATION_SERVICE, ("GetPerson", "GetAddress", "GetFamily")),
    ),
    SubsystemSpec(
        PORTAL,
        "KZ/GOV/MDDIAI/gw1",
        (),
        PORTAL_AGENCY,
        subscribes=FEED_SUBSCRIPTIONS,
        calls=PORTAL_READS,
        reads_usage=True,
        sink=PORTAL_EVENTS,
    ),
)
# The bus of issue 2: population and the pension system reading it.
CORE_AGENCIES = ("population", "pension")
# The four registries' systems (each an adapter process with a database).
ALL_AGENCIES = tuple(s.adapter for s in SUBSYSTEMS if s.services)
# (client, provider method) pairs every provider gateway grants.
RIGHTS = tuple((s.id, target) for s in SUBSYSTEMS for target in s.calls)


def subsystems_of(agencies: Sequence[str]) -> tuple[SubsystemSpec, ...]:
    return tuple(s for s in SUBSYSTEMS if s.adapter in agencies)


def gateways_of(agencies: Sequence[str]) -> tuple[GatewaySpec, ...]:
    ids = {s.gateway for s in subsystems_of(agencies)}
    return tuple(g for g in GATEWAYS if g.id in ids)


@dataclass(frozen=True)
class Ports:
    host: str
    registry: int
    adapters: dict[str, int]
    gateway_is: dict[str, int]
    gateway_peer: dict[str, int]
    # The timestamping authority (zhol tsa serve); 0 in a ports.json from before it.
    tsa: int = 0

    @property
    def population(self) -> int:
        return self.adapters["population"]

    @classmethod
    def choose(cls, host: str = "127.0.0.1") -> Ports:
        return cls(
            host=host,
            registry=free_port(),
            adapters={n: free_port() for s in SUBSYSTEMS for n in (s.adapter, s.sink) if n},
            gateway_is={g.id: free_port() for g in GATEWAYS},
            gateway_peer={g.id: free_port() for g in GATEWAYS},
            tsa=free_port(),
        )

    @classmethod
    def load_or_choose(cls, path: Path, host: str = "127.0.0.1") -> Ports:
        """Reuse the ports of an earlier run (the registry knows the gateways by them).

        Components added since that run get new ports; the rest keep theirs.
        """
        fresh = cls.choose(host)
        if path.exists():
            saved = json.loads(path.read_text())
            if "population" in saved:  # the layout of the first, two-agency demo
                saved["adapters"] = {"population": saved.pop("population")}
            fresh = cls(
                host=saved.get("host", host),
                registry=saved["registry"],
                adapters={**fresh.adapters, **saved["adapters"]},
                gateway_is={**fresh.gateway_is, **saved["gateway_is"]},
                gateway_peer={**fresh.gateway_peer, **saved["gateway_peer"]},
                tsa=saved.get("tsa") or fresh.tsa,
            )
        path.write_text(json.dumps(asdict(fresh), indent=2))
        return fresh

    def address(self, port: int) -> str:
        return f"{self.host}:{port}"

    def adapter_address(self, name: str) -> str:
        return self.address(self.adapters[name])

    def is_address(self, gateway_id: str) -> str:
        return self.address(self.gateway_is[gateway_id])

    @property
    def tsa_url(self) -> str:
        return f"http://{self.address(self.tsa)}/"


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

    @property
    def tsa(self) -> Path:
        return self.root / "tsa"

    def gateway(self, gateway_id: str) -> Path:
        spec = next(g for g in GATEWAYS if g.id == gateway_id)
        return self.root / "gateways" / spec.dir_name

    def adapter_db(self, name: str) -> Path:
        return self.root / "adapters" / name / f"{name}.db"

    @property
    def population_db(self) -> Path:
        return self.adapter_db("population")

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
    """The registry (with the federation CA) and the timestamping authority its CA certifies."""
    layout.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    init_registry(layout.registry, INSTANCE, auto_approve=True)
    init_tsa(layout.tsa, layout.registry, f"{INSTANCE}-tsa")


def approve_tsa(layout: Layout, ports: Ports) -> None:
    """List the federation's own TSA, at its port, as the one approved authority in
    registry.toml (the registry publishes it in the global configuration)."""
    settings = load_registry_settings(layout.registry)
    entry = f"{ports.tsa_url} {os.path.relpath(TsaPaths(layout.tsa).cert, layout.registry)}"
    if settings.timestamp_authorities != (entry,):
        approved = dataclasses.replace(settings, timestamp_authorities=(entry,))
        tmp = settings.settings_path.with_suffix(".tmp")
        tmp.write_text(settings_toml(approved))
        os.replace(tmp, settings.settings_path)


async def provision_gateways(
    layout: Layout, ports: Ports, agencies: Sequence[str] = ALL_AGENCIES
) -> None:
    """Register the agencies' gateways, subsystems, services, topics, rights and sinks.

    Needs the registry running at ports.registry. Idempotent, so a second demo
    run on the same directory only refreshes the local service addresses.
    """
    registry = ports.address(ports.registry)
    subsystems = subsystems_of(agencies)
    for spec in gateways_of(agencies):
        await init_gateway(
            layout.gateway(spec.id),
            GatewayId.parse(spec.id),
            registry,
            layout.anchor,
            ports.address(ports.gateway_peer[spec.id]),
            member_name=spec.member_name,
            is_listen=ports.is_address(spec.id),
        )
    for sub in subsystems:
        offers = [
            ServiceOffer(
                service,
                service_methods(service),
                ports.adapter_address(sub.adapter),
                service_descriptor_set(service),
            )
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
    now = SystemClock().now_ms()
    by_id = {s.id: s for s in subsystems}
    for sub in subsystems:
        client = SubsystemId.parse(sub.id)
        for target in sub.calls:
            provider = by_id.get("/".join(target.split("/")[:4]))
            if provider is not None:
                with _local(layout, provider.gateway) as local:
                    local.allow(client, target, now)
        for subscription in sub.subscribes:
            publisher = by_id.get("/".join(subscription.split("/")[:4]))
            if publisher is not None:
                with _local(layout, publisher.gateway) as local:
                    local.allow_topic(client, subscription, now)
        if sub.subscribes:
            with _local(layout, sub.gateway) as local:
                local.set_event_sink(client, ports.adapter_address(sub.sink or sub.adapter))
        if sub.reads_usage:
            for spec in gateways_of(agencies):
                with _local(layout, spec.id) as local:
                    local.allow_usage(client, now)


@contextlib.contextmanager
def _local(layout: Layout, gateway_id: str) -> Iterator[LocalConfStore]:
    local = LocalConfStore(layout.gateway(gateway_id) / "local.db")
    try:
        yield local
    finally:
        local.close()


def write_federation_json(
    layout: Layout, ports: Ports, agencies: Sequence[str] = ALL_AGENCIES
) -> dict[str, object]:
    """federation.json: what an IS developer in any language needs to find the bus."""
    document: dict[str, object] = {
        "instance": INSTANCE,
        "anchor": str(layout.anchor.resolve()),
        "registry": {"address": ports.address(ports.registry)},
        "tsa": {
            "url": ports.tsa_url,
            "certificate": str(TsaPaths(layout.tsa).cert.resolve()),
            "ca": str(TsaPaths(layout.tsa).ca_cert.resolve()),
        },
        "gateways": [
            {
                "id": spec.id,
                "member": "/".join(spec.id.split("/")[:3]),
                "is_address": ports.address(ports.gateway_is[spec.id]),
                "peer_address": ports.address(ports.gateway_peer[spec.id]),
                "data_dir": str(layout.gateway(spec.id).resolve()),
            }
            for spec in gateways_of(agencies)
        ],
        "subsystems": [
            {
                "id": sub.id,
                "gateway": sub.gateway,
                "services": [
                    f"{sub.id}/{service}/{method}"
                    for service in sub.services
                    for method in service_methods(service)
                ],
                "topics": list(sub.topics),
            }
            for sub in subsystems_of(agencies)
        ],
        "adapters": {
            sub.adapter: {"address": ports.adapter_address(sub.adapter), "subsystem": sub.id}
            for sub in subsystems_of(agencies)
            if sub.services
        },
    }
    if PORTAL_AGENCY in agencies:
        document["portal"] = {
            "url": f"http://{ports.adapter_address(PORTAL_AGENCY)}/",
            "subsystem": PORTAL,
        }
    tmp = layout.federation_json.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(tmp, layout.federation_json)
    return document
