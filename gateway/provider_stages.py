"""Stages of the provider side: from a peer's sealed request to our sealed, logged answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypedDict, Unpack

from zhol.bus.v1 import bus_pb2
from zhol.core.clock import Clock
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId
from zhol.core.iin import Iin
from zhol.core.metadata import (
    CLIENT_KEY,
    DATA_SUBJECT_KEY,
    MESSAGE_ID_KEY,
    PURPOSE_KEY,
    USER_ID_KEY,
)
from zhol.gateway.confsource import ConfSource, now_datetime
from zhol.gateway.exchange import (
    ExchangeParties,
    LoggedMessage,
    ProviderExchange,
    log_record,
    seal_from_pb,
)
from zhol.gateway.ispins import cert_pem_sha256
from zhol.gateway.localconf import IsEndpoint, LocalConfStore
from zhol.gateway.messagelog import MessageLog
from zhol.gateway.replay import ReplayGuard, check_clock_skew
from zhol.gateway.subjects import check_declared, subject_reader
from zhol.gateway.verify import open_verified
from zhol.security.globalconf import gateway_to_pb, service_from_pb, subsystem_from_pb
from zhol.security.sealing import REQUEST_TYPE, RESPONSE_TYPE, Seal, Signer, seal


@dataclass(frozen=True, slots=True)
class IsAnswer:
    """What the provider IS answered: a body, or a gRPC status of its own."""

    body: bytes
    status_code: int
    status_message: str


# Invoke the IS: (endpoint, grpc path, body, metadata, timeout seconds) -> its answer. A
# call that got no answer of the IS's own raises a catalogued error (ServiceFailed, or
# Timeout): gateway/transport.py, IsChannels.invoke.
InvokeFn = Callable[
    [IsEndpoint, str, bytes, tuple[tuple[str, str], ...], float | None], Awaitable[IsAnswer]
]


class LoadConfiguration:
    """The configuration in force; and the gateway's own evidence in order (``gate``
    raises TimestampingFailed while checkpoints go untimestamped too long)."""

    def __init__(self, source: ConfSource, gate: Callable[[], None] | None = None) -> None:
        self._source = source
        self._gate = gate

    async def __call__(self, x: ProviderExchange) -> None:
        x.trusted = self._source.current()
        if self._gate is not None:
            self._gate()


class AuthenticatePeer:
    """The TLS peer's certificate must be registered for an unrevoked gateway: its current
    auth certificate, or a previous one the configuration still accepts while a renewal
    changes over (GlobalConf.gateway_by_auth_hash)."""

    def __init__(self) -> None:
        self._hashes: dict[bytes, bytes] = {}

    def _cert_hash(self, pem: bytes) -> bytes:
        digest = self._hashes.get(pem)
        if digest is None:
            digest = cert_pem_sha256(pem)
            if len(self._hashes) > 4096:
                self._hashes.clear()
            self._hashes[pem] = digest
        return digest

    async def __call__(self, x: ProviderExchange) -> None:
        assert x.trusted is not None
        if not x.peer_cert_pem:
            raise ZholError("UntrustedPeer", "no TLS client certificate")
        digest = self._cert_hash(x.peer_cert_pem)
        if digest in x.trusted.conf.revoked_cert_sha256:
            raise ZholError("RevokedCertificate", "peer certificate was revoked")
        entry = x.trusted.conf.gateway_by_auth_hash(digest)
        if entry is None:
            raise ZholError("UntrustedPeer", "peer certificate not registered for any gateway")
        x.peer = entry.id


class LimitRequestSize:
    async def __call__(self, x: ProviderExchange) -> None:
        assert x.trusted is not None
        if len(x.message.body) > x.trusted.conf.tunables.max_message_bytes:
            raise ZholError("MessageTooLarge", f"request of {len(x.message.body)} bytes")


def open_from_peer(
    x: ProviderExchange,
    payload_type: str,
    kind: bus_pb2.MessageKind,
    what: str,
    clock: Clock,
    parse: Callable[[bus_pb2.MessageHeader], None],
) -> bus_pb2.MessageHeader:
    """The peer's message opened: its signature verified, of ``kind``, its client (and
    what ``parse`` reads) well-formed, signed by the client's member and sent by a
    gateway that serves that client. Sets ``x.request``, its digest and ``x.client``."""
    assert x.trusted is not None and x.peer is not None
    x.request = seal_from_pb(x.message)
    signer, header, x.request_digest = open_verified(
        x.request, payload_type, x.trusted, now_datetime(clock)
    )
    if header.kind != kind or not header.message_id:
        raise ZholError("InvalidMessage", f"not a {what}")
    try:
        x.client = subsystem_from_pb(header.client)
        parse(header)
        if header.data_subject:
            Iin.parse(header.data_subject)
    except ZholError:
        raise ZholError("InvalidMessage", "malformed identifier in the header") from None
    if signer != x.client.member:
        raise ZholError("SignerMismatch", f"{what} not signed by the client's member")
    if x.peer.member != x.client.member or not x.trusted.conf.serves(x.peer, x.client):
        raise ZholError("UntrustedPeer", "the sending gateway does not serve this client")
    return header


class VerifyRequest:
    """Signature by the client's member, sent by a gateway that serves that client."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    async def __call__(self, x: ProviderExchange) -> None:
        def parse(header: bus_pb2.MessageHeader) -> None:
            x.service = service_from_pb(header.service)

        x.header = open_from_peer(
            x, REQUEST_TYPE, bus_pb2.MESSAGE_KIND_REQUEST, "request", self._clock, parse
        )


