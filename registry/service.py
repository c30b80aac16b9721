"""The registry's gRPC service (zhol.registry.v1.Registry) and configuration publishing.

Blocking work (SQLite, signatures, certificate issuance) runs in worker threads.
Every failure reaches the caller as a catalogued error with hop Server.Registry
in the zhol-error / zhol-error-id trailers; unexpected exceptions become
InternalError with no detail (the error id is in the registry's log).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import grpc

from zhol.core.clock import Clock
from zhol.core.errors import Hop, ZholError
from zhol.core.grpcerr import abort_with
from zhol.registry.globalconf import build_signed_global_conf
from zhol.registry.model import ConfVersion
from zhol.registry.provision import RegistryKeys
from zhol.registry.registration import Registrar, registration_state_to_pb
from zhol.registry.settings import RegistrySettings
from zhol.registry.store import Store
from zhol.registry.v1 import registry_pb2, registry_pb2_grpc
from zhol.registry.witness import Witness, witness_name
from zhol.security.globalconf import TimestampAuthority, Tunables
from zhol.security.logkey import log_public_key_bytes

log = logging.getLogger("zhol.registry")

T = TypeVar("T")


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """One structured log record: ``event`` and ``fields`` as its own JSON fields
    (zhol.core.jsonlog). Never pass secrets or payloads."""
    log.log(level, event, extra={"event": event, **fields})


def tunables_from_settings(settings: RegistrySettings) -> Tunables:
    return Tunables(
        refresh_interval_s=settings.refresh_interval_s,
        validity_s=settings.validity_s,
        clock_skew_s=settings.clock_skew_s,
        max_message_bytes=settings.max_message_bytes,
    )


class ConfPublisher:
    """Publishes global configuration versions: builds, signs and persists them.

    ``current(now_ms)`` returns the latest version, first publishing a new one when
    the store's change counter moved since the latest was built, or the latest is
    refresh_interval_s old (so expires_at keeps moving forward while the registry
    runs). Versions strictly increase and survive restarts. Thread-safe.
    """

    def __init__(
        self,
        store: Store,
        keys: RegistryKeys,
        settings: RegistrySettings,
        tsa_certs_der: Sequence[bytes] = (),
        timestamp_authorities: Sequence[TimestampAuthority] = (),
    ) -> None:
        self._store = store
        self._keys = keys
        self._instance = settings.instance
        self._tunables = tunables_from_settings(settings)
        self._tsa_certs_der = tuple(tsa_certs_der)
        self._timestamp_authorities = tuple(timestamp_authorities)
        self._lock = threading.Lock()
        self._latest: ConfVersion | None = None

    def current(self, now_ms: int) -> ConfVersion:
        with self._lock:
            latest = self._latest or self._store.latest_conf()
            if latest is not None and not self._stale(latest, now_ms):
                self._latest = latest
                return latest
            published = self._publish(latest, now_ms)
            self._latest = published
            return published

    def _stale(self, latest: ConfVersion, now_ms: int) -> bool:
        if latest.change_counter != self._store.change_counter():
            return True
        age_ms = now_ms - latest.generated_at_ms
        return age_ms >= self._tunables.refresh_interval_s * 1000 or now_ms >= latest.expires_at_ms

    def _witness_fields(self) -> dict[str, Any]:
        if self._keys.witness_key is None:
            return {}
        return {
            "witness_public_key": log_public_key_bytes(self._keys.witness_key),
            "witness_name": witness_name(self._instance),
        }

    def _publish(self, latest: ConfVersion | None, now_ms: int) -> ConfVersion:
        stored = self._store.latest_conf()  # another process may have published meanwhile
        previous = max(latest.version if latest else 0, stored.version if stored else 0)
        snapshot = self._store.snapshot()
        version = previous + 1
        signed = build_signed_global_conf(
            snapshot,
            instance=self._instance,
            version=version,
            now_ms=now_ms,
            tunables=self._tunables,
            ca_certs_der=(self._keys.ca_cert_der,),
            signing_key=self._keys.conf_key,
            anchor_der=self._keys.anchor_der,
            tsa_certs_der=self._tsa_certs_der,
            **self._witness_fields(),
            timestamp_authorities=self._timestamp_authorities,
        )
        published = ConfVersion(
            version=version,
            generated_at_ms=now_ms,
            expires_at_ms=now_ms + self._tunables.validity_s * 1000,
            change_counter=snapshot.change_counter,
            signed=signed,
        )
        self._store.save_conf(published)
        log_event(
            "registry.conf_published",
            version=version,
            gateways=sum(1 for g in snapshot.gateways if not g.revoked),
            revoked=len(snapshot.revoked_cert_sha256),
        )
        return published


class RegistryService(registry_pb2_grpc.RegistryServicer):
    """grpc.aio servicer for zhol.registry.v1.Registry."""

    def __init__(
        self,
        registrar: Registrar,
        publisher: ConfPublisher,
        clock: Clock,
        witness: Witness | None = None,
    ) -> None:
        self._registrar = registrar
        self._publisher = publisher
        self._clock = clock
        self._witness = witness

    async def GetGlobalConfiguration(
        self,
        request: registry_pb2.GetGlobalConfigurationRequest,
        context: grpc.aio.ServicerContext[
            registry_pb2.GetGlobalConfigurationRequest, registry_pb2.SignedGlobalConfiguration
        ],
    ) -> registry_pb2.SignedGlobalConfiguration:
        published = await self._run(context, self._publisher.current, self._clock.now_ms())
        return registry_pb2.SignedGlobalConfiguration.FromString(published.signed)

    async def SubmitRegistration(
        self,
        request: registry_pb2.RegistrationRequest,
        context: grpc.aio.ServicerContext[
            registry_pb2.RegistrationRequest, registry_pb2.RegistrationTicket
        ],
    ) -> registry_pb2.RegistrationTicket:
        reg = await self._run(context, self._registrar.submit, request, self._clock.now_ms())
        log_event(
            "registry.registration_submitted",
            request_id=reg.id,
            kind=reg.kind.value,
            gateway=str(reg.gateway),
            subsystem=str(reg.subsystem) if reg.subsystem else None,
            state=reg.state.value,
        )
        return registry_pb2.RegistrationTicket(
            request_id=reg.id, state=registration_state_to_pb(reg.state)
        )

    async def GetRegistrationStatus(
        self,
        request: registry_pb2.GetRegistrationStatusRequest,
        context: grpc.aio.ServicerContext[
            registry_pb2.GetRegistrationStatusRequest, registry_pb2.RegistrationStatus
        ],
    ) -> registry_pb2.RegistrationStatus:
        return await self._run(context, self._registrar.status, request.request_id)

    async def AddCheckpoint(
        self,
        request: registry_pb2.AddCheckpointRequest,
        context: grpc.aio.ServicerContext[
            registry_pb2.AddCheckpointRequest, registry_pb2.AddCheckpointResponse
        ],
    ) -> registry_pb2.AddCheckpointResponse:
        """C2SP tlog-witness add-checkpoint (registry/witness.py)."""
        if self._witness is None:
            await abort_with(
                context,
                ZholError("NotConfigured", "this registry has no witness key", hop=Hop.REGISTRY),
            )
            raise AssertionError("unreachable: abort_with raises")
        cosignature = await self._run(
            context,
            self._witness.add_checkpoint,
            bytes(request.checkpoint),
            request.old_size,
            tuple(bytes(h) for h in request.consistency_proof),
            self._clock.now_ms(),
        )
        return registry_pb2.AddCheckpointResponse(cosignature=cosignature)

    async def _run(
        self, context: grpc.aio.ServicerContext[Any, Any], fn: Callable[..., T], *args: Any
    ) -> T:
        try:
            return await asyncio.to_thread(fn, *args)
        except ZholError as err:
            await abort_with(context, err if err.hop is Hop.REGISTRY else err.at(Hop.REGISTRY))
        except Exception as exc:
            internal = ZholError("InternalError", type(exc).__name__, hop=Hop.REGISTRY)
            log.exception("registry internal error %s", internal.error_id)
            await abort_with(context, internal)
        raise AssertionError("unreachable: abort_with raises")
