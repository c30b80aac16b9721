"""Certificate renewal at the registry: only the gateway itself renews, with new keys.

No sockets: the Registrar over a real SQLite store and the real federation CA.
Each refused request carries its own catalogue code and changes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from tests.registry_signing import assert_refused as shared_assert_refused
from tests.registry_signing import log_key_fields, subsystem_body
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId, SubsystemId
from zhol.registry.client import signed_renewal_request, signed_subsystem_request
from zhol.registry.globalconf import build_global_conf
from zhol.registry.model import Gateway, RegistrationKind, RegistrationState
from zhol.registry.provision import init_registry, load_keys
from zhol.registry.registration import REGISTRATION_SKEW_MS, Registrar, not_after_ms
from zhol.registry.store import Store
from zhol.registry.v1 import registry_pb2
from zhol.security.ca import CertificateAuthority, create_csr
from zhol.security.globalconf import Tunables, gateway_to_pb, parse_global_conf
from zhol.security.keys import PrivateKey, generate_private_key
from zhol.security.sealing import REGISTRATION_TYPE, Signer, pae, sign_bytes
from zhol.security.validation import CertificateValidator

NOW_MS = 1_790_000_000_000
NOW = dt.datetime.fromtimestamp(NOW_MS / 1000, tz=dt.UTC)
DAY_MS = 86_400_000
GW1 = GatewayId.parse("KZ/GOV/MJ/gw1")
GW2 = GatewayId.parse("KZ/GOV/MJ/gw2")
PENSION_GW = GatewayId.parse("KZ/GOV/MLSPP/gw1")
MJ_SUBSYSTEM = SubsystemId.parse("KZ/GOV/MJ/population")
TUNABLES = Tunables(refresh_interval_s=60, validity_s=600, clock_skew_s=60, max_message_bytes=1024)


@dataclass
class Keys:
    auth: PrivateKey = field(default_factory=generate_private_key)
    sign: PrivateKey = field(default_factory=generate_private_key)


@dataclass(frozen=True)
class Env:
    store: Store
    ca: CertificateAuthority
    registrar: Registrar
    auto: Registrar
    keys: dict[GatewayId, Keys]

    def register(self, gateway: GatewayId) -> None:
        keys = self.keys.setdefault(gateway, Keys())
        reg = self.auto.submit(
            registry_pb2.RegistrationRequest(
                kind=registry_pb2.REGISTRATION_KIND_GATEWAY,
                gateway=gateway_to_pb(gateway),
                gateway_address="127.0.0.1:7001",
                auth_csr_pem=create_csr(keys.auth, str(gateway)),
                sign_csr_pem=create_csr(keys.sign, str(gateway.member)),
                **log_key_fields(gateway),
            ),
            NOW_MS,
        )
        assert reg.state is RegistrationState.APPROVED

    def gateway(self, gateway: GatewayId) -> Gateway:
        found = self.store.get_gateway(gateway)
        assert found is not None
        return found

    def signer(self, gateway: GatewayId) -> Signer:
        """The gateway's current signing key and certificate."""
        return Signer(self.keys[gateway].sign, self.gateway(gateway).sign_cert_der)

    def conf(self, now_ms: int = NOW_MS):  # type: ignore[no-untyped-def]
        data = build_global_conf(
            self.store.snapshot(),
            instance="KZ",
            version=1,
            now_ms=now_ms,
            tunables=TUNABLES,
            ca_certs_der=(),
        )
        return parse_global_conf(data, b"")


@pytest.fixture
def env(tmp_path: Path) -> Env:
    paths = init_registry(tmp_path / "registry", "KZ", False, NOW)
    ca = load_keys(paths).ca
    store = Store.open(paths.db)
    env = Env(
        store,
        ca,
        Registrar(store, ca, "KZ", auto_approve=False),
        Registrar(store, ca, "KZ", auto_approve=True),
        {},
    )
    for gateway in (GW1, GW2, PENSION_GW):
        env.register(gateway)
    return env


def renewal(
    gateway: GatewayId,
    new: Keys | None,
    *,
    auth: bool = True,
    sign: bool = True,
    issued_at_ms: int = NOW_MS,
    log_key: bool = True,
) -> registry_pb2.RenewalRegistration:
    new = new or Keys()
    return registry_pb2.RenewalRegistration(
        gateway=gateway_to_pb(gateway),
        auth_csr_pem=create_csr(new.auth, str(gateway)) if auth else b"",
        sign_csr_pem=create_csr(new.sign, str(gateway.member)) if sign else b"",
        issued_at_unix_ms=issued_at_ms,
        **(log_key_fields(gateway) if log_key else {}),
    )


def assert_refused(env: Env, code: str, request: registry_pb2.RegistrationRequest) -> None:
    shared_assert_refused(env, code, request, NOW_MS)


