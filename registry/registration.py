"""Registration of gateways and subsystems: submit, approve, reject, revoke.

A GATEWAY request carries the gateway's identifier and address, its member's
name, and two CSRs (proof of possession is the CSR's own signature): one for
the gateway's TLS authentication certificate (CN = gateway id, profile
``auth``) and one for its member's signing certificate (CN = member id,
profile ``sign``). A SUBSYSTEM request names a subsystem, the registered
gateway that serves it, the gRPC services it offers and the event topics it
publishes (fully qualified event message names).

A SUBSYSTEM request must come from the member's own gateway (as in X-Road, where
the owner's security server submits and signs it): its body travels as the exact
bytes of a SubsystemRegistration, signed under PAE(REGISTRATION_TYPE, body) with
the named gateway's current member signing key. Before anything is believed or
recorded the registry checks, in order: a signature is there (MissingSignature);
the signer certificate chains to the federation CA as a signing certificate
(InvalidCertificate) and is not revoked (RevokedCertificate); the signature
verifies over those bytes (InvalidSignature); then, with the body parsed, its
issued-at is within the skew window (ClockSkew), the gateway is registered,
unrevoked and the subsystem member's (InvalidRequest, NotConfigured), and the
signer certificate is that gateway's current signing certificate
(SignerMismatch). Unsigned SUBSYSTEM requests are refused: fail closed.

A RENEWAL request asks new certificates for a registered gateway: new auth
and/or signing CSRs (proof of possession as for GATEWAY) inside the exact bytes
of a RenewalRegistration, signed under PAE(RENEWAL_TYPE, body) with the
gateway's current signing key, so only the registered, unrevoked gateway itself
can renew. The checks are those of a SUBSYSTEM request (MissingSignature,
InvalidCertificate, RevokedCertificate, InvalidSignature, ClockSkew,
NotConfigured, SignerMismatch), then the CSRs (InvalidCsr: none given, malformed,
unproven, or reusing the current key). On approval the new certificates become
the gateway's current ones; the replaced auth certificate stays accepted by
peers until it expires or the operator ends the overlap, the replaced signing
certificate stays valid (what it signed stays verifiable) but no longer counts
as current.

A GATEWAY or RENEWAL request must carry the gateway's log key (the Ed25519 key
that signs its checkpoints; security/logkey.py): the raw 32-byte public key with a
proof of possession, the key's signature over PAE(LOG_KEY_TYPE, gateway id, key).
No key (InvalidRequest: fail closed, a gateway without one has a log nobody can
verify or witness), a key of another length (InvalidRequest), a key without its
proof (MissingSignature), a proof that does not verify (InvalidSignature, e.g. made
for another gateway or by another key), a proof without a key (InvalidRequest) or a
key any gateway holds or held (AlreadyRegistered) is refused. A RENEWAL's log key
travels inside its signed body, so only the gateway itself can replace it; every
renewal brings a new one, which is how a gateway registered before log keys (and
kept in the database without one) gains one. A request stored before the rule (a
pending GATEWAY request without a key) is refused on approval with InvalidRequest.

A SUBSYSTEM request's service may carry its contract, a FileDescriptorSet
(core/contracts.py): it must fit max_contract_bytes (ContractTooLarge), build
(InvalidDescriptorSet) and declare the service and each listed method
(ContractMismatch; no list: the contract's methods). With the published ones it must
fit max_contracts_total_bytes (ContractTooLarge) and not declare a method with other
types than another provider of the same service did (DuplicateService, as for a
service listed twice); checked at submission and again in the approving transaction.

Everything is validated when the request is submitted (InvalidIdentifier,
InvalidCsr, InvalidRequest, AlreadyRegistered, NotConfigured and the checks
above), before anything is stored; a request that fails validation leaves no
trace. Approval issues the
certificates and writes the federation entries in one transaction; a rejection
carries a reason that the requester reads through GetRegistrationStatus.

All errors raised here carry the hop Server.Registry.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from google.protobuf.message import DecodeError

from zhol.core.contracts import ServiceContract, clashing_methods, read_contract, registered_methods
from zhol.core.errors import ErrorName, Hop, ZholError
from zhol.core.ids import GatewayId, MemberId, ServiceId, SubsystemId, parse_topic
from zhol.registry.model import (
    Gateway,
    Member,
    Registration,
    RegistrationKind,
    RegistrationState,
    Service,
    Topic,
)
from zhol.registry.store import Store
from zhol.registry.v1 import registry_pb2
from zhol.security.ca import CertificateAuthority, CertProfile, issue_certificate
from zhol.security.globalconf import gateway_from_pb, subsystem_from_pb
from zhol.security.logkey import verify_log_key_proof
from zhol.security.sealing import REGISTRATION_TYPE, RENEWAL_TYPE, pae, verify_bytes
from zhol.security.validation import CertificateValidator, cert_sha256

MAX_CSR_BYTES = 16 * 1024
MAX_NAME_CHARS = 200
MAX_REASON_CHARS = 1000
MAX_SERVICES = 256
MAX_TOPICS = 256
# Defaults of the registry settings bounding contracts (registry/settings.py): one
# service's FileDescriptorSet, and all of them together in the global configuration.
MAX_CONTRACT_BYTES = 1024 * 1024
MAX_CONTRACTS_TOTAL_BYTES = 16 * 1024 * 1024
# How far a SUBSYSTEM request's issued-at may be from the registry's clock.
REGISTRATION_SKEW_MS = 5 * 60 * 1000
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,252}))$")

_KIND_FROM_PB = {
    registry_pb2.REGISTRATION_KIND_GATEWAY: RegistrationKind.GATEWAY,
    registry_pb2.REGISTRATION_KIND_SUBSYSTEM: RegistrationKind.SUBSYSTEM,
    registry_pb2.REGISTRATION_KIND_RENEWAL: RegistrationKind.RENEWAL,
}
# Requests a registered gateway signs with its current signing key: the body's payload type.
_SIGNED_KINDS = {
    registry_pb2.REGISTRATION_KIND_SUBSYSTEM: REGISTRATION_TYPE,
    registry_pb2.REGISTRATION_KIND_RENEWAL: RENEWAL_TYPE,
}
_STATE_TO_PB: dict[RegistrationState, registry_pb2.RegistrationState] = {
    RegistrationState.PENDING: registry_pb2.REGISTRATION_STATE_PENDING,
    RegistrationState.APPROVED: registry_pb2.REGISTRATION_STATE_APPROVED,
    RegistrationState.REJECTED: registry_pb2.REGISTRATION_STATE_REJECTED,
}


def _err(code: ErrorName, detail: str) -> ZholError:
    return ZholError(code, detail, hop=Hop.REGISTRY)


@contextmanager
def _at_registry() -> Iterator[None]:
    """Attribute catalogued errors raised by shared code (ids, CA) to the registry."""
    try:
        yield
    except ZholError as err:
        if err.hop is Hop.REGISTRY:
            raise
        raise err.at(Hop.REGISTRY) from None


def datetime_from_ms(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """A RegistrationRequest after validation of its shape and identifiers."""

    kind: RegistrationKind
    gateway: GatewayId
    gateway_address: str
    member_name: str
    auth_csr_pem: bytes
    sign_csr_pem: bytes
    subsystem: SubsystemId | None
    services: tuple[Service, ...]
    topics: tuple[Topic, ...] = ()
    issued_at_ms: int = 0  # SUBSYSTEM, RENEWAL: when the gateway signed it
    log_public_key: bytes = b""  # GATEWAY, RENEWAL: proven (raw Ed25519); SUBSYSTEM: b""


def parse_registration_request(
    request: registry_pb2.RegistrationRequest,
    instance: str,
    max_contract_bytes: int = MAX_CONTRACT_BYTES,
) -> ParsedRequest:
    """Validate a request's shape and identifiers (not yet its CSRs); raise or return it.

    A service's contract must be at most ``max_contract_bytes`` (ContractTooLarge),
    parse and build (InvalidDescriptorSet) and declare the service and every listed
    method (ContractMismatch); a service listed twice is a DuplicateService."""
    with _at_registry():
        kind = _KIND_FROM_PB.get(request.kind)
        if kind is None:
            raise _err("InvalidRequest", "registration kind is not set")
        if not request.HasField("gateway"):
            raise _err("InvalidIdentifier", "the gateway identifier is missing")
        gateway = gateway_from_pb(request.gateway)
        if gateway.member.instance != instance:
            raise _err("InvalidIdentifier", f"gateway {gateway} is not in instance {instance}")
        if kind is RegistrationKind.GATEWAY:
            return _parse_gateway_request(request, gateway)
        if kind is RegistrationKind.RENEWAL:
            return _parse_renewal_request(request, gateway)
        return _parse_subsystem_request(request, gateway, max_contract_bytes)


def _parse_gateway_request(
    request: registry_pb2.RegistrationRequest, gateway: GatewayId
) -> ParsedRequest:
    if request.HasField("subsystem") or request.services or request.topics:
        raise _err("InvalidRequest", "a GATEWAY request carries no subsystem, services or topics")
    if (
        request.subsystem_registration
        or request.renewal_registration
        or request.signature
        or request.signer_cert_der
    ):
        raise _err("InvalidRequest", "a GATEWAY request is proven by its CSRs, not signed")
    address = _check_address(request.gateway_address)
    name = request.member_name.strip()
    if len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise _err("InvalidRequest", "member name too long or not printable")
    _check_csr_sizes(request.auth_csr_pem, request.sign_csr_pem, both=True)
    log_key = _proven_log_key(gateway, request.log_public_key, request.log_key_proof, "GATEWAY")
    return ParsedRequest(
        kind=RegistrationKind.GATEWAY,
        gateway=gateway,
        gateway_address=address,
        member_name=name or gateway.member.member_code,
        auth_csr_pem=bytes(request.auth_csr_pem),
        sign_csr_pem=bytes(request.sign_csr_pem),
        subsystem=None,
        services=(),
        log_public_key=log_key,
    )


def _proven_log_key(gateway: GatewayId, public_key: bytes, proof: bytes, kind: str) -> bytes:
    """The log key, which must come with a valid proof of possession; or raise."""
    if not public_key:
        if proof:
            raise _err("InvalidRequest", "a log key proof without a log key")
        # Fail closed: a gateway without a log key keeps a log nobody can verify.
        raise _err("InvalidRequest", f"a {kind} request must carry a log key and its proof")
    with _at_registry():
        verify_log_key_proof(gateway, bytes(public_key), bytes(proof))
    return bytes(public_key)


def _signed_body(request: registry_pb2.RegistrationRequest) -> tuple[str, bytes]:
    """(payload type, exact body bytes) of a SUBSYSTEM or RENEWAL request."""
    payload_type = _SIGNED_KINDS[request.kind]
    if payload_type == RENEWAL_TYPE:
        return payload_type, bytes(request.renewal_registration)
    return payload_type, bytes(request.subsystem_registration)


def _require_signature(request: registry_pb2.RegistrationRequest) -> None:
    """Fail closed: a signed kind of request without its signed body, signature or signer."""
    if not (_signed_body(request)[1] and request.signature and request.signer_cert_der):
        kind = _KIND_FROM_PB[request.kind].value
        raise _err("MissingSignature", f"a {kind} request must be signed by its gateway")


def _check_csr_sizes(auth_csr_pem: bytes, sign_csr_pem: bytes, *, both: bool) -> None:
    for label, pem in (("authentication", auth_csr_pem), ("signing", sign_csr_pem)):
        if not pem and both:
            raise _err("InvalidCsr", f"the {label} CSR is missing")
        if len(pem) > MAX_CSR_BYTES:
            raise _err("InvalidCsr", f"the {label} CSR is too large")


def _parse_renewal_request(
    request: registry_pb2.RegistrationRequest, gateway: GatewayId
) -> ParsedRequest:
    _require_signature(request)
    if (
        request.auth_csr_pem
        or request.sign_csr_pem
        or request.gateway_address
        or request.member_name
        or request.subsystem_registration
        or request.HasField("subsystem")
        or request.services
        or request.topics
        or request.log_public_key
        or request.log_key_proof
    ):
        # Only the signed bytes are believed: nothing may travel beside them.
        raise _err("InvalidRequest", "a RENEWAL request carries its keys only signed")
    try:
        body = registry_pb2.RenewalRegistration.FromString(request.renewal_registration)
    except DecodeError:
        raise _err("InvalidRequest", "renewal_registration does not parse") from None
    if not body.HasField("gateway") or gateway_from_pb(body.gateway) != gateway:
        raise _err("InvalidRequest", "the signed request names another gateway")
    if not body.auth_csr_pem and not body.sign_csr_pem and not body.log_public_key:
        raise _err("InvalidCsr", "a renewal carries at least one CSR or a log key")
    _check_csr_sizes(body.auth_csr_pem, body.sign_csr_pem, both=False)
    log_key = _proven_log_key(gateway, body.log_public_key, body.log_key_proof, "RENEWAL")
    return ParsedRequest(
        kind=RegistrationKind.RENEWAL,
        gateway=gateway,
        gateway_address="",
        member_name="",
        auth_csr_pem=bytes(body.auth_csr_pem),
        sign_csr_pem=bytes(body.sign_csr_pem),
        subsystem=None,
        services=(),
        issued_at_ms=body.issued_at_unix_ms,
        log_public_key=log_key,
    )


def _parse_subsystem_request(
    request: registry_pb2.RegistrationRequest, gateway: GatewayId, max_contract_bytes: int
) -> ParsedRequest:
    _require_signature(request)
    if (
        request.auth_csr_pem
        or request.sign_csr_pem
        or request.renewal_registration
        or request.log_public_key
        or request.log_key_proof
    ):
        raise _err("InvalidRequest", "a SUBSYSTEM request carries no CSRs or log key")
    if request.HasField("subsystem") or request.services or request.topics:
        # Only the signed bytes are believed: nothing may travel beside them.
        raise _err("InvalidRequest", "subsystem, services and topics travel only signed")
    try:
        body = registry_pb2.SubsystemRegistration.FromString(request.subsystem_registration)
    except DecodeError:
        raise _err("InvalidRequest", "subsystem_registration does not parse") from None
    if not body.HasField("gateway") or gateway_from_pb(body.gateway) != gateway:
        raise _err("InvalidRequest", "the signed request names another gateway")
    if not body.HasField("subsystem"):
        raise _err("InvalidIdentifier", "the subsystem identifier is missing")
    subsystem = subsystem_from_pb(body.subsystem)
    if subsystem.member != gateway.member:
        raise _err("InvalidRequest", f"gateway {gateway} does not belong to {subsystem.member}")
    if len(body.services) > MAX_SERVICES:
        raise _err("InvalidRequest", "too many services")
    services: list[Service] = []
    seen: set[str] = set()
    for service_pb in body.services:
        service = _parse_service(service_pb, subsystem, max_contract_bytes)
        if service.grpc_service in seen:
            raise _err("DuplicateService", f"service {service.grpc_service} listed twice")
        seen.add(service.grpc_service)
        services.append(service)
    if len(body.topics) > MAX_TOPICS:
        raise _err("InvalidRequest", "too many topics")
    topics: list[Topic] = []
    for topic_pb in body.topics:
        topic = _parse_topic(topic_pb, subsystem)
        if topic in topics:
            raise _err("InvalidRequest", f"topic {topic.topic} listed twice")
        topics.append(topic)
    return ParsedRequest(
        kind=RegistrationKind.SUBSYSTEM,
        gateway=gateway,
        gateway_address="",
        member_name="",
        auth_csr_pem=b"",
        sign_csr_pem=b"",
        subsystem=subsystem,
        services=tuple(services),
        topics=tuple(topics),
        issued_at_ms=body.issued_at_unix_ms,
    )


def _resubmission_key(request_bytes: bytes) -> tuple[bytes, bytes]:
    """What makes two signed requests the same: signer and body, not when it was signed.

    A gateway that retries re-signs with a new issued-at (and ECDSA signatures differ
    each time): the retry is the pending request, not a second one.
    """
    request = registry_pb2.RegistrationRequest.FromString(request_bytes)
    body: registry_pb2.SubsystemRegistration | registry_pb2.RenewalRegistration
    try:
        if request.kind == registry_pb2.REGISTRATION_KIND_RENEWAL:
            body = registry_pb2.RenewalRegistration.FromString(request.renewal_registration)
        else:
            body = registry_pb2.SubsystemRegistration.FromString(request.subsystem_registration)
    except DecodeError:
        return bytes(request.signer_cert_der), request_bytes
    body.ClearField("issued_at_unix_ms")
    return bytes(request.signer_cert_der), body.SerializeToString(deterministic=True)


def same_signed_request(a: bytes, b: bytes) -> bool:
    return a == b or _resubmission_key(a) == _resubmission_key(b)


@dataclass(frozen=True, slots=True)
class RegistrationSigner:
    """Who signed a SUBSYSTEM or RENEWAL request, once the signature has verified."""

    member: MemberId
    cert_sha256: bytes


def verify_registration_signature(
    request: registry_pb2.RegistrationRequest,
    validator: CertificateValidator,
    now: dt.datetime,
) -> RegistrationSigner:
    """Check the signer certificate and the signature over the exact body bytes; or raise.

    MissingSignature, InvalidCertificate (not a trusted signing certificate),
    RevokedCertificate, InvalidSignature. Nothing in the body is read here.
    """
    with _at_registry():
        _require_signature(request)
        cert_der = bytes(request.signer_cert_der)
        member, key = validator.verify_signing_cert(cert_der, now)
        verify_bytes(key, pae(*_signed_body(request)), bytes(request.signature))
        return RegistrationSigner(member, cert_sha256(cert_der))


def check_subsystem_authority(
    parsed: ParsedRequest,
    signer: RegistrationSigner,
    store: Store,
    now_ms: int,
    skew_ms: int = REGISTRATION_SKEW_MS,
) -> None:
    """The verified signer may register this subsystem on this gateway now; or raise.

    ClockSkew, SignerMismatch (another member, or not the named gateway's current
    signing certificate), InvalidRequest / NotConfigured (the gateway).
    """
    assert parsed.subsystem is not None
    if abs(parsed.issued_at_ms - now_ms) > skew_ms:
        raise _err("ClockSkew", f"issued-at is more than {skew_ms // 1000} s from the registry's")
    if signer.member != parsed.subsystem.member:
        raise _err("SignerMismatch", f"signed by {signer.member}, not {parsed.subsystem.member}")
    with _at_registry():
        gateway = store.check_serving_gateway(parsed.gateway, parsed.subsystem)
    if gateway.sign_cert_sha256 != signer.cert_sha256:
        raise _err("SignerMismatch", f"not the current signing certificate of {parsed.gateway}")


def check_renewal_authority(
    parsed: ParsedRequest,
    signer: RegistrationSigner,
    store: Store,
    now_ms: int,
    skew_ms: int = REGISTRATION_SKEW_MS,
) -> Gateway:
    """The verified signer is the named gateway's current signing certificate, now; or raise.

    ClockSkew, NotConfigured (not a registered, unrevoked gateway), SignerMismatch.
    Returns the gateway as registered.
    """
    if abs(parsed.issued_at_ms - now_ms) > skew_ms:
        raise _err("ClockSkew", f"issued-at is more than {skew_ms // 1000} s from the registry's")
    gateway = store.get_gateway(parsed.gateway)
    if gateway is None or gateway.revoked:
        raise _err("NotConfigured", f"gateway {parsed.gateway} is not registered and unrevoked")
    if signer.member != gateway.member or gateway.sign_cert_sha256 != signer.cert_sha256:
        raise _err("SignerMismatch", f"not the current signing certificate of {parsed.gateway}")
    return gateway


def _check_new_keys(parsed: ParsedRequest, gateway: Gateway) -> None:
    """A renewal brings new keys: a CSR for the key already certified is refused."""
    for csr_pem, cert_der, label in (
        (parsed.auth_csr_pem, gateway.auth_cert_der, "authentication"),
        (parsed.sign_csr_pem, gateway.sign_cert_der, "signing"),
    ):
        if csr_pem and _spki(x509.load_pem_x509_csr(csr_pem).public_key()) == _spki(
            x509.load_der_x509_certificate(cert_der).public_key()
        ):
            raise _err("InvalidCsr", f"the {label} CSR reuses the current key; use a new one")


def _spki(key: CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def not_after_ms(cert_der: bytes) -> int:
    """A certificate's expiry, in ms since the epoch."""
    cert = x509.load_der_x509_certificate(cert_der)
    return int(cert.not_valid_after_utc.timestamp() * 1000)


