"""The adapter-side bus library over real gRPC on 127.0.0.1 (ephemeral ports).

- ``BusClient`` and ``PopulationReader`` against a real population registry server:
  pointed straight at the adapter there is no gateway, so a refusal carries no
  ``zhol-error`` (the provider itself answered).
- ``OutboxPublisher`` against ``EventsGateway``, a small in-test server implementing
  ``zhol.bus.v1.Events`` that can fail its first calls and records what it queued
  (publishing the same event id twice queues nothing new, as the gateway does).
- ``EventSinkServicer`` called over real gRPC with crafted deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from tests.sqlite_rows import one
from tests.waiting import until
from zhol.adapters.bus.client import BusCallError, BusClient, BusIdentity
from zhol.adapters.bus.inbox import INBOX_SCHEMA, Apply, EventRejected, EventSinkServicer
from zhol.adapters.bus.outbox import (
    OUTBOX_SCHEMA,
    OutboxPublisher,
    connect_default,
    enqueue_event,
    read_outbox,
)
from zhol.adapters.bus.population import PopulationReader
from zhol.adapters.population.model import KZ_TIME
from zhol.adapters.population.seed import seed_database
from zhol.adapters.population.server import PopulationServer, PopulationSettings, serve
from zhol.bus.v1 import bus_pb2, bus_pb2_grpc
from zhol.cli.ports import free_port
from zhol.core.clock import FixedClock
from zhol.core.iin import make_iin
from zhol.core.metadata import ERROR_ID_KEY, ERROR_KEY
from zhol.population.v1 import population_pb2 as pb

pytestmark = pytest.mark.integration

PENSION = "KZ/GOV/MLSPP/pension"
POPULATION = "KZ/GOV/MJ/population"
PURPOSE = "civil-status event notification"
NOON = dt.datetime(2025, 6, 2, 12, tzinfo=KZ_TIME)
NOON_MS = int(NOON.timestamp() * 1000)


# -- an in-test zhol.bus.v1.Events server (what our gateway's IS side offers) --------------


class EventsGateway(bus_pb2_grpc.EventsServicer):
    """Queues each event id once; fails the first ``fail_first`` calls with ``failure``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str]]] = []  # (event_id, metadata) per call
        self.queued: dict[str, bus_pb2.PublishRequest] = {}  # event_id -> first request
        self.fail_first = 0
        self.failure = grpc.StatusCode.UNAVAILABLE
        self.refused_topics: set[str] = set()
        self.arrived = asyncio.Event()

    async def Publish(self, request: bus_pb2.PublishRequest,
                      context: grpc.aio.ServicerContext) -> bus_pb2.PublishResponse:
        metadata = {key: value for key, value in context.invocation_metadata() or ()}
        self.calls.append((request.event_id, metadata))
        if self.fail_first > 0:
            self.fail_first -= 1
            await context.abort(self.failure, "gateway busy")
        if request.topic in self.refused_topics:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED, "topic not allowed",
                ((ERROR_KEY, "Server.ServerProxy.AccessDenied"), (ERROR_ID_KEY, "err-1")),
            )
        self.queued.setdefault(request.event_id, request)
        self.arrived.set()
        return bus_pb2.PublishResponse(event_id=request.event_id, subscribers=[PENSION])

    def call_ids(self) -> list[str]:
        return [event_id for event_id, _ in self.calls]

    async def wait_for(self, count: int, timeout: float = 3.0) -> None:
        async def reached() -> None:
            while len(self.queued) < count:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(reached(), timeout)


@dataclass
class Gateway:
    events: EventsGateway
    address: str


