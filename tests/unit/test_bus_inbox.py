"""The inbox: each event takes effect once, refusals change nothing (no sockets).

``EventSinkServicer.handle`` is what ``Receive`` runs; the gRPC mapping (status codes
on a real server) is tested in tests/integration/test_bus_client.py.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from zhol.adapters.bus.inbox import (
    INBOX_SCHEMA,
    Apply,
    EventRejected,
    EventSinkServicer,
    Handler,
    ensure_inbox,
)
from zhol.adapters.bus.outbox import connect_default
from zhol.bus.v1 import bus_pb2
from zhol.core.clock import FixedClock
from zhol.population.v1 import population_pb2 as pb

TOPIC = "zhol.population.v1.BirthRegistered"
PUBLISHER = "KZ/GOV/MJ/population"
CHILD = "250602600019"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """An agency database: one benefit per child (its UNIQUE constraint means "once")."""
    path = tmp_path / "pension.db"
    conn = connect_default(path)
    conn.execute(INBOX_SCHEMA)
    conn.execute(
        "CREATE TABLE benefits (child_iin TEXT NOT NULL UNIQUE, act_id TEXT NOT NULL,"
        " amount INTEGER NOT NULL CHECK (amount > 0))"
    )
    conn.execute("CREATE TABLE notes (text TEXT NOT NULL)")
    conn.close()
    return path


class Pension:
    """Handlers as an agency writes them: read first (async), then return the write."""

    def __init__(self) -> None:
        self.calls = 0
        self.amount = 140_000
        self.reject: EventRejected | None = None
        self.reject_in_apply: EventRejected | None = None
        self.gate: asyncio.Event | None = None

    async def on_birth(self, delivery: bus_pb2.EventDelivery) -> Apply:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.reject is not None:
            raise self.reject
        event = pb.BirthRegistered.FromString(delivery.payload)
        amount = self.amount
        reject_in_apply = self.reject_in_apply

        def apply(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO notes VALUES ('birth seen')")
            if reject_in_apply is not None:
                raise reject_in_apply
            conn.execute(
                "INSERT INTO benefits VALUES (?, ?, ?)", (event.child_iin, event.act_id, amount)
            )

        return apply

    def handlers(self) -> dict[str, Handler]:
        return {TOPIC: self.on_birth}


@pytest.fixture
def pension() -> Pension:
    return Pension()


@pytest.fixture
def sink(db: Path, pension: Pension) -> Iterator[EventSinkServicer]:
    servicer = EventSinkServicer(db, pension.handlers(), FixedClock(5_000))
    yield servicer
    servicer.close()


def delivery(message_id: str = "m-1", event_id: str = "e-1", *, topic: str = TOPIC,
             child: str = CHILD) -> bus_pb2.EventDelivery:
    payload = pb.BirthRegistered(child_iin=child, act_id="MJ-0000000042").SerializeToString()
    return bus_pb2.EventDelivery(
        event_id=event_id, message_id=message_id, topic=topic, publisher=PUBLISHER,
        subscriber="KZ/GOV/MLSPP/pension", data_subject=child, payload=payload,
        occurred_at_unix_ms=1_000, attempt=1,
    )


def snapshot(db: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(db)
    try:
        return {
            table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall())
            for table in ("bus_inbox", "benefits", "notes")
        }
    finally:
        conn.close()


async def rejected(sink: EventSinkServicer, message: bus_pb2.EventDelivery) -> grpc.StatusCode:
    with pytest.raises(EventRejected) as caught:
        await sink.handle(message)
    return caught.value.status


async def test_an_event_is_applied_with_its_inbox_record(
    db: Path, sink: EventSinkServicer
) -> None:
    assert await sink.handle(delivery()) is True
    state = snapshot(db)
    assert state["benefits"] == [(CHILD, "MJ-0000000042", 140_000)]
    assert state["bus_inbox"] == [("m-1", "e-1", TOPIC, PUBLISHER, 5_000)]


async def test_a_redelivery_is_acknowledged_and_does_nothing(
    db: Path, sink: EventSinkServicer, pension: Pension
) -> None:
    await sink.handle(delivery())
    before = snapshot(db)
    assert await sink.handle(delivery()) is False
    assert pension.calls == 1, "a duplicate does not even reach the handler"
    # The same event of the same publisher under another message id is the same event.
    assert await sink.handle(delivery("m-2", "e-1")) is False
    assert pension.calls == 1
    assert snapshot(db) == before


async def test_bad_deliveries_are_refused_and_change_nothing(
    db: Path, sink: EventSinkServicer, pension: Pension
) -> None:
    before = snapshot(db)
    assert await rejected(sink, delivery(message_id="")) == grpc.StatusCode.INVALID_ARGUMENT
    assert await rejected(sink, delivery(topic="")) == grpc.StatusCode.INVALID_ARGUMENT
    unknown = delivery(topic="zhol.population.v1.Unknown")
    assert await rejected(sink, unknown) == grpc.StatusCode.UNIMPLEMENTED
    assert pension.calls == 0
    assert snapshot(db) == before


async def test_a_rejection_writes_nothing_and_a_retry_can_succeed(
    db: Path, sink: EventSinkServicer, pension: Pension
) -> None:
    before = snapshot(db)
    pension.reject = EventRejected(grpc.StatusCode.NOT_FOUND, "unknown child")
    assert await rejected(sink, delivery()) == grpc.StatusCode.NOT_FOUND
    assert snapshot(db) == before
    pension.reject = None
    assert await sink.handle(delivery()) is True  # not recorded as seen: retried and applied
    assert snapshot(db)["benefits"] == [(CHILD, "MJ-0000000042", 140_000)]


async def test_a_rejection_inside_apply_rolls_back_its_writes(
    db: Path, sink: EventSinkServicer, pension: Pension
) -> None:
    before = snapshot(db)
    pension.reject_in_apply = EventRejected(grpc.StatusCode.FAILED_PRECONDITION, "closed")
    assert await rejected(sink, delivery()) == grpc.StatusCode.FAILED_PRECONDITION
    assert snapshot(db) == before  # the note apply wrote first is gone too


async def test_a_decision_that_already_exists_counts_as_done(
    db: Path, sink: EventSinkServicer
) -> None:
    # Another event (another id) already led to this child's benefit.
    assert await sink.handle(delivery("m-1", "e-1")) is True
    before = snapshot(db)
    assert await sink.handle(delivery("m-2", "e-2")) is False
    after = snapshot(db)
    assert after["benefits"] == before["benefits"]
    assert after["notes"] == before["notes"], "the attempt's own writes are rolled back"
    assert ("m-2", "e-2", TOPIC, PUBLISHER, 5_000) in after["bus_inbox"]
    assert await sink.handle(delivery("m-2", "e-2")) is False  # and now a plain duplicate
    assert snapshot(db) == after


async def test_other_integrity_errors_are_bugs_and_write_nothing(
    db: Path, sink: EventSinkServicer, pension: Pension
) -> None:
    before = snapshot(db)
    pension.amount = 0  # violates CHECK (amount > 0): not "already done"
    with pytest.raises(sqlite3.IntegrityError):
        await sink.handle(delivery())
    assert snapshot(db) == before


async def test_concurrent_duplicates_take_effect_once(
    db: Path, sink: EventSinkServicer, pension: Pension
) -> None:
    pension.gate = asyncio.Event()
    first = asyncio.create_task(sink.handle(delivery()))
    second = asyncio.create_task(sink.handle(delivery()))
    while pension.calls < 2:  # both passed the duplicate check before either wrote
        await asyncio.sleep(0.001)
    pension.gate.set()
    results = await asyncio.gather(first, second)
    assert sorted(results) == [False, True]
    state = snapshot(db)
    assert len(state["benefits"]) == 1
    assert len(state["notes"]) == 1
    assert [row[0] for row in state["bus_inbox"]] == ["m-1"]


async def test_many_concurrent_events_all_commit(db: Path, sink: EventSinkServicer) -> None:
    children = [f"2506026{n:05d}" for n in range(40)]
    results = await asyncio.gather(
        *(sink.handle(delivery(f"m-{c}", f"e-{c}", child=c)) for c in children)
    )
    assert all(results)
    assert len(snapshot(db)["benefits"]) == 40


async def test_an_apply_that_ends_the_transaction_is_a_bug(db: Path) -> None:
    async def commits(_delivery: bus_pb2.EventDelivery) -> Apply:
        return lambda conn: conn.execute("COMMIT")

    servicer = EventSinkServicer(db, {TOPIC: commits}, FixedClock())
    try:
        with pytest.raises(RuntimeError):
            await servicer.handle(delivery())
    finally:
        servicer.close()


def test_the_inbox_schema_is_one_statement(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db")
    try:
        conn.execute(INBOX_SCHEMA)
        ensure_inbox(conn)
        columns = [row[1] for row in conn.execute("PRAGMA table_info(bus_inbox)")]
        assert columns == ["message_id", "event_id", "topic", "publisher", "received_at_ms"]
    finally:
        conn.close()


def test_a_sink_needs_an_existing_database(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        EventSinkServicer(tmp_path / "none.db", {}, FixedClock())
    with pytest.raises(ValueError):
        EventRejected(grpc.StatusCode.OK, "fine")
