"""The pure recalculation: an old schedule and the rules in force give a decision (or
none), keeping the payments made, with arrears for months paid too little."""

from __future__ import annotations

import datetime as dt

from zhol.adapters.pension import calculation, recalculation
from zhol.adapters.pension.model import CalcItem, Month, Payment, PaymentStatus
from zhol.adapters.pension.recalculation import Entitlement, RuleRef

BIRTH = dt.date(2025, 9, 10)
STATE_2025 = 22648  # 5.76 x 3,932 MCI (first child)
STATE_2026 = 24912  # 5.76 x 4,325


def months(first: Month, count: int) -> list[Month]:
    return [first.plus(i) for i in range(count)]


def old_child_care(change_from: Month) -> tuple[Payment, ...]:
    """The earlier rule: 12 payments from the birth month, all at the birth year's
    amount; the months before ``change_from`` were paid."""
    return tuple(
        Payment(m, STATE_2025, PaymentStatus.PAID if m < change_from else
                PaymentStatus.SCHEDULED)
        for m in months(Month.of(BIRTH), 12))


def test_an_allowance_under_the_old_rule_is_extended_to_18_months_with_arrears() -> None:
    change = Month(2026, 6)
    due = recalculation.child_care(1, BIRTH, (), change)  # uninsured: the state benefit
    result = recalculation.recalculate(old_child_care(change), due, change,
                                       old_ends_on=dt.date(2026, 9, 9))
    assert result is not None
    assert (result.old_amount, result.new_amount) == (STATE_2025, STATE_2026)
    assert (result.old_ends_on, result.new_ends_on) == (dt.date(2026, 9, 9),
                                                         dt.date(2027, 3, 9))
    # The three unpaid months of the old schedule give way to nine, to the child's 1.5.
    assert [str(p.month) for p in result.replaced] == ["2026-06", "2026-07", "2026-08"]
    assert [p.month for p in result.schedule] == months(change, 9)
    assert {p.amount for p in result.schedule} == {STATE_2026}
    # January to May 2026 were paid at 2025's MCI: the difference is owed, paid history kept.
    assert [(str(a.month), a.due, a.paid, a.amount) for a in result.arrears] == [
        (str(m), STATE_2026, STATE_2025, STATE_2026 - STATE_2025)
        for m in months(Month(2026, 1), 5)]
    assert result.arrears_total == 5 * (STATE_2026 - STATE_2025)
    period = result.rules[0]
    assert (period.table, period.in_force_from) == ("CHILD_CARE_PERIOD", dt.date(2023, 1, 1))
    assert "informburo.kz" in period.source


def test_applying_a_recalculation_leaves_nothing_to_recalculate() -> None:
    change = Month(2026, 6)
    due = recalculation.child_care(1, BIRTH, (), change)
    old = old_child_care(change)
    result = recalculation.recalculate(old, due, change, old_ends_on=dt.date(2026, 9, 9))
    assert result is not None
    kept = tuple(p for p in old if p.month < change)
    recorded = {a.month: a.amount for a in result.arrears}
    again = recalculation.recalculate((*kept, *result.schedule), due, change,
                                      old_ends_on=result.new_ends_on,
                                      recorded_arrears=recorded)
    assert again is None
    # A month later, the month paid since counts as paid: still nothing.
    later = tuple(Payment(p.month, p.amount, PaymentStatus.PAID) if p.month == change else p
                  for p in (*kept, *result.schedule))
    assert recalculation.recalculate(later, due, change.plus(1), old_ends_on=None,
                                     recorded_arrears=recorded) is None


