"""The gateway's stages in memory (tests/pipeline_harness.py): real keys, certificates,
configuration, log and stores; a fake send, a fake IS and fake clocks. Codes only."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from google.protobuf.message import Message

from tests.pipeline_harness import (
    CLIENT,
    CLOCK_SKEW_S,
    CONSUMER_GATEWAY,
    GET_ADDRESS,
    GET_PERSON,
    GRPC_SERVICE,
    OTHER_CLIENT,
    OTHER_GATEWAY,
    PROVIDER,
    PROVIDER_GATEWAY,
    START,
    START_MS,
    SUBJECT,
    Bus,
    Side,
    header,
    in_memory_bus,
    sealed_request,
)
from tests.pki import issue_der, new_ca
from zhol.bus.v1 import bus_pb2
from zhol.core.errors import CODES, Hop, ZholError
from zhol.core.ids import GatewayId
from zhol.gateway.exchange import ProviderExchange, seal_from_pb, seal_to_pb
from zhol.gateway.messagelog import list_records
from zhol.gateway.pipeline import Pipeline
from zhol.gateway.provider_stages import seal_answer
from zhol.security.globalconf import gateway_to_pb, subsystem_to_pb
from zhol.security.keys import generate_private_key
from zhol.security.sealing import RESPONSE_TYPE, Signer, seal


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[Bus]:
    with in_memory_bus(tmp_path) as running:
        yield running


def consumer_signer(bus: Bus) -> Signer:
    return bus.trust.gateways[CONSUMER_GATEWAY].signer


async def served_code(
    bus: Bus, message: bus_pb2.SignedMessage, peer: GatewayId = CONSUMER_GATEWAY
) -> str:
    """The full code the provider pipeline answers ``message`` with."""
    with pytest.raises(ZholError) as caught:
        await bus.serve(message, peer)
    return caught.value.full_code


def logged(bus: Bus) -> int:
    """Records in both gateways' logs (written before any answer is released)."""
    return sum(len(side.log.recent_request_ids(0)) for side in (bus.consumer, bus.provider))


# -- the round trip --------------------------------------------------------------------


async def test_a_call_goes_through_both_pipelines_and_is_logged_on_both_sides(bus: Bus) -> None:
    bus.grant()
    x = await bus.call()
    assert x.response_header is not None and x.response is not None
    assert x.response_header.kind == bus_pb2.MESSAGE_KIND_RESPONSE
    assert x.response_header.request_digest == x.request_digest
    assert x.response.body == bus.provider_is.answer.body
    ((path, body, metadata),) = bus.provider_is.calls
    assert path == GET_PERSON and body == b"\x0a\x0c" + SUBJECT.encode()
    assert metadata["zhol-client"] == str(CLIENT)
    assert metadata["zhol-message-id"] == x.message_id
    assert metadata["zhol-data-subject"] == SUBJECT
    for side, request_dir, response_dir in (
        (bus.consumer, "out", "in"),
        (bus.provider, "in", "out"),
    ):
        assert side.log.holds(x.message_id, "request", request_dir)
        assert side.log.holds(x.message_id, "response", response_dir)


async def test_a_service_registered_without_descriptors_is_taken_at_its_callers_word(
    bus: Bus,
) -> None:
    # The harness's configuration lists GetPerson with no descriptor set: neither gateway
    # can read whom the body names, so the declaration goes through as given
    # (docs/protocol.md, "The data subject is bound to the data").
    bus.grant()
    await bus.call(body=b"not a GetPersonRequest")
    ((_, _, metadata),) = bus.provider_is.calls
    assert metadata["zhol-data-subject"] == SUBJECT


async def test_a_providers_refusal_reaches_the_consumer_with_the_providers_hop(
    bus: Bus,
) -> None:
    with pytest.raises(ZholError) as caught:
        await bus.call()  # no right granted
    assert caught.value.full_code == "Server.ServerProxy.AccessDenied"
    assert caught.value.remote
    assert bus.provider_is.calls == [] and logged(bus) == 0


# -- the message log comes first ---------------------------------------------------------


