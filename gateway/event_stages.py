"""Stages of events: an IS publishing through its gateway, and a peer delivering to us.

Publishing: the publisher's gateway checks who publishes what, then queues one
durable delivery per subscriber its local rights allow (gateway/eventstore.py)
before answering; gateway/delivery.py sends them. Receiving: the subscriber's
gateway authenticates, verifies and deduplicates the delivery, logs it, hands it
to its IS, then seals, logs and returns a signed acknowledgement.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from zhol.bus.v1 import bus_pb2
from zhol.core.clock import Clock
from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId, SubsystemId, parse_grpc_path
from zhol.core.iin import Iin
from zhol.gateway.eventstore import Delivery, EventStore
from zhol.gateway.exchange import ConsumerExchange, ProviderExchange
from zhol.gateway.localconf import LocalConfStore
from zhol.gateway.messagelog import MessageLog
from zhol.gateway.provider_stages import (
    AnswerFields,
    InvokeFn,
    SealResponse,
    is_metadata,
    log_answer,
    log_incoming,
    open_from_peer,
)
from zhol.gateway.refusal import Refusal, clean_message
from zhol.gateway.replay import check_clock_skew
from zhol.security.globalconf import subsystem_from_pb
from zhol.security.sealing import EVENT_TYPE

_log = logging.getLogger("zhol.gateway.events")

PUBLISH_PATH = "/zhol.bus.v1.Events/Publish"
RECEIVE_PATH = "/zhol.bus.v1.EventSink/Receive"
# Delivery ids are derived, so a re-published event maps to the same deliveries.
_DELIVERY_NAMESPACE = uuid.UUID("6f6c6f68-7a68-6f6c-2d65-76656e747331")


def delivery_id(event_id: str, subscriber: SubsystemId) -> str:
    return str(uuid.uuid5(_DELIVERY_NAMESPACE, f"{event_id}/{subscriber}"))


def parse_topic(text: str) -> str:
    """A topic is a fully qualified event message name (the grammar of a service name)."""
    try:
        parse_grpc_path(f"/{text}/Event")
    except ZholError:
        raise ZholError("InvalidIdentifier", f"malformed topic {text[:80]!r}") from None
    return text


@dataclass(slots=True)
class PublishExchange(ConsumerExchange):
    publication: bus_pb2.PublishRequest | None = None
    subscribers: tuple[str, ...] = ()


class ParsePublication:
    """A well-formed event of a topic the calling subsystem is registered to publish."""

    async def __call__(self, x: PublishExchange) -> None:
        assert x.trusted is not None and x.client is not None
        try:
            publication = bus_pb2.PublishRequest.FromString(x.body)
        except DecodeError:
            raise ZholError("InvalidRequest", "not a zhol.bus.v1.PublishRequest") from None
        parse_topic(publication.topic)
        try:
            publication.event_id = str(uuid.UUID(publication.event_id))
        except ValueError:
            raise ZholError("InvalidRequest", "event_id must be a UUID") from None
        subject = publication.data_subject or x.data_subject
        if subject:
            publication.data_subject = Iin.parse(subject).value
        if not x.trusted.conf.publishes(x.client, publication.topic):
            raise ZholError("UnknownTopic", f"{x.client} does not publish {publication.topic}")
        x.publication = publication


class QueueDeliveries:
    """One durable delivery per subscriber granted locally; written before we answer."""

    def __init__(
        self, local: LocalConfStore, store: EventStore, clock: Clock, notify: Callable[[], None]
    ) -> None:
        self._local = local
        self._store = store
        self._clock = clock
        self._notify = notify

    async def __call__(self, x: PublishExchange) -> None:
        assert x.publication is not None and x.client is not None
        p = x.publication
        now = self._clock.now_ms()
        deliveries = [
            Delivery(
                delivery_id=delivery_id(p.event_id, subscriber),
                event_id=p.event_id,
                topic=p.topic,
                publisher=str(x.client),
                subscriber=str(subscriber),
                data_subject=p.data_subject,
                user_id=x.user_id,
                purpose=x.purpose,
                payload=p.payload,
                occurred_at_ms=p.occurred_at_unix_ms or now,
                attempts=0,
            )
            for subscriber in self._local.current().subscribers(x.client, p.topic)
        ]
        x.subscribers = tuple(await self._store.queue(deliveries, now))
        if deliveries:
            self._notify()


# --- The subscriber's side ---


class VerifyEvent:
    """Signed by the publisher's member, sent by its gateway, for a subsystem we serve."""

    def __init__(self, gateway_id: GatewayId, clock: Clock) -> None:
        self._gateway_id = gateway_id
        self._clock = clock

    async def __call__(self, x: ProviderExchange) -> None:
        def parse(header: bus_pb2.MessageHeader) -> None:
            x.recipient = subsystem_from_pb(header.recipient)
            parse_topic(header.topic)

        header = open_from_peer(
            x, EVENT_TYPE, bus_pb2.MESSAGE_KIND_EVENT, "event", self._clock, parse
        )
        assert x.trusted is not None and x.client is not None and x.recipient is not None
        conf = x.trusted.conf
        if not conf.publishes(x.client, header.topic):
            raise ZholError("UnknownTopic", f"{x.client} does not publish {header.topic}")
        if not conf.serves(self._gateway_id, x.recipient):
            raise ZholError("UnknownSubsystem", f"{x.recipient} is not served here")
        x.header = header


