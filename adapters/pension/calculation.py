"""Pure calculations of pensions and benefits from the rule tables (no I/O).

Each function returns the amount together with every input and coefficient it used
(``CalcItem`` rows) so the decision can be stored, shown and disputed line by line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from zhol.adapters.pension import rules, solidarity
from zhol.adapters.pension.model import CalcItem, Month, Payment, PensionCalculation
from zhol.adapters.pension.rules import DAYS_PER_YEAR, tenge

Interval = tuple[dt.date, dt.date]  # [start, end): end exclusive


def _d(value: Decimal | int | float) -> str:
    """Decimal text without exponent or trailing zeros."""
    text = format(Decimal(str(value)).normalize(), "f")
    return text


# -- benefits ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Amount:
    amount: int
    items: tuple[CalcItem, ...]


def birth_lump_sum(birth_order: int, birth_date: dt.date) -> Amount:
    row = rules.by_birth_order(rules.BIRTH_LUMP_SUM, birth_order)
    mci_row = rules.MCI.row(birth_date)  # the MCI in force on the birth date
    mci = mci_row.value
    amount = tenge(row.mci * mci)
    return Amount(amount, (
        CalcItem("birth_order", str(birth_order), "", "children of the mother born on or "
                 "before this child (population GetFamily)"),
        CalcItem("lump_sum_mci", _d(row.mci), "MCI",
                 f"rule table BIRTH_LUMP_SUM, from birth order {row.first_order}"),
        CalcItem("mci", str(mci), "KZT", rules.index_note("MCI", mci_row)),
        CalcItem("amount", str(amount), "KZT", "lump_sum_mci x mci"),
    ))


# The recipient line of a burial payment claimed by the person who arranged the burial.
FUNERAL_ARRANGER = "funeral_arranger"
CLAIM_SOURCE = ("Social Code art. 242; Rules of the Order of the Minister of Labour No. 256"
                " of 27 June 2023 (adilet.zan.kz V2300032925): paid to the relatives of the"
                " deceased or to those who performed the funeral, on their claim (gov.kz life"
                " situation 17)")


def burial_benefit(death_date: dt.date, recipient_relation: str, received: str) -> Amount:
    """The budget's lump-sum burial payment (``BURIAL_BUDGET``) in MCI of the death date's
    MCI; ``received``: what the deceased was paid on the death date (the pension system's
    own assignments and benefits), which makes it due. ``recipient_relation``: spouse,
    child (decided on the death's registration) or ``FUNERAL_ARRANGER`` (on a claim)."""
    row = rules.BURIAL_BUDGET.row(death_date)
    mci_row = rules.MCI.row(death_date)  # the MCI in force on the death date
    mci = mci_row.value
    amount = tenge(row.value * mci)
    if recipient_relation == FUNERAL_ARRANGER:
        recipient_note = ("the person who arranged the burial, on their claim (population"
                          f" GetPerson: living); source: {CLAIM_SOURCE}")
    else:
        recipient_note = (f"the spouse, else the eldest living adult child"
                          f" ({rules.BURIAL.adult_age}+), from population GetFamily; "
                          f"source: {rules.BURIAL_RECIPIENT_SOURCE}")
    return Amount(amount, (
        CalcItem("recipient", recipient_relation, "", recipient_note),
        CalcItem("deceased_received", received, "", "the deceased's pensions and state social"
                 " benefits in force on the death date (the pension system's own records)"),
        CalcItem("burial_mci", _d(row.value), "MCI", f"rule table BURIAL_BUDGET from "
                 f"{row.start.isoformat()}; source: {row.source}"),
        CalcItem("mci", str(mci), "KZT", rules.index_note("MCI", mci_row)),
        CalcItem("amount", str(amount), "KZT", "burial_mci x mci"),
    ))


def burial_savings_payment(death_date: dt.date, recipient_relation: str, balance: int
                           ) -> Amount:
    """The lump sum for burial from the deceased's pension savings (``BURIAL_SAVINGS``):
    the rule's MCI of the death date's MCI, at most the savings ``balance``."""
    if balance <= 0:
        raise ValueError("a burial payment from savings needs a positive balance")
    row = rules.BURIAL_SAVINGS.row(death_date)
    mci_row = rules.MCI.row(death_date)  # the MCI in force on the death date
    mci = mci_row.value
    limit = tenge(row.value * mci)
    amount = min(limit, balance)
    return Amount(amount, (
        CalcItem("recipient", recipient_relation, "", f"a family member: the spouse, else the"
                 f" eldest living adult child ({rules.BURIAL.adult_age}+), from population"
                 f" GetFamily; source: {rules.BURIAL_RECIPIENT_SOURCE}"),
        CalcItem("savings_balance", str(balance), "KZT",
                 "the deceased's pension savings in the accumulative fund"),
        CalcItem("burial_savings_mci", _d(row.value), "MCI", f"rule table BURIAL_SAVINGS from "
                 f"{row.start.isoformat()}; source: {row.source}"),
        CalcItem("mci", str(mci), "KZT", rules.index_note("MCI", mci_row)),
        CalcItem("burial_savings_limit", str(limit), "KZT", "burial_savings_mci x mci"),
        CalcItem("amount", str(amount), "KZT", "burial_savings_limit, at most savings_balance"),
    ))


def _full_years(born: dt.date, day: dt.date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def disability_amount(group: int, born: dt.date | None, month: Month,
                      since_childhood: bool = False) -> int:
    """The disability benefit paid for ``month``: the rates in force on its first day,
    by the age then (``born`` None: an adult's) and, for an adult, whether disabled
    since childhood, times the MCI or PM in force that day."""
    rates = rules.DISABILITY_BENEFIT.at(month.first_day)
    age = 18 if born is None else _full_years(born, month.first_day)
    units, _ = rates.units(group, age, since_childhood)
    index = (rules.MCI if rates.unit == "MCI" else rules.SUBSISTENCE_MINIMUM
             ).at(month.first_day)
    return tenge(units * index)


def disability_benefit(group: int, from_date: dt.date, born: dt.date | None = None,
                       since_childhood: bool = False) -> Amount:
    """The benefit of the from_date's month with its breakdown; each month is paid at
    ``disability_amount`` (the rates and index of the month paid)."""
    month = Month.of(from_date)
    row = rules.DISABILITY_BENEFIT.row(month.first_day)
    age = 18 if born is None else _full_years(born, month.first_day)
    units, which = row.value.units(group, age, since_childhood)
    amount = disability_amount(group, born, month, since_childhood)
    table = f"rule table DISABILITY_BENEFIT from {row.start.isoformat()}, {which}"
    if row.value.unit == "MCI":
        index_row = rules.MCI.row(month.first_day)
        formula = "benefit_mci x mci"
        lines = (CalcItem("benefit_mci", _d(units), "MCI", table),
                 CalcItem("mci", str(index_row.value), "KZT",
                          rules.index_note("MCI", index_row)))
    else:
        index_row = rules.SUBSISTENCE_MINIMUM.row(month.first_day)
        formula = "benefit_pm x subsistence_minimum"
        lines = (CalcItem("benefit_pm", _d(units), "PM", f"{table}; source: {row.source}"),
                 CalcItem("subsistence_minimum", str(index_row.value), "KZT",
                          rules.index_note("SUBSISTENCE_MINIMUM", index_row)))
    # Only a conclusion that says so carries the line (the recalculation reads it back).
    childhood = (CalcItem("since_childhood", "yes", "", "the medical advisory commission's"
                          " conclusion: disabled since childhood (an adult's rates by"
                          " group from 1 July 2023)"),) if since_childhood else ()
    return Amount(amount, (
        CalcItem("group", str(group), "", "the medical advisory commission's conclusion"),
        *childhood,
        *lines,
        CalcItem("amount", str(amount), "KZT", f"{formula} a month; {rules.INDEXED_YEARLY}"),
    ))


def is_child_on(born: dt.date, day: dt.date) -> bool:
    """Under the carer rule's age (18) on ``day``, by the birth date population holds."""
    return day < birthday(born, rules.CARER_OF_DISABLED_CHILD.child_under)


@dataclass(frozen=True, slots=True)
class CarerBenefit:
    amount: Amount  # the amount of the from_date's month, with its breakdown
    ends_on: dt.date  # inclusive: the conclusion's to_date or the day before 18, earlier


def pm_share_amount(table: rules.DatedTable[Decimal], month: Month) -> int:
    """A month's amount of a benefit set as a share of the PM: the share in force on the
    month's first day times the PM in force that day."""
    return tenge(rules.SUBSISTENCE_MINIMUM.at(month.first_day) * table.at(month.first_day))


def carer_amount(month: Month) -> int:
    """The carer's benefit paid for ``month``."""
    return pm_share_amount(rules.CARER_OF_DISABLED_CHILD.pm_share, month)


def carer_of_disabled_child(relation: str, from_date: dt.date, to_date: dt.date | None,
                            child_born: dt.date) -> CarerBenefit:
    """The monthly benefit to the parent (``relation``: mother, father) raising a child
    disabled from ``from_date``: a share of the subsistence minimum, each month the share
    in force and the PM of the year paid (``carer_amount``); due until ``to_date`` or the
    day before the child turns 18, whichever is earlier. ``amount`` is the from_date
    month's."""
    rule = rules.CARER_OF_DISABLED_CHILD
    month = Month.of(from_date)
    share_row = rule.pm_share.row(month.first_day)
    share = share_row.value
    subsistence_row = rules.SUBSISTENCE_MINIMUM.row(month.first_day)
    subsistence = subsistence_row.value
    amount = carer_amount(month)
    last_child_day = birthday(child_born, rule.child_under) - dt.timedelta(days=1)
    ends_on = last_child_day if to_date is None else min(to_date, last_child_day)
    return CarerBenefit(Amount(amount, (
        CalcItem("carer", relation, "", f"the first living of {', '.join(rule.parents)}"
                 " (population GetFamily of the child, GetPerson of the parent)"),
        CalcItem("carer_share", _d(share), "PM",
                 f"rule table CARER_OF_DISABLED_CHILD from {share_row.start.isoformat()};"
                 f" source: {share_row.source}"),
        CalcItem("subsistence_minimum", str(subsistence), "KZT",
                 rules.index_note("SUBSISTENCE_MINIMUM", subsistence_row)),
        CalcItem("amount", str(amount), "KZT", "subsistence_minimum x carer_share a month; "
                 + rules.INDEXED_YEARLY),
        CalcItem("conclusion_to", to_date.isoformat() if to_date else "", "date",
                 "the commission's conclusion (empty: no end date)"),
        CalcItem("child_until", last_child_day.isoformat(), "date",
                 f"the day before the child's {rule.child_under}th birthday (population "
                 "GetPerson)"),
        CalcItem("ends_on", ends_on.isoformat(), "date",
                 "the earlier of conclusion_to and child_until"),
    )), ends_on)


@dataclass(frozen=True, slots=True)
class SurvivorPension:
    calculation: PensionCalculation
    ends_on: dt.date  # inclusive: the day before the child's birthday of the end age


def birthday(born: dt.date, years: int) -> dt.date:
    """The day a person born on ``born`` turns ``years`` (``sources.age_on`` agrees: one
    born on 29 February turns it on 1 March of a common year)."""
    try:
        return born.replace(year=born.year + years)
    except ValueError:
        return dt.date(born.year + years, 3, 1)


@dataclass(frozen=True, slots=True)
class StudyPeriod:
    """A study at a college or university as education answers it (``ListStudies``):
    first and last day inclusive, ``last`` None while no end is recorded."""

    first: dt.date
    last: dt.date | None
    level: str
    form: str
    institution_id: str = ""

    def in_force(self, day: dt.date) -> bool:
        return self.first <= day and (self.last is None or day <= self.last)

    def describe(self) -> str:
        last = self.last.isoformat() if self.last else "no end recorded"
        return (f"{self.form} {self.level} study {self.institution_id} from"
                f" {self.first.isoformat()}, last day {last}").replace("  ", " ")


@dataclass(frozen=True, slots=True)
class SurvivorEnd:
    """The last day a child is due a survivor pension and, when a full-time study keeps
    the child a dependant past 18, that study (None: the day before the 18th birthday)."""

    ends_on: dt.date
    study: StudyPeriod | None = None
    source: str = ""  # the SURVIVOR_STUDENT row's source, when a study counts


def survivor_end(born: dt.date, from_day: dt.date,
                 studies: Sequence[StudyPeriod] | None) -> SurvivorEnd:
    """Until when a child born on ``born`` is a dependant, counted from ``from_day`` (the
    death, or the decision's first day): the day before the 18th birthday, or, when a
    full-time study of ``SURVIVOR_STUDENT``'s levels is in force on the later of
    ``from_day`` and the 18th birthday, that study's last day (followed without a gap by
    the next such study), never after the day before the 23rd birthday. ``studies`` None:
    education was not asked (a child under 18 at the death)."""
    child_end = birthday(born, rules.SURVIVOR.end_age) - dt.timedelta(days=1)
    adult = birthday(born, rules.SURVIVOR.end_age)
    day = max(from_day, adult)
    row = rules.SURVIVOR_STUDENT.row(day)
    rule = row.value
    cap = birthday(born, rule.until_age) - dt.timedelta(days=1)
    if studies is None or day > cap:
        return SurvivorEnd(child_end)
    counted = sorted((s for s in studies if s.form in rule.forms and s.level in rule.levels),
                     key=lambda s: s.first)
    current = [s for s in counted if s.in_force(day)]
    if not current:
        return SurvivorEnd(child_end)
    study = max(current, key=lambda s: s.last or dt.date.max)
    last = study.last
    for later in counted:  # a study that starts on or before the day after: no gap
        if last is None:
            break
        if later.first <= last + dt.timedelta(days=1) and (
                later.last is None or later.last > last):
            last = later.last
    end = cap if last is None else min(last, cap)
    return SurvivorEnd(end, study, row.source)


def _student_line(end: SurvivorEnd, born: dt.date) -> str:
    """The explanation's line on the full-time study, for ``survivor_end``."""
    rule = rules.SURVIVOR_STUDENT
    until = rule.rows[-1].value.until_age
    if end.study is None:
        return (f"Full-time students up to {until}: a child of 18 or more in full-time"
                " study at a college or for a bachelor's degree (education) stays a"
                f" dependant until the study ends, at most until the {until}th birthday;"
                " the recalculation run asks education from the child's 17th birthday"
                " (rule table SURVIVOR_STUDENT).")
    cap = birthday(born, until) - dt.timedelta(days=1)
    return (f"Full-time student: {end.study.describe()}; paid until {end.ends_on.isoformat()},"
            f" the study's last day or the day before the {until}th birthday"
            f" ({cap.isoformat()}), whichever is earlier (rule table SURVIVOR_STUDENT;"
            f" source: {end.source}).")


def _ends_note(end: SurvivorEnd) -> str:
    """The ``ends_on`` line's note; for a student it names the study (no item of its
    own: the portal labels every item name)."""
    if end.study is None:
        return (f"the day before the child's {rules.SURVIVOR.end_age}th birthday (rule table"
                " SURVIVOR)")
    return (f"the full-time study's last day, at most the day before the 23rd birthday;"
            f" education ListStudies: {end.study.describe()}, in force on the later of the"
            f" death and the 18th birthday (rule table SURVIVOR_STUDENT; source:"
            f" {end.source})")


def survivor_amount(dependants: int, month: Month) -> int:
    """One child's survivor pension paid for ``month``: the family's share in force on the
    month's first day times the PM in force that day, split equally."""
    row = rules.SURVIVOR.row(month.first_day, dependants)
    family = tenge(rules.SUBSISTENCE_MINIMUM.at(month.first_day) * row.pm_share)
    return tenge(Decimal(family) / dependants)


def survivor_pension(dependants: int, death_date: dt.date, child_born: dt.date,
                     studies: Sequence[StudyPeriod] | None = None) -> SurvivorPension:
    """One child's monthly share of the family's survivor pension (rule table SURVIVOR
    in force on the death date and the subsistence minimum of the death year), due until
    the day before the child turns the end age, or while a full-time study keeps the
    child a dependant (``survivor_end``). ``dependants``: the deceased's children who
    qualify. Each month is paid at the share and PM of that month (``survivor_amount``)."""
    year = death_date.year
    rule = rules.SURVIVOR
    table_row = rule.family_share.row(death_date)
    row = rule.row(death_date, dependants)
    subsistence_row = rules.SUBSISTENCE_MINIMUM.row(death_date)
    subsistence = subsistence_row.value
    family = tenge(subsistence * row.pm_share)  # the family's, then each child's share
    amount = tenge(Decimal(family) / dependants)
    end = survivor_end(child_born, death_date, studies)
    ends_on = end.ends_on
    study_line = _student_line(end, child_born)
    last = row is table_row.value[-1]
    items = (
        CalcItem("dependants", str(dependants), "", "the deceased's living children under "
                 f"{rule.end_age} on the death date, and those of 18 to 22 in full-time study"
                 " then (population GetFamily, GetPerson of each; education ListStudies),"
                 " orphans excepted (paid the orphan's pension, rule table SURVIVOR_ORPHAN)"),
        CalcItem("family_share", _d(row.pm_share), "PM",
                 f"rule table SURVIVOR from {table_row.start.isoformat()}, for "
                 f"{row.first_count}{'+' if last else ''} dependants; source: "
                 f"{table_row.source}"),
        CalcItem("subsistence_minimum", str(subsistence), "KZT",
                 rules.index_note("SUBSISTENCE_MINIMUM", subsistence_row)),
        CalcItem("family_amount", str(family), "KZT", "subsistence_minimum x family_share"),
        CalcItem("monthly_amount", str(amount), "KZT",
                 "family_amount / dependants: an equal share, a month; "
                 + rules.INDEXED_YEARLY),
        CalcItem("child_born_on", child_born.isoformat(), "date", "population GetPerson"),
        CalcItem("ends_on", ends_on.isoformat(), "date", _ends_note(end)),
    )
    explanation = (
        f"{dependants} dependant{'s' if dependants > 1 else ''}: the deceased's living children "
        f"under {rule.end_age} on {death_date.isoformat()}, and those of {rule.end_age} to 22 in"
        " full-time study then.",
        f"Family amount {family} = subsistence minimum {subsistence} x "
        f"{_d(row.pm_share)} for {dependants} dependant{'s' if dependants > 1 else ''}.",
        f"Monthly pension {amount} = {family} / {dependants}, due until "
        f"{ends_on.isoformat()}"
        + (f" (the day before the {rule.end_age}th birthday)." if end.study is None else "."),
        "Each month is paid at the subsistence minimum of the year paid (revised each"
        " 1 January).",
        study_line,
    )
    return SurvivorPension(PensionCalculation.by_items(amount, year, items, explanation), ends_on)


def orphan_amount(month: Month) -> int:
    """An orphan's survivor pension paid for ``month``: the orphan's share and the PM in
    force on the month's first day (each child the same)."""
    return pm_share_amount(rules.SURVIVOR_ORPHAN, month)


def orphan_pension(death_date: dt.date, other_died_on: dt.date | None, orphaned_on: dt.date,
                   child_born: dt.date, studies: Sequence[StudyPeriod] | None = None
                   ) -> SurvivorPension:
    """The survivor pension of a child both of whose parents are deceased: the orphan's
    share of PM in force on ``orphaned_on`` (the later death) times the PM of its year,
    for this child alone, due until the day before the child turns the end age; each
    month at the share and PM of that month (``orphan_amount``)."""
    rule = rules.SURVIVOR
    row = rules.orphan_row(orphaned_on)
    if row is None:
        raise ValueError("no orphan's share before the table's first row")
    year = orphaned_on.year
    subsistence_row = rules.SUBSISTENCE_MINIMUM.row(orphaned_on)
    subsistence = subsistence_row.value
    amount = tenge(subsistence * row.value)
    end = survivor_end(child_born, orphaned_on, studies)
    ends_on = end.ends_on
    study_line = _student_line(end, child_born)
    other = other_died_on.isoformat() if other_died_on else "a date population does not give"
    items = (
        CalcItem("orphan", "both parents deceased", "",
                 f"this parent died on {death_date.isoformat()}, the other on {other}"
                 " (population GetFamily of the child, GetPerson of the other parent)"),
        CalcItem("orphaned_on", orphaned_on.isoformat(), "date", "the later of the two deaths"),
        CalcItem("orphan_share", _d(row.value), "PM",
                 f"rule table SURVIVOR_ORPHAN from {row.start.isoformat()}, each child;"
                 f" source: {row.source}"),
        CalcItem("subsistence_minimum", str(subsistence), "KZT",
                 rules.index_note("SUBSISTENCE_MINIMUM", subsistence_row)),
        CalcItem("monthly_amount", str(amount), "KZT",
                 "subsistence_minimum x orphan_share a month; " + rules.INDEXED_YEARLY),
        CalcItem("child_born_on", child_born.isoformat(), "date", "population GetPerson"),
        CalcItem("ends_on", ends_on.isoformat(), "date", _ends_note(end)),
    )
    explanation = (
        f"Both parents are deceased (this parent on {death_date.isoformat()}, the other on"
        f" {other}): the orphan's pension, not a share of the family's.",
        f"Monthly pension {amount} = subsistence minimum {subsistence} x {_d(row.value)},"
        f" due until {ends_on.isoformat()}"
        + (f" (the day before the {rule.end_age}th birthday)." if end.study is None else "."),
        "Each month is paid at the subsistence minimum of the year paid (revised each"
        " 1 January).",
        study_line,
    )
    return SurvivorPension(PensionCalculation.by_items(amount, year, items, explanation), ends_on)


def indexed_payments(first: Month, count: int, amount_of: Callable[[Month], int]
                     ) -> tuple[Payment, ...]:
    """Monthly payments whose amount follows the month paid (the PM or MCI of its year)."""
    return tuple(Payment(first.plus(i), amount_of(first.plus(i))) for i in range(count))


def months_between(first: Month, last: Month) -> int:
    """How many months from ``first`` to ``last`` inclusive (0 if last is earlier)."""
    return max(0, last.minus(first) + 1)


# -- intervals ---------------------------------------------------------------------------


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping union of half-open intervals (empty ones dropped)."""
    merged: list[Interval] = []
    for start, end in sorted(i for i in intervals if i[0] < i[1]):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def clip(intervals: Iterable[Interval], before: dt.date) -> list[Interval]:
    return [(s, min(e, before)) for s, e in intervals if s < before]


def days(intervals: Iterable[Interval]) -> int:
    return sum((e - s).days for s, e in intervals)


def subtract(interval: Interval, covered: Sequence[Interval]) -> list[Interval]:
    """The parts of ``interval`` that ``covered`` (merged) does not cover."""
    start, end = interval
    parts: list[Interval] = []
    for c_start, c_end in covered:
        if c_end <= start or c_start >= end:
            continue
        if c_start > start:
            parts.append((start, c_start))
        start = max(start, c_end)
        if start >= end:
            break
    if start < end:
        parts.append((start, end))
    return parts


def years(day_count: int) -> Decimal:
    return (Decimal(day_count) / DAYS_PER_YEAR).quantize(Decimal("0.01"))


# -- the age pension ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PensionInputs:
    female: bool
    reached_age_on: dt.date
    retirement_age_months: int
    calculated_on: dt.date  # rules of this year's rows (PM, MCI)
    employment: tuple[tuple[dt.date, dt.date | None], ...]  # ended_on inclusive, None: open
    children_birth_dates: tuple[dt.date, ...]  # read over the bus; mothers only
    monthly_incomes: tuple[int, ...]  # income of each month with contributions in the window
    savings_balance: int
    retirement_age_source: str = ""  # the RETIREMENT_AGE row's source
    # The months ``monthly_incomes`` come from (solidarity.best_income_window), for the
    # explanation; "" when the caller gave the incomes of another window.
    income_window: str = ""


def age_pension(inputs: PensionInputs) -> PensionCalculation:
    """Base pension + solidarity part (service before 1998) + accumulative part."""
    end = inputs.reached_age_on
    year = inputs.calculated_on.year
    items: list[CalcItem] = []
    lines: list[str] = []

    employed = merge(
        (start, (stop + dt.timedelta(days=1)) if stop else end) for start, stop in inputs.employment
    )
    employed = clip(employed, end)
    employment_years = years(days(employed))
    before_1998 = years(days(clip(employed, solidarity.SOLIDARITY_SHARES.service_before)))

    care_days = 0
    credit = rules.CHILD_CARE_CREDIT
    if inputs.female:
        care = merge(
            part
            for birth in inputs.children_birth_dates
            if birth < end
            for part in subtract(
                (birth, min(rules.add_months(birth, 12 * credit.years_per_child), end)), employed
            )
        )
        care_days = min(days(care), int(credit.max_years * DAYS_PER_YEAR))
    care_years = years(care_days)
    service = employment_years + care_years

    age_text = _d(Decimal(inputs.retirement_age_months) / 12)
    items += [
        CalcItem("retirement_age", age_text, "years",
                 f"rule table RETIREMENT_AGE ({'women' if inputs.female else 'men'})"
                 + (f"; source: {inputs.retirement_age_source}"
                    if inputs.retirement_age_source else "")),
        CalcItem("reached_age_on", end.isoformat(), "date", "birth date from population "
                 "GetPerson plus the retirement age"),
        CalcItem("employment_years", _d(employment_years), "years",
                 f"{len(inputs.employment)} employment periods on record, until reached_age_on"),
        CalcItem("child_care_years", _d(care_years), "years",
                 f"{credit.years_per_child} years per child not covered by employment, at most "
                 f"{credit.max_years} (mothers; children from population GetFamily)"
                 if inputs.female else "credited to mothers only"),
        CalcItem("years_of_service", _d(service), "years", "employment_years + child_care_years"),
    ]
    lines.append(f"Retirement age {age_text} reached on {end.isoformat()}"
                 + (f" (rule table RETIREMENT_AGE; source: {inputs.retirement_age_source})."
                    if inputs.retirement_age_source else "."))
    lines.append(f"Years of service {_d(service)} = employment {_d(employment_years)}"
                 f" + child care {_d(care_years)}.")

    base_row = rules.BASE_PENSION.row(year)
    base_rule = base_row.value
    subsistence_row = rules.SUBSISTENCE_MINIMUM.row(inputs.calculated_on)
    subsistence = subsistence_row.value
    full_years = int(service)
    above = max(0, full_years - base_rule.threshold_years)
    share = min(base_rule.max_share, base_rule.min_share + base_rule.step * above)
    base = tenge(subsistence * share)
    items += [
        CalcItem("subsistence_minimum", str(subsistence), "KZT",
                 rules.index_note("SUBSISTENCE_MINIMUM", subsistence_row)),
        CalcItem("base_share", _d(share), "share",
                 f"{_d(base_rule.min_share)} up to {base_rule.threshold_years} years"
                 f" + {_d(base_rule.step)} per full year above, at most {_d(base_rule.max_share)}"
                 f" (rule table BASE_PENSION {base_row.year}; source: {base_row.source})"),
        CalcItem("base_pension", str(base), "KZT", "subsistence_minimum x base_share"),
    ]
    lines.append(f"Base pension {base} = subsistence minimum {subsistence} x {_d(share)}"
                 f" for {full_years} full years of service.")

    months = len(inputs.monthly_incomes)
    average = tenge(Decimal(sum(inputs.monthly_incomes)) / months) if months else 0
    part = solidarity.solidarity_part(
        average,
        f"{months} months with contributions in {inputs.income_window}: the"
        f" {rules.PENSION_INCOME.months} consecutive months since"
        f" {rules.PENSION_INCOME.earliest:%B %Y} with the most income (rule table"
        f" PENSION_INCOME; source: {rules.PENSION_INCOME.source})"
        if inputs.income_window else
        f"{months} months with contributions",
        before_1998, inputs.female, inputs.calculated_on,
    )
    solidarity_amount = part.amount
    items += [
        *part.items[:1],
        CalcItem("contribution_months", str(months), "months", "recorded contributions"),
        *part.items[1:],
    ]
    lines += part.lines

    payout = rules.ACCUMULATIVE.annual_payout_rate
    accumulative = tenge(Decimal(inputs.savings_balance) * payout / 12)
    items += [
        CalcItem("savings_balance", str(inputs.savings_balance), "KZT",
                 "pension savings in the accumulative fund"),
        CalcItem("annual_payout_rate", _d(payout), "share", "rule table ACCUMULATIVE"),
        CalcItem("accumulative_part", str(accumulative), "KZT",
                 "savings_balance x annual_payout_rate / 12"),
    ]
    lines.append(f"Accumulative part {accumulative} = savings {inputs.savings_balance}"
                 f" x {_d(payout)} / 12.")
    monthly = base + solidarity_amount + accumulative
    items.append(CalcItem("monthly_amount", str(monthly), "KZT",
                          "base_pension + solidarity_part + accumulative_part"))
    lines.append(f"Monthly pension {monthly} = {base} + {solidarity_amount} + {accumulative}.")

    return PensionCalculation(
        base_pension=base,
        solidarity_part=solidarity_amount,
        accumulative_part=accumulative,
        monthly_amount=monthly,
        years_of_service=float(service),
        employment_years=float(employment_years),
        child_care_years=float(care_years),
        service_years_before_1998=float(before_1998),
        average_monthly_income=average,
        contribution_months=months,
        savings_balance=inputs.savings_balance,
        retirement_age_months=inputs.retirement_age_months,
        reached_age_on=end,
        rule_year=year,
        items=tuple(items),
        explanation=tuple(lines),
    )
