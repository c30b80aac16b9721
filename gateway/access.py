"""Access requests over the bus: the zhol.bus.v1.Access metaservice (docs/protocol.md).

A consumer asks a provider for a right: its IS (or ``zhol gateway request-access``,
acting as that IS) calls ``/zhol.bus.v1.Access/RequestAccess`` on its own gateway with
``zhol-provider`` naming the provider subsystem. The consumer gateway checks the request
against the global configuration before anything is signed or logged, then seals, logs
and forwards it as an ordinary exchange. The provider's gateway checks it again (fail
closed: it trusts no consumer gateway's checks), logs it, and answers it itself instead
of invoking an IS: it keeps the request PENDING (gateway/accessstore.py) for its
operator, who approves or rejects it on the command line. ``ListAccessRequests`` answers
a client with its own requests and their decisions. Nothing is granted here: only
``zhol gateway approve`` writes a right into the local directory.

As the answers pass back through the consumer gateway, ``RememberSentAccess`` keeps
them (the ``sent`` table), so ``zhol gateway access-requests --sent`` lists them.

The stages wrap the ordinary ones (as gateway/usage.py does) and hand every other call
to them unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from zhol.bus.v1 import access_pb2
from zhol.core.clock import Clock
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId, ServiceId, SubsystemId, parse_grpc_path, parse_topic
from zhol.gateway.accessstore import (
    APPROVED,
    PENDING,
    REJECTED,
    STATUSES,
    AccessRequestStore,
    StoredRequest,
)
from zhol.gateway.exchange import ConsumerExchange, ProviderExchange
from zhol.gateway.usage import parse_message_id
from zhol.security.globalconf import GlobalConf

log = logging.getLogger(__name__)

ACCESS_SERVICE = "zhol.bus.v1.Access"
REQUEST_ACCESS = "RequestAccess"
LIST_ACCESS_REQUESTS = "ListAccessRequests"
REQUEST_ACCESS_PATH = f"/{ACCESS_SERVICE}/{REQUEST_ACCESS}"
LIST_ACCESS_REQUESTS_PATH = f"/{ACCESS_SERVICE}/{LIST_ACCESS_REQUESTS}"
_METHODS = (REQUEST_ACCESS, LIST_ACCESS_REQUESTS)
MAX_REASON_CHARS = 1000
# A client's pending requests at one gateway: enough for any real need, and a bound on
# what one misbehaving client can put in front of another agency's operator.
MAX_PENDING_PER_CLIENT = 100
MAX_LISTED = 500

ConsumerStage = Callable[[ConsumerExchange], Awaitable[None]]
ProviderStage = Callable[[ProviderExchange], Awaitable[None]]

_STATUS_PB = {
    PENDING: access_pb2.ACCESS_REQUEST_STATUS_PENDING,
    APPROVED: access_pb2.ACCESS_REQUEST_STATUS_APPROVED,
    REJECTED: access_pb2.ACCESS_REQUEST_STATUS_REJECTED,
}


@dataclass(frozen=True, slots=True)
class AccessAsk:
    """A checked RequestAccessRequest: a service (method "" = all of it) or a topic."""

    grpc_service: str
    method: str
    topic: str
    reason: str
    gateway: GatewayId | None

    @property
    def target_text(self) -> str:
        return self.topic or self.grpc_service + (f"/{self.method}" if self.method else "")


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A checked ListAccessRequestsRequest."""

    request_ids: frozenset[str]
    gateway: GatewayId | None


def check_reason(text: str, what: str = "reason") -> str:
    """A reason an operator reads: 1..MAX_REASON_CHARS characters, not blank, and no
    control characters (nothing can rewrite the operator's terminal)."""
    if not text.strip():
        raise ZholError("InvalidRequest", f"the {what} is empty")
    if len(text) > MAX_REASON_CHARS:
        raise ZholError(
            "InvalidRequest", f"the {what} is longer than {MAX_REASON_CHARS} characters"
        )
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in text):
        raise ZholError("InvalidRequest", f"the {what} contains control characters")
    return text


def parse_ask(body: bytes) -> AccessAsk:
    """The request's fields, each checked (InvalidRequest / InvalidIdentifier)."""
    try:
        request = access_pb2.RequestAccessRequest.FromString(body)
    except DecodeError:
        raise ZholError("InvalidRequest", "not a RequestAccessRequest") from None
    if bool(request.grpc_service) == bool(request.topic):
        raise ZholError("InvalidRequest", "ask for either a grpc_service or a topic")
    if request.topic:
        if request.method:
            raise ZholError("InvalidRequest", "a topic has no method")
        parse_topic(request.topic)
    else:
        # Same grammar as any service id (the subsystem here is only a placeholder).
        ServiceId.of(SubsystemId.parse("X/GOV/X/x"), request.grpc_service, request.method or "Any")
    return AccessAsk(
        grpc_service=request.grpc_service,
        method=request.method,
        topic=request.topic,
        reason=check_reason(request.reason),
        gateway=GatewayId.parse(request.gateway) if request.gateway else None,
    )


