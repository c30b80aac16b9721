"""A SUBSYSTEM registration must come from its member's own gateway: every forgery is refused.

No sockets: the Registrar over a real SQLite store and the real federation CA.
Each refused request carries its own catalogue code and changes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.pki import new_ca
from tests.registry_signing import (
    assert_refused as shared_assert_refused,
)
from tests.registry_signing import (
    gateway_signer,
    issue_sign_cert,
    log_key_fields,
    service_pb,
    sign_csr,
    sign_key,
    subsystem_body,
)
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId, SubsystemId
from zhol.registry.client import signed_subsystem_request
from zhol.registry.model import RegistrationState
from zhol.registry.provision import init_registry, load_keys
from zhol.registry.registration import REGISTRATION_SKEW_MS, Registrar
from zhol.registry.store import Store
from zhol.registry.v1 import registry_pb2
from zhol.security.ca import CertificateAuthority, create_csr
from zhol.security.globalconf import gateway_to_pb, subsystem_to_pb
from zhol.security.keys import PrivateKey, generate_private_key
from zhol.security.sealing import REQUEST_TYPE, Signer, message_signed_bytes, pae, sign_bytes

NOW_MS = 1_790_000_000_000
NOW = dt.datetime.fromtimestamp(NOW_MS / 1000, tz=dt.UTC)
GW1 = GatewayId.parse("KZ/GOV/MJ/gw1")
GW2 = GatewayId.parse("KZ/GOV/MJ/gw2")
GW3 = GatewayId.parse("KZ/GOV/MJ/gw3")  # never registered
PENSION_GW = GatewayId.parse("KZ/GOV/MLSPP/gw1")
POPULATION = SubsystemId.parse("KZ/GOV/MJ/population")
PENSION = SubsystemId.parse("KZ/GOV/MLSPP/pension")
SERVICE = "zhol.population.v1.PopulationRegistry"
AUTH_KEYS: dict[GatewayId, PrivateKey] = {}


@dataclass(frozen=True)
class Env:
    store: Store
    ca: CertificateAuthority
    registrar: Registrar
    auto: Registrar

    def register_gateway(self, gateway: GatewayId, address: str) -> bytes:
        """Register (or re-register) a gateway; returns its new signing certificate."""
        auth_key = AUTH_KEYS.setdefault(gateway, generate_private_key())
        reg = self.auto.submit(
            registry_pb2.RegistrationRequest(
                kind=registry_pb2.REGISTRATION_KIND_GATEWAY,
                gateway=gateway_to_pb(gateway),
                gateway_address=address,
                auth_csr_pem=create_csr(auth_key, str(gateway)),
                sign_csr_pem=sign_csr(gateway),
                **log_key_fields(gateway),
            ),
            NOW_MS,
        )
        assert reg.state is RegistrationState.APPROVED
        return reg.sign_cert_der

    def signer(self, gateway: GatewayId) -> Signer:
        return gateway_signer(self.store, self.ca, gateway, NOW)


@pytest.fixture
def env(tmp_path: Path) -> Env:
    paths = init_registry(tmp_path / "registry", "KZ", False, NOW)
    keys = load_keys(paths)
    store = Store.open(paths.db)
    env = Env(
        store,
        keys.ca,
        Registrar(store, keys.ca, "KZ", auto_approve=False),
        Registrar(store, keys.ca, "KZ", auto_approve=True),
    )
    env.register_gateway(GW1, "127.0.0.1:7001")
    env.register_gateway(GW2, "127.0.0.1:7002")
    env.register_gateway(PENSION_GW, "127.0.0.1:7003")
    return env


def body(
    gateway: GatewayId = GW1, subsystem: SubsystemId = POPULATION, issued_at_ms: int = NOW_MS
) -> registry_pb2.SubsystemRegistration:
    return subsystem_body(
        subsystem, gateway, issued_at_ms, [service_pb(subsystem, SERVICE, ["GetPerson"])]
    )


def assert_refused(env: Env, code: str, request: registry_pb2.RegistrationRequest) -> None:
    shared_assert_refused(env, code, request, NOW_MS)


def test_the_gateways_own_signed_request_is_accepted(env: Env) -> None:
    request = signed_subsystem_request(body(), env.signer(GW1))
    reg = env.registrar.submit(request, NOW_MS)
    assert reg.state is RegistrationState.PENDING
    assert reg.request == request.SerializeToString(deterministic=True)
    env.registrar.approve(reg.id, NOW_MS + 60_000)  # approval needs no fresh issued-at
    snapshot = env.store.snapshot()
    assert [(s.id, s.gateways) for s in snapshot.subsystems] == [(POPULATION, (GW1,))]


def test_the_skew_window_is_inclusive(env: Env) -> None:
    for issued_at in (NOW_MS - REGISTRATION_SKEW_MS, NOW_MS + REGISTRATION_SKEW_MS):
        request = signed_subsystem_request(body(issued_at_ms=issued_at), env.signer(GW1))
        assert env.auto.submit(request, NOW_MS).state is RegistrationState.APPROVED


def test_unsigned_requests_are_refused(env: Env) -> None:
    legacy = registry_pb2.RegistrationRequest(  # the shape accepted before signing
        kind=registry_pb2.REGISTRATION_KIND_SUBSYSTEM,
        gateway=gateway_to_pb(GW1),
        subsystem=subsystem_to_pb(POPULATION),
        services=[service_pb(POPULATION, SERVICE, ["GetPerson"])],
    )
    assert_refused(env, "MissingSignature", legacy)
    signed = signed_subsystem_request(body(), env.signer(GW1))
    for field in ("signature", "signer_cert_der", "subsystem_registration"):
        stripped = registry_pb2.RegistrationRequest()
        stripped.CopyFrom(signed)
        stripped.ClearField(field)  # type: ignore[arg-type]
        assert_refused(env, "MissingSignature", stripped)


def test_fields_beside_the_signed_bytes_are_refused(env: Env) -> None:
    request = signed_subsystem_request(body(), env.signer(GW1))
    request.topics.add(topic="zhol.population.v1.BirthRegistered")
    assert_refused(env, "InvalidRequest", request)
    request = signed_subsystem_request(body(), env.signer(GW1))
    request.gateway.CopyFrom(gateway_to_pb(GW2))  # the outer gateway is not the signed one
    assert_refused(env, "InvalidRequest", request)


def test_a_gateway_request_carries_no_subsystem_signature(env: Env) -> None:
    signed = signed_subsystem_request(body(GW3), env.signer(GW3))
    request = registry_pb2.RegistrationRequest(
        kind=registry_pb2.REGISTRATION_KIND_GATEWAY,
        gateway=gateway_to_pb(GW3),
        gateway_address="127.0.0.1:7004",
        auth_csr_pem=create_csr(generate_private_key(), str(GW3)),
        sign_csr_pem=sign_csr(GW3),
        signature=signed.signature,
        **log_key_fields(GW3),
    )
    assert_refused(env, "InvalidRequest", request)


def test_bytes_altered_after_signing_are_refused(env: Env) -> None:
    request = signed_subsystem_request(body(), env.signer(GW1))
    grown = body()
    grown.topics.add(topic="zhol.population.v1.BirthRegistered")
    altered = registry_pb2.RegistrationRequest()
    altered.CopyFrom(request)
    altered.subsystem_registration = grown.SerializeToString(deterministic=True)
    assert_refused(env, "InvalidSignature", altered)
    flipped = bytearray(request.subsystem_registration)
    flipped[-1] ^= 1
    request.subsystem_registration = bytes(flipped)
    assert_refused(env, "InvalidSignature", request)


def test_a_message_seal_is_not_a_registration_signature(env: Env) -> None:
    request = signed_subsystem_request(body(), env.signer(GW1))
    key = sign_key(GW1)
    for other in (
        pae(REQUEST_TYPE, request.subsystem_registration),
        message_signed_bytes(REQUEST_TYPE, request.subsystem_registration, b""),
        request.subsystem_registration,
    ):
        request.signature = sign_bytes(key, other)
        assert_refused(env, "InvalidSignature", request)


def test_another_members_key_is_refused(env: Env) -> None:
    # The pension ministry's gateway, with its own genuine key and certificate.
    assert_refused(env, "SignerMismatch", signed_subsystem_request(body(), env.signer(PENSION_GW)))
    # Its key under MJ's certificate: the signature does not verify.
    forged = Signer(sign_key(PENSION_GW), env.signer(GW1).cert_der)
    assert_refused(env, "InvalidSignature", signed_subsystem_request(body(), forged))


def test_a_member_key_that_is_not_the_gateways_current_one_is_refused(env: Env) -> None:
    # A genuine CA-issued signing certificate of MJ that no registered gateway holds.
    stray_key = generate_private_key()
    stray = Signer(stray_key, issue_sign_cert(env.ca, stray_key, str(GW1.member), NOW))
    assert_refused(env, "SignerMismatch", signed_subsystem_request(body(), stray))


def test_certificates_outside_the_federation_are_refused(env: Env) -> None:
    rogue_ca = new_ca("Rogue CA", NOW)
    key = sign_key(GW1)
    rogue = Signer(key, issue_sign_cert(rogue_ca, key, str(GW1.member), NOW))
    assert_refused(env, "InvalidCertificate", signed_subsystem_request(body(), rogue))
    # GW1's TLS authentication certificate is the federation's, but not a signing one.
    auth_der = env.store.get_gateway(GW1).auth_cert_der  # type: ignore[union-attr]
    as_auth = Signer(AUTH_KEYS[GW1], auth_der)
    assert_refused(env, "InvalidCertificate", signed_subsystem_request(body(), as_auth))
    garbage = Signer(key, b"not a certificate")
    assert_refused(env, "InvalidCertificate", signed_subsystem_request(body(), garbage))


def test_a_revoked_signing_certificate_is_refused(env: Env) -> None:
    old_cert = env.signer(GW1).cert_der
    env.store.revoke_gateway(GW1, NOW_MS)
    env.register_gateway(GW1, "127.0.0.1:7001")  # back, with new certificates
    old = Signer(sign_key(GW1), old_cert)
    assert_refused(env, "RevokedCertificate", signed_subsystem_request(body(), old))
    new = signed_subsystem_request(body(), env.signer(GW1))
    assert env.auto.submit(new, NOW_MS).state is RegistrationState.APPROVED


@pytest.mark.parametrize("offset_ms", [REGISTRATION_SKEW_MS + 1, -REGISTRATION_SKEW_MS - 1])
def test_a_stale_or_future_issued_at_is_refused(env: Env, offset_ms: int) -> None:
    request = signed_subsystem_request(body(issued_at_ms=NOW_MS + offset_ms), env.signer(GW1))
    assert_refused(env, "ClockSkew", request)


def test_the_skew_window_is_a_parameter(env: Env) -> None:
    strict = Registrar(env.store, env.ca, "KZ", registration_skew_ms=1_000)
    request = signed_subsystem_request(body(issued_at_ms=NOW_MS - 1_001), env.signer(GW1))
    with pytest.raises(ZholError) as info:
        strict.submit(request, NOW_MS)
    assert info.value.full_code == "Server.Registry.ClockSkew"
    assert env.registrar.submit(request, NOW_MS).state is RegistrationState.PENDING


@pytest.mark.parametrize(
    ("named", "subsystem", "code"),
    [
        (GW2, POPULATION, "SignerMismatch"),  # MJ's other gateway, signed with gw1's key
        (GW3, POPULATION, "NotConfigured"),  # MJ's, but never registered
        (PENSION_GW, POPULATION, "InvalidRequest"),  # another member's gateway
        (PENSION_GW, PENSION, "SignerMismatch"),  # another member's subsystem and gateway
    ],
)
def test_a_wrong_gateway_is_refused(
    env: Env, named: GatewayId, subsystem: SubsystemId, code: str
) -> None:
    request = signed_subsystem_request(body(named, subsystem), env.signer(GW1))
    assert_refused(env, code, request)


def test_a_revoked_gateway_cannot_register(env: Env) -> None:
    signer = env.signer(GW2)
    env.store.revoke_gateway(GW2, NOW_MS)
    # Its signing certificate is on the revoked list with it.
    assert_refused(env, "RevokedCertificate", signed_subsystem_request(body(GW2), signer))


def test_approval_refuses_a_request_signed_before_the_gateway_was_replaced(env: Env) -> None:
    reg = env.registrar.submit(signed_subsystem_request(body(), env.signer(GW1)), NOW_MS)
    env.store.revoke_gateway(GW1, NOW_MS + 1)
    env.register_gateway(GW1, "127.0.0.1:7001")
    before = (env.store.counts()["subsystems"], env.store.change_counter())
    with pytest.raises(ZholError) as info:
        env.registrar.approve(reg.id, NOW_MS + 2)
    assert info.value.full_code == "Server.Registry.SignerMismatch"
    assert (env.store.counts()["subsystems"], env.store.change_counter()) == before
    assert env.store.get_registration(reg.id).state is RegistrationState.PENDING



def test_a_re_signed_retry_is_the_pending_request(env: Env) -> None:
    first = env.registrar.submit(signed_subsystem_request(body(), env.signer(GW1)), NOW_MS)
    retry = signed_subsystem_request(body(issued_at_ms=NOW_MS + 1_000), env.signer(GW1))
    assert env.registrar.submit(retry, NOW_MS + 1_000).id == first.id
    changed = body(issued_at_ms=NOW_MS + 2_000)
    changed.topics.add(topic="zhol.population.v1.BirthRegistered")
    assert_refused(env, "AlreadyRegistered", signed_subsystem_request(changed, env.signer(GW1)))
    assert [r.id for r in env.store.list_registrations(RegistrationState.PENDING)] == [first.id]
