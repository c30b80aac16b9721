"""A request that does not decode gets a catalogued error, not gRPC's UNKNOWN.

gRPC decodes a request with the method's deserialiser before our code runs; bytes that
are not the method's protobuf message would end the call as UNKNOWN, with the decoder's
exception in the details and no ``zhol-error``. ``CataloguedDecoding`` takes the
deserialiser out of each unary-request handler (once per method) and decodes in the
handler instead: a request that does not decode is answered with the catalogued error
(``Client.InvalidRequest`` by default), its error id logged, no decoder detail sent.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeAlias, cast

import grpc

from zhol.core.errors import ErrorName, Hop, ZholError
from zhol.core.grpcerr import abort_with

_MAX_CACHED_METHODS = 1024

_Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


def undecodable(code: ErrorName, hop: Hop, what: str) -> ZholError:
    """The error for a ``what`` that does not decode. Its id is also in the detail: an
    agency's answer crosses the bus as the provider's own status and message, without
    its trailers, and the caller then still has the id to quote."""
    error_id = str(uuid.uuid4())
    return ZholError(
        code, f"{what} does not decode (error id {error_id})", hop=hop, error_id=error_id
    )


def log_undecodable(log: logging.Logger, err: ZholError, method: str) -> None:
    """The refusal in the log: code, error id and method, never the bytes."""
    log.warning(
        "undecodable request refused code=%s error_id=%s method=%s",
        err.full_code,
        err.error_id,
        method,
    )


async def refuse_undecodable(
    context: grpc.aio.ServicerContext[Any, Any],
    err: ZholError,
    log: logging.Logger,
    method: str,
) -> NoReturn:
    """Log the refusal and end the call with it."""
    log_undecodable(log, err, method)
    await abort_with(context, err)


class CataloguedDecoding(grpc.aio.ServerInterceptor):
    """Server interceptor: undecodable unary requests answered with ``code`` at ``hop``.

    Handlers whose request is a stream, or that have no deserialiser (raw bytes), pass
    unchanged: they decode, if at all, in their own code.
    """

    def __init__(
        self, log: logging.Logger, code: ErrorName = "InvalidRequest", hop: Hop = Hop.CLIENT
    ) -> None:
        self._log = log
        self._code: ErrorName = code
        self._hop = hop
        self._wrapped: dict[str, tuple[_Handler, _Handler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[_Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_streaming or handler.request_deserializer is None:
            return handler
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._decoding(handler, method)
        if wrapped is not handler and len(self._wrapped) < _MAX_CACHED_METHODS:
            self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _decoding(self, handler: _Handler, method: str) -> _Handler:
        decode = handler.request_deserializer
        if handler.response_streaming or decode is None or handler.unary_unary is None:
            return handler  # no such method in our protos: left as gRPC serves it
        # An aio server's behaviours are coroutines (the stubs type them for sync servers).
        inner = cast(Callable[[Any, Any], Awaitable[Any]], handler.unary_unary)

        async def behaviour(raw: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                request = decode(raw)
            except Exception:  # DecodeError, or anything else the decoder refuses
                err = undecodable(self._code, self._hop, "the request")
                await refuse_undecodable(context, err, self._log, method)
            return await inner(request, context)

        return grpc.unary_unary_rpc_method_handler(
            behaviour, response_serializer=handler.response_serializer
        )