def parse_list(body: bytes) -> ListQuery:
    try:
        request = access_pb2.ListAccessRequestsRequest.FromString(body)
    except DecodeError:
        raise ZholError("InvalidRequest", "not a ListAccessRequestsRequest") from None
    if len(request.request_ids) > MAX_LISTED:
        raise ZholError("InvalidRequest", f"more than {MAX_LISTED} request ids")
    return ListQuery(
        request_ids=frozenset(parse_message_id(i) for i in request.request_ids),
        gateway=GatewayId.parse(request.gateway) if request.gateway else None,
    )


def parse_access(method: str, body: bytes) -> AccessAsk | ListQuery:
    """The checked request of an Access method (UnknownService for any other method)."""
    if method == REQUEST_ACCESS:
        return parse_ask(body)
    if method == LIST_ACCESS_REQUESTS:
        return parse_list(body)
    raise ZholError("UnknownService", f"{ACCESS_SERVICE} has no method {method}")


def check_target(conf: GlobalConf, provider: SubsystemId, ask: AccessAsk) -> None:
    """What is asked for must be in the global configuration for that provider:
    UnknownService (service or method) or UnknownTopic otherwise."""
    if ask.topic:
        if not conf.publishes(provider, ask.topic):
            raise ZholError("UnknownTopic", f"{provider} publishes no {ask.topic}")
        return
    methods = conf.methods.get((provider, ask.grpc_service))
    if methods is None:
        raise ZholError("UnknownService", f"{provider} offers no {ask.grpc_service}")
    if ask.method and ask.method not in methods:
        raise ZholError("UnknownService", f"{ask.grpc_service} has no method {ask.method}")


def to_pb(request: StoredRequest) -> access_pb2.AccessRequest:
    return access_pb2.AccessRequest(
        request_id=request.request_id,
        client=request.client,
        provider=request.provider,
        grpc_service=request.grpc_service,
        method=request.method,
        topic=request.topic,
        reason=request.reason,
        user_id=request.user_id,
        requested_at_unix_ms=request.requested_at_ms,
        status=_STATUS_PB[request.status],
        decided_at_unix_ms=request.decided_at_ms,
        decision_reason=request.decision_reason,
        gateway=request.gateway,
    )


def from_pb(request: access_pb2.AccessRequest) -> StoredRequest:
    """A request as a provider's gateway reported it (InvalidMessage if unusable)."""
    name = access_pb2.AccessRequestStatus.Name(request.status).removeprefix(
        "ACCESS_REQUEST_STATUS_"
    )
    if name not in STATUSES:
        raise ZholError("InvalidMessage", "an access request without a status")
    return StoredRequest(
        request_id=parse_message_id(request.request_id),
        client=request.client,
        provider=request.provider,
        grpc_service=request.grpc_service,
        method=request.method,
        topic=request.topic,
        reason=request.reason,
        user_id=request.user_id,
        requested_at_ms=request.requested_at_unix_ms,
        status=name,
        decided_at_ms=request.decided_at_unix_ms,
        decision_reason=request.decision_reason,
        gateway=request.gateway,
    )


def _is_access(service: ServiceId | None) -> bool:
    return service is not None and service.grpc_service == ACCESS_SERVICE


class AccessOrResolveProvider:
    """An Access call goes to the gateways of the ``zhol-provider`` subsystem (or the one
    the request pins), checked first against the global configuration: a request for
    something the provider does not offer is refused before it is signed or logged."""

    def __init__(self, ordinary: ConsumerStage) -> None:
        self._ordinary = ordinary

    async def __call__(self, x: ConsumerExchange) -> None:
        grpc_service, method = parse_grpc_path(x.grpc_path)
        if grpc_service != ACCESS_SERVICE:
            await self._ordinary(x)
            return
        assert x.trusted is not None
        if method not in _METHODS:
            raise ZholError("UnknownService", f"{ACCESS_SERVICE} has no method {method}")
        provider = x.provider_hint
        if provider is None:
            raise ZholError(
                "MissingHeader", "an access request names the provider in zhol-provider"
            )
        if x.data_subject:
            raise ZholError("InvalidRequest", "an access request is about no data subject")
        query = parse_access(method, x.body)
        conf = x.trusted.conf
        if not conf.gateways_for(provider):
            raise ZholError("UnknownSubsystem", f"no registered subsystem {provider}")
        if isinstance(query, AccessAsk):
            check_target(conf, provider, query)
        x.service = ServiceId.of(provider, ACCESS_SERVICE, method)
        x.targets = tuple(
            t for t in conf.gateways_for(provider) if query.gateway is None or t.id == query.gateway
        )
        if not x.targets:
            raise ZholError("UnknownService", f"no such gateway serves {provider}")