def _parse_topic(description: registry_pb2.TopicDescription, subsystem: SubsystemId) -> Topic:
    """A topic the subsystem publishes; the publisher, when given, must be the subsystem."""
    if description.HasField("publisher") and subsystem_from_pb(description.publisher) != subsystem:
        raise _err("InvalidRequest", "a topic's publisher must be the registered subsystem")
    return Topic(subsystem, parse_topic(description.topic))  # InvalidIdentifier


def _parse_service(
    description: registry_pb2.ServiceDescription, subsystem: SubsystemId, max_contract_bytes: int
) -> Service:
    """A service and its methods: the listed ones, checked against its contract when it
    has one; with a contract and no list, every method the contract declares."""
    if description.HasField("provider") and subsystem_from_pb(description.provider) != subsystem:
        raise _err("InvalidRequest", "a service's provider must be the registered subsystem")
    ServiceId.of(subsystem, description.grpc_service, "Any")  # InvalidIdentifier
    descriptor_set = bytes(description.descriptor_set)
    if len(descriptor_set) > max_contract_bytes:
        # Before parsing it: the limit also bounds the work a request can cause.
        raise _err(
            "ContractTooLarge",
            f"the contract of {description.grpc_service} has {len(descriptor_set)} bytes; "
            f"the registry takes at most {max_contract_bytes}",
        )
    listed = tuple(description.methods)
    if len(set(listed)) != len(listed):
        raise _err("InvalidRequest", f"service {description.grpc_service!r} repeats a method")
    if descriptor_set:
        contract = read_contract(descriptor_set, description.grpc_service)
        methods = registered_methods(contract, listed)
    elif not listed:
        raise _err("InvalidRequest", f"service {description.grpc_service!r} lists no methods")
    else:
        methods = listed
    for method in methods:
        ServiceId.of(subsystem, description.grpc_service, method)  # InvalidIdentifier
    return Service(subsystem, description.grpc_service, methods, descriptor_set)


