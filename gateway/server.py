"""Assemble a gateway from its data directory and serve both sides."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import signal
from dataclasses import dataclass

import grpc
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding
from grpc_health.v1 import health_pb2_grpc

from zhol.core.clock import Clock, SystemClock
from zhol.core.cpupolicy import apply_cpu_policy
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId
from zhol.core.jsonlog import configure_json_logging
from zhol.gateway.accessstore import FILE_NAME as ACCESS_REQUESTS_FILE
from zhol.gateway.accessstore import AccessRequestStore
from zhol.gateway.checkpoints import Checkpointer, CheckpointPolicy, CheckpointStore
from zhol.gateway.confsource import ConfSource, Fetch
from zhol.gateway.confwatch import ConfWatch, registry_watch
from zhol.gateway.credentials import LOG_KEY, load_credentials
from zhol.gateway.delivery import DeliveryWorker
from zhol.gateway.eventstore import EventStore
from zhol.gateway.health import HealthWatch, WatchedMessageLog
from zhol.gateway.healthfile import HealthFile
from zhol.gateway.is_server import IsProxy
from zhol.gateway.ispins import (
    IS_CLIENTS_DIR,
    IS_SERVER_CERT,
    IS_SERVER_KEY,
    IS_TLS_MODES,
    IsPin,
    is_client_identity,
    load_is_pins,
    read_tls_key,
)
from zhol.gateway.localconf import LocalConfStore
from zhol.gateway.peer_server import ExchangeService, add_exchange_service
from zhol.gateway.pipeline import (
    GatewayParts,
    consumer_pipeline,
    discovery_pipeline,
    event_pipeline,
    provider_pipeline,
    publish_pipeline,
)
from zhol.gateway.refreshfile import RefreshRequests
from zhol.gateway.replay import ReplayGuard
from zhol.gateway.settings import GatewaySettings, key_passphrase
from zhol.gateway.timestamping import Timestamper, TimestampingPolicy
from zhol.gateway.transport import SERVER_OPTIONS, IsChannels, PeerChannels
from zhol.gateway.witnessing import Witnessing
from zhol.registry.client import add_checkpoint, fetch_global_conf
from zhol.security.keystore import read_certificate, read_private_key
from zhol.security.signednote import NoteSigner, Verifier, gateway_origin

log = logging.getLogger("zhol.gateway")


@dataclass
class RunningGateway:
    gateway_id: GatewayId
    is_port: int
    peer_port: int
    conf: ConfSource
    message_log: WatchedMessageLog
    local: LocalConfStore
    events: EventStore
    deliveries: DeliveryWorker
    health: HealthWatch
    peers: PeerChannels
    _servers: list[grpc.aio.Server]
    _parts: contextlib.AsyncExitStack  # everything started, stopped in reverse order
    # The watch on the registry for new configuration versions; None with a custom fetch.
    conf_watch: ConfWatch | None = None

    async def stop(self, grace: float = 1.0) -> None:
        """Let calls in flight finish (grace seconds), then stop every part."""
        await self.health.stop()  # probes see NOT_SERVING while calls drain
        for server in self._servers:
            await server.stop(grace)
        await self._parts.aclose()


def _passphrase(settings: GatewaySettings) -> bytes | None:
    """The keys' passphrase when gateway.toml names its variable; NotConfigured if unset."""
    if settings.key_passphrase_env:
        return key_passphrase(settings.key_passphrase_env)
    return None


