"""The education system's rule tables and the pure checks built on them (no I/O).

Ages are parameters of tables, never constants in code:

- ``KINDERGARTEN_AGES``: a child may wait in the kindergarten queue from birth until
  the day before its sixth birthday (completed years 0..5) on the day of the decision:
  the state service queues "pre-school children (up to 6 years old)" (Rules of Order
  No. 254 of 19 June 2020; gov.kz services 3042). The 2015 standard said "up to 7".
- ``FIRST_GRADE_AGES``: by school year (the year its 1 September falls in), the ages a
  child turns in that calendar year to start grade 1: every child who turns 7, and a
  child who turns 6 (egov.kz "first class" [r]); a birthday on 31 December counts, so
  the day of the month never matters, only the birth year. Grade ``g`` shifts the range
  by ``g - 1`` years (a pupil changing school into grade 3 turns 8 or 9 that year).
- ``SCHOOL_YEAR``: a school year starts on 1 September; enrolment for the next one
  opens on 1 April. From 1 April to 31 August an enrolment is for the school year
  starting on the coming 1 September, from 1 September to 31 March for the current one.
- ``STUDY_LEVELS``: the levels of vocational and higher education and the kind of
  institution that teaches each (``check_study``, ``check_study_end``: a study's first
  and last day, both inclusive, never in the future).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from zhol.adapters.education.model import (
    Citizen,
    InstitutionKind,
    InvalidInput,
    NotAllowed,
    Study,
    StudyLevel,
)


@dataclass(frozen=True, slots=True)
class AgeRange:
    """Completed years, both ends included."""

    low: int
    high: int

    def __contains__(self, age: object) -> bool:
        return isinstance(age, int) and self.low <= age <= self.high


@dataclass(frozen=True, slots=True)
class SchoolYearRule:
    start_month: int
    start_day: int
    admission_opens_month: int
    admission_opens_day: int


KINDERGARTEN_AGES = AgeRange(0, 5)
KINDERGARTEN_AGES_SOURCE = (
    "Rules for the provision of state services in pre-school education, Order of the"
    " Minister of Education and Science No. 254 of 19 June 2020: \"placing pre-school"
    " children (up to 6 years old) on the waiting list\" (gov.kz services 3042; egov.kz"
    " 'how to put a child in the queue of kindergarten', updated 2021-02-11); a child is"
    " of kindergarten age until the sixth birthday (rus.baq.kz 2025-09-24: children were"
    " released from kindergarten on turning six). Replaced the 2015 standard's \"up to 7"
    " years\" (Order No. 172 of 7 April 2015)"
)

# (first school year the row applies to, ages turned in the calendar year of the school
# year's 1 September for grade 1), oldest first. One row: the date the calendar-year
# rule replaced an earlier one is not known, so it applies to every school year.
FIRST_GRADE_AGES: tuple[tuple[int, AgeRange], ...] = (
    (2000, AgeRange(6, 7)),
)
FIRST_GRADE_SOURCE = (
    'egov.kz "first class" (admission to grade 1, read 2026) [r]: every child who turns 7'
    " in the calendar year of the school year's start, and a child who turns 6 in it"
)

SCHOOL_YEAR = SchoolYearRule(start_month=9, start_day=1, admission_opens_month=4,
                             admission_opens_day=1)

GRADES = range(1, 12)  # 1..11


def age_on(birth_date: dt.date, day: dt.date) -> int:
    """Completed years on ``day`` (a 29 February birthday counts from 1 March)."""
    years = day.year - birth_date.year
    if (day.month, day.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


def age_turned_in(birth_date: dt.date, year: int) -> int:
    """The age a person turns in calendar ``year`` (on the birthday within it)."""
    return year - birth_date.year


def school_year_start(today: dt.date, rule: SchoolYearRule = SCHOOL_YEAR) -> dt.date:
    """The 1 September of the school year an enrolment made ``today`` is for."""
    opens = (rule.admission_opens_month, rule.admission_opens_day)
    year = today.year if (today.month, today.day) >= opens else today.year - 1
    return dt.date(year, rule.start_month, rule.start_day)


def grade_ages(school_year: int, grade: int) -> AgeRange:
    """The ages turned in the school year's first calendar year that grade ``grade``
    admits."""
    if grade not in GRADES:
        raise ValueError(f"grade must be {GRADES.start}..{GRADES.stop - 1}")
    first: AgeRange | None = None
    for since, ages in FIRST_GRADE_AGES:
        if since <= school_year:
            first = ages
    if first is None:
        first = FIRST_GRADE_AGES[0][1]
    shift = grade - 1
    return AgeRange(first.low + shift, first.high + shift)


def check_kindergarten_age(child: Citizen, today: dt.date) -> None:
    """Refuse (``NotAllowed``) a child outside ``KINDERGARTEN_AGES`` today."""
    if child.birth_date > today:
        raise NotAllowed(f"child {child.iin} is not born yet")
    age = age_on(child.birth_date, today)
    if age not in KINDERGARTEN_AGES:
        raise NotAllowed(
            f"child {child.iin} is {age} years old; the kindergarten queue takes children"
            f" aged {KINDERGARTEN_AGES.low} to {KINDERGARTEN_AGES.high}"
        )


def check_school_age(child: Citizen, grade: int, today: dt.date) -> dt.date:
    """The school year's 1 September, or ``NotAllowed`` when the age the child turns in
    that calendar year does not fit the grade (``FIRST_GRADE_SOURCE``)."""
    start = school_year_start(today)
    ages = grade_ages(start.year, grade)
    age = age_turned_in(child.birth_date, start.year)
    if age not in ages:
        raise NotAllowed(
            f"child {child.iin} turns {age} in {start.year}; grade {grade} admits children"
            f" who turn {ages.low} or {ages.high} in the calendar year the school year starts"
        )
    return start


def check_alive(child: Citizen) -> None:
    if child.deceased:
        raise NotAllowed(f"person {child.iin} is deceased")


def check_registered_district(child: Citizen) -> tuple[str, str]:
    """The child's registered (region, district), or ``NotAllowed`` without one."""
    if not child.region or not child.district:
        raise NotAllowed(f"person {child.iin} has no registered address with a district")
    return child.region, child.district


