"""The gateway-to-gateway side: zhol.bus.v1.Exchange over mutual TLS."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from zhol.bus.v1 import bus_pb2, bus_pb2_grpc
from zhol.core.errors import Hop, ZholError
from zhol.core.grpcdecode import log_undecodable, undecodable
from zhol.core.grpcerr import abort_with, error_to_detail
from zhol.core.metadata import SIGNED_ACK_KEY
from zhol.gateway.callstream import FrameOutbox, linger_for
from zhol.gateway.exchange import ProviderExchange, seal_to_pb
from zhol.gateway.pipeline import Pipeline

log = logging.getLogger("zhol.gateway.peer")

# Calls one CallStream may have in the provider pipeline at once; beyond it the
# stream is not read further (gRPC flow control then holds the consumer back).
MAX_STREAM_IN_FLIGHT = 1024

EXCHANGE_SERVICE = "zhol.bus.v1.Exchange"

# Requests arrive as bytes and are parsed here (not by gRPC, which would answer bytes
# that do not parse with UNKNOWN and the decoder's exception): InvalidMessage instead.
_UnaryContext = grpc.aio.ServicerContext[bytes, bus_pb2.SignedMessage]
_StreamContext = grpc.aio.ServicerContext[bytes, bus_pb2.CallFrame]


def add_exchange_service(service: ExchangeService, server: grpc.aio.Server) -> None:
    """Serve ``service`` as zhol.bus.v1.Exchange, its requests handed over undecoded."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "Call": grpc.unary_unary_rpc_method_handler(
            service.Call, response_serializer=bus_pb2.SignedMessage.SerializeToString
        ),
        "Deliver": grpc.unary_unary_rpc_method_handler(
            service.Deliver, response_serializer=bus_pb2.SignedMessage.SerializeToString
        ),
        "CallStream": grpc.stream_stream_rpc_method_handler(
            service.CallStream, response_serializer=bus_pb2.CallFrame.SerializeToString
        ),
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(EXCHANGE_SERVICE, handlers),)
    )
    server.add_registered_method_handlers(EXCHANGE_SERVICE, handlers)


def _invalid(what: str, method: str) -> ZholError:
    """A request from a peer that does not parse: InvalidMessage, its id logged."""
    err = undecodable("InvalidMessage", Hop.SERVER_PROXY, what)
    log_undecodable(log, err, method)
    return err


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
        self, request: bytes, context: _UnaryContext
    ) -> bus_pb2.SignedMessage:
        return await _serve(self._calls, request, context, "Call")

    async def Deliver(  # noqa: N802 - gRPC method name
        self, request: bytes, context: _UnaryContext
    ) -> bus_pb2.SignedMessage:
        return await _serve(self._deliveries, request, context, "Deliver")

    async def CallStream(  # noqa: N802 - gRPC method name
        self,
        request_iterator: AsyncIterator[bytes],
        context: _StreamContext,
    ) -> AsyncIterator[bus_pb2.CallFrame]:
        """Each streamed call runs the same provider pipeline as Call, concurrently;
        answers go back batched as they are ready. A frame that does not parse ends
        the stream with InvalidMessage, once the calls already taken are answered."""
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

        refused: list[ZholError] = []

        async def read() -> None:
            try:
                async for raw in request_iterator:
                    try:
                        frame = bus_pb2.CallFrame.FromString(raw)
                    except DecodeError:
                        refused.append(_invalid("a call frame", "CallStream"))
                        break
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
            if refused:
                await abort_with(context, refused[0])
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
    request: bytes,
    context: _UnaryContext,
    method: str,
) -> bus_pb2.SignedMessage:
    try:
        message = bus_pb2.SignedMessage.FromString(request)
    except DecodeError:
        await abort_with(context, _invalid("the signed message", method))
    exchange = ProviderExchange(message=message, peer_cert_pem=_peer_cert_pem(context))
    err = await _run(pipeline, exchange)
    if err is not None:
        await abort_with(context, err)
    assert exchange.response is not None
    answer = seal_to_pb(exchange.response)
    if method == "Deliver" and exchange.status_code != 0:
        # Our IS refused the event. The signed acknowledgement says so, and travels in
        # the trailers of a failed call: a publisher's gateway that does not read it
        # still sees a failure and retries, never "delivered" (fails safe).
        refused = ZholError("ReceiverRefused", exchange.status_message)
        await abort_with(context, refused, ((SIGNED_ACK_KEY, answer.SerializeToString()),))
    return answer


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
