"""The age pension's solidarity part: the income cap by assignment date, the share by
years of service before 1998 and the minimum pension floor (pure rules, no I/O)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from zhol.adapters.pension import calculation, solidarity
from zhol.adapters.pension.model import Month
from zhol.adapters.pension.rules import tenge

JAN_2026 = dt.date(2026, 1, 1)
RICH = 1_000_000  # above any cap


def part(average: int, years: str, female: bool, assigned_on: dt.date = JAN_2026
         ) -> solidarity.SolidarityPart:
    return solidarity.solidarity_part(average, "test", Decimal(years), female, assigned_on)


def items(found: solidarity.SolidarityPart) -> dict[str, str]:
    return {item.name: item.value for item in found.items}


@pytest.mark.parametrize(("assigned_on", "cap_mci", "mci"), [
    (dt.date(2022, 3, 31), 46, 3063),
    (dt.date(2022, 12, 31), 46, 3180),  # the MCI from 1 April 2022
    (dt.date(2023, 1, 1), 55, 3450),
    (dt.date(2026, 6, 1), 55, 4325),
])
def test_the_income_cap_follows_the_assignment_date(assigned_on: dt.date, cap_mci: int,
                                                    mci: int) -> None:
    found = part(RICH, "25", female=False, assigned_on=assigned_on)
    assert items(found)["income_cap"] == str(cap_mci * mci)
    assert found.amount == round(cap_mci * mci * 0.6)


@pytest.mark.parametrize(("years", "female", "share"), [
    ("25", False, "0.6"),  # men: 25 years give 60%
    ("25.99", False, "0.6"),  # only full years above count
    ("26", False, "0.61"),
    ("40", False, "0.75"),  # +1% a year up to 75%
    ("45", False, "0.75"),
    ("20", True, "0.6"),  # women: 20 years
    ("21", True, "0.61"),
    ("35", True, "0.75"),
    ("40", True, "0.75"),
    ("12.5", False, "0.3"),  # in proportion below the required years
    ("10", True, "0.3"),
])
def test_the_share_by_years_of_service_before_1998(years: str, female: bool, share: str
                                                   ) -> None:
    found = solidarity.solidarity_share(Decimal(years), female)
    assert found.share == Decimal(share)
    assert part(RICH, years, female).amount == tenge(55 * 4325 * Decimal(share))  # half up


def test_only_service_before_1998_counts() -> None:
    def before_1998(end: dt.date) -> float:
        calc = calculation.age_pension(calculation.PensionInputs(
            female=False, reached_age_on=dt.date(2026, 3, 1), retirement_age_months=756,
            calculated_on=dt.date(2026, 3, 1),
            employment=((dt.date(1972, 1, 1), end),), children_birth_dates=(),
            monthly_incomes=(RICH,) * 36, savings_balance=0))
        return calc.service_years_before_1998

    assert before_1998(dt.date(1996, 12, 31)) == pytest.approx(25.0, abs=0.01)
    assert before_1998(dt.date(1997, 12, 31)) == pytest.approx(26.0, abs=0.01)
    assert before_1998(dt.date(2010, 12, 31)) == pytest.approx(26.0, abs=0.01)  # 1998 on: no


def test_the_minimum_pension_is_a_floor_with_the_required_years() -> None:
    low = part(50_000, "25", female=False)  # 60% of 50,000 = 30,000
    assert low.floor_applied and low.amount == 69_049
    assert "floor applied" in low.lines[-1]
    assert items(low)["by_income"] == "30000"
    assert items(low)["minimum_pension"] == "69049"
    woman = part(0, "20", female=True)  # no income in the window: the minimum all the same
    assert woman.floor_applied and woman.amount == 69_049


def test_no_floor_below_the_required_years() -> None:
    short = part(50_000, "24.99", female=False)
    assert not short.floor_applied
    assert short.amount == round(50_000 * 0.6 * 24.99 / 25)
    assert part(50_000, "19.99", female=True).amount < 69_049


def test_no_floor_when_the_income_gives_more() -> None:
    found = part(RICH, "25", female=False)
    assert not found.floor_applied and found.amount == round(55 * 4325 * 0.6)


@pytest.mark.parametrize(("day", "minimum"), [
    (dt.date(2021, 6, 1), 43_272),
    (dt.date(2022, 3, 31), 46_302),
    (dt.date(2022, 4, 1), 48_032),
    (dt.date(2023, 1, 1), 53_076),
    (dt.date(2024, 1, 1), 57_853),
    (dt.date(2025, 12, 31), 62_771),
    (dt.date(2026, 1, 1), 69_049),
])
def test_minimum_pension_by_date(day: dt.date, minimum: int) -> None:
    row = solidarity.minimum_pension_row(day)
    assert row is not None and row.value == minimum and row.source
    assert part(0, "25", female=False, assigned_on=day).amount == minimum


def test_no_minimum_on_record_before_2021_means_no_floor() -> None:
    assert solidarity.minimum_pension_row(dt.date(2020, 12, 31)) is None
    found = part(10_000, "25", female=False, assigned_on=dt.date(2020, 6, 1))
    assert found.amount == 6_000 and not found.floor_applied
    assert items(found)["minimum_pension"] == ""


def test_the_age_pension_explains_the_parts() -> None:
    calc = calculation.age_pension(calculation.PensionInputs(
        female=True, reached_age_on=dt.date(2026, 9, 1), retirement_age_months=732,
        calculated_on=dt.date(2026, 9, 1),
        employment=((dt.date(1975, 1, 1), None),), children_birth_dates=(),
        monthly_incomes=(60_000,) * 36, savings_balance=0))
    found = {item.name: item for item in calc.items}
    assert found["service_years_before_1998"].value == "23"
    assert found["required_service_years"].value == "20"
    assert found["solidarity_share"].value == "0.63"  # 60% + 3 full years above
    assert found["income_cap"].value == str(55 * 4325)
    assert "source: " in found["income_cap"].note
    assert "source: " in found["minimum_pension"].note
    assert calc.solidarity_part == 69_049  # 63% of 60,000 is below the minimum pension
    text = " ".join(calc.explanation)
    assert "floor applied" in text and "63%" in text and "55 MCI" in text
    assert type(calc).from_json(calc.to_json()) == calc


def months(first: str, count: int, income: int) -> dict[Month, int]:
    start = Month.parse(first)
    return {start.plus(i): income for i in range(count)}


RETIRES = Month(2026, 6)  # the month the age is reached: the window ends before it


def test_the_income_window_is_the_best_three_years_in_a_row_not_the_last() -> None:
    # Well paid 2012-2014, then little until retirement: the good years count.
    incomes = months("2010-01", 48, 100_000) | months("2012-01", 36, 400_000)
    incomes |= months("2015-01", 137, 50_000)
    window = solidarity.best_income_window(incomes, RETIRES)
    assert (str(window.first), str(window.last)) == ("2012-01", "2014-12")
    assert window.incomes == (400_000,) * 36


def test_the_income_window_is_the_last_three_years_when_they_are_the_best() -> None:
    incomes = months("2010-01", 197, 100_000) | months("2023-06", 36, 300_000)
    window = solidarity.best_income_window(incomes, RETIRES)
    assert (str(window.first), str(window.last)) == ("2023-06", "2026-05")
    assert window.incomes == (300_000,) * 36


def test_equal_runs_take_the_one_nearest_to_retirement() -> None:
    window = solidarity.best_income_window(months("2010-01", 197, 100_000), RETIRES)
    assert (str(window.first), str(window.last)) == ("2023-06", "2026-05")


def test_the_window_never_reaches_the_month_of_retirement_nor_before_1995() -> None:
    incomes = months("1994-01", 12, 900_000) | months("2026-06", 6, 900_000)
    incomes |= months("2000-01", 3, 10_000)
    window = solidarity.best_income_window(incomes, RETIRES)
    assert window.incomes == (10_000,) * 3
    assert str(window.first) == "2000-01"


def test_a_break_inside_the_run_is_left_out_of_the_average() -> None:
    incomes = months("2020-01", 10, 200_000) | months("2021-01", 10, 200_000)
    window = solidarity.best_income_window(incomes, RETIRES)
    assert window.incomes == (200_000,) * 20  # 20 months with income: averaged over 20
    assert solidarity.best_income_window({}, RETIRES).describe().startswith("no income")
