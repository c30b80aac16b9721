"""The gateway-to-gateway side: zhol.bus.v1.Exchange over mutual TLS."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc

from zhol.bus.v1 import bus_pb2, bus_pb2_grpc
from zhol.core.errors import Hop, ZholError
from zhol.core.grpcerr import abort_with, error_to_detail
from zhol.gateway.callstream import FrameOutbox, linger_for
from zhol.gateway.exchange import ProviderExchange, seal_to_pb
from zhol.gateway.pipeline import Pipeline

log = logging.getLogger("zhol.gateway.peer")

# Calls one CallStream may have in the provider pipeline at once; beyond it the
# stream is not read further (gRPC flow control then holds the consumer back).
MAX_STREAM_IN_FLIGHT = 1024

_UnaryContext = grpc.aio.ServicerContext[bus_pb2.SignedMessage, bus_pb2.SignedMessage]


class ExchangeService(bus_pb2_grpc.ExchangeServicer):
    def __init__(
        self,
        calls: Pipeline[ProviderExchange],
        deliveries: Pipeline[ProviderExchange],
        *,
        call_stream: bool = True,
    ) -> None:
        self._calls = calls
        self._deliveries = deliveries
        self._call_stream = call_stream

    async def Call(  # noqa: N802 - gRPC method name
        self, request: bus_pb2.SignedMessage, context: _UnaryContext
    ) -> bus_pb2.SignedMessage:
        return await _serve(self._calls, request, context)

    async def Deliver(  # noqa: N802 - gRPC method name
        self, request: bus_pb2.SignedMessage, context: _UnaryContext
    ) -> bus_pb2.SignedMessage:
        return await _serve(self._deliveries, request, context)

    async def CallStream(  # noqa: N802 - gRPC method name
        self,
        request_iterator: AsyncIterator[bus_pb2.CallFrame],
        context: grpc.aio.ServicerContext[bus_pb2.CallFrame, bus_pb2.CallFrame],
    ) -> AsyncIterator[bus_pb2.CallFrame]:
        """Each streamed call runs the same provider pipeline as Call, concurrently;
        answers go back batched as they are ready."""
        if not self._call_stream:
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED, "CallStream is turned off on this gateway"
            )
        peer_cert_pem = _peer_cert_pem(context)
        running: set[asyncio.Task[None]] = set()
        outbox = FrameOutbox(lambda: linger_for(len(running)))
        slots = asyncio.Semaphore(MAX_STREAM_IN_FLIGHT)

        async def answer(streamed: bus_pb2.StreamedCall) -> None:
            try:
                outbox.put(await _answer_streamed(self._calls, streamed, peer_cert_pem))
            except Exception:
                # A bug of ours must not leave the consumer waiting: it gets InternalError.
                err = ZholError("InternalError", hop=Hop.SERVER_PROXY)
                log.exception("internal error %s", err.error_id)
                detail = error_to_detail(err)
                outbox.put(bus_pb2.StreamedCall(call_id=streamed.call_id, error=detail))
            finally:
                slots.release()

        async def read() -> None:
            try:
                async for frame in request_iterator:
                    for streamed in frame.calls:
                        await slots.acquire()
                        task = asyncio.create_task(answer(streamed))
                        running.add(task)
                        task.add_done_callback(running.discard)
                if running:  # the consumer is done sending: answer what it sent, then end
                    await asyncio.wait(set(running))
            finally:
                outbox.close()

        reader = asyncio.create_task(read())
        # Read once, now: the context must not be touched once the call is gone (after
        # a server stop, grpc has freed it and context.peer() would crash the process).
        peer_address = context.peer()
        log.info("call stream opened from %s", peer_address)
        try:
            async for frame in outbox.frames():
                yield frame
        finally:
            # Calls already accepted finish (and are logged) even if the stream is gone.
            reader.cancel()
            log.info("call stream from %s closed", peer_address)


async def _run(
    pipeline: Pipeline[ProviderExchange], exchange: ProviderExchange
) -> ZholError | None:
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
        return err
    return None


async def _serve(
    pipeline: Pipeline[ProviderExchange],
    request: bus_pb2.SignedMessage,
    context: _UnaryContext,
) -> bus_pb2.SignedMessage:
    exchange = ProviderExchange(message=request, peer_cert_pem=_peer_cert_pem(context))
    err = await _run(pipeline, exchange)
    if err is not None:
        await abort_with(context, err)
    assert exchange.response is not None
    return seal_to_pb(exchange.response)


async def _answer_streamed(
    pipeline: Pipeline[ProviderExchange], streamed: bus_pb2.StreamedCall, peer_cert_pem: bytes
) -> bus_pb2.StreamedCall:
    if streamed.WhichOneof("outcome") != "message":
        refused = ZholError(
            "InvalidMessage", "a streamed call must carry a request", hop=Hop.SERVER_PROXY
        )
        # Its error id goes to the log like any other failed exchange's.
        log.warning("exchange failed code=%s error_id=%s", refused.full_code, refused.error_id)
        return bus_pb2.StreamedCall(call_id=streamed.call_id, error=error_to_detail(refused))
    exchange = ProviderExchange(message=streamed.message, peer_cert_pem=peer_cert_pem)
    err = await _run(pipeline, exchange)
    if err is not None:
        return bus_pb2.StreamedCall(call_id=streamed.call_id, error=error_to_detail(err))
    assert exchange.response is not None
    return bus_pb2.StreamedCall(call_id=streamed.call_id, message=seal_to_pb(exchange.response))


def _peer_cert_pem(context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    return next(iter(context.auth_context().get("x509_pem_cert") or ()), b"")
