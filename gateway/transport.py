"""Channels out of the gateway: mutual TLS to peer gateways; plaintext, TLS or mTLS to our ISs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from google.protobuf.message import DecodeError

from zhol.bus.v1 import bus_pb2
from zhol.core.errors import ZholError
from zhol.core.grpcruntime import RECONNECT_OPTIONS
from zhol.core.ids import GatewayId
from zhol.core.metadata import SIGNED_ACK_KEY
from zhol.gateway.callstream import CallStream, StreamUnsupported, transport_error
from zhol.gateway.ispins import IS_CLIENT_CERT, IS_SERVER_CERT
from zhol.gateway.localconf import IsEndpoint
from zhol.gateway.provider_stages import IsAnswer
from zhol.security.ca import auth_dns_name
from zhol.security.globalconf import MAX_MESSAGE_BYTES

EXCHANGE_CALL = "/zhol.bus.v1.Exchange/Call"
EXCHANGE_DELIVER = "/zhol.bus.v1.Exchange/Deliver"

# gRPC's own limit, on every server and channel of the gateway: the largest body a
# registry may allow (max_message_bytes, read at run time from the global
# configuration) plus room for the envelope (header, signature, certificate, framing).
# Up to it the gateway itself answers a body above the configured limit, with
# MessageTooLarge; above it gRPC refuses the message before the gateway sees it.
ENVELOPE_BYTES = 1024 * 1024
TRANSPORT_MAX_BYTES = MAX_MESSAGE_BYTES + ENVELOPE_BYTES
SIZE_OPTIONS = (
    ("grpc.max_receive_message_length", TRANSPORT_MAX_BYTES),
    ("grpc.max_send_message_length", TRANSPORT_MAX_BYTES),
)

# Servers refuse to share a port: a second gateway on a taken port must fail loudly.
SERVER_OPTIONS = (*SIZE_OPTIONS, ("grpc.so_reuseport", 0))

# An IS back from a restart is called at once, not after gRPC's reconnect backoff.
_IS_OPTIONS = (*SIZE_OPTIONS, *RECONNECT_OPTIONS)

_STATUS_BY_VALUE = {status.value[0]: status for status in grpc.StatusCode}


def status_from_int(code: int) -> grpc.StatusCode:
    return _STATUS_BY_VALUE.get(code, grpc.StatusCode.UNKNOWN)


_SignedCall = grpc.aio.UnaryUnaryMultiCallable[bus_pb2.SignedMessage, bus_pb2.SignedMessage]
# No (de)serializers towards the IS: its requests and responses stay raw bytes.
_RawCall = grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]


@dataclass
class _Peer:
    channel: grpc.aio.Channel
    calls: dict[str, _SignedCall]
    stream: CallStream | None = None
    # Until then (event loop time) calls go by unary Call: the peer lacks CallStream.
    unary_until: float = 0.0


def refusal_ack(exc: grpc.aio.AioRpcError) -> bus_pb2.SignedMessage | None:
    """The signed acknowledgement a failed Deliver carries when the subscriber's IS
    refused the event; None for any other failure. Verified by the caller like any
    acknowledgement (gateway/delivery.py): the trailer itself is not trusted."""
    for key, value in exc.trailing_metadata() or ():
        if key == SIGNED_ACK_KEY and isinstance(value, bytes):
            try:
                return bus_pb2.SignedMessage.FromString(value)
            except DecodeError:
                return None
    return None


class PeerChannels:
    """One mTLS channel per peer gateway, authenticated with our auth certificate.

    Calls go on one CallStream per peer (``call_stream``, the default), or as unary
    Exchange.Call; a peer that does not serve CallStream is called with Call for
    UNARY_FALLBACK_S before the stream is tried again. Deliveries are always unary.

    A channel whose peer cannot be reached (TRANSIENT_FAILURE) is dropped: gRPC would
    fail every call on it at once until its reconnect backoff (up to two minutes)
    expires, so a restarted gateway would stay unused; a fresh channel dials at once.
    """

    def __init__(
        self, ca_pem: bytes, key_pem: bytes, cert_pem: bytes, *, call_stream: bool = True
    ) -> None:
        self._credentials = grpc.ssl_channel_credentials(
            root_certificates=ca_pem, private_key=key_pem, certificate_chain=cert_pem
        )
        self._call_stream = call_stream
        self._peers: dict[tuple[str, GatewayId], _Peer] = {}
        self._closing: set[asyncio.Task[None]] = set()

    RETIRED_CHANNEL_CLOSE_S = 30.0
    UNARY_FALLBACK_S = 600.0

    def _close_later(self, channel: grpc.aio.Channel) -> None:
        task = asyncio.get_running_loop().create_task(channel.close(grace=None))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def send(
        self,
        address: str,
        gateway: GatewayId,
        message: bus_pb2.SignedMessage,
        timeout: float | None,
    ) -> bus_pb2.SignedMessage:
        """One request and its signed response, on the peer's CallStream or by Call.

        Transport failures raise grpc.RpcError, as a unary call does; a bus error
        the peer reports raises it (a ZholError, remote) on either transport.
        """
        if self._call_stream:
            key = (address, gateway)
            peer = self._peer(key)
            loop = asyncio.get_running_loop()
            if peer.unary_until <= loop.time():
                try:
                    return await self._stream_call(key, peer, message, timeout)
                except StreamUnsupported:
                    peer.unary_until = loop.time() + self.UNARY_FALLBACK_S
                except grpc.aio.AioRpcError as exc:
                    self._after_failure(key, peer, exc)
                    raise
        return await self._invoke(address, gateway, EXCHANGE_CALL, message, timeout)

    async def deliver(
        self,
        address: str,
        gateway: GatewayId,
        message: bus_pb2.SignedMessage,
        timeout: float | None,
    ) -> bus_pb2.SignedMessage:
        """Exchange.Deliver: one event delivery and its signed acknowledgement (also
        when the subscriber's IS refused it: then in the failed call's trailers)."""
        try:
            return await self._invoke(address, gateway, EXCHANGE_DELIVER, message, timeout)
        except grpc.aio.AioRpcError as exc:
            ack = refusal_ack(exc)
            if ack is None:
                raise
            return ack

    async def _invoke(
        self,
        address: str,
        gateway: GatewayId,
        method: str,
        message: bus_pb2.SignedMessage,
        timeout: float | None,
    ) -> bus_pb2.SignedMessage:
        key = (address, gateway)
        peer = self._peer(key)
        call = peer.calls.get(method)
        if call is None:
            call = peer.calls[method] = peer.channel.unary_unary(
                method,
                request_serializer=bus_pb2.SignedMessage.SerializeToString,
                response_deserializer=bus_pb2.SignedMessage.FromString,
            )
        try:
            return await call(message, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            self._after_failure(key, peer, exc)
            raise

    async def _stream_call(
        self,
        key: tuple[str, GatewayId],
        peer: _Peer,
        message: bus_pb2.SignedMessage,
        timeout: float | None,
    ) -> bus_pb2.SignedMessage:
        stream = peer.stream
        if stream is None or stream.broken:
            stream = peer.stream = CallStream(peer.channel)
            return await stream.call(message, timeout)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            return await stream.call(message, timeout)
        except grpc.aio.AioRpcError as exc:
            # A stream opened earlier may have died unnoticed (the peer restarted): once,
            # on a fresh stream of the same channel, as a unary call would reconnect.
            # Any status but our own deadline is the stream's end (a peer's answers
            # are ZholErrors), and a peer shutting down resets its streams (RST_STREAM,
            # which gRPC reports as INTERNAL) as often as it closes them (UNAVAILABLE).
            # Were the request already taken, the peer's replay guard refuses it then.
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
            if self._peers.get(key) is not peer:
                raise  # the channel itself was retired meanwhile
            left = None if timeout is None else timeout - (loop.time() - started)
            if left is not None and left <= 0:
                raise transport_error(
                    grpc.StatusCode.DEADLINE_EXCEEDED, "no time left to resend"
                ) from None
            retry = peer.stream
            if retry is None or retry is stream or retry.broken:
                retry = peer.stream = CallStream(peer.channel)
            return await retry.call(message, left)

    def transport(self, address: str, gateway: GatewayId) -> str:
        """How calls to this peer go now: "stream" (open), "unary" (the peer lacks
        CallStream, or streams are off), or "" (nothing sent yet, or it failed)."""
        peer = self._peers.get((address, gateway))
        if peer is None:
            return ""
        if not self._call_stream or peer.unary_until > asyncio.get_running_loop().time():
            return "unary"
        return "stream" if peer.stream is not None and not peer.stream.broken else ""

    def _peer(self, key: tuple[str, GatewayId]) -> _Peer:
        peer = self._peers.get(key)
        if peer is None:
            address, gateway = key
            channel = grpc.aio.secure_channel(
                address,
                self._credentials,
                options=(
                    ("grpc.ssl_target_name_override", auth_dns_name(str(gateway))),
                    *SIZE_OPTIONS,
                    *RECONNECT_OPTIONS,  # a fresh channel dials at once (see above)
                ),
            )
            peer = self._peers[key] = _Peer(channel, {})
        return peer

    def _after_failure(
        self, key: tuple[str, GatewayId], peer: _Peer, exc: grpc.aio.AioRpcError
    ) -> None:
        channel = peer.channel
        if (
            exc.code() == grpc.StatusCode.UNAVAILABLE
            and self._peers.get(key) is peer
            and channel.get_state() == grpc.ChannelConnectivity.TRANSIENT_FAILURE
        ):
            # Closed later, not now: closing cancels the calls still waiting on
            # it, and their callers would see a cancellation instead of an error.
            del self._peers[key]
            asyncio.get_running_loop().call_later(
                self.RETIRED_CHANNEL_CLOSE_S, self._close_later, channel
            )

    async def close(self) -> None:
        for peer in self._peers.values():
            if peer.stream is not None:
                await peer.stream.close()
            await peer.channel.close()
        self._peers.clear()


class IsChannels:
    """Raw-bytes calls to our IS: the gateway never needs the provider's classes.

    Each endpoint (address, TLS mode, pinned certificate) gets its own channel: the
    operator changing a pin makes a new channel rather than reusing a trusted one.
    For ``mtls`` the gateway presents what ``client_identity`` returns (key PEM,
    certificate PEM), read when such a channel is made: a certificate created after
    the gateway started (``zhol gateway is-cert``) serves without a restart.
    """

    _MAX_CALLS = 1024

    def __init__(
        self, client_identity: Callable[[], tuple[bytes, bytes] | None] = lambda: None
    ) -> None:
        self._client_identity = client_identity
        self._channels: dict[IsEndpoint, grpc.aio.Channel] = {}
        self._retired: set[grpc.aio.Channel] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._calls: dict[tuple[IsEndpoint, str], _RawCall] = {}

    def _channel(self, endpoint: IsEndpoint) -> grpc.aio.Channel:
        if endpoint.tls_mode == "plaintext":
            return grpc.aio.insecure_channel(endpoint.address, options=_IS_OPTIONS)
        if endpoint.tls_mode not in ("tls", "mtls") or not endpoint.server_cert_pem:
            # Never downgrade: a TLS endpoint without its pin is not called at all.
            raise ZholError("NotConfigured", f"IS endpoint {endpoint} has no pinned certificate")
        key_pem = cert_pem = None
        if endpoint.tls_mode == "mtls":
            identity = self._client_identity()
            if identity is None:
                raise ZholError(
                    "NotConfigured",
                    f"mtls to {endpoint.address} needs keys/{IS_CLIENT_CERT} or "
                    f"keys/{IS_SERVER_CERT} (zhol gateway is-cert)",
                )
            key_pem, cert_pem = identity
        credentials = grpc.ssl_channel_credentials(
            root_certificates=endpoint.server_cert_pem,
            private_key=key_pem,
            certificate_chain=cert_pem,
        )
        return grpc.aio.secure_channel(endpoint.address, credentials, options=_IS_OPTIONS)

    async def invoke(
        self,
        endpoint: IsEndpoint,
        grpc_path: str,
        body: bytes,
        metadata: tuple[tuple[str, str], ...],
        timeout: float | None,
    ) -> IsAnswer:
        call = self._calls.get((endpoint, grpc_path))
        if call is None:
            channel = self._channels.get(endpoint)
            if channel is None:
                channel = self._channels[endpoint] = self._channel(endpoint)
            call = channel.unary_unary(grpc_path)
            if len(self._calls) < self._MAX_CALLS:
                self._calls[(endpoint, grpc_path)] = call
        try:
            body_out = await call(body, metadata=metadata, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            failure = is_call_failure(exc.code(), endpoint)
            if failure is None:
                return IsAnswer(b"", exc.code().value[0], exc.details() or "")
            if exc.code() == grpc.StatusCode.UNAVAILABLE and endpoint.tls_mode != "plaintext":
                self._retire(endpoint)
            raise failure from None
        return IsAnswer(body_out, 0, "")

    def _retire(self, endpoint: IsEndpoint) -> None:
        """Forget a channel whose handshake failed: once the IS is fixed, the next
        call dials afresh instead of waiting out gRPC's reconnect backoff."""
        channel = self._channels.pop(endpoint, None)
        for key in [k for k in self._calls if k[0] == endpoint]:
            del self._calls[key]
        if channel is not None:
            # Closed later, not now: closing cancels the calls still waiting on it.
            self._retired.add(channel)
            asyncio.get_running_loop().call_later(
                PeerChannels.RETIRED_CHANNEL_CLOSE_S, self._close_retired, channel
            )

    def _close_retired(self, channel: grpc.aio.Channel) -> None:
        if channel in self._retired:
            self._retired.discard(channel)
            task = asyncio.get_running_loop().create_task(channel.close(grace=None))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        for channel in (*self._channels.values(), *self._retired):
            await channel.close()
        self._channels.clear()
        self._retired.clear()
        self._calls.clear()


def is_call_failure(code: grpc.StatusCode, endpoint: IsEndpoint) -> ZholError | None:
    """A call to our IS that got no answer of the IS's own, as a catalogued error; None
    when the status is the IS's own answer (passed on, signed, to the client).

    Told by the status code alone: gRPC reports a refused or lost connection and a failed
    TLS handshake (the IS's certificate not the pinned one, or ours refused) all as
    UNAVAILABLE, and a call the IS did not answer in time as DEADLINE_EXCEEDED.
    """
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return ZholError("Timeout", f"the IS at {endpoint.address} did not answer in time")
    if code != grpc.StatusCode.UNAVAILABLE:
        return None
    if endpoint.tls_mode == "plaintext":
        return ZholError("ServiceFailed", f"the IS at {endpoint.address} is unreachable")
    return ZholError(
        "ServiceFailed",
        f"no {endpoint.tls_mode} connection to the IS at {endpoint.address}: it is "
        "unreachable, its certificate does not match the pinned one, or it refused ours",
    )
