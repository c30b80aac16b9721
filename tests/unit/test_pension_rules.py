"""The pension system's rule tables and calculations: pure functions, no I/O."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from zhol.adapters.pension import calculation, rules, solidarity
from zhol.adapters.pension.employer_contribution import EMPLOYER_PENSION
from zhol.adapters.pension.model import Bin, InvalidInput, Month, NotAllowed, make_bin
from zhol.adapters.pension.sources import age_on
from zhol.core.iin import make_iin


def test_mci_is_a_table_by_the_day_in_force() -> None:
    assert rules.MCI.at(dt.date(2024, 6, 1)) == 3692
    assert rules.MCI.at(dt.date(2026, 1, 1)) == 4325
    assert rules.MCI.at(dt.date(2031, 5, 1)) == 4325  # in force until a later row
    with pytest.raises(NotAllowed):
        rules.MCI.at(dt.date(2009, 12, 31))


@pytest.mark.parametrize(("table", "before", "after"), [
    (rules.MCI, 3063, 3180),
    (rules.SUBSISTENCE_MINIMUM, 36018, 37389),
    (rules.MINIMUM_WAGE, 60000, 60000),  # not revised
])
def test_the_indices_revised_on_1_april_2022(table: rules.DatedTable[int], before: int,
                                            after: int) -> None:
    """The budget's revision from 1 April 2022 (egov.kz article_mci_2012)."""
    assert table.at(dt.date(2022, 3, 31)) == before
    assert table.at(dt.date(2022, 4, 1)) == after
    assert "1 April 2022" in table.row(dt.date(2022, 4, 1)).source or before == after


def test_the_indices_revised_on_1_april_2020() -> None:
    """MCI 2,651 -> 2,778 and PM 31,183 -> 32,668 from 1 April 2020 (16news.kz 2020-04-10)."""
    assert [rules.MCI.at(dt.date(2020, m, 1)) for m in (3, 4)] == [2651, 2778]
    assert [rules.SUBSISTENCE_MINIMUM.at(dt.date(2020, m, 1)) for m in (3, 4)] == [31183, 32668]


def test_the_subsistence_minimum_is_the_budget_law_s_each_year() -> None:
    """2011-2014 and 2016-2017 are their own years', not carried forward."""
    found = {year: rules.SUBSISTENCE_MINIMUM.at(dt.date(year, 6, 1))
             for year in range(2010, 2019)}
    assert found == {2010: 14952, 2011: 15999, 2012: 17439, 2013: 18660, 2014: 19966,
                     2015: 21364, 2016: 22859, 2017: 24459, 2018: 28284}


def test_the_minimum_wage_of_a_year_is_refused_when_it_changed_within_it() -> None:
    """Contribution bounds are in minimum wages "of the financial year"."""
    for year in range(2010, 2031):
        assert rules.MINIMUM_WAGE.of_year(year) == rules.MINIMUM_WAGE.at(dt.date(year, 12, 31))
    with pytest.raises(ValueError):
        rules.MCI.of_year(2022)
    assert rules.MCI.of_year(2021) == 2917


def test_a_month_is_priced_at_the_index_in_force_on_its_first_day() -> None:
    """Monthly payments: March 2022 at PM 36,018, April 2022 at 37,389."""
    march, april = Month(2022, 3), Month(2022, 4)
    assert calculation.disability_amount(1, None, march) == round(Decimal("22.5") * 3063)
    assert calculation.disability_amount(1, None, april) == round(Decimal("22.5") * 3180)
    assert calculation.carer_amount(march) == rules.tenge(Decimal("1.4") * 36018)
    assert calculation.carer_amount(april) == rules.tenge(Decimal("1.4") * 37389)
    assert calculation.survivor_amount(1, march) == rules.tenge(Decimal("0.86") * 36018)
    assert calculation.survivor_amount(1, april) == rules.tenge(Decimal("0.86") * 37389)


def test_a_lump_sum_is_priced_at_the_mci_in_force_on_its_day() -> None:
    """Birth and burial lump sums: 31 March 2022 at MCI 3,063, 1 April 2022 at 3,180."""
    last, first = dt.date(2022, 3, 31), dt.date(2022, 4, 1)
    assert calculation.birth_lump_sum(1, last).amount == 38 * 3063
    assert calculation.birth_lump_sum(1, first).amount == 38 * 3180
    assert calculation.burial_benefit(last, "spouse", "age pension").amount == 35 * 3063
    burial = calculation.burial_benefit(first, "spouse", "age pension")
    assert burial.amount == 35 * 3180
    mci = {item.name: item for item in burial.items}["mci"]
    assert mci.value == "3180" and mci.note.startswith("rule table MCI from 2022-04-01; source:")


