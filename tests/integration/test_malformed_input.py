"""Bytes a gateway or an adapter cannot parse get a catalogued code and an error id in
the log, never gRPC's UNKNOWN with a Python exception's name; a body above the
configured limit gets MessageTooLarge from the gateway, not a transport refusal."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

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
from zhol.core.errors import CODES
from zhol.core.grpcerr import trailer_value
from zhol.core.metadata import ERROR_ID_KEY
from zhol.gateway.credentials import load_credentials
from zhol.security.ca import auth_dns_name

# A length-delimited field 1 whose length runs past the end: no protobuf message.
GARBAGE = b"\x0a\xff\xff\xff\x0fnot protobuf"
# What a leaked Python exception would look like in the details.
PYTHON_INTERNALS = re.compile(r"DecodeError|Exception|Error\(|Traceback|\.py\b")


@pytest_asyncio.fixture
async def fed(tmp_path) -> AsyncIterator[Federation]:  # type: ignore[no-untyped-def]
    federation = await start_federation(tmp_path, persons=20)
    yield federation
    await federation.stop()


def assert_no_internals(exc: grpc.aio.AioRpcError) -> None:
    assert not PYTHON_INTERNALS.search(exc.details() or "")


async def test_a_body_no_request_of_the_method_gets_invalid_request(
    fed: Federation, caplog: pytest.LogCaptureFixture
) -> None:
    iin = some_iin(fed)
    metadata = bus_metadata(data_subject=iin)
    # Through the bus: the consumer gateway reads whom the request is about from the
    # service's registered descriptors (gateway/subjects.py), so it refuses a body that
    # is no request of the method itself, before anything leaves.
    sent = log_count(fed, PROVIDER_GATEWAY)
    with pytest.raises(grpc.aio.AioRpcError) as through_bus:
        await call_raw(fed.is_address(), GET_PERSON, GARBAGE, metadata)
    exc = through_bus.value
    assert exc.code() == CODES["InvalidRequest"].status
    assert error_code(exc) == "Client.InvalidRequest"
    assert_no_internals(exc)
    bus_error_id = trailer_value(exc.trailing_metadata(), ERROR_ID_KEY)
    assert bus_error_id and bus_error_id in caplog.text
    assert log_count(fed, PROVIDER_GATEWAY) == sent
    # Straight to the adapter: the catalogued trailers as well.
    with pytest.raises(grpc.aio.AioRpcError) as direct:
        await call_raw(fed.population.address, GET_PERSON, GARBAGE, metadata)
    assert error_code(direct.value) == "Client.InvalidRequest"
    error_id = trailer_value(direct.value.trailing_metadata(), ERROR_ID_KEY)
    assert error_id and error_id in caplog.text
    assert_no_internals(direct.value)


def peer_channel(fed: Federation) -> grpc.aio.Channel:
    """A channel to the provider's peer port as the consumer gateway (mutual TLS)."""
    creds = load_credentials(fed.layout.gateway(CONSUMER_GATEWAY) / "keys", None)
    credentials = grpc.ssl_channel_credentials(
        creds.ca_pem, creds.auth_key_pem, creds.auth_cert_pem
    )
    override = (("grpc.ssl_target_name_override", auth_dns_name(PROVIDER_GATEWAY)),)
    address = fed.ports.address(fed.ports.gateway_peer[PROVIDER_GATEWAY])
    return grpc.aio.secure_channel(address, credentials, options=override)


def assert_invalid_message(exc: grpc.aio.AioRpcError, log_text: str) -> None:
    assert exc.code() == CODES["InvalidMessage"].status
    assert error_code(exc) == "Server.ServerProxy.InvalidMessage"
    error_id = trailer_value(exc.trailing_metadata(), ERROR_ID_KEY)
    assert error_id and error_id in log_text
    assert_no_internals(exc)


@pytest.mark.parametrize("method", ["Call", "Deliver"])
async def test_garbage_on_the_peer_port_gets_invalid_message(
    fed: Federation, caplog: pytest.LogCaptureFixture, method: str
) -> None:
    before = log_count(fed, PROVIDER_GATEWAY)
    async with peer_channel(fed) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await channel.unary_unary(f"/zhol.bus.v1.Exchange/{method}")(GARBAGE, timeout=10)
    assert_invalid_message(caught.value, caplog.text)
    assert log_count(fed, PROVIDER_GATEWAY) == before


async def test_a_garbage_frame_ends_the_call_stream_with_invalid_message(
    fed: Federation, caplog: pytest.LogCaptureFixture
) -> None:
    async with peer_channel(fed) as channel:
        stream = channel.stream_stream("/zhol.bus.v1.Exchange/CallStream")(timeout=10)
        await stream.write(GARBAGE)
        await stream.done_writing()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in stream:
                pass
            await stream  # ends without frames: its status is the error
    assert_invalid_message(caught.value, caplog.text)


async def test_a_70_mib_body_gets_message_too_large_from_the_gateway(fed: Federation) -> None:
    # Above every limit a registry may set, below the gateway's transport ceiling.
    body = bytes(70 * 1024 * 1024)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call_raw(fed.is_address(), GET_PERSON, body, bus_metadata(), timeout=60)
    assert caught.value.code() == CODES["MessageTooLarge"].status
    # The consumer gateway refuses the client's own request: hop Client.
    assert error_code(caught.value) == "Client.MessageTooLarge"
    assert trailer_value(caught.value.trailing_metadata(), ERROR_ID_KEY)


async def test_garbage_to_the_registry_gets_invalid_request(
    fed: Federation, caplog: pytest.LogCaptureFixture
) -> None:
    address = fed.ports.address(fed.ports.registry)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call_raw(address, "/zhol.registry.v1.Registry/SubmitRegistration", GARBAGE, ())
    assert caught.value.code() == CODES["InvalidRequest"].status
    assert error_code(caught.value) == "Client.InvalidRequest"
    error_id = trailer_value(caught.value.trailing_metadata(), ERROR_ID_KEY)
    assert error_id and error_id in caplog.text
    assert_no_internals(caught.value)
