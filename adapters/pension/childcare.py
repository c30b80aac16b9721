"""The child-care allowance: its rule tables and its pure calculation (no I/O).

Since 1 January 2023 the allowance is paid until the child is one and a half (18
monthly payments), also for a child not yet one on that day [b]. It comes in one of two
regimes, chosen from the mother's contributions as pension holds them:

- **insured** (social contributions paid in a month of the 24 before the birth month):
  the State Social Insurance Fund's payment, 40% of the average monthly income on which
  social contributions were paid over those 24 months (their sum / 24), never below the
  state benefit and never above 40% of seven minimum wages [c];
- **uninsured**: the state benefit from the budget by birth order, 5.76 / 6.81 / 7.85 /
  8.90 MCI (first, second, third, fourth and later child) [d].

Each month is paid at the MCI and minimum wage in force on its first day (revised each
1 January, the MCI also on 1 April 2020 and 2022). A child who was one by 1 January
2023 had the earlier rule: 12 payments, the amount capped at 65 MCI (the code's earlier
rule, not checked against the act).
Sources as in issue 14 and docs/rules.md: [b] informburo.kz, the minister's answer on
child care until 1.5 from 1 January 2023; [c] zakon.kz 2025-09-09, the Social Insurance
Fund on the payment until 1.5; [d] news.mail.ru 2026-02-12 (5.76 MCI = 24,912 tenge).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from zhol.adapters.pension import calculation, rules
from zhol.adapters.pension.model import CalcItem, Month, Payment
from zhol.adapters.pension.rules import ByBirthOrder, DatedRow, DatedTable, tenge

INSURED = "insured"
UNINSURED = "uninsured"

_SOURCE_B = ("informburo.kz, the minister's answer (Social Code): paid until the child is"
             " 1.5 from 1 January 2023, extended for the children not yet one on that day")
_SOURCE_C = ("zakon.kz 2025-09-09, the State Social Insurance Fund: 40% of the average monthly"
             " income with social contributions over the last 2 years, not below the state"
             " benefit, not above 40% of 7 minimum wages")
_SOURCE_D = ("news.mail.ru 2026-02-12 (Ministry of Labour): the state benefit until 1.5 for"
             " mothers outside social insurance, 5.76 / 6.81 / 7.85 / 8.90 MCI")


@dataclass(frozen=True, slots=True)
class CarePeriod:
    """How many monthly payments, from the birth month."""

    payments: int
    until: str  # the age the allowance is paid until, in words


# By the last day the child is under one: the 2023 rule reached every child who was
# still under one on 1 January 2023 (a child born on 2 January 2022 or later).
CHILD_CARE_PERIOD: DatedTable[CarePeriod] = DatedTable("child-care period", (
    DatedRow(dt.date(2010, 1, 1), CarePeriod(12, "one"),
             "until the child is one before 2023 (informburo.kz, the minister's answer:"
             " recipients on 1 January 2023 are extended, a child who turned one in 2022"
             " is not)"),
    DatedRow(dt.date(2023, 1, 1), CarePeriod(18, "one and a half"), _SOURCE_B),
))


@dataclass(frozen=True, slots=True)
class CareAmountRule:
    """The amount of a month paid: the insured regime's share of the average income,
    between the state benefit and the cap (``cap_units`` of ``cap_unit`` of the year
    paid: "MCI" or "minimum wage")."""

    income_share: Decimal
    cap_units: Decimal
    cap_unit: str
    cap_text: str  # how the cap is set, in words


# By the first day of the month paid.
CHILD_CARE_AMOUNT: DatedTable[CareAmountRule] = DatedTable("child-care amount", (
    DatedRow(dt.date(2010, 1, 1),
             CareAmountRule(Decimal("0.40"), Decimal(65), "MCI", "65 MCI"),
             "the code's rule before 2023: 40% of the average income capped at 65 MCI (not"
             " checked against the act)"),
    DatedRow(dt.date(2023, 1, 1),
             CareAmountRule(Decimal("0.40"), Decimal("0.40") * 7, "minimum wage",
                            "40% of 7 minimum wages"),
             _SOURCE_C),
))

# The state benefit (the budget's) by birth order, the insured payment's floor. The same
# MCI sizes are published for 2015 (11,417 to 17,640 tenge at 1,982), 2022 (17,643 at
# 3,063), 2023 (19,872 at 3,450) and 2026 (24,912 at 4,325).
STATE_BENEFIT: DatedTable[tuple[ByBirthOrder, ...]] = DatedTable("child-care state benefit", (
    DatedRow(dt.date(2010, 1, 1), (
        ByBirthOrder(1, Decimal("5.76")),
        ByBirthOrder(2, Decimal("6.81")),
        ByBirthOrder(3, Decimal("7.85")),
        ByBirthOrder(4, Decimal("8.90")),
    ), _SOURCE_D + "; the same sizes in 2015 (vlast.kz), 2022 (qazweek.kz 2022-01-02) and"
       " 2023 (atpress.kz, from 1 January 2023)"),
))


@dataclass(frozen=True, slots=True)
class InsuredRule:
    """Which regime: insured when social contributions were paid in at least
    ``min_paid_months`` of the ``window_months`` months before the birth month; the
    average income is the sum over the window divided by ``window_months`` whatever the
    months paid."""

    window_months: int
    min_paid_months: int
    source: str


CHILD_CARE_INSURED = InsuredRule(24, 1, _SOURCE_C + "; one paid month suffices: system"
                                 " choice (the sources name no minimum)")


@dataclass(frozen=True, slots=True)
class ContributionMonth:
    """One employer's report for one month, as pension holds it."""

    month: Month
    income: int
    pension_amount: int
    social_amount: int