def test_a_benefit_fixed_at_its_first_year_is_paid_at_each_year_from_the_change() -> None:
    # Group 1 from June 2025, the old code's schedule at 2025's PM for every month.
    first = Month(2025, 6)
    fixed = 101702  # 2.2 x 46,228
    change = Month(2026, 3)
    old = tuple(Payment(m, fixed) for m in months(first, 12))
    ref = RuleRef("DISABILITY_BENEFIT", dt.date(2023, 7, 1), "lada.kz 147819")
    due = recalculation.indexed(months(first, 12),
                                lambda m: calculation.disability_amount(1, None, m),
                                (ref,), "disability benefit, group 1", None)
    result = recalculation.recalculate(old, due, change, old_ends_on=None)
    assert result is not None
    assert (result.old_amount, result.new_amount) == (fixed, 111872)
    assert [(str(a.month), a.amount) for a in result.arrears] == [
        ("2026-01", 10170), ("2026-02", 10170)]
    assert [(str(p.month), p.amount) for p in result.schedule] == [
        ("2026-03", 111872), ("2026-04", 111872), ("2026-05", 111872)]
    assert result.rules == (ref, recalculation.INDEXATION)


def test_an_overpaid_month_is_not_claimed_back_and_stopped_months_stay_stopped() -> None:
    change = Month(2026, 3)
    old = (Payment(Month(2026, 1), 500), Payment(Month(2026, 2), 100, PaymentStatus.STOPPED),
           Payment(Month(2026, 3), 100), Payment(Month(2026, 4), 100, PaymentStatus.STOPPED))
    due = Entitlement({m: 300 for m in months(Month(2026, 1), 4)}, None, (), "test")
    result = recalculation.recalculate(old, due, change, old_ends_on=None)
    assert result is not None
    assert result.arrears == ()  # January paid 500, 300 due: not claimed back
    assert [(str(p.month), p.amount) for p in result.schedule] == [("2026-03", 300)]


def test_the_same_schedule_is_no_decision() -> None:
    change = Month(2026, 3)
    due = Entitlement({Month(2026, 2): 300, Month(2026, 3): 300}, None, (), "test")
    old = (Payment(Month(2026, 2), 300, PaymentStatus.PAID), Payment(Month(2026, 3), 300))
    assert recalculation.recalculate(old, due, change, old_ends_on=None) is None


def test_an_allowance_for_a_child_already_one_and_a_half_is_left_as_it_is() -> None:
    due = recalculation.child_care(1, BIRTH, (), Month(2027, 4))
    assert due.ends_on == dt.date(2027, 3, 9)
    assert recalculation.still_due(due, dt.date(2027, 3, 9))
    assert not recalculation.still_due(due, dt.date(2027, 3, 10))


def test_an_old_burial_gets_the_savings_payment_and_keeps_the_budget_payment() -> None:
    death = dt.date(2024, 3, 1)  # MCI 3,692; 94 MCI from the savings since July 2023
    old_items = (CalcItem("recipient", "spouse"), CalcItem("burial_mci", "52", "MCI"),
                 CalcItem("amount", "191984", "KZT"))
    assert recalculation.old_burial(old_items)
    new_items = calculation.burial_benefit(death, "spouse", "age_pension PA-1").items
    assert not recalculation.old_burial(new_items)

    amount, result = recalculation.burial_savings(death, "spouse", 500_000, 191984,
                                                  Month(2026, 6))
    assert amount.amount == 94 * 3692
    assert amount.items == calculation.burial_savings_payment(death, "spouse", 500_000).items
    assert (result.old_amount, result.new_amount, result.arrears) == (0, 94 * 3692, ())
    assert [(str(p.month), p.amount) for p in result.schedule] == [("2026-06", 94 * 3692)]
    assert not result.replaced  # the budget payment made is kept, not claimed back
    assert "191984 KZT already made is kept" in result.reason
    assert [r.table for r in result.rules] == ["BURIAL_SAVINGS", "BURIAL_BUDGET", "BURIAL"]
    assert result.rules[0].in_force_from == dt.date(2023, 7, 1)
    # At most the balance.
    small, _ = recalculation.burial_savings(death, "child", 1000, 191984, Month(2026, 6))
    assert small.amount == 1000
