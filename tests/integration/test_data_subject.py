"""The data subject is bound to the data, on real gateways (docs/protocol.md): the four
registries are registered with their descriptors, the global configuration carries
them, the consumer gateway fills in or refuses the declaration and the provider gateway
refuses a request declaring someone it does not name, before its IS sees it. So no read
of a citizen is filed under another citizen or under no one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio

from tests.integration.bus_federation import (
    GET_PERSON,
    Federation,
    bus_metadata,
    call_raw,
    start_federation,
)
from tests.integration.test_bus import (
    TRANSPORTS,
    _peer,
    _request,
    _send,
    expect_error,
    log_count,
    some_iin,
)
from tests.integration.test_registry_topics import CIVIL, gateway_command
from tests.integration.test_registry_topics import GW1 as MJ_GW1
from zhol.cli.demo import CONSUMER_GATEWAY, PROVIDER_GATEWAY
from zhol.cli.federation import ALL_AGENCIES, SUBSYSTEMS, service_methods
from zhol.core.clock import SystemClock
from zhol.core.ids import SubsystemId
from zhol.gateway.messagelog import list_records
from zhol.gateway.provision import init_gateway
from zhol.gateway.subjects import file_descriptor_set, subject_reader
from zhol.population.v1 import population_pb2
from zhol.registry import client
from zhol.registry.provision import init_registry, load_keys
from zhol.registry.server import start_registry
from zhol.registry.settings import load_registry_settings
from zhol.security.globalconf import verify_global_conf

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

MISMATCH = grpc.StatusCode.INVALID_ARGUMENT
GATEWAYS = (CONSUMER_GATEWAY, PROVIDER_GATEWAY)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def fed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    # Every agency registered (only population's adapter runs): the consumer gateway
    # binds requests to any registry's service from the configuration.
    federation = await start_federation(
        tmp_path_factory.mktemp("subjects"), persons=20, agencies=ALL_AGENCIES
    )
    yield federation
    await federation.stop()


def about(fed: Federation, iin: str) -> dict[str, list[dict[str, Any]]]:
    """Every record each gateway's log files under ``iin``."""
    return {
        g: list_records(fed.layout.gateway(g) / "messagelog.db", data_subject=iin) for g in GATEWAYS
    }


def get_person_body(iin: str) -> bytes:
    return population_pb2.GetPersonRequest(iin=iin).SerializeToString()


async def test_the_configuration_carries_every_registry_method_with_its_subject_fields(
    fed: Federation,
) -> None:
    conf = fed.provider.conf.current().conf
    services = {(SubsystemId.parse(sub.id), s) for sub in SUBSYSTEMS for s in sub.services}
    assert {svc.split(".")[1] for _, svc in services} >= {
        "population",
        "pension",
        "health",
        "education",
    }
    for provider, service in services:
        descriptors = conf.descriptor_sets[(provider, service)]
        for method in service_methods(service):
            reader = subject_reader(descriptors, service, method)
            assert bool(reader.marked) != reader.names_no_subject, f"{service}/{method}"


async def test_a_get_person_for_a_declared_as_b_is_refused_and_nothing_is_filed_under_b(
    fed: Federation,
) -> None:
    a, b = some_iin(fed, 0), some_iin(fed, 1)
    before = about(fed, b)
    await expect_error(
        fed,
        call_raw(fed.is_address(), GET_PERSON, get_person_body(a), bus_metadata(data_subject=b)),
        "Client.DataSubjectMismatch",
        MISMATCH,
    )
    assert about(fed, b) == before


@TRANSPORTS
@pytest.mark.parametrize("declared", ["another", "nobody"])
async def test_the_provider_gateway_refuses_a_peer_request_naming_someone_else(
    fed: Federation, stream: bool, declared: str
) -> None:
    """A consumer gateway that skips its own check (here: the test sealing with its
    keys) is refused by the provider before anything is logged or the IS invoked."""
    a, b = some_iin(fed, 0), some_iin(fed, 1)
    creds, channels = _peer(fed, stream=stream)
    message = _request(
        fed, creds.signer, data_subject=b if declared == "another" else "", body_iin=a
    )
    before_b, provider_records = about(fed, b), log_count(fed, PROVIDER_GATEWAY)
    await expect_error(
        fed,
        _send(fed, channels, message),
        "Server.ServerProxy.DataSubjectMismatch",
        MISMATCH,
        peer_port=True,
    )
    # The provider logs a request before it invokes its IS (the pipeline's order): no
    # record, no invocation.
    assert log_count(fed, PROVIDER_GATEWAY) == provider_records
    assert about(fed, b) == before_b