def social_base(row: ContributionMonth) -> int:
    """The income the month's social contribution was paid on: income less the pension
    contribution, between the year's lower and upper bounds in minimum wages (rule
    table CONTRIBUTION_RATES); 0 when no social contribution was paid."""
    if row.social_amount <= 0:
        return 0
    rates = rules.CONTRIBUTION_RATES.at(row.month.year)
    wage = rules.MINIMUM_WAGE.of_year(row.month.year)  # bounds "of the financial year"
    return min(max(row.income - row.pension_amount, rates.social_base_min_mzp * wage),
               rates.social_base_max_mzp * wage)


@dataclass(frozen=True, slots=True)
class MonthAmount:
    amount: int
    floor: int
    cap: int  # 0 for the uninsured regime (no cap applies)
    by_income: int  # 0 for the uninsured regime


def state_benefit_units(order: int, day: dt.date) -> ByBirthOrder:
    return rules.by_birth_order(STATE_BENEFIT.at(day), order)


def month_amount(month: Month, birth_order: int, average: Decimal | None) -> MonthAmount:
    """The allowance paid for ``month``: the rules in force on its first day at the MCI
    and minimum wage in force that day. ``average``: the insured mother's average monthly
    income; None for the uninsured regime (the state benefit)."""
    day = month.first_day
    mci = rules.MCI.at(day)
    floor = tenge(state_benefit_units(birth_order, day).mci * mci)
    if average is None:
        return MonthAmount(floor, floor, 0, 0)
    rule = CHILD_CARE_AMOUNT.at(day)
    unit = mci if rule.cap_unit == "MCI" else rules.MINIMUM_WAGE.at(day)
    cap = tenge(rule.cap_units * unit)
    by_income = tenge(average * rule.income_share)
    return MonthAmount(max(floor, min(by_income, cap)), floor, cap, by_income)


@dataclass(frozen=True, slots=True)
class ChildCare:
    regime: str  # INSURED or UNINSURED
    amount: int  # the birth month's
    ends_on: dt.date  # inclusive: the day before the child turns 1.5 (one, earlier rule)
    items: tuple[CalcItem, ...]
    payments: tuple[Payment, ...]  # one a month from the birth month, each its own amount


def _d(value: Decimal) -> str:
    return format(value.normalize(), "f")