def kinds_logged(side: Side, message_id: str) -> list[tuple[str, str]]:
    return [(r["kind"], r["direction"]) for r in list_records(side.log.path, message_id=message_id)]


async def test_a_consumer_whose_log_cannot_be_written_forwards_nothing(bus: Bus) -> None:
    bus.grant()
    bus.consumer.log.close()
    with pytest.raises(ZholError) as caught:
        await bus.call()
    assert caught.value.full_code == "Server.ClientProxy.LoggingFailed"
    assert bus.sent == [] and bus.provider_is.calls == []
    assert list_records(bus.provider.log.path) == []


async def test_a_provider_whose_log_cannot_be_written_hands_nothing_to_its_is(
    bus: Bus,
) -> None:
    bus.grant()
    bus.provider.log.close()
    with pytest.raises(ZholError) as caught:
        await bus.call()
    assert caught.value.full_code == "Server.ServerProxy.LoggingFailed"
    assert bus.provider_is.calls == []
    (message,) = bus.sent
    message_id = bus_pb2.MessageHeader.FromString(message.header).message_id
    assert kinds_logged(bus.consumer, message_id) == [("request", "out")]


async def test_an_answer_that_cannot_be_logged_is_not_released_and_the_request_is_on_record(
    bus: Bus,
) -> None:
    """The window log-first leaves: the IS acted, then the provider's log failed. The
    caller gets LoggingFailed (outcome unknown), and both logs hold the request."""
    bus.grant()
    bus.provider_is.on_call = bus.provider.log.close
    with pytest.raises(ZholError) as caught:
        await bus.call()
    assert caught.value.full_code == "Server.ServerProxy.LoggingFailed"
    assert len(bus.provider_is.calls) == 1
    message_id = bus.provider_is.calls[0][2]["zhol-message-id"]
    assert kinds_logged(bus.consumer, message_id) == [("request", "out")]
    assert kinds_logged(bus.provider, message_id) == [("request", "in")]


async def test_a_request_is_logged_before_it_leaves_and_its_answer_after(bus: Bus) -> None:
    bus.grant()
    x = await bus.call()
    for side in (bus.consumer, bus.provider):
        records = list_records(side.log.path, message_id=x.message_id)
        assert [r["kind"] for r in records] == ["request", "response"]
        assert records[0]["seq"] < records[1]["seq"]
    # Logged before it was sent, the consumer's request names no peer; its answer does.
    consumer = list_records(bus.consumer.log.path, message_id=x.message_id)
    assert [r["peer"] for r in consumer] == ["", str(PROVIDER_GATEWAY)]


# -- VerifyRequest ---------------------------------------------------------------------


async def test_a_well_sealed_request_is_verified(bus: Bus) -> None:
    bus.grant()
    x = await bus.serve(sealed_request(consumer_signer(bus)))
    assert x.client == CLIENT and x.service is not None and x.service.subsystem == PROVIDER
    assert x.peer == CONSUMER_GATEWAY and len(bus.provider_is.calls) == 1


@pytest.mark.parametrize("part", ["header", "body", "signature"])
async def test_a_tampered_request_has_an_invalid_signature(bus: Bus, part: str) -> None:
    bus.grant()
    message = sealed_request(consumer_signer(bus))
    value = getattr(message, part)
    setattr(message, part, value[:-1] + bytes([value[-1] ^ 1]))
    assert await served_code(bus, message) == "Server.ServerProxy.InvalidSignature"
    assert bus.provider_is.calls == []


async def test_an_unsigned_request_is_missing_its_signature(bus: Bus) -> None:
    message = sealed_request(consumer_signer(bus))
    message.signature = b""
    assert await served_code(bus, message) == "Server.ServerProxy.MissingSignature"


async def test_a_response_seal_is_not_a_request(bus: Bus) -> None:
    """Domain separation: the same header signed as a response does not verify."""
    sealed, _ = seal(consumer_signer(bus), RESPONSE_TYPE, header().SerializeToString(), b"")
    assert await served_code(bus, seal_to_pb(sealed)) == "Server.ServerProxy.InvalidSignature"


