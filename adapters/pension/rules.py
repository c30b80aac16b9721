"""The pension system's rule tables: parameters as data, in frozen dataclasses.

Amounts and ages are rows of tables, never constants in the decision code. A table by
year answers for a year with its last row at or before that year (a rule stays in force
until a later row replaces it); a year before the first row is refused (``NotAllowed``).
Values follow the published Kazakh figures where we know them and are rounded
approximations otherwise; they are demo parameters, not legal advice.

| table                      | what                                                      |
|----------------------------|-----------------------------------------------------------|
| ``MCI``                    | monthly calculation index, tenge (2024: 3,692), by the    |
|                            | day in force: revised on 1 April 2020 and 1 April 2022    |
| ``MINIMUM_WAGE``           | minimum monthly wage (MZP), tenge, by the day in force    |
| ``SUBSISTENCE_MINIMUM``    | subsistence minimum (PM), tenge: the base pension's unit, |
|                            | by the day in force (revised 1 April 2020 and 2022)       |
| ``CONTRIBUTION_RATES``     | pension contribution 10% of income up to 50 MZP (75 until |
|                            | 2020); social contribution on income less the pension     |
|                            | contribution, between 1 and 7 MZP (10 until 2020), 5% /   |
|                            | 3.5% (2020-2024) / 5% (2025)                              |
| (``employer_contribution``)| the employer's pension contribution (OPVR): 1.5% (2024)   |
|                            | ... 5% (2028) for workers born in 1975 or later           |
| ``RETIREMENT_AGE``         | men 63; women 58 until 2017, 58.5 in 2018, +0.5 a year:   |
|                            | 61 from 2023 until 31 December 2027; from 1 January 2028  |
|                            | +0.5 a year: 61.5 in 2028 ... 63 from 2031                |
| ``BIRTH_LUMP_SUM``         | 38 MCI for the 1st to 3rd child, 63 MCI from the 4th      |
| child care                 | the child-care allowance's tables are in ``childcare.py`` |
|                            | (until 1.5 since 2023, insured / uninsured regimes)       |
| ``BURIAL_BUDGET``          | the budget's burial payment, 35 MCI, when the deceased    |
|                            | received a pension or a state social benefit on the death |
|                            | date (Social Code art. 242, Order No. 256)                |
| ``BURIAL_SAVINGS``         | from the deceased's pension savings, at most the balance: |
|                            | 52.4 MCI, 94 MCI from 1 July 2023 (that day unconfirmed)  |
| ``BURIAL``                 | both to the spouse, else the eldest living adult (18+)    |
|                            | child (a system choice)                                   |
| ``DISABILITY_BENEFIT``     | monthly, by group: 22.5 / 18 / 12.3 MCI until 2022; 1.92 /|
|                            | 1.53 / 1.04 PM January-June 2023; from 1 July 2023 2.2 /  |
|                            | 1.76 / 1.2 PM, a child under 7 1.61 PM, from 7 to 18 2.2 /|
|                            | 1.83 / 1.61 PM, an adult disabled since childhood (the    |
|                            | conclusion's ``since_childhood``) 2.2 / 1.83 / 1.61 PM;   |
|                            | each month at the index in force on its first day         |
| ``CARER_OF_DISABLED_CHILD``| monthly to a parent raising a disabled child (under 18 on |
|                            | the conclusion's from_date): the mother if living, else   |
|                            | the father; 1.4 PM, 1.61 PM from 1 July 2023, each month  |
|                            | at the PM in force on its first day; until the            |
|                            | conclusion's to_date or the day before the child's 18th   |
|                            | birthday, whichever is earlier                            |
| ``SURVIVOR``               | survivor ("loss of the breadwinner") pension to each      |
|                            | living child under 18 on the death date: the family's     |
|                            | share of PM by the number of such children, split equally |
|                            | (from 1 July 2023: 1: 0.92, 2: 1.7, 3: 2.25, 4: 2.6, 5:   |
|                            | 2.75, 6+: 3 PM; before: 0.86, 1.49, 1.85, 1.96, 2.03,     |
|                            | 2.11), each month the share in force and the PM of the    |
|                            | year paid; monthly until the day before the child's 18th  |
|                            | birthday. A child both of whose parents population        |
|                            | records as deceased (``SURVIVOR_ORPHAN``): 1.54 PM each   |
|                            | from 1 July 2023, replacing the family's share. Not       |
|                            | applied: the social insurance fund's extra payment from   |
|                            | the deceased's contributions                              |
| ``SURVIVOR_STUDENT``       | a child of 18 or more in full-time study at a college or  |
|                            | for a bachelor's degree (education ``ListStudies``) is a  |
|                            | dependant until the study's last day, at most until the   |
|                            | day before the 23rd birthday                              |
| ``BASE_PENSION``           | share of PM by years of service: up to 10 years the least |
|                            | share, +2% per full year above, at most the greatest:     |
|                            | 2018 54-100%, 2023 60-100%, 2024 65-105%, 2025 70-110%,   |
|                            | 2026 70-118%                                              |
| (``solidarity`` module)    | service before 1998: the solidarity part, its income cap  |
|                            | (46 / 55 MCI), shares (60% ... 75%) and minimum pension   |
| ``ACCUMULATIVE``           | 6.5% of the pension savings a year, paid monthly          |
| ``CHILD_CARE_CREDIT``      | a mother's years caring for each child under 3 while not  |
|                            | employed count as service, at most 12 years in total      |
| ``PENSION_INCOME``         | the solidarity part's average income: the 36 consecutive  |
|                            | months since January 1995 with the most income            |
| ``INSURANCE``              | insured through contributions: a paid month among the 3   |
|                            | calendar months before the month asked about (cover lasts |
|                            | 3 months after the last paid month) [o][p]                |
| ``SCHEDULE``               | payments are scheduled 12 months ahead at most            |
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Generic, TypeVar

from zhol.adapters.pension.model import BenefitKind, NotAllowed

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class YearRow(Generic[T]):
    year: int  # in force from 1 January of this year
    value: T
    source: str = ""  # the act or public source (and its date) the row follows


@dataclass(frozen=True, slots=True)
class YearTable(Generic[T]):
    """Rows by year, ascending; ``at(year)`` is the last row at or before ``year``."""

    name: str
    rows: tuple[YearRow[T], ...]

    def __post_init__(self) -> None:
        years = [row.year for row in self.rows]
        if not years or years != sorted(set(years)):
            raise ValueError(f"{self.name}: rows must be unique and ascending by year")

    @property
    def first_year(self) -> int:
        return self.rows[0].year

    def at(self, year: int) -> T:
        return self.row(year).value

    def row(self, year: int) -> YearRow[T]:
        """The row in force in ``year`` (with its source)."""
        found: YearRow[T] | None = None
        for row in self.rows:
            if row.year > year:
                break
            found = row
        if found is None:
            raise NotAllowed(f"no {self.name} rule for {year} (the table starts in "
                             f"{self.first_year})")
        return found


def _by_year(name: str, rows: dict[int, T]) -> YearTable[T]:
    return YearTable(name, tuple(YearRow(year, value) for year, value in sorted(rows.items())))


def _sourced_by_year(name: str, rows: dict[int, tuple[T, str]]) -> YearTable[T]:
    """A table whose every row names its source: ``{year: (value, source)}``."""
    return YearTable(name, tuple(
        YearRow(year, value, source) for year, (value, source) in sorted(rows.items())))


@dataclass(frozen=True, slots=True)
class DatedRow(Generic[T]):
    start: dt.date  # in force from this day
    value: T
    source: str  # the act or public source (and its date) the row follows


@dataclass(frozen=True, slots=True)
class DatedTable(Generic[T]):
    """Rows by the day they come into force, ascending: for rules that change mid-year
    (1 July 2023). ``at(day)`` is the last row on or before ``day``."""

    name: str
    rows: tuple[DatedRow[T], ...]

    def __post_init__(self) -> None:
        starts = [row.start for row in self.rows]
        if not starts or starts != sorted(set(starts)):
            raise ValueError(f"{self.name}: rows must be unique and ascending by date")

    def row(self, day: dt.date) -> DatedRow[T]:
        found: DatedRow[T] | None = None
        for row in self.rows:
            if row.start > day:
                break
            found = row
        if found is None:
            raise NotAllowed(f"no {self.name} rule on {day.isoformat()} (the table starts on "
                             f"{self.rows[0].start.isoformat()})")
        return found

    def at(self, day: dt.date) -> T:
        return self.row(day).value

    def of_year(self, year: int) -> T:
        """The value set for the whole of ``year``, where the law says "of the year": the
        row in force on 1 January. Refused (``ValueError``) when a row starts later in the
        year: the value changed within it, so the caller must ask by day."""
        first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
        if any(first < row.start <= last for row in self.rows):
            raise ValueError(f"{self.name} changed within {year}: ask for a day, not the year")
        return self.at(first)


def _dated(name: str, rows: dict[dt.date, tuple[T, str]]) -> DatedTable[T]:
    """``{first day in force: (value, source)}``."""
    return DatedTable(name, tuple(
        DatedRow(start, value, source) for start, (value, source) in sorted(rows.items())))


# Amounts set as shares of the subsistence minimum (PM) or of the MCI are paid at the
# index of the year of the month paid: both are revised each 1 January.
INDEXED_YEARLY = ("benefits in PM or MCI are paid at the PM or MCI in force on the first day of"
                  " the month paid, revised each 1 January and by the budget's revisions within"
                  " a year, 1 April 2020 and 1 April 2022 (Social Code; lada.kz 147819, the new"
                  " state benefit sizes; egov.kz article_mci_2012)")

JULY_2023 = dt.date(2023, 7, 1)  # the Social Code's new benefit sizes in PM


def tenge(value: Decimal) -> int:
    """Round to whole tenge, half up."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


