"""New configuration versions spread by push: a registration is callable through
another gateway within 5 s; polling takes over while the watch is cut; a pushed
configuration is verified like a fetched one; `zhol gateway refresh`; and lookup
refusals say which configuration the gateway holds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from tests.integration.bus_federation import (
    GET_PERSON,
    MAX_MESSAGE_BYTES,
    Federation,
    bus_metadata,
    call_raw,
    error_code,
    start_federation,
)
from tests.integration.test_bus import some_iin
from tests.waiting import until
from zhol.cli.demo import CLIENT, CONSUMER_GATEWAY, PROVIDER_GATEWAY
from zhol.cli.federation import POPULATION_SERVICE
from zhol.cli.main import main as zhol
from zhol.core.clock import SystemClock
from zhol.core.ids import GatewayId, SubsystemId
from zhol.core.metadata import PROVIDER_KEY
from zhol.gateway.confwatch import ConfWatch
from zhol.gateway.localconf import LocalConfStore
from zhol.gateway.provision import ServiceOffer, register_subsystem
from zhol.population.v1 import population_pb2
from zhol.registry.client import watch_global_conf
from zhol.registry.server import start_registry
from zhol.registry.settings import load_registry_settings
from zhol.registry.v1 import registry_pb2
from zhol.security.globalconf import sign_global_conf
from zhol.security.keys import generate_private_key

pytestmark = pytest.mark.asyncio

# The promise: a registration is callable through any gateway within 5 s.
SPREAD_S = 5.0
ARCHIVE = "KZ/GOV/MJ/archive"  # registered while the federation runs


@pytest_asyncio.fixture
async def fed(tmp_path: Path) -> AsyncIterator[Federation]:
    federation = await start_federation(tmp_path, persons=5)
    yield federation
    await federation.stop()


async def register_archive(fed: Federation) -> None:
    """A new subsystem of the population gateway's member, offering GetPerson (answered
    by the population adapter), with a right for the pension client."""
    provider_dir = fed.layout.gateway(PROVIDER_GATEWAY)
    await register_subsystem(
        provider_dir,
        GatewayId.parse(PROVIDER_GATEWAY),
        fed.ports.address(fed.ports.registry),
        SubsystemId.parse(ARCHIVE),
        (
            ServiceOffer(
                POPULATION_SERVICE, ("GetPerson",), fed.ports.address(fed.ports.population)
            ),
        ),
        timeout_s=20,
    )
    local = LocalConfStore(provider_dir / "local.db")
    try:
        local.allow(
            SubsystemId.parse(CLIENT),
            f"{ARCHIVE}/{POPULATION_SERVICE}/GetPerson",
            SystemClock().now_ms(),
        )
    finally:
        local.close()


async def get_from_archive(fed: Federation) -> population_pb2.Person:
    iin = some_iin(fed)
    body, _ = await call_raw(
        fed.is_address(),
        GET_PERSON,
        population_pb2.GetPersonRequest(iin=iin).SerializeToString(),
        (*bus_metadata(data_subject=iin), (PROVIDER_KEY, ARCHIVE)),
    )
    return population_pb2.Person.FromString(body)


async def callable_now(fed: Federation) -> bool:
    try:
        await get_from_archive(fed)
    except grpc.aio.AioRpcError:
        return False
    return True


def version(fed: Federation, gateway_id: str = CONSUMER_GATEWAY) -> int:
    trusted = fed.gateways[gateway_id].conf.loaded
    assert trusted is not None
    return trusted.conf.version


async def test_a_registration_is_callable_through_another_gateway_within_seconds(
    fed: Federation,
) -> None:
    watch = fed.consumer.conf_watch
    assert watch is not None
    await until(lambda: watch.connected, timeout=10, what="the consumer's watch open")
    held = version(fed)

    # Before: refused, and the refusal says which configuration the gateway holds.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await get_from_archive(fed)
    assert error_code(caught.value) == "Server.ClientProxy.UnknownService"
    assert f"configuration version {held} from " in (caught.value.details() or "")
    assert " s old" in (caught.value.details() or "")

    await register_archive(fed)
    # Polling alone (every 60 s) would not make it; the push does, well within 5 s.
    await until(lambda: callable_now(fed), timeout=SPREAD_S, what="the archive callable")
    assert version(fed) > held


async def test_the_watch_comes_back_after_the_registry_restarts(fed: Federation) -> None:
    watch = fed.consumer.conf_watch
    assert watch is not None
    await until(lambda: watch.connected, timeout=10, what="the consumer's watch open")
    address = fed.ports.address(fed.ports.registry)
    await fed.registry.stop(0)
    await until(lambda: not watch.connected, timeout=10, what="the watch seen down")
    held = version(fed)
    await asyncio.sleep(3.0)  # a few failed reconnects: the backoff grows to its cap

    settings = load_registry_settings(
        fed.layout.registry, overrides={"listen": address, "max_message_bytes": MAX_MESSAGE_BYTES}
    )
    fed.registry, _ = await start_registry(settings)
    # Back: the watch reconnects on its own (backoff at most ~2.5 s) and pushes again.
    await until(lambda: watch.connected, timeout=10, what="the watch open again")
    await register_archive(fed)
    await until(lambda: callable_now(fed), timeout=SPREAD_S, what="the archive callable")
    assert version(fed) > held


async def test_polling_goes_on_while_the_watch_is_down(fed: Federation) -> None:
    """The poll is the fallback: with the watch gone, it alone brings a new version."""
    consumer = await fed.restart_gateway(CONSUMER_GATEWAY, "conf_poll_s = 1\n")
    assert consumer.conf_watch is not None
    await consumer.conf_watch.stop()  # cut for good
    held = version(fed)
    await register_archive(fed)
    await until(lambda: version(fed) > held, timeout=15, what="a poll bringing it")
    assert await callable_now(fed)


async def test_a_forged_pushed_configuration_is_refused(fed: Federation) -> None:
    """Pushed configurations take the fetch's path: verified against the anchor."""
    address = fed.ports.address(fed.ports.registry)
    stream = watch_global_conf(address, 0, idle_timeout_s=10, stop=asyncio.Event())
    _, genuine = await anext(stream)
    await stream.aclose()
    assert genuine  # a watcher holding nothing gets the configuration in full
    conf = fed.consumer.conf
    held = version(fed)
    envelope = registry_pb2.SignedGlobalConfiguration.FromString(genuine)
    newer = registry_pb2.GlobalConfiguration.FromString(envelope.configuration)
    newer.version = held + 100
    # Newer, claiming the anchor, signed by another key; and a tampered genuine copy.
    wrong_key = sign_global_conf(
        generate_private_key(), bytes(envelope.signer_cert_der), newer.SerializeToString()
    )
    tampered = genuine[:-7] + b"forged!"

    async def forger(known_version: int, stop: asyncio.Event) -> AsyncIterator[tuple[int, bytes]]:
        for signed in (wrong_key, tampered, genuine):
            yield held + 100, signed
        await stop.wait()  # stays open until the watch stops

    watch = ConfWatch(conf, forger)
    watch.start()
    try:
        await until(lambda: watch.notices == 3, timeout=10, what="the three pushes")
    finally:
        await watch.stop()
    assert version(fed) == held  # neither forgery taken; the genuine one is not newer
    trusted = conf.loaded
    assert trusted is not None and trusted.signed != wrong_key
    assert conf.offer(wrong_key) is False
    assert conf.last_error is not None and conf.last_error.code.name == "InvalidGlobalConf"