async def test_a_request_signed_by_another_member_is_a_signer_mismatch(bus: Bus) -> None:
    other = bus.trust.gateways[OTHER_GATEWAY].signer  # trusted, but MOH's, not MLSPP's
    assert await served_code(bus, sealed_request(other)) == "Server.ServerProxy.SignerMismatch"


async def test_a_signer_certificate_from_another_ca_is_invalid(bus: Bus) -> None:
    rogue = new_ca("Rogue CA", START)
    key = generate_private_key()
    signer = Signer(key, issue_der(rogue, key, "sign", str(CLIENT.member), START))
    assert await served_code(bus, sealed_request(signer)) == (
        "Server.ServerProxy.InvalidCertificate"
    )


async def test_a_certificate_hash_that_does_not_match_is_invalid(bus: Bus) -> None:
    message = sealed_request(consumer_signer(bus))
    message.signer_cert_sha256 = hashlib.sha256(b"another certificate").digest()
    assert await served_code(bus, message) == "Server.ServerProxy.InvalidCertificate"


@pytest.mark.parametrize(
    "changes",
    [
        {"kind": bus_pb2.MESSAGE_KIND_RESPONSE},
        {"message_id": ""},
        {"protocol_version": 2},
        {"data_subject": "123"},
    ],
    ids=["response-kind", "no-id", "protocol-2", "bad-subject"],
)
async def test_a_signed_but_malformed_header_is_an_invalid_message(
    bus: Bus, changes: dict[str, object]
) -> None:
    message = sealed_request(consumer_signer(bus), header(**changes))
    assert await served_code(bus, message) == "Server.ServerProxy.InvalidMessage"


async def test_a_request_from_a_gateway_that_does_not_serve_the_client_is_refused(
    bus: Bus,
) -> None:
    """Signed by MLSPP, but arriving over MOH's TLS connection."""
    message = sealed_request(consumer_signer(bus))
    assert await served_code(bus, message, OTHER_GATEWAY) == "Server.ServerProxy.UntrustedPeer"


# -- CheckFreshness --------------------------------------------------------------------


@pytest.mark.parametrize("offset_s", [-CLOCK_SKEW_S, 0, CLOCK_SKEW_S])
async def test_issued_at_within_the_skew_either_way_is_fresh(bus: Bus, offset_s: int) -> None:
    bus.grant()
    head = header(issued_at_unix_ms=START_MS + offset_s * 1000)
    await bus.serve(sealed_request(consumer_signer(bus), head))
    assert len(bus.provider_is.calls) == 1


@pytest.mark.parametrize(
    "offset_ms",
    [-CLOCK_SKEW_S * 1000 - 1, CLOCK_SKEW_S * 1000 + 1],
    ids=["from-the-past", "from-the-future"],
)
async def test_issued_at_beyond_the_skew_either_way_is_rejected(bus: Bus, offset_ms: int) -> None:
    bus.grant()
    head = header(issued_at_unix_ms=START_MS + offset_ms)
    assert await served_code(bus, sealed_request(consumer_signer(bus), head)) == (
        "Server.ServerProxy.ClockSkew"
    )
    assert bus.provider_is.calls == []


async def test_the_providers_clock_moving_on_makes_a_request_stale(bus: Bus) -> None:
    bus.grant()
    message = sealed_request(consumer_signer(bus))
    bus.provider.clock.advance(CLOCK_SKEW_S + 1)
    assert await served_code(bus, message) == "Server.ServerProxy.ClockSkew"


async def test_a_replayed_message_id_is_rejected(bus: Bus) -> None:
    bus.grant()
    message = sealed_request(consumer_signer(bus))
    await bus.serve(message)
    assert await served_code(bus, message) == "Server.ServerProxy.ReplayedMessage"
    # Even re-signed with a new body, the id stays used.
    again = sealed_request(
        consumer_signer(bus), header(message_id=header_of(message).message_id), body=b"other"
    )
    assert await served_code(bus, again) == "Server.ServerProxy.ReplayedMessage"
    assert len(bus.provider_is.calls) == 1


