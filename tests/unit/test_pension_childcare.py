"""The child-care allowance (adapters/pension/childcare.py): pure rules, no I/O.

Until 1.5 since 1 January 2023 (children not yet one on that day included); insured
mothers get 40% of the average income with social contributions over 24 months,
between the state benefit and 40% of 7 minimum wages; uninsured mothers the state
benefit by birth order; each month at the MCI and minimum wage of the year paid.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from zhol.adapters.pension import childcare, rules
from zhol.adapters.pension.childcare import ContributionMonth
from zhol.adapters.pension.model import Month


def paid(first: Month, count: int, income: int, social: int = 1) -> list[ContributionMonth]:
    """``count`` months of one employer's reports from ``first``, pension 10%."""
    return [ContributionMonth(first.plus(i), income, income // 10, social)
            for i in range(count)]


def items(care: childcare.ChildCare) -> dict[str, str]:
    return {i.name: i.value for i in care.items}


@pytest.mark.parametrize(("born", "payments", "ends_on"), [
    (dt.date(2021, 12, 31), 12, dt.date(2022, 12, 30)),  # one on 31 Dec 2022
    (dt.date(2022, 1, 1), 12, dt.date(2022, 12, 31)),  # one on 1 Jan 2023: not included
    (dt.date(2022, 1, 2), 18, dt.date(2023, 7, 1)),  # still under one on 1 Jan 2023
    (dt.date(2022, 12, 31), 18, dt.date(2024, 6, 29)),  # 1.5 on 30 June (add_months)
    (dt.date(2026, 6, 10), 18, dt.date(2027, 12, 9)),
])
def test_paid_until_one_and_a_half_for_children_under_one_on_1_january_2023(
        born: dt.date, payments: int, ends_on: dt.date) -> None:
    care = childcare.child_care(1, born, [])
    assert len(care.payments) == payments
    assert [p.month for p in care.payments] == [Month.of(born).plus(i) for i in range(payments)]
    assert care.ends_on == ends_on
    assert (items(care)["payments"], items(care)["ends_on"]) == (str(payments),
                                                                 ends_on.isoformat())


@pytest.mark.parametrize(("order", "amount"), [
    (1, 24912), (2, 29453), (3, 33951), (4, 38493), (7, 38493),  # x 4,325, half up
])
def test_uninsured_mother_gets_the_state_benefit_by_birth_order(order: int, amount: int) -> None:
    care = childcare.child_care(order, dt.date(2026, 3, 5), [])
    assert care.regime == childcare.UNINSURED == items(care)["regime"]
    assert care.amount == amount == rules.tenge(Decimal(items(care)["benefit_mci"]) * 4325)
    assert "income_in_window" not in items(care) and "cap" not in items(care)


def test_insured_mother_gets_40_percent_of_the_average_with_social_contributions() -> None:
    born = dt.date(2026, 3, 5)
    # 24 months of 300,000: the social base is income less the pension contribution.
    care = childcare.child_care(1, born, paid(Month(2024, 3), 24, 300_000))
    assert care.regime == childcare.INSURED
    assert care.amount == 108_000  # 40% of 270,000
    assert items(care)["average_monthly_income"] == "270000"
    assert items(care)["contribution_months"] == "24"
    # 12 months paid: the sum is still divided by 24.
    half = childcare.child_care(1, born, paid(Month(2025, 3), 12, 300_000))
    assert half.amount == 54_000


def test_one_month_with_social_contributions_makes_the_mother_insured() -> None:
    born = dt.date(2026, 3, 5)
    window_start = Month(2024, 3)
    one = childcare.child_care(1, born, paid(window_start, 1, 300_000))
    assert one.regime == childcare.INSURED and one.amount == 24912  # the floor
    assert items(one)["floor"] == "24912" and items(one)["by_income"] == "4500"
    outside = paid(window_start.plus(-1), 1, 300_000) + paid(Month(2026, 3), 1, 300_000)
    assert childcare.child_care(1, born, outside).regime == childcare.UNINSURED
    no_social = paid(window_start, 24, 300_000, social=0)
    assert childcare.child_care(1, born, no_social).regime == childcare.UNINSURED


def test_the_insured_payment_is_capped_at_40_percent_of_7_minimum_wages() -> None:
    care = childcare.child_care(1, dt.date(2026, 3, 5), paid(Month(2024, 3), 24, 5_000_000))
    wage = rules.MINIMUM_WAGE.at(dt.date(2026, 3, 1))
    assert care.amount == 238_000 == round(Decimal("0.4") * 7 * wage)
    assert items(care)["cap"] == "238000" and items(care)["minimum_wage"] == "85000"
    # the social base itself stops at 7 minimum wages a month
    base = childcare.social_base(ContributionMonth(Month(2025, 1), 5_000_000, 425_000, 1))
    assert base == 7 * 85_000


def test_the_floor_rises_with_the_birth_order_for_the_insured_too() -> None:
    low = paid(Month(2024, 3), 24, 50_000)  # 40% of 85,000 (the base's 1 MW) = 34,000
    amounts = [childcare.child_care(order, dt.date(2026, 3, 5), low).amount
               for order in (1, 2, 3, 4)]
    assert amounts == [34_000, 34_000, 34_000, 38493]


def test_each_month_is_paid_at_the_index_of_its_year() -> None:
    uninsured = childcare.child_care(1, dt.date(2025, 11, 20), [])
    amounts = {str(p.month): p.amount for p in uninsured.payments}
    assert amounts["2025-11"] == amounts["2025-12"] == 22648  # 5.76 x 3,932
    assert amounts["2026-01"] == amounts["2027-04"] == 24912  # 5.76 x 4,325
    assert uninsured.amount == 22648
    # The cap follows the minimum wage of the year paid (70,000 in 2023, 85,000 in 2024).
    high = Decimal(1_000_000)
    assert childcare.month_amount(Month(2023, 12), 1, high).amount == 196_000
    assert childcare.month_amount(Month(2024, 1), 1, high).amount == 238_000
    # The floor follows the MCI of the year paid for the insured too.
    low = childcare.child_care(1, dt.date(2025, 11, 20), paid(Month(2023, 11), 1, 100_000))
    assert low.regime == childcare.INSURED
    assert [p.amount for p in low.payments][1:3] == [22648, 24912]


def test_months_before_2023_keep_the_earlier_rule() -> None:
    high = Decimal(1_000_000)
    # 65 MCI: 3,180 from 1 April 2022 (the budget's revision), 3,063 before it
    assert childcare.month_amount(Month(2022, 12), 1, high).amount == 65 * 3180
    assert childcare.month_amount(Month(2022, 3), 1, high).amount == 65 * 3063
    assert childcare.month_amount(Month(2023, 1), 1, high).amount == 196_000  # 40% x 7 MW
    care = childcare.child_care(1, dt.date(2022, 6, 1), paid(Month(2020, 6), 24, 300_000))
    assert len(care.payments) == 18 and care.regime == childcare.INSURED
    uninsured = childcare.child_care(1, dt.date(2022, 6, 1), [])
    # 5.76 MCI: 18,317 at 3,180 (from 1 April 2022; the press's 17,643 is January's, at
    # 3,063), 19,872 at 3,450 in 2023 (the press's size)
    assert {p.amount for p in uninsured.payments} == {18317, 19872}
    march = childcare.child_care(1, dt.date(2022, 3, 31), [])
    assert [p.amount for p in march.payments][:2] == [17643, 18317]  # March, April 2022


def test_the_child_care_tables_name_a_source_for_every_row() -> None:
    for table in (childcare.CHILD_CARE_PERIOD, childcare.CHILD_CARE_AMOUNT,
                  childcare.STATE_BENEFIT):
        assert all(row.source.strip() for row in table.rows), table.name
    assert childcare.CHILD_CARE_INSURED.source.strip()
    care = childcare.child_care(1, dt.date(2026, 3, 5), paid(Month(2024, 3), 24, 300_000))
    notes = " ".join(i.note for i in care.items)
    assert "informburo.kz" in notes and "zakon.kz 2025-09-09" in notes
    assert "news.mail.ru" in notes