def check_published_contracts(
    subsystem: SubsystemId,
    services: tuple[Service, ...],
    published: tuple[Service, ...],
    max_total_bytes: int = MAX_CONTRACTS_TOTAL_BYTES,
) -> None:
    """The subsystem's ``services`` may join the ``published`` ones (which they replace
    where the subsystem already offers them); or raise.

    ContractTooLarge: all contracts together would exceed ``max_total_bytes`` (they
    travel in every global configuration). DuplicateService: a method declared with
    other request or response types (or streaming) than another provider of the same
    service declared it: one name is one interface, whoever offers it (several
    providers of a service are legal, chosen with zhol-provider).
    """
    replaced = {s.grpc_service for s in services}
    kept = [s for s in published if s.provider != subsystem or s.grpc_service not in replaced]
    total = sum(len(s.descriptor_set) for s in (*kept, *services))
    if total > max_total_bytes:
        raise _err(
            "ContractTooLarge",
            f"the published contracts would reach {total} bytes; "
            f"the registry takes at most {max_total_bytes} in all",
        )
    for service in services:
        if not service.descriptor_set:
            continue
        with _at_registry():
            ours = read_contract(service.descriptor_set, service.grpc_service)
        for other in kept:
            if other.grpc_service != service.grpc_service or other.provider == subsystem:
                continue
            theirs = _readable_contract(other)
            clash = clashing_methods(ours, theirs) if theirs is not None else ()
            if clash:
                raise _err(
                    "DuplicateService",
                    f"{service.grpc_service} methods {list(clash[:10])} differ from "
                    f"the contract {other.provider} published",
                )