@contextlib.asynccontextmanager
async def events_gateway() -> AsyncIterator[Gateway]:
    """An ``EventsGateway`` serving on an ephemeral loopback port."""
    events = EventsGateway()
    server = grpc.aio.server()
    bus_pb2_grpc.add_EventsServicer_to_server(events, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield Gateway(events, f"127.0.0.1:{port}")
    finally:
        await server.stop(0)


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    async with events_gateway() as running:
        yield running


# -- the population registry, as a provider reached "through the bus" ------------------------


@dataclass(frozen=True)
class Population:
    running: PopulationServer
    db: Path

    def one(self, sql: str, *args: object) -> tuple:
        return one(self.db, sql, *args)


@pytest.fixture
async def population(tmp_path: Path) -> AsyncIterator[Population]:
    db = tmp_path / "population.db"
    seed_database(db, 120, seed=5)
    running = await serve(PopulationSettings(db_path=db), clock=FixedClock(NOON_MS))
    try:
        yield Population(running, db)
    finally:
        await running.stop(0)


@pytest.fixture
async def bus(population: Population) -> AsyncIterator[BusClient]:
    client = BusClient(BusIdentity(population.running.address, PENSION))
    try:
        yield client
    finally:
        await client.close()


def unknown_iin() -> str:
    iin = make_iin(dt.date(1901, 1, 1), False, 1) or make_iin(dt.date(1901, 1, 1), False, 2)
    assert iin is not None
    return iin.value


async def test_reader_reads_a_person_address_and_family(
    population: Population, bus: BusClient
) -> None:
    reader = PopulationReader(bus)
    (mother,) = population.one(
        "SELECT f.iin FROM family_links f JOIN addresses a ON a.iin = f.iin"
        " AND a.valid_to IS NULL WHERE f.relation = 'child' ORDER BY f.iin LIMIT 1"
    )
    person = await reader.get_person(mother, purpose="childbirth benefit")
    assert person.iin == mother
    (last_name,) = population.one("SELECT last_name FROM persons WHERE iin = ?", mother)
    assert person.last_name == last_name
    address = await reader.get_address(mother, purpose="childbirth benefit")
    (district,) = population.one(
        "SELECT district FROM addresses WHERE iin = ? AND valid_to IS NULL", mother
    )
    assert address.district == district
    family = await reader.get_family(mother, purpose="childbirth benefit")
    assert family.iin == mother and len(family.children) >= 1


async def test_reader_pages_through_persons(population: Population, bus: BusClient) -> None:
    reader = PopulationReader(bus)
    seen: list[str] = []
    token = ""
    while True:
        page = await reader.list_persons(50, token, purpose="retirement age check")
        seen += [p.iin for p in page.persons]
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(seen)
    assert len(seen) == population.one("SELECT count(*) FROM persons")[0]


async def test_a_providers_refusal_has_no_bus_error(bus: BusClient) -> None:
    reader = PopulationReader(bus)
    with pytest.raises(BusCallError) as caught:
        await reader.get_person(unknown_iin(), purpose="childbirth benefit")
    assert caught.value.status == grpc.StatusCode.NOT_FOUND
    assert caught.value.zhol_error is None and caught.value.from_provider
    assert caught.value.error_id is None
    with pytest.raises(BusCallError) as caught:
        await reader.get_address("123", purpose="childbirth benefit")
    assert caught.value.status == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_bus_error_carries_its_code_and_id(gateway: Gateway) -> None:
    gateway.events.refused_topics.add("t")
    client = BusClient(BusIdentity(gateway.address, POPULATION))
    try:
        with pytest.raises(BusCallError) as caught:
            await client.call(
                "/zhol.bus.v1.Events/Publish", bus_pb2.PublishRequest(topic="t"),
                bus_pb2.PublishResponse, purpose=PURPOSE,
            )
    finally:
        await client.close()
    error = caught.value
    assert error.status == grpc.StatusCode.PERMISSION_DENIED
    assert error.zhol_error == "Server.ServerProxy.AccessDenied" and not error.from_provider
    assert error.error_id == "err-1"


async def test_the_call_metadata_names_client_user_purpose_and_subject(
    gateway: Gateway,
) -> None:
    identity = BusIdentity(gateway.address, POPULATION, user_id="EE:officer-17")
    client = BusClient(identity)
    request = bus_pb2.PublishRequest(topic="x", event_id="e-1")
    try:
        await client.call("/zhol.bus.v1.Events/Publish", request, bus_pb2.PublishResponse,
                          purpose=PURPOSE, data_subject="250602600019")
        request.event_id = "e-2"
        reply = await client.call_with_message_id(
            "/zhol.bus.v1.Events/Publish", request, bus_pb2.PublishResponse, purpose=PURPOSE
        )
        assert reply.response.event_id == "e-2"
        assert reply.message_id is None  # no gateway on the way
        await client.close()
        request.event_id = "e-3"  # a closed client opens a new channel on the next call
        await client.call("/zhol.bus.v1.Events/Publish", request, bus_pb2.PublishResponse,
                          purpose=PURPOSE)
        with pytest.raises(ValueError):
            await client.call("/zhol.bus.v1.Events/Publish", request,
                              bus_pb2.PublishResponse, purpose=" ")
        with pytest.raises(ValueError):
            await client.call("/zhol.bus.v1.Events/Publish", request,
                              bus_pb2.PublishResponse, purpose="пенсия")
    finally:
        await client.close()
    first, second, third = (md for _, md in gateway.events.calls)
    assert first["zhol-client"] == POPULATION
    assert first["zhol-user-id"] == "EE:officer-17"
    assert first["zhol-purpose"] == PURPOSE
    assert first["zhol-data-subject"] == "250602600019"
    assert "zhol-data-subject" not in second, "sent only when the call is about someone"
    assert third["zhol-client"] == POPULATION


async def test_an_unreachable_gateway_is_unavailable() -> None:
    client = BusClient(BusIdentity(f"127.0.0.1:{free_port()}", PENSION))
    try:
        with pytest.raises(BusCallError) as caught:
            await PopulationReader(client).get_person("250602600019", purpose="p")
    finally:
        await client.close()
    assert caught.value.status == grpc.StatusCode.UNAVAILABLE


# -- the outbox publisher ------------------------------------------------------------------


@pytest.fixture
def agency_db(tmp_path: Path) -> Path:
    path = tmp_path / "agency.db"
    conn = connect_default(path)
    conn.execute(OUTBOX_SCHEMA)
    conn.close()
    return path


def children(count: int) -> list[str]:
    found = []
    for serial in range(1, 100):
        iin = make_iin(dt.date(2025, 6, 1), True, serial)
        if iin is not None:
            found.append(iin.value)
        if len(found) == count:
            return found
    raise AssertionError("not enough IINs")


def enqueue_births(db: Path, iins: list[str]) -> list[str]:
    conn = connect_default(db)
    try:
        ids = []
        for iin in iins:
            conn.execute("BEGIN IMMEDIATE")
            event = pb.BirthRegistered(child_iin=iin, act_id=f"MJ-{iin}")
            ids.append(enqueue_event(conn, event.DESCRIPTOR.full_name, event,
                                     data_subject=iin, occurred_at_ms=NOON_MS - 1000))
            conn.execute("COMMIT")
        return ids
    finally:
        conn.close()


def outbox(db: Path) -> list:
    conn = sqlite3.connect(db)
    try:
        return read_outbox(conn)
    finally:
        conn.close()


@pytest.fixture
async def publisher_bus(gateway: Gateway) -> AsyncIterator[BusClient]:
    client = BusClient(BusIdentity(gateway.address, POPULATION))
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOON_MS)


