"""The population registry publishes its events through the transactional outbox.

Store level (no sockets): a birth, a death or an address change enqueues exactly one
event in the same transaction; a refused one enqueues nothing, and a birth whose event
cannot be stored is not registered either. Server level: with ``gateway_address``
pointing at the in-test Events server (tests/integration/test_bus_client.py) the
event arrives, named for the registry's subsystem, purpose and data subject.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from tests.adapter_helpers import date_pb
from tests.integration.test_bus_client import Gateway, events_gateway
from tests.sqlite_rows import rows
from zhol.adapters.bus.outbox import OutboxEntry, read_outbox
from zhol.adapters.population.model import (
    KZ_TIME,
    AddressChange,
    AlreadyRecorded,
    BirthRegistration,
    NotFound,
    Sex,
)
from zhol.adapters.population.seed import seed_database
from zhol.adapters.population.server import (
    EVENT_PURPOSE,
    SUBSYSTEM,
    PopulationServer,
    PopulationSettings,
    load_population_settings,
    serve,
)
from zhol.adapters.population.store import PopulationStore
from zhol.core.clock import FixedClock
from zhol.core.iin import Iin, make_iin
from zhol.population.v1 import population_pb2 as pb
from zhol.population.v1 import population_pb2_grpc as pb_grpc

pytestmark = pytest.mark.integration

TODAY = dt.date(2025, 6, 2)
NOON = dt.datetime(2025, 6, 2, 12, tzinfo=KZ_TIME)
NOON_MS = int(NOON.timestamp() * 1000)
BIRTH = "zhol.population.v1.BirthRegistered"
DEATH = "zhol.population.v1.DeathRegistered"
MOVED = "zhol.population.v1.AddressChanged"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "population.db"
    seed_database(path, 150, seed=7)
    return path


@pytest.fixture
def store(db: Path) -> Iterator[PopulationStore]:
    opened = PopulationStore.open(db, FixedClock(NOON_MS))
    yield opened
    opened.close()


def events(db: Path) -> list[OutboxEntry]:
    conn = sqlite3.connect(db)
    try:
        return read_outbox(conn)
    finally:
        conn.close()


def a_mother(db: Path) -> Iin:
    ((iin,),) = rows(
        db,
        "SELECT p.iin FROM persons p JOIN addresses a ON a.iin = p.iin AND a.valid_to IS NULL"
        " WHERE p.sex = 'F' AND p.death_date IS NULL AND p.birth_date BETWEEN ? AND ?"
        " ORDER BY p.iin LIMIT 1",
        "1975-01-01", "2000-12-31",
    )
    return Iin.parse(iin)


def a_man(db: Path) -> Iin:
    ((iin,),) = rows(
        db,
        "SELECT iin FROM persons WHERE sex = 'M' AND death_date IS NULL"
        " AND birth_date < '1990-01-01' ORDER BY iin LIMIT 1",
    )
    return Iin.parse(iin)


def a_birth(mother: Iin, father: Iin | None = None) -> BirthRegistration:
    return BirthRegistration(
        mother=mother, father=father, last_name="Akhmetova", first_name="Aruzhan",
        patronymic="Nurlanovna", sex=Sex.FEMALE, birth_date=TODAY - dt.timedelta(days=3),
    )


def test_a_birth_enqueues_one_birth_registered(db: Path, store: PopulationStore) -> None:
    mother, father = a_mother(db), a_man(db)
    registered = store.register_birth(a_birth(mother, father))
    (event,) = events(db)
    assert event.topic == BIRTH
    assert event.data_subject == registered.child.iin.value
    assert event.occurred_at_ms == NOON_MS
    assert event.published_at_ms is None
    assert pb.BirthRegistered.FromString(event.payload) == pb.BirthRegistered(
        child_iin=registered.child.iin.value,
        mother_iin=mother.value,
        father_iin=father.value,
        birth_date=date_pb(TODAY - dt.timedelta(days=3)),
        act_id=registered.act.act_id,
    )
    # Identifiers and facts only: no name travels in the event.
    assert b"Aruzhan" not in event.payload and b"Akhmetova" not in event.payload


def test_a_birth_without_a_father_names_none(db: Path, store: PopulationStore) -> None:
    store.register_birth(a_birth(a_mother(db)))
    (event,) = events(db)
    assert pb.BirthRegistered.FromString(event.payload).father_iin == ""


def test_refused_acts_enqueue_nothing(db: Path, store: PopulationStore) -> None:
    mother = a_mother(db)
    store.register_birth(a_birth(mother))
    before = events(db)
    with pytest.raises(AlreadyRecorded):
        store.register_birth(a_birth(mother))
    unknown = make_iin(dt.date(1990, 3, 3), True, 9123)
    assert unknown is not None
    with pytest.raises(NotFound):
        store.register_birth(a_birth(unknown))
    with pytest.raises(NotFound):
        store.register_death(unknown, TODAY)
    with pytest.raises(NotFound):
        store.change_address(unknown, AddressChange("R", "D", "L", "S", "1", ""))
    assert events(db) == before


def test_a_birth_whose_event_cannot_be_stored_is_not_registered(
    db: Path, store: PopulationStore
) -> None:
    persons = rows(db, "SELECT count(*) FROM persons")
    acts = rows(db, "SELECT count(*) FROM civil_acts")
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE bus_outbox")
    conn.close()
    with pytest.raises(sqlite3.OperationalError):
        store.register_birth(a_birth(a_mother(db)))
    assert rows(db, "SELECT count(*) FROM persons") == persons
    assert rows(db, "SELECT count(*) FROM civil_acts") == acts


def test_a_death_and_a_move_enqueue_their_events(db: Path, store: PopulationStore) -> None:
    man = a_man(db)
    mother = a_mother(db)
    store.change_address(
        mother, AddressChange("Astana city", "Yesil district", "Astana", "Mangilik El", "8", "12")
    )
    act = store.register_death(man, TODAY - dt.timedelta(days=1))
    moved, died = events(db)
    assert (moved.topic, moved.data_subject) == (MOVED, mother.value)
    assert pb.AddressChanged.FromString(moved.payload) == pb.AddressChanged(
        iin=mother.value, changed_on=date_pb(TODAY)
    )
    assert (died.topic, died.data_subject) == (DEATH, man.value)
    assert pb.DeathRegistered.FromString(died.payload) == pb.DeathRegistered(
        iin=man.value, death_date=date_pb(TODAY - dt.timedelta(days=1)), act_id=act.act_id
    )
    with pytest.raises(AlreadyRecorded):
        store.register_death(man, TODAY)
    assert len(events(db)) == 2


def test_settings_name_the_gateway_and_subsystem(tmp_path: Path) -> None:
    settings = load_population_settings(
        None, overrides={"db_path": tmp_path / "p.db"},
        environ={"ZHOL_POPULATION_GATEWAY_ADDRESS": "127.0.0.1:7001"},
    )
    assert settings.gateway_address == "127.0.0.1:7001"
    assert settings.subsystem == SUBSYSTEM == "KZ/GOV/MJ/population"
    assert PopulationSettings(db_path=tmp_path / "p.db").gateway_address == ""
    with pytest.raises(ValueError):
        PopulationSettings(db_path=tmp_path / "p.db", gateway_address="nowhere")


# -- over gRPC, with the publisher running -------------------------------------------------


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    async with events_gateway() as running:
        yield running


@pytest.fixture
async def connected(db: Path, gateway: Gateway) -> AsyncIterator[PopulationServer]:
    settings = PopulationSettings(db_path=db, gateway_address=gateway.address)
    running = await serve(settings, clock=FixedClock(NOON_MS))
    try:
        yield running
    finally:
        await running.stop(0)


async def test_a_registered_birth_reaches_the_gateway(
    db: Path, gateway: Gateway, connected: PopulationServer
) -> None:
    mother = a_mother(db)
    request = pb.RegisterBirthRequest(
        mother_iin=mother.value, last_name="Omarova", first_name="Tomiris",
        sex=pb.SEX_FEMALE, birth_date=date_pb(TODAY),
    )
    async with grpc.aio.insecure_channel(connected.address) as channel:
        stub = pb_grpc.PopulationRegistryStub(channel)
        registered = await stub.RegisterBirth(request)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.RegisterBirth(request)  # refused: no second event
        assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    await gateway.events.wait_for(1)
    ((event_id, published),) = gateway.events.queued.items()
    assert published.topic == BIRTH
    assert published.data_subject == registered.child.iin
    event = pb.BirthRegistered.FromString(published.payload)
    assert (event.child_iin, event.mother_iin, event.act_id) == (
        registered.child.iin, mother.value, registered.act.act_id
    )
    _, metadata = gateway.events.calls[0]
    assert metadata["zhol-client"] == SUBSYSTEM
    assert metadata["zhol-purpose"] == EVENT_PURPOSE
    assert metadata["zhol-data-subject"] == registered.child.iin
    assert connected.publisher is not None
    while await connected.publisher.pending():
        await asyncio.sleep(0.01)
    (entry,) = events(db)
    assert entry.event_id == event_id and entry.published_at_ms == NOON_MS


async def test_without_a_gateway_events_wait_in_the_outbox(db: Path) -> None:
    running = await serve(PopulationSettings(db_path=db), clock=FixedClock(NOON_MS))
    try:
        assert running.publisher is None
        async with grpc.aio.insecure_channel(running.address) as channel:
            stub = pb_grpc.PopulationRegistryStub(channel)
            await stub.RegisterDeath(
                pb.RegisterDeathRequest(iin=a_man(db).value, death_date=date_pb(TODAY))
            )
    finally:
        await running.stop(0)
    (entry,) = events(db)
    assert entry.topic == DEATH and entry.published_at_ms is None

