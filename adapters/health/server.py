"""Running the health system: settings, the grpc.aio server, the bus, graceful shutdown.

One grpc.aio server carries ``zhol.health.v1.HealthRegistry`` (for our gateway to
offer to others) and ``zhol.bus.v1.EventSink`` (for our gateway to hand us the
population registry's events). With ``gateway_address`` set, health talks to its own
gateway there: reads of population and pension through ``BusClient``, and an
``OutboxPublisher`` that publishes ``ClinicAttached``, ``AttachmentClosed`` and
``DisabilityEstablished`` from the outbox. With it empty the bus is off: health's own
reads still work, anything that needs another agency fails with FAILED_PRECONDITION
("not connected to the bus"), and decided events wait in the outbox.

``serve(settings)`` starts a server and returns it with its bound port (tests and
in-process launchers); ``run(settings)`` is the process entry: it serves until SIGTERM
or SIGINT, then stops accepting calls, lets running ones finish within
``grace_seconds``, stops the publisher and closes the database. With ``port_file``
set, the bound port is written there (atomically) once the server accepts calls; the
file is removed on shutdown.
The shared parts (settings checks, server, start/stop order) are adapters.runtime.server.
"""

from __future__ import annotations

from dataclasses import dataclass

from zhol.adapters.health import schema
from zhol.adapters.health.events import event_handlers
from zhol.adapters.health.lookups import PURPOSE_PUBLISH, Lookups
from zhol.adapters.health.model import SUBSYSTEM
from zhol.adapters.health.service import HealthRegistryServicer
from zhol.adapters.runtime import server as runtime
from zhol.core.clock import Clock, SystemClock
from zhol.health.v1 import health_pb2_grpc as pb_grpc

ENV_PREFIX = "ZHOL_HEALTH_"


@dataclass(frozen=True, slots=True)
class HealthSettings(runtime.AdapterSettings):
    subsystem: str = SUBSYSTEM
    bus_timeout: float = 5.0

    def check(self) -> None:
        if self.bus_timeout <= 0:
            raise ValueError("bus_timeout must be positive")


load_health_settings = runtime.settings_loader(HealthSettings, ENV_PREFIX)

HealthServer = runtime.AdapterServer[HealthSettings, HealthRegistryServicer]


async def serve(settings: HealthSettings, *, clock: Clock | None = None) -> HealthServer:
    """Start serving ``settings.db_path`` (which must exist: seed it first)."""
    clock = clock or SystemClock()
    runtime.require_database(settings.db_path, "health")
    bus = runtime.bus_client(settings)
    lookups = None if bus is None else Lookups(bus, timeout=settings.bus_timeout)
    db_path = settings.db_path

    def open_servicer(notify: runtime.Notify) -> HealthRegistryServicer:
        return HealthRegistryServicer.open(db_path, clock, lookups, on_commit=notify)

    def open_sink(notify: runtime.Notify) -> runtime.NotifyingEventSink:
        handlers = event_handlers(lookups, clock, db_path)
        return runtime.NotifyingEventSink(db_path, handlers, clock, notify, connect=schema.connect)

    return await runtime.start_adapter(
        settings, name="health system", clock=clock, bus=bus,
        open_servicer=open_servicer,
        add_servicer=pb_grpc.add_HealthRegistryServicer_to_server,
        open_sink=open_sink,
        publish_purpose=PURPOSE_PUBLISH,
        connect=schema.connect,
    )


def run(settings: HealthSettings, *, clock: Clock | None = None) -> int:
    """Serve until SIGTERM or SIGINT; the process entry point. Returns the exit code."""
    bus = settings.gateway_address or "off"
    return runtime.run_adapter(
        lambda: serve(settings, clock=clock),
        lambda running: (
            f"health system ({settings.subsystem}) listening on {running.address}; bus: {bus}"
        ),
    )
