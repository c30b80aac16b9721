"""What an age pension assigned under the code's earlier rules is due now (pure, no I/O).

An age pension is recomputed from what pension stored with its assignment (the
calculation's inputs: years of service, service before 1998, the average monthly income,
the accumulative part from the savings, the day the age was reached) and the birth date
and sex its IIN encodes, with the rules in force (``calculation``, ``solidarity``):

- the solidarity part: the income cap of the day the calculation was made (55 MCI from
  2023, 46 before), the 60% + 1% a year share up to 75%, and the minimum pension of the
  month paid as its floor (the floor rises with the minimum pension each January);
- the base part: the share of the PM by years of service of the year paid, times that
  year's PM (indexed each January, as the benefits are);
- the accumulative part as assigned (paid from the savings, not by these rules).

The months due are those scheduled; a woman assigned under the 2013 schedule (the stored
retirement age differs from the one in force for her birth date), or refused by it and
assigned after her day by the rules in force, is due from the month she reached the age
by the rules in force, so the months before her first payment become arrears. The pure
comparison with the payments is ``recalculation.recalculate``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from zhol.adapters.pension import calculation, recalculation, rules, solidarity
from zhol.adapters.pension.model import CalcItem, InvalidInput, Month, PensionCalculation
from zhol.adapters.pension.recalculation import Entitlement, RuleRef

KIND = "age_pension"  # the kind a recalculated age pension is named by

_LAW_2013 = ("Law of 21 June 2013 No. 105-V on pension provision: women's age +6 months a"
             " year from 2018 to 63 in 2027 (the code's earlier rule, replaced by the 2022"
             " amendments)")

# Women's retirement age (months) by the 2013 schedule: the rule the code had before
# issue 14. Only used to tell a woman the old schedule refused from one assigned late
# for another reason; never to assign.
WOMEN_AGE_2013: rules.YearTable[int] = rules._sourced_by_year("women's age 2013", {
    1998: (58 * 12, _LAW_2013), 2018: (58 * 12 + 6, _LAW_2013), 2019: (59 * 12, _LAW_2013),
    2020: (59 * 12 + 6, _LAW_2013), 2021: (60 * 12, _LAW_2013),
    2022: (60 * 12 + 6, _LAW_2013), 2023: (61 * 12, _LAW_2013),
    2024: (61 * 12 + 6, _LAW_2013), 2025: (62 * 12, _LAW_2013),
    2026: (62 * 12 + 6, _LAW_2013), 2027: (63 * 12, _LAW_2013),
})


def women_retirement_2013(born: dt.date) -> dt.date:
    """The day a woman reached retirement age by the 2013 schedule (the age in force in
    the year it is reached, as ``rules.retirement_date`` reads its table)."""
    first = WOMEN_AGE_2013.first_year
    for year in range(max(first, born.year + 58), born.year + 90):
        reached = rules.add_months(born, WOMEN_AGE_2013.at(year))
        if reached.year <= year:
            return reached if year == first or reached.year == year else dt.date(year, 1, 1)
    raise AssertionError("the 2013 schedule ends with a fixed age")


@dataclass(frozen=True, slots=True)
class Assigned:
    """An age pension as pension stored it."""

    female: bool  # from the IIN
    born: dt.date  # from the IIN
    calculation: PensionCalculation
    assigned_on: dt.date
    months: tuple[Month, ...]  # its payment schedule's months, every status, ascending


def calculated_on(stored: PensionCalculation, assigned_on: dt.date) -> dt.date:
    """The day the stored calculation took its rules from (``calculated_on``): the later
    of the day the age was reached and the assignment day, at the earliest 1 January of
    its rule year (a legacy assignment is stored as calculated at its seed date)."""
    reached = stored.reached_age_on or assigned_on
    return max(reached, assigned_on, dt.date(stored.rule_year, 1, 1))


def first_due(assigned: Assigned) -> tuple[Month, rules.RetirementDate | None]:
    """The first month due, and the retirement date in force when the age rule moved it
    earlier than the schedule's first month (None: the schedule's first month stands)."""
    first = assigned.months[0]
    due = rules.retirement_date(assigned.born, assigned.female)
    stored = assigned.calculation
    reach_month = Month.of(due.reached_on)
    if not assigned.female or reach_month >= first:
        return first, None
    assigned_late = stored.retirement_age_months != due.age_months
    refused = (women_retirement_2013(assigned.born) > due.reached_on
               and assigned.assigned_on > due.reached_on)
    return (reach_month, due) if assigned_late or refused else (first, None)


def _dec(value: float) -> Decimal:
    return Decimal(str(value))


def _d(value: Decimal) -> str:
    return format(value.normalize(), "f")


@dataclass(frozen=True, slots=True)
class AgeRules:
    """The parts of a stored age pension that do not change month to month."""

    full_years: int  # of service: the base share
    solidarity: solidarity.SolidarityPart  # at the calculation day
    by_income: int
    full_service: bool  # the required years before 1998: the minimum pension's floor
    accumulative: int


def age_rules(assigned: Assigned) -> AgeRules:
    return rules_of(assigned.calculation, assigned.female,
                    calculated_on(assigned.calculation, assigned.assigned_on))


def rules_of(stored: PensionCalculation, female: bool, day: dt.date) -> AgeRules:
    """The fixed parts of an age pension calculated on ``day`` (the solidarity part's
    income cap is that day's); the retirement run prices each month with them as the
    recalculation does (``monthly_amount``), so a new pension's schedule and a later
    recalculation agree."""
    before = _dec(stored.service_years_before_1998)
    part = solidarity.solidarity_part(
        stored.average_monthly_income,
        f"as assigned: {stored.contribution_months} months with contributions",
        before, female, day)
    by_income = next(int(i.value) for i in part.items if i.name == "by_income")
    required = solidarity.SOLIDARITY_SHARES.required(female)
    return AgeRules(int(_dec(stored.years_of_service)), part, by_income, before >= required,
                    stored.accumulative_part)


def base_part(full_years: int, month: Month) -> int:
    """The base pension paid for ``month``: the share of that year's row for the years of
    service, times the PM in force on its first day."""
    rule = rules.BASE_PENSION.at(month.year)
    above = max(0, full_years - rule.threshold_years)
    share = min(rule.max_share, rule.min_share + rule.step * above)
    return rules.tenge(rules.SUBSISTENCE_MINIMUM.at(month.first_day) * share)


def solidarity_amount(parts: AgeRules, month: Month) -> int:
    """The solidarity part paid for ``month``: by income, raised to the month's minimum
    pension for a person with the required years before 1998."""
    floor = solidarity.minimum_pension_row(month.first_day)
    if parts.full_service and floor is not None:
        return max(parts.by_income, floor.value)
    return parts.by_income


def monthly_amount(parts: AgeRules, month: Month) -> int:
    return base_part(parts.full_years, month) + solidarity_amount(parts, month) + (
        parts.accumulative)


def _unique(refs: Sequence[RuleRef]) -> tuple[RuleRef, ...]:
    found: list[RuleRef] = []
    for ref in refs:
        if ref not in found:
            found.append(ref)
    return tuple(found)


def age_pension(assigned: Assigned, change_from: Month) -> Entitlement:
    """What the rules in force give for each month of an age pension's schedule (from the
    first month due), with the rule rows the amounts rest on and the new items."""
    stored = assigned.calculation
    if stored.reached_age_on is None or stored.retirement_age_months == 0:
        raise InvalidInput("the stored calculation is not an age pension's")
    if not assigned.months:
        raise InvalidInput("no payment schedule")
    first, moved = first_due(assigned)
    last = assigned.months[-1]
    months = [first.plus(i) for i in range(calculation.months_between(first, last))]
    parts = age_rules(assigned)
    day = calculated_on(stored, assigned.assigned_on)
    cap = solidarity.SOLIDARITY_INCOME_CAP.row(day)
    shares = solidarity.SOLIDARITY_SHARES
    refs: list[RuleRef] = []
    if moved is not None:
        refs.append(RuleRef("RETIREMENT_AGE", dt.date(moved.rule_year, 1, 1), moved.source))
    refs += [RuleRef("SOLIDARITY_INCOME_CAP", cap.start, cap.source),
             RuleRef("SOLIDARITY_SHARES", None, shares.source)]
    for month in months:
        floor = solidarity.minimum_pension_row(month.first_day)
        if parts.full_service and floor is not None:
            refs.append(RuleRef("MINIMUM_PENSION", floor.start, floor.source))
    for month in months:
        row = rules.BASE_PENSION.row(month.year)
        refs.append(RuleRef("BASE_PENSION", dt.date(row.year, 1, 1), row.source))
    shown = max(change_from, first)
    base, solid = base_part(parts.full_years, shown), solidarity_amount(parts, shown)
    total = monthly_amount(parts, shown)
    items = (
        CalcItem("years_of_service", str(parts.full_years), "years",
                 "full years, as assigned (employment and child care)"),
        CalcItem("base_pension", str(base), "KZT",
                 f"the share of rule table BASE_PENSION {shown.year} x SUBSISTENCE_MINIMUM"
                 f" {shown.year}; {rules.INDEXED_YEARLY}"),
        *parts.solidarity.items[:-2],
        CalcItem("solidarity_part", str(solid), "KZT",
                 "by_income, at least the minimum pension of the month paid with the"
                 " required years before 1998"),
        CalcItem("accumulative_part", str(parts.accumulative), "KZT", "as assigned"),
        CalcItem("monthly_amount", str(total), "KZT",
                 f"base_pension + solidarity_part + accumulative_part for {shown}"),
    )
    reason = ("age pension by the rules in force: the solidarity part by the income cap"
              f" ({_d(cap.value)} MCI), the shares up to 75% and the minimum"
              " pension; the base part at the share and PM of the year paid")
    if moved is not None:
        age = _d(Decimal(moved.age_months) / 12)
        reason += (f"; retirement age {age} reached on {moved.reached_on.isoformat()}"
                   f" (the stored assignment: {stored.retirement_age} from"
                   f" {stored.reached_age_on.isoformat()})")
    if (stored.base_pension, stored.solidarity_part) != (base, solid):
        reason += (f"; {shown}: base part {base} (was {stored.base_pension}), solidarity part"
                   f" {solid} (was {stored.solidarity_part})")
    return recalculation.indexed(
        months, lambda m: monthly_amount(parts, m), _unique(refs), reason, None, items)


__all__ = ["KIND", "Assigned", "age_pension", "monthly_amount", "rules_of",
           "women_retirement_2013"]
