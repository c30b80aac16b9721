"""Registration against the SQLite store: every refused request changes nothing."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from tests.registry_signing import (
    gateway_signer,
    log_key_fields,
    service_pb,
    sign_csr,
    subsystem_body,
)
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId, SubsystemId
from zhol.registry.client import signed_subsystem_request
from zhol.registry.model import RegistrationKind, RegistrationState
from zhol.registry.provision import init_registry, load_keys
from zhol.registry.registration import Registrar, reject_registration, revoke_gateway
from zhol.registry.store import Store
from zhol.registry.v1 import registry_pb2
from zhol.security.ca import CertificateAuthority, create_csr
from zhol.security.globalconf import gateway_to_pb
from zhol.security.keys import generate_private_key
from zhol.security.validation import cert_sha256

NOW_MS = 1_790_000_000_000
NOW = dt.datetime.fromtimestamp(NOW_MS / 1000, tz=dt.UTC)
GW1 = GatewayId.parse("KZ/GOV/MJ/gw1")
GW2 = GatewayId.parse("KZ/GOV/MJ/gw2")
PENSION_GW = GatewayId.parse("KZ/GOV/MLSPP/gw1")
POPULATION = SubsystemId.parse("KZ/GOV/MJ/population")
PERSON_SERVICE = "zhol.population.v1.PopulationRegistry"


@dataclass(frozen=True)
class Env:
    store: Store
    ca: CertificateAuthority
    registrar: Registrar
    auto: Registrar

    def subsystem_request(
        self,
        subsystem: SubsystemId = POPULATION,
        gateway: GatewayId = GW1,
        methods: tuple[str, ...] = (),
        edit: Callable[[registry_pb2.SubsystemRegistration], None] | None = None,
    ) -> registry_pb2.RegistrationRequest:
        """Signed as the gateway signs it (after ``edit``), with its current certificate."""
        service = service_pb(subsystem, PERSON_SERVICE, methods or ("GetPerson",))
        body = subsystem_body(subsystem, gateway, NOW_MS, [service])
        if edit is not None:
            edit(body)
        return signed_subsystem_request(body, gateway_signer(self.store, self.ca, gateway, NOW))


@pytest.fixture
def env(tmp_path: Path) -> Env:
    paths = init_registry(tmp_path / "registry", "KZ", False, NOW)
    keys = load_keys(paths)
    store = Store.open(paths.db)
    return Env(
        store=store,
        ca=keys.ca,
        registrar=Registrar(store, keys.ca, "KZ", auto_approve=False),
        auto=Registrar(store, keys.ca, "KZ", auto_approve=True),
    )


def gateway_request(
    gateway: GatewayId = GW1,
    *,
    auth_cn: str | None = None,
    sign_cn: str | None = None,
    address: str = "127.0.0.1:7001",
) -> registry_pb2.RegistrationRequest:
    return registry_pb2.RegistrationRequest(
        kind=registry_pb2.REGISTRATION_KIND_GATEWAY,
        gateway=gateway_to_pb(gateway),
        gateway_address=address,
        member_name="Ministry of Justice",
        auth_csr_pem=create_csr(generate_private_key(), auth_cn or str(gateway)),
        sign_csr_pem=(
            create_csr(generate_private_key(), sign_cn) if sign_cn else sign_csr(gateway)
        ),
        **log_key_fields(gateway),
    )


def assert_refused(env: Env, code: str, action: Callable[[], object]) -> ZholError:
    """action raises ZholError(code) with hop Server.Registry and changes nothing."""
    before = (env.store.counts(), env.store.change_counter())
    with pytest.raises(ZholError) as info:
        action()
    assert info.value.code.name == code
    assert info.value.full_code == f"Server.Registry.{code}"
    assert (env.store.counts(), env.store.change_counter()) == before
    return info.value


def test_gateway_registration_pending_then_approved(env: Env) -> None:
    counter = env.store.change_counter()
    reg = env.registrar.submit(gateway_request(), NOW_MS)
    assert reg.state is RegistrationState.PENDING
    assert reg.kind is RegistrationKind.GATEWAY
    assert env.store.change_counter() == counter  # a request alone changes no configuration
    assert env.store.counts()["gateways"] == 0

    approved = env.registrar.approve(reg.id, NOW_MS + 1)
    assert approved.state is RegistrationState.APPROVED
    assert approved.decided_at_ms == NOW_MS + 1
    counts = env.store.counts()
    assert (counts["members"], counts["gateways"], counts["registrations"]) == (1, 1, 1)
    assert env.store.change_counter() == counter + 1
    gateway = env.store.get_gateway(GW1)
    assert gateway is not None and not gateway.revoked
    assert gateway.auth_cert_sha256 == cert_sha256(approved.auth_cert_der)
    assert gateway.sign_cert_sha256 == cert_sha256(approved.sign_cert_der)
    auth = x509.load_der_x509_certificate(approved.auth_cert_der)
    assert auth.subject.rfc4514_string() == f"CN={GW1}"

    status = env.registrar.status(reg.id)
    assert status.state == registry_pb2.REGISTRATION_STATE_APPROVED
    assert status.auth_cert_pem.startswith(b"-----BEGIN CERTIFICATE")
    assert status.ca_cert_pem == env.registrar.ca_cert_pem


def test_auto_approve(env: Env) -> None:
    reg = env.auto.submit(gateway_request(), NOW_MS)
    assert reg.state is RegistrationState.APPROVED
    assert env.store.get_gateway(GW1) is not None


def test_reject_delivers_the_reason_and_changes_nothing_else(env: Env) -> None:
    reg = env.registrar.submit(gateway_request(), NOW_MS)
    before = {k: v for k, v in env.store.counts().items() if k != "registrations"}
    counter = env.store.change_counter()
    rejected = reject_registration(env.store, reg.id, "unknown agency", NOW_MS)
    assert rejected.state is RegistrationState.REJECTED
    assert {k: v for k, v in env.store.counts().items() if k != "registrations"} == before
    assert env.store.change_counter() == counter
    status = env.registrar.status(reg.id)
    assert status.state == registry_pb2.REGISTRATION_STATE_REJECTED
    assert status.reason == "unknown agency"
    assert status.auth_cert_pem == b""
    # A decided request cannot be decided again.
    assert_refused(env, "InvalidRequest", lambda: env.registrar.approve(reg.id, NOW_MS))
    assert_refused(
        env, "InvalidRequest", lambda: reject_registration(env.store, reg.id, "again", NOW_MS)
    )


def test_reject_needs_a_reason(env: Env) -> None:
    reg = env.registrar.submit(gateway_request(), NOW_MS)
    assert_refused(env, "InvalidRequest", lambda: reject_registration(env.store, reg.id, " ", 1))
    assert env.store.get_registration(reg.id).state is RegistrationState.PENDING


def test_duplicate_active_gateway_is_refused(env: Env) -> None:
    env.auto.submit(gateway_request(), NOW_MS)
    assert_refused(env, "AlreadyRegistered", lambda: env.auto.submit(gateway_request(), NOW_MS))


def test_approving_twice_is_refused(env: Env) -> None:
    reg = env.auto.submit(gateway_request(), NOW_MS)
    assert_refused(env, "AlreadyRegistered", lambda: env.registrar.approve(reg.id, NOW_MS))


def test_identical_resubmission_returns_the_pending_request(env: Env) -> None:
    request = gateway_request()
    first = env.registrar.submit(request, NOW_MS)
    assert env.registrar.submit(request, NOW_MS + 5).id == first.id
    assert env.store.counts()["registrations"] == 1
    # A different request for the same gateway while one is pending is refused.
    assert_refused(
        env, "AlreadyRegistered", lambda: env.registrar.submit(gateway_request(), NOW_MS)
    )


def _tampered_csr(common_name: str) -> bytes:
    """A CSR whose self-signature no longer verifies (no proof of possession)."""
    pem = create_csr(generate_private_key(), common_name)
    body = b"".join(pem.split(b"\n")[1:-2])
    der = bytearray(base64.b64decode(body))
    der[-1] ^= 0x01  # last byte of the ECDSA signature
    b64 = base64.encodebytes(bytes(der)).replace(b"\n", b"")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return b"\n".join(
        [b"-----BEGIN CERTIFICATE REQUEST-----", *lines, b"-----END CERTIFICATE REQUEST-----", b""]
    )


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda r: setattr(r, "auth_csr_pem", b"not a csr"), id="garbage-auth"),
        pytest.param(lambda r: setattr(r, "sign_csr_pem", b""), id="missing-sign"),
        pytest.param(
            lambda r: setattr(r, "auth_csr_pem", _tampered_csr(str(GW1))), id="no-possession"
        ),
        pytest.param(
            lambda r: setattr(r, "auth_csr_pem", create_csr(generate_private_key(), str(GW2))),
            id="auth-cn-other-gateway",
        ),
        pytest.param(
            lambda r: setattr(r, "sign_csr_pem", create_csr(generate_private_key(), "KZ/GOV/MH")),
            id="sign-cn-other-member",
        ),
    ],
)
def test_bad_csr_is_refused_and_nothing_stored(
    env: Env, mutate: Callable[[registry_pb2.RegistrationRequest], None]
) -> None:
    request = gateway_request()
    mutate(request)
    assert_refused(env, "InvalidCsr", lambda: env.auto.submit(request, NOW_MS))
    assert env.store.counts()["registrations"] == 0


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda r: setattr(r.gateway.member, "member_class", "XYZ"), id="bad-class"),
        pytest.param(lambda r: setattr(r.gateway, "server_code", ""), id="empty-code"),
        pytest.param(lambda r: setattr(r.gateway.member, "instance", "EE"), id="other-instance"),
        pytest.param(lambda r: r.ClearField("gateway"), id="missing"),
    ],
)
def test_bad_identifier_is_refused_and_nothing_stored(
    env: Env, mutate: Callable[[registry_pb2.RegistrationRequest], None]
) -> None:
    request = gateway_request()
    mutate(request)
    assert_refused(env, "InvalidIdentifier", lambda: env.auto.submit(request, NOW_MS))


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda r: setattr(r, "gateway_address", "no-port"), id="address"),
        pytest.param(lambda r: setattr(r, "kind", 0), id="kind"),
        pytest.param(lambda r: setattr(r, "member_name", "x" * 500), id="name"),
    ],
)
def test_malformed_gateway_request_is_refused(
    env: Env, mutate: Callable[[registry_pb2.RegistrationRequest], None]
) -> None:
    request = gateway_request()
    mutate(request)
    assert_refused(env, "InvalidRequest", lambda: env.auto.submit(request, NOW_MS))


def test_subsystem_registration_and_failover_order(env: Env) -> None:
    env.auto.submit(gateway_request(GW1), NOW_MS)
    env.auto.submit(gateway_request(GW2, address="127.0.0.1:7002"), NOW_MS)
    counter = env.store.change_counter()

    first = env.registrar.submit(env.subsystem_request(gateway=GW2), NOW_MS)
    assert first.state is RegistrationState.PENDING
    env.registrar.approve(first.id, NOW_MS)
    env.auto.submit(env.subsystem_request(gateway=GW1, methods=("GetPerson", "FindPeople")), NOW_MS)
    assert env.store.change_counter() == counter + 2

    snapshot = env.store.snapshot()
    (subsystem,) = snapshot.subsystems
    assert subsystem.id == POPULATION
    assert subsystem.gateways == (GW2, GW1)
    (service,) = snapshot.services
    assert service.grpc_service == PERSON_SERVICE
    assert service.methods == ("GetPerson", "FindPeople")  # the newer description wins


def test_subsystem_needs_a_registered_gateway_of_its_member(env: Env) -> None:
    assert_refused(env, "NotConfigured", lambda: env.auto.submit(env.subsystem_request(), NOW_MS))
    env.auto.submit(gateway_request(PENSION_GW), NOW_MS)
    assert_refused(
        env,
        "InvalidRequest",
        lambda: env.auto.submit(env.subsystem_request(gateway=PENSION_GW), NOW_MS),
    )


def test_subsystem_with_bad_service_is_refused(env: Env) -> None:
    env.auto.submit(gateway_request(), NOW_MS)
    bad_method = env.subsystem_request(methods=("Get Person",))
    assert_refused(env, "InvalidIdentifier", lambda: env.auto.submit(bad_method, NOW_MS))

    def other_provider_edit(body: registry_pb2.SubsystemRegistration) -> None:
        body.services[0].provider.subsystem_code = "civil"

    def bad_descriptors_edit(body: registry_pb2.SubsystemRegistration) -> None:
        body.services[0].descriptor_set = b"\xff\xff"

    other_provider = env.subsystem_request(edit=other_provider_edit)
    assert_refused(env, "InvalidRequest", lambda: env.auto.submit(other_provider, NOW_MS))
    bad_descriptors = env.subsystem_request(edit=bad_descriptors_edit)
    assert_refused(env, "InvalidDescriptorSet", lambda: env.auto.submit(bad_descriptors, NOW_MS))


def test_revocation(env: Env) -> None:
    reg = env.auto.submit(gateway_request(), NOW_MS)
    env.auto.submit(env.subsystem_request(), NOW_MS)
    counter = env.store.change_counter()

    gateway, changed = revoke_gateway(env.store, GW1, NOW_MS + 10)
    assert changed and gateway.revoked_at_ms == NOW_MS + 10
    assert env.store.change_counter() == counter + 1
    revoked = {r.sha256 for r in env.store.revoked_certs()}
    assert revoked == {cert_sha256(reg.auth_cert_der), cert_sha256(reg.sign_cert_der)}

    # Revoking again changes nothing; a revoked gateway serves no new subsystem.
    assert revoke_gateway(env.store, GW1, NOW_MS + 20) == (gateway, False)
    assert env.store.change_counter() == counter + 1
    other = env.subsystem_request(SubsystemId.parse("KZ/GOV/MJ/civil"))
    assert_refused(env, "NotConfigured", lambda: env.auto.submit(other, NOW_MS))
    assert_refused(env, "NotConfigured", lambda: revoke_gateway(env.store, GW2, NOW_MS))

    # The gateway may register again with new keys; old hashes stay revoked.
    again = env.auto.submit(gateway_request(), NOW_MS + 30)
    assert again.state is RegistrationState.APPROVED
    fresh = env.store.get_gateway(GW1)
    assert fresh is not None and not fresh.revoked
    assert fresh.auth_cert_sha256 not in revoked
    assert {r.sha256 for r in env.store.revoked_certs()} == revoked


def test_unknown_registration(env: Env) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    assert_refused(env, "UnknownRegistration", lambda: env.registrar.status(missing))
    assert_refused(env, "UnknownRegistration", lambda: env.registrar.approve(missing, NOW_MS))
    assert_refused(
        env, "UnknownRegistration", lambda: reject_registration(env.store, missing, "x", NOW_MS)
    )


def test_store_reopens_with_its_data(env: Env) -> None:
    env.auto.submit(gateway_request(), NOW_MS)
    reopened = Store.open(env.store.path)
    assert reopened.counts() == env.store.counts()
    assert reopened.change_counter() == env.store.change_counter()
    (reg,) = reopened.list_registrations(RegistrationState.APPROVED)
    assert reg.gateway == GW1
    assert reopened.list_registrations(RegistrationState.PENDING) == ()