@pytest.fixture
async def publisher(
    agency_db: Path, publisher_bus: BusClient, clock: FixedClock
) -> AsyncIterator[OutboxPublisher]:
    opened = OutboxPublisher(agency_db, publisher_bus, purpose=PURPOSE, clock=clock)
    try:
        yield opened
    finally:
        await opened.stop()


async def test_pending_events_are_published_in_order_and_marked(
    agency_db: Path, gateway: Gateway, publisher: OutboxPublisher
) -> None:
    iins = children(3)
    ids = enqueue_births(agency_db, iins)
    assert await publisher.publish_pending() == 3
    assert gateway.events.call_ids() == ids
    for event_id, iin in zip(ids, iins, strict=True):
        request = gateway.events.queued[event_id]
        assert request.topic == "zhol.population.v1.BirthRegistered"
        assert pb.BirthRegistered.FromString(request.payload).child_iin == iin
        assert request.data_subject == iin
        assert request.occurred_at_unix_ms == NOON_MS - 1000
    _, metadata = gateway.events.calls[0]
    assert metadata["zhol-client"] == POPULATION
    assert metadata["zhol-purpose"] == PURPOSE
    assert metadata["zhol-data-subject"] == iins[0]
    assert [(e.published_at_ms, e.attempts) for e in outbox(agency_db)] == [(NOON_MS, 0)] * 3
    assert await publisher.publish_pending() == 0
    assert len(gateway.events.calls) == 3
    assert await publisher.pending() == 0


