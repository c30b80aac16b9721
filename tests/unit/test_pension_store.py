"""The pension system's seed, store and decisions on temporary SQLite files (no sockets)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.sqlite_rows import rows
from zhol.adapters.bus.outbox import read_outbox
from zhol.adapters.pension import decisions, rules, schema
from zhol.adapters.pension.employer_contribution import employer_pension_amount
from zhol.adapters.pension.model import (
    KZ_TIME,
    AlreadyRecorded,
    BenefitKind,
    Bin,
    ContributionReport,
    InvalidInput,
    Month,
    NotFound,
    SourceRead,
    make_bin,
)
from zhol.adapters.pension.seed import SeedReport, seed_database
from zhol.adapters.pension.store import PensionStore
from zhol.adapters.population.seed import seed_database as seed_population
from zhol.core.clock import FixedClock
from zhol.core.iin import Iin, make_iin
from zhol.pension.v1 import pension_pb2

TODAY = dt.date(2026, 6, 15)
NOW_MS = int(dt.datetime(2026, 6, 15, 12, tzinfo=KZ_TIME).timestamp() * 1000)
PERSONAL = {
    "first_name", "last_name", "patronymic", "name", "birth_date", "sex", "gender", "address",
    "region", "district", "street", "locality", "building", "apartment", "death_date",
}


@pytest.fixture(scope="module")
def population_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("population") / "population.db"
    seed_population(path, 300, seed=5)
    return path


@pytest.fixture
def db(tmp_path: Path, population_db: Path) -> Path:
    path = tmp_path / "pension.db"
    seed_database(path, population_db, as_of=TODAY, seed=2)
    return path


@pytest.fixture
def store(db: Path) -> Iterator[PensionStore]:
    opened = PensionStore.open(db, FixedClock(NOW_MS))
    yield opened
    opened.close()


def snapshot(db: Path) -> dict[str, list[tuple]]:
    return {t: sorted(rows(db, f"SELECT * FROM {t}"), key=repr) for t in schema.TABLE_NAMES}


def an_employed(db: Path) -> tuple[str, str]:
    """(iin, employer BIN) of someone with contributions last month."""
    last = str(Month.of(TODAY).plus(-1))
    return rows(db, "SELECT iin, employer_bin FROM contributions WHERE month = ?"
                " ORDER BY iin LIMIT 1", last)[0]


def source(subject: str) -> SourceRead:
    return SourceRead("zhol.population.v1.PopulationRegistry/GetFamily", "KZ/GOV/MJ/population",
                      "test", subject, "children", NOW_MS)


def in_transaction(db: Path, write):  # type: ignore[no-untyped-def]
    conn = schema.connect(db)
    try:
        conn.execute("BEGIN IMMEDIATE")
        result = write(conn)
        conn.execute("COMMIT")
        return result
    finally:
        conn.close()


# -- schema and seed ---------------------------------------------------------------------


def test_schema_holds_no_personal_details(db: Path) -> None:
    tables = [name for (name,) in rows(db, "SELECT name FROM sqlite_master WHERE type='table'")]
    assert set(schema.TABLE_NAMES) <= set(tables)
    for table in tables:
        columns = {row[1] for row in rows(db, f"PRAGMA table_info({table})")}
        if table == "employers":  # a legal entity's own fact: where it is registered
            columns -= {"region", "district"}
        assert not columns & PERSONAL, table


def test_seed_gives_careers_contributions_and_earlier_pensions(db: Path, store: PensionStore
                                                               ) -> None:
    counts = store.counts()
    assert counts["employers"] >= 20
    assert counts["employment_periods"] > 100
    assert counts["contributions"] > 1000
    assert counts["pension_assignments"] > 10
    assert counts["bus_outbox"] == counts["bus_inbox"] == counts["benefits"] == 0
    for (bin_text,) in rows(db, "SELECT bin FROM employers"):
        Bin.parse(bin_text)
    cutoff = Month.of(TODAY).first_day.isoformat()
    late = rows(db, "SELECT count(*) FROM pension_assignments WHERE effective_from >= ?", cutoff)
    assert late == [(0,)]  # this month's new pensioners are left to the retirement run
    for iin, month, income, pension, social in rows(
        db, "SELECT iin, month, income, pension_amount, social_amount FROM contributions"
        " ORDER BY random() LIMIT 50"
    ):
        due = rules.expected_contributions(income, Month.parse(month).year)
        assert (pension, social) == (due.pension_amount, due.social_amount)
        Iin.parse(iin)


def test_seed_is_deterministic(tmp_path: Path, population_db: Path, db: Path) -> None:
    again = tmp_path / "again.db"
    seed_database(again, population_db, as_of=TODAY, seed=2)
    for table in ("employers", "employment_periods", "contributions", "pension_savings"):
        assert rows(again, f"SELECT * FROM {table} ORDER BY 1, 2") == rows(
            db, f"SELECT * FROM {table} ORDER BY 1, 2")
    with pytest.raises(FileExistsError):
        seed_database(again, population_db, as_of=TODAY)


class CountingConnection(sqlite3.Connection):
    """Counts the statements a caller hands SQLite (executemany counts once)."""

    calls: list[tuple[str, bool]]  # (first word of the SQL, in a transaction)

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self.calls.append((sql.split()[0].upper(), self.in_transaction))
        return super().execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self.calls.append((sql.split()[0].upper(), self.in_transaction))
        return super().executemany(sql, *args)


def seed_counting(
    tmp_path: Path, persons: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[SeedReport, list[tuple[str, bool]]]:
    population = tmp_path / f"population-{persons}.db"
    seed_population(population, persons, seed=1)
    calls: list[tuple[str, bool]] = []
    real_connect = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn: CountingConnection = real_connect(*args, factory=CountingConnection, **kwargs)
        conn.calls = calls
        return conn

    with monkeypatch.context() as patch:
        patch.setattr(sqlite3, "connect", connect)  # the seed's own calls, and only them
        report = seed_database(tmp_path / f"pension-{persons}.db", population, as_of=TODAY)
    return report, calls


def test_seeding_is_bulk_work_in_one_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What keeps seeding 10,000 people fast, counted instead of timed: the population is
    read with one query, and every row is written by a fixed number of statements in one
    transaction, however many people there are (no statement or commit per row)."""
    small, small_calls = seed_counting(tmp_path, 300, monkeypatch)
    large, large_calls = seed_counting(tmp_path, 3_000, monkeypatch)
    assert (small.persons_read, large.persons_read) == (300, 3_000)
    assert large.contributions > 10 * small.contributions / 2 > 0
    assert large_calls == small_calls
    inserts = [in_tx for verb, in_tx in large_calls if verb == "INSERT"]
    assert inserts and all(inserts)
    assert [verb for verb, _ in large_calls].count("SELECT") == 1
    assert [verb for verb, _ in large_calls].count("COMMIT") == 1