@pytest.mark.parametrize("deadline_offset_ms", [0, -1], ids=["now", "passed"])
async def test_a_request_whose_deadline_passed_times_out(bus: Bus, deadline_offset_ms: int) -> None:
    bus.grant()
    head = header(deadline_unix_ms=START_MS + deadline_offset_ms)
    assert await served_code(bus, sealed_request(consumer_signer(bus), head)) == (
        "Server.ServerProxy.Timeout"
    )
    assert bus.provider_is.calls == []


def header_of(message: bus_pb2.SignedMessage) -> bus_pb2.MessageHeader:
    return bus_pb2.MessageHeader.FromString(message.header)


# -- Authorize -------------------------------------------------------------------------


async def test_access_is_denied_by_default(bus: Bus) -> None:
    for path in (GET_PERSON, GET_ADDRESS):
        with pytest.raises(ZholError) as caught:
            await bus.call(path)
        assert caught.value.full_code == "Server.ServerProxy.AccessDenied"
    assert bus.provider_is.calls == [] and logged(bus) == 0


async def test_a_right_to_one_method_grants_that_method_only(bus: Bus) -> None:
    bus.grant(f"{PROVIDER}/{GRPC_SERVICE}/GetPerson")
    await bus.call(GET_PERSON)
    with pytest.raises(ZholError) as caught:
        await bus.call(GET_ADDRESS)
    assert caught.value.full_code == "Server.ServerProxy.AccessDenied"
    assert [path for path, _, _ in bus.provider_is.calls] == [GET_PERSON]


async def test_a_right_to_the_whole_service_grants_every_method(bus: Bus) -> None:
    bus.grant(f"{PROVIDER}/{GRPC_SERVICE}")
    await bus.call(GET_PERSON)
    await bus.call(GET_ADDRESS)
    assert [path for path, _, _ in bus.provider_is.calls] == [GET_PERSON, GET_ADDRESS]


async def test_another_clients_right_grants_nothing(bus: Bus) -> None:
    bus.grant(f"{PROVIDER}/{GRPC_SERVICE}", client=OTHER_CLIENT)
    with pytest.raises(ZholError) as caught:
        await bus.call(GET_PERSON)
    assert caught.value.full_code == "Server.ServerProxy.AccessDenied"


async def test_a_revoked_right_denies_again(bus: Bus) -> None:
    target = f"{PROVIDER}/{GRPC_SERVICE}"
    bus.grant(target)
    await bus.call(GET_PERSON)
    assert bus.provider.local.deny(CLIENT, target) == 1
    with pytest.raises(ZholError) as caught:
        await bus.call(GET_PERSON)
    assert caught.value.full_code == "Server.ServerProxy.AccessDenied"


# -- VerifyResponse --------------------------------------------------------------------


def resealed(
    signer: Signer, **changes: object
) -> Callable[[bus_pb2.SignedMessage], bus_pb2.SignedMessage]:
    """A tamperer: the provider's answer with header ``changes``, signed by ``signer``."""

    def tamper(answer: bus_pb2.SignedMessage) -> bus_pb2.SignedMessage:
        head = bus_pb2.MessageHeader.FromString(answer.header)
        for name, value in changes.items():
            if isinstance(value, Message):
                getattr(head, name).CopyFrom(value)
            else:
                setattr(head, name, value)
        sealed, _ = seal(signer, RESPONSE_TYPE, head.SerializeToString(), answer.body)
        return seal_to_pb(sealed)

    return tamper


async def consumer_code(bus: Bus) -> str:
    with pytest.raises(ZholError) as caught:
        await bus.call()
    assert not caught.value.remote
    return caught.value.full_code


@pytest.mark.parametrize("part", ["header", "body", "signature"])
async def test_a_tampered_response_has_an_invalid_signature(bus: Bus, part: str) -> None:
    bus.grant()

    def flip(answer: bus_pb2.SignedMessage) -> bus_pb2.SignedMessage:
        value = getattr(answer, part)
        setattr(answer, part, value[:-1] + bytes([value[-1] ^ 1]))
        return answer

    bus.tamper_response = flip
    assert await consumer_code(bus) == "Server.ClientProxy.InvalidSignature"
    assert not bus.consumer.log.recent_request_ids(0)