async def test_failures_back_off_from_200_ms_doubling(
    agency_db: Path, gateway: Gateway, publisher: OutboxPublisher, clock: FixedClock
) -> None:
    ids = enqueue_births(agency_db, children(3))
    gateway.events.fail_first = 3
    for attempts, delay_ms in ((1, 200), (2, 400), (3, 800)):
        assert await publisher.publish_pending() == 0
        first, *rest = outbox(agency_db)
        assert first.attempts == attempts
        assert first.next_attempt_at_ms == clock.now_ms() + delay_ms
        assert first.last_error == "UNAVAILABLE"
        assert [e.attempts for e in rest] == [0, 0], "an unreachable gateway stops the pass"
        assert await publisher.publish_pending() == 0  # not due yet: no call at all
        assert len(gateway.events.calls) == attempts
        clock.advance(delay_ms / 1000 - 0.001)
        assert await publisher.publish_pending() == 0
        assert len(gateway.events.calls) == attempts
        clock.advance(0.001)
    assert await publisher.publish_pending() == 3
    assert gateway.events.call_ids() == [ids[0]] * 4 + ids[1:]
    assert all(e.published_at_ms == clock.now_ms() for e in outbox(agency_db))
    assert outbox(agency_db)[0].attempts == 3


async def test_a_refused_event_does_not_hold_back_the_others(
    agency_db: Path, gateway: Gateway, publisher: OutboxPublisher, clock: FixedClock
) -> None:
    ids = enqueue_births(agency_db, children(2))
    conn = connect_default(agency_db)
    conn.execute("BEGIN IMMEDIATE")
    death = pb.DeathRegistered(iin=children(1)[0], act_id="MJ-1")
    refused = enqueue_event(conn, death.DESCRIPTOR.full_name, death, data_subject="",
                            occurred_at_ms=1)
    conn.execute("COMMIT")
    conn.close()
    ids += enqueue_births(agency_db, children(4)[3:])
    gateway.events.refused_topics.add(death.DESCRIPTOR.full_name)
    assert await publisher.publish_pending() == 3
    assert set(gateway.events.queued) == set(ids)
    (entry,) = [e for e in outbox(agency_db) if e.event_id == refused]
    assert entry.published_at_ms is None and entry.attempts == 1
    assert entry.last_error == "PERMISSION_DENIED:Server.ServerProxy.AccessDenied"
    assert entry.next_attempt_at_ms == clock.now_ms() + 200


async def test_notify_wakes_the_background_publisher(
    agency_db: Path, gateway: Gateway, publisher_bus: BusClient, clock: FixedClock
) -> None:
    publisher = OutboxPublisher(
        agency_db, publisher_bus, purpose=PURPOSE, clock=clock, poll_interval=30
    )
    publisher.start()
    try:
        await asyncio.sleep(0.05)  # the first pass found nothing; now it waits 30 s
        (event_id,) = enqueue_births(agency_db, children(1))
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, publisher.notify)  # from another thread, too
        # Well before the 30 s poll: only the wake-up can have published it.
        await gateway.events.wait_for(1, timeout=10)
        assert list(gateway.events.queued) == [event_id]
    finally:
        await publisher.stop()


async def test_the_background_publisher_polls(
    agency_db: Path, gateway: Gateway, publisher_bus: BusClient, clock: FixedClock
) -> None:
    publisher = OutboxPublisher(
        agency_db, publisher_bus, purpose=PURPOSE, clock=clock, poll_interval=0.05
    )
    publisher.start()
    try:
        await asyncio.sleep(0.05)
        enqueue_births(agency_db, children(2))  # nobody calls notify()
        await gateway.events.wait_for(2, timeout=2)
    finally:
        await publisher.stop()