# study level -> the kind of institution that teaches it.
STUDY_LEVELS: dict[StudyLevel, InstitutionKind] = {
    StudyLevel.VOCATIONAL: InstitutionKind.COLLEGE,
    StudyLevel.BACHELOR: InstitutionKind.UNIVERSITY,
    StudyLevel.MASTER: InstitutionKind.UNIVERSITY,
    StudyLevel.DOCTORAL: InstitutionKind.UNIVERSITY,
}
STUDY_LEVELS_SOURCE = (
    'Law of the Republic of Kazakhstan "On Education" of 27 July 2007 No. 319-III: the'
    " levels of technical and vocational, higher (bachelor) and postgraduate (master,"
    " doctoral) education; a college teaches the first, a university the others (system"
    " choice: the model knows these two kinds of institution)"
)
# The earliest first day of a study on record (system choice: older records are paper).
EARLIEST_STUDY = dt.date(1990, 1, 1)


def check_study(kind: InstitutionKind, level: StudyLevel, started_on: dt.date,
                today: dt.date) -> None:
    """Refuse a study the institution does not teach (``NotAllowed``) or with a first
    day in the future or before ``EARLIEST_STUDY`` (``InvalidInput``)."""
    if started_on > today:
        raise InvalidInput("started_on is in the future")
    if started_on < EARLIEST_STUDY:
        raise InvalidInput(f"started_on is before {EARLIEST_STUDY.isoformat()}")
    if STUDY_LEVELS[level] is not kind:
        raise NotAllowed(f"a {kind.value} does not teach the {level.value} level")


def check_study_end(study: Study, ended_on: dt.date, today: dt.date) -> None:
    """A study ends once, on a day from its first day to today (its last day)."""
    if study.ended_on is not None:
        raise NotAllowed(f"study {study.study_id} ended on {study.ended_on.isoformat()}")
    if ended_on > today:
        raise InvalidInput("ended_on is in the future")
    if ended_on < study.started_on:
        raise InvalidInput("ended_on is before the study's started_on")



# The source of each rule above whose value cannot carry one itself.
# tests/unit/test_rule_sources.py fails on any rule of this module with neither.
RULE_SOURCES: dict[str, str] = {
    "KINDERGARTEN_AGES": KINDERGARTEN_AGES_SOURCE,
    "FIRST_GRADE_AGES": FIRST_GRADE_SOURCE,
    "SCHOOL_YEAR": 'egov.kz "first class" [r]: applications for grade 1 are taken from'
    " 1 April; the school year starts on 1 September (Law \"On Education\" of 27 July 2007"
    " No. 319-III); found right by issue 14's review",
    "GRADES": 'Law "On Education" of 27 July 2007 No. 319-III: general secondary'
    " education in grades 1 to 11",
    "STUDY_LEVELS": STUDY_LEVELS_SOURCE,
}