def _readable_contract(service: Service) -> ServiceContract | None:
    """A published service's contract, or None (none, or one from before contracts
    were checked that no longer reads: nothing to compare with)."""
    if not service.descriptor_set:
        return None
    try:
        return read_contract(service.descriptor_set, service.grpc_service)
    except ZholError:
        return None


def _check_address(address: str) -> str:
    host, sep, port = address.rpartition(":")
    if not sep or not _HOST.match(host) or not port.isdigit() or not 0 < int(port) <= 65535:
        raise _err("InvalidRequest", f"gateway address must be host:port, got {address[:80]!r}")
    return address


def cert_to_pem(der: bytes) -> bytes:
    if not der:
        return b""
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def registration_status_to_pb(
    reg: Registration, ca_cert_pem: bytes
) -> registry_pb2.RegistrationStatus:
    """What the requester sees: state, the rejection reason, and certificates once approved."""
    status = registry_pb2.RegistrationStatus(
        request_id=reg.id, state=_STATE_TO_PB[reg.state], reason=reg.reason
    )
    if reg.state is RegistrationState.APPROVED:
        status.auth_cert_pem = cert_to_pem(reg.auth_cert_der)
        status.sign_cert_pem = cert_to_pem(reg.sign_cert_der)
        status.ca_cert_pem = ca_cert_pem
    return status