# -- contributions -----------------------------------------------------------------------


def report_for(iin: str, employer: str, month: Month, income: int = 500_000,
               **amounts: int) -> ContributionReport:
    year = max(month.year, rules.FIRST_CONTRIBUTION_YEAR)
    due = rules.expected_contributions(income, year)
    return ContributionReport(
        Bin.parse(employer), iin, month, income,
        amounts.get("pension_amount", due.pension_amount),
        amounts.get("social_amount", due.social_amount),
        amounts.get("employer_pension_amount",
                    employer_pension_amount(income, year, Iin.parse(iin).birth_date)),
    )


def test_record_contribution_adds_to_savings(db: Path, store: PensionStore) -> None:
    iin, employer = an_employed(db)
    before = store.savings_balance(Iin(iin))
    recorded = store.record_contribution(report_for(iin, employer, Month.of(TODAY)))
    assert recorded.pension_amount == 50_000
    assert store.savings_balance(Iin(iin)) == before + 50_000
    history = store.get_contributions(Iin(iin), Month.of(TODAY), Month.of(TODAY))
    assert [c.income for c in history.contributions] == [500_000]
    with pytest.raises(InvalidInput):
        store.get_contributions(Iin(iin), Month.of(TODAY), Month.of(TODAY).plus(-1))


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"pension_amount": 49_000}, InvalidInput),
        ({"social_amount": 1}, InvalidInput),
        ({"pension_amount": -50_000}, InvalidInput),
        ({"month": Month(2009, 12)}, InvalidInput),
        ({"month": Month.of(TODAY).plus(1)}, InvalidInput),
        ({"income": 0}, InvalidInput),
        ({"employer": "unknown"}, NotFound),
        ({"month": "last"}, AlreadyRecorded),
    ],
)
def test_refused_contributions_change_nothing(
    db: Path, store: PensionStore, change: dict, error: type[Exception]
) -> None:
    iin, employer = an_employed(db)
    month = Month.of(TODAY)
    income = 500_000
    if change.get("employer") == "unknown":
        made = make_bin(dt.date(2011, 1, 1), 99_999)
        assert made is not None
        employer = made.value
    if change.get("month") == "last":
        month = Month.of(TODAY).plus(-1)
        income = rows(db, "SELECT income FROM contributions WHERE iin = ? AND month = ?",
                      iin, str(month))[0][0]
    elif "month" in change:
        month = change["month"]
    if "income" in change:
        report = ContributionReport(Bin.parse(employer), iin, month, 0, 0, 0)
    else:
        amounts = {k: v for k, v in change.items() if k.endswith("_amount")}
        report = report_for(iin, employer, month, income, **amounts)
    before = snapshot(db)
    with pytest.raises(error):
        store.record_contribution(report)
    assert snapshot(db) == before


