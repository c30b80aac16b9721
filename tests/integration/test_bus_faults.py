"""Faults that change the federation: each test gets its own, on real servers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio

from tests.integration.bus_federation import Federation, error_code, get_person, start_federation
from tests.integration.test_bus import assert_refusal_evidence, log_count, some_iin
from zhol.cli.demo import CONSUMER_GATEWAY, PROVIDER_GATEWAY
from zhol.cli.federation import POPULATION_METHODS, POPULATION_SERVICE
from zhol.cli.main import main as zhol
from zhol.core.errors import Hop, parse_full_code
from zhol.core.ids import SubsystemId


@pytest_asyncio.fixture
async def fed(tmp_path) -> AsyncIterator[Federation]:  # type: ignore[no-untyped-def]
    federation = await start_federation(tmp_path, persons=50)
    yield federation
    await federation.stop()


async def expect(fed: Federation, code: str, status: grpc.StatusCode, timeout: float = 10) -> None:
    before = {g: log_count(fed, g) for g in (CONSUMER_GATEWAY, PROVIDER_GATEWAY)}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await asyncio.wait_for(get_person(fed.is_address(), some_iin(fed)), timeout)
    assert error_code(caught.value) == code
    assert caught.value.code() == status
    hop, _ = parse_full_code(code)
    forwarded = {Hop.CLIENT: False, Hop.SERVER_PROXY: True}.get(hop)
    assert_refusal_evidence(fed, before, forwarded=forwarded)


async def test_revoked_gateway_is_refused_with_the_next_configuration(fed: Federation) -> None:
    await get_person(fed.is_address(), some_iin(fed))  # works before
    # The revoked gateway is not to hear of it (a pushed configuration would make it
    # refuse its own IS first, UnknownClient): the provider's refusal is what is tested.
    assert fed.consumer.conf_watch is not None
    await fed.consumer.conf_watch.stop()
    assert (
        zhol(
            ["registry", "revoke", "--dir", str(fed.layout.registry), "--gateway", CONSUMER_GATEWAY]
        )
        == 0
    )
    version = fed.provider.conf.current().conf.version
    await fed.provider.conf.refresh()  # pushed already, or fetched now
    assert fed.provider.conf.current().conf.version > version
    await expect(fed, "Server.ServerProxy.RevokedCertificate", grpc.StatusCode.UNAUTHENTICATED)


async def test_expired_global_configuration_fails_closed(fed: Federation) -> None:
    validity_ms = fed.consumer.conf.current().conf.tunables.validity_s * 1000
    fed.clocks[CONSUMER_GATEWAY].offset_ms = validity_ms + 1000
    await expect(fed, "Server.ClientProxy.OutdatedGlobalConf", grpc.StatusCode.FAILED_PRECONDITION)


async def test_clock_skew_is_refused(fed: Federation) -> None:
    skew_ms = fed.provider.conf.current().conf.tunables.clock_skew_s * 1000
    fed.clocks[PROVIDER_GATEWAY].offset_ms = skew_ms + 5000
    await expect(fed, "Server.ServerProxy.ClockSkew", grpc.StatusCode.UNAUTHENTICATED)


async def test_provider_gateway_down(fed: Federation) -> None:
    await fed.gateways.pop(PROVIDER_GATEWAY).stop(0)
    await expect(fed, "Server.ClientProxy.NetworkError", grpc.StatusCode.UNAVAILABLE)


async def test_provider_adapter_down(fed: Federation) -> None:
    await fed.population.stop(0)
    await expect(fed, "Server.ServerProxy.ServiceFailed", grpc.StatusCode.UNAVAILABLE)


async def test_deadline_is_propagated_and_exceeded(fed: Federation) -> None:
    slow = grpc.aio.server()

    async def hang(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await asyncio.sleep(5)
        return b""

    class Slow(grpc.GenericRpcHandler):
        def service(self, details):  # type: ignore[no-untyped-def]
            return grpc.unary_unary_rpc_method_handler(hang)

    slow.add_generic_rpc_handlers((Slow(),))
    port = slow.add_insecure_port("127.0.0.1:0")
    await slow.start()
    try:
        fed.provider.local.expose(
            SubsystemId.parse("KZ/GOV/MJ/population"),
            POPULATION_SERVICE,
            f"127.0.0.1:{port}",
            POPULATION_METHODS,
        )
        before = {g: log_count(fed, g) for g in (CONSUMER_GATEWAY, PROVIDER_GATEWAY)}
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            from tests.integration.bus_federation import GET_PERSON, bus_metadata, call_raw
            from zhol.population.v1 import population_pb2

            iin = some_iin(fed)
            await call_raw(
                fed.is_address(),
                GET_PERSON,
                population_pb2.GetPersonRequest(iin=iin).SerializeToString(),
                bus_metadata(data_subject=iin),
                timeout=1.0,
            )
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert (error_code(caught.value) or "").endswith(".Timeout")
        # Forwarded and handed to the IS, which never answered: the request alone.
        assert_refusal_evidence(fed, before, forwarded=True)
        assert log_count(fed, PROVIDER_GATEWAY) == before[PROVIDER_GATEWAY] + 1
    finally:
        with contextlib.suppress(Exception):
            await slow.stop(0)


async def test_failed_log_write_fails_the_exchange(fed: Federation) -> None:
    fed.provider.message_log.close()
    await expect(fed, "Server.ServerProxy.LoggingFailed", grpc.StatusCode.INTERNAL)


async def test_gateway_restarts_on_its_cached_configuration_without_registry(
    fed: Federation,
) -> None:
    await fed.registry.stop(0)
    await fed.gateways.pop(CONSUMER_GATEWAY).stop(0)
    await fed.start_gateway(CONSUMER_GATEWAY)
    person = await get_person(fed.is_address(), some_iin(fed))
    assert person.iin


async def test_a_second_gateway_on_a_taken_port_fails_and_stops_what_it_started(
    fed: Federation,
) -> None:
    from zhol.gateway.server import start_gateway
    from zhol.gateway.settings import load_gateway_settings

    settings = load_gateway_settings(
        fed.layout.gateway(CONSUMER_GATEWAY), is_listen=f"127.0.0.1:{fed.consumer.is_port}"
    )
    with pytest.raises(RuntimeError):
        await start_gateway(settings)
    assert (await get_person(fed.is_address(), some_iin(fed))).iin
