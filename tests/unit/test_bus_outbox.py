"""The transactional outbox's pure parts on temporary SQLite files (no sockets).

Publishing through a gateway (retries, backoff, restarts) is tested against a real
gRPC server in tests/integration/test_bus_client.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from zhol.adapters.bus.client import BusClient, BusIdentity
from zhol.adapters.bus.outbox import (
    MAX_BACKOFF_MS,
    OUTBOX_SCHEMA,
    OutboxPublisher,
    backoff_ms,
    connect_default,
    enqueue_event,
    ensure_outbox,
    read_outbox,
)
from zhol.core.clock import FixedClock
from zhol.core.iin import make_iin
from zhol.population.v1 import population_pb2 as pb

TOPIC = "zhol.population.v1.BirthRegistered"


def valid_iin(yymmdd: str) -> str:
    """A valid IIN (check digit) of a girl born on 20YY-MM-DD."""
    day = dt.date(2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:6]))
    for serial in range(1, 100):
        iin = make_iin(day, True, serial)
        if iin is not None:
            return iin.value
    raise AssertionError("no IIN")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "agency.db"
    conn = connect_default(path)
    conn.execute(OUTBOX_SCHEMA)
    conn.execute("CREATE TABLE decisions (iin TEXT PRIMARY KEY)")
    conn.close()
    return path


@pytest.fixture
def conn(db: Path) -> Iterator[sqlite3.Connection]:
    opened = connect_default(db)
    yield opened
    opened.close()


def birth(child: str, mother: str = "", act: str = "MJ-0000000001") -> pb.BirthRegistered:
    return pb.BirthRegistered(
        child_iin=child, mother_iin=mother, birth_date=pb.Date(year=2025, month=6, day=2),
        act_id=act,
    )


def decide(conn: sqlite3.Connection, iin: str, occurred_at_ms: int = 1_000) -> str:
    """An agency's write: a decision and its event in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("INSERT INTO decisions VALUES (?)", (iin,))
        event_id = enqueue_event(
            conn, TOPIC, birth(iin), data_subject=iin, occurred_at_ms=occurred_at_ms
        )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return event_id


def test_backoff_starts_at_200_ms_doubles_and_caps_at_30_s() -> None:
    assert [backoff_ms(n) for n in range(0, 9)] == [0, 200, 400, 800, 1600, 3200, 6400,
                                                    12800, 25600]
    assert backoff_ms(9) == MAX_BACKOFF_MS == 30_000
    assert backoff_ms(10_000) == MAX_BACKOFF_MS


def test_an_event_is_stored_with_the_decision(conn: sqlite3.Connection) -> None:
    iin = valid_iin("250602")
    event_id = decide(conn, iin, occurred_at_ms=1234)
    assert uuid.UUID(event_id).version == 4
    (entry,) = read_outbox(conn)
    assert entry.event_id == event_id
    assert entry.topic == TOPIC
    assert pb.BirthRegistered.FromString(entry.payload) == birth(iin)
    assert entry.data_subject == iin
    assert (entry.occurred_at_ms, entry.enqueued_at_ms) == (1234, 1234)
    assert entry.published_at_ms is None
    assert (entry.attempts, entry.next_attempt_at_ms, entry.last_error) == (0, 0, "")


def test_a_rolled_back_decision_leaves_no_event(conn: sqlite3.Connection) -> None:
    iin = valid_iin("250602")
    decide(conn, iin)
    with pytest.raises(sqlite3.IntegrityError):
        decide(conn, iin)  # the decision exists: the transaction rolls back, event too
    assert len(read_outbox(conn)) == 1
    assert conn.execute("SELECT count(*) FROM decisions").fetchone() == (1,)


def test_enqueue_never_commits(db: Path, conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    enqueue_event(conn, TOPIC, birth(""), data_subject="", occurred_at_ms=1)
    assert conn.in_transaction
    other = connect_default(db)
    try:
        assert read_outbox(other) == []  # not visible before the caller commits
        conn.execute("ROLLBACK")
        assert read_outbox(other) == []
    finally:
        other.close()


def test_enqueue_outside_a_transaction_is_refused(conn: sqlite3.Connection) -> None:
    with pytest.raises(RuntimeError):
        enqueue_event(conn, TOPIC, birth(""), data_subject="", occurred_at_ms=1)
    assert read_outbox(conn) == []


def test_the_topic_must_be_the_payloads_message_name(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    with pytest.raises(ValueError):
        enqueue_event(
            conn, "zhol.population.v1.DeathRegistered", birth(""), data_subject="",
            occurred_at_ms=1,
        )
    with pytest.raises(ValueError):
        enqueue_event(conn, TOPIC, birth(""), data_subject="12345", occurred_at_ms=1)
    conn.execute("ROLLBACK")
    assert read_outbox(conn) == []


def test_events_are_read_in_enqueue_order(conn: sqlite3.Connection) -> None:
    ids = [decide(conn, valid_iin(f"2506{day:02d}"), occurred_at_ms=10 - day)
           for day in range(1, 8)]
    assert [entry.event_id for entry in read_outbox(conn)] == ids
    conn.execute("UPDATE bus_outbox SET published_at_ms = 5 WHERE event_id = ?", (ids[2],))
    assert [e.event_id for e in read_outbox(conn, pending_only=True)] == ids[:2] + ids[3:]


def test_the_schema_is_one_statement_and_idempotent(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db")
    try:
        conn.execute(OUTBOX_SCHEMA)  # execute() takes a single statement only
        conn.executescript(OUTBOX_SCHEMA)
        ensure_outbox(conn)
        ensure_outbox(conn)
        columns = [row[1] for row in conn.execute("PRAGMA table_info(bus_outbox)")]
        assert columns == [
            "event_id", "topic", "payload", "data_subject", "occurred_at_ms",
            "enqueued_at_ms", "published_at_ms", "attempts", "next_attempt_at_ms",
            "last_error",
        ]
    finally:
        conn.close()


async def test_a_publisher_needs_an_existing_database(tmp_path: Path) -> None:
    bus = BusClient(BusIdentity("127.0.0.1:1", "KZ/GOV/MJ/population"))
    with pytest.raises(FileNotFoundError):
        OutboxPublisher(tmp_path / "none.db", bus, purpose="p", clock=FixedClock())
    assert not (tmp_path / "none.db").exists()
    with pytest.raises(ValueError):
        OutboxPublisher(tmp_path / "none.db", bus, purpose=" ", clock=FixedClock())


async def test_a_publisher_counts_pending_events(db: Path, conn: sqlite3.Connection) -> None:
    decide(conn, valid_iin("250601"))
    decide(conn, valid_iin("250602"))
    publisher = OutboxPublisher(
        db, BusClient(BusIdentity("127.0.0.1:1", "KZ/GOV/MJ/population")),
        purpose="civil-status event notification", clock=FixedClock(),
    )
    try:
        publisher.notify()  # before start: nothing to wake, no error
        assert await publisher.pending() == 2
    finally:
        await publisher.stop()
        await publisher.stop()  # idempotent
    with pytest.raises(RuntimeError):
        await publisher.publish_pending()
    await asyncio.sleep(0)
