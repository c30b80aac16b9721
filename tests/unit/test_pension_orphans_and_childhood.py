"""Issue 14 items 3-5: the orphan's survivor pension (1.54 PM each from 1 July 2023), the
disability benefit of an adult disabled since childhood (2.2 / 1.83 / 1.61 PM), and the
amount a monthly decision shows (this month's payment), at their boundaries."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import pytest

from zhol.adapters.pension import calculation, decisions, recalculating, rules, schema
from zhol.adapters.pension.model import KZ_TIME, Month, Payment, PaymentStatus
from zhol.adapters.pension.store import PensionStore, amount_of_month
from zhol.core.clock import FixedClock
from zhol.core.iin import Iin, make_iin

T = TypeVar("T")
TODAY = dt.date(2026, 6, 15)
NOW_MS = int(dt.datetime(2026, 6, 15, 12, tzinfo=KZ_TIME).timestamp() * 1000)
PM_2023, PM_2026 = 40567, 50851


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "pension.db"
    schema.create_database(path)
    return path


@pytest.fixture
def store(db: Path) -> Iterator[PensionStore]:
    opened = PensionStore.open(db, FixedClock(NOW_MS))
    yield opened
    opened.close()


def write(db: Path, action: Callable[[sqlite3.Connection], T]) -> T:
    conn = schema.connect(db)
    try:
        conn.execute("BEGIN IMMEDIATE")
        result = action(conn)
        conn.execute("COMMIT")
        return result
    finally:
        conn.close()


def iin(born: dt.date, female: bool, serial: int) -> Iin:
    made = make_iin(born, female, serial)
    assert made is not None
    return made


# -- the orphan's share ------------------------------------------------------------------


def test_the_orphan_s_share_is_1_54_pm_from_1_july_2023() -> None:
    assert rules.orphan_row(dt.date(2023, 6, 30)) is None  # before: the family's share
    row = rules.orphan_row(dt.date(2023, 7, 1))
    assert row is not None and row.value == Decimal("1.54") and "zakon.kz 6509919" in row.source
    assert calculation.orphan_amount(Month(2023, 7)) == 62473  # 1.54 x 40,567
    assert calculation.orphan_amount(Month(2026, 1)) == 78311  # the ministry's 78,311


def death(child: Iin, orphaned_on: dt.date | None, breadwinner: Iin, died: dt.date,
          other_died_on: dt.date | None = None) -> decisions.DeathFacts:
    survivor = decisions.Survivor(child.value, child.birth_date, (), orphaned_on,
                                  other_died_on)
    return decisions.DeathFacts(breadwinner.value, died, "MJ-9", None, "", (), (survivor,))


def test_the_second_parent_s_death_replaces_the_survivor_pension_from_its_month(
        db: Path, store: PensionStore) -> None:
    father, mother = iin(dt.date(1980, 1, 1), False, 71), iin(dt.date(1982, 1, 1), True, 72)
    child = iin(dt.date(2015, 2, 3), True, 73)
    write(db, lambda c: decisions.decide_death(
        c, death(child, None, father, dt.date(2026, 2, 10)), today=dt.date(2026, 2, 12),
        now_ms=NOW_MS))
    outcome = write(db, lambda c: decisions.decide_death(
        c, death(child, dt.date(2026, 4, 20), mother, dt.date(2026, 4, 20),
                 dt.date(2026, 2, 10)), today=dt.date(2026, 4, 22), now_ms=NOW_MS))
    (orphan_id,) = outcome.survivor_pension_ids
    pensions = {a.breadwinner_iin: a for a in store.pension_status(child).assignments}
    orphan, old = pensions[mother.value], pensions[father.value]
    assert orphan.assignment_id == orphan_id and old.status == "stopped"
    assert old.stopped_on == dt.date(2026, 3, 31) and orphan_id in old.stop_reason
    assert {str(p.month): p.status.value for p in old.payments} == {
        "2026-03": "scheduled", **{f"2026-{m:02d}": "stopped" for m in range(4, 13)},
        "2027-01": "stopped", "2027-02": "stopped"}
    assert [(str(p.month), p.amount) for p in orphan.payments][:2] == [
        ("2026-04", 78311), ("2026-05", 78311)]
    assert "the other parent died on 2026-02-10" in orphan.basis
    assert f"replaces survivor pension {old.assignment_id} from 2026-04" in orphan.basis
    assert orphan.effective_from == dt.date(2026, 4, 20)
    # Either parent's death again: nothing more.
    for again in (death(child, dt.date(2026, 4, 20), father, dt.date(2026, 2, 10)),
                  death(child, None, father, dt.date(2026, 2, 10))):
        assert write(db, lambda c, f=again: decisions.decide_death(
            c, f, today=TODAY, now_ms=NOW_MS)).survivor_pension_ids == ()


def test_parents_dying_together_make_one_orphan_s_pension(db: Path, store: PensionStore
                                                          ) -> None:
    # Each death arrives when population records the other as deceased already.
    father, mother = iin(dt.date(1980, 1, 1), False, 82), iin(dt.date(1982, 1, 1), True, 83)
    child = iin(dt.date(2016, 2, 3), True, 84)
    day = dt.date(2026, 6, 1)
    for parent in (father, mother):
        write(db, lambda c, p=parent: decisions.decide_death(
            c, death(child, day, p, day, day), today=TODAY, now_ms=NOW_MS))
    (pension,) = store.pension_status(child).assignments
    assert (pension.breadwinner_iin, pension.monthly_amount) == (father.value, 78311)


def test_the_orphan_s_pension_ends_the_day_before_the_18th_birthday(
        db: Path, store: PensionStore) -> None:
    father = iin(dt.date(1975, 1, 1), False, 74)
    child = iin(dt.date(2008, 9, 1), False, 75)  # 18 on 1 September 2026
    write(db, lambda c: decisions.decide_death(
        c, death(child, TODAY, father, TODAY, dt.date(2020, 1, 1)), today=TODAY,
        now_ms=NOW_MS))
    (pension,) = store.pension_status(child).assignments
    assert pension.ends_on == dt.date(2026, 8, 31)
    assert [str(p.month) for p in pension.payments] == ["2026-06", "2026-07", "2026-08"]


def test_orphans_and_their_half_siblings_share_nothing(db: Path, store: PensionStore
                                                       ) -> None:
    father = iin(dt.date(1975, 1, 1), False, 76)
    orphan, half = iin(dt.date(2012, 1, 1), False, 77), iin(dt.date(2016, 1, 1), True, 78)
    facts = decisions.DeathFacts(father.value, TODAY, "", None, "", (), (
        decisions.Survivor(orphan.value, orphan.birth_date, (), TODAY, dt.date(2019, 5, 5)),
        decisions.Survivor(half.value, half.birth_date, ())))
    write(db, lambda c: decisions.decide_death(c, facts, today=TODAY, now_ms=NOW_MS))
    (paid_orphan,) = store.pension_status(orphan).assignments
    (paid_half,) = store.pension_status(half).assignments
    assert paid_orphan.monthly_amount == 78311
    assert paid_half.monthly_amount == 46783  # one dependant: 0.92 x 50,851


def test_the_recalculation_keeps_an_orphan_s_rate(db: Path, store: PensionStore) -> None:
    father = iin(dt.date(1975, 1, 1), False, 79)
    child = iin(dt.date(2014, 1, 1), True, 80)
    write(db, lambda c: decisions.decide_death(
        c, death(child, dt.date(2025, 11, 2), father, dt.date(2025, 11, 2)),
        today=dt.date(2025, 11, 3), now_ms=NOW_MS))
    report = recalculating.run(store, TODAY, now_ms=lambda: NOW_MS)
    assert report.skipped == ()
    assert report.recalculated == ()  # scheduled at each year's PM already
    (pension,) = store.pension_status(child).assignments
    amounts = {str(p.month): p.amount for p in pension.payments}
    assert (amounts["2025-12"], amounts["2026-01"]) == (71191, 78311)  # 1.54 x 46,228


# -- disabled since childhood ------------------------------------------------------------


@pytest.mark.parametrize(("group", "amount"), [(1, 111872), (2, 93057), (3, 81870)])
def test_an_adult_disabled_since_childhood_in_2026(group: int, amount: int) -> None:
    june = Month(2026, 6)
    assert calculation.disability_amount(group, dt.date(1990, 1, 1), june, True) == amount
    # The flag absent: the group's rate, as before.
    assert calculation.disability_amount(group, dt.date(1990, 1, 1), june) == {
        1: 111872, 2: 89498, 3: 61021}[group]


def test_since_childhood_rates_start_on_1_july_2023() -> None:
    born = dt.date(1990, 1, 1)
    assert calculation.disability_amount(2, born, Month(2023, 6), True) == calculation.\
        disability_amount(2, born, Month(2023, 6)) == rules.tenge(Decimal("1.53") * PM_2023)
    assert calculation.disability_amount(2, born, Month(2023, 7), True) == rules.tenge(
        Decimal("1.83") * PM_2023)
    units, which = rules.DISABILITY_BENEFIT.at(dt.date(2023, 7, 1)).units(3, 30, True)
    assert (units, which) == (Decimal("1.61"), "disabled since childhood, group 3")
    # A child keeps the children's rates whatever the flag says.
    assert rules.DISABILITY_BENEFIT.at(dt.date(2023, 7, 1)).units(3, 5, True)[0] == Decimal(
        "1.61")


def test_a_since_childhood_benefit_names_it_and_is_recalculated_at_its_rate(
        db: Path, store: PensionStore) -> None:
    person = iin(dt.date(1995, 3, 3), True, 81)
    facts = decisions.DisabilityFacts(person.value, 2, dt.date(2025, 10, 1), None, "MSE-9", (),
                                      None, person.birth_date, True)
    write(db, lambda c: decisions.decide_disability(c, facts, today=dt.date(2025, 10, 2),
                                                    now_ms=NOW_MS))
    (benefit,) = store.list_benefits(person)
    items = {i.name: i.value for i in benefit.items}
    assert items["since_childhood"] == "yes" and items["benefit_pm"] == "1.83"
    assert {str(p.month): p.amount for p in benefit.payments}["2026-01"] == 93057
    assert recalculating.run(store, TODAY, now_ms=lambda: NOW_MS).recalculated == ()
    plain = decisions.DisabilityFacts(person.value, 2, dt.date(2026, 1, 1), None, "MSE-10",
                                      (), None, person.birth_date)
    write(db, lambda c: decisions.decide_disability(c, plain, today=TODAY, now_ms=NOW_MS))
    new = next(b for b in store.list_benefits(person) if b.status == "active")
    assert "since_childhood" not in {i.name for i in new.items} and new.amount == 89498


# -- the amount shown --------------------------------------------------------------------


def test_the_amount_shown_is_this_month_s_payment() -> None:
    payments = (Payment(Month(2025, 11), 100), Payment(Month(2025, 12), 100),
                Payment(Month(2026, 1), 110), Payment(Month(2026, 2), 110, PaymentStatus.STOPPED))
    assert amount_of_month(payments, Month(2026, 1), 100) == 110
    assert amount_of_month(payments, Month(2025, 12), 100) == 100
    assert amount_of_month(payments, Month(2025, 1), 100) == 100  # not started: the first
    assert amount_of_month(payments, Month(2026, 5), 100) == 110  # ended: the last paid
    assert amount_of_month((), Month(2026, 5), 99) == 99
