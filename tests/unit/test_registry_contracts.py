"""Service contracts in SUBSYSTEM registrations: the registry checks them, records nothing
for a bad one (each refusal a catalogued code) and publishes the good ones."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from tests.registry_signing import (
    assert_refused,
    gateway_signer,
    log_key_fields,
    service_pb,
    sign_csr,
    subsystem_body,
)
from zhol.core.contracts import clashing_methods, read_contract
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId, SubsystemId
from zhol.gateway.subjects import file_descriptor_set, subject_reader
from zhol.population.v1 import population_pb2
from zhol.registry.client import signed_subsystem_request
from zhol.registry.model import RegistrationState
from zhol.registry.provision import init_registry, load_keys
from zhol.registry.registration import Registrar
from zhol.registry.settings import RegistrySettings
from zhol.registry.store import Store
from zhol.registry.v1 import registry_pb2
from zhol.security.ca import CertificateAuthority, create_csr
from zhol.security.globalconf import gateway_to_pb
from zhol.security.keys import generate_private_key

NOW_MS = 1_790_000_000_000
NOW = dt.datetime.fromtimestamp(NOW_MS / 1000, tz=dt.UTC)
GW = GatewayId.parse("KZ/GOV/MJ/gw1")
POPULATION = SubsystemId.parse("KZ/GOV/MJ/population")
CIVIL = SubsystemId.parse("KZ/GOV/MJ/civil")
SERVICE = "zhol.population.v1.PopulationRegistry"
CONTRACT = file_descriptor_set(population_pb2.DESCRIPTOR)
DECLARED = tuple(
    m.name for m in population_pb2.DESCRIPTOR.services_by_name["PopulationRegistry"].methods
)
LIMIT = 2 * len(CONTRACT)


@dataclass(frozen=True)
class Env:
    store: Store
    ca: CertificateAuthority
    registrar: Registrar
    auto: Registrar

    def request(
        self, *services: registry_pb2.ServiceDescription, subsystem: SubsystemId = POPULATION
    ) -> registry_pb2.RegistrationRequest:
        body = subsystem_body(subsystem, GW, NOW_MS, services)
        return signed_subsystem_request(body, gateway_signer(self.store, self.ca, GW, NOW))


def described(
    contract: bytes = CONTRACT,
    methods: tuple[str, ...] = (),
    subsystem: SubsystemId = POPULATION,
    grpc_service: str = SERVICE,
) -> registry_pb2.ServiceDescription:
    service = service_pb(subsystem, grpc_service, methods)
    service.descriptor_set = contract
    return service


@pytest.fixture
def env(tmp_path: Path) -> Env:
    paths = init_registry(tmp_path / "registry", "KZ", False, NOW)
    keys = load_keys(paths)
    store = Store.open(paths.db)
    limits = {"max_contract_bytes": LIMIT, "max_contracts_total_bytes": 3 * LIMIT}
    env = Env(
        store=store,
        ca=keys.ca,
        registrar=Registrar(store, keys.ca, "KZ", auto_approve=False, **limits),
        auto=Registrar(store, keys.ca, "KZ", auto_approve=True, **limits),
    )
    env.auto.submit(
        registry_pb2.RegistrationRequest(
            kind=registry_pb2.REGISTRATION_KIND_GATEWAY,
            gateway=gateway_to_pb(GW),
            gateway_address="127.0.0.1:7001",
            auth_csr_pem=create_csr(generate_private_key(), str(GW)),
            sign_csr_pem=sign_csr(GW),
            **log_key_fields(GW),
        ),
        NOW_MS,
    )
    return env


def with_service_renamed(method: str, input_type: str) -> bytes:
    """CONTRACT with ``method``'s request type changed to ``input_type``."""
    fds = descriptor_pb2.FileDescriptorSet.FromString(CONTRACT)
    for file in fds.file:
        for service in file.service:
            for m in service.method:
                if m.name == method:
                    m.input_type = input_type
    return fds.SerializeToString()


def test_a_contract_without_a_method_list_registers_every_method_it_declares(env: Env) -> None:
    env.auto.submit(env.request(described()), NOW_MS)
    (service,) = env.store.snapshot().services
    assert service.methods == DECLARED
    assert service.descriptor_set == CONTRACT
    # A gateway reads data subjects with the published contract.
    reader = subject_reader(service.descriptor_set, SERVICE, "GetPerson")
    assert reader.request_type == "zhol.population.v1.GetPersonRequest"


def test_a_listed_method_the_contract_declares_is_registered_alone(env: Env) -> None:
    env.auto.submit(env.request(described(methods=("GetPerson",))), NOW_MS)
    (service,) = env.store.snapshot().services
    assert service.methods == ("GetPerson",)


def _population_file() -> descriptor_pb2.FileDescriptorProto:
    fds = descriptor_pb2.FileDescriptorSet.FromString(CONTRACT)
    return next(f for f in fds.file if f.name == "zhol/population/v1/population.proto")


def _lacking_an_import() -> bytes:
    file = _population_file()
    file.dependency.append("agency/missing.proto")
    return descriptor_pb2.FileDescriptorSet(file=[file]).SerializeToString()


def _unresolved_type() -> bytes:
    """Parses as a set, but a request type it names is defined nowhere."""
    fds = descriptor_pb2.FileDescriptorSet.FromString(CONTRACT)
    for file in fds.file:
        for message in file.message_type:
            if message.name == "GetPersonRequest":
                message.field.add(name="ghost", number=99, type_name=".agency.Ghost", type=11)
    return fds.SerializeToString()