def test_year_tables_must_ascend() -> None:
    with pytest.raises(ValueError):
        rules.YearTable("bad", (rules.YearRow(2020, 1), rules.YearRow(2019, 2)))


@pytest.mark.parametrize(
    ("birth", "female", "reached", "age_months"),
    [
        (dt.date(1961, 3, 5), False, dt.date(2024, 3, 5), 63 * 12),
        (dt.date(1962, 12, 10), True, dt.date(2023, 12, 10), 61 * 12),  # 61 in 2023
        (dt.date(1962, 5, 10), True, dt.date(2022, 11, 10), 60 * 12 + 6),  # 60.5 in 2022
        (dt.date(1963, 5, 10), True, dt.date(2024, 5, 10), 61 * 12),  # 61 until 2028
        (dt.date(1964, 3, 1), True, dt.date(2025, 3, 1), 61 * 12),
        (dt.date(1965, 1, 20), True, dt.date(2026, 1, 20), 61 * 12),  # born 1965: 2026 at 61
        (dt.date(1966, 12, 31), True, dt.date(2027, 12, 31), 61 * 12),  # last day of 61
        (dt.date(1967, 1, 1), True, dt.date(2028, 7, 1), 61 * 12 + 6),  # 61.5 from 2028
        (dt.date(1967, 9, 1), True, dt.date(2029, 9, 1), 62 * 12),  # 62 in 2029
        (dt.date(1968, 3, 1), True, dt.date(2030, 9, 1), 62 * 12 + 6),  # 62.5 in 2030
        (dt.date(1968, 8, 1), True, dt.date(2031, 8, 1), 63 * 12),  # 63 from 2031
        (dt.date(1972, 8, 1), True, dt.date(2035, 8, 1), 63 * 12),
        (dt.date(1950, 7, 1), True, dt.date(2008, 7, 1), 58 * 12),
        (dt.date(1964, 2, 29), False, dt.date(2027, 2, 28), 63 * 12),
    ],
)
def test_retirement_date_by_the_table(
    birth: dt.date, female: bool, reached: dt.date, age_months: int
) -> None:
    found = rules.retirement_date(birth, female)
    assert (found.reached_on, found.age_months) == (reached, age_months)
    assert found.source  # every row names its act or public source
    # A man's decision names the men's rule, never the women's steps.
    assert ("women" in found.source) == female


def test_women_retire_at_61_until_2028_then_6_months_more_a_year() -> None:
    """Social Code amendments of October 2022 [astanatimes.com 2022-10-27; dalamedia.info]."""
    women = {year: rules.RETIREMENT_AGE.at(year).women_months for year in range(2023, 2033)}
    assert women == {2023: 732, 2024: 732, 2025: 732, 2026: 732, 2027: 732,
                     2028: 738, 2029: 744, 2030: 750, 2031: 756, 2032: 756}
    assert {rules.RETIREMENT_AGE.at(y).men_months for y in range(1998, 2040)} == {756}
    assert "2022" in rules.RETIREMENT_AGE.row(2027).source
    assert "2028" in rules.RETIREMENT_AGE.row(2028).source


def test_add_months_keeps_the_day_or_the_last_day() -> None:
    assert rules.add_months(dt.date(2024, 1, 31), 1) == dt.date(2024, 2, 29)
    assert rules.add_months(dt.date(2024, 2, 29), 12) == dt.date(2025, 2, 28)
    assert rules.add_months(dt.date(2024, 11, 15), 3) == dt.date(2025, 2, 15)


@pytest.mark.parametrize(("order", "mci"), [(1, 38), (2, 38), (3, 38), (4, 63), (7, 63)])
def test_birth_lump_sum_by_birth_order(order: int, mci: int) -> None:
    amount = calculation.birth_lump_sum(order, dt.date(2024, 5, 1))
    assert amount.amount == mci * 3692
    assert {i.name for i in amount.items} >= {"birth_order", "lump_sum_mci", "mci", "amount"}


