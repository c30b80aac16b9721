"""Discovery: ``zhol.bus.v1.Discovery``, answered by an IS's own gateway (docs/protocol.md).

Like X-Road's listClients and listMethods, which the own security server answers from
the global configuration, the gateway answers ``ListMembers``, ``ListMethods`` and gRPC
server reflection (gateway/reflection.py) from the configuration it holds: no message
crosses the bus, nothing is signed. ``AllowedMethods`` is not answered here: it is an
ordinary exchange with the provider's gateway (gateway/allowed.py), which reflection
makes too, to show only what the client may call (gateway/granted.py). Only the gateway's
own clients may ask (the IS's mutual-TLS pin, as for any call, and ``zhol-client``
naming a subsystem this gateway serves). The configuration is public to the
federation and the question names nobody, so nothing goes to the message log; a
refusal is logged like any refused call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from zhol.bus.v1 import discovery_pb2
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId, MemberId, SubsystemId
from zhol.core.metadata import CLIENT_KEY
from zhol.gateway.exchange import ConsumerExchange
from zhol.gateway.reflection import REFLECTION_PATHS, Allowed, answer_reflection
from zhol.gateway.subjects import published_pool
from zhol.security.globalconf import GlobalConf

DISCOVERY_SERVICE = "zhol.bus.v1.Discovery"
LIST_MEMBERS_PATH = f"/{DISCOVERY_SERVICE}/ListMembers"
LIST_METHODS_PATH = f"/{DISCOVERY_SERVICE}/ListMethods"
# The one Discovery method that crosses the bus: the IS proxy hands it to the ordinary
# consumer pipeline (gateway/allowed.py), not to the discovery pipeline.
ALLOWED_METHODS = "AllowedMethods"
ALLOWED_METHODS_PATH = f"/{DISCOVERY_SERVICE}/{ALLOWED_METHODS}"
DISCOVERY_PATHS = frozenset({LIST_MEMBERS_PATH, LIST_METHODS_PATH})


@dataclass(slots=True)
class DiscoveryExchange(ConsumerExchange):
    answer: bytes = b""
    # For reflection: what the providers' gateways grant this client (gateway/granted.py);
    # empty, nothing of theirs is shown.
    allowed: Allowed = field(default_factory=dict)


def list_members(conf: GlobalConf, gateway_id: GatewayId) -> discovery_pb2.ListMembersResponse:
    """The configuration's members, subsystems, gateways, services and topics, by id."""
    subsystems: dict[MemberId, list[SubsystemId]] = {}
    for subsystem in conf.subsystem_gateways:
        subsystems.setdefault(subsystem.member, []).append(subsystem)
    services: dict[SubsystemId, list[discovery_pb2.DiscoveredService]] = {}
    by_name = sorted(conf.methods.items(), key=lambda kv: (str(kv[0][0]), kv[0][1]))
    for (provider, grpc_service), methods in by_name:
        services.setdefault(provider, []).append(
            discovery_pb2.DiscoveredService(grpc_service=grpc_service, methods=sorted(methods))
        )
    answer = discovery_pb2.ListMembersResponse(
        instance=conf.instance,
        configuration_version=conf.version,
        generated_at_unix_ms=conf.generated_at_ms,
        expires_at_unix_ms=conf.expires_at_ms,
        gateway=str(gateway_id),
    )
    for member in sorted({*conf.members, *subsystems}, key=str):
        entry = answer.members.add(id=str(member), name=conf.members.get(member, ""))
        for subsystem in sorted(subsystems.get(member, ()), key=str):
            entry.subsystems.append(
                discovery_pb2.DiscoveredSubsystem(
                    id=str(subsystem),
                    gateways=[str(g.id) for g in conf.gateways_for(subsystem)],
                    services=services.get(subsystem, ()),
                    topics=sorted(conf.topics.get(subsystem, ())),
                )
            )
    return answer