# -- indices -----------------------------------------------------------------------------
#
# Each index is set by the law on the republican budget for the financial year and may be
# revised within it (1 April 2020, 1 April 2022): a table by the day in force. A month is
# priced at the value in force on its first day, a benefit assigned on a day at the value
# in force that day. The minimum wage has a by-year accessor (``of_year``) for the
# contribution bounds, which the law sets in minimum wages "established for the financial
# year"; it refuses a year in which the value changed.

_BUDGET_ARCHIVE = ("korgan-zan.kz, archive of the MCI, minimum wage and subsistence minimum"
                   " 1995-2014")
_EGOV_INDICES = ("egov.kz article_mci_2012 and gov.kz article 17157, the minimum calculated"
                 " indexes by year")


def _year_row(law: str, public: str) -> str:
    return f"the law on the republican budget {law} ({public})"


_SOURCE_2010 = _year_row("2010-2012 of 7 December 2009 No. 96-IV", _BUDGET_ARCHIVE)
_SOURCE_2011 = _year_row("2011-2013 of 29 November 2010 No. 357-IV", _BUDGET_ARCHIVE)
_SOURCE_2012 = _year_row("2012-2014 of 24 November 2011 No. 496-IV", _BUDGET_ARCHIVE)
_SOURCE_2013 = _year_row("2013-2015 of 23 November 2012 No. 54-V", _BUDGET_ARCHIVE)
_SOURCE_2014 = _year_row("2014-2016 of 3 December 2013 No. 148-V",
                         f"{_BUDGET_ARCHIVE}; yka.kz 2014-01-09, PM 19,966")
