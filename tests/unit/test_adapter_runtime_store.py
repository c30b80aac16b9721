"""adapters.runtime.store: Kazakhstan's date by a clock, the shared connection, and the
open/close/counts every agency store inherits (a file on disk, no sockets)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from zhol.adapters.population.store import PopulationStore
from zhol.adapters.runtime import store as runtime_store
from zhol.core.clock import FixedClock


def _ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp() * 1000)


def test_the_date_turns_at_midnight_in_kazakhstan_not_at_utc_midnight() -> None:
    assert runtime_store.date_in_kz(_ms("2025-06-01T18:59:59.999+00:00")) == dt.date(2025, 6, 1)
    assert runtime_store.date_in_kz(_ms("2025-06-01T19:00:00+00:00")) == dt.date(2025, 6, 2)
    # The UTC date is still 1 June until five hours later.
    assert runtime_store.today_in_kz(FixedClock(_ms("2025-06-01T23:30:00+00:00"))) == dt.date(
        2025, 6, 2
    )
    assert runtime_store.KZ_TIME.utcoffset(None) == dt.timedelta(hours=5)


def test_every_agency_model_uses_the_one_time_zone() -> None:
    from zhol.adapters.education import model as education
    from zhol.adapters.health import model as health
    from zhol.adapters.pension import model as pension
    from zhol.adapters.population import model as population

    for model in (population, pension, health, education):
        assert model.KZ_TIME is runtime_store.KZ_TIME


class _Schema:
    """A one-table schema whose upgrade can be made to fail."""

    TABLE_NAMES: tuple[str, ...] = ("things",)

    def __init__(self) -> None:
        self.fail = False
        self.opened: list[sqlite3.Connection] = []

    def connect(self, path: Path, *, read_only: bool = False) -> sqlite3.Connection:
        conn = runtime_store.connect(path, read_only=read_only)
        self.opened.append(conn)
        return conn

    def ensure_schema(self, conn: sqlite3.Connection) -> None:
        if self.fail:
            raise RuntimeError("schema version from the future")
        conn.execute("CREATE TABLE IF NOT EXISTS things (id INTEGER PRIMARY KEY)")


SCHEMA = _Schema()


class ThingStore(runtime_store.AgencyStore, agency="things", schema=SCHEMA):
    pass


def test_a_store_opens_counts_tells_the_date_and_closes(tmp_path: Path) -> None:
    db = tmp_path / "things.db"
    sqlite3.connect(db).close()
    store = ThingStore.open(db, FixedClock(_ms("2025-06-01T20:00:00+00:00")))
    try:
        assert store.counts() == {"things": 0}
        assert store.today() == dt.date(2025, 6, 2)
    finally:
        store.close()
    reader = ThingStore.open(db, FixedClock(0), read_only=True)
    with pytest.raises(sqlite3.OperationalError):  # query_only
        reader._conn.execute("INSERT INTO things DEFAULT VALUES")
    reader.close()


def test_a_missing_file_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        PopulationStore.open(tmp_path / "none.db", FixedClock(0))
    assert not (tmp_path / "none.db").exists()


def test_a_refused_schema_leaves_no_connection_open(tmp_path: Path) -> None:
    db = tmp_path / "things.db"
    sqlite3.connect(db).close()
    SCHEMA.fail = True
    try:
        with pytest.raises(RuntimeError):
            ThingStore.open(db, FixedClock(0))
    finally:
        SCHEMA.fail = False
    with pytest.raises(sqlite3.ProgrammingError):  # closed
        SCHEMA.opened[-1].execute("SELECT 1")