async def test_a_read_without_a_declaration_is_filed_under_the_citizen_it_reads(
    fed: Federation,
) -> None:
    a = some_iin(fed, 2)
    body, trailers = await call_raw(
        fed.is_address(), GET_PERSON, get_person_body(a), bus_metadata(data_subject="")
    )
    assert population_pb2.Person.FromString(body).iin == a
    message_id = trailers["zhol-message-id"]
    for gateway_id in GATEWAYS:
        records = list_records(
            fed.layout.gateway(gateway_id) / "messagelog.db", message_id=message_id
        )
        assert [(r["kind"], r["data_subject"]) for r in records] == [
            ("request", a),
            ("response", a),
        ]
        # The signed header says so too, not only the column.
        assert all(r["signed"]["data_subject"] == a and not r["mismatch"] for r in records)


async def test_a_request_naming_nobody_may_not_declare_someone(fed: Federation) -> None:
    b = some_iin(fed, 1)
    body = population_pb2.ListPersonsRequest(page_size=1).SerializeToString()
    await expect_error(
        fed,
        call_raw(
            fed.is_address(),
            "/zhol.population.v1.PopulationRegistry/ListPersons",
            body,
            bus_metadata(data_subject=b),
        ),
        "Client.DataSubjectMismatch",
        MISMATCH,
    )


async def test_no_registry_request_naming_a_citizen_can_be_declared_as_another(
    fed: Federation,
) -> None:
    """Every method of the four registries, from the descriptors the provider gateway
    holds: each marked field set to A and B declared is refused before it leaves."""
    a, b = some_iin(fed, 0), some_iin(fed, 1)
    conf = fed.consumer.conf.current().conf
    before = {g: log_count(fed, g) for g in GATEWAYS}
    tried = 0
    for sub in SUBSYSTEMS:
        for service in sub.services:
            descriptors = conf.descriptor_sets[(SubsystemId.parse(sub.id), service)]
            for method in service_methods(service):
                reader = subject_reader(descriptors, service, method)
                fields = reader.marked.get(reader.request_type, frozenset())
                for name in sorted(fields) or [""]:
                    request: Any = reader.message_class()
                    if name:
                        field = request.DESCRIPTOR.fields_by_name[name]
                        if field.is_repeated:
                            getattr(request, name).append(a)
                        else:
                            setattr(request, name, a)
                    with pytest.raises(grpc.aio.AioRpcError) as caught:
                        await call_raw(
                            fed.is_address(),
                            f"/{service}/{method}",
                            request.SerializeToString(),
                            bus_metadata(data_subject=b),
                        )
                    trailers = dict(caught.value.trailing_metadata() or ())
                    assert trailers.get("zhol-error") == "Client.DataSubjectMismatch", (
                        f"{service}/{method} {name}"
                    )
                    tried += 1
    assert tried >= 30
    assert {g: log_count(fed, g) for g in GATEWAYS} == before


async def test_add_subsystem_registers_a_service_with_its_descriptor_set(tmp_path: Path) -> None:
    """An agency's own service, registered from the command line with the file protoc
    writes (--include_imports --descriptor_set_out), reaches the configuration."""
    registry_dir = tmp_path / "registry"
    paths = init_registry(registry_dir, "KZ", auto_approve=True)
    anchor_der = load_keys(paths).anchor_der
    settings = load_registry_settings(registry_dir, overrides={"listen": "127.0.0.1:0"}, environ={})
    server, port = await start_registry(settings, environ={})
    registry = f"127.0.0.1:{port}"
    gateway_dir = tmp_path / "mj-gw1"
    service = "zhol.population.v1.PopulationRegistry"
    descriptors = tmp_path / "population.binpb"
    descriptors.write_bytes(file_descriptor_set(population_pb2.DESCRIPTOR))
    (tmp_path / "garbage.binpb").write_bytes(b"\xff not a descriptor set")
    try:
        await init_gateway(
            gateway_dir, MJ_GW1, registry, paths.anchor, "127.0.0.1:7001", timeout_s=20
        )
        args = ("add-subsystem", "--dir", str(gateway_dir), "--subsystem", str(CIVIL))
        offer = ("--service", f"{service}=127.0.0.1:5000:GetPerson,ListPersons")
        # A set the registry cannot read is refused; nothing is registered.
        garbage = ("--descriptor-set", str(tmp_path / "garbage.binpb"))
        assert await asyncio.to_thread(gateway_command, *args, *offer, *garbage) != 0
        good = ("--descriptor-set", str(descriptors))
        assert await asyncio.to_thread(gateway_command, *args, *offer, *good) == 0
        conf = verify_global_conf(
            await client.fetch_global_conf(registry), anchor_der, SystemClock().now_ms()
        )
        assert conf.descriptor_sets == {(CIVIL, service): descriptors.read_bytes()}
        reader = subject_reader(conf.descriptor_sets[(CIVIL, service)], service, "GetPerson")
        assert reader.marked == {"zhol.population.v1.GetPersonRequest": frozenset({"iin"})}
    finally:
        await server.stop(0)