_SOURCE_2015 = _year_row("2015-2017 of 28 November 2014 No. 259-V, article 11",
                         "mintax.kz, basic rates for 2015; archive.wfin.kz")
_SOURCE_2016 = _year_row("2016-2018 of 30 November 2015 No. 426-V",
                         "kazpravda.kz, MCI and PM changed from 1 January 2016")
_SOURCE_2017 = _year_row("2017-2019", "sputnik.kz 2018-01-01 and informburo.kz, the vice"
                         " minister: minimum wage and PM 24,459 in 2017")
_SOURCE_2018 = _year_row("2018-2020", "tengrinews.kz 2018-01-03")
_SOURCE_2019 = _year_row("2019-2021", "pravodel.kz, MCI of Kazakhstan in 2019")
_SOURCE_2020 = _year_row("2020-2022", "16news.kz 2020-04-10 and inform.kz 2020-05-04: MCI"
                         " 2,651 and PM 31,183 from 1 January 2020")
_SOURCE_2020_04 = ("the budget's revision from 1 April 2020: MCI 2,778, PM 32,668, minimum wage"
                   " unchanged (16news.kz 2020-04-10; inform.kz 2020-05-04; " + _EGOV_INDICES
                   + ", 2020)")
_SOURCE_2021 = _year_row("2021-2023", f"{_EGOV_INDICES}, 2021")
_SOURCE_2022 = _year_row("2022-2024", f"{_EGOV_INDICES}, from 1 January 2022; pricom.kz")
_SOURCE_2022_04 = ("the budget's revision from 1 April 2022: the MCI for benefits and other"
                   " social payments 3,180, PM 37,389, minimum wage unchanged ("
                   + _EGOV_INDICES + ", from 1 April 2022; kaz.zakon.kz 6006883; mgorod.kz"
                   " 2022-05-26, the indexation from 1 April paid from June)")
_SOURCE_2023 = _year_row("2023-2025 of 1 December 2022 No. 163-VII",
                         f"kpmg.com 2023-01 legal alert; knews.kz 153-mrp-2023; {_EGOV_INDICES}")
_SOURCE_2024 = _year_row("2024-2026", "gov.kz article 17157")
_SOURCE_2025 = _year_row("2025-2027", "tengrinews.kz 2025-01, minimum salary and MCI updated")
_SOURCE_2026 = _year_row("2026-2028 of 8 December 2025",
                         "mgorod.kz \"МРП на 2026 год\"; kaz.zakon.kz 6072730")

MCI: DatedTable[int] = _dated("MCI", {
    dt.date(2010, 1, 1): (1413, _SOURCE_2010),
    dt.date(2011, 1, 1): (1512, _SOURCE_2011),
    dt.date(2012, 1, 1): (1618, _SOURCE_2012),
    dt.date(2013, 1, 1): (1731, _SOURCE_2013),
    dt.date(2014, 1, 1): (1852, _SOURCE_2014 + "; nadezhda.kz 2013-11, MCI 1,852"),
    dt.date(2015, 1, 1): (1982, _SOURCE_2015),
    dt.date(2016, 1, 1): (2121, _SOURCE_2016),
    dt.date(2017, 1, 1): (2269, "the code's figure for 2017: no source found for the MCI"
                          " itself (the sources checked give 2016's 2,121 and 2018's 2,405)"),
    dt.date(2018, 1, 1): (2405, _SOURCE_2018),
    dt.date(2019, 1, 1): (2525, _SOURCE_2019),
    dt.date(2020, 1, 1): (2651, _SOURCE_2020),
    dt.date(2020, 4, 1): (2778, _SOURCE_2020_04),
    dt.date(2021, 1, 1): (2917, _SOURCE_2021),
    dt.date(2022, 1, 1): (3063, _SOURCE_2022),
    dt.date(2022, 4, 1): (3180, _SOURCE_2022_04),
    dt.date(2023, 1, 1): (3450, _SOURCE_2023),
    dt.date(2024, 1, 1): (3692, _SOURCE_2024),
    dt.date(2025, 1, 1): (3932, _SOURCE_2025),
    dt.date(2026, 1, 1): (4325, _SOURCE_2026),
})