async def test_a_restarted_publisher_sends_what_was_left_with_the_same_ids(
    agency_db: Path, gateway: Gateway, publisher_bus: BusClient, clock: FixedClock
) -> None:
    ids = enqueue_births(agency_db, children(2))
    gateway.events.fail_first = 1_000
    first = OutboxPublisher(agency_db, publisher_bus, purpose=PURPOSE, clock=clock)
    first.start()
    # Stop only once the failed attempt is on record: the gateway sees the call before
    # the publisher has its answer, and a stop in between records no attempt.
    await until(lambda: outbox(agency_db)[0].attempts >= 1, what="a failed attempt recorded")
    await first.stop()
    assert outbox(agency_db)[0].attempts >= 1
    assert all(e.published_at_ms is None for e in outbox(agency_db))
    # A crash after the gateway queued an event but before it was marked published:
    conn = connect_default(agency_db)
    conn.execute("UPDATE bus_outbox SET published_at_ms = NULL")
    conn.close()
    gateway.events.fail_first = 0
    gateway.events.queued[ids[1]] = bus_pb2.PublishRequest(event_id=ids[1])
    # The clock has not moved, yet a new process retries at once.
    second = OutboxPublisher(agency_db, publisher_bus, purpose=PURPOSE, clock=clock)
    second.start()
    try:
        await gateway.events.wait_for(2)

        async def all_published() -> bool:
            return await second.pending() == 0

        await until(all_published, what="everything published")
    finally:
        await second.stop()
    assert set(gateway.events.queued) == set(ids)
    assert set(gateway.events.call_ids()) == set(ids), "the event ids never change"


async def test_after_an_outage_the_events_behind_the_first_follow_at_once(
    agency_db: Path, gateway: Gateway, publisher: OutboxPublisher, clock: FixedClock
) -> None:
    ids = enqueue_births(agency_db, children(4))
    gateway.events.fail_first = 6
    for _ in range(6):
        assert await publisher.publish_pending() == 0
        clock.current_ms = outbox(agency_db)[0].next_attempt_at_ms
    assert outbox(agency_db)[0].attempts == 6
    assert [e.attempts for e in outbox(agency_db)[1:]] == [0, 0, 0]
    assert await publisher.publish_pending() == 4
    assert list(gateway.events.queued) == ids


# -- the event sink over real gRPC ---------------------------------------------------------


@pytest.fixture
def sink_db(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "sink.db"
    conn = connect_default(path)
    conn.execute(INBOX_SCHEMA)
    conn.execute("CREATE TABLE seen (child_iin TEXT PRIMARY KEY)")
    conn.close()
    yield path


async def test_the_event_sink_over_grpc(sink_db: Path) -> None:
    known = set(children(2)[:1])

    async def on_birth(delivery: bus_pb2.EventDelivery) -> Apply:
        child = pb.BirthRegistered.FromString(delivery.payload).child_iin
        if child not in known:
            raise EventRejected(grpc.StatusCode.NOT_FOUND, "unknown child")
        return lambda conn: conn.execute("INSERT INTO seen VALUES (?)", (child,))

    topic = "zhol.population.v1.BirthRegistered"
    sink = EventSinkServicer(sink_db, {topic: on_birth}, FixedClock())
    server = grpc.aio.server()
    bus_pb2_grpc.add_EventSinkServicer_to_server(sink, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()

    def deliver(message_id: str, child: str, topic: str = topic) -> bus_pb2.EventDelivery:
        payload = pb.BirthRegistered(child_iin=child).SerializeToString()
        return bus_pb2.EventDelivery(message_id=message_id, event_id=message_id, topic=topic,
                                     publisher=POPULATION, payload=payload)

    good, unknown = children(2)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = bus_pb2_grpc.EventSinkStub(channel)
            assert await stub.Receive(deliver("m-1", good)) == bus_pb2.EventAck()
            assert await stub.Receive(deliver("m-1", good)) == bus_pb2.EventAck()
            for message, code in (
                (deliver("m-2", unknown), grpc.StatusCode.NOT_FOUND),
                (deliver("m-3", good, "zhol.x.v1.Other"), grpc.StatusCode.UNIMPLEMENTED),
                (deliver("", good), grpc.StatusCode.INVALID_ARGUMENT),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await stub.Receive(message)
                assert caught.value.code() == code
    finally:
        await server.stop(0)
        sink.close()
    conn = sqlite3.connect(sink_db)
    try:
        assert conn.execute("SELECT child_iin FROM seen").fetchall() == [(good,)]
        assert conn.execute("SELECT message_id FROM bus_inbox").fetchall() == [("m-1",)]
    finally:
        conn.close()
