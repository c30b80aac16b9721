"""Running the pension system: settings, the grpc.aio server, the bus, graceful shutdown.

One grpc.aio server carries two services: ``zhol.pension.v1.PensionRegistry`` (what
other agencies and the portal call through the bus) and ``zhol.bus.v1.EventSink``
(where our gateway delivers the events we subscribe to: births, deaths, disability
conclusions). With ``gateway_address`` set the adapter reads population through that
gateway and an ``OutboxPublisher`` publishes our decisions' events through it; empty,
the bus is off and whatever needs population fails with FAILED_PRECONDITION ("not
connected to the bus").

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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from adapters.bus.client import BusClient, BusIdentity
from adapters.bus.inbox import EventSinkServicer, Handler
from adapters.bus.outbox import OutboxPublisher
from adapters.bus.population import PopulationReader
from adapters.pension.handlers import PensionEvents
from adapters.pension.model import SUBSYSTEM
from adapters.pension.service import PensionRegistryServicer
from core.clock import Clock, SystemClock
from core.settings import load_settings
from zhol.bus.v1 import bus_pb2, bus_pb2_grpc
from zhol.pension.v1 import pension_pb2_grpc as pb_grpc

ENV_PREFIX = "ZHOL_PENSION_"
PUBLISH_PURPOSE = "pension: publish decisions (benefits, pensions, stopped payments)"

log = logging.getLogger("zhol.adapters.pension")


@dataclass(frozen=True, slots=True)
class PensionSettings:
    db_path: Path
    listen: str = "127.0.0.1:0"
    port_file: Path | None = None
    gateway_address: str = ""
    subsystem: str = SUBSYSTEM
    user_id: str = "system"
    bus_timeout: float = 5.0
    publish_events: bool = True
    grace_seconds: float = 5.0
    max_message_bytes: int = 4 * 1024 * 1024

    def __post_init__(self) -> None:
        host, sep, port = self.listen.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"listen must be HOST:PORT, got {self.listen!r}")
        if self.gateway_address:
            g_host, g_sep, g_port = self.gateway_address.rpartition(":")
            if not g_sep or not g_host or not g_port.isdigit():
                raise ValueError(f"gateway_address must be HOST:PORT, got {self.gateway_address!r}")
        if not self.subsystem.strip():
            raise ValueError("subsystem must not be empty")
        if self.bus_timeout <= 0:
            raise ValueError("bus_timeout must be positive")
        if self.grace_seconds < 0:
            raise ValueError("grace_seconds must not be negative")
        if self.max_message_bytes <= 0:
            raise ValueError("max_message_bytes must be positive")

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0]


def load_pension_settings(
    config: Path | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> PensionSettings:
    """Settings from a TOML file, then ZHOL_PENSION_* variables, then ``overrides``."""
    return load_settings(
        PensionSettings, config, prefix=ENV_PREFIX, overrides=overrides, environ=environ
    )


class PensionEventSink(EventSinkServicer):
    """The bus library's EventSink that wakes the outbox publisher after each commit,
    so the decisions' events leave at once instead of at the next poll."""

    def __init__(self, db_path: Path, handlers: Mapping[str, Handler], clock: Clock,
                 on_commit: Callable[[], None]) -> None:
        super().__init__(db_path, handlers, clock)
        self._on_commit = on_commit

    async def handle(self, delivery: bus_pb2.EventDelivery) -> bool:
        applied = await super().handle(delivery)
        if applied:
            self._on_commit()
        return applied


@dataclass(frozen=True, slots=True)
class PensionServer:
    """A started server; ``stop`` must be awaited to release the port and the database."""

    server: grpc.aio.Server
    port: int
    settings: PensionSettings
    servicer: PensionRegistryServicer
    events: PensionEventSink
    bus: BusClient | None
    publisher: OutboxPublisher | None

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.port}"

    async def stop(self, grace: float | None = None) -> None:
        try:
            await self.server.stop(self.settings.grace_seconds if grace is None else grace)
        finally:
            try:
                if self.publisher is not None:
                    await self.publisher.stop()
                if self.bus is not None:
                    await self.bus.close()
            finally:
                self.events.close()
                self.servicer.close()
                if self.settings.port_file is not None:
                    with contextlib.suppress(FileNotFoundError):
                        self.settings.port_file.unlink()


async def serve(settings: PensionSettings, *, clock: Clock | None = None) -> PensionServer:
    """Start serving ``settings.db_path`` (which must exist: seed it first)."""
    clock = clock or SystemClock()
    if not settings.db_path.is_file():
        raise FileNotFoundError(f"no pension database at {settings.db_path}")
    bus: BusClient | None = None
    population: PopulationReader | None = None
    publisher: OutboxPublisher | None = None
    if settings.gateway_address:
        bus = BusClient(BusIdentity(settings.gateway_address, settings.subsystem,
                                    settings.user_id))
        population = PopulationReader(bus, timeout=settings.bus_timeout)
        if settings.publish_events:
            publisher = OutboxPublisher(settings.db_path, bus, purpose=PUBLISH_PURPOSE,
                                        clock=clock)
    notify = publisher.notify if publisher is not None else _nothing
    servicer = PensionRegistryServicer.open(settings.db_path, clock, population, notify)
    events = PensionEventSink(settings.db_path, PensionEvents(population, clock).handlers(),
                              clock, notify)
    limit = settings.max_message_bytes
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
            ("grpc.so_reuseport", 0),
        ]
    )
    pb_grpc.add_PensionRegistryServicer_to_server(servicer, server)
    bus_pb2_grpc.add_EventSinkServicer_to_server(events, server)
    try:
        port = server.add_insecure_port(settings.listen)
        if port == 0:
            raise OSError(f"cannot listen on {settings.listen}")
        await server.start()
        if publisher is not None:
            publisher.start()
        if settings.port_file is not None:
            _write_port_file(settings.port_file, port)
    except BaseException:
        await server.stop(None)
        if publisher is not None:
            await publisher.stop()
        if bus is not None:
            await bus.close()
        events.close()
        servicer.close()
        raise
    log.info("pension system serving", extra={"subsystem": settings.subsystem, "port": port,
                                              "bus": bool(settings.gateway_address)})
    return PensionServer(server, port, settings, servicer, events, bus, publisher)


def run(settings: PensionSettings, *, clock: Clock | None = None) -> int:
    """Serve until SIGTERM or SIGINT; the process entry point. Returns the exit code."""
    return asyncio.run(_run(settings, clock))


async def _run(settings: PensionSettings, clock: Clock | None) -> int:
    running = await serve(settings, clock=clock)
    bus = settings.gateway_address or "off"
    print(f"pension system ({settings.subsystem}) listening on {running.address}, bus {bus}",
          flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, stopping.set)
    try:
        await stopping.wait()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        await running.stop()
    return 0


def _nothing() -> None:
    return None


def _write_port_file(path: Path, port: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(f"{port}\n", encoding="ascii")
    os.replace(temporary, path)