def test_insured_by_contributions_until_three_months_after_the_last_paid(
    db: Path, store: PensionStore
) -> None:
    # rules.INSURANCE [o][p]: cover lasts 3 months after the last paid month.
    iin, _employer = an_employed(db)
    check = store.insurance_check(Iin(iin), TODAY)
    assert check.insured and check.paid_months >= 1
    assert (check.window_from, check.window_to) == (Month(2026, 3), Month(2026, 5))
    ((last_text,),) = rows(db, "SELECT max(month) FROM contributions WHERE iin = ?"
                           " AND pension_amount > 0", iin)
    last = Month.parse(last_text)
    covered_until = last.plus(4).first_day - dt.timedelta(days=1)
    assert store.insurance_check(Iin(iin), covered_until).insured
    after = store.insurance_check(Iin(iin), covered_until + dt.timedelta(days=1))
    assert not after.insured and after.paid_months == 0
    later = store.insurance_check(Iin(iin), dt.date(2030, 1, 1))  # nothing recorded then
    assert not later.insured and later.paid_months == 0
    nobody = make_iin(dt.date(2020, 1, 1), False, 4321)
    assert nobody is not None
    assert not store.insurance_check(nobody, TODAY).insured


# -- decisions ---------------------------------------------------------------------------


def birth_facts(mother: str, child: str, order: int) -> decisions.BirthFacts:
    return decisions.BirthFacts(mother, child, dt.date(2026, 6, 10), order, "MJ-1",
                                (source(mother),))


def test_birth_benefits_once_per_child(db: Path, store: PensionStore) -> None:
    mother, _ = an_employed(db)
    child = make_iin(dt.date(2026, 6, 10), True, 77)
    assert child is not None
    facts = birth_facts(mother, child.value, 4)
    first = in_transaction(db, lambda c: decisions.decide_birth(c, facts, today=TODAY,
                                                                now_ms=NOW_MS))
    assert len(first) == 2
    before = snapshot(db)
    again = in_transaction(db, lambda c: decisions.decide_birth(c, facts, today=TODAY,
                                                                now_ms=NOW_MS))
    assert again == []
    assert snapshot(db) == before
    benefits = {b.kind.value: b for b in store.list_benefits(Iin(mother))}
    assert benefits["childbirth_lump_sum"].amount == 63 * rules.MCI.at(dt.date(2026, 1, 1))
    assert len(benefits["child_care_allowance"].payments) == 18  # until 1.5
    assert benefits["child_care_allowance"].sources == (source(mother),)
    assert store.list_benefits(child) == store.list_benefits(Iin(mother))
    conn = schema.connect(db)
    try:
        events = read_outbox(conn)
    finally:
        conn.close()
    assert [e.topic for e in events] == ["zhol.pension.v1.BenefitAssigned"] * 2
    payload = pension_pb2.BenefitAssigned.FromString(events[0].payload)
    assert (payload.recipient_iin, payload.subject_iin, payload.currency) == (
        mother, child.value, "KZT")


def test_death_stops_payments_and_assigns_burial_once(db: Path, store: PensionStore) -> None:
    (pensioner,) = rows(db, "SELECT iin FROM pension_assignments ORDER BY iin LIMIT 1")[0]
    spouse = make_iin(dt.date(1960, 2, 2), True, 55)
    assert spouse is not None
    death = dt.date(2026, 6, 3)
    facts = decisions.DeathFacts(pensioner, death, "MJ-2", spouse.value, "spouse", ())
    outcome = in_transaction(db, lambda c: decisions.decide_death(c, facts, today=TODAY,
                                                                  now_ms=NOW_MS))
    assert outcome.payments_stopped and outcome.burial_benefit_id
    status = store.pension_status(Iin(pensioner))
    assert not status.receives_pension
    (assignment,) = status.assignments
    assert (assignment.status, assignment.stopped_on, assignment.stop_reason) == (
        "stopped", death, "death")
    later = [p.status.value for p in assignment.payments if p.month > Month.of(death)]
    assert later and set(later) == {"stopped"}
    assert {p.status.value for p in assignment.payments if p.month <= Month.of(death)} == {
        "paid", "scheduled"}
    burial = store.get_benefit(outcome.burial_benefit_id)
    assert (burial.kind, burial.recipient_iin, burial.subject_iin) == (
        BenefitKind.BURIAL_BENEFIT, spouse.value, pensioner)
    assert burial.amount == 35 * rules.MCI.at(death)  # the pensioner's: the budget's
    before = snapshot(db)
    repeated = in_transaction(db, lambda c: decisions.decide_death(c, facts, today=TODAY,
                                                                   now_ms=NOW_MS))
    assert (repeated.payments_stopped, repeated.burial_benefit_id,
            repeated.burial_savings_id) == (False, None, None)
    assert snapshot(db) == before