class CheckFreshness:
    """Issued-at within the clock skew, and a message id never seen before."""

    def __init__(self, clock: Clock, replay: ReplayGuard) -> None:
        self._clock = clock
        self._replay = replay

    async def __call__(self, x: ProviderExchange) -> None:
        assert x.header is not None and x.trusted is not None
        now = self._clock.now_ms()
        skew_ms = x.trusted.conf.tunables.clock_skew_s * 1000
        check_clock_skew(x.header.issued_at_unix_ms, now, skew_ms)
        self._replay.check_and_remember(x.header.message_id, now, skew_ms)
        if x.header.deadline_unix_ms and x.header.deadline_unix_ms <= now:
            raise ZholError("Timeout", "the request's deadline has passed")


class Authorize:
    """The service must be ours and the client granted it locally (deny by default)."""

    def __init__(self, gateway_id: GatewayId, local: LocalConfStore) -> None:
        self._gateway_id = gateway_id
        self._local = local

    async def __call__(self, x: ProviderExchange) -> None:
        assert x.service is not None and x.client is not None and x.trusted is not None
        if not x.trusted.conf.serves(self._gateway_id, x.service.subsystem):
            raise ZholError("UnknownService", f"{x.service.subsystem} is not served here")
        local = self._local.current()
        exposed = local.exposed(x.service)
        if exposed.methods and x.service.method not in exposed.methods:
            raise ZholError("UnknownService", f"{x.service} is not exposed")
        local.authorize(x.client, x.service)
        x.is_endpoint = exposed.endpoint


class CheckDataSubject:
    """The declared data subject must be whom the request names (gateway/subjects.py),
    for services registered with descriptors; checked before anything is logged as
    read or the IS sees the request. Services registered without descriptors are
    taken at their caller's word (docs/protocol.md)."""

    async def __call__(self, x: ProviderExchange) -> None:
        assert x.trusted is not None and x.service is not None and x.header is not None
        service = x.service
        descriptors = x.trusted.conf.descriptor_sets.get((service.subsystem, service.grpc_service))
        if descriptors is None:
            return
        reader = subject_reader(descriptors, service.grpc_service, service.method)
        check_declared(reader.subjects(x.message.body), x.header.data_subject)


def is_metadata(x: ProviderExchange) -> tuple[tuple[str, str], ...]:
    """What our IS is told of a verified message: who asks, acting as whom, why, about
    whom, and the exchange's id."""
    assert x.header is not None
    h = x.header
    return (
        (CLIENT_KEY, str(x.client)),
        (USER_ID_KEY, h.user_id),
        (PURPOSE_KEY, h.purpose),
        (DATA_SUBJECT_KEY, h.data_subject),
        (MESSAGE_ID_KEY, h.message_id),
    )


