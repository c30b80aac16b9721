"""Stages of the consumer side: from our IS's call to a verified, logged answer."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from functools import lru_cache

import grpc

from zhol.bus.v1 import bus_pb2
from zhol.core.clock import Clock
from zhol.core.errors import Hop, ZholError
from zhol.core.grpcerr import error_from_rpc
from zhol.core.ids import GatewayId, ServiceId, SubsystemId, new_message_id, parse_grpc_path
from zhol.core.iin import Iin
from zhol.core.metadata import (
    CLIENT_KEY,
    DATA_SUBJECT_KEY,
    PROVIDER_KEY,
    PURPOSE_KEY,
    USER_ID_KEY,
)
from zhol.gateway.confsource import ConfSource, now_datetime
from zhol.gateway.exchange import (
    ConsumerExchange,
    ExchangeParties,
    LoggedMessage,
    log_record,
    seal_from_pb,
    seal_to_pb,
)
from zhol.gateway.ispins import IS_TLS_MODES, IsPin, cert_pem_sha256
from zhol.gateway.messagelog import MessageLog
from zhol.gateway.replay import check_clock_skew
from zhol.gateway.subjects import bind_subject, subject_reader
from zhol.gateway.verify import open_verified
from zhol.security.globalconf import gateway_to_pb, service_to_pb, subsystem_to_pb
from zhol.security.sealing import REQUEST_TYPE, RESPONSE_TYPE, Signer, seal

# What forwarding needs: send a sealed request to a peer address, get the sealed answer.
# A bus error the peer reports arrives as a remote ZholError or as an RpcError whose
# trailers carry it; any other RpcError is a transport failure.
SendFn = Callable[
    [str, GatewayId, bus_pb2.SignedMessage, float | None], Awaitable[bus_pb2.SignedMessage]
]


@lru_cache(maxsize=1024)
def _client_pb(client: SubsystemId) -> bus_pb2.SubsystemId:
    """The header form of a client, built once per client. Read-only: never mutate it."""
    return subsystem_to_pb(client)


@lru_cache(maxsize=1024)
def _service_pb(service: ServiceId) -> bus_pb2.ServiceId:
    """The header form of a service, built once per service. Read-only: never mutate it."""
    return service_to_pb(service)


class AuthenticateIsClient:
    """With mutual TLS, the IS's certificate itself must be pinned (gateway/ispins.py).

    The TLS layer trusts the pinned certificates as roots, so it admits any
    certificate that chains to one; here only the exact SHA-256 of a pinned
    certificate passes, and its pin may restrict which subsystems the IS may act
    as (checked by ReadCallMetadata). With "plaintext" (loopback development) or
    "tls" the IS presents no certificate and there is nothing to check here.
    """

    _MAX_CACHED = 4096

    def __init__(self, is_tls: str, pins: Mapping[bytes, IsPin]) -> None:
        if is_tls not in IS_TLS_MODES:
            raise ValueError(f"is_tls must be one of {IS_TLS_MODES}, not {is_tls!r}")
        self._required = is_tls == "mtls"
        self._pins = dict(pins)
        self._hashes: dict[bytes, bytes] = {}

    def _cert_hash(self, pem: bytes) -> bytes:
        digest = self._hashes.get(pem)
        if digest is None:
            try:
                digest = cert_pem_sha256(pem)
            except ValueError:
                raise ZholError("UnknownClient", "unreadable IS client certificate") from None
            if len(self._hashes) >= self._MAX_CACHED:
                self._hashes.clear()
            self._hashes[pem] = digest
        return digest

    async def __call__(self, x: ConsumerExchange) -> None:
        if not self._required:
            return
        if not x.peer_cert_pem:
            raise ZholError("UnknownClient", "no IS client certificate")
        pin = self._pins.get(self._cert_hash(x.peer_cert_pem))
        if pin is None:
            raise ZholError("UnknownClient", "IS client certificate is not pinned")
        x.pinned_clients = pin.clients


class LoadConfiguration:
    """The configuration in force; and the gateway's own evidence in order (``gate``
    raises TimestampingFailed while checkpoints go untimestamped too long)."""

    def __init__(self, source: ConfSource, gate: Callable[[], None] | None = None) -> None:
        self._source = source
        self._gate = gate

    async def __call__(self, x: ConsumerExchange) -> None:
        x.trusted = self._source.current()
        if self._gate is not None:
            self._gate()


class ReadCallMetadata:
    """The zhol-* metadata contract: who calls, for whom, why."""

    def __init__(self, gateway_id: GatewayId) -> None:
        self._gateway_id = gateway_id

    async def __call__(self, x: ConsumerExchange) -> None:
        md = x.metadata
        for key in (CLIENT_KEY, USER_ID_KEY, PURPOSE_KEY):
            if not md.get(key, "").strip():
                raise ZholError("MissingHeader", f"metadata {key} is required")
        x.client = SubsystemId.parse(md[CLIENT_KEY].strip())
        if x.pinned_clients is not None and x.client not in x.pinned_clients:
            raise ZholError("UnknownClient", f"this IS certificate may not act as {x.client}")
        x.user_id = md[USER_ID_KEY].strip()
        x.purpose = md[PURPOSE_KEY].strip()
        if len(x.user_id) > 256 or len(x.purpose) > 1024:
            raise ZholError("InvalidRequest", "zhol-user-id or zhol-purpose too long")
        subject = md.get(DATA_SUBJECT_KEY, "").strip()
        x.data_subject = Iin.parse(subject).value if subject else ""
        provider = md.get(PROVIDER_KEY, "").strip()
        x.provider_hint = SubsystemId.parse(provider) if provider else None
        assert x.trusted is not None
        if x.client.member != self._gateway_id.member or not x.trusted.conf.serves(
            self._gateway_id, x.client
        ):
            raise ZholError("UnknownClient", f"{x.client} is not served by this gateway")


class LimitRequestSize:
    async def __call__(self, x: ConsumerExchange) -> None:
        assert x.trusted is not None
        if len(x.body) > x.trusted.conf.tunables.max_message_bytes:
            raise ZholError("MessageTooLarge", f"request of {len(x.body)} bytes")


class ResolveProvider:
    async def __call__(self, x: ConsumerExchange) -> None:
        assert x.trusted is not None
        grpc_service, method = parse_grpc_path(x.grpc_path)
        x.service = x.trusted.conf.resolve_service(grpc_service, method, x.provider_hint)
        x.targets = x.trusted.conf.gateways_for(x.service.subsystem)
        if not x.targets:
            raise ZholError("NetworkError", f"no gateway serves {x.service.subsystem}")


class BindDataSubject:
    """For a service registered with descriptors, the data subject is read from the
    request (gateway/subjects.py): filled in when the IS declared none, refused when the
    IS declared someone the request does not name, before anything is signed or logged."""

    async def __call__(self, x: ConsumerExchange) -> None:
        assert x.trusted is not None and x.service is not None
        service = x.service
        descriptors = x.trusted.conf.descriptor_sets.get((service.subsystem, service.grpc_service))
        if descriptors is None:
            return
        try:
            reader = subject_reader(descriptors, service.grpc_service, service.method)
            x.data_subject = bind_subject(reader.subjects(x.body), x.data_subject)
        except ZholError as err:
            raise err.at(Hop.CLIENT) from None  # the IS's request, not this gateway, is wrong


class SealRequest:
    def __init__(self, signer: Signer, gateway_id: GatewayId, clock: Clock) -> None:
        self._signer = signer
        self._gateway_pb = gateway_to_pb(gateway_id)
        self._clock = clock

    async def __call__(self, x: ConsumerExchange) -> None:
        assert x.client is not None and x.service is not None
        x.issued_at_ms = self._clock.now_ms()
        x.message_id = new_message_id(x.issued_at_ms, os.urandom(10))
        header = bus_pb2.MessageHeader(
            message_id=x.message_id,
            protocol_version=1,
            kind=bus_pb2.MESSAGE_KIND_REQUEST,
            client=_client_pb(x.client),  # copied into the header
            service=_service_pb(x.service),
            user_id=x.user_id,
            purpose=x.purpose,
            data_subject=x.data_subject,
            issued_at_unix_ms=x.issued_at_ms,
            deadline_unix_ms=x.deadline_ms or 0,
            sender_gateway=self._gateway_pb,
        )
        x.request, x.request_digest = seal(
            self._signer, REQUEST_TYPE, header.SerializeToString(), x.body
        )


class Forward:
    """Send to the provider's gateways in failover order; only transport failures fail over.

    A gateway that could not be reached is tried last for DOWN_MS, so calls do not
    wait on it first every time; it is still tried when no other gateway answers.
    Errors a provider gateway reports (a zhol-error trailer) never fail over.
    """

    DOWN_MS = 10_000

    def __init__(self, send: SendFn, clock: Clock) -> None:
        self._send = send
        self._clock = clock
        self._down_until: dict[GatewayId, int] = {}

    async def __call__(self, x: ConsumerExchange) -> None:
        assert x.request is not None
        message = seal_to_pb(x.request)
        last_failure = ""
        now = self._clock.now_ms()
        targets = sorted(x.targets, key=lambda t: self._down_until.get(t.id, 0) > now)
        for target in targets:
            timeout = None
            if x.deadline_ms:
                remaining = x.deadline_ms - self._clock.now_ms()
                if remaining <= 0:
                    raise ZholError("Timeout", "deadline passed before forwarding")
                timeout = remaining / 1000
            try:
                answer = await self._send(target.address, target.id, message, timeout)
            except ZholError:  # the provider gateway reported it: no failover
                self._down_until.pop(target.id, None)
                raise
            except grpc.RpcError as exc:
                remote = error_from_rpc(exc)
                if remote is not None:
                    self._down_until.pop(target.id, None)  # it answered
                    raise remote from None
                code = exc.code() if hasattr(exc, "code") else None
                if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise ZholError("Timeout", "provider gateway did not answer in time") from None
                last_failure = f"{target.id}: {code.name if code else 'error'}"
                self._down_until[target.id] = self._clock.now_ms() + self.DOWN_MS
                continue
            self._down_until.pop(target.id, None)
            x.peer = target.id
            x.response = seal_from_pb(answer)
            return
        raise ZholError("NetworkError", f"no provider gateway reachable ({last_failure})")


class VerifyResponse:
    """The answer must be signed by the provider's member and bound to our request."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    async def __call__(self, x: ConsumerExchange) -> None:
        assert x.response is not None and x.trusted is not None and x.service is not None
        try:
            signer, header, digest = open_verified(
                x.response, RESPONSE_TYPE, x.trusted, now_datetime(self._clock)
            )
        except ZholError as err:
            raise err.at(Hop.CLIENT_PROXY) from None
        if signer != x.service.subsystem.member:
            raise ZholError(
                "SignerMismatch", "response not signed by the provider", hop=Hop.CLIENT_PROXY
            )
        if (
            header.kind != bus_pb2.MESSAGE_KIND_RESPONSE
            or header.message_id != x.message_id
            or header.request_digest != x.request_digest
            or header.client != _client_pb(x.client)
            or header.service != _service_pb(x.service)
        ):
            raise ZholError("ResponseMismatch")
        skew_ms = x.trusted.conf.tunables.clock_skew_s * 1000
        try:
            check_clock_skew(header.issued_at_unix_ms, self._clock.now_ms(), skew_ms)
        except ZholError as err:
            raise err.at(Hop.CLIENT_PROXY) from None
        x.response_header = header
        x.response_digest = digest


