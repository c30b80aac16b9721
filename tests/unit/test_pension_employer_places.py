"""Where pension's employers are registered (issue 14 item 11: clinic attachment by the
place of work): the added columns, the seed's places and the EmploymentPeriod answer."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.sqlite_rows import rows
from zhol.adapters.pension import schema, seed
from zhol.adapters.pension.seed import seed_database
from zhol.adapters.pension.service import period_pb
from zhol.adapters.pension.store import PensionStore, employment_of
from zhol.adapters.population import reference
from zhol.adapters.population.seed import seed_database as seed_population
from zhol.core.clock import FixedClock
from zhol.core.iin import Iin

TODAY = dt.date(2025, 6, 2)


@pytest.fixture(scope="module")
def population_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("population") / "population.db"
    seed_population(path, 400, seed=4)
    return path


def test_every_seeded_employer_has_a_district_of_the_population_seed(
    tmp_path: Path, population_db: Path,
) -> None:
    db = tmp_path / "pension.db"
    seed_database(db, population_db, as_of=TODAY, seed=2)
    places = {(region, district) for region, district, _l in reference.weighted_places()}
    employers = rows(db, "SELECT region, district FROM employers")
    assert employers and all(place in places for place in employers)
    assert len(set(employers)) > 1
    # the periods read back carry the employer's place (GetEmploymentPeriods)
    (iin,) = rows(db, "SELECT iin FROM employment_periods ORDER BY iin LIMIT 1")[0]
    store = PensionStore.open(db, FixedClock(0))
    try:
        period = store.employment_periods(Iin(iin))[0]
    finally:
        store.close()
    answer = period_pb(period)
    assert (answer.employer_region, answer.employer_district) in places
    assert answer.employer_district == period.employer_district != ""


def test_the_places_have_a_random_stream_of_their_own(
    tmp_path: Path, population_db: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = tmp_path / "a.db", tmp_path / "b.db"
    seed_database(first, population_db, as_of=TODAY, seed=2)
    monkeypatch.setattr(seed, "PLACES_STREAM", seed.PLACES_STREAM + 1)
    seed_database(second, population_db, as_of=TODAY, seed=2)
    # other places, the same careers and contributions as before places existed
    assert rows(first, "SELECT region, district FROM employers") != rows(
        second, "SELECT region, district FROM employers")
    for table in ("employment_periods", "contributions", "pension_savings"):
        assert rows(first, f"SELECT * FROM {table} ORDER BY 1, 2") == rows(
            second, f"SELECT * FROM {table} ORDER BY 1, 2"), table


def test_an_older_file_gains_the_columns_with_no_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = schema.connect(path)
    try:
        conn.execute("CREATE TABLE employers (bin TEXT PRIMARY KEY, title TEXT NOT NULL,"
                     " registered_on TEXT NOT NULL) WITHOUT ROWID")
        conn.execute("INSERT INTO employers VALUES ('050340000075', 'Old LLP', '2005-03-01')")
        conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION}")
        schema.ensure_schema(conn)
        conn.execute("INSERT INTO employment_periods (iin, employer_bin, started_on)"
                     " VALUES ('850304300178', '050340000075', '2010-01-01')")
        (period,) = employment_of(conn, "850304300178")
    finally:
        conn.close()
    assert (period.employer_title, period.employer_region, period.employer_district) == (
        "Old LLP", "", "")