MINIMUM_WAGE: DatedTable[int] = _dated("minimum wage", {
    dt.date(2010, 1, 1): (14952, _SOURCE_2010),
    dt.date(2011, 1, 1): (15999, _SOURCE_2011),
    dt.date(2012, 1, 1): (17439, _SOURCE_2012),
    dt.date(2013, 1, 1): (18660, _SOURCE_2013),
    dt.date(2014, 1, 1): (19966, _SOURCE_2014),
    dt.date(2015, 1, 1): (21364, _SOURCE_2015),
    dt.date(2016, 1, 1): (22859, _SOURCE_2016),
    dt.date(2017, 1, 1): (24459, _SOURCE_2017),
    dt.date(2018, 1, 1): (28284, _SOURCE_2018),
    dt.date(2019, 1, 1): (42500, _SOURCE_2019 + "; unchanged in 2020 and 2021 ("
                          + _EGOV_INDICES + ")"),
    dt.date(2022, 1, 1): (60000, _SOURCE_2022),
    dt.date(2023, 1, 1): (70000, _SOURCE_2023),
    dt.date(2024, 1, 1): (85000, _SOURCE_2024 + "; unchanged in 2025 and 2026 (tengrinews.kz"
                          " 2025-01; mgorod.kz \"МРП на 2026 год\")"),
})

SUBSISTENCE_MINIMUM: DatedTable[int] = _dated("subsistence minimum", {
    dt.date(2010, 1, 1): (14952, _SOURCE_2010),
    dt.date(2011, 1, 1): (15999, _SOURCE_2011),
    dt.date(2012, 1, 1): (17439, _SOURCE_2012),
    dt.date(2013, 1, 1): (18660, _SOURCE_2013),
    dt.date(2014, 1, 1): (19966, _SOURCE_2014),
    dt.date(2015, 1, 1): (21364, _SOURCE_2015),
    dt.date(2016, 1, 1): (22859, _SOURCE_2016 + "; newtimes.kz, PM 22,859 in 2016"),
    dt.date(2017, 1, 1): (24459, _SOURCE_2017),
    dt.date(2018, 1, 1): (28284, _SOURCE_2018),
    dt.date(2019, 1, 1): (29698, _SOURCE_2019),
    dt.date(2020, 1, 1): (31183, _SOURCE_2020),
    dt.date(2020, 4, 1): (32668, _SOURCE_2020_04),
    dt.date(2021, 1, 1): (34302, _SOURCE_2021),
    dt.date(2022, 1, 1): (36018, _SOURCE_2022),
    dt.date(2022, 4, 1): (37389, _SOURCE_2022_04),
    dt.date(2023, 1, 1): (40567, _SOURCE_2023),
    dt.date(2024, 1, 1): (43407, _SOURCE_2024),
    dt.date(2025, 1, 1): (46228, _SOURCE_2025),
    dt.date(2026, 1, 1): (50851, _SOURCE_2026),
})


def index_note(label: str, row: DatedRow[int]) -> str:
    """How a calculation names the index value it used: its table, the day the value is
    in force from, and its source."""
    return f"rule table {label} from {row.start.isoformat()}; source: {row.source}"


# -- contributions -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContributionRates:
    pension_rate: Decimal
    pension_income_cap_mzp: int
    social_rate: Decimal
    social_base_min_mzp: int
    social_base_max_mzp: int


_RATES_REVIEW = "found right by issue 14's review against public sources"
CONTRIBUTION_RATES: YearTable[ContributionRates] = _sourced_by_year("contribution rates", {
    2010: (ContributionRates(Decimal("0.10"), 75, Decimal("0.05"), 1, 10),
           "Law of 21 June 2013 No. 105-V (and the 1997 law before it): mandatory pension"
           " contributions 10% of income up to 75 minimum wages; Law of 25 April 2003 on"
           " compulsory social insurance: social contributions 5% of income less the pension"
           f" contribution, the base between 1 and 10 minimum wages; {_RATES_REVIEW}"),
    2020: (ContributionRates(Decimal("0.10"), 50, Decimal("0.035"), 1, 7),
           "from 1 January 2020: the pension contribution's cap 50 minimum wages; social"
           f" contributions 3.5% with the base up to 7 minimum wages; {_RATES_REVIEW}"),
    2025: (ContributionRates(Decimal("0.10"), 50, Decimal("0.05"), 1, 7),
           "Social Code of 20 April 2023 No. 224-VII: social contributions 5% from 1 January"
           f" 2025; {_RATES_REVIEW}"),
})

FIRST_CONTRIBUTION_YEAR = CONTRIBUTION_RATES.first_year


@dataclass(frozen=True, slots=True)
class ExpectedContributions:
    pension_amount: int
    social_amount: int


def expected_contributions(income: int, year: int) -> ExpectedContributions:
    """The contributions due on ``income`` in a month of ``year``."""
    rates = CONTRIBUTION_RATES.at(year)
    mzp = MINIMUM_WAGE.of_year(year)
    pension = tenge(min(income, rates.pension_income_cap_mzp * mzp) * rates.pension_rate)
    base = min(max(income - pension, rates.social_base_min_mzp * mzp),
               rates.social_base_max_mzp * mzp)
    return ExpectedContributions(pension, tenge(base * rates.social_rate))


