"""PeerChannels' CallStream against a real TLS server that ends it: a stream that
breaks with any status is replaced once (a gateway shutting down resets its streams,
RST_STREAM: INTERNAL to gRPC, as often as it closes them, UNAVAILABLE)."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.serialization import Encoding

from zhol.bus.v1 import bus_pb2
from zhol.core.ids import GatewayId
from zhol.gateway.callstream import EXCHANGE_CALL_STREAM
from zhol.gateway.transport import PeerChannels
from zhol.security.ca import auth_dns_name, create_self_signed_tls_cert
from zhol.security.keys import generate_private_key, private_key_to_pem

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

PEER = GatewayId.parse("KZ/GOV/MJ/gw1")


class ResettingPeer:
    """Echoes every streamed call; the first stream ends with ``status`` on its
    second frame, as a peer going away would end it."""

    def __init__(self, status: grpc.StatusCode) -> None:
        self.status = status
        self.streams = 0

    async def call_stream(
        self,
        frames: AsyncIterator[bus_pb2.CallFrame],
        context: grpc.aio.ServicerContext[bus_pb2.CallFrame, bus_pb2.CallFrame],
    ) -> AsyncIterator[bus_pb2.CallFrame]:
        self.streams += 1
        stream = self.streams
        received = 0
        async for frame in frames:
            received += 1
            if stream == 1 and received == 2:
                await context.abort(self.status, "the peer went away")
            yield bus_pb2.CallFrame(
                calls=[
                    bus_pb2.StreamedCall(call_id=c.call_id, message=c.message) for c in frame.calls
                ]
            )


def method_name(path: str) -> str:
    return path.rsplit("/", 1)[1]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def tls() -> tuple[bytes, bytes]:
    """A certificate for the peer's TLS name, serving both ends: (cert PEM, key PEM)."""
    key = generate_private_key()
    now = datetime.datetime.now(datetime.UTC)
    cert = create_self_signed_tls_cert(key, [auth_dns_name(str(PEER))], now)
    return cert.public_bytes(Encoding.PEM), private_key_to_pem(key)


def serve(
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]], tls: tuple[bytes, bytes]
) -> tuple[grpc.aio.Server, str]:
    """A TLS server on an ephemeral port of 127.0.0.1 with these Exchange methods
    (not started): (server, address)."""
    cert_pem, key_pem = tls
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("zhol.bus.v1.Exchange", handlers),)
    )
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key_pem, cert_pem)]))
    return server, f"127.0.0.1:{port}"


@pytest.mark.parametrize(
    "status",
    [grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED],
)
async def test_a_call_on_a_broken_stream_goes_on_a_fresh_one(
    tls: tuple[bytes, bytes], status: grpc.StatusCode
) -> None:
    cert_pem, key_pem = tls
    peer = ResettingPeer(status)
    handler = grpc.stream_stream_rpc_method_handler(
        peer.call_stream,
        request_deserializer=bus_pb2.CallFrame.FromString,
        response_serializer=bus_pb2.CallFrame.SerializeToString,
    )
    server, address = serve({method_name(EXCHANGE_CALL_STREAM): handler}, tls)
    await server.start()
    channels = PeerChannels(cert_pem, key_pem, cert_pem)
    try:
        first = bus_pb2.SignedMessage(body=b"first")
        assert await channels.send(address, PEER, first, 10.0) == first
        second = bus_pb2.SignedMessage(body=b"second")
        assert await channels.send(address, PEER, second, 10.0) == second
        assert peer.streams == 2
        assert channels.transport(address, PEER) == "stream"
    finally:
        await channels.close()
        await server.stop(0)