def child_care(birth_order: int, birth_date: dt.date,
               contributions: Iterable[ContributionMonth]) -> ChildCare:
    """The allowance for a child born on ``birth_date`` (``birth_order``: of its mother)
    from the mother's ``contributions`` in the window before the birth month (rows
    outside it are ignored)."""
    window = CHILD_CARE_INSURED
    birth_month = Month.of(birth_date)
    first = birth_month.plus(-window.window_months)
    rows = [r for r in contributions
            if first.first_day <= r.month.first_day < birth_month.first_day]
    paid_months = len({r.month for r in rows if r.social_amount > 0})
    insured = paid_months >= window.min_paid_months
    income = sum(social_base(r) for r in rows)
    average = Decimal(income) / window.window_months if insured else None

    under_one_until = calculation.birthday(birth_date, 1) - dt.timedelta(days=1)
    period_row = CHILD_CARE_PERIOD.row(under_one_until)
    period = period_row.value
    ends_on = rules.add_months(birth_date, period.payments) - dt.timedelta(days=1)
    payments = tuple(
        Payment(birth_month.plus(i), month_amount(birth_month.plus(i), birth_order,
                                                  average).amount)
        for i in range(period.payments))
    now = month_amount(birth_month, birth_order, average)
    units = state_benefit_units(birth_order, birth_month.first_day)
    last_order = units is STATE_BENEFIT.at(birth_month.first_day)[-1]
    amount_row = CHILD_CARE_AMOUNT.row(birth_month.first_day)
    mci_row = rules.MCI.row(birth_month.first_day)  # as ``now``: the birth month's
    wage_row = rules.MINIMUM_WAGE.row(birth_month.first_day)

    items: list[CalcItem] = [
        CalcItem("birth_order", str(birth_order), "", "children of the mother born on or "
                 "before this child (population GetFamily)"),
        CalcItem("regime", INSURED if insured else UNINSURED, "",
                 f"social contributions paid in {paid_months} of the {window.window_months}"
                 f" months before the birth month (pension's contributions; at least"
                 f" {window.min_paid_months}: insured, the State Social Insurance Fund's"
                 " payment; else the state benefit from the budget)"),
        CalcItem("contribution_months", str(paid_months), "months",
                 f"months with social contributions in the {window.window_months} months"
                 f" {first} to {birth_month.plus(-1)}"),
    ]
    if insured:
        assert average is not None
        items += [
            CalcItem("income_in_window", str(income), "KZT",
                     "the income social contributions were paid on (income less the"
                     " pension contribution, within the contribution bounds) over the"
                     f" {window.window_months} months"),
            CalcItem("average_monthly_income", str(tenge(average)), "KZT",
                     f"income_in_window / {window.window_months}; source: {window.source}"),
            CalcItem("income_share", _d(amount_row.value.income_share), "share",
                     f"rule table CHILD_CARE_AMOUNT from {amount_row.start.isoformat()};"
                     f" source: {amount_row.source}"),
            CalcItem("by_income", str(now.by_income), "KZT",
                     "average_monthly_income x income_share"),
        ]
    items.append(CalcItem("mci", str(mci_row.value), "KZT", rules.index_note("MCI", mci_row)))
    if insured and amount_row.value.cap_unit != "MCI":
        items.append(CalcItem("minimum_wage", str(wage_row.value), "KZT",
                              rules.index_note("MINIMUM_WAGE", wage_row)))
    if insured:
        items.append(CalcItem("cap", str(now.cap), "KZT",
                              f"{amount_row.value.cap_text} (rule table CHILD_CARE_AMOUNT)"))
    items += [
        CalcItem("benefit_mci", _d(units.mci), "MCI",
                 f"the state benefit for birth order {units.first_order}"
                 f"{'+' if last_order else ''} (rule table STATE_BENEFIT; source:"
                 f" {STATE_BENEFIT.row(birth_month.first_day).source})"),
        CalcItem("floor", str(now.floor), "KZT",
                 "benefit_mci x mci: the state benefit"
                 + (", the payment's lower limit" if insured else "")),
    ]
    items += [
        CalcItem("amount", str(now.amount), "KZT",
                 ("max(floor, min(by_income, cap))" if insured else "floor")
                 + f" for {birth_month}; each month at the MCI and minimum wage of the year"
                 " paid (revised each 1 January)"),
        CalcItem("payments", str(period.payments), "months",
                 f"from the birth month until the child is {period.until} (rule table"
                 f" CHILD_CARE_PERIOD from {period_row.start.isoformat()}; source:"
                 f" {period_row.source})"),
        CalcItem("ends_on", ends_on.isoformat(), "date",
                 f"the day before the child is {period.until}"),
    ]
    return ChildCare(INSURED if insured else UNINSURED, now.amount, ends_on, tuple(items),
                     payments)

