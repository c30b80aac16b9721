"""Publish/subscribe through two gateways: durable, at least once, never handed over twice."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import pytest
import pytest_asyncio

from tests.integration.bus_federation import Federation, error_code, start_federation
from zhol.bus.v1 import bus_pb2, bus_pb2_grpc
from zhol.cli.demo import CONSUMER_GATEWAY, PROVIDER_GATEWAY
from zhol.cli.main import main as zhol
from zhol.core.ids import SubsystemId
from zhol.core.metadata import ERROR_KEY, SIGNED_ACK_KEY
from zhol.gateway.messagelog import list_records
from zhol.gateway.transport import PeerChannels
from zhol.population.v1 import population_pb2

PUBLISHER = "KZ/GOV/MJ/population"
SUBSCRIBER = "KZ/GOV/MLSPP/pension"
TOPIC = "zhol.population.v1.BirthRegistered"
CHILD, MOTHER = "240101500010", "850314401236"
SUBSCRIBER_ID, PUBLISHER_ID = SubsystemId.parse(SUBSCRIBER), SubsystemId.parse(PUBLISHER)


@dataclass
class Sink(bus_pb2_grpc.EventSinkServicer):
    """The subscribing IS: records what it is handed; can be told to refuse."""

    failures_left: int = 0
    refusal: tuple[grpc.StatusCode, str] = (grpc.StatusCode.UNAVAILABLE, "subscriber busy")
    received: list[bus_pb2.EventDelivery] = field(default_factory=list)
    refused: list[bus_pb2.EventDelivery] = field(default_factory=list)

    async def Receive(self, request, context):  # type: ignore[no-untyped-def]  # noqa: N802
        if self.failures_left:
            self.failures_left -= 1
            self.refused.append(request)
            await context.abort(*self.refusal)
        self.received.append(request)
        return bus_pb2.EventAck()


@dataclass
class EventsFixture:
    fed: Federation
    sink: Sink
    server: grpc.aio.Server


async def serve_sink() -> tuple[Sink, grpc.aio.Server, int]:
    """A subscribing IS on an ephemeral port: (its servicer, its server, its port)."""
    sink = Sink()
    server = grpc.aio.server()
    bus_pb2_grpc.add_EventSinkServicer_to_server(sink, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return sink, server, port


@pytest_asyncio.fixture
async def ev(tmp_path) -> AsyncIterator[EventsFixture]:  # type: ignore[no-untyped-def]
    fed = await start_federation(tmp_path, persons=20)
    sink, server, port = await serve_sink()
    provider_dir = str(fed.layout.gateway(PROVIDER_GATEWAY))
    consumer_dir = str(fed.layout.gateway(CONSUMER_GATEWAY))
    assert zhol(["events", "subscribe", "--gateway", provider_dir, "--subscriber", SUBSCRIBER,
                 "--topic", f"{PUBLISHER}/{TOPIC}"]) == 0  # fmt: skip
    assert zhol(["events", "sink", "--gateway", consumer_dir, "--subsystem", SUBSCRIBER,
                 "--address", f"127.0.0.1:{port}"]) == 0  # fmt: skip
    yield EventsFixture(fed, sink, server)
    await server.stop(0)
    await fed.stop()


def birth(event_id: str | None = None) -> bus_pb2.PublishRequest:
    payload = population_pb2.BirthRegistered(child_iin=CHILD, mother_iin=MOTHER, act_id="B-1")
    return bus_pb2.PublishRequest(
        topic=TOPIC,
        payload=payload.SerializeToString(),
        data_subject=CHILD,
        event_id=event_id or str(uuid.uuid4()),
    )


async def publish(
    fed: Federation, request: bus_pb2.PublishRequest, client: str = PUBLISHER
) -> bus_pb2.PublishResponse:
    async with grpc.aio.insecure_channel(fed.is_address(PROVIDER_GATEWAY)) as channel:
        call = channel.unary_unary(
            "/zhol.bus.v1.Events/Publish",
            request_serializer=bus_pb2.PublishRequest.SerializeToString,
            response_deserializer=bus_pb2.PublishResponse.FromString,
        )
        metadata = (("zhol-client", client), ("zhol-user-id", "system"),
                    ("zhol-purpose", "civil-status event notification"))  # fmt: skip
        return await call(request, metadata=metadata, timeout=5)


async def until(predicate, seconds: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


def status(fed: Federation) -> dict:  # type: ignore[type-arg]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        zhol(["events", "status", "--gateway", str(fed.layout.gateway(PROVIDER_GATEWAY)), "--json"])
    return json.loads(out.getvalue())


async def test_an_event_reaches_the_subscriber_signed_and_logged_on_both(
    ev: EventsFixture,
) -> None:
    answer = await publish(ev.fed, birth())
    assert list(answer.subscribers) == [SUBSCRIBER]
    await until(lambda: len(ev.sink.received) == 1)
    got = ev.sink.received[0]
    assert (got.topic, got.publisher, got.subscriber) == (TOPIC, PUBLISHER, SUBSCRIBER)
    assert population_pb2.BirthRegistered.FromString(got.payload).child_iin == CHILD
    await until(lambda: status(ev.fed)["delivered"] == 1)
    for gateway_id, event_dir in ((PROVIDER_GATEWAY, "out"), (CONSUMER_GATEWAY, "in")):
        records = list_records(
            ev.fed.layout.gateway(gateway_id) / "messagelog.db", message_id=got.message_id
        )
        kinds = {(r["kind"], r["direction"]) for r in records}
        assert ("event", event_dir) in kinds and len(kinds) == 2
        assert all(r["data_subject"] == CHILD for r in records)
        # Each record's columns say what its signed header does (service: publisher/topic).
        assert all(r["mismatch"] == [] for r in records)
        assert {r["signed"]["service"] for r in records} == {f"{PUBLISHER}/{TOPIC}"}


async def test_publishing_the_same_event_twice_delivers_once(ev: EventsFixture) -> None:
    request = birth()
    await publish(ev.fed, request)
    await publish(ev.fed, request)
    await until(lambda: status(ev.fed)["delivered"] == 1)
    await asyncio.sleep(0.3)
    assert len(ev.sink.received) == 1


async def test_a_refusing_subscriber_is_retried_until_it_accepts(ev: EventsFixture) -> None:
    ev.sink.failures_left = 2
    await publish(ev.fed, birth())
    await until(lambda: status(ev.fed)["delivered"] == 1)
    assert len(ev.sink.received) == 1
    # Each attempt says how many came before it: the delivered one, two.
    assert [d.attempt for d in [*ev.sink.refused, *ev.sink.received]] == [0, 1, 2]


async def test_outbox_survives_a_restart_of_both_gateways(ev: EventsFixture) -> None:
    fed = ev.fed
    await fed.gateways.pop(CONSUMER_GATEWAY).stop(0)
    await publish(fed, birth())
    await until(lambda: status(fed)["retrying"] == 1)
    await fed.gateways.pop(PROVIDER_GATEWAY).stop(0)
    await fed.start_gateway(PROVIDER_GATEWAY)
    await fed.start_gateway(CONSUMER_GATEWAY)
    fed.provider.deliveries.notify()
    await until(lambda: status(fed)["delivered"] == 1, seconds=15)
    assert len(ev.sink.received) == 1


async def test_dead_letters_are_listed_and_retried(ev: EventsFixture) -> None:
    ev.sink.failures_left = 10_000
    fed = ev.fed
    fed.provider.deliveries._max_attempts = 2  # noqa: SLF001 - keep the test short
    await publish(fed, birth())
    await until(lambda: status(fed)["dead"] == 1, seconds=15)
    dead = status(fed)["dead_letters"][0]
    assert dead["subscriber"] == SUBSCRIBER and dead["last_error"].endswith("ServiceFailed")
    ev.sink.failures_left = 0
    gateway_dir = str(fed.layout.gateway(PROVIDER_GATEWAY))
    assert zhol(["events", "retry", "--gateway", gateway_dir]) == 0
    fed.provider.deliveries.notify()
    await until(lambda: status(fed)["delivered"] == 1)
    assert len(ev.sink.received) == 1


async def test_a_topic_the_publisher_does_not_own_is_refused(ev: EventsFixture) -> None:
    request = birth()
    request.topic = "zhol.population.v1.NothingHappened"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await publish(ev.fed, request)
    assert error_code(caught.value) == "Server.ClientProxy.UnknownTopic"
    assert status(ev.fed)["pending"] == 0


@pytest.mark.parametrize("field_name,value", [("event_id", "not-a-uuid"), ("data_subject", "1")])
async def test_malformed_publications_are_refused(
    ev: EventsFixture, field_name: str, value: str
) -> None:
    request = birth()
    setattr(request, field_name, value)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await publish(ev.fed, request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert status(ev.fed)["pending"] + status(ev.fed)["delivered"] == 0


async def test_only_the_subsystems_of_this_gateway_may_publish(ev: EventsFixture) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await publish(ev.fed, birth(), client=SUBSCRIBER)
    assert error_code(caught.value) == "Client.UnknownClient"


def test_subscriptions_are_listed_and_withdrawn(ev: EventsFixture) -> None:
    gateway_dir = str(ev.fed.layout.gateway(PROVIDER_GATEWAY))

    def listed() -> list[dict[str, str]]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert zhol(["events", "subscriptions", "--gateway", gateway_dir, "--json"]) == 0
        return [json.loads(line) for line in out.getvalue().splitlines()]

    birth_right = {"publisher": PUBLISHER, "topic": TOPIC, "subscriber": SUBSCRIBER}
    assert birth_right in listed()
    assert zhol(["events", "unsubscribe", "--gateway", gateway_dir, "--subscriber", SUBSCRIBER,
                 "--topic", f"{PUBLISHER}/{TOPIC}"]) == 0  # fmt: skip
    assert birth_right not in listed()


async def test_a_delivery_logged_but_not_marked_delivered_is_not_dead_lettered(
    ev: EventsFixture,
) -> None:
    """The publisher stopped between logging the acknowledged exchange and marking the
    outbox row delivered: the retry is deduplicated by the subscriber and must end
    delivered, not retried into a dead letter, with each attempt on record on both sides
    (each attempt is sealed afresh, so each is a message of its own)."""
    fed = ev.fed
    await publish(fed, birth())
    await until(lambda: status(fed)["delivered"] == 1)
    message_id = ev.sink.received[0].message_id
    await fed.gateways.pop(PROVIDER_GATEWAY).stop(0)
    events_db = fed.layout.gateway(PROVIDER_GATEWAY) / "events.db"
    with contextlib.closing(sqlite3.connect(events_db)) as conn, conn:
        changed = conn.execute(
            "UPDATE outbox SET state = 'pending', delivered_at_ms = NULL,"
            " next_attempt_at_ms = 0 WHERE delivery_id = ?",
            (message_id,),
        ).rowcount
    assert changed == 1
    await fed.start_gateway(PROVIDER_GATEWAY)
    fed.provider.deliveries.notify()
    await until(lambda: status(fed)["delivered"] == 1 and status(fed)["retrying"] == 0)
    assert status(fed)["dead"] == 0
    assert len(ev.sink.received) == 1  # the subscriber's gateway deduplicated the retry
    records = list_records(
        fed.layout.gateway(PROVIDER_GATEWAY) / "messagelog.db", message_id=message_id
    )
    assert sorted((r["kind"], r["direction"]) for r in records) == [
        ("event", "out"),
        ("event", "out"),
        ("response", "in"),
        ("response", "in"),
    ]
    assert len({r["signed_digest"] for r in records}) == 4
    subscriber_side = list_records(
        fed.layout.gateway(CONSUMER_GATEWAY) / "messagelog.db", message_id=message_id
    )
    assert sorted((r["kind"], r["direction"]) for r in subscriber_side) == [
        ("event", "in"),
        ("event", "in"),
        ("response", "out"),
        ("response", "out"),
    ]


# --- A receiver that refuses, and receivers per topic or publisher ---

REFUSED = "Server.ServerProxy.ReceiverRefused"


async def status_when(fed: Federation, predicate, seconds: float = 15.0) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """The first `zhol events status --json` snapshot that satisfies ``predicate``."""
    for _ in range(int(seconds / 0.05)):
        snapshot = status(fed)
        if predicate(snapshot):
            return snapshot
        await asyncio.sleep(0.05)
    raise AssertionError(f"status never reached the condition: {status(fed)}")


def status_text(fed: Federation) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert zhol(["events", "status", "--gateway",
                     str(fed.layout.gateway(PROVIDER_GATEWAY))]) == 0  # fmt: skip
    return out.getvalue()


async def test_a_receivers_refusal_reaches_the_publishers_log_status_and_dead_letter(
    ev: EventsFixture,
) -> None:
    """The receiving IS answers FAILED_PRECONDITION: its code and (capped, IIN-free)
    message come back signed, and the publisher's log, `zhol events status` and the
    dead letter say so; once it accepts, the event says how many attempts came before."""
    fed = ev.fed
    fed.provider.deliveries._max_attempts = 3  # noqa: SLF001 - keep the test short
    ev.sink.failures_left = 10_000
    said = f"no handler for topic {TOPIC} (child {CHILD}) " + "x" * 1000
    ev.sink.refusal = (grpc.StatusCode.FAILED_PRECONDITION, said)
    await publish(fed, birth())

    retrying = await status_when(fed, lambda s: s["retrying"] == 1 and s["dead"] == 0
                                 and s["subscribers"][0]["last_error"] != "")  # fmt: skip
    sub = retrying["subscribers"][0]
    assert (sub["subscriber"], sub["last_error"], sub["receiver_status"]) == (
        SUBSCRIBER, REFUSED, "FAILED_PRECONDITION"
    )
    assert sub["last_message"].startswith(f"no handler for topic {TOPIC} (child [redacted])")
    assert len(sub["last_message"]) <= 200 and CHILD not in sub["last_message"]
    assert sub["attempts"] >= 1 and sub["next_retry_at_ms"] > sub["last_attempt_at_ms"]

    dead = (await status_when(fed, lambda s: s["dead"] == 1))["dead_letters"][0]
    assert (dead["last_error"], dead["receiver_status"], dead["attempts"]) == (
        REFUSED, "FAILED_PRECONDITION", 3
    )
    assert dead["last_message"] == sub["last_message"]
    text = status_text(fed)
    assert f"{REFUSED}: receiver said FAILED_PRECONDITION: no handler for topic" in text

    # Every attempt's signed acknowledgement is on record at both ends, with the code
    # and the message the receiver gave.
    message_id = ev.sink.refused[0].message_id
    for gateway_id, direction in ((PROVIDER_GATEWAY, "in"), (CONSUMER_GATEWAY, "out")):
        acks = [r for r in list_records(
            fed.layout.gateway(gateway_id) / "messagelog.db", message_id=message_id
        ) if r["kind"] == "response"]  # fmt: skip
        assert len(acks) == 3 and all(r["direction"] == direction for r in acks)
        assert {r["status_code"] for r in acks} == {grpc.StatusCode.FAILED_PRECONDITION.value[0]}
        assert {r["signed"]["status_message"] for r in acks} == {dead["last_message"]}
        assert all(r["mismatch"] == [] for r in acks)

    ev.sink.failures_left = 0
    assert zhol(["events", "retry", "--gateway", str(fed.layout.gateway(PROVIDER_GATEWAY))]) == 0
    fed.provider.deliveries.notify()
    await status_when(fed, lambda s: s["delivered"] == 1)
    assert [d.attempt for d in ev.sink.refused] == [0, 1, 2]
    assert [d.attempt for d in ev.sink.received] == [3]


async def test_a_topic_the_receiver_does_not_handle_is_dead_lettered_at_once(
    ev: EventsFixture,
) -> None:
    ev.sink.failures_left = 10_000
    ev.sink.refusal = (grpc.StatusCode.UNIMPLEMENTED, f"no handler for topic {TOPIC}")
    await publish(ev.fed, birth())
    dead = (await status_when(ev.fed, lambda s: s["dead"] == 1))["dead_letters"][0]
    assert (dead["last_error"], dead["receiver_status"], dead["attempts"]) == (
        REFUSED, "UNIMPLEMENTED", 1
    )
    assert dead["last_message"] == f"no handler for topic {TOPIC}"
    assert len(ev.sink.refused) == 1 and status(ev.fed)["pending"] == 0


async def test_a_receiver_per_topic_or_publisher_comes_before_the_default(
    ev: EventsFixture,
) -> None:
    fed = ev.fed
    death_topic = "zhol.population.v1.DeathRegistered"
    provider_dir = str(fed.layout.gateway(PROVIDER_GATEWAY))
    consumer_dir = str(fed.layout.gateway(CONSUMER_GATEWAY))
    assert zhol(["events", "subscribe", "--gateway", provider_dir, "--subscriber", SUBSCRIBER,
                 "--topic", f"{PUBLISHER}/{death_topic}"]) == 0  # fmt: skip
    by_publisher, publisher_server, publisher_port = await serve_sink()
    by_topic, topic_server, topic_port = await serve_sink()
    try:
        sink = ["events", "sink", "--gateway", consumer_dir, "--subsystem", SUBSCRIBER]
        assert zhol([*sink, "--publisher", PUBLISHER, "--address",
                     f"127.0.0.1:{publisher_port}"]) == 0  # fmt: skip
        assert zhol([*sink, "--topic", TOPIC, "--address", f"127.0.0.1:{topic_port}"]) == 0
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert zhol(["events", "sinks", "--gateway", consumer_dir, "--json"]) == 0
        listed = {(r["publisher"], r["topic"]): r["address"]
                  for r in map(json.loads, out.getvalue().splitlines())}  # fmt: skip
        assert listed[(PUBLISHER, "")] == f"127.0.0.1:{publisher_port}"
        assert listed[("", TOPIC)] == f"127.0.0.1:{topic_port}"
        assert ("", "") in listed  # the subsystem's default receiver

        async def delivered_to(request: bus_pb2.PublishRequest) -> str:
            sinks = {"default": ev.sink, "publisher": by_publisher, "topic": by_topic}
            before = {name: len(s.received) for name, s in sinks.items()}
            done = status(fed)["delivered"]
            await publish(fed, request)
            await until(lambda: status(fed)["delivered"] == done + 1)
            return next(n for n, s in sinks.items() if len(s.received) > before[n])

        def receiver_of(topic: str) -> str:
            local = fed.consumer.local.current()
            return local.event_sink(SUBSCRIBER_ID, PUBLISHER_ID, topic).address

        # The running gateway reloads local.db within LocalConfStore.RELOAD_CHECK_S.
        await until(lambda: receiver_of(TOPIC) == f"127.0.0.1:{topic_port}")
        death = birth()
        death.topic = death_topic
        assert await delivered_to(birth()) == "topic"  # the topic's receiver first
        assert await delivered_to(death) == "publisher"  # then the publisher's

        assert zhol([*sink, "--topic", TOPIC, "--remove"]) == 0
        await until(lambda: receiver_of(TOPIC) == f"127.0.0.1:{publisher_port}")
        assert await delivered_to(birth()) == "publisher"

        assert zhol([*sink, "--publisher", PUBLISHER, "--remove"]) == 0
        await until(lambda: not fed.consumer.local.current().event_routes)
        assert await delivered_to(birth()) == "default"
    finally:
        await publisher_server.stop(0)
        await topic_server.stop(0)


@pytest.mark.parametrize(
    "options",
    [
        ["--topic", "not a topic", "--address", "127.0.0.1:1"],
        ["--publisher", "KZ/GOV", "--address", "127.0.0.1:1"],
        ["--topic", f"KZ/GOV/MJ/other/{TOPIC}", "--publisher", PUBLISHER, "--address", "h:1"],
        ["--topic", TOPIC, "--address", "nowhere"],
        ["--topic", TOPIC],
        ["--remove"],
    ],
)
def test_bad_receiver_routes_are_refused_and_change_nothing(
    ev: EventsFixture, options: list[str]
) -> None:
    consumer_dir = str(ev.fed.layout.gateway(CONSUMER_GATEWAY))
    before = ev.fed.consumer.local.event_routes(), ev.fed.consumer.local.event_sinks()
    assert zhol(["events", "sink", "--gateway", consumer_dir, "--subsystem", SUBSCRIBER,
                 *options]) != 0  # fmt: skip
    ev.fed.consumer.local._cached = None  # noqa: SLF001 - read local.db afresh
    assert (ev.fed.consumer.local.event_routes(), ev.fed.consumer.local.event_sinks()) == before


async def test_a_refusal_is_a_failed_call_on_the_wire(
    ev: EventsFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The subscriber's gateway answers a refused event with a failed Exchange/Deliver
    that carries the signed acknowledgement in its trailers: a publisher's gateway that
    does not read the acknowledgement's status (an older one) still sees a failure and
    retries; it can never take a refusal for a delivery."""
    raw: list[grpc.aio.AioRpcError] = []
    real_invoke = PeerChannels._invoke  # noqa: SLF001 - watched, not replaced

    async def watched(self, address, gateway, method, message, timeout):  # type: ignore[no-untyped-def]
        try:
            return await real_invoke(self, address, gateway, method, message, timeout)
        except grpc.aio.AioRpcError as exc:
            if method.endswith("/Deliver"):
                raw.append(exc)
            raise

    monkeypatch.setattr(PeerChannels, "_invoke", watched)
    ev.sink.failures_left = 10_000
    ev.sink.refusal = (grpc.StatusCode.UNIMPLEMENTED, f"no handler for topic {TOPIC}")
    await publish(ev.fed, birth())
    dead = (await status_when(ev.fed, lambda s: s["dead"] == 1))["dead_letters"][0]
    assert dead["last_error"] == REFUSED and dead["receiver_status"] == "UNIMPLEMENTED"
    (failed,) = raw
    assert failed.code() == grpc.StatusCode.FAILED_PRECONDITION
    trailers = dict(failed.trailing_metadata() or ())
    assert trailers[ERROR_KEY] == REFUSED
    ack = bus_pb2.SignedMessage.FromString(trailers[SIGNED_ACK_KEY])
    assert ack.header  # the signed acknowledgement itself, verified by the publisher


async def test_a_subscriber_no_gateway_serves_is_named_with_the_configuration_held(
    ev: EventsFixture,
) -> None:
    # Subscribed here, but registered nowhere (or not yet in this gateway's configuration).
    nobody = "KZ/GOV/MLSPP/nobody"
    provider_dir = str(ev.fed.layout.gateway(PROVIDER_GATEWAY))
    assert zhol(["events", "subscribe", "--gateway", provider_dir, "--subscriber", nobody,
                 "--topic", f"{PUBLISHER}/{TOPIC}"]) == 0  # fmt: skip
    await publish(ev.fed, birth())
    held = ev.fed.provider.conf.current().conf.version
    snapshot = await status_when(
        ev.fed,
        lambda s: any(x["subscriber"] == nobody and x["last_error"] for x in s["subscribers"]),
    )
    (failed,) = [x for x in snapshot["subscribers"] if x["subscriber"] == nobody]
    assert failed["last_error"].endswith(".UnknownSubsystem")
    assert f"configuration version {held} from " in failed["last_message"]