def test_an_approved_renewal_makes_the_new_certificates_current(env: Env) -> None:
    old = env.gateway(GW1)
    new = Keys()
    reg = env.auto.submit(signed_renewal_request(renewal(GW1, new), env.signer(GW1)), NOW_MS)
    assert reg.kind is RegistrationKind.RENEWAL and reg.state is RegistrationState.APPROVED
    current = env.gateway(GW1)
    assert current.auth_cert_der == reg.auth_cert_der != old.auth_cert_der
    assert current.sign_cert_der == reg.sign_cert_der != old.sign_cert_der
    assert current.registered_at_ms == old.registered_at_ms and current.address == old.address
    status = env.auto.status(reg.id)
    assert status.auth_cert_pem and status.sign_cert_pem and status.ca_cert_pem

    previous = {p.role: p for p in env.store.previous_certs(GW1)}
    assert previous["auth"].sha256 == old.auth_cert_sha256
    assert previous["sign"].sha256 == old.sign_cert_sha256
    assert previous["auth"].not_after_ms == not_after_ms(old.auth_cert_der)
    # Peers accept both auth certificates; neither old certificate is revoked.
    conf = env.conf()
    assert conf.gateways[GW1].previous_auth_cert_sha256 == (old.auth_cert_sha256,)
    for digest in (old.auth_cert_sha256, current.auth_cert_sha256):
        entry = conf.gateway_by_auth_hash(digest)
        assert entry is not None and entry.id == GW1
    assert old.sign_cert_sha256 not in conf.revoked_cert_sha256
    ca_der = env.ca.cert.public_bytes(Encoding.DER)
    validator = CertificateValidator([ca_der], conf.revoked_cert_sha256)
    assert validator.verify_signing_cert(old.sign_cert_der, NOW)[0] == GW1.member

    # Only the new signing certificate is current for signed requests from now on.
    stale_signer = Signer(env.keys[GW1].sign, old.sign_cert_der)  # the genuine old pair
    env.keys[GW1] = new
    assert_refused(
        env, "SignerMismatch", signed_renewal_request(renewal(GW1, None), stale_signer)
    )
    body = subsystem_body(MJ_SUBSYSTEM, GW1, NOW_MS)
    assert env.auto.submit(signed_subsystem_request(body, env.signer(GW1)), NOW_MS).state is (
        RegistrationState.APPROVED
    )


def test_an_auth_only_renewal_keeps_the_signing_certificate(env: Env) -> None:
    old = env.gateway(GW1)
    request = signed_renewal_request(renewal(GW1, None, sign=False), env.signer(GW1))
    reg = env.auto.submit(request, NOW_MS)
    assert reg.sign_cert_der == b"" and env.auto.status(reg.id).sign_cert_pem == b""
    current = env.gateway(GW1)
    assert current.sign_cert_der == old.sign_cert_der
    assert current.auth_cert_der != old.auth_cert_der
    assert [p.role for p in env.store.previous_certs(GW1)] == ["auth"]


def test_the_overlap_ends_at_expiry_or_by_the_operator_and_with_revocation(env: Env) -> None:
    old = env.gateway(GW1)
    env.auto.submit(signed_renewal_request(renewal(GW1, None), env.signer(GW1)), NOW_MS)
    expiry = not_after_ms(old.auth_cert_der)
    assert env.conf(expiry - 1).gateway_by_auth_hash(old.auth_cert_sha256) is not None
    assert env.conf(expiry).gateway_by_auth_hash(old.auth_cert_sha256) is None

    counter = env.store.change_counter()
    assert env.auto.end_auth_overlap(GW1, NOW_MS) == 1
    assert env.store.change_counter() == counter + 1
    assert env.conf().gateways[GW1].previous_auth_cert_sha256 == ()
    assert env.conf().gateway_by_auth_hash(old.auth_cert_sha256) is None
    assert env.auto.end_auth_overlap(GW1, NOW_MS) == 0  # nothing left: nothing changes
    assert env.store.change_counter() == counter + 1

    # Revoking the gateway revokes what it held before the renewal too.
    env.auto.revoke_gateway(GW1, NOW_MS)
    revoked = {r.sha256 for r in env.store.revoked_certs()}
    assert {old.auth_cert_sha256, old.sign_cert_sha256} <= revoked
    assert {old.auth_cert_sha256, old.sign_cert_sha256} <= env.conf().revoked_cert_sha256


def test_an_operator_approves_or_rejects_a_pending_renewal(env: Env) -> None:
    old = env.gateway(GW1)
    reg = env.registrar.submit(signed_renewal_request(renewal(GW1, None), env.signer(GW1)), NOW_MS)
    assert reg.state is RegistrationState.PENDING
    assert env.gateway(GW1) == old  # nothing changes until a decision
    # A second, different renewal while one is pending is refused.
    with pytest.raises(ZholError) as info:
        env.registrar.submit(signed_renewal_request(renewal(GW1, None), env.signer(GW1)), NOW_MS)
    assert info.value.full_code == "Server.Registry.AlreadyRegistered"
    rejected = env.registrar.reject(reg.id, "use the HSM keys", NOW_MS + 1)
    assert rejected.state is RegistrationState.REJECTED
    assert env.registrar.status(reg.id).reason == "use the HSM keys"
    assert env.gateway(GW1) == old and env.store.previous_certs(GW1) == ()

    reg = env.registrar.submit(signed_renewal_request(renewal(GW1, None), env.signer(GW1)), NOW_MS)
    approved = env.registrar.approve(reg.id, NOW_MS + 60_000)  # approval needs no fresh issued-at
    assert approved.state is RegistrationState.APPROVED
    assert env.gateway(GW1).auth_cert_der == approved.auth_cert_der


