"""The provider gateway calling its IS over TLS and mutual TLS, on real servers.

The population adapter is served over TLS (its own self-signed certificate, pinned
in the provider gateway's local configuration with ``zhol gateway service``) and
over mutual TLS (it admits only the gateway's is-server.pem). A GetPerson goes the
whole way: IS -> consumer gateway -> provider gateway -> population adapter.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.serialization import Encoding

from tests.integration.bus_federation import Federation, error_code, get_person, start_federation
from tests.integration.test_bus import some_iin
from zhol.adapters.population.server import PopulationServer, serve
from zhol.cli.demo import CONSUMER_GATEWAY, PROVIDER_GATEWAY
from zhol.cli.federation import POPULATION, POPULATION_SERVICE
from zhol.cli.main import main as zhol
from zhol.security.ca import create_self_signed_tls_cert
from zhol.security.keys import generate_private_key, private_key_to_pem

pytestmark = pytest.mark.asyncio(loop_scope="module")

NOW = datetime.datetime.now(datetime.UTC)
SERVICE = f"{POPULATION}/{POPULATION_SERVICE}"


def write_identity(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed TLS certificate for 127.0.0.1 and its key: (cert path, key path)."""
    key = generate_private_key()
    cert = create_self_signed_tls_cert(key, [], NOW, common_name=name)
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(Encoding.PEM))
    key_path.write_bytes(private_key_to_pem(key))
    return cert_path, key_path


@dataclass
class Setup:
    fed: Federation
    certs: Path
    is_cert: Path  # the TLS population adapter's certificate (what the gateway pins)
    other_cert: Path  # some other certificate: the wrong pin
    tls_population: PopulationServer
    mtls_population: PopulationServer  # admits only the gateway's is-server.pem

    @property
    def provider_dir(self) -> str:
        return str(self.fed.layout.gateway(PROVIDER_GATEWAY))


def gateway(*argv: str) -> int:
    return zhol(["gateway", *argv])


def configure(setup: Setup, address: str, *tls: str) -> None:
    assert gateway(
        "service", "--dir", setup.provider_dir, "--service", SERVICE, "--address", address, *tls
    ) == 0


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def setup(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Setup]:
    fed = await start_federation(tmp_path_factory.mktemp("federation"), persons=20)
    # The running gateway sees each CLI change at once rather than within half a second.
    fed.provider.local.RELOAD_CHECK_S = 0.0  # type: ignore[misc]
    servers: list[PopulationServer] = []
    try:
        certs = tmp_path_factory.mktemp("certs")
        is_cert, is_key = write_identity(certs, "population-is")
        other_cert, _ = write_identity(certs, "someone-else")
        assert gateway("is-cert", "--dir", str(fed.layout.gateway(PROVIDER_GATEWAY))) == 0
        gateway_cert = fed.layout.gateway(PROVIDER_GATEWAY) / "keys" / "is-server.pem"
        plain = fed.population.settings
        tls_settings = replace(
            plain, listen="127.0.0.1:0", port_file=None, tls_cert=is_cert, tls_key=is_key
        )
        servers.append(await serve(tls_settings))
        servers.append(await serve(replace(tls_settings, tls_client_ca=gateway_cert)))
        yield Setup(fed, certs, is_cert, other_cert, *servers)
    finally:
        for server in servers:
            await server.stop(0)
        await fed.stop()


async def test_tls_to_the_is_through_the_whole_bus(setup: Setup) -> None:
    configure(
        setup, setup.tls_population.address, "--tls-mode", "tls",
        "--server-cert", str(setup.is_cert),
    )  # fmt: skip
    person = await get_person(setup.fed.is_address(), some_iin(setup.fed))
    assert person.iin == some_iin(setup.fed)


async def test_mtls_to_the_is_through_the_whole_bus(setup: Setup) -> None:
    configure(
        setup, setup.mtls_population.address, "--tls-mode", "mtls",
        "--server-cert", str(setup.is_cert),
    )  # fmt: skip
    person = await get_person(setup.fed.is_address(), some_iin(setup.fed, 1))
    assert person.iin == some_iin(setup.fed, 1)


async def test_mtls_is_refuses_a_gateway_that_presents_no_certificate(setup: Setup) -> None:
    configure(
        setup, setup.mtls_population.address, "--tls-mode", "tls",
        "--server-cert", str(setup.is_cert),
    )  # fmt: skip
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await get_person(setup.fed.is_address(), some_iin(setup.fed))
    assert error_code(caught.value) == "Server.ServerProxy.ServiceFailed"