def test_burial_benefit_in_mci() -> None:
    """The budget's burial payment: 35 MCI of the death date's MCI (151,375 tenge in 2026),
    naming what the deceased received and the act."""
    assert calculation.burial_benefit(dt.date(2024, 3, 3), "spouse", "age").amount == 35 * 3692
    burial = calculation.burial_benefit(dt.date(2026, 2, 1), "child", "age pension PA-1")
    items = {item.name: item for item in burial.items}
    assert burial.amount == 151375
    assert items["deceased_received"].value == "age pension PA-1"
    assert "Order of the Minister of Labour No. 256" in items["burial_mci"].note
    assert "system choice" in items["recipient"].note


def test_burial_payments_at_30_june_and_1_july_2023() -> None:
    """The Social Code's day: the budget's 35 MCI under its new act; the savings' 52.4 MCI
    become 94 (that day an assumption, marked unconfirmed). MCI 3,450 in 2023."""
    june, july = dt.date(2023, 6, 30), dt.date(2023, 7, 1)
    budget = {d: calculation.burial_benefit(d, "spouse", "age pension") for d in (june, july)}
    assert budget[june].amount == budget[july].amount == 35 * 3450
    notes = {d: {i.name: i for i in b.items}["burial_mci"].note for d, b in budget.items()}
    assert "2023-07-01" in notes[july] and "No. 256" in notes[july]
    assert "2023-07-01" not in notes[june]
    rich = 10**9
    assert calculation.burial_savings_payment(june, "spouse", rich).amount == 180780  # 52.4
    savings = calculation.burial_savings_payment(july, "spouse", rich)
    assert savings.amount == 94 * 3450
    assert "unconfirmed" in {i.name: i for i in savings.items}["burial_savings_mci"].note


def test_the_burial_payment_from_savings_is_capped_by_the_balance() -> None:
    day = dt.date(2026, 3, 1)
    limit = 94 * 4325  # 406,550 tenge in 2026
    assert calculation.burial_savings_payment(day, "spouse", limit + 1).amount == limit
    assert calculation.burial_savings_payment(day, "spouse", limit).amount == limit
    low = calculation.burial_savings_payment(day, "spouse", limit - 1)
    items = {item.name: item for item in low.items}
    assert low.amount == limit - 1
    assert (items["savings_balance"].value, items["burial_savings_limit"].value) == (
        str(limit - 1), str(limit))
    with pytest.raises(ValueError):  # no savings: no payment from them
        calculation.burial_savings_payment(day, "spouse", 0)


ADULT = dt.date(1980, 5, 5)


@pytest.mark.parametrize(("day", "amounts"), [
    (dt.date(2022, 12, 31), (round(Decimal("22.5") * 3180), 18 * 3180,
                             round(Decimal("12.3") * 3180))),  # MCI from 1 April 2022
    (dt.date(2023, 1, 1), (77889, 62068, 42190)),  # 1.92 / 1.53 / 1.04 x 40,567
    (dt.date(2023, 6, 30), (77889, 62068, 42190)),
    (dt.date(2023, 7, 1), (89247, 71398, 48680)),  # 2.2 / 1.76 / 1.2 x 40,567
    (dt.date(2026, 3, 1), (111872, 89498, 61021)),  # x 50,851 (2026)
])
def test_disability_benefit_by_group(day: dt.date, amounts: tuple[int, int, int]) -> None:
    """PM-based since 2023, 2.2 / 1.76 / 1.2 PM since 1 July 2023 [lada.kz 147819;
    aqparat.info 10531163]."""
    for group, expected in zip((1, 2, 3), amounts, strict=True):
        assert calculation.disability_benefit(group, day, ADULT).amount == expected
        assert calculation.disability_benefit(group, day).amount == expected  # born unknown
    items = {i.name: i for i in calculation.disability_benefit(1, day, ADULT).items}
    assert ("benefit_pm" in items) == (day.year >= 2023)
    if day.year >= 2023:
        assert "source: Social Code" in items["benefit_pm"].note


