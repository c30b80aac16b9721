"""A change of name in the population registry (ChangeName): the store on a seeded
temporary SQLite file, and the upgrade of a version 1 file that allows its act."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sqlite_rows import rows
from zhol.adapters.population import schema
from zhol.adapters.population.model import (
    KZ_TIME,
    ActKind,
    AlreadyRecorded,
    InvalidInput,
    NameChange,
    NameChangeReason,
    NotAllowed,
    NotFound,
)
from zhol.adapters.population.seed import seed_database
from zhol.adapters.population.store import PopulationStore
from zhol.core.clock import FixedClock
from zhol.core.iin import Iin, make_iin

TODAY = dt.date(2025, 6, 2)
NOON = int(dt.datetime(2025, 6, 2, 12, tzinfo=KZ_TIME).timestamp() * 1000)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "population.db"
    seed_database(path, 120, seed=5)
    return path


@pytest.fixture
def store(db: Path) -> Iterator[PopulationStore]:
    opened = PopulationStore.open(db, FixedClock(NOON))
    yield opened
    opened.close()


def living(db: Path) -> Iin:
    (iin,) = rows(db, "SELECT min(iin) FROM persons WHERE death_date IS NULL")[0]
    return Iin(iin)


def everything(db: Path) -> list[list[tuple]]:
    return [rows(db, f"SELECT * FROM {t} ORDER BY 1") for t in ("persons", "civil_acts")]


def test_a_new_name_is_registered_with_an_act_that_keeps_the_old_one(
    store: PopulationStore, db: Path
) -> None:
    iin = living(db)
    before = store.get_person(iin)
    changed = store.change_name(
        iin, NameChange("  Seitkali ", before.first_name, "", NameChangeReason.MARRIAGE)
    )
    assert (changed.person.last_name, changed.person.patronymic) == ("Seitkali", "")
    assert changed.person == store.get_person(iin)  # what the registry answers from now on
    assert (changed.person.birth_date, changed.person.address) == (
        before.birth_date, before.address)
    assert (changed.act.kind, changed.act.iin, changed.act.registered_on) == (
        ActKind.NAME_CHANGE, iin, TODAY)
    (kind, details), = rows(db, "SELECT kind, details FROM civil_acts WHERE act_id = ?",
                            changed.act.act_id)
    assert kind == "name_change"
    assert json.loads(details) == {
        "reason": "marriage", "last_name": "Seitkali", "first_name": before.first_name,
        "patronymic": "", "previous_last_name": before.last_name,
        "previous_first_name": before.first_name, "previous_patronymic": before.patronymic,
    }


@pytest.mark.parametrize(("last", "first", "reason", "error"), [
    ("", "Aigerim", NameChangeReason.APPLICATION, InvalidInput),
    ("Omarova", "   ", NameChangeReason.APPLICATION, InvalidInput),
    ("O" * 101, "Aigerim", NameChangeReason.APPLICATION, InvalidInput),
    ("Omar\nova", "Aigerim", NameChangeReason.APPLICATION, InvalidInput),
    ("Omarova", "Aigerim", "marriage", InvalidInput),  # not a NameChangeReason
])
def test_a_bad_name_change_is_refused_and_changes_nothing(
    store: PopulationStore, db: Path, last: str, first: str, reason: object,
    error: type[Exception],
) -> None:
    before = everything(db)
    with pytest.raises(error):
        store.change_name(living(db), NameChange(last, first, "", reason))  # type: ignore[arg-type]
    assert everything(db) == before


def test_unknown_deceased_and_unchanged_names_are_refused(
    store: PopulationStore, db: Path
) -> None:
    names = "SELECT iin, last_name, first_name, patronymic FROM persons ORDER BY iin"
    before = rows(db, names)
    acts = len(rows(db, "SELECT * FROM civil_acts"))
    new = NameChange("Omarova", "Aigerim", "", NameChangeReason.APPLICATION)
    with pytest.raises(NotFound):
        store.change_name(_unknown(db), new)
    iin = living(db)
    store.register_death(iin, TODAY)
    with pytest.raises(NotAllowed):
        store.change_name(iin, new)
    other = living(db)
    same = store.get_person(other)
    with pytest.raises(AlreadyRecorded):
        store.change_name(other, NameChange(
            same.last_name, same.first_name, same.patronymic, NameChangeReason.DIVORCE))
    assert rows(db, names) == before
    assert len(rows(db, "SELECT * FROM civil_acts")) == acts + 1  # only the death act


def _unknown(db: Path) -> Iin:
    """A valid IIN the registry does not hold (a birth date nobody seeded has)."""
    for serial in range(1, 100):
        iin = make_iin(dt.date(1901, 1, 1), False, serial)
        if iin is not None and not rows(db, "SELECT 1 FROM persons WHERE iin = ?", iin.value):
            return iin
    raise AssertionError("no free IIN")


def test_a_version_1_file_is_upgraded_keeping_its_acts(db: Path) -> None:
    old_acts = rows(db, "SELECT * FROM civil_acts ORDER BY act_id")
    conn = sqlite3.connect(db)
    try:  # turn the seeded file back into version 1: the narrower CHECK
        conn.execute("ALTER TABLE civil_acts RENAME TO acts_new")
        conn.execute(schema.CIVIL_ACTS.replace(" OR kind = 'name_change'", ""))
        conn.execute("INSERT INTO civil_acts SELECT * FROM acts_new")
        conn.execute("DROP TABLE acts_new")
        conn.execute("PRAGMA user_version = 1")
        conn.commit()
    finally:
        conn.close()
    store = PopulationStore.open(db, FixedClock(NOON))
    try:
        iin = living(db)
        store.change_name(iin, NameChange("Omarova", "Aigerim", "", NameChangeReason.DIVORCE))
    finally:
        store.close()
    assert rows(db, "PRAGMA user_version") == [(schema.SCHEMA_VERSION,)]
    assert rows(db, "SELECT * FROM civil_acts WHERE kind <> 'name_change' ORDER BY act_id") == (
        old_acts)
    names = {r[1] for r in rows(db, "PRAGMA index_list(civil_acts)")}
    assert "civil_acts_by_iin" in names