def set_savings(db: Path, iin: str, balance: int) -> None:
    in_transaction(db, lambda c: c.execute(
        "INSERT INTO pension_savings VALUES (?, ?, ?) ON CONFLICT (iin) DO UPDATE"
        " SET balance = excluded.balance", (iin, balance, TODAY.isoformat())))


def die(db: Path, iin: str, death: dt.date, to: str) -> decisions.DeathOutcome:
    facts = decisions.DeathFacts(iin, death, "MJ-B", to, "spouse", (source(iin),))
    return in_transaction(db, lambda c: decisions.decide_death(c, facts, today=TODAY,
                                                               now_ms=NOW_MS))


def burials(store: PensionStore, to: str) -> dict[str, int]:
    return {b.kind.value: b.amount for b in store.list_benefits(Iin(to))}


def test_the_budget_burial_payment_only_for_a_recipient_on_the_death_date(
        db: Path, store: PensionStore) -> None:
    """A disability benefit from 3 June: a death on 2 June gets no budget payment (the
    log says why), a death on 3 June gets 35 MCI; both get the savings' payment."""
    spouse = make_iin(dt.date(1970, 3, 3), True, 80)
    assert spouse is not None
    employed = [iin for (iin,) in rows(db, "SELECT DISTINCT iin FROM contributions"
                                           " ORDER BY iin LIMIT 2")]
    start = dt.date(2026, 6, 3)
    for n, iin in enumerate(employed):
        set_savings(db, iin, 10**7)
        in_transaction(db, lambda c, i=iin, n=n: decisions.decide_disability(
            c, decisions.DisabilityFacts(i, 1, start, None, f"MSE-B{n}", ()),
            today=TODAY, now_ms=NOW_MS))
    before, on = employed
    outcome = die(db, before, start - dt.timedelta(days=1), spouse.value)
    assert outcome.burial_benefit_id is None and outcome.burial_savings_id
    assert outcome.no_burial == ("budget burial payment: the deceased received no pension or"
                                 " state social benefit on the death date",)
    outcome = die(db, on, start, spouse.value)
    assert outcome.burial_benefit_id and outcome.burial_savings_id and not outcome.no_burial
    burial = store.get_benefit(outcome.burial_benefit_id)
    assert burial.amount == 35 * 4325 and burial.subject_iin == on
    received = {i.name: i.value for i in burial.items}["deceased_received"]
    assert received.startswith("disability_benefit BN-")


def test_the_burial_payment_from_savings_is_at_most_the_balance(
        db: Path, store: PensionStore) -> None:
    """94 MCI of 2026 (406,550 tenge) from savings above it, the whole balance below it
    (the savings then empty), nothing and a reason without savings."""
    spouses = [make_iin(dt.date(1970, 3, 3), True, n) for n in (81, 82, 83)]
    people = [iin for (iin,) in rows(db, "SELECT DISTINCT iin FROM contributions"
                                         " ORDER BY iin LIMIT 3")]
    death = dt.date(2026, 6, 1)
    for iin, balance in zip(people, (10**7, 94 * 4325 - 1, 0), strict=True):
        set_savings(db, iin, balance)
    outcomes = [die(db, iin, death, sp.value) for iin, sp in zip(people, spouses, strict=True)
                if sp is not None]
    rich, poor, none = (burials(store, sp.value) for sp in spouses if sp is not None)
    assert rich == {"burial_savings_payment": 406550}
    assert poor == {"burial_savings_payment": 406549}
    assert none == {} and outcomes[2].burial_savings_id is None
    assert "burial payment from savings: the deceased had no pension savings" in (
        outcomes[2].no_burial)
    assert rows(db, "SELECT balance FROM pension_savings WHERE iin = ?", people[0]) == [
        (10**7 - 406550,)]
    assert rows(db, "SELECT balance FROM pension_savings WHERE iin = ?", people[1]) == [(0,)]