CONTRIBUTION_TOLERANCE = 1  # tenge: an employer's rounding may differ by one


# -- retirement age ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetirementAge:
    men_months: int
    women_months: int


_LAW_2013 = ("Law of 21 June 2013 No. 105-V on pension provision (adilet.zan.kz Z1300000105):"
             " women's age +6 months a year from 2018")
# Men's age is the same in every row; a man's decision names this, not the women's steps.
MEN_RETIREMENT_SOURCE = ("Law of 21 June 2013 No. 105-V on pension provision (adilet.zan.kz"
                         " Z1300000105): men at 63; kept by the Social Code of 20 April 2023"
                         " No. 224-VII, in force from 1 July 2023")
_WOMEN_61 = ("Social Code amendments, Mazhilis October 2022: women's age fixed at 61 until"
             " 1 January 2028 (astanatimes.com 2022-10-27)")
_WOMEN_2028 = ("Social Code amendments 2022: from 1 January 2028 women's age +6 months a"
               " year to 63 in 2031 (dalamedia.info, the ministry's answer; astanatimes.com"
               " 2022-10-27)")

RETIREMENT_AGE: YearTable[RetirementAge] = _sourced_by_year("retirement age", {
    1998: (RetirementAge(63 * 12, 58 * 12), _LAW_2013),
    2018: (RetirementAge(63 * 12, 58 * 12 + 6), _LAW_2013),
    2019: (RetirementAge(63 * 12, 59 * 12), _LAW_2013),
    2020: (RetirementAge(63 * 12, 59 * 12 + 6), _LAW_2013),
    2021: (RetirementAge(63 * 12, 60 * 12), _LAW_2013),
    2022: (RetirementAge(63 * 12, 60 * 12 + 6), _LAW_2013),
    2023: (RetirementAge(63 * 12, 61 * 12), _WOMEN_61),
    2028: (RetirementAge(63 * 12, 61 * 12 + 6), _WOMEN_2028),
    2029: (RetirementAge(63 * 12, 62 * 12), _WOMEN_2028),
    2030: (RetirementAge(63 * 12, 62 * 12 + 6), _WOMEN_2028),
    2031: (RetirementAge(63 * 12, 63 * 12), _WOMEN_2028),
})


_YOUNGEST_RETIREMENT = min(
    min(row.value.men_months, row.value.women_months) for row in RETIREMENT_AGE.rows
) // 12


@dataclass(frozen=True, slots=True)
class RetirementDate:
    reached_on: dt.date
    age_months: int
    rule_year: int
    source: str = ""  # the RETIREMENT_AGE row's source


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later, or the month's last day when it is shorter."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def retirement_date(birth_date: dt.date, female: bool) -> RetirementDate:
    """The day a person born on ``birth_date`` reaches retirement age.

    The age that applies is the one in force in the year it is reached: the first year Y
    in which the person reaches the age of Y's row (from 1 January of Y when a rising
    age made it reached already). Before the table's first year the first row applies.
    """
    first = RETIREMENT_AGE.first_year
    for year in range(max(first, birth_date.year + _YOUNGEST_RETIREMENT), birth_date.year + 90):
        found = RETIREMENT_AGE.row(year)
        row = found.value
        months = row.women_months if female else row.men_months
        reached = add_months(birth_date, months)
        if reached.year <= year:
            source = found.source if female else MEN_RETIREMENT_SOURCE
            if year == first or reached.year == year:
                return RetirementDate(reached, months, found.year, source)
            return RetirementDate(dt.date(year, 1, 1), months, found.year, source)
    raise AssertionError("the retirement age table ends with a fixed age")


# -- benefits ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ByBirthOrder:
    first_order: int  # applies from this birth order on
    mci: Decimal


BIRTH_LUMP_SUM: tuple[ByBirthOrder, ...] = (
    ByBirthOrder(1, Decimal(38)),
    ByBirthOrder(4, Decimal(63)),
)


def by_birth_order(table: tuple[ByBirthOrder, ...], order: int) -> ByBirthOrder:
    if order < 1:
        raise ValueError("birth order starts at 1")
    found = table[0]
    for row in table:
        if row.first_order <= order:
            found = row
    return found


@dataclass(frozen=True, slots=True)
class BurialRule:
    """Who receives the two burial payments (``BURIAL_BUDGET``, ``BURIAL_SAVINGS``): the
    law pays the budget's to a relative or whoever arranged the funeral and the savings'
    to a family member; no registry of the model records who arranged it, so the system
    chooses the spouse if living, else the eldest living child of this age or over."""

    adult_age: int  # a child recipient must be at least this old


BURIAL = BurialRule(18)
BURIAL_RECIPIENT_SOURCE = ("system choice: the spouse if living, else the eldest living adult"
                           " child (the law pays a relative or whoever arranged the funeral;"
                           " the model records no one who arranged it, so no claim names them)")

