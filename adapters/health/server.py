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
from adapters.health import schema
from adapters.health.events import event_handlers
from adapters.health.lookups import PURPOSE_PUBLISH, Lookups
from adapters.health.model import SUBSYSTEM
from adapters.health.service import HealthRegistryServicer
from core.clock import Clock, SystemClock
from core.settings import load_settings
from zhol.bus.v1 import bus_pb2, bus_pb2_grpc
from zhol.health.v1 import health_pb2_grpc as pb_grpc

ENV_PREFIX = "ZHOL_HEALTH_"

log = logging.getLogger("zhol.adapters.health")


@dataclass(frozen=True, slots=True)
class HealthSettings:
    db_path: Path
    listen: str = "127.0.0.1:0"
    port_file: Path | None = None
    gateway_address: str = ""  # our gateway's IS side, host:port; "" = bus off
    subsystem: str = SUBSYSTEM
    user_id: str = "system"
    bus_timeout: float = 5.0
    grace_seconds: float = 5.0
    max_message_bytes: int = 4 * 1024 * 1024

    def __post_init__(self) -> None:
        _check_address(self.listen, "listen")
        if self.gateway_address:
            _check_address(self.gateway_address, "gateway_address")
        if not self.subsystem.strip():
            raise ValueError("subsystem is required")
        if self.bus_timeout <= 0:
            raise ValueError("bus_timeout must be positive")
        if self.grace_seconds < 0:
            raise ValueError("grace_seconds must not be negative")
        if self.max_message_bytes <= 0:
            raise ValueError("max_message_bytes must be positive")

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0]


def load_health_settings(
    config: Path | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> HealthSettings:
    """Settings from a TOML file, then ZHOL_HEALTH_* variables, then ``overrides``."""
    return load_settings(
        HealthSettings, config, prefix=ENV_PREFIX, overrides=overrides, environ=environ
    )


class _NotifyingSink(EventSinkServicer):
    """The inbox, telling the outbox publisher when an event led to a decision."""

    def __init__(self, db_path: Path, handlers: Mapping[str, Handler], clock: Clock,
                 on_applied: Callable[[], None]) -> None:
        super().__init__(db_path, handlers, clock, connect=schema.connect)
        self._on_applied = on_applied

    async def handle(self, delivery: bus_pb2.EventDelivery) -> bool:
        applied = await super().handle(delivery)
        if applied:
            self._on_applied()
        return applied


@dataclass(frozen=True, slots=True)
class HealthServer:
    """A started server; ``stop`` must be awaited to release the port and the database."""

    server: grpc.aio.Server
    port: int
    settings: HealthSettings
    servicer: HealthRegistryServicer
    sink: EventSinkServicer
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


async def serve(settings: HealthSettings, *, clock: Clock | None = None) -> HealthServer:
    """Start serving ``settings.db_path`` (which must exist: seed it first)."""
    clock = clock or SystemClock()
    if not settings.db_path.is_file():
        raise FileNotFoundError(f"no health database at {settings.db_path}")
    bus = None
    if settings.gateway_address:
        bus = BusClient(
            BusIdentity(settings.gateway_address, settings.subsystem, settings.user_id)
        )
    lookups = Lookups(bus, timeout=settings.bus_timeout) if bus is not None else None
    servicer = sink = publisher = None
    server = None
    try:
        if bus is not None:
            publisher = OutboxPublisher(
                settings.db_path, bus, purpose=PURPOSE_PUBLISH, clock=clock,
                connect=schema.connect,
            )
        notify = publisher.notify if publisher is not None else _nothing
        servicer = HealthRegistryServicer.open(settings.db_path, clock, lookups, on_events=notify)
        sink = _NotifyingSink(settings.db_path, event_handlers(lookups, clock), clock, notify)
        limit = settings.max_message_bytes
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
                ("grpc.so_reuseport", 0),
            ]
        )
        pb_grpc.add_HealthRegistryServicer_to_server(servicer, server)
        bus_pb2_grpc.add_EventSinkServicer_to_server(sink, server)
        port = server.add_insecure_port(settings.listen)
        if port == 0:
            raise OSError(f"cannot listen on {settings.listen}")
        await server.start()
        if settings.port_file is not None:
            _write_port_file(settings.port_file, port)
        if publisher is not None:
            publisher.start()
    except BaseException:
        if server is not None:
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
    log.info("health system serving", extra={"subsystem": settings.subsystem, "port": port})
    return HealthServer(server, port, settings, servicer, sink, bus, publisher)


def run(settings: HealthSettings, *, clock: Clock | None = None) -> int:
    """Serve until SIGTERM or SIGINT; the process entry point. Returns the exit code."""
    return asyncio.run(_run(settings, clock))


async def _run(settings: HealthSettings, clock: Clock | None) -> int:
    running = await serve(settings, clock=clock)
    bus = settings.gateway_address or "off"
    print(
        f"health system ({settings.subsystem}) listening on {running.address}; bus: {bus}",
        flush=True,
    )
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
    pass


def _check_address(value: str, field: str) -> None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"{field} must be HOST:PORT, got {value!r}")


def _write_port_file(path: Path, port: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(f"{port}\n", encoding="ascii")
    os.replace(temporary, path)
