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
from adapters.population.service import PopulationRegistryServicer
from core.clock import Clock, SystemClock
from core.settings import load_settings
from zhol.population.v1 import population_pb2_grpc as pb_grpc

ENV_PREFIX = "ZHOL_POPULATION_"
SUBSYSTEM = "KZ/GOV/MJ/population"
EVENT_PURPOSE = "civil-status event notification"

log = logging.getLogger("zhol.adapters.population")


@dataclass(frozen=True, slots=True)
class PopulationSettings:
    db_path: Path
    listen: str = "127.0.0.1:0"
    port_file: Path | None = None
    grace_seconds: float = 5.0
    max_message_bytes: int = 4 * 1024 * 1024
    gateway_address: str = ""  # our gateway's IS side; "" = not connected to the bus
    subsystem: str = SUBSYSTEM

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
        if not self.subsystem.strip():
            raise ValueError("subsystem is required")
        if self.grace_seconds < 0:
            raise ValueError("grace_seconds must not be negative")
        if self.max_message_bytes <= 0:
            raise ValueError("max_message_bytes must be positive")

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0]


def load_population_settings(
    config: Path | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> PopulationSettings:
    """Settings from a TOML file, then ZHOL_POPULATION_* variables, then ``overrides``."""
    return load_settings(
        PopulationSettings, config, prefix=ENV_PREFIX, overrides=overrides, environ=environ
    )


@dataclass(frozen=True, slots=True)
class PopulationServer:
    """A started server; ``stop`` must be awaited to release the port and the database."""

    server: grpc.aio.Server
    port: int
    settings: PopulationSettings
    servicer: PopulationRegistryServicer
    publisher: OutboxPublisher | None = None
    bus: BusClient | None = None

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.port}"

    async def stop(self, grace: float | None = None) -> None:
        try:
            await self.server.stop(self.settings.grace_seconds if grace is None else grace)
        finally:
            await _stop_bus(self.publisher, self.bus)
            self.servicer.close()
            if self.settings.port_file is not None:
                with contextlib.suppress(FileNotFoundError):
                    self.settings.port_file.unlink()


async def serve(settings: PopulationSettings, *, clock: Clock | None = None) -> PopulationServer:
    """Start serving ``settings.db_path`` (which must exist: seed it first)."""
    clock = clock or SystemClock()
    servicer = PopulationRegistryServicer.open(settings.db_path, clock)
    bus: BusClient | None = None
    publisher: OutboxPublisher | None = None
    if settings.gateway_address:
        try:
            bus = BusClient(BusIdentity(settings.gateway_address, settings.subsystem))
            publisher = OutboxPublisher(
                settings.db_path, bus, purpose=EVENT_PURPOSE, clock=clock
            )
        except BaseException:
            await _stop_bus(publisher, bus)
            servicer.close()
            raise
        servicer.on_event = publisher.notify
    limit = settings.max_message_bytes
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
            ("grpc.so_reuseport", 0),
        ]
    )
    pb_grpc.add_PopulationRegistryServicer_to_server(servicer, server)
    try:
        port = server.add_insecure_port(settings.listen)
        if port == 0:
            raise OSError(f"cannot listen on {settings.listen}")
        await server.start()
        if settings.port_file is not None:
            _write_port_file(settings.port_file, port)
    except BaseException:
        await server.stop(None)
        await _stop_bus(publisher, bus)
        servicer.close()
        raise
    if publisher is not None:
        publisher.start()
    log.info(
        "population registry serving",
        extra={"subsystem": settings.subsystem, "port": port,
               "gateway": settings.gateway_address or None},
    )
    return PopulationServer(server, port, settings, servicer, publisher, bus)


def run(settings: PopulationSettings, *, clock: Clock | None = None) -> int:
    """Serve until SIGTERM or SIGINT; the process entry point. Returns the exit code."""
    return asyncio.run(_run(settings, clock))


async def _run(settings: PopulationSettings, clock: Clock | None) -> int:
    running = await serve(settings, clock=clock)
    print(
        f"population registry ({settings.subsystem}) listening on {running.address}",
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


async def _stop_bus(publisher: OutboxPublisher | None, bus: BusClient | None) -> None:
    try:
        if publisher is not None:
            await publisher.stop()
    finally:
        if bus is not None:
            await bus.close()


def _write_port_file(path: Path, port: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(f"{port}\n", encoding="ascii")
    os.replace(temporary, path)