async def test_an_honestly_resealed_response_is_accepted(bus: Bus) -> None:
    """The tamperer itself changes nothing that matters: the cases below are its changes."""
    bus.grant()
    bus.tamper_response = resealed(bus.trust.gateways[bus.provider.keys.gateway_id].signer)
    await bus.call()


@pytest.mark.parametrize(
    "changes",
    [
        {"request_digest": hashlib.sha256(b"another request").digest()},
        {"request_digest": b""},
        {"message_id": "0190f3c6-1b2a-7d4e-8f00-0000000000ff"},
        {"kind": bus_pb2.MESSAGE_KIND_REQUEST},
        {"client": subsystem_to_pb(OTHER_CLIENT)},
    ],
    ids=["other-request", "unbound", "other-id", "request-kind", "other-client"],
)
async def test_a_response_not_bound_to_its_request_is_a_mismatch(
    bus: Bus, changes: dict[str, object]
) -> None:
    bus.grant()
    provider_signer = bus.trust.gateways[bus.provider.keys.gateway_id].signer
    bus.tamper_response = resealed(provider_signer, **changes)
    assert await consumer_code(bus) == "Server.ClientProxy.ResponseMismatch"
    assert not bus.consumer.log.recent_request_ids(0)


async def test_a_response_signed_by_another_member_is_a_signer_mismatch(bus: Bus) -> None:
    bus.grant()
    bus.tamper_response = resealed(bus.trust.gateways[OTHER_GATEWAY].signer)
    assert await consumer_code(bus) == "Server.ClientProxy.SignerMismatch"


async def test_a_response_from_beyond_the_skew_is_rejected(bus: Bus) -> None:
    bus.grant()
    provider_signer = bus.trust.gateways[bus.provider.keys.gateway_id].signer
    late = START_MS + CLOCK_SKEW_S * 1000 + 1
    bus.tamper_response = resealed(provider_signer, issued_at_unix_ms=late)
    assert await consumer_code(bus) == "Server.ClientProxy.ClockSkew"


async def test_a_response_to_an_earlier_request_is_a_mismatch(bus: Bus) -> None:
    """A genuine, signed answer, but to another exchange: replaying it does not pass."""
    bus.grant()
    first = await bus.call()
    assert first.response is not None
    earlier = seal_to_pb(first.response)
    bus.tamper_response = lambda _answer: earlier
    assert await consumer_code(bus) == "Server.ClientProxy.ResponseMismatch"


async def test_seal_answer_binds_the_response_to_the_request_digest(bus: Bus) -> None:
    provider = bus.trust.gateways[bus.provider.keys.gateway_id]
    request = header()
    digest = hashlib.sha256(b"the request's signed bytes").digest()
    sealed, _ = seal_answer(
        provider.signer, gateway_to_pb(provider.gateway_id), START_MS, request, digest, b"ok"
    )
    answer = bus_pb2.MessageHeader.FromString(seal_from_pb(seal_to_pb(sealed)).header)
    assert answer.request_digest == digest and answer.message_id == request.message_id


# -- hop attribution in Pipeline -------------------------------------------------------


def raising(error: BaseException) -> Callable[[ProviderExchange], object]:
    async def stage(x: ProviderExchange) -> None:
        raise error

    return stage


def after(ran: list[str]) -> Callable[[ProviderExchange], object]:
    async def stage(x: ProviderExchange) -> None:
        ran.append("after")

    return stage


async def run_code(hop: Hop, error: BaseException) -> tuple[ZholError, list[str]]:
    ran: list[str] = []
    pipeline: Pipeline[ProviderExchange] = Pipeline(
        hop,
        (raising(error), after(ran)),  # type: ignore[arg-type]
    )
    with pytest.raises(ZholError) as caught:
        await pipeline.run(ProviderExchange(bus_pb2.SignedMessage(), b""))
    return caught.value, ran


