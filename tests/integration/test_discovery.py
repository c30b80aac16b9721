"""Discovery (zhol.bus.v1.Discovery/ListMembers) answered by an IS's own gateway from
the global configuration it holds, on a real in-process federation."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from google.protobuf.json_format import MessageToDict

from tests.integration.bus_federation import (
    Federation,
    bus_metadata,
    call_raw,
    error_code,
    start_federation,
)
from tests.integration.test_bus import log_count
from tests.waiting import until
from zhol.bus.v1 import discovery_pb2
from zhol.cli.demo import CLIENT, CONSUMER_GATEWAY, PROVIDER_GATEWAY
from zhol.cli.main import EXIT_READER_GONE
from zhol.cli.main import main as zhol
from zhol.core.ids import GatewayId, SubsystemId
from zhol.gateway.discovery import LIST_MEMBERS_PATH
from zhol.gateway.provision import ServiceOffer, register_subsystem

pytestmark = pytest.mark.asyncio(loop_scope="module")

POPULATION = "KZ/GOV/MJ/population"
CIVIL = "KZ/GOV/MJ/civil"
CIVIL_SERVICE = "zhol.civil.v1.CivilRegistry"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def fed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    federation = await start_federation(tmp_path_factory.mktemp("discovery"), persons=20)
    try:
        yield federation
    finally:
        await federation.stop()


async def list_members(
    fed: Federation, client: str | None = CLIENT, body: bytes = b""
) -> discovery_pb2.ListMembersResponse:
    # Only zhol-client: no user, purpose or data subject (the question is about nobody).
    metadata = bus_metadata(client=client, purpose=None, user_id=None)
    answer, _ = await call_raw(fed.is_address(CONSUMER_GATEWAY), LIST_MEMBERS_PATH, body, metadata)
    return discovery_pb2.ListMembersResponse.FromString(answer)


def subsystems(
    answer: discovery_pb2.ListMembersResponse,
) -> dict[str, discovery_pb2.DiscoveredSubsystem]:
    return {s.id: s for m in answer.members for s in m.subsystems}


async def test_the_own_gateway_lists_the_federation_from_its_configuration(
    fed: Federation,
) -> None:
    before = log_count(fed, CONSUMER_GATEWAY)
    answer = await list_members(fed)
    conf = fed.consumer.conf.current().conf
    assert answer.gateway == CONSUMER_GATEWAY and answer.instance == "KZ"
    assert answer.configuration_version == conf.version
    assert answer.generated_at_unix_ms == conf.generated_at_ms
    assert answer.expires_at_unix_ms == conf.expires_at_ms
    members = {m.id: m for m in answer.members}
    assert members["KZ/GOV/MJ"].name == conf.members[GatewayId.parse(PROVIDER_GATEWAY).member]
    population = subsystems(answer)[POPULATION]
    assert list(population.gateways) == [PROVIDER_GATEWAY]
    services = {s.grpc_service: list(s.methods) for s in population.services}
    methods = services["zhol.population.v1.PopulationRegistry"]
    assert "GetPerson" in methods and methods == sorted(methods)
    assert "zhol.population.v1.BirthRegistered" in population.topics
    assert list(subsystems(answer)[CLIENT].gateways) == [CONSUMER_GATEWAY]
    # Nothing crossed the bus and nothing was logged.
    assert log_count(fed, CONSUMER_GATEWAY) == before


async def test_a_subsystem_registered_later_appears_with_the_new_configuration(
    fed: Federation,
) -> None:
    old = await list_members(fed)
    assert CIVIL not in subsystems(old)
    await register_subsystem(
        fed.layout.gateway(PROVIDER_GATEWAY),
        GatewayId.parse(PROVIDER_GATEWAY),
        fed.ports.address(fed.ports.registry),
        SubsystemId.parse(CIVIL),
        (ServiceOffer(CIVIL_SERVICE, ("GetMarriage",), "127.0.0.1:1"),),
        timeout_s=20,
    )

    async def refreshed() -> bool:
        await fed.consumer.conf.refresh()  # the poll, sooner
        return fed.consumer.conf.current().conf.version > old.configuration_version

    await until(refreshed, timeout=30, what="the consumer gateway has the new configuration")
    new = await list_members(fed)
    assert new.configuration_version > old.configuration_version
    civil = subsystems(new)[CIVIL]
    assert list(civil.gateways) == [PROVIDER_GATEWAY]
    assert [(s.grpc_service, list(s.methods)) for s in civil.services] == [
        (CIVIL_SERVICE, ["GetMarriage"])
    ]


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        (None, "Client.MissingHeader"),
        (POPULATION, "Client.UnknownClient"),  # a subsystem of another gateway
        ("KZ/GOV/MLSPP/unregistered", "Client.UnknownClient"),
    ],
)
async def test_only_the_gateways_own_clients_may_ask(
    fed: Federation, client: str | None, expected: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await list_members(fed, client)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED or expected.endswith(
        "MissingHeader"
    )
    assert error_code(caught.value) == expected


async def test_a_malformed_request_or_unknown_method_is_refused(fed: Federation) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await list_members(fed, body=b"\xff\xff")
    assert error_code(caught.value) == "Client.InvalidRequest"
    metadata = bus_metadata(client=CLIENT, purpose=None, user_id=None)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call_raw(fed.is_address(), "/zhol.bus.v1.Discovery/ListNothing", b"", metadata)
    assert error_code(caught.value) == "Server.ClientProxy.UnknownService"


async def test_zhol_catalogue_prints_what_discovery_answers(
    fed: Federation, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    asked = await list_members(fed)
    directory = str(fed.layout.gateway(CONSUMER_GATEWAY))
    assert await asyncio.to_thread(zhol, ["catalogue", "--dir", directory, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == MessageToDict(asked, preserving_proto_field_name=True)
    assert await asyncio.to_thread(zhol, ["catalogue", "--dir", directory]) == 0
    text = capsys.readouterr().out
    assert f"v{asked.configuration_version} of KZ, held by {CONSUMER_GATEWAY}" in text
    assert f"  {POPULATION}  gateways: {PROVIDER_GATEWAY}" in text
    assert "zhol.population.v1.PopulationRegistry: " in text
    # No gateway there: could not check (exit 3), nothing printed on stdout.
    assert await asyncio.to_thread(zhol, ["catalogue", "--dir", str(tmp_path)]) == 3
    assert capsys.readouterr().out == ""


async def test_zhol_catalogue_into_a_closed_pipe_stops_quietly(fed: Federation) -> None:
    # `zhol catalogue | head`: the reader is gone before zhol writes.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "zhol.cli.main", "catalogue", "--dir",
             str(fed.layout.gateway(CONSUMER_GATEWAY))],
            stdout=write_end, stderr=subprocess.PIPE, timeout=60, check=False,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (EXIT_READER_GONE, b"")