def test_a_new_disability_conclusion_supersedes_the_old(db: Path, store: PensionStore) -> None:
    iin, _ = an_employed(db)
    first = decisions.DisabilityFacts(iin, 3, dt.date(2026, 1, 1), dt.date(2026, 12, 31),
                                      "MSE-1", ())
    second = decisions.DisabilityFacts(iin, 2, dt.date(2026, 7, 1), None, "MSE-2", ())
    for facts in (first, second, second):
        in_transaction(db, lambda c, f=facts: decisions.decide_disability(
            c, f, today=TODAY, now_ms=NOW_MS))
    benefits = {b.basis: b for b in store.list_benefits(Iin(iin))}
    assert len(benefits) == 2
    old = benefits[decisions.disability_basis("MSE-1")]
    new = benefits[decisions.disability_basis("MSE-2")]
    assert (old.status, new.status) == ("superseded", "active")
    assert new.amount == 89498  # group 2: 1.76 x 50,851 PM since 1 July 2023
    assert all(p.status.value == "stopped" for p in old.payments if p.month >= Month(2026, 7))
    assert len(new.payments) == rules.SCHEDULE.horizon_months


def test_a_disability_benefit_is_paid_at_the_pm_of_each_month_paid(db: Path,
                                                                    store: PensionStore) -> None:
    iin, _ = an_employed(db)
    born = dt.date(1980, 1, 1)
    facts = decisions.DisabilityFacts(iin, 1, dt.date(2025, 9, 1), None, "MSE-7", (), None, born)
    in_transaction(db, lambda c: decisions.decide_disability(c, facts, today=TODAY,
                                                             now_ms=NOW_MS))
    (benefit,) = store.list_benefits(Iin(iin))
    paid = {str(p.month): p.amount for p in benefit.payments}
    assert paid["2025-09"] == paid["2025-12"] == 101702  # 2.2 x 46,228
    assert paid["2026-01"] == paid["2026-08"] == 111872  # 2.2 x 50,851
    # The listing shows this month's amount (June 2026); the decision keeps its first.
    assert benefit.amount == 111872
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT amount FROM benefits").fetchall() == [(101702,)]
    finally:
        conn.close()


def test_age_pension_once(db: Path, store: PensionStore) -> None:
    iin, _ = an_employed(db)
    facts = decisions.RetirementFacts(
        iin, False, rules.RetirementDate(dt.date(2026, 6, 5), 756, 2026), (), TODAY,
        (source(iin),),
    )
    written = in_transaction(db, lambda c: decisions.decide_age_pension(
        c, facts, today=TODAY, now_ms=NOW_MS))
    assert written is not None
    assignment = store.get_assignment(written)
    assert assignment.sources == (source(iin),)
    assert assignment.calculation.contribution_months > 0
    assert assignment.monthly_amount == assignment.calculation.monthly_amount
    assert store.with_age_pension([iin, "000000000000"]) == {iin}
    before = snapshot(db)
    assert in_transaction(db, lambda c: decisions.decide_age_pension(
        c, facts, today=TODAY, now_ms=NOW_MS)) is None
    assert snapshot(db) == before