@pytest.mark.parametrize(("born", "amounts"), [
    (dt.date(2020, 3, 2), (81870, 81870, 81870)),  # under 7 on 1 March 2026: 1.61 PM
    (dt.date(2019, 3, 1), (111872, 93057, 81870)),  # 7 on 1 March: 2.2 / 1.83 / 1.61 PM
    (dt.date(2008, 3, 2), (111872, 93057, 81870)),  # 17
    (dt.date(2008, 3, 1), (111872, 89498, 61021)),  # 18: an adult's
])
def test_a_disabled_child_s_rates_by_age(born: dt.date, amounts: tuple[int, int, int]
                                        ) -> None:
    day = dt.date(2026, 3, 1)
    for group, expected in zip((1, 2, 3), amounts, strict=True):
        assert calculation.disability_benefit(group, day, born).amount == expected
    # Before 1 July 2023 no children's rates: the group's.
    assert calculation.disability_benefit(3, dt.date(2023, 6, 1), born).amount == 42190


def test_disability_benefit_is_paid_at_the_pm_of_the_month_paid() -> None:
    """A group 1 benefit from 2023 is paid 2.2 x the PM of each year paid [lada.kz 147819]:
    111,872 tenge a month in 2026; a child turning 7 moves to its group's rate."""
    paid = [calculation.disability_amount(1, ADULT, Month(y, m))
            for y, m in ((2023, 6), (2023, 7), (2025, 12), (2026, 1))]
    assert paid == [77889, 89247, rules.tenge(Decimal(46228) * Decimal("2.2")), 111872]
    child = dt.date(2019, 5, 15)
    assert [calculation.disability_amount(2, child, Month(2026, m)) for m in (5, 6)] == [
        81870, 93057]


def test_expected_contributions() -> None:
    due = rules.expected_contributions(400_000, 2024)
    assert due.pension_amount == 40_000
    assert due.social_amount == round(360_000 * 0.035)
    capped = rules.expected_contributions(10_000_000, 2024)
    assert capped.pension_amount == 50 * 85_000 // 10
    assert capped.social_amount == round(7 * 85_000 * 0.035)
    low = rules.expected_contributions(50_000, 2024)
    assert low.social_amount == round(85_000 * 0.035)  # the base is at least 1 MZP


def test_age_pension_breakdown() -> None:
    inputs = calculation.PensionInputs(
        female=True,
        reached_age_on=dt.date(2026, 9, 1),
        retirement_age_months=750,
        calculated_on=dt.date(2026, 9, 1),
        employment=((dt.date(1990, 1, 1), dt.date(1999, 12, 31)),
                    (dt.date(2005, 1, 1), None)),
        children_birth_dates=(dt.date(2000, 6, 1), dt.date(2003, 1, 1)),
        monthly_incomes=(300_000,) * 36,
        savings_balance=2_400_000,
    )
    calc = calculation.age_pension(inputs)
    assert calc.employment_years == pytest.approx(31.67, abs=0.02)
    assert calc.child_care_years == pytest.approx(4.59, abs=0.01)  # 2000-06 to 2005-01
    assert calc.service_years_before_1998 == pytest.approx(8.0, abs=0.01)
    assert calc.base_pension == round(50851 * 1.18)  # 36 full years: 0.70 + 26 x 0.02, at
    # most 1.18 in 2026
    capped_income = 55 * 4325  # assigned in 2026: 55 MCI (46 before 2023)
    assert calc.solidarity_part == round(capped_income * 0.6 * 8.0 / 20)  # 8 of 20 years:
    # in proportion, no minimum pension floor
    assert calc.accumulative_part == round(2_400_000 * 0.065 / 12)
    assert calc.monthly_amount == calc.base_pension + calc.solidarity_part + calc.accumulative_part
    assert calc.retirement_age == "62.5"
    names = [item.name for item in calc.items]
    assert {"base_share", "solidarity_ratio", "annual_payout_rate", "years_of_service"} <= set(
        names)
    assert calc.explanation[-1].startswith("Monthly pension")
    again = type(calc).from_json(calc.to_json())
    assert again == calc


def base_share(year: int, service_years: int) -> str:
    calc = calculation.age_pension(calculation.PensionInputs(
        female=False, reached_age_on=dt.date(year, 1, 1), retirement_age_months=756,
        calculated_on=dt.date(year, 6, 1),
        employment=((dt.date(year - service_years, 1, 1), None),), children_birth_dates=(),
        monthly_incomes=(), savings_balance=0))
    items = {i.name: i for i in calc.items}
    assert "source: " in items["base_share"].note
    return items["base_share"].value


