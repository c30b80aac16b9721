"""The registry over real gRPC on 127.0.0.1 (ephemeral ports), as gateways use it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.registry_signing import (
    gateway_signer,
    log_key_fields,
    service_pb,
    sign_csr,
    subsystem_body,
)
from zhol.core.clock import FixedClock
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId, SubsystemId
from zhol.registry import client
from zhol.registry.provision import RegistryPaths, init_registry, load_keys
from zhol.registry.registration import Registrar, reject_registration, revoke_gateway
from zhol.registry.server import start_registry
from zhol.registry.settings import RegistrySettings, load_registry_settings
from zhol.registry.store import Store
from zhol.registry.v1 import registry_pb2
from zhol.security.ca import create_csr
from zhol.security.globalconf import GlobalConf, gateway_to_pb, verify_global_conf
from zhol.security.keys import generate_private_key
from zhol.security.validation import CertificateValidator, cert_sha256

pytestmark = pytest.mark.integration

NOW_MS = 1_790_000_000_000
NOW = dt.datetime.fromtimestamp(NOW_MS / 1000, tz=dt.UTC)
GW1 = GatewayId.parse("KZ/GOV/MJ/gw1")
POPULATION = SubsystemId.parse("KZ/GOV/MJ/population")
PERSON_SERVICE = "zhol.population.v1.PopulationRegistry"


@dataclass(frozen=True)
class Running:
    address: str
    settings: RegistrySettings
    paths: RegistryPaths
    clock: FixedClock

    @property
    def anchor_der(self) -> bytes:
        return _der(x509.load_pem_x509_certificate(self.paths.anchor.read_bytes()))

    @property
    def ca_cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.paths.ca_cert.read_bytes())

    def registrar(self) -> Registrar:
        """The operator's side: the registration module on the same data directory."""
        keys = load_keys(self.paths)
        return Registrar(Store.open(self.paths.db), keys.ca, self.settings.instance)

    async def conf(self) -> GlobalConf:
        signed = await client.fetch_global_conf(self.address)
        return verify_global_conf(signed, self.anchor_der, self.clock.now_ms())


