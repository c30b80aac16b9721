"""Running the registry's gRPC server.

Transport: plaintext gRPC. That is acceptable for the registry's current
protocol because nothing it serves needs the channel to be trusted: the global
configuration is signed with the configuration-signing key and gateways verify
it against the anchor they received out of band, and CSRs carry proof of
possession (their own signature), while certificates are public. What plaintext
does not give is authentication of the *requester*: anyone who can reach the
port can submit a registration request, which is why requests wait for an
operator unless auto_approve is set (demo). Put the registry behind TLS (or a
TLS-terminating proxy) in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import os
import signal
from collections.abc import Mapping
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2_grpc

from zhol.core.clock import Clock, SystemClock
from zhol.core.grpcdecode import CataloguedDecoding
from zhol.core.healthcheck import ProbedHealth
from zhol.core.jsonlog import configure_json_logging
from zhol.registry.provision import ensure_witness_key, load_keys, require_initialised
from zhol.registry.registration import Registrar
from zhol.registry.service import ConfPublisher, RegistryService, log_event
from zhol.registry.settings import (
    RegistrySettings,
    load_timestamp_authorities,
    read_key_passphrase,
)
from zhol.registry.store import Store
from zhol.registry.v1 import registry_pb2, registry_pb2_grpc, watch_pb2_grpc
from zhol.registry.watch import ConfAnnouncer, ConfigurationWatchService
from zhol.registry.witness import Witness, witness_name

log = logging.getLogger("zhol.registry.health")

# Requests carry CSRs and descriptor sets; configurations can grow with descriptor sets.
MAX_REQUEST_BYTES = 16 * 1024 * 1024
MAX_RESPONSE_BYTES = 64 * 1024 * 1024


REGISTRY_SERVICE = registry_pb2.DESCRIPTOR.services_by_name["Registry"].full_name


def conf_can_be_served(store: Store, publisher: ConfPublisher, clock: Clock) -> bool:
    """The health probe: the database reads and a signed, unexpired configuration comes out."""
    try:
        store.counts()
        now_ms = clock.now_ms()
        return publisher.current(now_ms).expires_at_ms > now_ms
    except Exception as exc:  # any failure to read or sign: not serving
        log.warning("health probe failed: %s", type(exc).__name__)
        return False


async def start_registry(
    settings: RegistrySettings,
    clock: Clock | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> tuple[grpc.aio.Server, int]:
    """Start serving the registry in settings.data_dir; returns the server and bound port.

    The data directory must have been initialised (registry.provision.init_registry).
    The first configuration version is published (or the stored one reused) before
    the server starts. Stop it with ``await server.stop(grace)``.
    """
    clock = clock or SystemClock()
    paths = require_initialised(settings.data_dir)
    passphrase = read_key_passphrase(settings, environ)
    # A registry made before the witness existed gets its key now.
    await asyncio.to_thread(ensure_witness_key, paths, passphrase)
    keys = await asyncio.to_thread(load_keys, paths, passphrase)
    store = await asyncio.to_thread(Store.open, paths.db)
    registrar = Registrar(
        store=store,
        ca=keys.ca,
        instance=settings.instance,
        auto_approve=settings.auto_approve,
        cert_validity_days=settings.cert_validity_days,
        registration_skew_ms=settings.registration_skew_s * 1000,
        max_contract_bytes=settings.max_contract_bytes,
        max_contracts_total_bytes=settings.max_contracts_total_bytes,
    )
    authorities = load_timestamp_authorities(
        settings, keys.ca.cert, dt.datetime.fromtimestamp(clock.now_ms() / 1000, dt.UTC)
    )
    publisher = ConfPublisher(store, keys, settings, timestamp_authorities=authorities)
    await asyncio.to_thread(publisher.current, clock.now_ms())
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
            ("grpc.max_send_message_length", MAX_RESPONSE_BYTES),
            # Never share a port with another process (grpc enables SO_REUSEPORT by default).
            ("grpc.so_reuseport", 0),
        ],
        # A request that does not decode: Client.InvalidRequest, not gRPC's UNKNOWN.
        interceptors=(CataloguedDecoding(logging.getLogger("zhol.registry")),),
    )
    assert keys.witness_key is not None  # ensured above
    witness = Witness(store, keys.witness_key, witness_name(settings.instance))
    registry_pb2_grpc.add_RegistryServicer_to_server(
        RegistryService(registrar, publisher, clock, witness), server
    )
    # Gateways watching for new configuration versions (registry/watch.py).
    watch_pb2_grpc.add_ConfigurationWatchServicer_to_server(
        ConfigurationWatchService(ConfAnnouncer(publisher, clock)), server
    )
    health = ProbedHealth(
        functools.partial(conf_can_be_served, store, publisher, clock), log, ("", REGISTRY_SERVICE)
    )
    await health.refresh()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    try:
        port = server.add_insecure_port(settings.listen)
    except RuntimeError:  # grpc reports a failed bind as RuntimeError
        port = 0
    if port == 0:
        await server.stop(None)
        raise OSError(f"cannot listen on {settings.listen}")
    await server.start()
    return server, port


def run(settings: RegistrySettings, clock: Clock | None = None) -> int:
    """Serve until SIGTERM or SIGINT; returns the process exit code."""
    _configure_logging()
    return asyncio.run(_serve(settings, clock or SystemClock()))


async def _serve(settings: RegistrySettings, clock: Clock) -> int:
    server, port = await start_registry(settings, clock)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        if settings.port_file is not None:
            _write_port_file(settings.port_file, port)
        host = settings.listen.rpartition(":")[0]
        paths = require_initialised(settings.data_dir)
        log_event(
            "registry.started",
            instance=settings.instance,
            address=f"{host}:{port}",
            data_dir=str(settings.data_dir),
            anchor=str(paths.anchor),
            auto_approve=settings.auto_approve,
            refresh_interval_s=settings.refresh_interval_s,
            validity_s=settings.validity_s,
            pid=os.getpid(),
        )
        await stop.wait()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        await server.stop(grace=2.0)
        if settings.port_file is not None:
            with contextlib.suppress(FileNotFoundError):
                settings.port_file.unlink()
        log_event("registry.stopped", instance=settings.instance)
    return 0


def _write_port_file(path: Path, port: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{port}\n", encoding="ascii")
    os.replace(tmp, path)


def _configure_logging() -> None:
    configure_json_logging(logging.INFO)