def _parties(x: ConsumerExchange) -> ExchangeParties:
    return ExchangeParties(
        message_id=x.message_id,
        client=x.client,
        service=x.service,
        data_subject=x.data_subject,
        user_id=x.user_id,
        purpose=x.purpose,
    )


class LogRequest:
    """The sealed request is committed to our log before it leaves: a gateway whose log
    cannot be written forwards nothing (LoggingFailed), and every request a provider
    could act on is on record here. It names no peer: failover may send it to more
    than one of the provider's gateways; the response record names the one that
    answered."""

    def __init__(self, log: MessageLog) -> None:
        self._log = log

    async def __call__(self, x: ConsumerExchange) -> None:
        assert x.request is not None
        logged = LoggedMessage(x.request, x.request_digest, x.issued_at_ms)
        await self._log.append((log_record(_parties(x), "request", "out", None, logged),))


class LogResponse:
    """The verified response is committed to our log before it is released to our IS."""

    def __init__(self, log: MessageLog) -> None:
        self._log = log

    async def __call__(self, x: ConsumerExchange) -> None:
        assert x.response is not None and x.response_header is not None
        h = x.response_header
        logged = LoggedMessage(x.response, x.response_digest, h.issued_at_unix_ms, h.status_code)
        await self._log.append((log_record(_parties(x), "response", "in", x.peer, logged),))
