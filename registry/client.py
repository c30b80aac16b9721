"""What gateways use to talk to the registry (never registry.store).

Failures come back as catalogued ZholErrors: those the registry reported (read
from the zhol-error trailers, hop Server.Registry), NetworkError when the
registry cannot be reached and Timeout when it does not answer in time (both
with hop Server.ClientProxy: the gateway detected them).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from zhol.core.errors import Hop, ZholError
from zhol.core.grpcerr import error_from_rpc
from zhol.core.grpcruntime import RECONNECT_OPTIONS
from zhol.registry.v1 import registry_pb2, registry_pb2_grpc, watch_pb2
from zhol.security.sealing import REGISTRATION_TYPE, RENEWAL_TYPE, Signer, pae, sign_bytes

MAX_CONF_BYTES = 64 * 1024 * 1024
_GET_CONF = "/zhol.registry.v1.Registry/GetGlobalConfiguration"
# A registry back from an outage is reached at the next poll, not after gRPC's backoff.
_CHANNEL_OPTIONS = (("grpc.max_receive_message_length", MAX_CONF_BYTES), *RECONNECT_OPTIONS)


def _channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS)


def _from_rpc(exc: grpc.RpcError, address: str) -> ZholError:
    carried = error_from_rpc(exc)
    if carried is not None:
        return carried
    code = exc.code() if hasattr(exc, "code") else None
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return ZholError("Timeout", f"registry at {address} did not answer in time")
    name = code.name if code is not None else type(exc).__name__
    return ZholError("NetworkError", f"registry at {address} unreachable ({name})")


async def fetch_global_conf(address: str, timeout_s: float = 5.0, known_version: int = 0) -> bytes:
    """The registry's current SignedGlobalConfiguration, as the exact bytes it sent.

    The caller verifies them (core.globalconf.verify_global_conf) against its anchor.
    """
    request = registry_pb2.GetGlobalConfigurationRequest(known_version=known_version)
    async with _channel(address) as channel:
        call: grpc.aio.UnaryUnaryMultiCallable[
            registry_pb2.GetGlobalConfigurationRequest, bytes
        ] = channel.unary_unary(
            _GET_CONF,
            request_serializer=registry_pb2.GetGlobalConfigurationRequest.SerializeToString,
            response_deserializer=None,  # raw bytes: nothing is re-serialised
        )
        try:
            return bytes(await call(request, timeout=timeout_s))
        except grpc.RpcError as exc:
            raise _from_rpc(exc, address) from None


_WATCH_CONF = "/zhol.registry.v1.ConfigurationWatch/WatchGlobalConfiguration"


async def watch_global_conf(
    address: str, known_version: int, idle_timeout_s: float, stop: asyncio.Event
) -> AsyncIterator[tuple[int, bytes]]:
    """The registry's configuration notices, as (version, signed configuration bytes or
    b"" on a heartbeat), until the stream ends: then NetworkError (or the registry's
    error), Timeout when nothing came for ``idle_timeout_s`` (a dead connection), and a
    plain return once ``stop`` is set.

    The bytes are exactly what the registry sent; the caller verifies them against its
    anchor (core.globalconf.verify_global_conf), as for fetch_global_conf.
    """
    loop = asyncio.get_running_loop()
    request = watch_pb2.WatchGlobalConfigurationRequest(known_version=known_version)
    async with _channel(address) as channel:
        method: grpc.aio.UnaryStreamMultiCallable[
            watch_pb2.WatchGlobalConfigurationRequest, watch_pb2.GlobalConfigurationNotice
        ] = channel.unary_stream(
            _WATCH_CONF,
            request_serializer=watch_pb2.WatchGlobalConfigurationRequest.SerializeToString,
            response_deserializer=watch_pb2.GlobalConfigurationNotice.FromString,
        )
        call = method(request)
        # A pending read is ended by cancelling the call, never by cancelling the task
        # awaiting it: grpc.aio can leave such a task waiting for good.
        silent = False

        def on_silence() -> None:
            nonlocal silent
            silent = True
            call.cancel()

        stopping = loop.create_task(stop.wait())
        stopping.add_done_callback(lambda _: call.cancel())
        timer = loop.call_later(idle_timeout_s, on_silence)
        try:
            while True:
                try:
                    notice = await call.read()
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if (task is not None and task.cancelling()) or stop.is_set():
                        raise
                    if silent:
                        raise ZholError("Timeout", f"registry at {address} silent") from None
                    raise ZholError("NetworkError", f"watch on {address} cancelled") from None
                if notice is grpc.aio.EOF:
                    raise ZholError("NetworkError", f"registry at {address} ended the watch")
                assert isinstance(notice, watch_pb2.GlobalConfigurationNotice)
                timer.cancel()
                timer = loop.call_later(idle_timeout_s, on_silence)
                yield notice.version, bytes(notice.signed_configuration)
        except grpc.RpcError as exc:
            if stop.is_set():
                return
            raise _from_rpc(exc, address) from None
        finally:
            timer.cancel()
            stopping.cancel()
            call.cancel()


def signed_subsystem_request(
    body: registry_pb2.SubsystemRegistration, signer: Signer
) -> registry_pb2.RegistrationRequest:
    """A SUBSYSTEM request: the body's exact bytes, signed with the gateway's member key.

    The body carries its own issued_at_unix_ms; the registry verifies exactly
    these bytes and reads the request from them.
    """
    data = body.SerializeToString(deterministic=True)
    return registry_pb2.RegistrationRequest(
        kind=registry_pb2.REGISTRATION_KIND_SUBSYSTEM,
        gateway=body.gateway,
        subsystem_registration=data,
        signature=sign_bytes(signer.key, pae(REGISTRATION_TYPE, data)),
        signer_cert_der=signer.cert_der,
    )


def signed_renewal_request(
    body: registry_pb2.RenewalRegistration, signer: Signer
) -> registry_pb2.RegistrationRequest:
    """A RENEWAL request: the body's exact bytes (new CSRs, issued-at), signed with the
    gateway's current member signing key."""
    data = body.SerializeToString(deterministic=True)
    return registry_pb2.RegistrationRequest(
        kind=registry_pb2.REGISTRATION_KIND_RENEWAL,
        gateway=body.gateway,
        renewal_registration=data,
        signature=sign_bytes(signer.key, pae(RENEWAL_TYPE, data)),
        signer_cert_der=signer.cert_der,
    )