@pytest.mark.parametrize(("year", "least", "at_20", "most"), [
    (2022, "0.54", "0.74", "1"),  # the earlier sizes
    (2023, "0.6", "0.8", "1"),
    (2024, "0.65", "0.85", "1.05"),
    (2025, "0.7", "0.9", "1.1"),
    (2026, "0.7", "0.9", "1.18"),
])
def test_base_pension_share_by_year(year: int, least: str, at_20: str, most: str) -> None:
    """60-100% in 2023, 65-105% in 2024, 70-110% in 2025, 70-118% in 2026, +2% a full
    year above 10 [zakon.kz 6505357; yka.kz 2024-01-03]."""
    assert (base_share(year, 5), base_share(year, 10)) == (least, least)
    assert base_share(year, 20) == at_20
    assert base_share(year, 50) == most
    assert base_share(2026, 34) == "1.18" and base_share(2026, 33) == "1.16"


def test_child_care_credit_is_for_mothers_only_and_capped() -> None:
    base = dict(
        reached_age_on=dt.date(2026, 1, 1), retirement_age_months=756,
        calculated_on=dt.date(2026, 1, 1), employment=(), monthly_incomes=(),
        savings_balance=0,
        children_birth_dates=tuple(dt.date(1985 + 3 * i, 1, 1) for i in range(6)),
    )
    assert calculation.age_pension(
        calculation.PensionInputs(female=False, **base)).child_care_years == 0  # type: ignore[arg-type]
    mother = calculation.age_pension(calculation.PensionInputs(female=True, **base))  # type: ignore[arg-type]
    assert mother.child_care_years == pytest.approx(12.0, abs=0.01)


def test_month_values() -> None:
    assert str(Month(2024, 1).plus(-1)) == "2023-12"
    assert Month.parse("2024-07").minus(Month(2023, 7)) == 12
    with pytest.raises(InvalidInput):
        Month(2024, 13)
    with pytest.raises(InvalidInput):
        Month.parse("2024/07")


def test_bin_validation() -> None:
    made = make_bin(dt.date(2005, 3, 1), 17)
    assert made is not None
    assert Bin.parse(made.value) == made
    wrong_check = made.value[:11] + str((int(made.value[11]) + 1) % 10)
    iin = make_iin(dt.date(1980, 1, 1), False, 5)
    assert iin is not None
    for bad in ("", "12345", "05034000001x", wrong_check, "051340000017", iin.value):
        with pytest.raises(InvalidInput):
            Bin.parse(bad)


# The published tenge figures of the loss-of-breadwinner benefit for the family, by the
# number of dependants (January-June 2023 and 2026; 6+: 6 shown). The 2026 figures are rounded up,
# ours half up (as every amount here): they may differ by one tenge.
SURVIVOR_FAMILY = {
    2023: (34888, 60445, 75049, 79511, 82351, 85596),
    2026: (46783, 86447, 114415, 132213, 139841, 152553),
}


@pytest.mark.parametrize("year", sorted(SURVIVOR_FAMILY))
def test_survivor_pension_is_an_equal_share_of_the_family_amount(year: int) -> None:
    death = dt.date(year, 4, 10)
    for dependants in range(1, 8):
        result = calculation.survivor_pension(dependants, death, dt.date(year - 5, 1, 1))
        calc = result.calculation
        items = {i.name: i.value for i in calc.items}
        family = SURVIVOR_FAMILY[year][min(dependants, 6) - 1]
        share = rules.SURVIVOR.row(death, dependants).pm_share
        expected = rules.tenge(rules.SUBSISTENCE_MINIMUM.at(death) * share)
        assert int(items["family_amount"]) == expected and abs(expected - family) <= 1
        assert calc.monthly_amount == rules.tenge(Decimal(expected) / dependants)
        assert items["monthly_amount"] == str(calc.monthly_amount)
        assert items["subsistence_minimum"] == str(rules.SUBSISTENCE_MINIMUM.at(death))
        assert items["dependants"] == str(dependants)
        assert calc.rule_year == year
    # The 2023 row stands for the years before it; before the PM table nothing applies.
    early = calculation.survivor_pension(1, dt.date(2015, 1, 1), dt.date(2010, 1, 1))
    assert early.calculation.monthly_amount == round(21364 * Decimal("0.86"))
    with pytest.raises(NotAllowed):
        calculation.survivor_pension(1, dt.date(2009, 12, 31), dt.date(2005, 1, 1))
    with pytest.raises(ValueError):
        rules.SURVIVOR.row(dt.date(2026, 1, 1), 0)


