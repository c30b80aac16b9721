"""The signed global configuration: its envelope and a verified, indexed view.

The registry builds the GlobalConfiguration message and seals it with
``sign_global_conf``; gateways call ``verify_global_conf`` against the anchor
they were given out of band and then only ever look things up in the frozen
``GlobalConf`` view. One place owns the format.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from cryptography import x509
from google.protobuf.message import DecodeError

from zhol.bus.v1 import bus_pb2
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId, MemberId, ServiceId, SubsystemId
from zhol.registry.v1 import registry_pb2
from zhol.security.sealing import GLOBALCONF_TYPE, PrivateKey, pae, sign_bytes, verify_bytes
from zhol.security.signednote import Verifier, cosigner_verifier


def member_from_pb(m: bus_pb2.MemberId) -> MemberId:
    return MemberId.parse(f"{m.instance}/{m.member_class}/{m.member_code}")


def subsystem_from_pb(s: bus_pb2.SubsystemId) -> SubsystemId:
    return SubsystemId(member_from_pb(s.member), s.subsystem_code)


def gateway_from_pb(g: bus_pb2.GatewayId) -> GatewayId:
    return GatewayId.parse(f"{member_from_pb(g.member)}/{g.server_code}")


def member_to_pb(m: MemberId) -> bus_pb2.MemberId:
    return bus_pb2.MemberId(
        instance=m.instance, member_class=m.member_class, member_code=m.member_code
    )


def subsystem_to_pb(s: SubsystemId) -> bus_pb2.SubsystemId:
    return bus_pb2.SubsystemId(member=member_to_pb(s.member), subsystem_code=s.subsystem_code)


def gateway_to_pb(g: GatewayId) -> bus_pb2.GatewayId:
    return bus_pb2.GatewayId(member=member_to_pb(g.member), server_code=g.server_code)


def service_to_pb(s: ServiceId) -> bus_pb2.ServiceId:
    return bus_pb2.ServiceId(
        subsystem=subsystem_to_pb(s.subsystem), grpc_service=s.grpc_service, method=s.method
    )


def service_from_pb(s: bus_pb2.ServiceId) -> ServiceId:
    return ServiceId.of(subsystem_from_pb(s.subsystem), s.grpc_service, s.method)


@dataclass(frozen=True, slots=True)
class GatewayEntry:
    id: GatewayId
    address: str
    auth_cert_sha256: bytes
    auth_cert_der: bytes
    # Earlier auth certificates peers still accept during a renewal's changeover.
    previous_auth_cert_sha256: tuple[bytes, ...] = ()
    # Raw Ed25519 public key of its log key (checkpoints); b"" if it has none yet.
    log_public_key: bytes = b""
    # Log keys renewals replaced, oldest first: old checkpoints verify with them.
    previous_log_public_keys: tuple[bytes, ...] = ()


# The largest tunables a registry publishes (registry/settings.py refuses more).
# Clocks further apart than this are a fault to fix, not to tolerate; it also bounds a
# gateway's replay memory (gateway/replay.py: twice the skew).
MAX_CLOCK_SKEW_S = 300
# The gateways' transport limits are set from it (gateway/transport.py).
MAX_MESSAGE_BYTES = 128 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Tunables:
    refresh_interval_s: int
    validity_s: int
    clock_skew_s: int
    max_message_bytes: int


@dataclass(frozen=True, slots=True)
class TimestampAuthority:
    """An approved RFC 3161 authority: where to POST, the certificate its tokens must be
    signed with, and the CA that issued it (b"": one of the federation's CAs)."""

    url: str
    cert_der: bytes
    ca_cert_der: bytes = b""


@dataclass(frozen=True)
class GlobalConf:
    instance: str
    version: int
    generated_at_ms: int
    expires_at_ms: int
    tunables: Tunables
    members: Mapping[MemberId, str]
    gateways: Mapping[GatewayId, GatewayEntry]
    subsystem_gateways: Mapping[SubsystemId, tuple[GatewayId, ...]]
    # grpc service name -> providers, and (provider, grpc service) -> methods
    providers: Mapping[str, tuple[SubsystemId, ...]]
    methods: Mapping[tuple[SubsystemId, str], frozenset[str]]
    ca_certs_der: tuple[bytes, ...]
    tsa_certs_der: tuple[bytes, ...]
    revoked_cert_sha256: frozenset[bytes]
    signed_bytes: bytes = field(repr=False)
    _by_auth_hash: Mapping[bytes, GatewayEntry] = field(repr=False, default_factory=dict)
    # publisher -> the event topics (fully qualified event message names) it publishes
    topics: Mapping[SubsystemId, frozenset[str]] = field(default_factory=dict)
    # Approved timestamping authorities, in the registry's order of preference.
    timestamp_authorities: tuple[TimestampAuthority, ...] = ()
    # The registry's witness: raw Ed25519 key and note key name; empty if it has none.
    witness_public_key: bytes = b""
    witness_name: str = ""
    # (provider, grpc service) -> its FileDescriptorSet, for services registered with one:
    # how a gateway reads whom a request is about (zhol.gateway.subjects).
    descriptor_sets: Mapping[tuple[SubsystemId, str], bytes] = field(default_factory=dict)

    def witness_verifier(self) -> Verifier | None:
        """The witness's cosignature/v1 verifier, or None if none is published."""
        if not self.witness_public_key:
            return None
        return cosigner_verifier(self.witness_name, self.witness_public_key)

    def check_fresh(self, now_ms: int) -> None:
        """Fail closed once the configuration has expired."""
        if now_ms >= self.expires_at_ms:
            raise ZholError("OutdatedGlobalConf", f"global configuration v{self.version} expired")

    def resolve_service(
        self, grpc_service: str, method: str, provider: SubsystemId | None
    ) -> ServiceId:
        """The provider's service id for a gRPC method, or UnknownService/AmbiguousService."""
        candidates = self.providers.get(grpc_service, ())
        if provider is not None:
            candidates = tuple(c for c in candidates if c == provider)
        if not candidates:
            raise ZholError("UnknownService", f"nobody offers {grpc_service}")
        if len(candidates) > 1:
            raise ZholError("AmbiguousService", f"{len(candidates)} providers offer {grpc_service}")
        subsystem = candidates[0]
        if method not in self.methods.get((subsystem, grpc_service), frozenset()):
            raise ZholError("UnknownService", f"{grpc_service} has no method {method}")
        return ServiceId.of(subsystem, grpc_service, method)

    def gateways_for(self, subsystem: SubsystemId) -> tuple[GatewayEntry, ...]:
        """The subsystem's gateways in failover order (revoked ones left out)."""
        entries = (self.gateways.get(g) for g in self.subsystem_gateways.get(subsystem, ()))
        return tuple(
            e
            for e in entries
            if e is not None and e.auth_cert_sha256 not in self.revoked_cert_sha256
        )

    def gateway_by_auth_hash(self, cert_sha256: bytes) -> GatewayEntry | None:
        """The registered, unrevoked gateway whose TLS certificate has this hash: its
        current one, or a previous one still accepted during a renewal's changeover."""
        if cert_sha256 in self.revoked_cert_sha256:
            return None
        return self._by_auth_hash.get(cert_sha256)

    def serves(self, gateway: GatewayId, subsystem: SubsystemId) -> bool:
        return gateway in self.subsystem_gateways.get(subsystem, ())

    def publishes(self, publisher: SubsystemId, topic: str) -> bool:
        """Whether the registry lists topic as an event the publisher subsystem publishes."""
        return topic in self.topics.get(publisher, frozenset())


def sign_global_conf(key: PrivateKey, anchor_der: bytes, configuration: bytes) -> bytes:
    """Seal configuration bytes; returns SignedGlobalConfiguration bytes."""
    signature = sign_bytes(key, pae(GLOBALCONF_TYPE, configuration))
    return registry_pb2.SignedGlobalConfiguration(
        configuration=configuration, signature=signature, signer_cert_der=anchor_der
    ).SerializeToString()


def verify_global_conf(signed: bytes, anchor_der: bytes, now_ms: int | None = None) -> GlobalConf:
    """Verify a signed configuration against the anchor; parse it only after that.

    Raises InvalidGlobalConf for anything untrusted or malformed, and
    OutdatedGlobalConf when ``now_ms`` is given and the configuration has expired.
    """
    try:
        envelope = registry_pb2.SignedGlobalConfiguration.FromString(signed)
    except DecodeError:
        raise ZholError("InvalidGlobalConf", "not a signed global configuration") from None
    if not hmac.compare_digest(envelope.signer_cert_der, anchor_der):
        raise ZholError("InvalidGlobalConf", "signed by a certificate other than the anchor")
    anchor_key = x509.load_der_x509_certificate(anchor_der).public_key()
    try:
        verify_bytes(anchor_key, pae(GLOBALCONF_TYPE, envelope.configuration), envelope.signature)
    except ZholError:
        raise ZholError("InvalidGlobalConf", "configuration signature does not verify") from None
    try:
        conf = parse_global_conf(envelope.configuration, signed)
    except (DecodeError, ZholError, ValueError):
        raise ZholError("InvalidGlobalConf", "configuration content is malformed") from None
    if now_ms is not None:
        conf.check_fresh(now_ms)
    return conf


def _index_auth_hashes(entries: Collection[GatewayEntry]) -> dict[bytes, GatewayEntry]:
    """Auth-certificate hash -> gateway, previous ones first: a current one always wins."""
    index = {h: e for e in entries for h in e.previous_auth_cert_sha256}
    index.update((e.auth_cert_sha256, e) for e in entries)
    return index


def parse_global_conf(configuration: bytes, signed: bytes) -> GlobalConf:
    pb = registry_pb2.GlobalConfiguration.FromString(configuration)
    gateways: dict[GatewayId, GatewayEntry] = {}
    for g in pb.gateways:
        entry = GatewayEntry(
            gateway_from_pb(g.id),
            g.address,
            bytes(g.auth_cert_sha256),
            bytes(g.auth_cert_der),
            tuple(bytes(h) for h in g.previous_auth_cert_sha256),
            bytes(g.log_public_key),
            tuple(bytes(k) for k in g.previous_log_public_keys),
        )
        gateways[entry.id] = entry
    providers: dict[str, list[SubsystemId]] = {}
    methods: dict[tuple[SubsystemId, str], frozenset[str]] = {}
    descriptor_sets: dict[tuple[SubsystemId, str], bytes] = {}
    for s in pb.services:
        provider = subsystem_from_pb(s.provider)
        providers.setdefault(s.grpc_service, [])
        if provider not in providers[s.grpc_service]:
            providers[s.grpc_service].append(provider)
        key = (provider, s.grpc_service)
        methods[key] = methods.get(key, frozenset()) | frozenset(s.methods)
        if s.descriptor_set:
            descriptor_sets[key] = bytes(s.descriptor_set)
    topics: dict[SubsystemId, frozenset[str]] = {}
    for t in pb.topics:
        publisher = subsystem_from_pb(t.publisher)
        topics[publisher] = topics.get(publisher, frozenset()) | {t.topic}
    tunables = pb.tunables
    return GlobalConf(
        instance=pb.instance,
        version=pb.version,
        generated_at_ms=pb.generated_at_unix_ms,
        expires_at_ms=pb.expires_at_unix_ms,
        tunables=Tunables(
            refresh_interval_s=tunables.refresh_interval_s or 60,
            validity_s=tunables.validity_s or 600,
            clock_skew_s=tunables.clock_skew_s or 60,
            max_message_bytes=tunables.max_message_bytes or 4 * 1024 * 1024,
        ),
        members={member_from_pb(m.id): m.name for m in pb.members},
        gateways=gateways,
        subsystem_gateways={
            subsystem_from_pb(s.id): tuple(gateway_from_pb(g) for g in s.gateways)
            for s in pb.subsystems
        },
        providers={k: tuple(v) for k, v in providers.items()},
        methods=methods,
        ca_certs_der=tuple(bytes(c) for c in pb.ca_certs_der),
        tsa_certs_der=tuple(bytes(c) for c in pb.tsa_certs_der),
        revoked_cert_sha256=frozenset(bytes(h) for h in pb.revoked_cert_sha256),
        signed_bytes=signed,
        _by_auth_hash=_index_auth_hashes(gateways.values()),
        topics=topics,
        witness_public_key=bytes(pb.witness_public_key),
        witness_name=pb.witness_name,
        descriptor_sets=descriptor_sets,
        timestamp_authorities=tuple(
            TimestampAuthority(a.url, bytes(a.cert_der), bytes(a.ca_cert_der))
            for a in pb.timestamp_authorities
        ),
    )