def test_survivor_pensions_once_per_child_and_deceased(db: Path, store: PensionStore) -> None:
    father, mother = make_iin(dt.date(1985, 1, 1), False, 60), make_iin(dt.date(1986, 1, 1),
                                                                       True, 61)
    young, older = make_iin(dt.date(2020, 9, 9), True, 62), make_iin(dt.date(2012, 1, 20),
                                                                      False, 63)
    assert father and mother and young and older
    death = dt.date(2026, 6, 3)
    survivors = tuple(decisions.Survivor(c.value, c.birth_date, (source(c.value),))
                      for c in (young, older))
    facts = decisions.DeathFacts(father.value, death, "MJ-3", None, "", (), survivors)
    outcome = in_transaction(db, lambda c: decisions.decide_death(c, facts, today=TODAY,
                                                                  now_ms=NOW_MS))
    assert len(outcome.survivor_pension_ids) == 2 and outcome.burial_benefit_id is None
    family = rules.tenge(rules.SUBSISTENCE_MINIMUM.at(dt.date(2026, 1, 1))
                         * rules.SURVIVOR.row(dt.date(2026, 1, 1), 2).pm_share)
    for child, ends_on in ((young, dt.date(2038, 9, 8)), (older, dt.date(2030, 1, 19))):
        status = store.pension_status(child)
        (pension,) = status.assignments
        assert status.receives_pension and pension.kind.value == "survivor"
        assert (pension.iin, pension.breadwinner_iin, pension.ends_on) == (
            child.value, father.value, ends_on)
        assert pension.monthly_amount == rules.tenge(Decimal(family) / 2)
        assert pension.sources == (source(child.value),)
        assert pension.effective_from == death and "MJ-3" in pension.basis
        assert [str(p.month) for p in pension.payments][:2] == ["2026-07", "2026-08"]
        assert len(pension.payments) == rules.SCHEDULE.horizon_months
    conn = schema.connect(db)
    try:
        events = read_outbox(conn)
    finally:
        conn.close()
    assert [(e.topic, e.data_subject) for e in events] == [
        ("zhol.pension.v1.PensionAssigned", young.value),
        ("zhol.pension.v1.PensionAssigned", older.value)]
    assigned = pension_pb2.PensionAssigned.FromString(events[0].payload)
    assert (assigned.iin, assigned.kind) == (young.value, "survivor")
    before = snapshot(db)
    again = in_transaction(db, lambda c: decisions.decide_death(c, facts, today=TODAY,
                                                                now_ms=NOW_MS))
    assert again == decisions.DeathOutcome(False, None, (), None, again.no_burial)
    assert snapshot(db) == before
    # The other parent's death is another breadwinner lost: one more each.
    second = decisions.DeathFacts(mother.value, death, "MJ-4", None, "", (), survivors[:1])
    outcome = in_transaction(db, lambda c: decisions.decide_death(c, second, today=TODAY,
                                                                  now_ms=NOW_MS))
    assert len(outcome.survivor_pension_ids) == 1
    assert {a.breadwinner_iin for a in store.pension_status(young).assignments} == {
        father.value, mother.value}


def test_a_survivor_pension_decided_late_pays_from_this_month_to_the_18th_birthday(
        db: Path, store: PensionStore) -> None:
    child = make_iin(dt.date(2008, 11, 5), False, 64)
    assert child is not None
    facts = decisions.DeathFacts("0" * 12, dt.date(2025, 3, 1), "", None, "",
                                 (), (decisions.Survivor(child.value, child.birth_date, ()),))
    in_transaction(db, lambda c: decisions.decide_death(c, facts, today=TODAY, now_ms=NOW_MS))
    (pension,) = store.pension_status(child).assignments
    assert pension.ends_on == dt.date(2026, 11, 4)
    # 0.92 PM since 1 July 2023: 46,228 x 0.92 in 2025 (the decision's calculation),
    # paid at the 2026 PM in 2026 (the amount shown: this month's payment).
    assert pension.calculation.monthly_amount == rules.tenge(
        rules.SUBSISTENCE_MINIMUM.at(dt.date(2025, 3, 1)) * Decimal("0.92"))
    assert pension.monthly_amount == 46783
    assert [(str(p.month), p.amount) for p in pension.payments] == [
        (f"2026-{m:02d}", 46783) for m in range(6, 12)]


def test_a_version_1_database_gains_the_survivor_columns_and_keeps_its_rows(db: Path) -> None:
    conn = schema.connect(db)  # make the file what version 1 wrote
    conn.execute("DROP INDEX pension_once_survivor")
    for column in schema.ASSIGNMENT_COLUMNS_V2:
        conn.execute(f"ALTER TABLE pension_assignments DROP COLUMN {column.split()[0]}")
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    before = snapshot(db)
    assert len(before["pension_assignments"][0]) == 11
    store = PensionStore.open(db, FixedClock(NOW_MS))
    try:
        after = snapshot(db)
        assert [row[:11] for row in after["pension_assignments"]] == \
            before["pension_assignments"]
        assert {row[11:] for row in after["pension_assignments"]} == {(None, None)}
        assert {t: v for t, v in after.items() if t != "pension_assignments"} == {
            t: v for t, v in before.items() if t != "pension_assignments"}
        assert rows(db, "PRAGMA user_version") == [(schema.SCHEMA_VERSION,)]
        assert rows(db, "SELECT count(*) FROM sqlite_master WHERE name = 'pension_once_survivor'"
                    ) == [(1,)]
        assert "carer_of_disabled_child" in rows(  # and the version 3 benefits table
            db, "SELECT sql FROM sqlite_master WHERE name = 'benefits'")[0][0]
        (pensioner,) = before["pension_assignments"][0][1:2]
        (assignment,) = store.pension_status(Iin(pensioner)).assignments
        assert (assignment.ends_on, assignment.breadwinner_iin) == (None, "")
    finally:
        store.close()
    with pytest.raises(RuntimeError):  # a file from a newer version is refused
        conn = schema.connect(db)
        try:
            conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
            schema.ensure_schema(conn)
        finally:
            conn.close()


