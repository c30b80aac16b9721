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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from adapters.bus.client import BusClient, BusIdentity
from adapters.bus.outbox import OutboxPublisher
from adapters.bus.population import PopulationReader
from adapters.education.citizens import Citizens
from adapters.education.service import EducationRegistryServicer
from adapters.education.subscriptions import EducationEventSink, PopulationEvents
from core.clock import Clock, SystemClock
from core.settings import load_settings
from zhol.bus.v1 import bus_pb2_grpc
from zhol.education.v1 import education_pb2_grpc as pb_grpc

ENV_PREFIX = "ZHOL_EDUCATION_"
SUBSYSTEM = "KZ/GOV/MES/education"
PUBLISH_PURPOSE = "notify subscribers of kindergarten queue and school enrolment decisions"

log = logging.getLogger("zhol.adapters.education")


@dataclass(frozen=True, slots=True)
class EducationSettings:
    db_path: Path
    listen: str = "127.0.0.1:0"
    port_file: Path | None = None
    grace_seconds: float = 5.0
    max_message_bytes: int = 4 * 1024 * 1024
    gateway_address: str = ""  # our gateway's IS side, host:port; "" = bus off
    subsystem: str = SUBSYSTEM
    user_id: str = "system"
    bus_timeout_seconds: float = 5.0
    publish_events: bool = True  # run the outbox publisher when the bus is on

    def __post_init__(self) -> None:
        host, sep, port = self.listen.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"listen must be HOST:PORT, got {self.listen!r}")
        if self.gateway_address:
            host, sep, port = self.gateway_address.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(
                    f"gateway_address must be HOST:PORT, got {self.gateway_address!r}"
                )
        if self.grace_seconds < 0:
            raise ValueError("grace_seconds must not be negative")
        if self.max_message_bytes <= 0:
            raise ValueError("max_message_bytes must be positive")
        if self.bus_timeout_seconds <= 0:
            raise ValueError("bus_timeout_seconds must be positive")
        if not self.subsystem.strip():
            raise ValueError("subsystem is required")

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0]


def load_education_settings(
    config: Path | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> EducationSettings:
    """Settings from a TOML file, then ZHOL_EDUCATION_* variables, then ``overrides``."""
    return load_settings(
        EducationSettings, config, prefix=ENV_PREFIX, overrides=overrides, environ=environ
    )


@dataclass(frozen=True, slots=True)
class EducationServer:
    """A started server; ``stop`` must be awaited to release the port and the database."""

    server: grpc.aio.Server
    port: int
    settings: EducationSettings
    servicer: EducationRegistryServicer
    sink: EducationEventSink
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
                self.sink.close()
                self.servicer.close()
                if self.settings.port_file is not None:
                    with contextlib.suppress(FileNotFoundError):
                        self.settings.port_file.unlink()


async def serve(settings: EducationSettings, *, clock: Clock | None = None) -> EducationServer:
    """Start serving ``settings.db_path`` (which must exist: seed it first)."""
    clock = clock or SystemClock()
    if not settings.db_path.is_file():
        raise FileNotFoundError(f"no education database at {settings.db_path}")
    bus: BusClient | None = None
    reader: PopulationReader | None = None
    if settings.gateway_address:
        bus = BusClient(BusIdentity(settings.gateway_address, settings.subsystem,
                                    settings.user_id))
        reader = PopulationReader(bus, timeout=settings.bus_timeout_seconds)
    citizens = Citizens(reader)
    publisher: OutboxPublisher | None = None
    servicer: EducationRegistryServicer | None = None
    sink: EducationEventSink | None = None
    notifier = _Notifier()
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            ("grpc.so_reuseport", 0),
        ]
    )
    try:
        # The servicer opens the database first: it creates (or checks) the schema.
        servicer = EducationRegistryServicer.open(settings.db_path, clock, citizens,
                                                  on_committed=notifier.notify)
        if bus is not None and settings.publish_events:
            publisher = OutboxPublisher(settings.db_path, bus, purpose=PUBLISH_PURPOSE,
                                        clock=clock)
            notifier.publisher = publisher
        sink = EducationEventSink(settings.db_path, PopulationEvents(citizens, clock).handlers(),
                                  clock, on_applied=notifier.notify)
        pb_grpc.add_EducationRegistryServicer_to_server(servicer, server)
        bus_pb2_grpc.add_EventSinkServicer_to_server(sink, server)
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
        if sink is not None:
            sink.close()
        if servicer is not None:
            servicer.close()
        raise
    log.info("education system serving", extra={"subsystem": settings.subsystem, "port": port})
    return EducationServer(server, port, settings, servicer, sink, bus, publisher)


@dataclass(slots=True)
class _Notifier:
    """Tells the outbox publisher (when there is one) that a decision was committed."""

    publisher: OutboxPublisher | None = None

    def notify(self) -> None:
        if self.publisher is not None:
            self.publisher.notify()


def run(settings: EducationSettings, *, clock: Clock | None = None) -> int:
    """Serve until SIGTERM or SIGINT; the process entry point. Returns the exit code."""
    return asyncio.run(_run(settings, clock))


async def _run(settings: EducationSettings, clock: Clock | None) -> int:
    running = await serve(settings, clock=clock)
    bus = settings.gateway_address or "off"
    print(f"education system ({settings.subsystem}) listening on {running.address},"
          f" bus {bus}", flush=True)
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


def _write_port_file(path: Path, port: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(f"{port}\n", encoding="ascii")
    os.replace(temporary, path)