async def start_gateway(
    settings: GatewaySettings, clock: Clock | None = None, fetch: Fetch | None = None
) -> RunningGateway:
    """Start the IS-facing and peer servers; returns once both listen."""
    clock = clock or SystemClock()
    gateway_id = GatewayId.parse(settings.gateway_id)
    passphrase = _passphrase(settings)
    creds = load_credentials(settings.keys_dir, passphrase)
    is_pins = _load_is_pins(settings)
    anchor_der = read_certificate(settings.anchor_path).public_bytes(Encoding.DER)

    async def fetch_from_registry() -> bytes:
        return await fetch_global_conf(settings.registry_address)

    # Whatever started before a failure (a taken port, say) is stopped again.
    async with contextlib.AsyncExitStack() as undo:
        conf = ConfSource(anchor_der, settings.conf_cache_path, clock, fetch or fetch_from_registry)
        conf.load_cached()
        await conf.refresh()
        conf.start(settings.conf_poll_s)
        undo.push_async_callback(conf.stop)
        # New versions pushed by the registry; polling stays as the fallback.
        conf_watch = None if fetch else ConfWatch(conf, registry_watch(settings.registry_address))
        if conf_watch is not None:
            conf_watch.start()
            undo.push_async_callback(conf_watch.stop)
        # Whether the watch is open: what `refresh` answers and health.json publishes.
        watching = (lambda: conf_watch.connected) if conf_watch else None
        refresh_requests = RefreshRequests(settings.data_dir, conf, watching)
        refresh_requests.start()
        undo.push_async_callback(refresh_requests.stop)

        # One store for the checkpointer, the witness client and the timestamper: it tells
        # the other two of each checkpoint written, so they never rescan the directory.
        checkpoints = CheckpointStore(settings.checkpoints_dir)
        checkpointer = _checkpointer(settings, gateway_id, passphrase, clock, checkpoints)
        if checkpointer is not None:
            # Registered first, so it runs after the log is closed: the last checkpoint
            # covers every record.
            undo.push_async_callback(checkpointer.stop)
        # Watched: a failed write turns the health status NOT_SERVING.
        message_log = WatchedMessageLog(settings.message_log_path, clock)
        message_log.open()
        undo.callback(message_log.close)
        if checkpointer is not None:
            checkpointer.start()
            # Off the message path: cosignatures by the registry's witness (.cosig files).
            witnessing = _witnessing(settings, conf, checkpoints)
            witnessing.start()
            undo.push_async_callback(witnessing.stop)
        timestamper = (
            _timestamper(settings, conf, clock, checkpoints) if checkpointer is not None else None
        )
        if timestamper is not None:
            timestamper.start()
            undo.push_async_callback(timestamper.stop)
        # Refilled from the log on its first check, with the window of the skew then in
        # force: ids taken before a restart are refused again.
        replay = ReplayGuard(message_log.recent_request_ids)
        local = LocalConfStore(settings.local_db_path)
        undo.callback(local.close)
        peers = PeerChannels(
            creds.ca_pem,
            creds.auth_key_pem,
            creds.auth_cert_pem,
            call_stream=settings.peer_call_stream,
        )
        undo.push_async_callback(peers.close)
        is_channels = IsChannels(
            functools.partial(is_client_identity, settings.keys_dir, passphrase)
        )
        undo.push_async_callback(is_channels.close)
        access_requests = AccessRequestStore(settings.data_dir / ACCESS_REQUESTS_FILE)
        undo.callback(access_requests.close)
        events = EventStore(settings.data_dir / "events.db")
        events.open()
        undo.callback(events.close)
        deliveries = DeliveryWorker(
            gateway_id=gateway_id,
            store=events,
            conf=conf,
            signer=creds.signer,
            deliver=peers.deliver,
            message_log=message_log,
            clock=clock,
        )
        parts = GatewayParts(
            gateway_id=gateway_id,
            clock=clock,
            conf=conf,
            signer=creds.signer,
            log=message_log,
            local=local,
            replay=replay,
            send=peers.send,
            invoke=is_channels.invoke,
            is_tls=settings.is_tls,
            is_pins=is_pins,
            events=events,
            notify_deliveries=deliveries.notify,
            evidence_gate=timestamper.check if timestamper is not None else None,
            checkpoints_dir=settings.checkpoints_dir,
            access_requests=access_requests,
        )

        health = HealthWatch(
            conf,
            message_log,
            clock,
            publisher=HealthFile(settings.data_dir),
            timestamping_overdue=timestamper.overdue if timestamper is not None else None,
            watching=watching,
        )
        await health.start()
        undo.push_async_callback(health.stop)

        is_server = grpc.aio.server(options=SERVER_OPTIONS)
        undo.push_async_callback(is_server.stop, 0)
        # Before the proxy, which accepts every method path: health is answered here.
        health_pb2_grpc.add_HealthServicer_to_server(health.servicer, is_server)
        exchanges = consumer_pipeline(parts)
        is_proxy = IsProxy(
            exchanges,
            clock,
            peer_certs=settings.is_tls == "mtls",
            publish=publish_pipeline(parts),
            # Reflection asks providers what a client may call through the same pipeline.
            discovery=discovery_pipeline(parts, exchanges),
        )
        is_server.add_generic_rpc_handlers((is_proxy,))
        is_port = _bind_is_port(is_server, settings, passphrase)

        peer_server = grpc.aio.server(options=SERVER_OPTIONS)
        undo.push_async_callback(peer_server.stop, 0)
        health_pb2_grpc.add_HealthServicer_to_server(health.servicer, peer_server)
        add_exchange_service(
            ExchangeService(
                provider_pipeline(parts),
                event_pipeline(parts),
                call_stream=settings.peer_call_stream,
            ),
            peer_server,
        )
        server_credentials = grpc.ssl_server_credentials(
            [(creds.auth_key_pem, creds.auth_cert_pem)],
            root_certificates=creds.ca_pem,
            require_client_auth=True,
        )
        peer_port = peer_server.add_secure_port(settings.peer_listen, server_credentials)
        await is_server.start()
        await peer_server.start()
        deliveries.start()
        undo.push_async_callback(deliveries.stop)
        running = RunningGateway(
            gateway_id,
            is_port,
            peer_port,
            conf,
            message_log,
            local,
            events,
            deliveries,
            health,
            peers,
            [is_server, peer_server],
            undo.pop_all(),  # started: from now on RunningGateway.stop owns all of it
            conf_watch,
        )
    if settings.port_file is not None:
        tmp = settings.port_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"is_port": is_port, "peer_port": peer_port}))
        os.replace(tmp, settings.port_file)
    log.info("gateway %s listening is_port=%d peer_port=%d", gateway_id, is_port, peer_port)
    return running