def test_a_survivor_pension_past_its_end_is_no_longer_received(db: Path) -> None:
    child = make_iin(dt.date(2008, 11, 5), False, 65)
    assert child is not None
    facts = decisions.DeathFacts("0" * 12, dt.date(2025, 3, 1), "", None, "",
                                 (), (decisions.Survivor(child.value, child.birth_date, ()),))
    in_transaction(db, lambda c: decisions.decide_death(c, facts, today=TODAY, now_ms=NOW_MS))
    last_day = dt.datetime(2026, 11, 4, 12, tzinfo=dt.UTC)
    for moment, receives in ((last_day, True), (last_day + dt.timedelta(days=1), False)):
        store = PensionStore.open(db, FixedClock(int(moment.timestamp() * 1000)))
        try:
            status = store.pension_status(child)
        finally:
            store.close()
        assert status.receives_pension is receives
        assert [a.status for a in status.assignments] == ["active"]  # stored as decided


def make_version_2(db: Path) -> None:
    """Turn the file into what version 2 wrote: the benefits CHECK and indexes without
    the carer's benefit (the same rebuild, backwards)."""
    carer = "\n            OR kind = 'carer_of_disabled_child'"
    assert carer in schema.BENEFITS and SAVINGS_KIND in schema.BENEFITS
    conn = schema.connect(db)
    try:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(schema.BENEFITS.replace(carer, "").replace(SAVINGS_KIND, "").format(
            name="benefits_v2"))
        conn.execute("INSERT INTO benefits_v2 SELECT * FROM benefits")
        conn.execute("DROP TABLE benefits")
        conn.execute("ALTER TABLE benefits_v2 RENAME TO benefits")
        conn.execute("CREATE UNIQUE INDEX benefit_once_per_subject ON benefits (kind,"
                     " subject_iin) WHERE kind != 'disability_benefit'")
        conn.execute("CREATE UNIQUE INDEX benefit_once_per_conclusion ON benefits (kind,"
                     " basis) WHERE kind = 'disability_benefit'")
        conn.execute("PRAGMA user_version = 2")
        conn.execute("COMMIT")
    finally:
        conn.close()


SAVINGS_KIND = "\n            OR kind = 'burial_savings_payment'"


def make_version_3(db: Path) -> None:
    """Turn the file into what version 3 wrote: the benefits CHECK without the burial
    payment from savings (the indexes are those of version 3 already)."""
    assert SAVINGS_KIND in schema.BENEFITS
    conn = schema.connect(db)
    try:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(schema.BENEFITS.replace(SAVINGS_KIND, "").format(name="benefits_v3"))
        conn.execute("INSERT INTO benefits_v3 SELECT * FROM benefits")
        conn.execute("DROP TABLE benefits")
        conn.execute("ALTER TABLE benefits_v3 RENAME TO benefits")
        for ddl in schema.BENEFIT_INDEXES:
            conn.execute(ddl)
        conn.execute("PRAGMA user_version = 3")
        conn.execute("COMMIT")
    finally:
        conn.close()


def test_a_version_3_database_takes_the_burial_payment_from_savings(db: Path) -> None:
    iin, _child = benefits_and_payments(db)
    make_version_3(db)
    conn = schema.connect(db)
    try:  # the version 3 CHECK refuses the new kind: the file really is version 3
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("UPDATE benefits SET kind = 'burial_savings_payment'")
    finally:
        conn.close()
    before = snapshot(db)
    store = PensionStore.open(db, FixedClock(NOW_MS))
    try:
        assert snapshot(db) == before
        assert rows(db, "PRAGMA user_version") == [(4,)]
        assert rows(db, "PRAGMA foreign_key_check") == []
        spouse = make_iin(dt.date(1970, 3, 3), True, 84)
        assert spouse is not None
        set_savings(db, iin, 1000)
        for _ in range(2):
            die(db, iin, dt.date(2026, 6, 1), spouse.value)
        # The disability benefit from 1 June: the budget's payment too; each once.
        assert burials(store, spouse.value) == {"burial_savings_payment": 1000,
                                                "burial_benefit": 35 * 4325}
    finally:
        store.close()


