"""Failover: a subsystem served by two gateways of its member, on real servers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio

from tests.integration.bus_federation import (
    GET_PERSON,
    Federation,
    bus_metadata,
    call_raw,
    error_code,
    start_federation,
)
from tests.integration.test_bus import log_count, some_iin
from zhol.cli.demo import CONSUMER_GATEWAY, PROVIDER_GATEWAY
from zhol.cli.federation import POPULATION_METHODS, POPULATION_SERVICE, RIGHTS
from zhol.cli.ports import free_port
from zhol.core.clock import SystemClock
from zhol.core.ids import GatewayId, SubsystemId
from zhol.gateway.localconf import LocalConfStore
from zhol.gateway.messagelog import list_records
from zhol.gateway.provision import ServiceOffer, init_gateway, register_subsystem
from zhol.gateway.server import start_gateway
from zhol.gateway.settings import load_gateway_settings
from zhol.population.v1 import population_pb2

pytestmark = pytest.mark.integration

SECOND_GATEWAY = "KZ/GOV/MJ/gw2"
POPULATION = SubsystemId.parse("KZ/GOV/MJ/population")
CLIENT = SubsystemId.parse("KZ/GOV/MLSPP/pension")


async def add_second_gateway(fed: Federation) -> None:
    """Provision and start KZ/GOV/MJ/gw2 serving the population subsystem like gw1."""
    data_dir = fed.layout.root / "gateways" / "mj-gw2"
    registry = fed.ports.address(fed.ports.registry)
    gateway_id = GatewayId.parse(SECOND_GATEWAY)
    await init_gateway(
        data_dir,
        gateway_id,
        registry,
        fed.layout.anchor,
        fed.ports.address(free_port()),
        member_name="Ministry of Justice",
    )
    offer = ServiceOffer(
        POPULATION_SERVICE, POPULATION_METHODS, fed.ports.address(fed.ports.population)
    )
    await register_subsystem(data_dir, gateway_id, registry, POPULATION, [offer])
    local = LocalConfStore(data_dir / "local.db")
    try:
        for client, target in RIGHTS:
            local.allow(SubsystemId.parse(client), target, SystemClock().now_ms())
    finally:
        local.close()
    fed.gateways[SECOND_GATEWAY] = await start_gateway(load_gateway_settings(data_dir))
    await fed.consumer.conf.refresh()  # pushed already, or fetched now
    assert SECOND_GATEWAY in {str(g) for g in fed.consumer.conf.current().conf.gateways}


@pytest_asyncio.fixture
async def fed(tmp_path) -> AsyncIterator[Federation]:  # type: ignore[no-untyped-def]
    federation = await start_federation(tmp_path, persons=20)
    await add_second_gateway(federation)
    yield federation
    await federation.stop()


def gw2_log(fed: Federation, message_id: str | None = None) -> list[dict[str, object]]:
    return list_records(
        fed.layout.root / "gateways" / "mj-gw2" / "messagelog.db", message_id=message_id
    )


async def call(fed: Federation) -> tuple[population_pb2.Person, str]:
    iin = some_iin(fed)
    body, trailers = await call_raw(
        fed.is_address(),
        GET_PERSON,
        population_pb2.GetPersonRequest(iin=iin).SerializeToString(),
        bus_metadata(data_subject=iin),
        timeout=5.0,
    )
    person = population_pb2.Person.FromString(body)
    assert person.iin == iin
    return person, trailers["zhol-message-id"]


def record_peers_dialled(fed: Federation, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The provider gateways the consumer sends to from now on, in order: every send,
    by call stream or unary call, takes its peer's channel from PeerChannels._peer."""
    dialled: list[str] = []
    peers = fed.consumer.peers
    real_peer = peers._peer

    def peer(key: tuple[str, GatewayId]) -> Any:
        dialled.append(str(key[1]))
        return real_peer(key)

    monkeypatch.setattr(peers, "_peer", peer)
    return dialled