def test_approval_refuses_a_renewal_whose_signer_is_no_longer_current(env: Env) -> None:
    pending = env.registrar.submit(
        signed_renewal_request(renewal(GW1, None), env.signer(GW1)), NOW_MS
    )
    env.auto.revoke_gateway(GW1, NOW_MS)
    with pytest.raises(ZholError) as info:
        env.registrar.approve(pending.id, NOW_MS)
    assert info.value.full_code == "Server.Registry.NotConfigured"
    # Registered again (new keys): the request signed before is not its current signer's.
    env.keys.pop(GW1)
    env.register(GW1)
    before = env.gateway(GW1)
    with pytest.raises(ZholError) as info:
        env.registrar.approve(pending.id, NOW_MS)
    assert info.value.full_code == "Server.Registry.SignerMismatch"
    assert env.gateway(GW1) == before
    assert env.store.get_registration(pending.id).state is RegistrationState.PENDING


def test_forged_stale_unsigned_and_malformed_renewals_change_nothing(env: Env) -> None:
    own = env.signer(GW1)
    current = Keys(env.keys[GW1].auth, env.keys[GW1].sign)
    unsigned = registry_pb2.RegistrationRequest(
        kind=registry_pb2.REGISTRATION_KIND_RENEWAL,
        gateway=gateway_to_pb(GW1),
        renewal_registration=renewal(GW1, None).SerializeToString(),
    )
    body = renewal(GW1, None)
    as_subsystem = signed_subsystem_request(
        subsystem_body(MJ_SUBSYSTEM, GW1, NOW_MS), own
    )
    replayed = registry_pb2.RegistrationRequest(
        kind=registry_pb2.REGISTRATION_KIND_RENEWAL,
        gateway=gateway_to_pb(GW1),
        renewal_registration=as_subsystem.subsystem_registration,
        signature=as_subsystem.signature,
        signer_cert_der=own.cert_der,
    )
    # GW1's genuine signature on a body naming GW2, sent as GW2's or as its own.
    for_gw2 = signed_renewal_request(renewal(GW2, None), own)
    mislabelled = signed_renewal_request(renewal(GW2, None), own)
    mislabelled.gateway.CopyFrom(gateway_to_pb(GW1))
    beside = signed_renewal_request(body, own)
    beside.auth_csr_pem = create_csr(Keys().auth, str(GW1))
    wrong_type = signed_renewal_request(body, own)
    signed_as_subsystem = pae(REGISTRATION_TYPE, wrong_type.renewal_registration)
    wrong_type.signature = sign_bytes(own.key, signed_as_subsystem)
    wrong_cn = renewal(GW1, None)
    wrong_cn.auth_csr_pem = create_csr(Keys().auth, str(GW2))
    cases = (
        ("MissingSignature", unsigned),
        # A SUBSYSTEM body and signature presented as a renewal: another PAE domain.
        ("InvalidSignature", replayed),
        ("InvalidSignature", wrong_type),
        # Another gateway of the same member, and another member's gateway.
        ("SignerMismatch", signed_renewal_request(body, env.signer(GW2))),
        ("SignerMismatch", signed_renewal_request(body, env.signer(PENSION_GW))),
        ("SignerMismatch", for_gw2),
        ("InvalidRequest", mislabelled),
        ("InvalidRequest", beside),
        ("ClockSkew", signed_renewal_request(
            renewal(GW1, None, issued_at_ms=NOW_MS - REGISTRATION_SKEW_MS - 1), own)),
        ("InvalidCsr", signed_renewal_request(
            renewal(GW1, None, auth=False, sign=False, log_key=False), own)),
        ("InvalidCsr", signed_renewal_request(wrong_cn, own)),
        ("InvalidCsr", signed_renewal_request(renewal(GW1, current), own)),  # the same keys
    )  # fmt: skip
    for code, request in cases:
        assert_refused(env, code, request)
    malformed = renewal(GW1, None)
    malformed.sign_csr_pem = b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
    assert_refused(env, "InvalidCsr", signed_renewal_request(malformed, own))


def test_a_revoked_gateway_cannot_renew(env: Env) -> None:
    signer = env.signer(GW1)
    env.auto.revoke_gateway(GW1, NOW_MS)
    assert_refused(env, "RevokedCertificate", signed_renewal_request(renewal(GW1, None), signer))
