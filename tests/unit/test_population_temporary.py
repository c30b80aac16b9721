"""Population's registration at a place of temporary residence (on temporary SQLite files)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sqlite_rows import rows
from tests.unit.test_population_store import TODAY, a_mother, a_person, clock_on, snapshot
from zhol.adapters.bus.outbox import read_outbox
from zhol.adapters.population.model import AddressChange, InvalidInput, NotAllowed, NotFound
from zhol.adapters.population.seed import seed_database
from zhol.adapters.population.store import PopulationStore
from zhol.core.iin import Iin


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "population.db"
    seed_database(path, 120, seed=11)
    return path


@pytest.fixture
def store(db: Path) -> Iterator[PopulationStore]:
    opened = PopulationStore.open(db, clock_on(TODAY))
    yield opened
    opened.close()


def stay(district: str = "Esil district", **changes: object) -> AddressChange:
    values: dict[str, object] = {
        "region": "Astana city", "district": district, "locality": "Astana",
        "street": "Kabanbay batyr avenue", "building": "53", "apartment": "7",
        "temporary": True,
    }
    values.update(changes)
    return AddressChange(**values)  # type: ignore[arg-type]


def outbox_size(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return len(read_outbox(conn))
    finally:
        conn.close()


def test_a_temporary_registration_stands_beside_the_permanent_address(
    db: Path, store: PopulationStore
) -> None:
    person = a_mother(db)
    permanent = store.get_address(person)
    with pytest.raises(NotFound):
        store.get_address(person, temporary=True)
    events = outbox_size(db)
    recorded = store.change_address(person, stay(until=TODAY + dt.timedelta(days=90)))
    assert (recorded.district, recorded.registered_on, recorded.until) == (
        "Esil district", TODAY, TODAY + dt.timedelta(days=90),
    )
    assert store.get_address(person, temporary=True) == recorded
    assert store.get_address(person) == permanent  # the permanent address stays
    assert store.get_person(person).address == permanent
    assert outbox_size(db) == events  # no AddressChanged: the permanent one did not change
    # a second one replaces the first; the first stays in the history, ended
    second = store.change_address(person, stay("Almaty district"))
    assert store.get_address(person, temporary=True) == second and second.until is None
    assert rows(db, "SELECT district, valid_to FROM temporary_addresses WHERE iin = ?"
                " ORDER BY id", person.value) == [
        ("Esil district", TODAY.isoformat()), ("Almaty district", None),
    ]


def test_a_temporary_registration_ends_after_its_last_day(db: Path) -> None:
    person = a_mother(db)
    first = PopulationStore.open(db, clock_on(TODAY))
    try:
        first.change_address(person, stay(until=TODAY))
        assert first.get_address(person, temporary=True).until == TODAY  # the last day
    finally:
        first.close()
    later = PopulationStore.open(db, clock_on(TODAY + dt.timedelta(days=1)))
    try:
        with pytest.raises(NotFound):
            later.get_address(person, temporary=True)
    finally:
        later.close()


def test_refused_temporary_registrations_change_nothing(db: Path, store: PopulationStore) -> None:
    person = a_mother(db)
    dead = a_person(db, "M", dead=True)
    before = snapshot(db)
    refused: list[tuple[Iin, AddressChange, type[Exception]]] = [
        (person, stay(until=TODAY - dt.timedelta(days=1)), InvalidInput),
        (person, stay(registered_on=TODAY + dt.timedelta(days=1)), InvalidInput),
        (person, stay(temporary=False, until=TODAY), InvalidInput),  # until only if temporary
        (person, stay(region=""), InvalidInput),
        (dead, stay(), NotAllowed),
    ]
    for iin, change, error in refused:
        with pytest.raises(error):
            store.change_address(iin, change)
    assert snapshot(db) == before