async def test_wrong_pinned_certificate_fails_and_nothing_reaches_the_is(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    # A bare IS on TLS that records every call reaching it.
    received: list[bytes] = []

    def record(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        received.append(request)
        return b""

    class Recorder(grpc.GenericRpcHandler):
        def service(self, details):  # type: ignore[no-untyped-def]
            return grpc.unary_unary_rpc_method_handler(record)

    is_key = (setup.certs / "population-is.key").read_bytes()
    recorder = grpc.aio.server()
    recorder.add_generic_rpc_handlers((Recorder(),))
    credentials = grpc.ssl_server_credentials(((is_key, setup.is_cert.read_bytes()),))
    port = recorder.add_secure_port("127.0.0.1:0", credentials)
    await recorder.start()
    try:
        configure(
            setup, f"127.0.0.1:{port}", "--tls-mode", "tls",
            "--server-cert", str(setup.other_cert),
        )  # fmt: skip
        with (
            caplog.at_level(logging.WARNING, logger="zhol.gateway"),
            pytest.raises(grpc.aio.AioRpcError) as caught,
        ):
            await get_person(setup.fed.is_address(), some_iin(setup.fed))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_code(caught.value) == "Server.ServerProxy.ServiceFailed"
        assert any("Server.ServerProxy.ServiceFailed" in r.getMessage() for r in caplog.records)
        assert received == []
        # The right pin on the same IS: the call now reaches it.
        configure(
            setup, f"127.0.0.1:{port}", "--tls-mode", "tls", "--server-cert", str(setup.is_cert)
        )
        await get_person(setup.fed.is_address(), some_iin(setup.fed))
        assert len(received) == 1
    finally:
        await recorder.stop(0)


async def test_plaintext_still_works(setup: Setup) -> None:
    configure(setup, setup.fed.population.address, "--tls-mode", "plaintext")
    person = await get_person(setup.fed.is_address(), some_iin(setup.fed, 2))
    assert person.iin == some_iin(setup.fed, 2)


async def test_services_lists_the_mode_and_pin(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from zhol.gateway.ispins import cert_pem_sha256

    configure(
        setup, setup.tls_population.address, "--tls-mode", "tls",
        "--server-cert", str(setup.is_cert),
    )  # fmt: skip
    capsys.readouterr()
    assert gateway("services", "--dir", setup.provider_dir, "--json") == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["subsystem"] == POPULATION and row["grpc_service"] == POPULATION_SERVICE
    assert row["address"] == setup.tls_population.address
    assert row["tls_mode"] == "tls"
    assert row["server_cert_sha256"] == [cert_pem_sha256(setup.is_cert.read_bytes()).hex()]


async def test_events_reach_a_subscriber_sink_over_mtls(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from tests.integration.test_events import PUBLISHER, SUBSCRIBER, TOPIC, Sink, birth, publish
    from tests.integration.test_events import until as eventually
    from zhol.bus.v1 import bus_pb2_grpc

    consumer_dir = setup.fed.layout.gateway(CONSUMER_GATEWAY)
    assert gateway("is-cert", "--dir", str(consumer_dir)) == 0
    setup.fed.consumer.local.RELOAD_CHECK_S = 0.0  # type: ignore[misc]
    sink = Sink()
    server = grpc.aio.server()
    bus_pb2_grpc.add_EventSinkServicer_to_server(sink, server)
    is_key = (setup.certs / "population-is.key").read_bytes()
    credentials = grpc.ssl_server_credentials(
        ((is_key, setup.is_cert.read_bytes()),),
        root_certificates=(consumer_dir / "keys" / "is-server.pem").read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        topic = f"{PUBLISHER}/{TOPIC}"
        assert zhol(["events", "subscribe", "--gateway", setup.provider_dir,
                     "--subscriber", SUBSCRIBER, "--topic", topic]) == 0  # fmt: skip
        assert zhol(["events", "sink", "--gateway", str(consumer_dir), "--subsystem", SUBSCRIBER,
                     "--address", f"127.0.0.1:{port}", "--tls-mode", "mtls",
                     "--server-cert", str(setup.is_cert)]) == 0  # fmt: skip
        capsys.readouterr()
        assert zhol(["events", "sinks", "--gateway", str(consumer_dir), "--json"]) == 0
        (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert (row["subsystem"], row["tls_mode"]) == (SUBSCRIBER, "mtls")
        await publish(setup.fed, birth())
        await eventually(lambda: len(sink.received) == 1)
        assert sink.received[0].topic == TOPIC
    finally:
        await server.stop(0)


async def test_add_subsystem_sets_the_is_tls_mode_or_refuses_before_registering(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    def subsystem_requests() -> list[str]:
        capsys.readouterr()
        registry = str(setup.fed.layout.registry)
        assert zhol(["registry", "requests", "--dir", registry, "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)["registrations"]
        return sorted(r["subsystem"] for r in rows if r["kind"] == "SUBSYSTEM")

    offer = f"{POPULATION_SERVICE}={setup.tls_population.address}:GetPerson"
    add = ("add-subsystem", "--dir", setup.provider_dir, "--service", offer)
    before = subsystem_requests()
    # tls without the certificate to verify the IS against: refused, the registry never asked.
    archive = (*add, "--subsystem", "KZ/GOV/MJ/archive", "--tls-mode", "tls")
    assert await asyncio.to_thread(gateway, *archive) == 2
    assert subsystem_requests() == before

    civil = (*add, "--subsystem", "KZ/GOV/MJ/civil", "--tls-mode", "tls")
    assert await asyncio.to_thread(gateway, *civil, "--server-cert", str(setup.is_cert)) == 0
    assert subsystem_requests() == sorted([*before, "KZ/GOV/MJ/civil"])
    capsys.readouterr()
    assert gateway("services", "--dir", setup.provider_dir, "--json") == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (civil,) = [r for r in rows if r["subsystem"] == "KZ/GOV/MJ/civil"]
    assert (civil["address"], civil["tls_mode"]) == (setup.tls_population.address, "tls")
