"""Running an agency adapter: the parts every adapter's server.py shares.

- ``AdapterSettings``: the fields and checks every adapter has (an agency subclasses it,
  sets its ``subsystem`` default, adds its own fields and checks them in ``check``);
  ``settings_loader`` makes its ``load_*_settings`` (TOML, then ``ZHOL_<AGENCY>_*``).
- ``start_adapter``: one grpc.aio server (message-size limits, no shared port) carrying
  the agency's servicer and, optionally, the bus's ``EventSink`` inbox; an
  ``OutboxPublisher`` when the bus is on; the bound port written to ``port_file``.
  What it opened is closed again, in order, if any step fails.
- ``AdapterServer.stop``: server (grace), publisher, bus client, inbox, servicer, port
  file; every step runs even when an earlier one fails.
- ``run_adapter``: the process entry: serve, print the agency's line, wait for SIGTERM
  or SIGINT, stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import grpc
from grpc_health.v1 import health_pb2_grpc

from zhol.adapters.bus.client import BusClient, BusIdentity
from zhol.adapters.bus.inbox import EventSinkServicer, Handler
from zhol.adapters.bus.outbox import OutboxPublisher, connect_default
from zhol.bus.v1 import bus_pb2, bus_pb2_grpc
from zhol.core.clock import Clock
from zhol.core.grpcdecode import CataloguedDecoding
from zhol.core.healthcheck import ProbedHealth
from zhol.core.settings import load_settings

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
SIGNALS = (signal.SIGTERM, signal.SIGINT)

Notify = Callable[[], None]
Connect = Callable[[Path], sqlite3.Connection]

log = logging.getLogger("zhol.adapters.runtime")


class Closeable(Protocol):
    def close(self) -> None: ...


def check_address(value: str, field: str) -> None:
    """``value`` must be HOST:PORT (numeric port); raises ValueError naming ``field``."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"{field} must be HOST:PORT, got {value!r}")


@dataclass(frozen=True, slots=True)
class AdapterSettings:
    """What every adapter is configured with; subclass it per agency."""

    db_path: Path
    listen: str = "127.0.0.1:0"
    port_file: Path | None = None
    grace_seconds: float = 5.0
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    gateway_address: str = ""  # our gateway's IS side, HOST:PORT; "" = bus off
    subsystem: str = ""  # an agency's subclass sets its own default
    user_id: str = "system"  # the zhol-user-id of the adapter's own calls on the bus
    # Serve TLS with this certificate and key (PEM) instead of plaintext; with
    # tls_client_ca too, mutual TLS: only a client (our gateway) whose certificate
    # chains to tls_client_ca (e.g. the gateway's pinned is-server.pem) gets in.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None

    def __post_init__(self) -> None:
        check_address(self.listen, "listen")
        if self.gateway_address:
            check_address(self.gateway_address, "gateway_address")
        if not self.subsystem.strip():
            raise ValueError("subsystem is required")
        if self.grace_seconds < 0:
            raise ValueError("grace_seconds must not be negative")
        if self.max_message_bytes <= 0:
            raise ValueError("max_message_bytes must be positive")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("tls_client_ca needs tls_cert and tls_key")
        self.check()

    def check(self) -> None:
        """An agency's own checks of its own fields (raise ValueError); none here.

        A hook rather than ``super().__post_init__()``: zero-argument super() does not
        work in slotted dataclasses."""

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0]

    @property
    def tls_mode(self) -> str:
        if self.tls_cert is None:
            return "plaintext"
        return "tls" if self.tls_client_ca is None else "mtls"


S = TypeVar("S", bound=AdapterSettings)
S_co = TypeVar("S_co", bound=AdapterSettings, covariant=True)
V = TypeVar("V", bound=Closeable)


