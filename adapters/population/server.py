"""Running the population registry: settings, the grpc.aio server, graceful shutdown.

``serve(settings)`` starts a server and returns it with its bound port (tests and
in-process launchers); ``run(settings)`` is the process entry: it serves until SIGTERM
or SIGINT, then stops accepting calls, lets running ones finish within
``grace_seconds`` and closes the database. With ``port_file`` set, the bound port is
written there (atomically) once the server accepts calls, so a launcher can use an
ephemeral port (``listen = "127.0.0.1:0"``); the file is removed on shutdown.

With ``gateway_address`` set (our gateway's IS-facing side, HOST:PORT), an
``OutboxPublisher`` publishes the registry's events (BirthRegistered, DeathRegistered,
AddressChanged) through it as ``subsystem``, and is woken after every such write. With
it empty the events stay in the outbox until the registry runs connected to the bus.
The shared parts (settings checks, server, start/stop order) are adapters.runtime.server.
"""

from __future__ import annotations

from dataclasses import dataclass

from zhol.adapters.population.service import PopulationRegistryServicer
from zhol.adapters.runtime import server as runtime
from zhol.core.clock import Clock, SystemClock
from zhol.population.v1 import population_pb2_grpc as pb_grpc

ENV_PREFIX = "ZHOL_POPULATION_"
SUBSYSTEM = "KZ/GOV/MJ/population"
EVENT_PURPOSE = "civil-status event notification"


@dataclass(frozen=True, slots=True)
class PopulationSettings(runtime.AdapterSettings):
    """db_path, listen, port_file, grace_seconds, max_message_bytes, gateway_address
    (our gateway's IS side; "" = not connected to the bus) and subsystem."""

    subsystem: str = SUBSYSTEM


load_population_settings = runtime.settings_loader(PopulationSettings, ENV_PREFIX)

PopulationServer = runtime.AdapterServer[PopulationSettings, PopulationRegistryServicer]


async def serve(settings: PopulationSettings, *, clock: Clock | None = None) -> PopulationServer:
    """Start serving ``settings.db_path`` (which must exist: seed it first)."""
    clock = clock or SystemClock()
    db_path = settings.db_path

    def open_servicer(notify: runtime.Notify) -> PopulationRegistryServicer:
        return PopulationRegistryServicer.open(db_path, clock, on_commit=notify)

    return await runtime.start_adapter(
        settings, name="population registry", clock=clock, bus=runtime.bus_client(settings),
        open_servicer=open_servicer,
        add_servicer=pb_grpc.add_PopulationRegistryServicer_to_server,
        publish_purpose=EVENT_PURPOSE,
    )


def run(settings: PopulationSettings, *, clock: Clock | None = None) -> int:
    """Serve until SIGTERM or SIGINT; the process entry point. Returns the exit code."""
    return runtime.run_adapter(
        lambda: serve(settings, clock=clock),
        lambda running: (
            f"population registry ({settings.subsystem}) listening on {running.address}"
        ),
    )
