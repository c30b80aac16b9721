"""Running the pension system: settings, the grpc.aio server, the bus, graceful shutdown.

One grpc.aio server carries ``zhol.pension.v1.PensionRegistry`` (what other agencies
and the portal call through the bus), ``zhol.pension.v1.PensionRecalculation`` (the
operators' recalculation run, recalc_service; not on the bus),
``zhol.pension.v1.PensionClaims`` (claims the operators record: the burial payment
claimed by the person who arranged the burial, claim_service; not on the bus) and
``zhol.bus.v1.EventSink`` (where our gateway delivers the events we subscribe to:
births, deaths, disability conclusions). With ``gateway_address`` set the adapter reads
population (and education's studies, for survivor pensions) through that gateway and
an ``OutboxPublisher`` publishes our decisions' events through it; empty, the bus is
off and whatever needs population fails with FAILED_PRECONDITION ("not connected to the
bus").

``serve(settings, clock=...)`` starts a server and returns it with its bound port (tests
and in-process launchers); ``run(settings)`` is the process entry: it serves until
SIGTERM or SIGINT, then stops accepting calls, lets running ones finish within
``grace_seconds``, stops the publisher and closes the database. With ``port_file`` set
the bound port is written there (atomically) once the server accepts calls.

Settings (TOML, then ``ZHOL_PENSION_*`` environment variables):

| setting           | default               | meaning                                   |
|-------------------|-----------------------|-------------------------------------------|
| db_path           | (required)            | the seeded SQLite file                    |
| listen            | 127.0.0.1:0           | HOST:PORT for both services               |
| port_file         |                       | write the bound port here                 |
| gateway_address   | "" (bus off)          | our gateway's IS-facing HOST:PORT         |
| subsystem         | KZ/GOV/MLSPP/pension  | the zhol-client we call as                |
| user_id           | system                | the zhol-user-id of our own calls         |
| bus_timeout       | 5.0                   | seconds per read through the bus          |
| publish_events    | true                  | run the outbox publisher when on the bus  |
| grace_seconds     | 5.0                   | shutdown grace                            |
| max_message_bytes | 4 MiB                 | gRPC message size limit                   |

The shared parts (settings checks, server, start/stop order) are adapters.runtime.server.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from zhol.adapters.bus.population import PopulationReader
from zhol.adapters.pension.claim_service import PensionClaimsServicer
from zhol.adapters.pension.handlers import PensionEvents
from zhol.adapters.pension.model import SUBSYSTEM
from zhol.adapters.pension.recalc_service import PensionRecalculationServicer
from zhol.adapters.pension.service import PensionRegistryServicer
from zhol.adapters.pension.sources import StudyReader
from zhol.adapters.runtime import server as runtime
from zhol.core.clock import Clock, SystemClock
from zhol.pension.v1 import claims_pb2_grpc as claims_grpc
from zhol.pension.v1 import pension_pb2_grpc as pb_grpc
from zhol.pension.v1 import recalculation_pb2_grpc as recalc_grpc

ENV_PREFIX = "ZHOL_PENSION_"
PUBLISH_PURPOSE = "pension: publish decisions (benefits, pensions, stopped payments)"


@dataclass(frozen=True, slots=True)
class PensionSettings(runtime.AdapterSettings):
    subsystem: str = SUBSYSTEM
    bus_timeout: float = 5.0
    publish_events: bool = True

    def check(self) -> None:
        if self.bus_timeout <= 0:
            raise ValueError("bus_timeout must be positive")


load_pension_settings = runtime.settings_loader(PensionSettings, ENV_PREFIX)

PensionServer = runtime.AdapterServer[PensionSettings, PensionRegistryServicer]


async def serve(settings: PensionSettings, *, clock: Clock | None = None) -> PensionServer:
    """Start serving ``settings.db_path`` (which must exist: seed it first)."""
    clock = clock or SystemClock()
    runtime.require_database(settings.db_path, "pension")
    bus = runtime.bus_client(settings)
    population = None if bus is None else PopulationReader(bus, timeout=settings.bus_timeout)
    education = None if bus is None else StudyReader(bus, timeout=settings.bus_timeout)
    db_path = settings.db_path

    def open_servicer(notify: runtime.Notify) -> PensionRegistryServicer:
        return PensionRegistryServicer.open(db_path, clock, population, on_commit=notify)

    def add_servicers(servicer: PensionRegistryServicer, server: grpc.aio.Server) -> None:
        pb_grpc.add_PensionRegistryServicer_to_server(servicer, server)
        recalc_grpc.add_PensionRecalculationServicer_to_server(
            PensionRecalculationServicer(servicer.stores, clock, education), server)
        claims_grpc.add_PensionClaimsServicer_to_server(
            PensionClaimsServicer(servicer.stores, clock, population), server)

    def open_sink(notify: runtime.Notify) -> runtime.NotifyingEventSink:
        handlers = PensionEvents(population, clock, education).handlers()
        return runtime.NotifyingEventSink(db_path, handlers, clock, notify)

    return await runtime.start_adapter(
        settings, name="pension system", clock=clock, bus=bus,
        open_servicer=open_servicer,
        add_servicer=add_servicers,
        open_sink=open_sink,
        publish_purpose=PUBLISH_PURPOSE if settings.publish_events else None,
    )


def run(settings: PensionSettings, *, clock: Clock | None = None) -> int:
    """Serve until SIGTERM or SIGINT; the process entry point. Returns the exit code."""
    bus = settings.gateway_address or "off"
    return runtime.run_adapter(
        lambda: serve(settings, clock=clock),
        lambda running: (
            f"pension system ({settings.subsystem}) listening on {running.address}, bus {bus}"
        ),
    )
