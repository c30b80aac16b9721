"""A new age pension's schedule is priced month by month at the values of the year paid:
the base part at that year's share and PM, the solidarity part raised to that year's
minimum pension (docs/rules.md, "Indexation of the age pension")."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from zhol.adapters.pension import decisions, recalculating, rules, schema
from zhol.adapters.pension.model import Month, SourceRead
from zhol.adapters.pension.store import PensionStore
from zhol.core.clock import FixedClock
from zhol.core.iin import make_iin

REACHED = dt.date(2025, 9, 10)  # a man born 10 September 1962 turns 63
NOW_MS = int(dt.datetime(2025, 9, 10, 12, tzinfo=dt.UTC).timestamp() * 1000)
INCOME = 100_000  # 63% (28 years before 1998) of it: 63,000, between the two floors
BASE_2025, BASE_2026 = 50_851, 60_004  # 110% of 46,228 and 118% of 50,851 (55 years)
BY_INCOME, FLOOR_2026 = 63_000, 69_049  # above 2025's minimum pension 62,771, below 2026's
EMPLOYER = "990440000013"


def pensioner(db: Path) -> str:
    """A man employed since 1970, 36 months at INCOME before the month he turns 63."""
    iin = make_iin(dt.date(1962, 9, 10), False, 77).value
    conn = schema.connect(db)
    try:
        with conn:
            conn.execute("INSERT INTO employers (bin, title, registered_on)"
                         " VALUES (?, 'Employer', '2000-01-01')",
                         (EMPLOYER,))
            conn.execute("INSERT INTO employment_periods (iin, employer_bin, started_on)"
                         " VALUES (?, ?, '1970-01-01')", (iin, EMPLOYER))
            conn.executemany(
                "INSERT INTO contributions (iin, month, employer_bin, income, pension_amount,"
                " social_amount, recorded_on) VALUES (?, ?, ?, ?, 10000, 3500, '2025-01-01')",
                [(iin, str(Month.of(REACHED).plus(-i)), EMPLOYER, INCOME)
                 for i in range(1, 37)])
    finally:
        conn.close()
    return iin


def assign(db: Path, iin: str) -> str:
    facts = decisions.RetirementFacts(
        iin, False, rules.RetirementDate(REACHED, 63 * 12, 2025), (), REACHED,
        (SourceRead("zhol.population.v1.PopulationRegistry/GetPerson",
                    "KZ/GOV/MJ/population", "test", iin, "birth date", NOW_MS),))
    conn = schema.connect(db)
    try:
        conn.execute("BEGIN IMMEDIATE")
        written = decisions.decide_age_pension(conn, facts, today=REACHED, now_ms=NOW_MS)
        conn.execute("COMMIT")
    finally:
        conn.close()
    assert written is not None
    return written


def test_a_pension_scheduled_across_the_new_year_is_paid_at_the_new_years_values(
        tmp_path: Path) -> None:
    db = tmp_path / "pension.db"
    schema.create_database(db)
    iin = pensioner(db)
    assignment_id = assign(db, iin)
    store = PensionStore.open(db, FixedClock(NOW_MS))
    try:
        assignment = store.get_assignment(assignment_id)
        by_month = {str(p.month): p.amount for p in assignment.payments}
        assert assignment.calculation.monthly_amount == BASE_2025 + BY_INCOME
        assert len(by_month) == rules.SCHEDULE.horizon_months
        # 31 December 2025 and 1 January 2026: the PM, base share and floor of each year.
        assert by_month["2025-09"] == by_month["2025-12"] == BASE_2025 + BY_INCOME  # 113,851
        assert by_month["2026-01"] == by_month["2026-08"] == BASE_2026 + FLOOR_2026  # 129,053
        # The recalculation prices the months alike: it finds nothing to change.
        report = recalculating.run(store, dt.date(2025, 9, 10), now_ms=lambda: NOW_MS)
        assert report.recalculated == () and report.skipped == ()
    finally:
        store.close()