def list_methods(
    conf: GlobalConf, gateway_id: GatewayId, provider: SubsystemId, grpc_service: str = ""
) -> discovery_pb2.ListMethodsResponse:
    """The provider's services (or the one asked for) and their methods, with the
    descriptor sets they were registered with (UnknownSubsystem, UnknownService)."""
    if provider not in conf.subsystem_gateways:
        raise ZholError("UnknownSubsystem", f"the configuration lists no {provider}")
    answer = discovery_pb2.ListMethodsResponse(
        provider=str(provider), configuration_version=conf.version, gateway=str(gateway_id)
    )
    offered = sorted(s for p, s in conf.methods if p == provider)
    if grpc_service and grpc_service not in offered:
        raise ZholError("UnknownService", f"{provider} offers no {grpc_service}")
    for name in offered:
        if grpc_service and name != grpc_service:
            continue
        descriptors = conf.descriptor_sets.get((provider, name), b"")
        entry = answer.services.add(grpc_service=name, descriptor_set=descriptors)
        for method in sorted(conf.methods[(provider, name)]):
            entry.methods.append(_method(descriptors, name, method))
    return answer


def _method(descriptors: bytes, grpc_service: str, method: str) -> discovery_pb2.ProvidedMethod:
    """A method with its request and response types, where its descriptors say them."""
    found = discovery_pb2.ProvidedMethod(name=method)
    if descriptors:
        try:
            service = published_pool(descriptors).FindServiceByName(grpc_service)
        except (DecodeError, KeyError, TypeError, ValueError):
            return found  # an unreadable set names no types (a call to it is refused)
        described = service.methods_by_name.get(method)
        if described is not None:
            found.request_type = described.input_type.full_name
            found.response_type = described.output_type.full_name
    return found


class IdentifyDiscoveryClient:
    """``zhol-client`` must name a subsystem this gateway serves (and, under mutual TLS,
    one the IS's pin allows): discovery is for this gateway's own clients only. No
    acting user, purpose or data subject: the question is about nobody."""

    def __init__(self, gateway_id: GatewayId) -> None:
        self._gateway_id = gateway_id

    async def __call__(self, x: DiscoveryExchange) -> None:
        assert x.trusted is not None
        client = x.metadata.get(CLIENT_KEY, "").strip()
        if not client:
            raise ZholError("MissingHeader", f"metadata {CLIENT_KEY} is required")
        x.client = SubsystemId.parse(client)
        if x.pinned_clients is not None and x.client not in x.pinned_clients:
            raise ZholError("UnknownClient", f"this IS certificate may not act as {x.client}")
        if x.client.member != self._gateway_id.member or not x.trusted.conf.serves(
            self._gateway_id, x.client
        ):
            raise ZholError("UnknownClient", f"{x.client} is not served by this gateway")


class AnswerDiscovery:
    """Answers from the configuration loaded for this call (LoadConfiguration)."""

    def __init__(self, gateway_id: GatewayId) -> None:
        self._gateway_id = gateway_id

    async def __call__(self, x: DiscoveryExchange) -> None:
        assert x.trusted is not None and x.client is not None
        conf = x.trusted.conf
        if x.grpc_path in REFLECTION_PATHS:
            x.answer = answer_reflection(conf, x.client, x.body, x.allowed)
            return
        if x.grpc_path == LIST_METHODS_PATH:
            try:
                request = discovery_pb2.ListMethodsRequest.FromString(x.body)
            except DecodeError:
                raise ZholError("InvalidRequest", "not a ListMethodsRequest") from None
            provider = SubsystemId.parse(request.provider)
            answer = list_methods(conf, self._gateway_id, provider, request.grpc_service)
            x.answer = answer.SerializeToString()
            return
        if x.grpc_path != LIST_MEMBERS_PATH:
            raise ZholError("UnknownService", f"{DISCOVERY_SERVICE} has no such method")
        try:
            discovery_pb2.ListMembersRequest.FromString(x.body)
        except DecodeError:
            raise ZholError("InvalidRequest", "not a ListMembersRequest") from None
        x.answer = list_members(conf, self._gateway_id).SerializeToString()
