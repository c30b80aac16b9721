"""A call through two gateways, and every way it can fail, on real servers."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator

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
    get_person,
    start_federation,
)
from zhol.cli.demo import CONSUMER_GATEWAY, PROVIDER_GATEWAY
from zhol.core.errors import Hop, ZholError, parse_full_code
from zhol.gateway.messagelog import list_records
from zhol.population.v1 import population_pb2

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def fed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    federation = await start_federation(tmp_path_factory.mktemp("federation"))
    yield federation
    await federation.stop()


def some_iin(fed: Federation, offset: int = 0) -> str:
    with sqlite3.connect(fed.layout.population_db) as db:
        row = db.execute(
            "SELECT iin FROM persons ORDER BY iin LIMIT 1 OFFSET ?", (offset,)
        ).fetchone()
    return str(row[0])


def log_count(fed: Federation, gateway_id: str) -> int:
    return len(list_records(fed.layout.gateway(gateway_id) / "messagelog.db"))


def assert_refusal_evidence(
    fed: Federation, before: dict[str, int], *, forwarded: bool | None, peer_port: bool = False
) -> None:
    """What a refused call leaves in the logs (docs/protocol.md, 'The message log').

    No response on either side. The consumer gateway holds the request (out) if it was
    forwarded (None: it may have been); the provider gateway holds it (in) only if it
    was handed on towards the IS, and never a request the consumer does not hold. With
    ``peer_port`` the test itself played the consumer gateway, so ours logged nothing.
    """
    new = {
        g: list_records(fed.layout.gateway(g) / "messagelog.db")[count:]
        for g, count in before.items()
    }
    consumer = [(r["kind"], r["direction"]) for r in new[CONSUMER_GATEWAY]]
    provider = [(r["kind"], r["direction"]) for r in new[PROVIDER_GATEWAY]]
    if forwarded is False or peer_port:
        assert consumer == [], "a call refused before it was forwarded was logged"
    elif forwarded:
        assert consumer == [("request", "out")]
    else:
        assert consumer in ([], [("request", "out")])
    assert provider in ([], [("request", "in")])
    if provider and not peer_port:
        assert new[PROVIDER_GATEWAY][0]["message_id"] == new[CONSUMER_GATEWAY][0]["message_id"]


async def expect_error(
    fed: Federation, coro, code: str, status: grpc.StatusCode, *, peer_port: bool = False
) -> None:  # type: ignore[no-untyped-def]
    before = {g: log_count(fed, g) for g in (CONSUMER_GATEWAY, PROVIDER_GATEWAY)}
    # A unary Call reports the error in trailers; a CallStream as the remote ZholError.
    with pytest.raises((grpc.aio.AioRpcError, ZholError)) as caught:
        await coro
    if isinstance(caught.value, ZholError):
        assert caught.value.remote
        assert (caught.value.full_code, caught.value.status) == (code, status)
    else:
        assert error_code(caught.value) == code
        assert caught.value.code() == status
    hop, _ = parse_full_code(code)
    forwarded = {Hop.CLIENT: False, Hop.SERVER_PROXY: True}.get(hop)
    assert_refusal_evidence(fed, before, forwarded=forwarded, peer_port=peer_port)


async def test_call_through_two_gateways_is_logged_on_both(fed: Federation) -> None:
    iin = some_iin(fed)
    body, trailers = await call_raw(
        fed.is_address(),
        GET_PERSON,
        population_pb2.GetPersonRequest(iin=iin).SerializeToString(),
        bus_metadata(data_subject=iin, purpose="case 17"),
    )
    person = population_pb2.Person.FromString(body)
    assert person.iin == iin and person.last_name
    message_id = trailers["zhol-message-id"]
    assert "zhol-error" not in trailers
    for gateway_id, request_dir, response_dir in (
        (CONSUMER_GATEWAY, "out", "in"),
        (PROVIDER_GATEWAY, "in", "out"),
    ):
        records = list_records(
            fed.layout.gateway(gateway_id) / "messagelog.db", message_id=message_id
        )
        by_kind = {r["kind"]: r for r in records}
        assert set(by_kind) == {"request", "response"}
        assert by_kind["request"]["direction"] == request_dir
        assert by_kind["response"]["direction"] == response_dir
        for r in records:
            assert r["client"] == "KZ/GOV/MLSPP/pension"
            assert r["service"].endswith("PopulationRegistry/GetPerson")
            assert r["data_subject"] == iin
            assert r["purpose"] == "case 17"
            assert r["user_id"] == "EE:tester"


async def test_provider_answer_passes_through_without_bus_error(fed: Federation) -> None:
    unknown = "850314401236"  # valid check digit, not in the seeded registry
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await get_person(fed.is_address(), unknown)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_code(caught.value) is None
    trailers = dict(caught.value.trailing_metadata())
    assert trailers.get("zhol-message-id")


async def test_unknown_service(fed: Federation) -> None:
    await expect_error(
        fed,
        call_raw(fed.is_address(), "/zhol.nothing.v1.Nothing/Get", b"", bus_metadata()),
        "Server.ClientProxy.UnknownService",
        grpc.StatusCode.NOT_FOUND,
    )


async def test_unknown_method_of_known_service(fed: Federation) -> None:
    await expect_error(
        fed,
        call_raw(
            fed.is_address(), "/zhol.population.v1.PopulationRegistry/Drop", b"", bus_metadata()
        ),
        "Server.ClientProxy.UnknownService",
        grpc.StatusCode.NOT_FOUND,
    )


async def test_access_denied_for_a_method_not_granted(fed: Federation) -> None:
    request = population_pb2.RegisterDeathRequest(iin=some_iin(fed))
    await expect_error(
        fed,
        call_raw(
            fed.is_address(),
            "/zhol.population.v1.PopulationRegistry/RegisterDeath",
            request.SerializeToString(),
            bus_metadata(),
        ),
        "Server.ServerProxy.AccessDenied",
        grpc.StatusCode.PERMISSION_DENIED,
    )


@pytest.mark.parametrize("missing", ["client", "purpose", "user_id"])
async def test_missing_header(fed: Federation, missing: str) -> None:
    iin = some_iin(fed)
    await expect_error(
        fed,
        get_person(fed.is_address(), iin, **{missing: None}),
        "Client.MissingHeader",
        grpc.StatusCode.INVALID_ARGUMENT,
    )


@pytest.mark.parametrize(
    "client", ["KZ/GOV/MLSPP", "KZ/XYZ/MLSPP/pension", "KZ/GOV/MLSPP/pen sion"]
)
async def test_malformed_client_identifier(fed: Federation, client: str) -> None:
    await expect_error(
        fed,
        get_person(fed.is_address(), some_iin(fed), client=client),
        "Client.InvalidIdentifier",
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_malformed_data_subject(fed: Federation) -> None:
    await expect_error(
        fed,
        get_person(fed.is_address(), "850314401237"),  # wrong check digit
        "Client.InvalidIdentifier",
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_client_not_served_by_this_gateway(fed: Federation) -> None:
    await expect_error(
        fed,
        get_person(fed.is_address(), some_iin(fed), client="KZ/GOV/MJ/population"),
        "Client.UnknownClient",
        grpc.StatusCode.PERMISSION_DENIED,
    )


async def test_oversized_message(fed: Federation) -> None:
    body = population_pb2.GetPersonRequest(iin="x" * (MAX_MESSAGE_BYTES + 1)).SerializeToString()
    await expect_error(
        fed,
        call_raw(fed.is_address(), GET_PERSON, body, bus_metadata()),
        "Client.MessageTooLarge",
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    )


# --- A peer that speaks Exchange directly, with the consumer gateway's real credentials ---


# Peer-level cases run on both transports: unary Exchange.Call and Exchange.CallStream.
TRANSPORTS = pytest.mark.parametrize("stream", [False, True], ids=["call", "stream"])


def _peer(  # type: ignore[no-untyped-def]
    fed: Federation,
    key_pem: bytes | None = None,
    cert_pem: bytes | None = None,
    *,
    stream: bool = False,
):
    from zhol.gateway.credentials import load_credentials
    from zhol.gateway.transport import PeerChannels

    creds = load_credentials(fed.layout.gateway(CONSUMER_GATEWAY) / "keys", None)
    channels = PeerChannels(
        creds.ca_pem,
        key_pem or creds.auth_key_pem,
        cert_pem or creds.auth_cert_pem,
        call_stream=stream,
    )
    return creds, channels


def _request(  # type: ignore[no-untyped-def]
    fed: Federation,
    signer,
    message_id: str | None = None,
    ahead_ms: int = 0,
    *,
    data_subject: str | None = None,
    body_iin: str | None = None,
):
    """A GetPerson sealed as the consumer gateway would; ``data_subject`` and ``body_iin``
    replace the declared subject and the IIN asked for (both some_iin by default)."""
    import time
    import uuid

    from zhol.bus.v1 import bus_pb2
    from zhol.core.ids import GatewayId, ServiceId, SubsystemId
    from zhol.gateway.exchange import seal_to_pb
    from zhol.security.globalconf import gateway_to_pb, service_to_pb, subsystem_to_pb
    from zhol.security.sealing import REQUEST_TYPE, seal

    iin = some_iin(fed)
    header = bus_pb2.MessageHeader(
        message_id=message_id or str(uuid.uuid4()),
        protocol_version=1,
        kind=bus_pb2.MESSAGE_KIND_REQUEST,
        client=subsystem_to_pb(SubsystemId.parse("KZ/GOV/MLSPP/pension")),
        service=service_to_pb(
            ServiceId.parse("KZ/GOV/MJ/population/zhol.population.v1.PopulationRegistry/GetPerson")
        ),
        user_id="EE:tester",
        purpose="peer test",
        data_subject=iin if data_subject is None else data_subject,
        issued_at_unix_ms=time.time_ns() // 1_000_000 + ahead_ms,
        sender_gateway=gateway_to_pb(GatewayId.parse(CONSUMER_GATEWAY)),
    )
    body = population_pb2.GetPersonRequest(iin=iin if body_iin is None else body_iin)
    sealed, _ = seal(signer, REQUEST_TYPE, header.SerializeToString(), body.SerializeToString())
    return seal_to_pb(sealed)


async def _send(fed: Federation, channels, message):  # type: ignore[no-untyped-def]
    from zhol.core.ids import GatewayId

    try:
        return await channels.send(
            f"127.0.0.1:{fed.provider.peer_port}", GatewayId.parse(PROVIDER_GATEWAY), message, 5
        )
    finally:
        await channels.close()


@TRANSPORTS
async def test_a_well_formed_peer_request_is_answered(fed: Federation, stream: bool) -> None:
    creds, channels = _peer(fed, stream=stream)
    answer = await _send(fed, channels, _request(fed, creds.signer))
    assert answer.signature and answer.body


@TRANSPORTS
@pytest.mark.parametrize("tamper", ["signature", "header", "body", "missing"])
async def test_forged_or_missing_signature(fed: Federation, tamper: str, stream: bool) -> None:
    creds, channels = _peer(fed, stream=stream)
    message = _request(fed, creds.signer)
    if tamper == "signature":
        message.signature = message.signature[:-1] + bytes([message.signature[-1] ^ 1])
    elif tamper == "header":
        message.header = message.header.replace(b"peer test", b"peer tesT")
    elif tamper == "body":
        message.body = message.body + b"\x00"
    else:
        message.signature = b""
    expected = "MissingSignature" if tamper == "missing" else "InvalidSignature"
    await expect_error(
        fed,
        _send(fed, channels, message),
        f"Server.ServerProxy.{expected}",
        grpc.StatusCode.UNAUTHENTICATED,
        peer_port=True,
    )


@TRANSPORTS
async def test_replayed_message_id(fed: Federation, stream: bool) -> None:
    creds, channels = _peer(fed, stream=stream)
    message = _request(fed, creds.signer)
    await _send(fed, channels, message)
    _, channels = _peer(fed, stream=stream)
    await expect_error(
        fed,
        _send(fed, channels, message),
        "Server.ServerProxy.ReplayedMessage",
        grpc.StatusCode.UNAUTHENTICATED,
        peer_port=True,
    )


async def test_a_replay_just_inside_twice_the_skew_is_refused(fed: Federation) -> None:
    """A message dated the whole skew ahead stays fresh until twice the skew after its
    receipt: its replay just before then is refused as a replay."""
    skew_ms = fed.provider.conf.current().conf.tunables.clock_skew_s * 1000
    clock = fed.clocks[PROVIDER_GATEWAY]
    creds, channels = _peer(fed)
    # The sender's clock runs (just under) the whole skew ahead.
    message = _request(fed, creds.signer, ahead_ms=skew_ms - 1000)
    await _send(fed, channels, message)
    try:
        clock.offset_ms = 2 * skew_ms - 2000  # the message now dated just under a skew behind
        _, channels = _peer(fed)
        await expect_error(
            fed,
            _send(fed, channels, message),
            "Server.ServerProxy.ReplayedMessage",
            grpc.StatusCode.UNAUTHENTICATED,
            peer_port=True,
        )
    finally:
        clock.offset_ms = 0


@TRANSPORTS
async def test_peer_certificate_not_in_configuration(fed: Federation, stream: bool) -> None:
    import datetime as dt

    from cryptography.hazmat.primitives.serialization import Encoding

    from zhol.security.ca import CertificateAuthority, create_csr, issue_certificate
    from zhol.security.keys import generate_private_key, private_key_to_pem
    from zhol.security.keystore import read_certificate, read_private_key

    ca_dir = fed.layout.registry / "ca"
    ca = CertificateAuthority(
        read_private_key(ca_dir / "ca.key"), read_certificate(ca_dir / "ca.pem")
    )
    rogue_key = generate_private_key()
    rogue_id = "KZ/GOV/MLSPP/rogue"
    cert = issue_certificate(
        ca, create_csr(rogue_key, rogue_id), "auth", rogue_id, dt.datetime.now(dt.UTC)
    )
    creds, channels = _peer(
        fed, private_key_to_pem(rogue_key), cert.public_bytes(Encoding.PEM), stream=stream
    )
    await expect_error(
        fed,
        _send(fed, channels, _request(fed, creds.signer)),
        "Server.ServerProxy.UntrustedPeer",
        grpc.StatusCode.UNAUTHENTICATED,
        peer_port=True,
    )