def registration_state_to_pb(state: RegistrationState) -> registry_pb2.RegistrationState:
    return _STATE_TO_PB[state]


def reject_registration(store: Store, request_id: str, reason: str, now_ms: int) -> Registration:
    """Reject a pending request with a reason that reaches the requester (needs no CA key)."""
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON_CHARS or not reason.isprintable():
        raise _err("InvalidRequest", "a rejection needs a printable reason (1-1000 chars)")
    return store.reject_registration(request_id, reason, now_ms)


def revoke_gateway(store: Store, gateway: GatewayId, now_ms: int) -> tuple[Gateway, bool]:
    """Revoke a gateway and its authentication and signing certificates.

    Effective with the next configuration version: the gateway leaves the
    configuration and its certificates' hashes are listed as revoked. Returns the
    gateway and whether anything changed (False if it was already revoked).
    """
    return store.revoke_gateway(gateway, now_ms)


@dataclass(frozen=True)
class Registrar:
    """Registration decisions over a store, with the federation CA.

    Blocking (SQLite, signatures): the gRPC service calls it from a worker thread.
    """

    store: Store
    ca: CertificateAuthority
    instance: str
    auto_approve: bool = False
    cert_validity_days: int = 365
    registration_skew_ms: int = REGISTRATION_SKEW_MS
    max_contract_bytes: int = MAX_CONTRACT_BYTES
    max_contracts_total_bytes: int = MAX_CONTRACTS_TOTAL_BYTES

    @property
    def ca_cert_pem(self) -> bytes:
        return self.ca.cert.public_bytes(serialization.Encoding.PEM)

    def submit(self, request: registry_pb2.RegistrationRequest, now_ms: int) -> Registration:
        """Validate and record a request; approve it at once when auto_approve is set.

        Resubmitting a request identical to a pending one returns that one (for a
        SUBSYSTEM request: same signer and body, whatever its issued-at).
        """
        now = datetime_from_ms(now_ms)
        signer = None
        if request.kind in _SIGNED_KINDS:
            # The signature first: nothing in a signed body is believed before it verifies.
            signer = verify_registration_signature(request, self._validator(), now)
        parsed = parse_registration_request(request, self.instance, self.max_contract_bytes)
        with _at_registry():
            if parsed.kind is RegistrationKind.GATEWAY:
                # Dry-run issuance: the same checks approval will make (parse, proof of
                # possession, key type, CN = identity); the certificates are discarded.
                self._issue(parsed, now)
                existing = self.store.get_gateway(parsed.gateway)
                if existing is not None and not existing.revoked:
                    raise _err("AlreadyRegistered", f"gateway {parsed.gateway} is registered")
                self._check_log_key_unused(parsed)
            elif parsed.kind is RegistrationKind.RENEWAL:
                assert signer is not None
                gateway = check_renewal_authority(
                    parsed, signer, self.store, now_ms, self.registration_skew_ms
                )
                self._issue(parsed, now)  # dry run, as for GATEWAY: InvalidCsr now, not later
                _check_new_keys(parsed, gateway)
                self._check_log_key_unused(parsed)
            else:
                assert signer is not None
                check_subsystem_authority(
                    parsed, signer, self.store, now_ms, self.registration_skew_ms
                )
                self._check_contracts(parsed, self.store.services())
        registration = self.store.add_pending_registration(
            Registration(
                id=str(uuid.uuid4()),
                kind=parsed.kind,
                state=RegistrationState.PENDING,
                gateway=parsed.gateway,
                subsystem=parsed.subsystem,
                request=request.SerializeToString(deterministic=True),
                created_at_ms=now_ms,
            ),
            same_signed_request if signer is not None else operator.eq,
        )
        if not self.auto_approve or registration.state is not RegistrationState.PENDING:
            return registration
        try:
            return self.approve(registration.id, now_ms)
        except ZholError as err:
            # The federation changed between the checks and the approval (a concurrent
            # request won): decide now rather than leave the request pending forever.
            reason = f"{err.full_code}: {err.detail}"[:MAX_REASON_CHARS]
            return self.store.reject_registration(registration.id, reason, now_ms)

    def approve(self, request_id: str, now_ms: int) -> Registration:
        """Approve a pending request: issue certificates or add the subsystem."""
        reg = self.store.get_registration(request_id)
        if reg.state is not RegistrationState.PENDING:
            approved = reg.state is RegistrationState.APPROVED
            code: ErrorName = "AlreadyRegistered" if approved else "InvalidRequest"
            raise _err(code, f"registration {request_id} was already {reg.state.value}")
        request = registry_pb2.RegistrationRequest.FromString(reg.request)
        parsed = parse_registration_request(request, self.instance, self.max_contract_bytes)
        with _at_registry():
            if parsed.kind is RegistrationKind.GATEWAY:
                auth_der, sign_der = self._issue(parsed, datetime_from_ms(now_ms))
                gateway = Gateway(
                    id=parsed.gateway,
                    address=parsed.gateway_address,
                    auth_cert_der=auth_der,
                    auth_cert_sha256=cert_sha256(auth_der),
                    sign_cert_der=sign_der,
                    sign_cert_sha256=cert_sha256(sign_der),
                    registered_at_ms=now_ms,
                    log_public_key=parsed.log_public_key,
                )
                member = Member(parsed.gateway.member, parsed.member_name)
                return self.store.complete_gateway_registration(request_id, member, gateway, now_ms)
            if parsed.kind is RegistrationKind.RENEWAL:
                return self._approve_renewal(reg.id, parsed, request, now_ms)
            assert parsed.subsystem is not None
            # Still the gateway's current signing certificate (checked in the writing
            # transaction): a gateway re-registered since its request was signed is refused.
            return self.store.complete_subsystem_registration(
                request_id,
                parsed.subsystem,
                parsed.gateway,
                parsed.services,
                now_ms,
                topics=parsed.topics,
                signer_cert_sha256=cert_sha256(bytes(request.signer_cert_der)),
                # Again in the writing transaction: the federation may have changed
                # since the request was submitted.
                check_services=lambda published: self._check_contracts(parsed, published),
            )

    def _approve_renewal(
        self,
        request_id: str,
        parsed: ParsedRequest,
        request: registry_pb2.RegistrationRequest,
        now_ms: int,
    ) -> Registration:
        """Issue the renewed certificates; the store makes them current in one transaction
        (if the signer is still the gateway's current signing certificate)."""
        current = self.store.get_gateway(parsed.gateway)
        if current is None or current.revoked:
            raise _err("NotConfigured", f"gateway {parsed.gateway} is not registered and unrevoked")
        auth_der, sign_der = self._issue(parsed, datetime_from_ms(now_ms))
        return self.store.complete_renewal(
            request_id,
            parsed.gateway,
            cert_sha256(bytes(request.signer_cert_der)),
            (auth_der, cert_sha256(auth_der)) if auth_der else None,
            (sign_der, cert_sha256(sign_der)) if sign_der else None,
            (not_after_ms(current.auth_cert_der), not_after_ms(current.sign_cert_der)),
            now_ms,
            new_log_key=parsed.log_public_key,
        )

    def _check_contracts(self, parsed: ParsedRequest, published: tuple[Service, ...]) -> None:
        assert parsed.subsystem is not None
        check_published_contracts(
            parsed.subsystem, parsed.services, published, self.max_contracts_total_bytes
        )

    def _check_log_key_unused(self, parsed: ParsedRequest) -> None:
        """Checked again in the approving transaction: this is the early refusal."""
        if parsed.log_public_key and self.store.log_key_in_use(parsed.log_public_key):
            raise _err("AlreadyRegistered", "this log key is already registered")

    def end_auth_overlap(self, gateway: GatewayId, now_ms: int) -> int:
        """Peers stop accepting the gateway's previous auth certificates (next version)."""
        return self.store.end_auth_overlap(gateway, now_ms)

    def reject(self, request_id: str, reason: str, now_ms: int) -> Registration:
        """Reject a pending request; the reason reaches the requester."""
        return reject_registration(self.store, request_id, reason, now_ms)

    def revoke_gateway(self, gateway: GatewayId, now_ms: int) -> tuple[Gateway, bool]:
        """Revoke a gateway's certificates (see revoke_gateway)."""
        return revoke_gateway(self.store, gateway, now_ms)

    def _validator(self) -> CertificateValidator:
        """The federation CA as trust root, with the store's current revocations."""
        ca_der = self.ca.cert.public_bytes(serialization.Encoding.DER)
        revoked = [r.sha256 for r in self.store.revoked_certs()]
        return CertificateValidator([ca_der], revoked, cache_size=0)

    def status(self, request_id: str) -> registry_pb2.RegistrationStatus:
        return registration_status_to_pb(self.store.get_registration(request_id), self.ca_cert_pem)

    def _issue(self, parsed: ParsedRequest, now: dt.datetime) -> tuple[bytes, bytes]:
        """(auth, sign) certificates as DER for the request's CSRs; b"" where none was sent
        (a RENEWAL may renew one only)."""
        return (
            self._issue_one(parsed.auth_csr_pem, "auth", str(parsed.gateway), now),
            self._issue_one(parsed.sign_csr_pem, "sign", str(parsed.gateway.member), now),
        )

    def _issue_one(
        self, csr_pem: bytes, profile: CertProfile, identity: str, now: dt.datetime
    ) -> bytes:
        if not csr_pem:
            return b""
        cert = issue_certificate(self.ca, csr_pem, profile, identity, now, self.cert_validity_days)
        return cert.public_bytes(serialization.Encoding.DER)