class CheckEventFreshness:
    """Issued-at within the skew; a delivery already handed over is acknowledged again.

    Redeliveries reuse their message id on purpose (at-least-once), so instead of
    the replay guard the inbox decides: seen means acknowledge, never hand over twice.
    """

    def __init__(self, clock: Clock, store: EventStore) -> None:
        self._clock = clock
        self._store = store

    async def __call__(self, x: ProviderExchange) -> None:
        assert x.header is not None and x.trusted is not None
        skew_ms = x.trusted.conf.tunables.clock_skew_s * 1000
        check_clock_skew(x.header.issued_at_unix_ms, self._clock.now_ms(), skew_ms)
        x.duplicate = await self._store.seen(x.header.message_id)


class HandToSubscriber:
    """Give the event to the subscribing IS (zhol.bus.v1.EventSink/Receive): the receiver
    set for this publisher or topic, else the subsystem's default (LocalConf.event_sink).

    A receiver that answers with a gRPC error of its own has refused: its code and
    (cleaned) message go back in our signed acknowledgement, for the publisher to log,
    retry or dead-letter. A receiver that cannot be reached or does not answer in time
    is a bus failure (ServiceFailed), answered without a signature like any other.
    """

    TIMEOUT_S = 10.0

    def __init__(self, local: LocalConfStore, invoke: InvokeFn, clock: Clock) -> None:
        self._local = local
        self._invoke = invoke
        self._clock = clock

    async def __call__(self, x: ProviderExchange) -> None:
        assert x.header is not None and x.recipient is not None and x.client is not None
        if x.duplicate:
            return
        h = x.header
        endpoint = self._local.current().event_sink(x.recipient, x.client, h.topic)
        delivery = bus_pb2.EventDelivery(
            event_id=h.event_id,
            message_id=h.message_id,
            topic=h.topic,
            publisher=str(x.client),
            subscriber=str(x.recipient),
            data_subject=h.data_subject,
            payload=x.message.body,
            occurred_at_unix_ms=h.issued_at_unix_ms,
            attempt=h.attempt,
        )
        try:
            answer = await self._invoke(
                endpoint, RECEIVE_PATH, delivery.SerializeToString(), is_metadata(x),
                self.TIMEOUT_S,
            )  # fmt: skip
        except ZholError as err:
            if err.code.name != "Timeout":
                raise
            # The publisher retries, then dead-letters: a slow subscriber has failed too.
            raise ZholError("ServiceFailed", "the subscribing IS did not answer in time") from None
        if answer.status_code != 0:
            refusal = Refusal(answer.status_code, clean_message(answer.status_message))
            x.status_code, x.status_message = refusal.status_code, refusal.message
            _log.warning(
                "event %s for %s refused by its receiver: %s",
                h.message_id, x.recipient, refusal,
            )  # fmt: skip


class RememberDelivery:
    """An event our IS accepted is never handed over again; a refused one is, when
    the publisher retries."""

    def __init__(self, store: EventStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def __call__(self, x: ProviderExchange) -> None:
        assert x.header is not None
        if not x.duplicate and x.status_code == 0:
            h = x.header
            await self._store.remember(
                h.message_id, h.event_id, str(x.client), str(x.recipient), self._clock.now_ms()
            )


class SealAck(SealResponse):
    """Our signed acknowledgement: no body, the event's topic, id and recipient, and the
    receiving IS's refusal if it refused (status_code 0: accepted)."""

    def answer(self, x: ProviderExchange) -> tuple[bytes, AnswerFields]:
        assert x.header is not None
        h = x.header
        return b"", {
            "topic": h.topic,
            "event_id": h.event_id,
            "recipient": h.recipient,
            "status_code": x.status_code,
            "status_message": x.status_message,
        }


def _event_service(x: ProviderExchange) -> str:
    assert x.header is not None
    return f"{x.client}/{x.header.topic}"


class LogEvent:
    """Every delivery attempt's event, committed before the subscribing IS sees it.

    A redelivery is logged too (it is a new sealed message: the publisher seals each
    attempt afresh), even though the IS does not get it a second time.
    """

    def __init__(self, log: MessageLog) -> None:
        self._log = log

    async def __call__(self, x: ProviderExchange) -> None:
        await log_incoming(self._log, x, _event_service(x), kind="event")


class LogAck:
    """Our acknowledgement, committed before it leaves (for a redelivery too)."""

    def __init__(self, log: MessageLog) -> None:
        self._log = log

    async def __call__(self, x: ProviderExchange) -> None:
        await log_answer(self._log, x, _event_service(x))
