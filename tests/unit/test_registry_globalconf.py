"""Building, signing and publishing the global configuration (no sockets)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.pki import issue_der, new_ca
from tests.registry_signing import log_key_fields
from zhol.core.clock import FixedClock
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId, MemberId, SubsystemId
from zhol.registry.globalconf import build_global_conf, build_signed_global_conf
from zhol.registry.model import Gateway, Member, Service, Snapshot, Subsystem
from zhol.registry.provision import init_registry, load_keys
from zhol.registry.registration import Registrar, revoke_gateway
from zhol.registry.service import ConfPublisher
from zhol.registry.settings import load_registry_settings
from zhol.registry.store import Store
from zhol.registry.v1 import registry_pb2
from zhol.security.ca import CertificateAuthority, create_csr
from zhol.security.globalconf import Tunables, gateway_to_pb, verify_global_conf
from zhol.security.keys import PrivateKey, generate_private_key

NOW_MS = 1_790_000_000_000
NOW = dt.datetime.fromtimestamp(NOW_MS / 1000, tz=dt.UTC)
TUNABLES = Tunables(refresh_interval_s=60, validity_s=600, clock_skew_s=60, max_message_bytes=1024)

MJ = MemberId.parse("KZ/GOV/MJ")
GW1 = GatewayId.parse("KZ/GOV/MJ/gw1")
GW2 = GatewayId.parse("KZ/GOV/MJ/gw2")
POPULATION = SubsystemId.parse("KZ/GOV/MJ/population")
PERSON_SERVICE = "zhol.population.v1.PopulationRegistry"


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


Signer = tuple[CertificateAuthority, PrivateKey, bytes]


def _signer(instance: str = "KZ") -> Signer:
    """A CA and a configuration-signing key with its certificate (the anchor)."""
    ca = new_ca("Test CA", NOW)
    conf_key = generate_private_key()
    return ca, conf_key, issue_der(ca, conf_key, "config", instance, NOW)


def _gateway(gid: GatewayId, seed: str, revoked_at_ms: int | None = None) -> Gateway:
    auth = f"auth-{seed}".encode()
    sign = f"sign-{seed}".encode()
    return Gateway(
        id=gid,
        address=f"{seed}.example:443",
        auth_cert_der=auth,
        auth_cert_sha256=hashlib.sha256(auth).digest(),
        sign_cert_der=sign,
        sign_cert_sha256=hashlib.sha256(sign).digest(),
        registered_at_ms=NOW_MS,
        revoked_at_ms=revoked_at_ms,
    )


def _snapshot(gw2_revoked: bool = False) -> Snapshot:
    gw1 = _gateway(GW1, "gw1")
    gw2 = _gateway(GW2, "gw2", revoked_at_ms=NOW_MS if gw2_revoked else None)
    revoked = (gw2.auth_cert_sha256, gw2.sign_cert_sha256) if gw2_revoked else ()
    return Snapshot(
        change_counter=3,
        members=(Member(MJ, "Ministry of Justice"),),
        gateways=(gw1, gw2),
        subsystems=(Subsystem(POPULATION, (GW2, GW1)),),
        services=(Service(POPULATION, PERSON_SERVICE, ("GetPerson", "FindPeople")),),
        revoked_cert_sha256=tuple(sorted(revoked)),
    )


def _signed(
    snapshot: Snapshot, version: int = 1, signer: Signer | None = None
) -> tuple[bytes, bytes]:
    ca, key, anchor = signer or _signer()
    signed = build_signed_global_conf(
        snapshot,
        instance="KZ",
        version=version,
        now_ms=NOW_MS,
        tunables=TUNABLES,
        ca_certs_der=(_der(ca.cert),),
        signing_key=key,
        anchor_der=anchor,
    )
    return signed, anchor


def test_built_configuration_verifies_against_the_anchor() -> None:
    signed, anchor = _signed(_snapshot(), version=7)
    conf = verify_global_conf(signed, anchor, NOW_MS)
    assert conf.instance == "KZ"
    assert conf.version == 7
    assert conf.generated_at_ms == NOW_MS
    assert conf.expires_at_ms == NOW_MS + 600_000
    assert conf.tunables == TUNABLES
    assert conf.members == {MJ: "Ministry of Justice"}
    assert set(conf.gateways) == {GW1, GW2}
    assert conf.subsystem_gateways[POPULATION] == (GW2, GW1)  # failover order kept
    assert [g.id for g in conf.gateways_for(POPULATION)] == [GW2, GW1]
    service = conf.resolve_service(PERSON_SERVICE, "GetPerson", None)
    assert service.subsystem == POPULATION
    assert len(conf.ca_certs_der) == 1
    assert conf.revoked_cert_sha256 == frozenset()


def test_build_is_deterministic() -> None:
    kwargs = {
        "instance": "KZ",
        "version": 2,
        "now_ms": NOW_MS,
        "tunables": TUNABLES,
        "ca_certs_der": (b"ca",),
    }
    assert build_global_conf(_snapshot(), **kwargs) == build_global_conf(_snapshot(), **kwargs)


@pytest.mark.parametrize("position", [0, 7, 40, -1])
def test_a_flipped_bit_in_the_configuration_is_rejected(position: int) -> None:
    signed, anchor = _signed(_snapshot())
    envelope = registry_pb2.SignedGlobalConfiguration.FromString(signed)
    tampered = bytearray(envelope.configuration)
    tampered[position] ^= 0x01
    envelope.configuration = bytes(tampered)
    with pytest.raises(ZholError) as info:
        verify_global_conf(envelope.SerializeToString(), anchor, NOW_MS)
    assert info.value.code.name == "InvalidGlobalConf"


def test_a_flipped_bit_in_the_signature_is_rejected() -> None:
    signed, anchor = _signed(_snapshot())
    envelope = registry_pb2.SignedGlobalConfiguration.FromString(signed)
    signature = bytearray(envelope.signature)
    signature[-1] ^= 0x01
    envelope.signature = bytes(signature)
    with pytest.raises(ZholError) as info:
        verify_global_conf(envelope.SerializeToString(), anchor, NOW_MS)
    assert info.value.code.name == "InvalidGlobalConf"


def test_signed_by_another_key_is_rejected() -> None:
    _, anchor = _signed(_snapshot())
    other = _signer()
    # Another key naming the real anchor as its certificate...
    forged, _ = _signed(_snapshot(), signer=(other[0], other[1], anchor))
    with pytest.raises(ZholError) as info:
        verify_global_conf(forged, anchor, NOW_MS)
    assert info.value.code.name == "InvalidGlobalConf"
    # ...or presenting its own certificate.
    own, _ = _signed(_snapshot(), signer=other)
    with pytest.raises(ZholError) as info:
        verify_global_conf(own, anchor, NOW_MS)
    assert info.value.code.name == "InvalidGlobalConf"


def test_expired_configuration_fails_closed() -> None:
    signed, anchor = _signed(_snapshot())
    expires_at = NOW_MS + TUNABLES.validity_s * 1000
    verify_global_conf(signed, anchor, expires_at - 1)
    with pytest.raises(ZholError) as info:
        verify_global_conf(signed, anchor, expires_at)
    assert info.value.code.name == "OutdatedGlobalConf"


def test_revoked_gateway_is_left_out_and_its_hashes_listed() -> None:
    snapshot = _snapshot(gw2_revoked=True)
    gw2 = next(g for g in snapshot.gateways if g.id == GW2)
    signed, anchor = _signed(snapshot)
    conf = verify_global_conf(signed, anchor, NOW_MS)
    assert set(conf.gateways) == {GW1}
    assert conf.subsystem_gateways[POPULATION] == (GW1,)
    assert {gw2.auth_cert_sha256, gw2.sign_cert_sha256} <= conf.revoked_cert_sha256
    assert conf.gateway_by_auth_hash(gw2.auth_cert_sha256) is None


def test_revoked_hashes_listed_even_if_the_store_list_lacks_them() -> None:
    snapshot = _snapshot(gw2_revoked=True)
    bare = Snapshot(
        snapshot.change_counter,
        snapshot.members,
        snapshot.gateways,
        snapshot.subsystems,
        snapshot.services,
        (),
    )
    gw2 = next(g for g in snapshot.gateways if g.id == GW2)
    signed, anchor = _signed(bare)
    conf = verify_global_conf(signed, anchor, NOW_MS)
    assert gw2.auth_cert_sha256 in conf.revoked_cert_sha256


def test_version_zero_is_refused() -> None:
    with pytest.raises(ValueError):
        build_global_conf(
            _snapshot(),
            instance="KZ",
            version=0,
            now_ms=NOW_MS,
            tunables=TUNABLES,
            ca_certs_der=(),
        )


def test_published_versions_strictly_increase_and_persist(tmp_path: Path) -> None:
    data_dir = tmp_path / "registry"
    paths = init_registry(data_dir, "KZ", False, NOW)
    settings = load_registry_settings(data_dir, environ={})
    keys = load_keys(paths)
    store = Store.open(paths.db)
    clock = FixedClock(NOW_MS)
    publisher = ConfPublisher(store, keys, settings)

    first = publisher.current(clock.now_ms())
    assert first.version == 1
    clock.advance(settings.refresh_interval_s - 1)
    assert publisher.current(clock.now_ms()).version == 1  # nothing changed, still fresh

    clock.advance(1)  # refresh interval reached: a new version moves expires_at forward
    second = publisher.current(clock.now_ms())
    assert second.version == 2
    assert second.expires_at_ms > first.expires_at_ms

    # A restarted registry continues from the stored version.
    restarted = ConfPublisher(store, keys, settings)
    assert restarted.current(clock.now_ms()).version == 2

    # A store change publishes a new version at once; a refused change does not.
    with pytest.raises(ZholError):
        revoke_gateway(store, GW1, clock.now_ms())  # unknown gateway: changes nothing
    assert restarted.current(clock.now_ms()).version == 2
    registrar = Registrar(store, keys.ca, "KZ", auto_approve=True)
    registrar.submit(_gateway_request(GW1), clock.now_ms())
    third = restarted.current(clock.now_ms())
    assert third.version == 3
    revoke_gateway(store, GW1, clock.now_ms())
    fourth = restarted.current(clock.now_ms())
    assert fourth.version == 4
    conf = verify_global_conf(fourth.signed, keys.anchor_der, clock.now_ms())
    assert GW1 not in conf.gateways
    assert len(conf.revoked_cert_sha256) == 2
    assert conf.ca_certs_der == (keys.ca_cert_der,)


def _gateway_request(gateway: GatewayId) -> registry_pb2.RegistrationRequest:
    return registry_pb2.RegistrationRequest(
        kind=registry_pb2.REGISTRATION_KIND_GATEWAY,
        gateway=gateway_to_pb(gateway),
        gateway_address="127.0.0.1:7001",
        member_name="Ministry of Justice",
        auth_csr_pem=create_csr(generate_private_key(), str(gateway)),
        sign_csr_pem=create_csr(generate_private_key(), str(gateway.member)),
        **log_key_fields(gateway),
    )