# The budget's lump-sum burial payment on the death of a person who, on the death date,
# received a pension or a state social benefit, in MCI of the MCI in force that day.
BURIAL_BUDGET: DatedTable[Decimal] = _dated("burial payment from the budget", {
    dt.date(2010, 1, 1): (Decimal(35), "35 MCI of the Social Code's Rules carried back to the"
                          " years before 1 July 2023 (the earlier act not checked)"),
    JULY_2023: (Decimal(35), "Social Code art. 242; Rules of the Order of the Minister of Labour"
                " No. 256 of 27 June 2023, in force 1 July 2023 (adilet.zan.kz V2300032925):"
                " 35 MCI on the death of a pensioner or a recipient of a state social benefit"
                " (gov.kz life situation 17, loss of loved ones and burial)"),
})

# The lump sum for burial from the deceased's pension savings (the UAPF), at most the
# balance, to a family member, in MCI of the MCI in force on the death date.
BURIAL_SAVINGS: DatedTable[Decimal] = _dated("burial payment from pension savings", {
    dt.date(2010, 1, 1): (Decimal("52.4"), "52.4 MCI from the pension savings to the family or"
                          " whoever arranged the burial (matritca.kz 2019-02-07, the ministry's"
                          " answer)"),
    JULY_2023: (Decimal(94), "94 MCI from the pension savings, at most the balance, to family"
                " members only (cml.kz citing the UAPF; enbekshiqazaq.kz 2025-05-09, how to"
                " receive inherited savings from the UAPF). In force from 1 July 2023 (the"
                " Social Code) is an assumption, unconfirmed: the day 52.4 became 94 MCI was"
                " not found"),
})

DISABILITY_GROUPS = (1, 2, 3)


@dataclass(frozen=True, slots=True)
class DisabilityRates:
    """The monthly disability benefit in ``unit`` (MCI or PM) by group; for a child (by
    age on the first day of the month paid) the children's rates when the row has them
    (None: the group's rate)."""

    unit: str  # "MCI" or "PM": the index in force on the month paid it multiplies
    by_group: tuple[Decimal, Decimal, Decimal]  # groups 1, 2, 3
    child_under_7: Decimal | None = None  # any group
    child_by_group: tuple[Decimal, Decimal, Decimal] | None = None  # from 7 to 18
    # An adult disabled since childhood (the commission's conclusion says so); None: the
    # group's rate.
    since_childhood: tuple[Decimal, Decimal, Decimal] | None = None

    def units(self, group: int, age: int, since_childhood: bool = False
              ) -> tuple[Decimal, str]:
        """The units due at ``age`` (full years) and which rate applied."""
        if age < 7 and self.child_under_7 is not None:
            return self.child_under_7, "a child under 7"
        if age < 18 and self.child_by_group is not None:
            return self.child_by_group[group - 1], f"a child from 7 to 18, group {group}"
        if since_childhood and self.since_childhood is not None:
            return self.since_childhood[group - 1], f"disabled since childhood, group {group}"
        return self.by_group[group - 1], f"group {group}"


def _units(*values: str) -> tuple[Decimal, Decimal, Decimal]:
    first, second, third = (Decimal(v) for v in values)
    return first, second, third


DISABILITY_BENEFIT: DatedTable[DisabilityRates] = _dated("disability benefit", {
    dt.date(2010, 1, 1): (DisabilityRates("MCI", _units("22.5", "18", "12.3")),
                          "the code's MCI sizes before 2023 (not checked against the act)"),
    dt.date(2023, 1, 1): (DisabilityRates("PM", _units("1.92", "1.53", "1.04")),
                          "Social Code, January-June 2023 (lada.kz 147819; aqparat.info"
                          " 10531163)"),
    JULY_2023: (DisabilityRates("PM", _units("2.2", "1.76", "1.2"), Decimal("1.61"),
                                _units("2.2", "1.83", "1.61"), _units("2.2", "1.83", "1.61")),
                "Social Code, from 1 July 2023 (lada.kz 147819, the new state benefit"
                " sizes; aqparat.info 10531163; disabled since childhood: Social Code art. 177,"
                " news.mail.ru 2026-01-03)"),
})


@dataclass(frozen=True, slots=True)
class CarerRule:
    child_under: int  # a child is under this age on the from_date; paid until that birthday
    parents: tuple[str, ...]  # population's relations, in order of preference (if living)
    pm_share: DatedTable[Decimal]  # of the subsistence minimum, a month


CARER_OF_DISABLED_CHILD = CarerRule(18, ("mother", "father"), _dated(
    "carer of a disabled child", {
        dt.date(2010, 1, 1): (Decimal("1.4"), "1.4 PM before the Social Code's sizes of 1 July"
                              " 2023 (aqparat.info 10531163); earlier years not checked"),
        JULY_2023: (Decimal("1.61"), "Social Code, 1.61 PM from 1 July 2023 (aqparat.info"
                    " 10531163; kaz.inform.kz, the benefit for children with disabilities)"),
    }))


@dataclass(frozen=True, slots=True)
class ByDependants:
    first_count: int  # applies from this number of dependants on
    pm_share: Decimal  # of the subsistence minimum, for all the dependants together


