"""Building the global configuration from a store snapshot: pure, no I/O.

Frozen dataclasses in, bytes out. The output is deterministic for a given
snapshot, version and time (entries sorted by identifier), and is sealed with
core.globalconf.sign_global_conf so gateways verify it with
core.globalconf.verify_global_conf against the anchor.

A revoked gateway is left out of ``gateways`` and of every subsystem's failover
list; the hashes of its authentication and signing certificates are listed in
``revoked_cert_sha256``, with the certificates renewals replaced for it.

An active gateway's certificates that a renewal replaced stay accepted for TLS
during the changeover: the hashes of its previous auth certificates that have
not expired and whose overlap the operator has not ended are listed in its
``previous_auth_cert_sha256``.

Each active gateway's log key (raw Ed25519; empty only for a gateway an older
database holds from before log keys: it stays in the federation, flagged by `zhol
registry members`, until its renewal brings one) is published with the log keys
renewals replaced, oldest first, so that checkpoints signed before a renewal stay
verifiable.
"""

from __future__ import annotations

from collections.abc import Sequence

from zhol.core.ids import GatewayId
from zhol.registry.model import Snapshot
from zhol.registry.v1 import registry_pb2
from zhol.security.globalconf import (
    TimestampAuthority,
    Tunables,
    gateway_to_pb,
    member_to_pb,
    sign_global_conf,
    subsystem_to_pb,
)
from zhol.security.sealing import PrivateKey


def tunables_to_pb(t: Tunables) -> registry_pb2.Tunables:
    return registry_pb2.Tunables(
        refresh_interval_s=t.refresh_interval_s,
        validity_s=t.validity_s,
        clock_skew_s=t.clock_skew_s,
        max_message_bytes=t.max_message_bytes,
    )


def build_global_conf(
    snapshot: Snapshot,
    *,
    instance: str,
    version: int,
    now_ms: int,
    tunables: Tunables,
    ca_certs_der: Sequence[bytes],
    tsa_certs_der: Sequence[bytes] = (),
    witness_public_key: bytes = b"",
    witness_name: str = "",
    timestamp_authorities: Sequence[TimestampAuthority] = (),
) -> bytes:
    """The GlobalConfiguration message bytes; it expires validity_s after now_ms.

    ``tsa_certs_der`` (field 10, the older plain list of certificates) also lists the
    certificates of ``timestamp_authorities``, for readers that know only it.
    """
    if version <= 0:
        raise ValueError("configuration versions start at 1")
    active = {g.id: g for g in snapshot.gateways if not g.revoked}
    revoked = set(snapshot.revoked_cert_sha256)
    for g in snapshot.gateways:
        if g.revoked:
            revoked.update((g.auth_cert_sha256, g.sign_cert_sha256))
    revoked.update(p.sha256 for p in snapshot.previous_certs if p.gateway not in active)
    overlap: dict[GatewayId, list[bytes]] = {}
    for p in sorted(snapshot.previous_certs, key=lambda p: p.sha256):
        if p.gateway in active and p.sha256 not in revoked and p.accepted_for_auth(now_ms):
            overlap.setdefault(p.gateway, []).append(p.sha256)
    previous_log_keys: dict[GatewayId, list[bytes]] = {}
    # The snapshot lists them in the order they were replaced (ties included).
    for k in sorted(snapshot.previous_log_keys, key=lambda k: k.replaced_at_ms):
        previous_log_keys.setdefault(k.gateway, []).append(k.public_key)
    pb = registry_pb2.GlobalConfiguration(
        instance=instance,
        version=version,
        generated_at_unix_ms=now_ms,
        expires_at_unix_ms=now_ms + tunables.validity_s * 1000,
        members=[
            registry_pb2.Member(id=member_to_pb(m.id), name=m.name)
            for m in sorted(snapshot.members, key=lambda m: m.id)
        ],
        subsystems=[
            registry_pb2.Subsystem(
                id=subsystem_to_pb(s.id),
                gateways=[gateway_to_pb(g) for g in s.gateways if g in active],
            )
            for s in sorted(snapshot.subsystems, key=lambda s: s.id)
        ],
        gateways=[
            registry_pb2.Gateway(
                id=gateway_to_pb(g.id),
                address=g.address,
                auth_cert_sha256=g.auth_cert_sha256,
                auth_cert_der=g.auth_cert_der,
                previous_auth_cert_sha256=overlap.get(g.id, []),
                log_public_key=g.log_public_key,
                previous_log_public_keys=previous_log_keys.get(g.id, []),
            )
            for g in sorted(active.values(), key=lambda g: g.id)
        ],
        services=[
            registry_pb2.ServiceDescription(
                provider=subsystem_to_pb(s.provider),
                grpc_service=s.grpc_service,
                methods=list(s.methods),
                descriptor_set=s.descriptor_set,
            )
            for s in sorted(snapshot.services, key=lambda s: (s.provider, s.grpc_service))
        ],
        ca_certs_der=list(ca_certs_der),
        tsa_certs_der=list(
            dict.fromkeys([*tsa_certs_der, *(a.cert_der for a in timestamp_authorities)])
        ),
        timestamp_authorities=[
            registry_pb2.TimestampAuthority(
                url=a.url, cert_der=a.cert_der, ca_cert_der=a.ca_cert_der
            )
            for a in timestamp_authorities
        ],
        revoked_cert_sha256=sorted(revoked),
        tunables=tunables_to_pb(tunables),
        topics=[
            registry_pb2.TopicDescription(publisher=subsystem_to_pb(t.publisher), topic=t.topic)
            for t in sorted(set(snapshot.topics))
        ],
        witness_public_key=witness_public_key,
        witness_name=witness_name,
    )
    return pb.SerializeToString(deterministic=True)


def build_signed_global_conf(
    snapshot: Snapshot,
    *,
    instance: str,
    version: int,
    now_ms: int,
    tunables: Tunables,
    ca_certs_der: Sequence[bytes],
    signing_key: PrivateKey,
    anchor_der: bytes,
    tsa_certs_der: Sequence[bytes] = (),
    witness_public_key: bytes = b"",
    witness_name: str = "",
    timestamp_authorities: Sequence[TimestampAuthority] = (),
) -> bytes:
    """Build and seal: SignedGlobalConfiguration bytes, as served to gateways."""
    configuration = build_global_conf(
        snapshot,
        instance=instance,
        version=version,
        now_ms=now_ms,
        tunables=tunables,
        ca_certs_der=ca_certs_der,
        tsa_certs_der=tsa_certs_der,
        witness_public_key=witness_public_key,
        witness_name=witness_name,
        timestamp_authorities=timestamp_authorities,
    )
    return sign_global_conf(signing_key, anchor_der, configuration)