class InvokeProvider:
    """Call our IS with the raw bytes; its own answer (even an error status) is signed."""

    DEADLINE_MARGIN_MS = 20

    def __init__(self, invoke: InvokeFn, clock: Clock) -> None:
        self._invoke = invoke
        self._clock = clock

    async def __call__(self, x: ProviderExchange) -> None:
        assert x.header is not None and x.service is not None and x.is_endpoint is not None
        h = x.header
        timeout = None
        if h.deadline_unix_ms:
            remaining = h.deadline_unix_ms - self._clock.now_ms() - self.DEADLINE_MARGIN_MS
            if remaining <= 0:
                raise ZholError("Timeout", "no time left to invoke the service")
            timeout = remaining / 1000
        answer = await self._invoke(
            x.is_endpoint, x.service.grpc_path, x.message.body, is_metadata(x), timeout
        )
        x.response_body = answer.body
        x.status_code = answer.status_code
        x.status_message = answer.status_message
        assert x.trusted is not None
        if len(x.response_body) > x.trusted.conf.tunables.max_message_bytes:
            raise ZholError("MessageTooLarge", "the provider's answer is too large")


class AnswerFields(TypedDict, total=False):
    """What an answer's header carries beyond the request's identity fields."""

    service: bus_pb2.ServiceId
    status_code: int
    status_message: str
    topic: str
    event_id: str
    recipient: bus_pb2.SubsystemId


def seal_answer(
    signer: Signer,
    gateway_pb: bus_pb2.GatewayId,
    issued_at_ms: int,
    request: bus_pb2.MessageHeader,
    request_digest: bytes,
    body: bytes,
    **fields: Unpack[AnswerFields],
) -> tuple[Seal, bytes]:
    """Our signed answer to a verified request: its identity fields copied, bound to the
    request's digest, plus ``fields`` (a call's service and status, an event's topic...)."""
    header = bus_pb2.MessageHeader(
        message_id=request.message_id,
        protocol_version=1,
        kind=bus_pb2.MESSAGE_KIND_RESPONSE,
        client=request.client,
        user_id=request.user_id,
        purpose=request.purpose,
        data_subject=request.data_subject,
        issued_at_unix_ms=issued_at_ms,
        request_digest=request_digest,
        sender_gateway=gateway_pb,
        **fields,
    )
    return seal(signer, RESPONSE_TYPE, header.SerializeToString(), body)


class SealResponse:
    """Our signed answer: the IS's body and status, for the service called."""

    def __init__(self, signer: Signer, gateway_id: GatewayId, clock: Clock) -> None:
        self._signer = signer
        self._gateway_pb = gateway_to_pb(gateway_id)
        self._clock = clock

    def answer(self, x: ProviderExchange) -> tuple[bytes, AnswerFields]:
        """The answer's body and the header fields of its own."""
        assert x.header is not None
        fields: AnswerFields = {
            "service": x.header.service,
            "status_code": x.status_code,
            "status_message": x.status_message,
        }
        return x.response_body, fields

    async def __call__(self, x: ProviderExchange) -> None:
        assert x.header is not None
        body, fields = self.answer(x)
        x.response_issued_at_ms = self._clock.now_ms()
        x.response, x.response_digest = seal_answer(
            self._signer, self._gateway_pb, x.response_issued_at_ms, x.header,
            x.request_digest, body, **fields,
        )  # fmt: skip


def provider_parties(x: ProviderExchange, service: object) -> ExchangeParties:
    assert x.header is not None
    h = x.header
    return ExchangeParties(
        message_id=h.message_id,
        client=x.client,
        service=service,
        data_subject=h.data_subject,
        user_id=h.user_id,
        purpose=h.purpose,
    )


async def log_incoming(
    log: MessageLog, x: ProviderExchange, service: object, kind: str = "request"
) -> None:
    """The peer's verified message, committed before our IS sees it: nothing reaches
    the IS that this gateway's log does not hold (LoggingFailed otherwise)."""
    assert x.header is not None and x.request is not None
    logged = LoggedMessage(x.request, x.request_digest, x.header.issued_at_unix_ms)
    await log.append((log_record(provider_parties(x, service), kind, "in", x.peer, logged),))


async def log_answer(log: MessageLog, x: ProviderExchange, service: object) -> None:
    """Our sealed answer, committed before it leaves."""
    assert x.response is not None
    logged = LoggedMessage(x.response, x.response_digest, x.response_issued_at_ms, x.status_code)
    await log.append((log_record(provider_parties(x, service), "response", "out", x.peer, logged),))


class LogRequest:
    def __init__(self, log: MessageLog) -> None:
        self._log = log

    async def __call__(self, x: ProviderExchange) -> None:
        await log_incoming(self._log, x, x.service)


class LogResponse:
    def __init__(self, log: MessageLog) -> None:
        self._log = log

    async def __call__(self, x: ProviderExchange) -> None:
        await log_answer(self._log, x, x.service)