@dataclass(frozen=True, slots=True)
class SurvivorRule:
    end_age: int  # a child is due the pension until the day before this birthday
    # By the day in force: rows by the number of dependants, ascending from 1.
    family_share: DatedTable[tuple[ByDependants, ...]]

    def row(self, day: dt.date, dependants: int) -> ByDependants:
        """The last row whose ``first_count`` ``dependants`` reaches, in force on ``day``
        (NotAllowed: no rule then)."""
        if dependants < 1:
            raise ValueError("a survivor pension needs at least one dependant")
        rows = self.family_share.at(day)
        return [row for row in rows if row.first_count <= dependants][-1]


def _shares(*shares: str) -> tuple[ByDependants, ...]:
    return tuple(ByDependants(count, Decimal(share)) for count, share in enumerate(shares, 1))


# The state social benefit on the loss of the breadwinner: the family's share of PM by
# the number of dependants. The first row (the sizes published for early 2023) stands
# for the years before it too (an approximation, not checked).
SURVIVOR = SurvivorRule(18, _dated("survivor pension", {
    dt.date(2010, 1, 1): (_shares("0.86", "1.49", "1.85", "1.96", "2.03", "2.11"),
                          "the sizes before the Social Code (published for January-June"
                          " 2023); earlier years not checked"),
    JULY_2023: (_shares("0.92", "1.7", "2.25", "2.6", "2.75", "3"),
                "Social Code, from 1 July 2023 (zakon.kz 6509919; mgorod.kz \"two payments"
                " will rise from 1 January\")"),
}))


# A child both of whose parents are deceased (an orphan) is due this share of PM each,
# instead of a share of the family's amount. Before the first row there is no orphan's
# size on record: the family's share applies (``orphan_row`` None).
SURVIVOR_ORPHAN: DatedTable[Decimal] = _dated("survivor pension, orphan", {
    JULY_2023: (Decimal("1.54"), "Social Code No. 224-VII (in force 1 July 2023): 1.54 PM to"
                " each child who lost both parents (zakon.kz 6509919, 2026-03-04, the"
                " ministry's department: 78,311 tenge a child in 2026)"),
})


@dataclass(frozen=True, slots=True)
class SurvivorStudentRule:
    """A child of 18 or more is a dependant while in such a study (education's
    ``ListStudies``: form and level), until its last day, never on or after the
    ``until_age`` birthday."""

    until_age: int
    forms: tuple[str, ...]
    levels: tuple[str, ...]


_STUDENT = SurvivorStudentRule(23, ("full_time",), ("vocational", "bachelor"))

# A full-time student of 18 or more stays a dependant (the survivor pension continues or
# is assigned) until the study ends, at most until 23. The levels are those education
# records for technical and vocational (a college) and higher education (a bachelor's
# degree); postgraduate study (master, doctoral) is not named in the text relied on, so
# it is not counted (system choice). Neither act's text was at hand: the rows cite them.
SURVIVOR_STUDENT: DatedTable[SurvivorStudentRule] = _dated("survivor pension, student", {
    dt.date(2010, 1, 1): (_STUDENT, "Law of 16 June 1997 No. 126-I on state social benefits"
                          " for disability, loss of the breadwinner and age: children over"
                          " 18 in full-time study at colleges and higher education"
                          " institutions until the study ends, at most until 23 (the act's"
                          " text was not at hand)"),
    JULY_2023: (_STUDENT, "Social Code of 20 April 2023 No. 224-VII (in force 1 July 2023),"
                " the survivor benefit's dependants: a child of 18 or more in full-time study"
                " in technical and vocational or higher education, until the study ends, at"
                " most until 23 (the article's text was not at hand)"),
})


def orphan_row(day: dt.date) -> DatedRow[Decimal] | None:
    """The orphan's share in force on ``day``; None before the table's first row."""
    if day < SURVIVOR_ORPHAN.rows[0].start:
        return None
    return SURVIVOR_ORPHAN.row(day)


# Which benefits a subject can have only once (UNIQUE(kind, subject_iin)); a disability
# benefit and the carer's benefit are once per commission conclusion instead.
ONCE_PER_SUBJECT: frozenset[BenefitKind] = frozenset({
    BenefitKind.CHILDBIRTH_LUMP_SUM, BenefitKind.CHILD_CARE_ALLOWANCE,
    BenefitKind.BURIAL_BENEFIT, BenefitKind.BURIAL_SAVINGS_PAYMENT,
})
ONCE_PER_CONCLUSION: frozenset[BenefitKind] = frozenset({
    BenefitKind.DISABILITY_BENEFIT, BenefitKind.CARER_OF_DISABLED_CHILD,
})


# -- pension calculation -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BasePensionRule:
    min_share: Decimal  # of the subsistence minimum, up to threshold_years of service
    step: Decimal  # added per full year of service above threshold_years
    threshold_years: int
    max_share: Decimal


_BASE_SOURCE = ("Social Code: the base pension's share of PM by years of participation,"
                " +2% for each full year above 10 (zakon.kz 6505357, the minimum base pension;"
                " yka.kz 2024-01-03, the base pension in 2024)")

