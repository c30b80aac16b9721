"""Running the education system: settings, the grpc.aio server, graceful shutdown.

One grpc.aio server carries ``zhol.education.v1.EducationRegistry`` and the bus's
``zhol.bus.v1.EventSink`` (population's events, delivered by our gateway). With
``gateway_address`` set, population is read through that gateway and the outbox
publisher sends education's events to it; with it empty the bus is off: the
registry's reads still work, decisions that need population answer
FAILED_PRECONDITION ("not connected to the bus") and events are kept in the outbox.

``serve(settings)`` starts a server and returns it with its bound port (tests and
in-process launchers); ``run(settings)`` is the process entry: it serves until SIGTERM
or SIGINT, then stops accepting calls, lets running ones finish within
``grace_seconds`` and closes the database. With ``port_file`` set, the bound port is
written there (atomically) once the server accepts calls.
The shared parts (settings checks, server, start/stop order) are adapters.runtime.server.
"""

from __future__ import annotations

from dataclasses import dataclass

from zhol.adapters.bus.population import PopulationReader
from zhol.adapters.education.citizens import Citizens
from zhol.adapters.education.service import EducationRegistryServicer
from zhol.adapters.education.subscriptions import PopulationEvents
from zhol.adapters.runtime import server as runtime
from zhol.core.clock import Clock, SystemClock
from zhol.education.v1 import education_pb2_grpc as pb_grpc

ENV_PREFIX = "ZHOL_EDUCATION_"
SUBSYSTEM = "KZ/GOV/MES/education"
PUBLISH_PURPOSE = "notify subscribers of kindergarten queue and school enrolment decisions"


@dataclass(frozen=True, slots=True)
class EducationSettings(runtime.AdapterSettings):
    subsystem: str = SUBSYSTEM
    bus_timeout_seconds: float = 5.0
    publish_events: bool = True  # run the outbox publisher when the bus is on

    def check(self) -> None:
        if self.bus_timeout_seconds <= 0:
            raise ValueError("bus_timeout_seconds must be positive")


load_education_settings = runtime.settings_loader(EducationSettings, ENV_PREFIX)

EducationServer = runtime.AdapterServer[EducationSettings, EducationRegistryServicer]


async def serve(settings: EducationSettings, *, clock: Clock | None = None) -> EducationServer:
    """Start serving ``settings.db_path`` (which must exist: seed it first)."""
    clock = clock or SystemClock()
    runtime.require_database(settings.db_path, "education")
    bus = runtime.bus_client(settings)
    reader = None if bus is None else PopulationReader(bus, timeout=settings.bus_timeout_seconds)
    citizens = Citizens(reader)
    db_path = settings.db_path

    def open_servicer(notify: runtime.Notify) -> EducationRegistryServicer:
        # Opened first (runtime.start_adapter's order): it creates (or checks) the schema.
        return EducationRegistryServicer.open(db_path, clock, citizens, on_commit=notify)

    def open_sink(notify: runtime.Notify) -> runtime.NotifyingEventSink:
        handlers = PopulationEvents(citizens, clock).handlers()
        return runtime.NotifyingEventSink(db_path, handlers, clock, notify)

    return await runtime.start_adapter(
        settings, name="education system", clock=clock, bus=bus,
        open_servicer=open_servicer,
        add_servicer=pb_grpc.add_EducationRegistryServicer_to_server,
        open_sink=open_sink,
        publish_purpose=PUBLISH_PURPOSE if settings.publish_events else None,
    )


def run(settings: EducationSettings, *, clock: Clock | None = None) -> int:
    """Serve until SIGTERM or SIGINT; the process entry point. Returns the exit code."""
    bus = settings.gateway_address or "off"
    return runtime.run_adapter(
        lambda: serve(settings, clock=clock),
        lambda running: (
            f"education system ({settings.subsystem}) listening on {running.address},"
            f" bus {bus}"
        ),
    )
