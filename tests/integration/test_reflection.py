"""Discovery through one's own gateway, on a real in-process federation: gRPC server
reflection on the IS port (read with grpcio-reflection's own client), showing only what
the providers' gateways grant the client, a call built from reflected descriptors alone,
Discovery/ListMethods (local) and Discovery/AllowedMethods (asked of the provider's
gateway, logged at both), and `zhol catalogue` showing both."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import AsyncIterator, Callable
from subprocess import PIPE
from typing import Any

import grpc
import pytest
import pytest_asyncio
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from tests.integration.bus_federation import (
    Federation,
    bus_metadata,
    call_raw,
    error_code,
    start_federation,
)
from tests.integration.test_bus import some_iin
from tests.reflection_client import ask_reflection
from tests.waiting import until
from zhol.bus.v1 import discovery_pb2
from zhol.cli.demo import CLIENT, CONSUMER_GATEWAY, PROVIDER_GATEWAY
from zhol.cli.federation import POPULATION_READ_METHODS, POPULATION_SERVICE
from zhol.cli.main import main as zhol
from zhol.core.grpcerr import trailer_value
from zhol.core.metadata import ERROR_KEY
from zhol.gateway.discovery import ALLOWED_METHODS_PATH, LIST_METHODS_PATH
from zhol.gateway.granted import AskAllowedMethods
from zhol.gateway.messagelog import list_records

pytestmark = pytest.mark.asyncio(loop_scope="module")

POPULATION = "KZ/GOV/MJ/population"
PENSION_SERVICE = "zhol.pension.v1.PensionRegistry"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def fed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    federation = await start_federation(tmp_path_factory.mktemp("reflection"), persons=20)
    try:
        yield federation
    finally:
        await federation.stop()


def reflect(address: str, client: str | None, ask: Callable[[Any], Any]) -> Any:
    """``ask`` a reflection database on the IS port, as ``client`` (blocking: a thread)."""
    return ask_reflection(address, bus_metadata(client=client, purpose=None, user_id=None), ask)


async def list_over_stream(
    channel: grpc.aio.Channel, path: str, client: str = CLIENT, timeout: float = 5
) -> list[str]:
    """``list`` as raw bytes on any reflection path (grpcurl asks v1 first)."""
    request = reflection_pb2.ServerReflectionRequest(list_services="").SerializeToString()
    call = channel.stream_stream(path)(
        iter([request]), metadata=(("zhol-client", client),), timeout=timeout
    )
    answers = [reflection_pb2.ServerReflectionResponse.FromString(a) async for a in call]
    return [s.name for a in answers for s in a.list_services_response.service]


async def services(fed: Federation, client: str | None = CLIENT) -> list[str]:
    address = fed.is_address(CONSUMER_GATEWAY)
    return await asyncio.to_thread(reflect, address, client, lambda db: list(db.get_services()))


async def test_reflection_lists_what_the_client_can_call_and_describes_it(
    fed: Federation,
) -> None:
    before = len(list_records(fed.layout.gateway(CONSUMER_GATEWAY) / "messagelog.db"))
    listed = await services(fed)
    conf = fed.consumer.conf.current().conf
    described = {service for _, service in conf.descriptor_sets}
    assert described == {POPULATION_SERVICE, PENSION_SERVICE}
    # Of those, the one population grants pension methods of (pension grants itself
    # nothing), and the bus's own services.
    assert listed == sorted(
        {POPULATION_SERVICE, "zhol.bus.v1.Discovery", "zhol.bus.v1.Usage", "zhol.bus.v1.Events"}
    )

    def describe(db: ProtoReflectionDescriptorDatabase) -> tuple[str, str, list[str]]:
        service = descriptor_pool.DescriptorPool(db).FindServiceByName(POPULATION_SERVICE)
        method = service.methods_by_name["GetPerson"]
        return (
            method.input_type.full_name,
            method.output_type.full_name,
            sorted(service.methods_by_name),
        )

    address = fed.is_address(CONSUMER_GATEWAY)
    request_type, response_type, methods = await asyncio.to_thread(
        reflect, address, CLIENT, describe
    )
    assert request_type == "zhol.population.v1.GetPersonRequest"
    assert response_type == "zhol.population.v1.Person"
    # Only the methods pension may call: RegisterBirth and the other writes are left out.
    assert methods == sorted(POPULATION_READ_METHODS)
    assert set(methods) < conf.methods[(next(iter(conf.providers[POPULATION_SERVICE])),
                                        POPULATION_SERVICE)]  # fmt: skip
    # A method is a symbol too (grpcurl's `describe pkg.Service.Method` asks for it).
    file = await asyncio.to_thread(
        reflect,
        address,
        CLIENT,
        lambda db: db.FindFileContainingSymbol(f"{POPULATION_SERVICE}.GetPerson"),
    )
    assert file.name == "zhol/population/v1/population.proto"
    # v1 (what grpcurl asks first) answers the same: its messages are v1alpha's.
    async with grpc.aio.insecure_channel(address) as channel:
        for version in ("v1", "v1alpha"):
            path = f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo"
            assert await list_over_stream(channel, path) == listed
    # A symbol nobody registered is not found (in the stream, as the standard says).
    with pytest.raises(KeyError):
        await asyncio.to_thread(
            reflect, address, CLIENT, lambda db: db.FindFileContainingSymbol("no.such.Thing")
        )
    # Reflection answers from the configuration; what crossed the bus, logged, was only
    # the AllowedMethods questions it asked the providers' gateways for pension.
    added = list_records(fed.layout.gateway(CONSUMER_GATEWAY) / "messagelog.db")[before:]
    assert added
    assert {(r["service"].endswith(ALLOWED_METHODS_PATH), r["client"], r["user_id"])
            for r in added} == {(True, CLIENT, "reflection")}  # fmt: skip


async def test_a_call_built_from_reflected_descriptors_alone_goes_through(
    fed: Federation,
) -> None:
    address = fed.is_address(CONSUMER_GATEWAY)
    iin = some_iin(fed, 0)

    def build(db: ProtoReflectionDescriptorDatabase) -> tuple[bytes, Any]:
        # A pool of its own: nothing from the generated population_pb2 is used.
        service = descriptor_pool.DescriptorPool(db).FindServiceByName(POPULATION_SERVICE)
        method = service.methods_by_name["GetPerson"]
        request = json_format.ParseDict(
            {"iin": iin}, message_factory.GetMessageClass(method.input_type)()
        )
        return request.SerializeToString(), message_factory.GetMessageClass(method.output_type)

    body, response_class = await asyncio.to_thread(reflect, address, CLIENT, build)
    answer, trailers = await call_raw(
        address, f"/{POPULATION_SERVICE}/GetPerson", body, bus_metadata(data_subject=iin)
    )
    person = json_format.MessageToDict(response_class.FromString(answer))
    assert person["iin"] == iin and trailers["zhol-message-id"]


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        (None, "Client.MissingHeader"),
        (POPULATION, "Client.UnknownClient"),  # a subsystem of another gateway
    ],
)
async def test_reflection_tells_an_unidentified_caller_nothing(
    fed: Federation, client: str | None, expected: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        await services(fed, client)
    assert trailer_value(caught.value.trailing_metadata(), ERROR_KEY) == expected  # type: ignore[attr-defined]


async def ask_allowed(
    fed: Federation, provider: str, client: str = CLIENT, via: str = CONSUMER_GATEWAY
) -> tuple[discovery_pb2.AllowedMethodsResponse, str]:
    body, trailers = await call_raw(
        fed.is_address(via),
        ALLOWED_METHODS_PATH,
        discovery_pb2.AllowedMethodsRequest().SerializeToString(),
        (*bus_metadata(client=client), ("zhol-provider", provider)),
    )
    return discovery_pb2.AllowedMethodsResponse.FromString(body), trailers["zhol-message-id"]


def granted(answer: discovery_pb2.AllowedMethodsResponse) -> dict[str, list[str]]:
    return {s.grpc_service: list(s.methods) for s in answer.services}


async def test_allowed_methods_are_the_providers_grants_asked_over_the_bus(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    answer, message_id = await ask_allowed(fed, POPULATION)
    assert answer.provider == POPULATION and answer.client == CLIENT
    assert answer.gateway == PROVIDER_GATEWAY
    assert granted(answer) == {POPULATION_SERVICE: sorted(POPULATION_READ_METHODS)}
    # Signed and logged like any exchange: request and response at both gateways.
    for gateway in (CONSUMER_GATEWAY, PROVIDER_GATEWAY):
        records = list_records(fed.layout.gateway(gateway) / "messagelog.db", message_id=message_id)
        assert sorted(r["kind"] for r in records) == ["request", "response"]
        assert {r["service"] for r in records} == {
            f"{POPULATION}/zhol.bus.v1.Discovery/AllowedMethods"
        }
        assert not any(r["mismatch"] for r in records)

    # The provider's operator changes the rights: the next answer follows them.
    directory = str(fed.layout.gateway(PROVIDER_GATEWAY))
    target = f"{POPULATION}/{POPULATION_SERVICE}/GetFamily"
    assert (
        zhol(["gateway", "deny", "--dir", directory, "--client", CLIENT, "--service", target]) == 0
    )

    async def applied() -> bool:
        methods = granted((await ask_allowed(fed, POPULATION))[0])[POPULATION_SERVICE]
        return "GetFamily" not in methods

    await until(applied, timeout=30, what="the provider gateway applies the operator's deny")
    assert (
        zhol(["gateway", "allow", "--dir", directory, "--client", CLIENT, "--service", target]) == 0
    )
    capsys.readouterr()

    # `zhol catalogue --allowed` asks the same through the running gateway.
    consumer_dir = str(fed.layout.gateway(CONSUMER_GATEWAY))
    args = ["catalogue", "--dir", consumer_dir, "--allowed", POPULATION, "--client", CLIENT]

    async def printed_again() -> bool:
        assert await asyncio.to_thread(zhol, [*args, "--json"]) == 0
        document = json.loads(capsys.readouterr().out)
        return document["services"] == [
            {"grpc_service": POPULATION_SERVICE, "methods": sorted(POPULATION_READ_METHODS)}
        ]

    await until(printed_again, timeout=30, what="the re-granted method is listed")
    assert await asyncio.to_thread(zhol, args) == 0
    assert f"{CLIENT} may call at {POPULATION} (answered by {PROVIDER_GATEWAY})" in (
        capsys.readouterr().out
    )


async def test_a_client_without_rights_is_allowed_nothing(fed: Federation) -> None:
    # The pension gateway grants population nothing at pension.
    answer, _ = await ask_allowed(fed, CLIENT, client=POPULATION, via=PROVIDER_GATEWAY)
    assert answer.client == POPULATION and answer.gateway == CONSUMER_GATEWAY
    assert granted(answer) == {}


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ((), "Client.MissingHeader"),  # no zhol-provider
        ((("zhol-provider", "KZ/GOV/MJ/nothing"),), "Server.ClientProxy.UnknownSubsystem"),
    ],
)
async def test_allowed_methods_needs_a_known_provider(
    fed: Federation, metadata: tuple[tuple[str, str], ...], expected: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call_raw(fed.is_address(), ALLOWED_METHODS_PATH, b"", (*bus_metadata(), *metadata))
    assert error_code(caught.value) == expected


async def list_methods(fed: Federation, provider: str, service: str = "") -> Any:
    body, _ = await call_raw(
        fed.is_address(),
        LIST_METHODS_PATH,
        discovery_pb2.ListMethodsRequest(
            provider=provider, grpc_service=service
        ).SerializeToString(),
        bus_metadata(purpose=None, user_id=None),
    )
    return discovery_pb2.ListMethodsResponse.FromString(body)


async def test_list_methods_gives_a_providers_methods_with_their_descriptors(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = await list_methods(fed, POPULATION)
    conf = fed.consumer.conf.current().conf
    assert answer.provider == POPULATION and answer.gateway == CONSUMER_GATEWAY
    assert answer.configuration_version == conf.version
    [service] = answer.services
    assert service.grpc_service == POPULATION_SERVICE
    assert service.descriptor_set == next(
        fds for (_, name), fds in conf.descriptor_sets.items() if name == POPULATION_SERVICE
    )
    methods = {m.name: (m.request_type, m.response_type) for m in service.methods}
    assert methods["GetPerson"] == (
        "zhol.population.v1.GetPersonRequest",
        "zhol.population.v1.Person",
    )
    assert list(methods) == sorted(methods)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await list_methods(fed, "KZ/GOV/MJ/nothing")
    assert error_code(caught.value) == "Server.ClientProxy.UnknownSubsystem"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await list_methods(fed, POPULATION, "no.such.Service")
    assert error_code(caught.value) == "Server.ClientProxy.UnknownService"

    directory = str(fed.layout.gateway(CONSUMER_GATEWAY))
    args = ["catalogue", "--dir", directory, "--methods", POPULATION]
    assert await asyncio.to_thread(zhol, [*args, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json_format.MessageToDict(answer, preserving_proto_field_name=True)
    assert await asyncio.to_thread(zhol, args) == 0
    assert (
        "    GetPerson(zhol.population.v1.GetPersonRequest) returns (zhol.population.v1.Person)"
        in capsys.readouterr().out.splitlines()
    )


GRPCURL = shutil.which("grpcurl")


async def grpcurl(*args: str) -> tuple[int, str, str]:
    """Run grpcurl (a subprocess: the gateways run on this event loop)."""
    assert GRPCURL is not None
    process = await asyncio.create_subprocess_exec(
        GRPCURL, "-max-time", "20", *args, stdout=PIPE, stderr=PIPE
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


@pytest.mark.skipif(GRPCURL is None, reason="grpcurl is not installed (docs/protocol.md)")
async def test_grpcurl_lists_describes_and_calls_through_the_own_gateway(
    fed: Federation,
) -> None:
    address = fed.is_address(CONSUMER_GATEWAY)
    who = ("-plaintext", "-H", f"zhol-client: {CLIENT}")
    code, out, _ = await grpcurl(*who, address, "list")
    assert code == 0 and out.split() == await services(fed)
    code, out, err = await grpcurl(*who, address, "describe", f"{POPULATION_SERVICE}.GetPerson")
    assert code == 0, err
    assert "GetPerson ( .zhol.population.v1.GetPersonRequest ) returns" in out
    iin = some_iin(fed, 1)
    call = (*who, "-H", "zhol-user-id: EE:tester", "-H", "zhol-purpose: integration test")
    body = json.dumps({"iin": iin})
    code, out, err = await grpcurl(*call, "-d", body, address, f"{POPULATION_SERVICE}/GetPerson")
    assert code == 0, err
    assert json.loads(out)["iin"] == iin
    # Not identified: reflection refuses, so grpcurl can neither list nor call.
    code, out, err = await grpcurl("-plaintext", address, "list")
    assert code != 0 and out == "" and "MissingHeader" in err


OWN_SERVICES = ["zhol.bus.v1.Discovery", "zhol.bus.v1.Events", "zhol.bus.v1.Usage"]
PENSION_METHOD = "IsInsuredByContributions"
V1_REFLECTION = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"


async def population_sees(fed: Federation, ask: Callable[[Any], Any] | None = None) -> Any:
    """``ask`` (default: list) reflection on the population gateway, as population."""
    address = fed.is_address(PROVIDER_GATEWAY)
    return await asyncio.to_thread(
        reflect, address, POPULATION, ask or (lambda db: list(db.get_services()))
    )


def reflection_questions(fed: Federation, gateway: str) -> list[str]:
    """The AllowedMethods requests reflection sent from ``gateway``, by service asked."""
    return [
        r["service"]
        for r in list_records(fed.layout.gateway(gateway) / "messagelog.db")
        if r["kind"] == "request" and r["direction"] == "out" and r["user_id"] == "reflection"
    ]


async def test_reflection_shows_a_client_only_what_it_was_granted(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Population holds no right anywhere: no provider service, only the bus's own.
    before = len(reflection_questions(fed, PROVIDER_GATEWAY))
    assert await population_sees(fed) == OWN_SERVICES
    # Each provider publishing descriptors was asked once, over the bus...
    asked = reflection_questions(fed, PROVIDER_GATEWAY)[before:]
    assert sorted(asked) == [f"{p}/{ALLOWED_METHODS_PATH[1:]}" for p in (POPULATION, CLIENT)]
    # ... and the answers are kept: another list asks nobody.
    assert await population_sees(fed) == OWN_SERVICES
    assert len(reflection_questions(fed, PROVIDER_GATEWAY)) == before + len(asked)
    for symbol in (POPULATION_SERVICE, PENSION_SERVICE, f"{PENSION_SERVICE}.{PENSION_METHOD}"):
        with pytest.raises(KeyError):  # NOT_FOUND in the stream
            await population_sees(fed, lambda db, s=symbol: db.FindFileContainingSymbol(s))

    # Pension's operator grants population one method: it shows, alone, once the kept
    # answer is stale (TTL_S, zero here) and the pension gateway reloaded its rights.
    monkeypatch.setattr(AskAllowedMethods, "TTL_S", 0.0)
    directory = str(fed.layout.gateway(CONSUMER_GATEWAY))
    right = ["--dir", directory, "--client", POPULATION, "--service"]
    target = f"{CLIENT}/{PENSION_SERVICE}/{PENSION_METHOD}"
    assert await asyncio.to_thread(zhol, ["gateway", "allow", *right, target]) == 0
    try:

        async def shown() -> bool:
            return PENSION_SERVICE in await population_sees(fed)

        await until(shown, timeout=30, what="the granted service is listed")
        assert await population_sees(fed) == sorted([*OWN_SERVICES, PENSION_SERVICE])

        def methods(db: ProtoReflectionDescriptorDatabase) -> list[str]:
            pool = descriptor_pool.DescriptorPool(db)
            return sorted(pool.FindServiceByName(PENSION_SERVICE).methods_by_name)

        assert await population_sees(fed, methods) == [PENSION_METHOD]
        with pytest.raises(KeyError):  # a method not granted is no symbol either
            await population_sees(
                fed, lambda db: db.FindFileContainingSymbol(f"{PENSION_SERVICE}.GetContributions")
            )
    finally:
        assert await asyncio.to_thread(zhol, ["gateway", "deny", *right, target]) == 0


class SilentListener:
    """A TCP listener that accepts and never answers (a hung gateway), until closed."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._held: list[asyncio.StreamWriter] = []

    async def _hold(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._held.append(writer)

    async def listen(self, port: int) -> None:
        for attempt in range(50):  # the stopped gateway's listener may linger a moment
            try:
                self._server = await asyncio.start_server(self._hold, "127.0.0.1", port)
                return
            except OSError:
                if attempt == 49:
                    raise
                await asyncio.sleep(0.1)

    async def close(self) -> None:
        """Stop listening and drop the held connections: now nothing answers there."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for writer in self._held:
            writer.close()
        self._held.clear()


async def test_a_provider_gateway_that_does_not_answer_shows_nothing_and_does_not_hang(
    fed: Federation, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="zhol.gateway.reflection")
    for name, value in (("TTL_S", 0.0), ("FAILED_TTL_S", 0.0), ("WAIT_S", 1.0)):
        monkeypatch.setattr(AskAllowedMethods, name, value)
    address = fed.is_address(CONSUMER_GATEWAY)
    assert POPULATION_SERVICE in await services(fed)
    await fed.gateways.pop(PROVIDER_GATEWAY).stop(0)
    silent = SilentListener()
    try:
        await silent.listen(fed.ports.gateway_peer[PROVIDER_GATEWAY])
        async with grpc.aio.insecure_channel(address) as channel:
            # Hung, then down: either way population's service is not shown (fail
            # closed), and the answer comes well within the call's own timeout.
            for state in ("hung", "down"):
                listed = await list_over_stream(channel, V1_REFLECTION, timeout=20)
                assert POPULATION_SERVICE not in listed, state
                assert "zhol.bus.v1.Discovery" in listed, state
                await silent.close()
        warned = [r for r in caplog.records if r.name == "zhol.gateway.reflection"]
        assert len(warned) >= 2 and all(POPULATION in r.getMessage() for r in warned)
    finally:
        await silent.close()
        await fed.start_gateway(PROVIDER_GATEWAY)

    async def shown_again() -> bool:
        return POPULATION_SERVICE in await services(fed)

    await until(shown_again, timeout=60, what="population's service shown again")