BASE_PENSION: YearTable[BasePensionRule] = _sourced_by_year("base pension", {
    2018: (BasePensionRule(Decimal("0.54"), Decimal("0.02"), 10, Decimal("1.00")),
           "the sizes from 2018 (54% up to 100%), not checked against the act"),
    2023: (BasePensionRule(Decimal("0.60"), Decimal("0.02"), 10, Decimal("1.00")), _BASE_SOURCE),
    2024: (BasePensionRule(Decimal("0.65"), Decimal("0.02"), 10, Decimal("1.05")), _BASE_SOURCE),
    2025: (BasePensionRule(Decimal("0.70"), Decimal("0.02"), 10, Decimal("1.10")), _BASE_SOURCE),
    2026: (BasePensionRule(Decimal("0.70"), Decimal("0.02"), 10, Decimal("1.18")), _BASE_SOURCE),
})


@dataclass(frozen=True, slots=True)
class AccumulativeRule:
    annual_payout_rate: Decimal


ACCUMULATIVE = AccumulativeRule(Decimal("0.065"))


@dataclass(frozen=True, slots=True)
class ChildCareCreditRule:
    years_per_child: int
    max_years: int


CHILD_CARE_CREDIT = ChildCareCreditRule(3, 12)


@dataclass(frozen=True, slots=True)
class PensionIncomeRule:
    months: int  # consecutive calendar months whose income is averaged
    earliest: dt.date  # the first month that may be counted
    source: str


# The average monthly income of the solidarity part: any run of three years in a row
# since 1 January 1995, whichever the person had the most income in (solidarity.py).
PENSION_INCOME = PensionIncomeRule(
    months=36,
    earliest=dt.date(1995, 1, 1),
    source=(
        "Law of 20 June 1997 No. 136-I on pension provision (art. 11; the act's text was not"
        " at hand to quote, the wording is the one its later versions kept): the average"
        " monthly income for any three years in a row from 1 January 1995, regardless of"
        " breaks in work; consistent with the ministry's answer of 14 December 2018"
        " (enbek.gov.kz node 359123): the income of 36 calendar months of work in a row"
        " divided by 36. Months without income in the chosen run are left out of the"
        " average (system choice)"
    ),
)


# -- insurance and schedules -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InsuranceRule:
    window_months: int
    min_paid_months: int
    since: dt.date
    source: str


# Compulsory health insurance through contributions (asked by health): the cover of a
# paid month runs for the 3 months after it, so a month is insured when at least one of
# the 3 calendar months before it was paid.
INSURANCE = InsuranceRule(
    window_months=3,
    min_paid_months=1,
    since=dt.date(2020, 1, 1),
    source=(
        'zakon.kz 6505805 "who the state insures" [o]; mybuh.kz, uninsured status [p]:'
        " insured status lasts 3 months after the last paid month"
    ),
)


@dataclass(frozen=True, slots=True)
class ScheduleRule:
    horizon_months: int


SCHEDULE = ScheduleRule(12)

DAYS_PER_YEAR = Decimal("365.25")


# The source of each rule above whose value cannot carry one itself (a plain number, a
# tuple, a set); the tables and rule objects with a ``source`` carry theirs row by row.
# tests/unit/test_rule_sources.py fails on any rule of this module with neither.
RULE_SOURCES: dict[str, str] = {
    "FIRST_CONTRIBUTION_YEAR": "the first year of CONTRIBUTION_RATES: pension's records"
    " start in 2010 (system choice, the model's data)",
    "CONTRIBUTION_TOLERANCE": "system choice: an employer's rounding of a contribution may"
    " differ from the rate table's by one tenge",
    "BIRTH_LUMP_SUM": "Social Code of 20 April 2023 No. 224-VII (before it the Law of 28 June"
    " 2005 on state benefits to families with children): 38 MCI for the first to third"
    " child, 63 MCI for the fourth and later; found right by issue 14's review against"
    " public sources",
    "BURIAL": BURIAL_RECIPIENT_SOURCE,
    "DISABILITY_GROUPS": "Social Code: disability is established in three groups by the"
    " medical and social expertise (health's conclusions)",
    "CARER_OF_DISABLED_CHILD": "Social Code: the benefit to a mother or father raising a"
    " child with a disability, until the child is 18; its sizes in PM carry their sources"
    " row by row (pm_share)",
    "SURVIVOR": "Social Code: the survivor pension of dependants of a deceased"
    " breadwinner; its family shares carry their sources row by row (family_share)",
    "ONCE_PER_SUBJECT": "the law pays the childbirth lump sum and the child-care allowance"
    " once per child and the burial payments once per death; enforced as a system choice"
    " by one decision per kind and subject",
    "ONCE_PER_CONCLUSION": "system choice: one disability benefit and one carer's benefit"
    " per commission conclusion (a new conclusion is a new decision)",
    "ACCUMULATIVE": "the UAPF's payment rules: a yearly payment of 6.5% of the pension"
    " savings, paid monthly (the model leaves out the annuity and the remainder rules;"
    " the rules' text was not checked here)",
    "CHILD_CARE_CREDIT": "Law of 21 June 2013 No. 105-V on pension provision, kept by the"
    " Social Code: a non-working mother's care of each child until the age of three counts"
    " as service, at most 12 years in total (the act's text was not at hand to quote)",
    "SCHEDULE": "system choice: payments are scheduled 12 months ahead; the next run or"
    " recalculation schedules the months after",
    "DAYS_PER_YEAR": "system choice: years of service are days / 365.25",
}
