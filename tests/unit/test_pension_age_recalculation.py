"""An age pension assigned under the code's earlier rules (46 MCI income cap, no
+1%/year share, its base part fixed at the assignment year's PM; a woman's age by the
2013 schedule) recomputed with the rules in force, once."""

from __future__ import annotations

import dataclasses
import datetime as dt

from zhol.adapters.pension import age_recalculation, calculation, recalculation
from zhol.adapters.pension.model import Month, Payment, PaymentStatus, PensionCalculation

REACHED = dt.date(2025, 9, 10)  # a man born 10 September 1962 turns 63
INCOME = 250_000  # above both caps
CAP_46_2025, CAP_55_2025 = 46 * 3932, 55 * 3932  # 180,872 and 216,260
OLD_SOLIDARITY = 108_523  # 60% of the 46 MCI cap: the old code's share and cap
NEW_SOLIDARITY = 136_244  # 63% (28 years before 1998: 60% + 3 x 1%) of the 55 MCI cap
BASE_2025, BASE_2026 = 50_851, 60_004  # 110% of 46,228 and 118% of 50,851 (55 years)
OLD_AMOUNT = BASE_2025 + OLD_SOLIDARITY  # no savings: no accumulative part


def old_age_pension(*, female: bool = False, reached: dt.date = REACHED,
                    age_months: int = 63 * 12, income: int = INCOME,
                    old_solidarity: int = OLD_SOLIDARITY) -> PensionCalculation:
    """The stored calculation of a pension the old code assigned on ``reached``: the
    inputs as stored (service from 1970, 36 months at INCOME), its solidarity part by the
    46 MCI cap at 60% and its base part at the assignment year's PM."""
    inputs = calculation.PensionInputs(
        female=female, reached_age_on=reached, retirement_age_months=age_months,
        calculated_on=reached, employment=((dt.date(1970, 1, 1), None),),
        children_birth_dates=(), monthly_incomes=(income,) * 36, savings_balance=0)
    fresh = calculation.age_pension(inputs)
    return dataclasses.replace(fresh, solidarity_part=old_solidarity,
                               monthly_amount=fresh.base_pension + old_solidarity)


def old_schedule(first: Month, change: Month, amount: int) -> tuple[Payment, ...]:
    """Twelve payments at one amount; those before ``change`` paid."""
    return tuple(Payment(m, amount, PaymentStatus.PAID if m < change else
                         PaymentStatus.SCHEDULED)
                 for m in (first.plus(i) for i in range(12)))


def assigned(stored: PensionCalculation, schedule: tuple[Payment, ...], *, female: bool,
             born: dt.date, assigned_on: dt.date) -> age_recalculation.Assigned:
    return age_recalculation.Assigned(female, born, stored, assigned_on,
                                      tuple(p.month for p in schedule))


def test_the_46_mci_cap_becomes_55_with_arrears_and_a_second_run_changes_nothing() -> None:
    stored = old_age_pension()
    assert stored.base_pension == BASE_2025 and stored.monthly_amount == OLD_AMOUNT
    change = Month(2026, 6)
    old = old_schedule(Month.of(REACHED), change, OLD_AMOUNT)
    due = age_recalculation.age_pension(
        assigned(stored, old, female=False, born=dt.date(1962, 9, 10), assigned_on=REACHED),
        change)
    result = recalculation.recalculate(old, due, change, old_ends_on=None)
    assert result is not None
    assert (result.old_amount, result.new_amount) == (OLD_AMOUNT, BASE_2026 + NEW_SOLIDARITY)
    assert str(CAP_55_2025) in dict((i.name, i.value) for i in due.items)["income_cap"]
    cap = next(r for r in result.rules if r.table == "SOLIDARITY_INCOME_CAP")
    assert cap.in_force_from == dt.date(2023, 1, 1) and "55 MCI" in cap.source
    assert {r.table for r in result.rules} >= {"SOLIDARITY_SHARES", "BASE_PENSION",
                                               "INDEXED_YEARLY"}
    # September to December 2025 owed the cap's difference, January to May 2026 also
    # the base part at 2026's PM and share; June to August replaced.
    assert [(str(a.month), a.amount) for a in result.arrears] == [
        *((f"2025-{m:02d}", BASE_2025 + NEW_SOLIDARITY - OLD_AMOUNT) for m in range(9, 13)),
        *((f"2026-{m:02d}", BASE_2026 + NEW_SOLIDARITY - OLD_AMOUNT) for m in range(1, 6))]
    assert [str(p.month) for p in result.replaced] == ["2026-06", "2026-07", "2026-08"]
    assert {p.amount for p in result.schedule} == {BASE_2026 + NEW_SOLIDARITY}

    # Applied: the same stored calculation and the new schedule give no decision.
    kept = tuple(p for p in old if p.month < change)
    recorded = {a.month: a.amount for a in result.arrears}
    again = age_recalculation.age_pension(
        assigned(stored, (*kept, *result.schedule), female=False,
                 born=dt.date(1962, 9, 10), assigned_on=REACHED), change)
    assert recalculation.recalculate((*kept, *result.schedule), again, change,
                                     old_ends_on=None, recorded_arrears=recorded) is None