@pytest.mark.parametrize(
    "hop,code,expected",
    [
        (Hop.SERVER_PROXY, "NetworkError", "Server.ServerProxy.NetworkError"),
        (Hop.SERVER_PROXY, "LoggingFailed", "Server.ServerProxy.LoggingFailed"),
        (Hop.CLIENT_PROXY, "InvalidSignature", "Server.ClientProxy.InvalidSignature"),
        (Hop.CLIENT_PROXY, "AccessDenied", "Server.ClientProxy.AccessDenied"),
    ],
)
async def test_a_stage_error_is_attributed_to_the_pipelines_hop(
    hop: Hop, code: str, expected: str
) -> None:
    original = ZholError(code)
    assert original.hop != hop
    err, ran = await run_code(hop, original)
    assert err.full_code == expected
    assert err.error_id == original.error_id and ran == []


@pytest.mark.parametrize("hop", [Hop.CLIENT_PROXY, Hop.SERVER_PROXY])
@pytest.mark.parametrize(
    "error",
    [
        ZholError("MissingHeader"),
        ZholError("InvalidIdentifier"),
        ZholError("RegistrationRejected"),
        ZholError("AccessDenied", hop=Hop.SERVER_PROXY, remote=True),
        ZholError("Timeout", hop=Hop.CLIENT_PROXY, remote=True),
    ],
    ids=["client", "client-2", "registry", "remote-server", "remote-client"],
)
async def test_client_registry_and_remote_errors_keep_their_hop(hop: Hop, error: ZholError) -> None:
    err, ran = await run_code(hop, error)
    assert err is error and ran == []


@pytest.mark.parametrize("hop", [Hop.CLIENT_PROXY, Hop.SERVER_PROXY])
async def test_an_unexpected_exception_is_an_internal_error_without_detail(
    hop: Hop, caplog: pytest.LogCaptureFixture
) -> None:
    err, ran = await run_code(hop, RuntimeError("secret-path /etc/zhol/keys"))
    assert err.full_code == f"{hop.value}.InternalError"
    assert err.status == CODES["InternalError"].status
    assert err.detail == CODES["InternalError"].summary  # the catalogue's, nothing leaked
    assert "secret-path" not in str(err) and err.__cause__ is None and ran == []
    # The operator still finds it: the log names the error id with the traceback.
    assert any(err.error_id in r.getMessage() and r.exc_info for r in caplog.records)


async def test_stages_run_in_order_and_all_run_when_none_fails() -> None:
    ran: list[str] = []

    def named(name: str) -> Callable[[ProviderExchange], object]:
        async def stage(x: ProviderExchange) -> None:
            ran.append(name)

        return stage

    pipeline: Pipeline[ProviderExchange] = Pipeline(
        Hop.SERVER_PROXY,
        tuple(named(n) for n in "abc"),  # type: ignore[misc]
    )
    await pipeline.run(ProviderExchange(bus_pb2.SignedMessage(), b""))
    assert ran == ["a", "b", "c"]


def test_no_stage_is_left_out_of_either_pipeline(bus: Bus) -> None:
    assert list(bus.provider.provider.names) == [
        "LoadConfiguration",
        "AuthenticatePeer",
        "LimitRequestSize",
        "VerifyRequest",
        "CheckFreshness",
        # Discovery/AllowedMethods' and Access' stages wrap Usage's, which wrap the
        # ordinary ones.
        "AccessOrAuthorize",
        "CheckDataSubject",
        "LogRequest",
        "AccessOrInvokeProvider",
        "SealResponse",
        "LogResponse",
    ]
    assert list(bus.consumer.consumer.names) == [
        "AuthenticateIsClient",
        "LoadConfiguration",
        "ReadCallMetadata",
        "LimitRequestSize",
        "AccessOrResolveProvider",
        "BindDataSubject",
        "SealRequest",
        "LogRequest",
        "Forward",
        "VerifyResponse",
        "LogResponse",
        "RememberSentAccess",
    ]