class SettingsLoader(Protocol[S_co]):
    def __call__(
        self,
        config: Path | None = None,
        *,
        overrides: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> S_co: ...


def settings_loader(cls: type[S], prefix: str) -> SettingsLoader[S]:
    """``load(config, overrides=..., environ=...)``: ``cls`` from a TOML file, then the
    ``prefix``* environment variables, then ``overrides`` (None values ignored)."""

    def load(
        config: Path | None = None,
        *,
        overrides: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> S:
        return load_settings(cls, config, prefix=prefix, overrides=overrides, environ=environ)

    load.__doc__ = f"Settings from a TOML file, then {prefix}* variables, then ``overrides``."
    return load


def require_database(path: Path, agency: str) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"no {agency} database at {path}")


def bus_client(settings: AdapterSettings, user_id: str = "") -> BusClient | None:
    """A client of our gateway when the bus is on (``gateway_address`` set), else None;
    it calls as ``user_id``, by default the settings' own."""
    if not settings.gateway_address:
        return None
    user_id = user_id or settings.user_id
    return BusClient(BusIdentity(settings.gateway_address, settings.subsystem, user_id))


@dataclass(slots=True)
class Notifier:
    """Tells the outbox publisher, once there is one, that a write enqueued an event.

    The servicer and the inbox get ``notify`` before the publisher exists: the servicer
    opens the database first (it creates or checks the schema)."""

    publisher: OutboxPublisher | None = None

    def notify(self) -> None:
        if self.publisher is not None:
            self.publisher.notify()


class NotifyingEventSink(EventSinkServicer):
    """The bus inbox, calling ``on_applied`` after each event that took effect (so the
    decision it led to is published at once instead of at the next poll)."""

    def __init__(
        self,
        db_path: Path,
        handlers: Mapping[str, Handler],
        clock: Clock,
        on_applied: Notify,
        *,
        connect: Connect = connect_default,
    ) -> None:
        super().__init__(db_path, handlers, clock, connect=connect)
        self._on_applied = on_applied

    async def handle(self, delivery: bus_pb2.EventDelivery) -> bool:
        applied = await super().handle(delivery)
        if applied:
            self._on_applied()
        return applied


def database_opens(path: Path) -> bool:
    """Whether the adapter's SQLite database opens and reads (read-only, writes nothing)."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1.0)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()
    except (sqlite3.Error, OSError):
        return False
    return True


def server_options(max_message_bytes: int) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        # Never share a port with another process (grpc enables SO_REUSEPORT by default).
        ("grpc.so_reuseport", 0),
    ]


def bind_port(server: grpc.aio.Server, settings: AdapterSettings) -> int:
    """Listen plaintext, TLS or mutual TLS as the settings say; an unreadable file is
    an OSError naming it (nothing listens)."""
    if settings.tls_cert is None or settings.tls_key is None:
        return server.add_insecure_port(settings.listen)
    pair = [(settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())]
    if settings.tls_client_ca is None:
        credentials = grpc.ssl_server_credentials(pair)
    else:
        credentials = grpc.ssl_server_credentials(
            pair, root_certificates=settings.tls_client_ca.read_bytes(), require_client_auth=True
        )
    return server.add_secure_port(settings.listen, credentials)


def write_port_file(path: Path, port: int) -> None:
    """Write ``port`` to ``path`` atomically: a reader sees no file or the whole port."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(f"{port}\n", encoding="ascii")
    os.replace(temporary, path)


def remove_port_file(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


async def shut_down(
    server: grpc.aio.Server | None,
    grace: float | None,
    publisher: OutboxPublisher | None,
    bus: BusClient | None,
    sink: Closeable | None,
    servicer: Closeable | None,
    port_file: Path | None = None,
) -> None:
    """Stop in order: server (``grace`` seconds for running calls), publisher, bus
    client, inbox, servicer, port file. Each step runs even if an earlier one raised;
    the last error is raised after all have run (earlier ones are its context)."""
    async with contextlib.AsyncExitStack() as later:  # callbacks run last-pushed first
        if port_file is not None:
            later.callback(remove_port_file, port_file)
        if servicer is not None:
            later.callback(servicer.close)
        if sink is not None:
            later.callback(sink.close)
        if bus is not None:
            later.push_async_callback(bus.close)
        if publisher is not None:
            later.push_async_callback(publisher.stop)
        if server is not None:
            await server.stop(grace)


@dataclass(frozen=True, slots=True)
class AdapterServer(Generic[S, V]):
    """A started adapter; ``stop`` must be awaited to release the port and the database."""

    server: grpc.aio.Server
    port: int
    settings: S
    servicer: V
    sink: EventSinkServicer | None
    bus: BusClient | None
    publisher: OutboxPublisher | None

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.port}"

    async def stop(self, grace: float | None = None) -> None:
        await shut_down(
            self.server, self.settings.grace_seconds if grace is None else grace,
            self.publisher, self.bus, self.sink, self.servicer, self.settings.port_file,
        )


async def start_adapter(
    settings: S,
    *,
    name: str,
    clock: Clock,
    bus: BusClient | None,
    open_servicer: Callable[[Notify], V],
    add_servicer: Callable[[V, grpc.aio.Server], None],
    open_sink: Callable[[Notify], EventSinkServicer] | None = None,
    publish_purpose: str | None = None,
    connect: Connect = connect_default,
) -> AdapterServer[S, V]:
    """Open the agency's servicer (and inbox), start publishing (bus on and
    ``publish_purpose`` given) and serve on ``settings.listen``.

    The new server owns ``bus`` from here on: it is closed on failure and on stop.
    ``name`` ("health system") is for the log line.
    """
    notifier = Notifier()
    server: grpc.aio.Server | None = None
    servicer: V | None = None
    sink: EventSinkServicer | None = None
    publisher: OutboxPublisher | None = None
    try:
        servicer = open_servicer(notifier.notify)
        if open_sink is not None:
            sink = open_sink(notifier.notify)
        if bus is not None and publish_purpose is not None:
            publisher = OutboxPublisher(
                settings.db_path, bus, purpose=publish_purpose, clock=clock, connect=connect
            )
            notifier.publisher = publisher
        # A request that does not decode: Client.InvalidRequest, not gRPC's UNKNOWN.
        server = grpc.aio.server(
            options=server_options(settings.max_message_bytes),
            interceptors=(CataloguedDecoding(log),),
        )
        add_servicer(servicer, server)
        health = ProbedHealth(functools.partial(database_opens, settings.db_path), log)
        await health.refresh()
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        if sink is not None:
            bus_pb2_grpc.add_EventSinkServicer_to_server(sink, server)
        port = bind_port(server, settings)
        if port == 0:
            raise OSError(f"cannot listen on {settings.listen}")
        await server.start()
        if publisher is not None:
            publisher.start()
        if settings.port_file is not None:
            write_port_file(settings.port_file, port)
    except BaseException:
        await shut_down(server, None, publisher, bus, sink, servicer)
        raise
    log.info(
        "%s serving", name,
        extra={"subsystem": settings.subsystem, "port": port, "tls": settings.tls_mode,
               "gateway": settings.gateway_address or None},
    )
    return AdapterServer(server, port, settings, servicer, sink, bus, publisher)


class Stoppable(Protocol):
    async def stop(self) -> None: ...


R = TypeVar("R", bound=Stoppable)


async def serve_until_signalled(start: Callable[[], Awaitable[R]],
                                banner: Callable[[R], str]) -> int:
    """Start, print ``banner`` (launchers and tests read it), serve until SIGTERM or
    SIGINT, stop. Returns the exit code."""
    running = await start()
    print(banner(running), flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in SIGNALS:
        loop.add_signal_handler(signum, stopping.set)
    try:
        await stopping.wait()
    finally:
        for signum in SIGNALS:
            loop.remove_signal_handler(signum)
        await running.stop()
    return 0


def run_adapter(start: Callable[[], Awaitable[R]], banner: Callable[[R], str]) -> int:
    """The process entry point: ``serve_until_signalled`` on a new event loop."""
    return asyncio.run(serve_until_signalled(start, banner))