def test_a_woman_assigned_late_by_the_2013_schedule_is_due_from_her_61st_birthday() -> None:
    born = dt.date(1963, 3, 10)
    # The 2013 schedule: 61.5 in 2024, reached on 10 September; in force: 61 on 10 March.
    assert age_recalculation.women_retirement_2013(born) == dt.date(2024, 9, 10)
    late = dt.date(2024, 9, 10)
    stored = old_age_pension(female=True, reached=late, age_months=61 * 12 + 6)
    change = Month(2025, 6)
    old = old_schedule(Month.of(late), change, stored.monthly_amount)
    due = age_recalculation.age_pension(
        assigned(stored, old, female=True, born=born, assigned_on=late), change)
    assert min(due.due) == Month(2024, 3)
    age = next(r for r in due.rules if r.table == "RETIREMENT_AGE")
    assert "astanatimes.com 2022-10-27" in age.source
    result = recalculation.recalculate(old, due, change, old_ends_on=None)
    assert result is not None
    never_paid = [a for a in result.arrears if a.paid == 0]
    assert [str(a.month) for a in never_paid] == [f"2024-{m:02d}" for m in range(3, 9)]
    assert "2024-03-10" in result.reason
    kept = tuple(p for p in old if p.month < change)
    recorded = {a.month: a.amount for a in result.arrears}
    applied = (*kept, *result.schedule)
    again = age_recalculation.age_pension(
        assigned(stored, applied, female=True, born=born, assigned_on=late), change)
    assert recalculation.recalculate(applied, again, change, old_ends_on=None,
                                     recorded_arrears=recorded) is None


def test_a_pension_already_as_the_rules_say_is_no_decision() -> None:
    fresh = old_age_pension()
    stored = dataclasses.replace(fresh, solidarity_part=NEW_SOLIDARITY,
                                 monthly_amount=BASE_2025 + NEW_SOLIDARITY)
    change = Month(2025, 11)
    schedule = tuple(Payment(m, BASE_2025 + NEW_SOLIDARITY if m.year == 2025 else
                             BASE_2026 + NEW_SOLIDARITY)
                     for m in (Month.of(REACHED).plus(i) for i in range(12)))
    due = age_recalculation.age_pension(
        assigned(stored, schedule, female=False, born=dt.date(1962, 9, 10),
                 assigned_on=REACHED), change)
    assert recalculation.recalculate(schedule, due, change, old_ends_on=None) is None


def test_a_solidarity_part_below_the_minimum_pension_is_raised_to_each_year_s_floor() -> None:
    by_income = 50_400  # 63% of 80,000: below the minimum pension, which the old code ignored
    stored = old_age_pension(income=80_000, old_solidarity=by_income)
    change = Month(2026, 6)
    old = old_schedule(Month.of(REACHED), change, BASE_2025 + by_income)
    due = age_recalculation.age_pension(
        assigned(stored, old, female=False, born=dt.date(1962, 9, 10), assigned_on=REACHED),
        change)
    # 62,771 in 2025 and 69,049 in 2026 (the budget laws).
    assert due.due[Month(2025, 12)] == BASE_2025 + 62_771
    assert due.due[Month(2026, 6)] == BASE_2026 + 69_049
    floors = [r.in_force_from for r in due.rules if r.table == "MINIMUM_PENSION"]
    assert floors == [dt.date(2025, 1, 1), dt.date(2026, 1, 1)]