def benefits_and_payments(db: Path) -> tuple[str, str]:
    """A disability benefit and a birth's two benefits, with their payments and sources."""
    iin, _ = an_employed(db)
    child = make_iin(dt.date(2026, 5, 1), True, 71)
    assert child is not None
    in_transaction(db, lambda c: decisions.decide_disability(c, decisions.DisabilityFacts(
        iin, 2, dt.date(2026, 6, 1), None, "MSE-V2", (source(iin),)),
        today=TODAY, now_ms=NOW_MS))
    in_transaction(db, lambda c: decisions.decide_birth(c, decisions.BirthFacts(
        iin, child.value, dt.date(2026, 5, 1), 1, "MJ-V2", (source(iin),)),
        today=TODAY, now_ms=NOW_MS))
    return iin, child.value


def test_a_version_2_database_upgrades_its_benefits_and_keeps_every_row(db: Path) -> None:
    iin, _child = benefits_and_payments(db)
    make_version_2(db)
    conn = schema.connect(db)
    try:  # the version 2 CHECK refuses the new kind: the file really is version 2
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("UPDATE benefits SET kind = 'carer_of_disabled_child'")
    finally:
        conn.close()
    before = snapshot(db)
    assert len(before["benefits"]) == 3 and len(before["payments"]) > 12
    store = PensionStore.open(db, FixedClock(NOW_MS))
    try:
        assert snapshot(db) == before
        assert rows(db, "PRAGMA user_version") == [(schema.SCHEMA_VERSION,)] == [(4,)]
        assert rows(db, "PRAGMA foreign_key_check") == []
        assert store.connection.execute("PRAGMA foreign_keys").fetchone() == (1,)
        ddl = dict(rows(db, "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'benefits'"
                            " AND sql IS NOT NULL"))
        assert "carer_of_disabled_child" in ddl["benefits"]
        assert set(ddl) == {"benefits", "benefit_once_per_subject",
                            "benefit_once_per_conclusion", "benefit_by_recipient",
                            "benefit_by_subject"}
        assert "carer_of_disabled_child" in ddl["benefit_once_per_conclusion"]
        assert {b.kind.value for b in store.list_benefits(Iin(iin))} == {
            "disability_benefit", "childbirth_lump_sum", "child_care_allowance"}
        # The upgraded file takes the new kind, once per conclusion.
        carer = decisions.DisabilityFacts(
            iin, 2, dt.date(2026, 7, 1), None, "MSE-V3", (source(iin),),
            decisions.CarerFacts(an_employed(db)[0], "mother", dt.date(2026, 5, 1), ()))
        for _ in range(2):
            in_transaction(db, lambda c: decisions.decide_disability(
                c, carer, today=TODAY, now_ms=NOW_MS))
        assert rows(db, "SELECT count(*) FROM benefits WHERE kind = "
                        "'carer_of_disabled_child'") == [(1,)]
    finally:
        store.close()


def test_an_upgrade_that_would_break_a_reference_changes_nothing(db: Path) -> None:
    benefits_and_payments(db)
    make_version_2(db)
    conn = schema.connect(db)
    try:  # a payment of a benefit that is not there (written with foreign keys off)
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("INSERT INTO payments (benefit_id, month, amount) VALUES"
                     " ('BN-missing', '2026-06', 1)")
    finally:
        conn.close()
    before = snapshot(db)
    with pytest.raises(RuntimeError):
        PensionStore.open(db, FixedClock(NOW_MS))
    assert snapshot(db) == before
    assert rows(db, "PRAGMA user_version") == [(2,)]
    assert "carer" not in rows(db, "SELECT sql FROM sqlite_master WHERE name = 'benefits'"
                               )[0][0]


def test_the_seed_leaves_this_years_pensioners_to_the_retirement_run(tmp_path: Path) -> None:
    """Pensions "assigned before the bus" only for those of age before 1 January: the
    retirement run (`zhol scenario retirement`) assigns this year's, naming their rule."""
    population = tmp_path / "population.db"
    seed_population(population, 2000, seed=5)
    pension = tmp_path / "pension.db"
    seed_database(pension, population, as_of=TODAY, seed=2)
    new_year = dt.date(TODAY.year, 1, 1)
    of_age_this_year = set()
    of_age_before = set()
    for (text,) in rows(population, "SELECT iin FROM persons WHERE death_date IS NULL"):
        iin = Iin.parse(text)
        reached = rules.retirement_date(iin.birth_date, iin.is_female).reached_on
        if new_year <= reached < TODAY:
            of_age_this_year.add(text)
        elif reached < new_year:
            of_age_before.add(text)
    assert of_age_this_year and of_age_before  # the population has both
    assigned = {iin for (iin,) in rows(pension, "SELECT iin FROM pension_assignments")}
    assert not assigned & of_age_this_year
    assert of_age_before <= assigned
