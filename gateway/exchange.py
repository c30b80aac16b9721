"""The state of one exchange as it moves through a pipeline of stages.

Each stage reads what earlier stages filled in and adds its own part; the
lists of stages (gateway/pipeline.py) fix the order. Values, not behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass

from zhol.bus.v1 import bus_pb2
from zhol.core.ids import GatewayId, ServiceId, SubsystemId
from zhol.gateway.confsource import TrustedConf
from zhol.gateway.localconf import IsEndpoint
from zhol.gateway.messagelog import LogRecord
from zhol.security.globalconf import GatewayEntry
from zhol.security.sealing import Seal


@dataclass(slots=True)
class ConsumerExchange:
    """A call from our IS, on its way to a provider and back."""

    grpc_path: str
    body: bytes
    metadata: dict[str, str]
    deadline_ms: int | None
    # The IS's TLS certificate (PEM) under mutual TLS, and the subsystems its pin allows
    # (None: any this gateway serves); see AuthenticateIsClient.
    peer_cert_pem: bytes = b""
    pinned_clients: frozenset[SubsystemId] | None = None
    trusted: TrustedConf | None = None
    client: SubsystemId | None = None
    user_id: str = ""
    purpose: str = ""
    data_subject: str = ""
    provider_hint: SubsystemId | None = None
    service: ServiceId | None = None
    targets: tuple[GatewayEntry, ...] = ()
    message_id: str = ""
    request: Seal | None = None
    request_digest: bytes = b""
    issued_at_ms: int = 0
    peer: GatewayId | None = None
    response: Seal | None = None
    response_header: bus_pb2.MessageHeader | None = None
    response_digest: bytes = b""


@dataclass(slots=True)
class ProviderExchange:
    """A sealed request from a peer gateway, on its way to our IS and back."""

    message: bus_pb2.SignedMessage
    peer_cert_pem: bytes
    trusted: TrustedConf | None = None
    peer: GatewayId | None = None
    request: Seal | None = None
    request_digest: bytes = b""
    header: bus_pb2.MessageHeader | None = None
    client: SubsystemId | None = None
    service: ServiceId | None = None
    is_endpoint: IsEndpoint | None = None
    response_body: bytes = b""
    status_code: int = 0
    status_message: str = ""
    response: Seal | None = None
    response_digest: bytes = b""
    response_issued_at_ms: int = 0
    # Event deliveries: the subscribing subsystem, and whether we already handed it over.
    recipient: SubsystemId | None = None
    duplicate: bool = False


def seal_to_pb(seal: Seal) -> bus_pb2.SignedMessage:
    return bus_pb2.SignedMessage(
        header=seal.header,
        body=seal.body,
        signature=seal.signature,
        signer_cert_sha256=seal.signer_cert_sha256,
        signer_cert_der=seal.signer_cert_der,
    )


def seal_from_pb(message: bus_pb2.SignedMessage) -> Seal:
    return Seal(
        header=message.header,
        body=message.body,
        signature=message.signature,
        signer_cert_sha256=message.signer_cert_sha256,
        signer_cert_der=message.signer_cert_der,
    )


@dataclass(frozen=True, slots=True)
class LoggedMessage:
    """One side of an exchange as the log keeps it."""

    seal: Seal
    signed_digest: bytes
    issued_at_ms: int
    status_code: int = 0


@dataclass(frozen=True, slots=True)
class ExchangeParties:
    """Who and what an exchange is about, as every record of it states."""

    message_id: str
    client: object
    service: object
    data_subject: str
    user_id: str
    purpose: str


def log_record(
    parties: ExchangeParties, kind: str, direction: str, peer: object, m: LoggedMessage
) -> LogRecord:
    """One record of an exchange, as seen from this gateway.

    A request is logged before it is forwarded (or handed to our IS) and its answer
    after it is verified (or sealed), each in its own commit: the log holds every
    message that left or reached this gateway, whatever happened to the exchange
    after it (docs/protocol.md, 'The message log').
    """
    return LogRecord(
        message_id=parties.message_id,
        kind=kind,
        direction=direction,
        client=str(parties.client),
        service=str(parties.service),
        data_subject=parties.data_subject,
        user_id=parties.user_id,
        purpose=parties.purpose,
        issued_at_ms=m.issued_at_ms,
        peer="" if peer is None else str(peer),
        status_code=m.status_code,
        header=m.seal.header,
        body=m.seal.body,
        signature=m.seal.signature,
        signer_cert_sha256=m.seal.signer_cert_sha256,
        signer_cert_der=m.seal.signer_cert_der,
        signed_digest=m.signed_digest,
    )