async def test_failover_order_then_second_gateway_then_none(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    targets = fed.consumer.conf.current().conf.gateways_for(POPULATION)
    assert [str(t.id) for t in targets] == [PROVIDER_GATEWAY, SECOND_GATEWAY]

    # Both up: the first gateway in failover order answers.
    _, message_id = await call(fed)
    provider_log = fed.layout.gateway(PROVIDER_GATEWAY) / "messagelog.db"
    assert len(list_records(provider_log, message_id=message_id)) == 2
    assert gw2_log(fed) == []

    # gw1 down: the same call succeeds through gw2 (tried second, within the call's
    # deadline), and both sides log gw2's part.
    await fed.gateways.pop(PROVIDER_GATEWAY).stop(0)
    dialled = record_peers_dialled(fed, monkeypatch)
    _, message_id = await call(fed)
    assert dialled == [PROVIDER_GATEWAY, SECOND_GATEWAY]
    provider_side = gw2_log(fed, message_id)
    assert {(r["kind"], r["direction"]) for r in provider_side} == {
        ("request", "in"),
        ("response", "out"),
    }
    assert {r["peer"] for r in provider_side} == {CONSUMER_GATEWAY}
    consumer_side = list_records(
        fed.layout.gateway(CONSUMER_GATEWAY) / "messagelog.db", message_id=message_id
    )
    # The request is logged before it leaves, so it names no peer; the answer does.
    assert {(r["kind"], r["peer"]) for r in consumer_side} == {
        ("request", ""),
        ("response", SECOND_GATEWAY),
    }

    # Later calls keep working, and gw1, remembered as down, is not tried first again.
    dialled.clear()
    for _ in range(3):
        await call(fed)
    assert dialled == [SECOND_GATEWAY] * 3

    # Both down: NetworkError; the consumer logged the request it tried to send, no more.
    await fed.gateways.pop(SECOND_GATEWAY).stop(0)
    before = log_count(fed, CONSUMER_GATEWAY)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await asyncio.wait_for(call(fed), 10)
    assert error_code(caught.value) == "Server.ClientProxy.NetworkError"
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    tried = list_records(fed.layout.gateway(CONSUMER_GATEWAY) / "messagelog.db")[before:]
    assert [(r["kind"], r["direction"]) for r in tried] == [("request", "out")]


async def test_gateway_comes_back_after_being_down(fed: Federation) -> None:
    """A gateway remembered as down is used again once it is back."""
    await fed.gateways.pop(SECOND_GATEWAY).stop(0)
    await fed.gateways.pop(PROVIDER_GATEWAY).stop(0)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(fed)
    assert error_code(caught.value) == "Server.ClientProxy.NetworkError"
    await fed.start_gateway(PROVIDER_GATEWAY)
    _, message_id = await asyncio.wait_for(call(fed), 5)
    consumer_side = list_records(
        fed.layout.gateway(CONSUMER_GATEWAY) / "messagelog.db", message_id=message_id
    )
    assert {(r["kind"], r["peer"]) for r in consumer_side} == {
        ("request", ""),
        ("response", PROVIDER_GATEWAY),
    }


async def test_error_reported_by_a_provider_gateway_is_not_failed_over(fed: Federation) -> None:
    """gw1 denies, gw2 would allow: the consumer gets gw1's AccessDenied, gw2 sees nothing."""
    for client, target in RIGHTS:
        fed.provider.local.deny(SubsystemId.parse(client), target)
    before = log_count(fed, CONSUMER_GATEWAY)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(fed)
    assert error_code(caught.value) == "Server.ServerProxy.AccessDenied"
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert gw2_log(fed) == []
    denied = list_records(fed.layout.gateway(CONSUMER_GATEWAY) / "messagelog.db")[before:]
    assert [(r["kind"], r["direction"]) for r in denied] == [("request", "out")]


async def test_a_provider_gateway_stopped_under_load_loses_no_call_silently(
    fed: Federation,
) -> None:
    """Calls in flight on gw1's call stream when gw1 stops: each one ends, in time,
    either answered (by gw1 before it stopped, or by gw2 after failover) or with a
    catalogued bus error; none hangs, and once gw1 is gone gw2 answers everything."""
    outcomes: list[str] = []
    stop_at = time.monotonic() + 2.0

    async def caller() -> None:
        while time.monotonic() < stop_at:
            try:
                await asyncio.wait_for(call(fed), 8)
                outcomes.append("ok")
            except grpc.aio.AioRpcError as err:
                outcomes.append(error_code(err) or f"status:{err.code().name}")

    callers = [asyncio.create_task(caller()) for _ in range(24)]
    await asyncio.sleep(0.7)
    await fed.gateways.pop(PROVIDER_GATEWAY).stop(0)
    await asyncio.gather(*callers)  # wait_for above: a hung call would raise TimeoutError
    failures = {o for o in outcomes if o != "ok"}
    assert failures <= {"Server.ClientProxy.NetworkError", "Server.ClientProxy.Timeout"}
    assert outcomes.count("ok") > len(outcomes) // 2
    # After the stop every call is answered by gw2.
    for _ in range(5):
        _, message_id = await call(fed)
        assert gw2_log(fed, message_id)
