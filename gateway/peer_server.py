"""The gateway-to-gateway side: zhol.bus.v1.Exchange over mutual TLS."""

from __future__ import annotations

import logging

import grpc

from core.errors import ZholError
from core.grpcerr import abort_with
from gateway.exchange import ProviderExchange, seal_to_pb
from gateway.pipeline import Pipeline
from zhol.bus.v1 import bus_pb2, bus_pb2_grpc

log = logging.getLogger("zhol.gateway.peer")


class ExchangeService(bus_pb2_grpc.ExchangeServicer):
    def __init__(
        self, calls: Pipeline[ProviderExchange], deliveries: Pipeline[ProviderExchange]
    ) -> None:
        self._calls = calls
        self._deliveries = deliveries

    async def Call(  # noqa: N802 - gRPC method name
        self, request: bus_pb2.SignedMessage, context: grpc.aio.ServicerContext
    ) -> bus_pb2.SignedMessage:
        return await _serve(self._calls, request, context)

    async def Deliver(  # noqa: N802 - gRPC method name
        self, request: bus_pb2.SignedMessage, context: grpc.aio.ServicerContext
    ) -> bus_pb2.SignedMessage:
        return await _serve(self._deliveries, request, context)


async def _serve(
    pipeline: Pipeline[ProviderExchange],
    request: bus_pb2.SignedMessage,
    context: grpc.aio.ServicerContext,
) -> bus_pb2.SignedMessage:
    peer_certs = context.auth_context().get("x509_pem_cert") or [b""]
    exchange = ProviderExchange(message=request, peer_cert_pem=peer_certs[0])
    try:
        await pipeline.run(exchange)
    except ZholError as err:
        message_id = exchange.header.message_id if exchange.header else "-"
        log.warning(
            "exchange failed code=%s error_id=%s message_id=%s peer=%s",
            err.full_code,
            err.error_id,
            message_id,
            exchange.peer or "-",
        )
        await abort_with(context, err)
    assert exchange.response is not None
    return seal_to_pb(exchange.response)