async def test_gateway_refresh_on_a_running_and_a_stopped_gateway(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    consumer_dir = fed.layout.gateway(CONSUMER_GATEWAY)
    watch = fed.consumer.conf_watch
    assert watch is not None
    await watch.stop()  # so that only the refresh can bring the new version
    held = version(fed)
    await register_archive(fed)

    capsys.readouterr()
    code = await asyncio.to_thread(zhol, ["gateway", "refresh", "--dir", str(consumer_dir)])
    out = capsys.readouterr().out
    assert code == 0
    assert version(fed) > held
    assert f"configuration version {version(fed)} from " in out
    assert await callable_now(fed)

    code = await asyncio.to_thread(
        zhol, ["gateway", "refresh", "--dir", str(consumer_dir), "--json"]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["running"] is True and doc["version"] == version(fed)
    assert doc["accepted"] is False and doc["error"] is None  # nothing newer this time

    # The registry away: the fetch fails, the version still held is said, exit 3.
    await fed.registry.stop(0)
    code = await asyncio.to_thread(zhol, ["gateway", "refresh", "--dir", str(consumer_dir)])
    captured = capsys.readouterr()
    assert code == 3
    assert "NetworkError" in captured.err
    assert f"configuration version {version(fed)} from " in captured.out

    await fed.gateways.pop(CONSUMER_GATEWAY).stop(0)
    code = zhol(["gateway", "refresh", "--dir", str(consumer_dir), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["running"] is False
    code = zhol(["gateway", "refresh", "--dir", str(consumer_dir)])
    assert code == 1 and capsys.readouterr().out.startswith("NotRunning:")
    assert zhol(["gateway", "refresh", "--dir", str(consumer_dir / "nowhere")]) == 3


def gateway_status(fed: Federation, capsys: pytest.CaptureFixture[str]) -> tuple[dict, str]:  # type: ignore[type-arg]
    """`zhol gateway status` of the consumer: (its --json document, its text)."""
    consumer_dir = str(fed.layout.gateway(CONSUMER_GATEWAY))
    capsys.readouterr()
    zhol(["gateway", "status", "--dir", consumer_dir, "--json"])
    doc = json.loads(capsys.readouterr().out)
    zhol(["gateway", "status", "--dir", consumer_dir])
    return doc, capsys.readouterr().out


async def test_gateway_status_says_whether_the_watch_is_open_and_what_is_held(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    watch = fed.consumer.conf_watch
    assert watch is not None

    def watch_open(expected: bool) -> bool:
        doc, _ = gateway_status(fed, capsys)
        return doc["conf_watch"] is not None and doc["conf_watch"]["open"] is expected

    # health.json follows the running gateway within a second of a change.
    await until(lambda: watch_open(True), timeout=15, what="status: the watch open")
    doc, text = gateway_status(fed, capsys)
    held = version(fed)
    assert doc["conf_watch"]["version"] == held and doc["conf_watch"]["age_s"] >= 0
    assert doc["conf_watch"]["generated_at"] == doc["global_conf"]["generated_at"]
    assert f"watch    open; the gateway holds configuration version {held} from " in text

    await fed.registry.stop(0)  # the watch goes down; the gateway polls
    await until(lambda: watch_open(False), timeout=15, what="status: the watch down")
    _, text = gateway_status(fed, capsys)
    assert "watch    down: polling the registry; the gateway holds configuration version" in text

    await fed.gateways.pop(CONSUMER_GATEWAY).stop(0)
    doc, text = gateway_status(fed, capsys)
    assert doc["conf_watch"] is None and "watch    -" in text