class AccessOrAuthorize:
    """An Access call: for a subsystem served here, well-formed, for something the
    configuration lists, not a duplicate; checked before anything is logged. Any
    registered client may ask (that is the point); everything else is authorized as usual."""

    def __init__(
        self, ordinary: ProviderStage, gateway_id: GatewayId, store: AccessRequestStore | None
    ) -> None:
        self._ordinary = ordinary
        self._gateway_id = gateway_id
        self._store = store

    async def __call__(self, x: ProviderExchange) -> None:
        if not _is_access(x.service):
            await self._ordinary(x)
            return
        assert x.service is not None and x.client is not None and x.trusted is not None
        assert x.header is not None
        if (
            self._store is None
            or x.service.method not in _METHODS
            or not x.trusted.conf.serves(self._gateway_id, x.service.subsystem)
        ):
            raise ZholError("UnknownService", f"{x.service} is not served here")
        query = parse_access(x.service.method, x.message.body)
        if query.gateway is not None and query.gateway != self._gateway_id:
            raise ZholError("UnknownService", f"this is not {query.gateway}")
        if x.header.data_subject:
            raise ZholError("InvalidRequest", "an access request is about no data subject")
        if isinstance(query, AccessAsk):
            check_target(x.trusted.conf, x.service.subsystem, query)
            stored = _stored(x, query, self._gateway_id, 0)
            # Refused before the log: the store's unique index decides for good.
            if await asyncio.to_thread(self._store.has_pending, stored):
                raise ZholError("DuplicateAccessRequest", stored.target)
            count = await asyncio.to_thread(self._store.pending_count, stored.client)
            if count >= MAX_PENDING_PER_CLIENT:
                raise ZholError("TooManyAccessRequests", f"{count} pending from {stored.client}")


def _stored(
    x: ProviderExchange, ask: AccessAsk, gateway_id: GatewayId, now_ms: int
) -> StoredRequest:
    assert x.header is not None and x.service is not None
    return StoredRequest(
        request_id=x.header.message_id,
        client=str(x.client),
        provider=str(x.service.subsystem),
        grpc_service=ask.grpc_service,
        method=ask.method,
        topic=ask.topic,
        reason=ask.reason,
        user_id=x.header.user_id,
        requested_at_ms=now_ms,
        status=PENDING,
        decided_at_ms=0,
        decision_reason="",
        gateway=str(gateway_id),
    )


class AccessOrInvokeProvider:
    """An Access call is answered here: a request is kept PENDING for the operator, a
    listing read from the store; everything else goes to the IS as usual. The answer is
    sealed and logged by the ordinary stages after."""

    def __init__(
        self,
        ordinary: ProviderStage,
        gateway_id: GatewayId,
        store: AccessRequestStore | None,
        clock: Clock,
    ) -> None:
        self._ordinary = ordinary
        self._gateway_id = gateway_id
        self._store = store
        self._clock = clock

    async def __call__(self, x: ProviderExchange) -> None:
        if not _is_access(x.service):
            await self._ordinary(x)
            return
        store = self._store
        assert x.service is not None and store is not None  # AccessOrAuthorize checked
        query = parse_access(x.service.method, x.message.body)
        if isinstance(query, AccessAsk):
            stored = _stored(x, query, self._gateway_id, self._clock.now_ms())
            await asyncio.to_thread(store.receive, stored, MAX_PENDING_PER_CLIENT)
            # Names and the target only: the reason may say more than a log should.
            log.info(
                "access request %s from %s for %s: pending",
                stored.request_id, stored.client, stored.target,
            )  # fmt: skip
            x.response_body = access_pb2.RequestAccessResponse(
                request=to_pb(stored)
            ).SerializeToString()
        else:
            mine = await asyncio.to_thread(store.received, None, str(x.client), MAX_LISTED)
            answer = access_pb2.ListAccessRequestsResponse(gateway=str(self._gateway_id))
            answer.requests.extend(
                to_pb(r) for r in mine if not query.request_ids or r.request_id in query.request_ids
            )
            x.response_body = answer.SerializeToString()
        x.status_code = 0
        x.status_message = ""


class RememberSentAccess:
    """After an Access answer is verified and logged: keep what the provider's gateway
    reported about our client's requests (the ``sent`` table). Best effort: the exchange
    already succeeded, and the provider's gateway keeps the request either way."""

    def __init__(self, store: AccessRequestStore | None, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def __call__(self, x: ConsumerExchange) -> None:
        if self._store is None or not _is_access(x.service):
            return
        assert x.service is not None and x.response is not None
        if x.response_header is None or x.response_header.status_code != 0:
            return
        try:
            if x.service.method == REQUEST_ACCESS:
                reported = [access_pb2.RequestAccessResponse.FromString(x.response.body).request]
            else:
                reported = list(
                    access_pb2.ListAccessRequestsResponse.FromString(x.response.body).requests
                )
            now = self._clock.now_ms()
            for pb in reported:
                request = from_pb(pb)
                # The provider's member signed the answer; still, keep only what is ours.
                if request.client == str(x.client) and request.provider == str(x.service.subsystem):
                    await asyncio.to_thread(self._store.remember_sent, request, now)
        except (DecodeError, ZholError, OSError) as exc:
            log.warning("access answer %s not kept: %s", x.message_id, exc)
        except Exception:  # sqlite3 and the like: the exchange itself succeeded
            log.exception("access answer %s not kept", x.message_id)
