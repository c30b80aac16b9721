"""The age pension's solidarity part (service before 1998): its rule tables and the pure
calculation, each row with its source (docs/rules.md).

- ``SOLIDARITY_INCOME_CAP``: the average monthly income counted is at most 46 MCI for a
  pension assigned before 2023, 55 MCI from 1 January 2023 (the MCI of the year the
  pension is assigned).
- ``SOLIDARITY_SHARES``: 60% of that income for 25 years of service before 1998 (men) or
  20 (women), +1% for each full year above, at most 75%; with fewer years, 60% in
  proportion to the years served.
- ``MINIMUM_PENSION``: the minimum pension (69,049 tenge in 2026), a floor under the
  solidarity part of a person with the required years; none before 2021 on record.

- ``best_income_window``: the average monthly income is that of the 36 consecutive
  calendar months since January 1995 with the most income (``rules.PENSION_INCOME``),
  not simply the 36 before retirement.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from zhol.adapters.pension.model import CalcItem, Month
from zhol.adapters.pension.rules import (
    MCI,
    PENSION_INCOME,
    DatedRow,
    DatedTable,
    PensionIncomeRule,
    _dated,
    tenge,
)

_CAP_46 = ("46 MCI: ministry's answer of 14 December 2018 (enbek.gov.kz node 359123, 46 MCI"
           " of the year's MCI); unchanged for 2022 (mgorod.kz 2021-12-08, \"the maximum"
           " income for newly assigned pensions stays at 46 MCI\"); earlier years not checked")
_CAP_55 = ("55 MCI for pensions assigned from 1 January 2023: the law of the end of 2022 on"
           " youth policy and social security (with women's age 61 and child care to 1.5)"
           " raised it from 46 to 55 MCI; mgorod.kz 2024-01-03 (55 MCI for newly assigned"
           " pensions); alau.kz 2026 (55 MCI in 2026)")

# The ceiling on the average monthly income, in MCI, by the day the pension is assigned.
SOLIDARITY_INCOME_CAP: DatedTable[Decimal] = _dated("solidarity income cap", {
    dt.date(2010, 1, 1): (Decimal(46), _CAP_46),
    dt.date(2023, 1, 1): (Decimal(55), _CAP_55),
})


@dataclass(frozen=True, slots=True)
class SolidarityShares:
    income_share: Decimal  # of the capped income, at the required years
    step: Decimal  # added per full year above the required years
    max_share: Decimal
    men_required_years: int
    women_required_years: int
    service_before: dt.date  # the solidarity system's service ends the day before
    source: str

    def required(self, female: bool) -> int:
        return self.women_required_years if female else self.men_required_years


SOLIDARITY_SHARES = SolidarityShares(
    Decimal("0.60"), Decimal("0.01"), Decimal("0.75"), 25, 20, dt.date(1998, 1, 1),
    "60% of the income for 25 years of service before 1998 (men), 20 (women), in proportion"
    " below (inform.kz 2017-11-06, the vice minister); at most 75% of the capped income"
    " (solva.kz \"о размерах пенсий в Казахстане\"); +1% for each full year above the"
    " required years as issue 14 states it (the act's text itself not found)",
)

_MINIMUM_BUDGET = "the law on the republican budget"

# The minimum pension (tenge), set each year by the republican budget law.
MINIMUM_PENSION: DatedTable[int] = _dated("minimum pension", {
    dt.date(2021, 1, 1): (43_272, "solva.kz \"о размерах пенсий в Казахстане\" (2021: the"
                          " minimum solidarity pension 43,272)"),
    dt.date(2022, 1, 1): (46_302, f"{_MINIMUM_BUDGET} 2022-2024 (mgorod.kz 2021-12-08)"),
    dt.date(2022, 4, 1): (48_032, "the budget's revision from 1 April 2022 (kaz.zakon.kz"
                          " 6006883)"),
    dt.date(2023, 1, 1): (53_076, f"{_MINIMUM_BUDGET} 2023-2025 (prodengi.kz, zakon.kz;"
                          " knews.kz 153-mrp-2023)"),
    dt.date(2024, 1, 1): (57_853, f"{_MINIMUM_BUDGET} 2024-2026 (mgorod.kz 2024-01-03)"),
    dt.date(2025, 1, 1): (62_771, f"{_MINIMUM_BUDGET} 2025-2027 (zakon.kz 6500457, the 2025"
                          " figure beside 2026's)"),
    dt.date(2026, 1, 1): (69_049, f"{_MINIMUM_BUDGET} 2026-2028 of 8 December 2025"
                          " (zakon.kz 6500457; mgorod.kz \"МРП на 2026 год\")"),
})


@dataclass(frozen=True, slots=True)
class IncomeWindow:
    first: Month | None  # None: no income on record in the months that may be counted
    last: Month | None
    incomes: tuple[int, ...]  # the income of each month of the run that has any, in order

    def describe(self) -> str:
        if self.first is None or self.last is None:
            return "no income on record since January 1995"
        return f"{self.first} to {self.last}"


def best_income_window(incomes: Mapping[Month, int], before: Month,
                       rule: PensionIncomeRule = PENSION_INCOME) -> IncomeWindow:
    """Of the runs of ``rule.months`` consecutive calendar months from ``rule.earliest``
    to the month before ``before``, the one with the most income (the latest of equal
    ones: the nearest to retirement). ``incomes``: recorded income by month."""
    earliest = Month.of(rule.earliest)
    last_allowed = before.plus(-1)
    held = {m: v for m, v in incomes.items() if earliest <= m <= last_allowed and v > 0}
    if not held:
        return IncomeWindow(None, None, ())
    # A best run can always start at a month with income, or end at the last month
    # allowed: try those starts only.
    latest_start = max(earliest, last_allowed.plus(1 - rule.months))
    starts = {max(earliest, min(m, latest_start)) for m in held}
    best: tuple[int, Month] | None = None
    for start in starts:
        end = start.plus(rule.months - 1)
        total = sum(v for m, v in held.items() if start <= m <= end)
        if best is None or (total, start) > best:
            best = (total, start)
    assert best is not None
    first = best[1]
    last = min(first.plus(rule.months - 1), last_allowed)
    return IncomeWindow(first, last, tuple(held[m] for m in sorted(held) if first <= m <= last))


def minimum_pension_row(day: dt.date) -> DatedRow[int] | None:
    """The minimum pension in force on ``day``; None before the table's first row (no
    floor on record then)."""
    if day < MINIMUM_PENSION.rows[0].start:
        return None
    return MINIMUM_PENSION.row(day)


@dataclass(frozen=True, slots=True)
class SolidarityShare:
    share: Decimal  # of the capped income
    required_years: int
    full_years_above: int  # 0 when below the required years
    ratio: Decimal  # service / required, at most 1


def solidarity_share(service_before_1998: Decimal, female: bool,
                     shares: SolidarityShares = SOLIDARITY_SHARES) -> SolidarityShare:
    """The share of the capped income for ``service_before_1998`` years (fractional)."""
    required = shares.required(female)
    if service_before_1998 >= required:
        above = int(service_before_1998) - required
        share = min(shares.max_share, shares.income_share + shares.step * above)
        return SolidarityShare(share, required, above, Decimal(1))
    ratio = service_before_1998 / required
    return SolidarityShare(shares.income_share * ratio, required, 0, ratio)


@dataclass(frozen=True, slots=True)
class SolidarityPart:
    amount: int
    floor_applied: bool
    items: tuple[CalcItem, ...]
    lines: tuple[str, ...]  # the explanation's sentences


def _d(value: Decimal) -> str:
    return format(value.normalize(), "f")


def solidarity_part(average_income: int, income_note: str, service_before_1998: Decimal,
                    female: bool, assigned_on: dt.date) -> SolidarityPart:
    """The solidarity part of an age pension assigned on ``assigned_on``: the share of the
    average monthly income (capped in MCI of that year) for the years of service before
    1998, never below the minimum pension for a person with the required years."""
    cap_row = SOLIDARITY_INCOME_CAP.row(assigned_on)
    year = assigned_on.year
    mci = MCI.at(assigned_on)  # in force on the day assigned (revised 1 April 2022)
    cap = tenge(cap_row.value * mci)
    capped = min(average_income, cap)
    due = solidarity_share(service_before_1998, female)
    shares = SOLIDARITY_SHARES
    by_income = tenge(capped * due.share) if service_before_1998 > 0 else 0
    full_service = service_before_1998 >= due.required_years
    minimum_row = minimum_pension_row(assigned_on)
    floor_applied = (full_service and minimum_row is not None
                     and by_income < minimum_row.value)
    amount = minimum_row.value if floor_applied and minimum_row else by_income
    share_text = _d(due.share.quantize(Decimal("0.0001")))
    if full_service:
        share_note = (f"{_d(shares.income_share)} for {due.required_years} years + "
                      f"{_d(shares.step)} x {due.full_years_above} full years above, at most"
                      f" {_d(shares.max_share)}")
    else:
        share_note = (f"{_d(shares.income_share)} x solidarity_ratio (fewer than "
                      f"{due.required_years} years)")
    if minimum_row is None:
        minimum_item = CalcItem("minimum_pension", "", "KZT",
                                f"no minimum pension on record on {assigned_on.isoformat()}")
    else:
        minimum_item = CalcItem(
            "minimum_pension", str(minimum_row.value), "KZT",
            f"rule table MINIMUM_PENSION from {minimum_row.start.isoformat()}; source: "
            f"{minimum_row.source}; the floor for {due.required_years} years of service"
            " before 1998 or more")
    items = (
        CalcItem("average_monthly_income", str(average_income), "KZT", income_note),
        CalcItem("mci", str(mci), "KZT", f"rule table MCI {year}"),
        CalcItem("income_cap", str(cap), "KZT",
                 f"{_d(cap_row.value)} MCI for a pension assigned on {assigned_on.isoformat()}"
                 f" (rule table SOLIDARITY_INCOME_CAP from {cap_row.start.isoformat()};"
                 f" source: {cap_row.source})"),
        CalcItem("service_years_before_1998", _d(service_before_1998), "years",
                 "employment periods before 1 January 1998"),
        CalcItem("required_service_years", str(due.required_years), "years",
                 f"{'women' if female else 'men'} (rule table SOLIDARITY_SHARES)"),
        CalcItem("solidarity_ratio", _d(due.ratio.quantize(Decimal("0.0001"))), "share",
                 "service before 1998 / required_service_years, at most 1"),
        CalcItem("solidarity_share", share_text, "share",
                 f"{share_note} (rule table SOLIDARITY_SHARES; source: {shares.source})"),
        CalcItem("by_income", str(by_income), "KZT",
                 "min(average_monthly_income, income_cap) x solidarity_share"),
        minimum_item,
        CalcItem("solidarity_part", str(amount), "KZT",
                 "minimum_pension (the floor applied)" if floor_applied else
                 "by_income" + ("" if full_service else
                                " (no floor: fewer than the required years)")),
    )
    percent = _d((due.share * 100).quantize(Decimal("0.01")))
    lines = [
        f"Solidarity part: {_d(service_before_1998)} years of service before 1998"
        f" ({due.required_years} required"
        + (f", {due.full_years_above} full years above" if full_service else "")
        + f") give {percent}% of the income.",
        f"Income {min(average_income, cap)} = min(average {average_income}, cap {cap} ="
        f" {_d(cap_row.value)} MCI x {mci} for a pension assigned in {year}).",
        f"By income {by_income} = {min(average_income, cap)} x {share_text}.",
    ]
    if floor_applied and minimum_row is not None:
        lines.append(f"Raised to the minimum pension {minimum_row.value} (floor applied).")
    elif minimum_row is not None and full_service:
        lines.append(f"Above the minimum pension {minimum_row.value} (no floor needed).")
    elif minimum_row is not None:
        lines.append(f"The minimum pension {minimum_row.value} applies only with "
                     f"{due.required_years} years of service before 1998.")
    return SolidarityPart(amount, floor_applied, items, tuple(lines))
