"""Calling other agencies' services through our own gateway (the IS-facing side).

Shared by the agencies' adapters (``zhol.adapters.bus.client`` re-exports it) and the
citizen portal (``zhol.portal``), which may not import each other. An IS never talks to
another agency directly: it calls the provider's own gRPC method on a channel to *its
own* gateway and names itself, the acting user, the purpose and the data subject in
metadata (the README's zhol-* table). ``BusClient`` does
exactly that with raw protobuf serializers, so any generated message type works:

    bus = BusClient(BusIdentity("127.0.0.1:7001", "KZ/GOV/MLSPP/pension"))
    person = await bus.call(
        "/zhol.population.v1.PopulationRegistry/GetPerson",
        population_pb2.GetPersonRequest(iin=iin), population_pb2.Person,
        purpose="childbirth benefit", data_subject=iin,
    )

Every failure is one exception, ``BusCallError``: its ``status`` is the gRPC status,
``zhol_error`` the bus error code from the ``zhol-error`` trailer, or None when the
provider itself answered (the call crossed the bus and the provider refused it, e.g.
NOT_FOUND for an unknown IIN), ``error_id`` the id the gateway logged it under.

The channel is created lazily on first use, on the running event loop, one per
client; ``close()`` releases it (a later call opens a new one). Plaintext on loopback
by default; pass ``channel_credentials`` (``grpc.ssl_channel_credentials(...)``, with
a client key and certificate for mutual TLS) when the gateway's IS side uses TLS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import grpc
from google.protobuf.message import Message

from zhol.core.grpcerr import trailer_value
from zhol.core.grpcruntime import RECONNECT_OPTIONS
from zhol.core.metadata import (
    CLIENT_KEY,
    DATA_SUBJECT_KEY,
    ERROR_ID_KEY,
    ERROR_KEY,
    MESSAGE_ID_KEY,
    PROVIDER_KEY,
    PURPOSE_KEY,
    USER_ID_KEY,
)

M = TypeVar("M", bound=Message)


MAX_PURPOSE_LENGTH = 1024  # what the gateway accepts
MAX_USER_ID_LENGTH = 256


@dataclass(frozen=True)
class BusIdentity:
    """Where our gateway listens for its IS and who we are on the bus.

    ``channel_credentials`` None means a plaintext channel (the gateway's IS side on
    loopback); otherwise a TLS channel with those credentials. ``channel_options`` are
    passed to the channel (e.g. ``grpc.ssl_target_name_override``), over the
    reconnect options (core.grpcruntime.RECONNECT_OPTIONS) it has by default.
    """

    gateway_address: str  # host:port of our agency's gateway (IS-facing side)
    client: str  # our subsystem, e.g. "KZ/GOV/MLSPP/pension"
    user_id: str = "system"
    channel_credentials: grpc.ChannelCredentials | None = field(
        default=None, compare=False, repr=False
    )
    channel_options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not self.gateway_address.strip():
            raise ValueError("gateway_address is required")
        if not self.client.strip():
            raise ValueError("client is required")
        _check_header_value(self.client, CLIENT_KEY, 256)
        _check_header_value(self.user_id, USER_ID_KEY, MAX_USER_ID_LENGTH)


@dataclass(frozen=True)
class BusReply(Generic[M]):
    """A response with the exchange's id (the ``zhol-message-id`` trailer, None when the
    call did not cross a gateway)."""

    response: M
    message_id: str | None


class BusCallError(Exception):
    """A call through the bus failed.

    ``status``: the gRPC status; ``zhol_error``: the full bus error code (e.g.
    ``Server.ServerProxy.AccessDenied``), None when the provider itself answered;
    ``error_id``: the id of the gateway's log entry for the failure, when there is one;
    ``details``: the status message.
    """

    def __init__(
        self,
        method: str,
        status: grpc.StatusCode,
        details: str,
        *,
        zhol_error: str | None = None,
        error_id: str | None = None,
    ) -> None:
        self.method = method
        self.status = status
        self.details = details
        self.zhol_error = zhol_error
        self.error_id = error_id
        origin = zhol_error or "provider"
        super().__init__(f"{method}: {status.name} ({origin}): {details}")

    @property
    def from_provider(self) -> bool:
        """True when the provider IS itself answered with this status."""
        return self.zhol_error is None

    @classmethod
    def from_rpc_error(cls, method: str, error: grpc.aio.AioRpcError) -> BusCallError:
        trailers = error.trailing_metadata()
        return cls(
            method,
            error.code(),
            error.details() or "",
            zhol_error=trailer_value(trailers, ERROR_KEY) or None,
            error_id=trailer_value(trailers, ERROR_ID_KEY) or None,
        )


class BusClient:
    """Calls through our own gateway; one channel per client, created on first use."""

    def __init__(self, identity: BusIdentity) -> None:
        self._identity = identity
        self._channel: grpc.aio.Channel | None = None
        self._methods: dict[tuple[str, type[Message]], Any] = {}

    @property
    def identity(self) -> BusIdentity:
        return self._identity

    async def call(
        self,
        method: str,
        request: Message,
        response_type: type[M],
        *,
        purpose: str,
        data_subject: str = "",
        timeout: float = 5.0,
        provider: str = "",
        user_id: str = "",
    ) -> M:
        """Call ``method`` ("/package.Service/Method") of whichever subsystem provides it.

        ``provider`` names the provider subsystem when several offer the same service;
        ``user_id`` the acting user of this one call (default: the identity's).
        Raises ``BusCallError`` for any failure (bus or provider).
        """
        reply = await self.call_with_message_id(
            method,
            request,
            response_type,
            purpose=purpose,
            data_subject=data_subject,
            timeout=timeout,
            provider=provider,
            user_id=user_id,
        )
        return reply.response

    async def call_with_message_id(
        self,
        method: str,
        request: Message,
        response_type: type[M],
        *,
        purpose: str,
        data_subject: str = "",
        timeout: float = 5.0,
        provider: str = "",
        user_id: str = "",
    ) -> BusReply[M]:
        """Like ``call``, and also return the exchange's ``zhol-message-id``."""
        metadata = self._metadata(purpose, data_subject, provider, user_id)
        callable_ = self._method(method, response_type)
        rpc = callable_(request, metadata=metadata, timeout=timeout)
        try:
            response = await rpc
            trailers = await rpc.trailing_metadata()
        except grpc.aio.AioRpcError as error:
            raise BusCallError.from_rpc_error(method, error) from None
        return BusReply(response, trailer_value(trailers, MESSAGE_ID_KEY) or None)

    async def close(self) -> None:
        channel, self._channel = self._channel, None
        self._methods.clear()
        if channel is not None:
            await channel.close()

    # -- helpers -----------------------------------------------------------------------

    def _metadata(
        self, purpose: str, data_subject: str, provider: str, user_id: str = ""
    ) -> tuple[tuple[str, str], ...]:
        purpose = purpose.strip()
        if not purpose:
            raise ValueError("purpose is required for every call through the bus")
        _check_header_value(purpose, PURPOSE_KEY, MAX_PURPOSE_LENGTH)
        if user_id:
            _check_header_value(user_id, USER_ID_KEY, MAX_USER_ID_LENGTH)
        metadata = [
            (CLIENT_KEY, self._identity.client),
            (USER_ID_KEY, user_id or self._identity.user_id),
            (PURPOSE_KEY, purpose),
        ]
        if data_subject:
            _check_header_value(data_subject, DATA_SUBJECT_KEY, 64)
            metadata.append((DATA_SUBJECT_KEY, data_subject))
        if provider:
            _check_header_value(provider, PROVIDER_KEY, 256)
            metadata.append((PROVIDER_KEY, provider))
        return tuple(metadata)

    def _method(self, method: str, response_type: type[M]) -> Any:
        if not method.startswith("/") or method.count("/") != 2:
            raise ValueError(f"method must look like /package.Service/Method, got {method!r}")
        key = (method, response_type)
        found = self._methods.get(key)
        if found is None:
            found = self._ensure_channel().unary_unary(
                method,
                request_serializer=_serialize,
                response_deserializer=_deserializer(response_type),
            )
            self._methods[key] = found
        return found

    def _ensure_channel(self) -> grpc.aio.Channel:
        if self._channel is None:
            identity = self._identity
            # A gateway back from a restart is reached within seconds, not after
            # gRPC's backoff; the identity's own options win.
            options = list((dict(RECONNECT_OPTIONS) | dict(identity.channel_options)).items())
            if identity.channel_credentials is None:
                self._channel = grpc.aio.insecure_channel(identity.gateway_address, options)
            else:
                self._channel = grpc.aio.secure_channel(
                    identity.gateway_address, identity.channel_credentials, options
                )
        return self._channel


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _deserializer(response_type: type[M]) -> Callable[[bytes], M]:
    return response_type.FromString


def _check_header_value(value: str, key: str, limit: int) -> None:
    """gRPC metadata values (non-binary keys) must be printable ASCII."""
    if len(value) > limit:
        raise ValueError(f"{key} is longer than {limit} characters")
    if not (value.isascii() and value.isprintable()):
        raise ValueError(f"{key} must be printable ASCII")