@pytest.mark.parametrize(("death", "shares"), [
    (dt.date(2023, 6, 30), ("0.86", "1.49", "1.85", "1.96", "2.03", "2.11")),
    (dt.date(2023, 7, 1), ("0.92", "1.7", "2.25", "2.6", "2.75", "3")),
    (dt.date(2026, 1, 1), ("0.92", "1.7", "2.25", "2.6", "2.75", "3")),
])
def test_survivor_shares_in_force_since_1_july_2023(death: dt.date, shares: tuple[str, ...]
                                                   ) -> None:
    """The Social Code's shares from 1 July 2023, not 2026 [zakon.kz 6509919; mgorod.kz]."""
    assert tuple(str(rules.SURVIVOR.row(death, n).pm_share) for n in range(1, 7)) == shares
    assert rules.SURVIVOR.row(death, 9).pm_share == Decimal(shares[-1])
    family_share = {i.name: i.note for i in calculation.survivor_pension(
        1, death, dt.date(2020, 1, 1)).calculation.items}["family_share"]
    assert "source: " in family_share
    assert ("zakon.kz 6509919" in family_share) == (death >= dt.date(2023, 7, 1))


def test_survivor_pension_is_paid_at_the_pm_of_the_month_paid() -> None:
    """A pension from a 2023 death is paid at the 2026 PM in 2026: one child 0.92 x 50,851
    = 46,783 (the family amount), two children 1.7 x 50,851 = 86,447 halved."""
    paid = [calculation.survivor_amount(1, Month(y, m))
            for y, m in ((2023, 6), (2023, 7), (2024, 1), (2026, 1))]
    assert paid == [34888, rules.tenge(40567 * Decimal("0.92")),
                    rules.tenge(43407 * Decimal("0.92")), 46783]
    assert calculation.survivor_amount(2, Month(2026, 5)) == rules.tenge(Decimal(86447) / 2)


@pytest.mark.parametrize(
    ("born", "ends_on"),
    [
        (dt.date(2015, 9, 30), dt.date(2033, 9, 29)),
        (dt.date(2016, 3, 1), dt.date(2034, 2, 28)),
        (dt.date(2016, 2, 29), dt.date(2034, 2, 28)),  # turns 18 on 1 March of a common year
        (dt.date(2012, 2, 29), dt.date(2030, 2, 28)),
    ],
)
def test_survivor_pension_ends_the_day_before_the_18th_birthday(born: dt.date,
                                                                ends_on: dt.date) -> None:
    result = calculation.survivor_pension(2, dt.date(2026, 6, 1), born)
    assert result.ends_on == ends_on
    assert age_on(born, ends_on) == 17 and age_on(born, ends_on + dt.timedelta(days=1)) == 18
    assert {i.name: i.value for i in result.calculation.items}["ends_on"] == ends_on.isoformat()


def test_survivor_calculation_is_its_items_and_survives_json() -> None:
    calc = calculation.survivor_pension(3, dt.date(2026, 6, 1), dt.date(2020, 1, 1)).calculation
    assert (calc.base_pension, calc.solidarity_part, calc.accumulative_part) == (0, 0, 0)
    assert calc.retirement_age == "" and calc.reached_age_on is None
    assert calc.explanation[0].startswith("3 dependants")
    assert any("students up to 23" in line for line in calc.explanation)
    assert type(calc).from_json(calc.to_json()) == calc


def test_the_checked_rule_tables_name_a_source_for_every_row() -> None:
    """The tables fixed against the law (docs/rules.md); the others are not listed yet."""
    for table in (rules.RETIREMENT_AGE, rules.BASE_PENSION, EMPLOYER_PENSION):
        assert all(row.source.strip() for row in table.rows), table.name
    for index in (rules.MCI, rules.MINIMUM_WAGE, rules.SUBSISTENCE_MINIMUM):
        assert all(row.source.strip() for row in index.rows), index.name
    for dated in (rules.CARER_OF_DISABLED_CHILD.pm_share, rules.SURVIVOR.family_share,
                  rules.DISABILITY_BENEFIT, solidarity.SOLIDARITY_INCOME_CAP,
                  solidarity.MINIMUM_PENSION, rules.BURIAL_BUDGET, rules.BURIAL_SAVINGS,
                  rules.SURVIVOR_STUDENT):
        assert all(row.source.strip() for row in dated.rows), dated.name
    assert rules.PENSION_INCOME.source.strip()
