"""Standard gRPC health checking (grpc.health.v1.Health) on real servers, and `zhol health`.

Gateways answer on both ports: SERVING only with an unexpired verified global
configuration and a message log that takes writes. The IS-facing proxy accepts
every method path, so these tests also show a health check is answered by the
gateway itself and never forwarded over the bus.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.integration.bus_federation import (
    MAX_MESSAGE_BYTES,
    Federation,
    ShiftableClock,
    start_federation,
)
from tests.integration.test_bus import log_count
from tests.integration.test_is_tls import IsIdentity, restart_consumer, self_signed
from zhol.cli.demo import CONSUMER_GATEWAY, PROVIDER_GATEWAY
from zhol.cli.main import main as zhol
from zhol.cli.ports import free_port
from zhol.gateway.credentials import load_credentials
from zhol.gateway.health import EXCHANGE_SERVICE, LOG_CLOSED
from zhol.registry.server import start_registry
from zhol.registry.settings import load_registry_settings
from zhol.security.ca import auth_dns_name

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
REQUEST = health_pb2.HealthCheckRequest


@pytest_asyncio.fixture
async def fed(tmp_path) -> AsyncIterator[Federation]:  # type: ignore[no-untyped-def]
    federation = await start_federation(tmp_path, persons=20)
    yield federation
    await federation.stop()


async def check(address: str, service: str = "") -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        answer = await stub.Check(REQUEST(service=service), timeout=5)
    return answer.status


async def check_peer_port(fed: Federation, gateway_id: str) -> int:
    """Health on the peer port, over mutual TLS as another gateway (the consumer's identity)."""
    creds = load_credentials(fed.layout.gateway(CONSUMER_GATEWAY) / "keys", None)
    credentials = grpc.ssl_channel_credentials(
        creds.ca_pem, creds.auth_key_pem, creds.auth_cert_pem
    )
    options = (("grpc.ssl_target_name_override", auth_dns_name(gateway_id)),)
    address = f"127.0.0.1:{fed.gateways[gateway_id].peer_port}"
    async with grpc.aio.secure_channel(address, credentials, options=options) as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(REQUEST(), timeout=5)
    return answer.status


async def wait_for_status(address: str, want: int, timeout_s: float = 10.0) -> None:
    """Poll Check until it says ``want`` (the gateway re-evaluates about once a second)."""
    async with asyncio.timeout(timeout_s):
        while await check(address) != want:
            await asyncio.sleep(0.05)


def cli(*args: str) -> int:
    return zhol(list(args))


async def cli_in_thread(*args: str) -> int:
    """The command blocks; the servers it asks run on this test's event loop."""
    return await asyncio.to_thread(cli, *args)


async def test_gateway_serves_health_on_both_ports(fed: Federation) -> None:
    for gateway_id in (CONSUMER_GATEWAY, PROVIDER_GATEWAY):
        for service in ("", EXCHANGE_SERVICE):
            assert await check(fed.is_address(gateway_id), service) == SERVING
        assert await check_peer_port(fed, gateway_id) == SERVING


async def test_health_on_the_is_port_is_answered_not_forwarded(fed: Federation) -> None:
    logged = [log_count(fed, g) for g in (CONSUMER_GATEWAY, PROVIDER_GATEWAY)]
    for _ in range(3):
        assert await check(fed.is_address()) == SERVING
    # A provider's service name is not a health service: unknown here, not asked over the bus.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await check(fed.is_address(), "zhol.population.v1.PopulationRegistry")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    async with grpc.aio.insecure_channel(fed.is_address()) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(REQUEST(), timeout=5)
        assert (await watch.read()).status == SERVING
        watch.cancel()
    assert [log_count(fed, g) for g in (CONSUMER_GATEWAY, PROVIDER_GATEWAY)] == logged


async def test_expired_configuration_is_not_serving_until_a_fresh_one_arrives(
    fed: Federation,
) -> None:
    address = fed.is_address()
    async with grpc.aio.insecure_channel(address) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(REQUEST(service=EXCHANGE_SERVICE))
        assert (await asyncio.wait_for(watch.read(), 5)).status == SERVING
        # The registry is away while the configuration's validity runs out.
        await fed.registry.stop(0)
        expires_at_ms = fed.consumer.conf.current().conf.expires_at_ms
        offset_ms = expires_at_ms - ShiftableClock().now_ms() + 1000
        fed.clocks[CONSUMER_GATEWAY].offset_ms = offset_ms
        assert (await asyncio.wait_for(watch.read(), 10)).status == NOT_SERVING
        assert await cli_in_thread("health", address) == 1
        # It comes back (its clock agreeing with the gateway's) and publishes a fresh one.
        settings = load_registry_settings(
            fed.layout.registry,
            overrides={
                "listen": fed.ports.address(fed.ports.registry),
                "max_message_bytes": MAX_MESSAGE_BYTES,
            },
        )
        fed.registry, _ = await start_registry(settings, ShiftableClock(offset_ms))
        await fed.consumer.conf.refresh()  # pushed already, or fetched now
        assert (await asyncio.wait_for(watch.read(), 10)).status == SERVING
        watch.cancel()
    assert await cli_in_thread("health", address) == 0


async def test_a_message_log_that_cannot_be_written_is_not_serving(
    fed: Federation, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="zhol.gateway.health")
    fed.provider.message_log.close()
    await wait_for_status(fed.is_address(PROVIDER_GATEWAY), NOT_SERVING)
    assert await check(fed.is_address(PROVIDER_GATEWAY), EXCHANGE_SERVICE) == NOT_SERVING
    assert await check_peer_port(fed, PROVIDER_GATEWAY) == NOT_SERVING
    assert await check(fed.is_address(CONSUMER_GATEWAY)) == SERVING
    await fed.provider.health.check()  # evaluated again, still the same: no second line
    changes = [r for r in caplog.records if r.name == "zhol.gateway.health"]
    assert [(r.levelno, r.args) for r in changes] == [
        (logging.WARNING, ("NOT_SERVING", LOG_CLOSED))
    ]


async def test_registry_and_adapter_are_serving(fed: Federation) -> None:
    registry = fed.ports.address(fed.ports.registry)
    assert await check(registry) == SERVING
    assert await check(registry, "zhol.registry.v1.Registry") == SERVING
    assert await check(fed.population.address) == SERVING
    assert await cli_in_thread("health", registry) == 0
    assert await cli_in_thread("health", fed.population.address) == 0


async def test_adapter_whose_database_is_gone_is_not_serving(fed: Federation) -> None:
    fed.layout.population_db.rename(fed.layout.population_db.with_suffix(".moved"))
    assert await check(fed.population.address) == NOT_SERVING
    assert await cli_in_thread("health", fed.population.address) == 1


async def test_cli_exit_codes(fed: Federation, capsys: pytest.CaptureFixture[str]) -> None:
    assert await cli_in_thread("health", fed.is_address()) == 0
    assert await cli_in_thread("health", fed.is_address(), "--service", "no.such.Service") == 1
    capsys.readouterr()
    assert await cli_in_thread("health", fed.is_address(), "--json") == 0
    assert json.loads(capsys.readouterr().out)["status"] == "SERVING"
    nobody = f"127.0.0.1:{free_port()}"
    assert await cli_in_thread("health", nobody, "--timeout", "2") == 3
    capsys.readouterr()
    assert await cli_in_thread("health", nobody, "--timeout", "2", "--json") == 3
    assert json.loads(capsys.readouterr().out)["status"] is None
    assert await cli_in_thread("health", fed.is_address(), "--tls-cert", "x.pem") == 2


async def test_cli_on_the_peer_port_with_a_gateways_certificate(fed: Federation) -> None:
    keys = fed.layout.gateway(CONSUMER_GATEWAY) / "keys"
    address = f"127.0.0.1:{fed.provider.peer_port}"
    tls = [
        *("--tls-ca", str(keys / "ca.pem")),
        *("--tls-cert", str(keys / "auth.pem"), "--tls-key", str(keys / "auth.key")),
        *("--tls-server-name", auth_dns_name(PROVIDER_GATEWAY)),
    ]
    assert await cli_in_thread("health", address, *tls) == 0
    # Plaintext against the mutual-TLS port: no answer, so it could not check.
    assert await cli_in_thread("health", address, "--timeout", "2") == 3


async def test_gateway_health_reads_the_gateways_own_settings(fed: Federation) -> None:
    directory = str(fed.layout.gateway(CONSUMER_GATEWAY))
    assert await cli_in_thread("gateway", "health", "--dir", directory) == 0
    fed.consumer.message_log.close()
    await wait_for_status(fed.is_address(), NOT_SERVING)
    assert await cli_in_thread("gateway", "health", "--dir", directory) == 1


async def test_gateway_health_under_mtls_needs_a_pinned_certificate(fed: Federation) -> None:
    directory = fed.layout.gateway(CONSUMER_GATEWAY)
    assert cli("gateway", "is-cert", "--dir", str(directory)) == 0
    certs = directory.parent / "probe-certs"
    certs.mkdir()
    pinned, stranger = self_signed(certs, "probe"), self_signed(certs, "stranger")
    assert cli("gateway", "pin-is", "--dir", str(directory), "--cert", str(pinned.path)) == 0
    await restart_consumer(fed, "mtls")

    def as_identity(identity: IsIdentity) -> list[str]:
        key = identity.path.with_suffix(".key")
        key.write_bytes(identity.key_pem)
        return ["--tls-cert", str(identity.path), "--tls-key", str(key)]

    probe = ("gateway", "health", "--dir", str(directory), "--timeout", "2")
    assert await cli_in_thread(*probe) == 2  # mtls: no client certificate given
    assert await cli_in_thread(*probe, *as_identity(pinned)) == 0
    assert await cli_in_thread(*probe, *as_identity(stranger)) == 3  # handshake refused