StartRegistry = Callable[[bool], Awaitable[Running]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[StartRegistry]:
    servers: list[grpc.aio.Server] = []

    async def _start(auto_approve: bool) -> Running:
        data_dir = tmp_path / f"registry{len(servers)}"
        paths = init_registry(data_dir, "KZ", auto_approve, NOW)
        settings = load_registry_settings(data_dir, overrides={"listen": "127.0.0.1:0"}, environ={})
        clock = FixedClock(NOW_MS)
        server, port = await start_registry(settings, clock, environ={})
        servers.append(server)
        return Running(f"127.0.0.1:{port}", settings, paths, clock)

    yield _start
    for server in servers:
        await server.stop(None)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def gateway_request(gateway: GatewayId = GW1) -> registry_pb2.RegistrationRequest:
    return registry_pb2.RegistrationRequest(
        kind=registry_pb2.REGISTRATION_KIND_GATEWAY,
        gateway=gateway_to_pb(gateway),
        gateway_address="127.0.0.1:7001",
        member_name="Ministry of Justice",
        auth_csr_pem=create_csr(generate_private_key(), str(gateway)),
        sign_csr_pem=sign_csr(gateway),
        **log_key_fields(gateway),
    )


def subsystem_request(reg: Running) -> registry_pb2.RegistrationRequest:
    """Signed by GW1's member key with its current signing certificate, as its gateway does."""
    service = service_pb(POPULATION, PERSON_SERVICE, ["GetPerson", "FindPeople"])
    body = subsystem_body(POPULATION, GW1, reg.clock.now_ms(), [service])
    signer = gateway_signer(Store.open(reg.paths.db), load_keys(reg.paths).ca, GW1, NOW)
    return client.signed_subsystem_request(body, signer)


async def test_auto_approved_gateway_gets_certificates_chaining_to_the_ca(
    start: StartRegistry,
) -> None:
    reg = await start(True)
    request_id = await client.submit_registration(reg.address, gateway_request())
    status = await client.wait_for_registration(reg.address, request_id, timeout_s=5)
    assert status.state == registry_pb2.REGISTRATION_STATE_APPROVED

    ca_cert = reg.ca_cert
    assert x509.load_pem_x509_certificate(status.ca_cert_pem) == ca_cert
    auth = x509.load_pem_x509_certificate(status.auth_cert_pem)
    sign = x509.load_pem_x509_certificate(status.sign_cert_pem)
    auth.verify_directly_issued_by(ca_cert)
    sign.verify_directly_issued_by(ca_cert)

    # The gateway's own validator accepts them for the right identities.
    conf = await reg.conf()
    validator = CertificateValidator(conf.ca_certs_der, conf.revoked_cert_sha256)
    assert validator.verify_auth_cert(_der(auth), NOW) == GW1
    assert validator.verify_signing_cert(_der(sign), NOW)[0] == GW1.member

    # The configuration lists the gateway with its authentication certificate.
    entry = conf.gateways[GW1]
    assert entry.address == "127.0.0.1:7001"
    assert entry.auth_cert_sha256 == cert_sha256(_der(auth))
    assert conf.gateway_by_auth_hash(entry.auth_cert_sha256) == entry
    assert conf.members[GW1.member] == "Ministry of Justice"


async def test_pending_until_the_operator_approves(start: StartRegistry) -> None:
    reg = await start(False)
    request_id = await client.submit_registration(reg.address, gateway_request())
    with pytest.raises(ZholError) as info:
        await client.wait_for_registration(reg.address, request_id, timeout_s=0.2)
    assert info.value.full_code == "Server.Registry.RegistrationPending"
    assert GW1 not in (await reg.conf()).gateways

    reg.registrar().approve(request_id, reg.clock.now_ms())
    status = await client.wait_for_registration(reg.address, request_id, timeout_s=5)
    assert status.state == registry_pb2.REGISTRATION_STATE_APPROVED
    x509.load_pem_x509_certificate(status.auth_cert_pem).verify_directly_issued_by(reg.ca_cert)
    assert GW1 in (await reg.conf()).gateways


async def test_rejection_reaches_the_requester_with_its_reason(start: StartRegistry) -> None:
    reg = await start(False)
    request_id = await client.submit_registration(reg.address, gateway_request())
    reject_registration(
        Store.open(reg.paths.db), request_id, "member not in the state register", NOW_MS
    )
    with pytest.raises(ZholError) as info:
        await client.wait_for_registration(reg.address, request_id, timeout_s=5)
    assert info.value.code.name == "RegistrationRejected"
    assert info.value.full_code == "Server.Registry.RegistrationRejected"
    status = await client.get_registration_status(reg.address, request_id)
    assert status.state == registry_pb2.REGISTRATION_STATE_REJECTED
    assert status.reason == "member not in the state register"


async def test_subsystem_and_services_reach_the_configuration(start: StartRegistry) -> None:
    reg = await start(True)
    await client.submit_registration(reg.address, gateway_request())
    request_id = await client.submit_registration(reg.address, subsystem_request(reg))
    status = await client.wait_for_registration(reg.address, request_id, timeout_s=5)
    assert status.state == registry_pb2.REGISTRATION_STATE_APPROVED
    conf = await reg.conf()
    assert [g.id for g in conf.gateways_for(POPULATION)] == [GW1]
    assert conf.resolve_service(PERSON_SERVICE, "FindPeople", None).subsystem == POPULATION


async def test_revocation_publishes_a_new_version_listing_the_hashes(
    start: StartRegistry,
) -> None:
    reg = await start(True)
    request_id = await client.submit_registration(reg.address, gateway_request())
    status = await client.wait_for_registration(reg.address, request_id, timeout_s=5)
    await client.submit_registration(reg.address, subsystem_request(reg))
    before = await reg.conf()
    assert GW1 in before.gateways
    assert (await reg.conf()).version == before.version  # nothing changed: same version

    revoke_gateway(Store.open(reg.paths.db), GW1, reg.clock.now_ms())
    after = await reg.conf()
    assert after.version > before.version
    assert GW1 not in after.gateways
    assert after.gateways_for(POPULATION) == ()
    auth_hash = cert_sha256(_der(x509.load_pem_x509_certificate(status.auth_cert_pem)))
    sign_hash = cert_sha256(_der(x509.load_pem_x509_certificate(status.sign_cert_pem)))
    assert {auth_hash, sign_hash} <= after.revoked_cert_sha256


async def test_configuration_is_refreshed_while_the_registry_runs(start: StartRegistry) -> None:
    reg = await start(True)
    first = await reg.conf()
    reg.clock.advance(reg.settings.refresh_interval_s)
    second = await reg.conf()
    assert second.version == first.version + 1
    assert second.expires_at_ms > first.expires_at_ms
    reg.clock.advance(reg.settings.validity_s)  # long after the first one expired
    with pytest.raises(ZholError) as info:
        first.check_fresh(reg.clock.now_ms())
    assert info.value.code.name == "OutdatedGlobalConf"
    third = await reg.conf()
    assert third.version > second.version


async def test_errors_arrive_as_registry_codes(start: StartRegistry) -> None:
    reg = await start(True)
    bad_csr = gateway_request()
    bad_csr.auth_csr_pem = create_csr(generate_private_key(), "KZ/GOV/MJ/someone-else")
    bad_id = gateway_request()
    bad_id.gateway.member.member_class = "XYZ"
    cases = [
        (lambda: client.submit_registration(reg.address, bad_csr), "Server.Registry.InvalidCsr"),
        (
            lambda: client.submit_registration(reg.address, bad_id),
            "Server.Registry.InvalidIdentifier",
        ),
        (
            lambda: client.get_registration_status(reg.address, "no-such-request"),
            "Server.Registry.UnknownRegistration",
        ),
    ]
    for call, full_code in cases:
        with pytest.raises(ZholError) as info:
            await call()
        assert info.value.full_code == full_code

    await client.submit_registration(reg.address, gateway_request())
    with pytest.raises(ZholError) as info:
        await client.submit_registration(reg.address, gateway_request())
    assert info.value.full_code == "Server.Registry.AlreadyRegistered"
    assert info.value.status == grpc.StatusCode.ALREADY_EXISTS


async def test_unreachable_registry_is_a_network_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connection refused
        with pytest.raises(ZholError) as info:
            await client.fetch_global_conf(f"127.0.0.1:{port}", timeout_s=1.0)
    assert info.value.code.name in ("NetworkError", "Timeout")


async def test_versions_survive_a_restart(start: StartRegistry) -> None:
    reg = await start(True)
    await client.submit_registration(reg.address, gateway_request())
    version = (await reg.conf()).version
    server, port = await start_registry(reg.settings, reg.clock, environ={})
    try:
        signed = await client.fetch_global_conf(f"127.0.0.1:{port}")
        assert verify_global_conf(signed, reg.anchor_der).version == version
    finally:
        await server.stop(None)


async def test_a_port_in_use_is_an_os_error(start: StartRegistry) -> None:
    reg = await start(True)
    taken = dataclasses.replace(reg.settings, listen=reg.address)
    with pytest.raises(OSError):
        await start_registry(taken, reg.clock, environ={})
