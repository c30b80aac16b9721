"""The IS-facing side: a generic gRPC proxy for any provider's methods, as raw bytes."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator

import grpc

from zhol.bus.v1 import bus_pb2
from zhol.core.clock import Clock
from zhol.core.errors import ZholError
from zhol.core.grpcerr import abort_with
from zhol.core.metadata import MESSAGE_ID_KEY
from zhol.gateway.discovery import ALLOWED_METHODS_PATH, DISCOVERY_SERVICE, DiscoveryExchange
from zhol.gateway.event_stages import PUBLISH_PATH, PublishExchange
from zhol.gateway.exchange import ConsumerExchange
from zhol.gateway.pipeline import Pipeline
from zhol.gateway.reflection import REFLECTION_PATHS
from zhol.gateway.transport import status_from_int

log = logging.getLogger("zhol.gateway.is")

_MAX_CACHED_METHODS = 1024

# No (de)serializers on this side: requests and responses are raw bytes.
_Context = grpc.aio.ServicerContext[bytes, bytes]


class IsProxy(grpc.GenericRpcHandler):
    """Accepts every unary method path; the pipeline decides whether it exists.

    With ``peer_certs`` (mutual TLS) the IS's certificate is handed to the
    pipeline, whose AuthenticateIsClient stage checks its pin.
    """

    def __init__(
        self,
        pipeline: Pipeline[ConsumerExchange],
        clock: Clock,
        *,
        peer_certs: bool = False,
        publish: Pipeline[PublishExchange] | None = None,
        discovery: Pipeline[DiscoveryExchange] | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._publish = publish
        self._discovery = discovery
        self._clock = clock
        self._peer_certs = peer_certs
        self._handlers: dict[str, grpc.RpcMethodHandler[bytes, bytes]] = {}

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[bytes, bytes]:
        method = handler_call_details.method
        if method == PUBLISH_PATH and self._publish is not None:
            return self._publish_handler
        if (
            self._discovery is not None
            and method.startswith(f"/{DISCOVERY_SERVICE}/")
            and method != ALLOWED_METHODS_PATH  # crosses the bus: the ordinary pipeline
        ):
            return grpc.unary_unary_rpc_method_handler(
                functools.partial(self._handle_discovery, method)
            )
        if self._discovery is not None and method in REFLECTION_PATHS:
            return grpc.stream_stream_rpc_method_handler(
                functools.partial(self._handle_reflection, method)
            )
        handler = self._handlers.get(method)
        if handler is None:
            # No (de)serializers: the request and response stay raw bytes.
            handler = grpc.unary_unary_rpc_method_handler(functools.partial(self._handle, method))
            if len(self._handlers) < _MAX_CACHED_METHODS:
                self._handlers[method] = handler
        return handler

    async def _handle(self, method: str, request: bytes, context: _Context) -> bytes:
        metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        remaining = context.time_remaining()
        deadline_ms = None
        if remaining is not None and remaining < 10 * 365 * 86400:
            # Finish a moment before the IS gives up, so it still receives our Timeout.
            remaining_ms = int(remaining * 1000)
            deadline_ms = self._clock.now_ms() + remaining_ms - min(50, remaining_ms // 10)
        exchange = ConsumerExchange(method, request, metadata, deadline_ms)
        if self._peer_certs:
            exchange.peer_cert_pem = _peer_cert_pem(context)
        try:
            await self._pipeline.run(exchange)
        except ZholError as err:
            log.warning(
                "exchange failed code=%s error_id=%s message_id=%s",
                err.full_code,
                err.error_id,
                exchange.message_id or "-",
            )
            extra = ((MESSAGE_ID_KEY, exchange.message_id),) if exchange.message_id else ()
            await abort_with(context, err, extra)
        header = exchange.response_header
        assert header is not None and exchange.response is not None
        trailers = ((MESSAGE_ID_KEY, exchange.message_id),)
        if header.status_code != 0:
            # The provider itself answered with an error: no zhol-error, like X-Road.
            await context.abort(
                status_from_int(header.status_code), header.status_message, trailers
            )
        context.set_trailing_metadata(trailers)
        return exchange.response.body

    @functools.cached_property
    def _publish_handler(self) -> grpc.RpcMethodHandler[bytes, bytes]:
        return grpc.unary_unary_rpc_method_handler(self._handle_publish)

    async def _handle_discovery(self, method: str, request: bytes, context: _Context) -> bytes:
        """Discovery is the gateway's own service: answered here from the global
        configuration, never forwarded (gateway/discovery.py)."""
        assert self._discovery is not None
        metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        exchange = DiscoveryExchange(method, request, metadata, None)
        if self._peer_certs:
            exchange.peer_cert_pem = _peer_cert_pem(context)
        try:
            await self._discovery.run(exchange)
        except ZholError as err:
            log.warning("discovery refused code=%s error_id=%s", err.full_code, err.error_id)
            await abort_with(context, err)
        return exchange.answer

    async def _handle_reflection(
        self, method: str, requests: AsyncIterator[bytes], context: _Context
    ) -> AsyncIterator[bytes]:
        """gRPC server reflection (gateway/reflection.py): each request of the stream
        goes through the discovery pipeline, so each is checked like a discovery call."""
        assert self._discovery is not None
        metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        peer_cert = _peer_cert_pem(context) if self._peer_certs else b""
        async for request in requests:
            exchange = DiscoveryExchange(method, request, metadata, None)
            exchange.peer_cert_pem = peer_cert
            try:
                await self._discovery.run(exchange)
            except ZholError as err:
                log.warning("reflection refused code=%s error_id=%s", err.full_code, err.error_id)
                await abort_with(context, err)
            yield exchange.answer

    async def _handle_publish(self, request: bytes, context: _Context) -> bytes:
        """Events.Publish is the gateway's own service: answered here, never forwarded."""
        assert self._publish is not None
        metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        exchange = PublishExchange(PUBLISH_PATH, request, metadata, None)
        if self._peer_certs:
            exchange.peer_cert_pem = _peer_cert_pem(context)
        try:
            await self._publish.run(exchange)
        except ZholError as err:
            log.warning("publish failed code=%s error_id=%s", err.full_code, err.error_id)
            await abort_with(context, err)
        assert exchange.publication is not None
        return bus_pb2.PublishResponse(
            event_id=exchange.publication.event_id, subscribers=list(exchange.subscribers)
        ).SerializeToString()


def _peer_cert_pem(context: _Context) -> bytes:
    """The TLS client certificate the IS presented, or b"" if none."""
    certs = (context.auth_context() or {}).get("x509_pem_cert") or ()
    return next(iter(certs), b"")