@pytest.mark.parametrize(
    ("service", "code"),
    [
        pytest.param(described(b"\xff\xff\xff"), "InvalidDescriptorSet", id="not-a-set"),
        pytest.param(described(b"\x0a\x03abc"), "InvalidDescriptorSet", id="bad-file"),
        pytest.param(described(b""), "InvalidRequest", id="no-contract-no-methods"),
        pytest.param(described(_unresolved_type()), "InvalidDescriptorSet", id="unresolved"),
        pytest.param(described(_lacking_an_import()), "InvalidDescriptorSet", id="lacks-import"),
        pytest.param(
            described(methods=("GetPerson", "GetTaxes")), "ContractMismatch", id="extra-method"
        ),
        pytest.param(
            described(grpc_service="zhol.population.v1.Elsewhere"),
            "ContractMismatch",
            id="service-not-declared",
        ),
        pytest.param(described(CONTRACT + b"\x00" * LIMIT), "ContractTooLarge", id="too-large"),
    ],
)
def test_a_bad_contract_is_refused_and_nothing_recorded(
    env: Env, service: registry_pb2.ServiceDescription, code: str
) -> None:
    assert_refused(env, code, env.request(service), NOW_MS)


def test_a_service_listed_twice_is_refused(env: Env) -> None:
    request = env.request(described(), described(methods=("GetPerson",)))
    assert_refused(env, "DuplicateService", request, NOW_MS)


def test_another_provider_may_offer_the_service_with_a_compatible_contract(env: Env) -> None:
    env.auto.submit(env.request(described()), NOW_MS)
    # The same contract, or one with a method more (a provider upgrading first), is
    # the same interface: zhol-provider chooses between them.
    fds = descriptor_pb2.FileDescriptorSet.FromString(CONTRACT)
    file = next(f for f in fds.file if f.service)
    file.service[0].method.add(
        name="GetPersonAgain",
        input_type=".zhol.population.v1.GetPersonRequest",
        output_type=file.service[0].method[0].output_type,
    )
    extended = fds.SerializeToString()
    env.auto.submit(env.request(described(extended, subsystem=CIVIL), subsystem=CIVIL), NOW_MS)
    assert {s.provider for s in env.store.snapshot().services} == {POPULATION, CIVIL}


def test_a_contract_clashing_with_another_providers_is_refused(env: Env) -> None:
    env.auto.submit(env.request(described()), NOW_MS)
    clashing = with_service_renamed("GetPerson", ".zhol.population.v1.GetAddressRequest")
    assert clashing_methods(read_contract(clashing, SERVICE), read_contract(CONTRACT, SERVICE)) == (
        "GetPerson",
    )
    request = env.request(described(clashing, subsystem=CIVIL), subsystem=CIVIL)
    assert_refused(env, "DuplicateService", request, NOW_MS)
    # The provider itself may change its own contract (nobody else offers it).
    env.auto.submit(env.request(described(clashing)), NOW_MS)
    (service,) = env.store.snapshot().services
    assert service.descriptor_set == clashing


def test_the_total_of_published_contracts_is_bounded(env: Env) -> None:
    # Six providers' contracts (LIMIT / 2 each) fill the total (3 * LIMIT)...
    for code in ("population", "civil", "notary", "archive", "courts", "bailiffs"):
        sub = SubsystemId.parse(f"KZ/GOV/MJ/{code}")
        env.auto.submit(env.request(described(subsystem=sub), subsystem=sub), NOW_MS)
    # ...a seventh would pass it; a provider replacing its own contract does not.
    seventh = SubsystemId.parse("KZ/GOV/MJ/prisons")
    request = env.request(described(subsystem=seventh), subsystem=seventh)
    assert_refused(env, "ContractTooLarge", request, NOW_MS)
    env.auto.submit(env.request(described(methods=("GetPerson",))), NOW_MS)


def test_approval_checks_again_what_changed_since_submission(env: Env) -> None:
    clashing = with_service_renamed("GetPerson", ".zhol.population.v1.GetAddressRequest")
    pending = env.registrar.submit(
        env.request(described(clashing, subsystem=CIVIL), subsystem=CIVIL), NOW_MS
    )
    env.auto.submit(env.request(described()), NOW_MS)
    before = (env.store.change_counter(), env.store.snapshot())
    with pytest.raises(ZholError) as info:
        env.registrar.approve(pending.id, NOW_MS)
    assert info.value.full_code == "Server.Registry.DuplicateService"
    assert (env.store.change_counter(), env.store.snapshot()) == before
    assert env.store.get_registration(pending.id).state is RegistrationState.PENDING


def test_the_contract_limits_are_registry_settings(tmp_path: Path) -> None:
    settings = RegistrySettings(tmp_path)
    assert (settings.max_contract_bytes, settings.max_contracts_total_bytes) == (
        1024 * 1024,
        16 * 1024 * 1024,
    )
    with pytest.raises(ValueError):
        replace(settings, max_contract_bytes=0)
    with pytest.raises(ValueError):
        replace(settings, max_contract_bytes=2, max_contracts_total_bytes=1)
    with pytest.raises(ValueError):
        replace(settings, max_contracts_total_bytes=64 * 1024 * 1024)