async def submit_registration(
    address: str, request_pb: registry_pb2.RegistrationRequest, timeout_s: float = 10.0
) -> str:
    """Submit a registration request; returns its request id (keep it to poll the status)."""
    async with _channel(address) as channel:
        stub = registry_pb2_grpc.RegistryStub(channel)
        try:
            ticket = await stub.SubmitRegistration(request_pb, timeout=timeout_s)
        except grpc.RpcError as exc:
            raise _from_rpc(exc, address) from None
    return str(ticket.request_id)


async def get_registration_status(
    address: str, request_id: str, timeout_s: float = 5.0
) -> registry_pb2.RegistrationStatus:
    """One status query (state, rejection reason, certificates once approved)."""
    async with _channel(address) as channel:
        stub = registry_pb2_grpc.RegistryStub(channel)
        try:
            status: registry_pb2.RegistrationStatus = await stub.GetRegistrationStatus(
                registry_pb2.GetRegistrationStatusRequest(request_id=request_id),
                timeout=timeout_s,
            )
            return status
        except grpc.RpcError as exc:
            raise _from_rpc(exc, address) from None


async def wait_for_registration(
    address: str, request_id: str, timeout_s: float, poll_interval_s: float = 1.0
) -> registry_pb2.RegistrationStatus:
    """Poll until the request is approved and return its status (with the certificates).

    Raises ZholError RegistrationRejected (detail: the operator's reason) when it is
    rejected, RegistrationPending when timeout_s passes first. While the registry is
    unreachable it keeps polling until the timeout, then raises the NetworkError.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    interval = min(0.05, poll_interval_s)
    request = registry_pb2.GetRegistrationStatusRequest(request_id=request_id)
    async with _channel(address) as channel:
        stub = registry_pb2_grpc.RegistryStub(channel)
        while True:
            remaining = deadline - loop.time()
            try:
                status: registry_pb2.RegistrationStatus = await stub.GetRegistrationStatus(
                    request, timeout=max(min(remaining, 5.0), 0.5)
                )
            except grpc.RpcError as exc:
                err = _from_rpc(exc, address)
                if err.code.name not in ("NetworkError", "Timeout") or remaining <= 0:
                    raise err from None
            else:
                if status.state == registry_pb2.REGISTRATION_STATE_APPROVED:
                    return status
                if status.state == registry_pb2.REGISTRATION_STATE_REJECTED:
                    raise ZholError(
                        "RegistrationRejected", status.reason or "rejected", hop=Hop.REGISTRY
                    )
                if remaining <= 0:
                    raise ZholError(
                        "RegistrationPending",
                        f"registration {request_id} still pending after {timeout_s:g} s",
                        hop=Hop.REGISTRY,
                    )
            await asyncio.sleep(max(0.0, min(interval, deadline - loop.time())))
            interval = min(interval * 2, poll_interval_s)


async def add_checkpoint(
    address: str,
    note: bytes,
    old_size: int,
    proof: tuple[bytes, ...],
    timeout_s: float = 10.0,
) -> str:
    """Submit a signed checkpoint to the registry's witness; returns its cosignature line.

    Refusals come back as the witness's catalogued codes (InconsistentCheckpoint,
    CheckpointOldSizeMismatch, InvalidSignature, NotConfigured, InvalidRequest).
    """
    request = registry_pb2.AddCheckpointRequest(
        checkpoint=note, old_size=old_size, consistency_proof=list(proof)
    )
    async with _channel(address) as channel:
        stub = registry_pb2_grpc.RegistryStub(channel)
        try:
            response = await stub.AddCheckpoint(request, timeout=timeout_s)
        except grpc.RpcError as exc:
            raise _from_rpc(exc, address) from None
    return str(response.cosignature)
