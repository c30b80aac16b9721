"""The benchmark's floor (cli/bareproxy.py): two do-nothing proxies really carry a call.

The bench compares the bus with them, so they must forward over the same hops (the
middle one mutual TLS with the gateways' keys) and answer what the adapter answers.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from tests.integration.bus_federation import start_federation
from zhol.cli.bench import BARE_PROXIES, start_bare_proxies
from zhol.cli.processes import Supervisor
from zhol.population.v1 import population_pb2

pytestmark = pytest.mark.integration

GET_PERSON = "/zhol.population.v1.PopulationRegistry/GetPerson"


async def get_person(address: str, iin: str) -> population_pb2.Person:
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(
            GET_PERSON,
            request_serializer=population_pb2.GetPersonRequest.SerializeToString,
            response_deserializer=population_pb2.Person.FromString,
        )
        return await call(population_pb2.GetPersonRequest(iin=iin), timeout=10)


async def test_bare_proxies_forward_a_call_over_mutual_tls(tmp_path: Path) -> None:
    fed = await start_federation(tmp_path, persons=20)
    try:
        direct = fed.ports.address(fed.ports.population)
        with Supervisor(tmp_path / "logs") as supervisor:
            bare = start_bare_proxies(fed.layout, fed.ports, supervisor)
            assert set(BARE_PROXIES) <= set(supervisor.processes)
            listed = await fed.population.servicer.ListPersons(
                population_pb2.ListPersonsRequest(page_size=1), None
            )
            iin = listed.persons[0].iin
            assert await get_person(bare, iin) == await get_person(direct, iin)
            # A malformed IIN comes back with the adapter's own status, untouched.
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await get_person(bare, "000101600000")
            assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    finally:
        await fed.stop()
