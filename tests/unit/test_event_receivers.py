"""Event receivers: which one takes an event, what a refusal keeps of the receiver's
words, and the outbox's failure columns on an events.db made before them (no sockets)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from zhol.core.errors import ZholError
from zhol.core.ids import SubsystemId
from zhol.gateway.eventstore import (
    AttemptFailure,
    Delivery,
    EventStore,
    read_status,
    requeue_dead,
)
from zhol.gateway.localconf import IsEndpoint, LocalConf, LocalConfStore, SinkRoute
from zhol.gateway.refusal import MAX_MESSAGE_CHARS, Refusal, clean_message, status_name

PENSION = SubsystemId.parse("KZ/GOV/MLSPP/pension")
POPULATION = SubsystemId.parse("KZ/GOV/MJ/population")
EDUCATION = SubsystemId.parse("KZ/GOV/MON/education")
BIRTH = "zhol.population.v1.BirthRegistered"
DEATH = "zhol.population.v1.DeathRegistered"


def test_the_most_specific_receiver_takes_the_event() -> None:
    both, topic, publisher, default = (IsEndpoint(f"is:{n}") for n in (1, 2, 3, 4))
    conf = LocalConf(
        {}, frozenset(), event_sinks={PENSION: default},
        event_routes={
            (PENSION, str(POPULATION), BIRTH): both,
            (PENSION, "", BIRTH): topic,
            (PENSION, str(POPULATION), ""): publisher,
        },
    )  # fmt: skip
    assert conf.event_sink(PENSION, POPULATION, BIRTH) == both
    assert conf.event_sink(PENSION, EDUCATION, BIRTH) == topic
    assert conf.event_sink(PENSION, POPULATION, DEATH) == publisher
    assert conf.event_sink(PENSION, EDUCATION, DEATH) == default
    assert conf.event_sink(PENSION) == default
    # A topic's receiver comes before a publisher's.
    del conf.event_routes[(PENSION, str(POPULATION), BIRTH)]
    assert conf.event_sink(PENSION, POPULATION, BIRTH) == topic


def test_routes_are_stored_listed_and_removed(tmp_path: Path) -> None:
    store = LocalConfStore(tmp_path / "local.db")
    with contextlib.closing(store):
        store.set_event_sink(PENSION, "is:1")
        store.set_event_route(SinkRoute(PENSION, POPULATION, ""), "is:2")
        store.set_event_route(SinkRoute(PENSION, None, BIRTH), "is:3", "plaintext")
        assert [(str(r), e.address) for r, e in store.event_routes()] == [
            (f"{PENSION} [*/{BIRTH}]", "is:3"),
            (f"{PENSION} [{POPULATION}/*]", "is:2"),
        ]
        assert store.current().event_sink(PENSION, POPULATION, BIRTH).address == "is:3"
        assert store.remove_event_route(SinkRoute(PENSION, None, BIRTH)) == 1
        assert store.current().event_sink(PENSION, POPULATION, BIRTH).address == "is:2"
        assert store.remove_event_route(SinkRoute(PENSION, None, BIRTH)) == 0


def test_a_receivers_message_is_capped_one_line_and_names_no_one() -> None:
    cleaned = clean_message("no handler\n\tfor 850314401236\x00" + "x" * 1000)
    assert cleaned.startswith("no handler for [redacted] xxx")
    assert len(cleaned) == MAX_MESSAGE_CHARS and cleaned.endswith("...")
    assert clean_message("  short  ") == "short"


def test_only_a_refusal_retrying_cannot_change_is_permanent() -> None:
    assert Refusal(12, "").permanent and Refusal(3, "").permanent  # UNIMPLEMENTED, INVALID_ARGUMENT
    assert not Refusal(9, "").permanent and not Refusal(5, "").permanent
    assert str(Refusal(9, "busy")) == "FAILED_PRECONDITION: busy"
    assert status_name(99) == "99"


# The outbox as created before the failure columns existed.
OLD_OUTBOX = """
CREATE TABLE outbox (
    delivery_id TEXT PRIMARY KEY, event_id TEXT NOT NULL, topic TEXT NOT NULL,
    publisher TEXT NOT NULL, subscriber TEXT NOT NULL, data_subject TEXT NOT NULL,
    user_id TEXT NOT NULL, purpose TEXT NOT NULL, payload BLOB NOT NULL,
    occurred_at_ms INTEGER NOT NULL, queued_at_ms INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at_ms INTEGER NOT NULL,
    last_error TEXT NOT NULL DEFAULT '', delivered_at_ms INTEGER,
    UNIQUE (event_id, subscriber)) STRICT;
INSERT INTO outbox VALUES ('d1', 'e1', 'T', 'P', 'KZ/GOV/MLSPP/pension', '', 'u', 'p', x'',
    0, 0, 'dead', 12, 0, 'Server.ServerProxy.ServiceFailed', NULL);
"""


def _old_events_db(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(OLD_OUTBOX)


def test_status_reads_an_outbox_made_before_the_failure_columns(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    _old_events_db(path)
    with contextlib.closing(sqlite3.connect(path)) as db:
        status = read_status(db, 1000)
    assert status.dead_letters[0]["last_error"] == "Server.ServerProxy.ServiceFailed"
    assert status.dead_letters[0]["receiver_status"] == ""
    assert status.subscribers[0]["dead"] == 1


async def test_an_old_outbox_gains_the_columns_and_keeps_counting(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    _old_events_db(path)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("UPDATE outbox SET state = 'pending', attempts = 2")
    refused = AttemptFailure("Server.ServerProxy.ReceiverRefused", "no handler", 9)
    store = EventStore(path)
    store.open()
    try:
        assert await store.mark_failed("d1", refused, 5, max_attempts=12) is False
        (due,) = await store.due(10**12, 10)
        assert isinstance(due, Delivery) and due.attempts == 3
        permanent = AttemptFailure("Server.ServerProxy.ReceiverRefused", "no", 12, True)
        assert await store.mark_failed("d1", permanent, 6, max_attempts=12) is True
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
            dead = read_status(db, 10).dead_letters[0]
            assert (dead["attempts"], dead["receiver_status"], dead["last_attempt_at_ms"]) == (
                4, "UNIMPLEMENTED", 6,
            )
            assert requeue_dead(db, 0) == 1
        # A re-queued dead letter has a fresh budget, and its attempts stay counted.
        assert await store.mark_failed("d1", refused, 7, max_attempts=2) is False
        (due,) = await store.due(10**12, 10)
        assert due.attempts == 5
    finally:
        store.close()


@pytest.mark.parametrize("route", [SinkRoute(PENSION, None, "not a topic")])
def test_a_malformed_topic_route_is_refused(tmp_path: Path, route: SinkRoute) -> None:
    with contextlib.closing(LocalConfStore(tmp_path / "local.db")) as store:
        with pytest.raises(ZholError) as caught:
            store.set_event_route(route, "is:1")
        assert caught.value.code.name == "InvalidIdentifier"
        assert store.event_routes() == []
