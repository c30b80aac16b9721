"""The employer's pension contribution (OPVR): the rule by year and birth year, and the
store expecting it with the other contributions (a temporary SQLite file, no sockets)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sqlite_rows import rows
from zhol.adapters.pension import rules, schema
from zhol.adapters.pension.employer_contribution import EMPLOYER_PENSION, employer_pension_amount
from zhol.adapters.pension.model import (
    KZ_TIME,
    Bin,
    ContributionReport,
    InvalidInput,
    Month,
    make_bin,
)
from zhol.adapters.pension.store import PensionStore
from zhol.core.clock import FixedClock
from zhol.core.iin import Iin, make_iin

BORN_1975 = dt.date(1975, 1, 1)
BORN_1974 = dt.date(1974, 12, 31)
MZP = 85_000  # 2024-2026


@pytest.mark.parametrize(("year", "rate"), [
    (2023, 0), (2024, 15), (2025, 25), (2026, 35), (2027, 45), (2028, 50), (2035, 50),
])
def test_the_rate_by_year(year: int, rate: int) -> None:
    assert employer_pension_amount(200_000, year, BORN_1975) == 200_000 * rate // 1000
    assert EMPLOYER_PENSION.row(year).source


def test_only_for_workers_born_in_1975_or_later() -> None:
    assert employer_pension_amount(200_000, 2026, BORN_1974) == 0
    assert employer_pension_amount(200_000, 2026, BORN_1975) == 7_000


def test_the_base_is_between_1_and_50_minimum_wages() -> None:
    assert employer_pension_amount(50 * MZP, 2026, BORN_1975) == 50 * MZP * 35 // 1000
    assert employer_pension_amount(50 * MZP + 1, 2026, BORN_1975) == 50 * MZP * 35 // 1000
    assert employer_pension_amount(10_000_000, 2024, BORN_1975) == 50 * MZP * 15 // 1000
    assert employer_pension_amount(40_000, 2026, BORN_1975) == MZP * 35 // 1000  # 1 MZP


TODAY = dt.date(2026, 6, 15)
NOW_MS = int(dt.datetime(2026, 6, 15, 12, tzinfo=KZ_TIME).timestamp() * 1000)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[PensionStore, Path, str]]:
    path = tmp_path / "pension.db"
    schema.create_database(path)
    employer = make_bin(dt.date(2005, 3, 1), 7)
    assert employer is not None
    opened = PensionStore.open(path, FixedClock(NOW_MS))
    with opened.transaction() as conn:
        conn.execute("INSERT INTO employers (bin, title, registered_on)"
                     " VALUES (?, 'Test LLP', '2005-03-01')",
                     (employer.value,))
    yield opened, path, employer.value
    opened.close()


def iin_born(day: dt.date) -> str:
    for serial in range(1, 50):
        made = make_iin(day, False, serial)
        if made is not None:
            return made.value
    raise AssertionError("no IIN")


def report(employer: str, iin: str, month: Month, opvr: int) -> ContributionReport:
    due = rules.expected_contributions(300_000, month.year)
    return ContributionReport(Bin.parse(employer), iin, month, 300_000, due.pension_amount,
                              due.social_amount, opvr)


@pytest.mark.parametrize(("born", "month", "due"), [
    (BORN_1975, Month(2026, 5), 10_500),
    (BORN_1975, Month(2024, 1), 4_500),
    (BORN_1975, Month(2023, 12), 0),
    (BORN_1974, Month(2026, 5), 0),
])
def test_the_store_expects_the_employer_contribution(
    store: tuple[PensionStore, Path, str], born: dt.date, month: Month, due: int
) -> None:
    opened, path, employer = store
    iin = iin_born(born)
    for wrong in {due + 100, max(0, due - 100)} - {due}:
        with pytest.raises(InvalidInput):
            opened.record_contribution(report(employer, iin, month, wrong))
    assert rows(path, "SELECT * FROM contributions") == []
    recorded = opened.record_contribution(report(employer, iin, month, due))
    assert recorded.employer_pension_amount == due
    history = opened.get_contributions(Iin(iin))
    assert history.total_employer_pension_amount == due
    # the OPVR goes to a conditional account: the savings hold the worker's 10% alone
    assert history.savings_balance == 30_000


def test_a_file_made_before_the_column_gains_it(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    schema.create_database(path)
    conn = schema.connect(path)
    try:
        conn.execute("DROP TABLE contributions")
        old = next(ddl for ddl in schema.TABLES if "TABLE IF NOT EXISTS contributions" in ddl)
        conn.execute(old)  # as it was before the column
        conn.execute("INSERT INTO employers (bin, title, registered_on)"
                     " VALUES ('050340000075', 'Old LLP', '2005-03-01')")
        conn.execute("INSERT INTO contributions VALUES ('850304300178', '2023-01',"
                     " '050340000075', 100, 10, 3, '2023-02-01')")
        schema.ensure_schema(conn)
        assert conn.execute("SELECT employer_pension_amount FROM contributions"
                            ).fetchall() == [(0,)]
    finally:
        conn.close()
