"""Exchange.CallStream between real gateways: many exchanges on one stream, each
answered and logged as its own; a peer without the stream is called with Call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio

from tests.integration.bus_federation import Federation, get_person, start_federation
from tests.integration.test_bus import log_count, some_iin
from zhol.bus.v1 import bus_pb2, bus_pb2_grpc
from zhol.cli.demo import CONSUMER_GATEWAY, PROVIDER_GATEWAY
from zhol.core.ids import GatewayId
from zhol.gateway.credentials import load_credentials
from zhol.security.ca import auth_dns_name

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def fed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    federation = await start_federation(tmp_path_factory.mktemp("callstream"))
    yield federation
    await federation.stop()


def transport_to_provider(fed: Federation) -> str:
    address = fed.ports.address(fed.ports.gateway_peer[PROVIDER_GATEWAY])
    return fed.consumer.peers.transport(address, GatewayId.parse(PROVIDER_GATEWAY))


async def test_concurrent_calls_share_the_stream_and_each_gets_its_own_answer(
    fed: Federation,
) -> None:
    iins = [some_iin(fed, i) for i in range(80)]
    before = {g: log_count(fed, g) for g in (CONSUMER_GATEWAY, PROVIDER_GATEWAY)}
    persons = await asyncio.gather(*(get_person(fed.is_address(), iin) for iin in iins))
    assert [p.iin for p in persons] == iins
    assert transport_to_provider(fed) == "stream"
    # Each exchange is its own request and response record on both gateways.
    assert {g: log_count(fed, g) - n for g, n in before.items()} == {
        CONSUMER_GATEWAY: 2 * len(iins),
        PROVIDER_GATEWAY: 2 * len(iins),
    }


async def test_a_streamed_call_without_a_request_gets_its_own_error(
    fed: Federation, caplog: pytest.LogCaptureFixture
) -> None:
    creds = load_credentials(fed.layout.gateway(CONSUMER_GATEWAY) / "keys", None)
    credentials = grpc.ssl_channel_credentials(
        creds.ca_pem, creds.auth_key_pem, creds.auth_cert_pem
    )
    address = fed.ports.address(fed.ports.gateway_peer[PROVIDER_GATEWAY])
    override = (("grpc.ssl_target_name_override", auth_dns_name(PROVIDER_GATEWAY)),)
    before = log_count(fed, PROVIDER_GATEWAY)
    async with grpc.aio.secure_channel(address, credentials, options=override) as channel:
        frames = [bus_pb2.CallFrame(calls=[bus_pb2.StreamedCall(call_id=7)])]
        answers = [f async for f in bus_pb2_grpc.ExchangeStub(channel).CallStream(iter(frames))]
    [answer] = [c for f in answers for c in f.calls]
    assert answer.call_id == 7 and answer.WhichOneof("outcome") == "error"
    assert answer.error.code == "Server.ServerProxy.InvalidMessage"
    assert answer.error.error_id in caplog.text  # an operator can find it in the log
    assert log_count(fed, PROVIDER_GATEWAY) == before


async def test_a_restarted_provider_gets_a_new_stream_and_no_call_fails(
    fed: Federation,
) -> None:
    iin = some_iin(fed, 5)
    assert (await get_person(fed.is_address(), iin)).iin == iin
    assert transport_to_provider(fed) == "stream"
    await fed.gateways.pop(PROVIDER_GATEWAY).stop(0)
    await fed.start_gateway(PROVIDER_GATEWAY)
    # The consumer's stream died with the old gateway: the call goes on a new one.
    assert (await get_person(fed.is_address(), iin)).iin == iin
    assert transport_to_provider(fed) == "stream"


async def test_a_provider_without_call_stream_is_called_with_call(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    await fed.gateways.pop(PROVIDER_GATEWAY).stop(0)
    monkeypatch.setenv("ZHOL_GATEWAY_PEER_CALL_STREAM", "false")
    await fed.start_gateway(PROVIDER_GATEWAY)
    monkeypatch.delenv("ZHOL_GATEWAY_PEER_CALL_STREAM")
    iin = some_iin(fed, 3)
    before = log_count(fed, PROVIDER_GATEWAY)
    # The old stream died with the old gateway; the new one answers UNIMPLEMENTED and
    # the consumer switches to Call: the same call succeeds.
    person = await get_person(fed.is_address(), iin)
    assert person.iin == iin
    assert transport_to_provider(fed) == "unary"
    assert log_count(fed, PROVIDER_GATEWAY) == before + 2
