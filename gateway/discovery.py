"""Discovery: ``zhol.bus.v1.Discovery``, answered by an IS's own gateway (docs/protocol.md).

Like X-Road's listClients, which the own security server answers from the global
configuration, the gateway answers ``ListMembers`` from the configuration it holds: no
message crosses the bus, nothing is signed. Only the gateway's own clients may ask
(the IS's mutual-TLS pin, as for any call, and ``zhol-client`` naming a subsystem this
gateway serves). The configuration is public to the federation and the question names
nobody, so nothing goes to the message log; a refusal is logged like any refused call.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError

from zhol.bus.v1 import discovery_pb2
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId, MemberId, SubsystemId
from zhol.core.metadata import CLIENT_KEY
from zhol.gateway.exchange import ConsumerExchange
from zhol.security.globalconf import GlobalConf

DISCOVERY_SERVICE = "zhol.bus.v1.Discovery"
LIST_MEMBERS_PATH = f"/{DISCOVERY_SERVICE}/ListMembers"
DISCOVERY_PATHS = frozenset({LIST_MEMBERS_PATH})


@dataclass(slots=True)
class DiscoveryExchange(ConsumerExchange):
    answer: bytes = b""


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
        assert x.trusted is not None
        if x.grpc_path != LIST_MEMBERS_PATH:
            raise ZholError("UnknownService", f"{DISCOVERY_SERVICE} has no such method")
        try:
            discovery_pb2.ListMembersRequest.FromString(x.body)
        except DecodeError:
            raise ZholError("InvalidRequest", "not a ListMembersRequest") from None
        x.answer = list_members(x.trusted.conf, self._gateway_id).SerializeToString()
