"""``zhol.bus.v1.Discovery/AllowedMethods``: which methods may this client call there?

Like X-Road's allowedMethods, the question goes to the provider's own gateway, the only
one that knows its local access rights. An IS calls it on its own gateway like any
service, with ``zhol-provider`` naming the provider subsystem (as for Usage); the
consumer gateway seals, logs and forwards it as an ordinary exchange; the provider's
gateway verifies it as usual and, instead of checking a right and invoking an IS,
answers from its local rights about the signed request's client only. So anyone may
ask, but only about itself, and both gateways keep the question and the answer on
record. The three stages wrap the ordinary ones and hand every other call to them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from google.protobuf.message import DecodeError

from zhol.bus.v1 import discovery_pb2
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId, ServiceId, SubsystemId
from zhol.gateway.discovery import ALLOWED_METHODS, ALLOWED_METHODS_PATH, DISCOVERY_SERVICE
from zhol.gateway.exchange import ConsumerExchange, ProviderExchange
from zhol.gateway.localconf import LocalConf, LocalConfStore
from zhol.security.globalconf import GlobalConf

ConsumerStage = Callable[[ConsumerExchange], Awaitable[None]]
ProviderStage = Callable[[ProviderExchange], Awaitable[None]]


def _parse(body: bytes) -> discovery_pb2.AllowedMethodsRequest:
    try:
        return discovery_pb2.AllowedMethodsRequest.FromString(body)
    except DecodeError:
        raise ZholError("InvalidRequest", "not an AllowedMethodsRequest") from None


def allowed_methods(
    local: LocalConf, conf: GlobalConf, client: SubsystemId, provider: SubsystemId
) -> list[discovery_pb2.DiscoveredService]:
    """The provider's methods the client holds a right to, by service then method: a
    right to a whole service stands for every method the configuration lists for it;
    a right to a method the provider no longer offers is left out (a call would fail)."""
    granted: dict[str, set[str]] = {}
    for right_client, right_provider, grpc_service, method in local.rights:
        if right_client != client or right_provider != provider:
            continue
        offered = conf.methods.get((provider, grpc_service), frozenset())
        chosen = offered if not method else offered & {method}
        if chosen:
            granted.setdefault(grpc_service, set()).update(chosen)
    return [
        discovery_pb2.DiscoveredService(grpc_service=name, methods=sorted(granted[name]))
        for name in sorted(granted)
    ]


def _is_allowed_methods(service: ServiceId | None) -> bool:
    return service is not None and service.grpc_service == DISCOVERY_SERVICE


class AllowedOrResolveProvider:
    """AllowedMethods goes to the gateways of the ``zhol-provider`` subsystem; any other
    call is resolved by the ordinary stage."""

    def __init__(self, ordinary: ConsumerStage) -> None:
        self._ordinary = ordinary

    async def __call__(self, x: ConsumerExchange) -> None:
        if x.grpc_path != ALLOWED_METHODS_PATH:
            await self._ordinary(x)
            return
        assert x.trusted is not None
        if x.provider_hint is None:
            raise ZholError("MissingHeader", "AllowedMethods names the provider in zhol-provider")
        if x.data_subject:
            raise ZholError("InvalidRequest", "AllowedMethods is about nobody: no data subject")
        _parse(x.body)
        x.service = ServiceId.of(x.provider_hint, DISCOVERY_SERVICE, ALLOWED_METHODS)
        x.targets = x.trusted.conf.gateways_for(x.provider_hint)
        if not x.targets:
            raise ZholError("UnknownSubsystem", f"no gateway serves {x.provider_hint}")


class AllowedOrAuthorize:
    """AllowedMethods needs no right (the answer is about the asking client alone), only
    a subsystem served here and a well-formed request; anything else as usual."""

    def __init__(self, ordinary: ProviderStage, gateway_id: GatewayId) -> None:
        self._ordinary = ordinary
        self._gateway_id = gateway_id

    async def __call__(self, x: ProviderExchange) -> None:
        if not _is_allowed_methods(x.service):
            await self._ordinary(x)
            return
        assert x.service is not None and x.trusted is not None and x.header is not None
        if x.service.method != ALLOWED_METHODS or not x.trusted.conf.serves(
            self._gateway_id, x.service.subsystem
        ):
            raise ZholError("UnknownService", f"{x.service} is not served here")
        if x.header.data_subject:
            raise ZholError("InvalidRequest", "AllowedMethods is about nobody: no data subject")
        _parse(x.message.body)


class AllowedOrInvokeProvider:
    """AllowedMethods is answered from this gateway's local rights; everything else goes
    to the IS as usual. The answer is sealed and logged by the ordinary stages after."""

    def __init__(
        self, ordinary: ProviderStage, gateway_id: GatewayId, local: LocalConfStore
    ) -> None:
        self._ordinary = ordinary
        self._gateway_id = gateway_id
        self._local = local

    async def __call__(self, x: ProviderExchange) -> None:
        if not _is_allowed_methods(x.service):
            await self._ordinary(x)
            return
        assert x.service is not None and x.trusted is not None and x.client is not None
        provider = x.service.subsystem
        answer = discovery_pb2.AllowedMethodsResponse(
            provider=str(provider),
            client=str(x.client),
            services=allowed_methods(self._local.current(), x.trusted.conf, x.client, provider),
            gateway=str(self._gateway_id),
        )
        x.response_body = answer.SerializeToString()
        x.status_code = 0
        x.status_message = ""