def _checkpointer(
    settings: GatewaySettings,
    gateway_id: GatewayId,
    passphrase: bytes | None,
    clock: Clock,
    store: CheckpointStore,
) -> Checkpointer | None:
    """Signs the log's checkpoints with keys/log.key; None for a gateway without one
    (registered before log keys: `zhol gateway renew --log-key` gives it one)."""
    path = settings.keys_dir / LOG_KEY
    if not path.exists():
        log.warning("no log key in %s: checkpoints are not signed until a renewal", path)
        return None
    try:
        key = read_private_key(path, passphrase)
    except (OSError, ValueError) as exc:
        raise ZholError("NotConfigured", f"log key {path}: {exc}") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ZholError("NotConfigured", f"log key {path} is not an Ed25519 key")
    return Checkpointer(
        gateway_id=str(gateway_id),
        log_path=settings.message_log_path,
        store=store,
        signer_key=NoteSigner(gateway_origin(str(gateway_id)), key),
        policy=CheckpointPolicy(settings.checkpoint_interval_s, settings.checkpoint_every_records),
        now_ms=clock.now_ms,
    )


def _witnessing(settings: GatewaySettings, conf: ConfSource, store: CheckpointStore) -> Witnessing:
    def witness() -> Verifier | None:
        trusted = conf.loaded
        return trusted.conf.witness_verifier() if trusted is not None else None

    return Witnessing(
        store=store,
        log_path=settings.message_log_path,
        submit=functools.partial(add_checkpoint, settings.registry_address),
        witness=witness,
    )


def _timestamper(
    settings: GatewaySettings, conf: ConfSource, clock: Clock, store: CheckpointStore
) -> Timestamper:
    """Timestamps the checkpoints with the configuration's approved authorities."""
    try:
        policy = TimestampingPolicy(
            settings.timestamp_limit_s, settings.timestamp_interval_s, settings.timestamp_timeout_s
        )
    except ValueError as exc:
        raise ZholError("NotConfigured", f"gateway.toml: {exc}") from None
    return Timestamper(
        store=store,
        conf=conf,
        policy=policy,
        now_ms=clock.now_ms,
    )


def _load_is_pins(settings: GatewaySettings) -> dict[bytes, IsPin]:
    """For mtls, the pinned IS certificates, read once: a restart applies pin-is and unpin-is.

    Checks the IS-facing TLS files first, so a missing one fails before anything starts.
    """
    if settings.is_tls not in IS_TLS_MODES:
        raise ZholError("NotConfigured", f"is_tls must be one of {IS_TLS_MODES}")
    if settings.is_tls == "plaintext":
        return {}
    for name in (IS_SERVER_KEY, IS_SERVER_CERT):
        if not (settings.keys_dir / name).exists():
            raise ZholError(
                "NotConfigured",
                f"is_tls = {settings.is_tls} needs keys/{name} (zhol gateway is-cert)",
            )
    if settings.is_tls == "tls":
        return {}
    pins = load_is_pins(settings.keys_dir)
    if not pins:
        log.warning("is_tls = mtls but no IS certificate is pinned: every IS call is refused")
    return pins


def _bind_is_port(
    server: grpc.aio.Server, settings: GatewaySettings, passphrase: bytes | None
) -> int:
    if settings.is_tls == "plaintext":
        return server.add_insecure_port(settings.is_listen)
    key_pem = read_tls_key(settings.keys_dir / IS_SERVER_KEY, passphrase)
    cert_pem = (settings.keys_dir / IS_SERVER_CERT).read_bytes()
    if settings.is_tls == "tls":
        credentials = grpc.ssl_server_credentials([(key_pem, cert_pem)])
    elif settings.is_tls == "mtls":
        pinned = b"".join(
            p.read_bytes() for p in sorted((settings.keys_dir / IS_CLIENTS_DIR).glob("*.pem"))
        )
        credentials = grpc.ssl_server_credentials(
            [(key_pem, cert_pem)], root_certificates=pinned, require_client_auth=True
        )
    else:
        raise ValueError(f"is_tls must be plaintext, tls or mtls, not {settings.is_tls!r}")
    return server.add_secure_port(settings.is_listen, credentials)


async def run_gateway(settings: GatewaySettings) -> None:
    """Serve until SIGTERM or SIGINT, then stop cleanly."""
    running = await start_gateway(settings)
    # Serving from here on: every thread (gRPC's, the log writer) under the CPU policy.
    apply_cpu_policy(settings.cpu_policy)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await running.stop()


def configure_logging(level: str = "INFO") -> None:
    configure_json_logging(level)
