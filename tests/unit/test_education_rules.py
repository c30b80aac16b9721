"""The education system's rule tables: ages for the kindergarten queue and for school."""

from __future__ import annotations

import datetime as dt

import pytest

from zhol.adapters.education import rules
from zhol.adapters.education.model import Citizen, NotAllowed
from zhol.core.iin import make_iin


def child(born: dt.date, *, deceased: bool = False, district: str | None = "Medeu district"
          ) -> Citizen:
    iin = make_iin(born, False, 17)
    assert iin is not None
    return Citizen(iin, born, deceased, "Almaty city" if district else None, district)


@pytest.mark.parametrize(
    ("born", "day", "age"),
    [
        (dt.date(2019, 9, 1), dt.date(2025, 9, 1), 6),
        (dt.date(2019, 9, 2), dt.date(2025, 9, 1), 5),
        (dt.date(2020, 2, 29), dt.date(2021, 2, 28), 0),
        (dt.date(2020, 2, 29), dt.date(2021, 3, 1), 1),
        (dt.date(2025, 6, 2), dt.date(2025, 6, 2), 0),
    ],
)
def test_age_on(born: dt.date, day: dt.date, age: int) -> None:
    assert rules.age_on(born, day) == age


@pytest.mark.parametrize(
    ("today", "start"),
    [
        (dt.date(2025, 3, 31), dt.date(2024, 9, 1)),  # the current school year
        (dt.date(2025, 4, 1), dt.date(2025, 9, 1)),   # admission for the next one opens
        (dt.date(2025, 8, 31), dt.date(2025, 9, 1)),
        (dt.date(2025, 9, 1), dt.date(2025, 9, 1)),
        (dt.date(2025, 12, 31), dt.date(2025, 9, 1)),
        (dt.date(2026, 1, 15), dt.date(2025, 9, 1)),
    ],
)
def test_school_year_start(today: dt.date, start: dt.date) -> None:
    assert rules.school_year_start(today) == start


def test_grade_ages_shift_with_the_grade() -> None:
    assert rules.grade_ages(2025, 1) == rules.AgeRange(6, 7)
    assert rules.grade_ages(2025, 3) == rules.AgeRange(8, 9)
    assert rules.grade_ages(1995, 1) == rules.FIRST_GRADE_AGES[0][1]  # before the table
    for grade in (0, 12, -1):
        with pytest.raises(ValueError):
            rules.grade_ages(2025, grade)


JUNE = dt.date(2025, 6, 2)  # enrolments now are for the year starting 2025-09-01


@pytest.mark.parametrize(
    ("born", "fits"),
    [
        (dt.date(2019, 12, 31), True),  # turns 6 on the last day of 2025: may enrol
        (dt.date(2020, 1, 1), False),   # turns 6 only in 2026
        (dt.date(2019, 9, 2), True),    # still 5 on 1 September, turns 6 in 2025
        (dt.date(2018, 12, 31), True),  # turns 7 in 2025
        (dt.date(2018, 1, 1), True),    # turns 7 on the first day of 2025
        (dt.date(2017, 12, 31), False),  # turns 8 in 2025 (7 on 1 September)
    ],
)
def test_first_grade_by_the_age_turned_in_the_calendar_year(born: dt.date, fits: bool) -> None:
    # rules.FIRST_GRADE_SOURCE: egov.kz "first class" [r].
    if fits:
        assert rules.check_school_age(child(born), 1, JUNE) == dt.date(2025, 9, 1)
    else:
        with pytest.raises(NotAllowed):
            rules.check_school_age(child(born), 1, JUNE)
    assert "[r]" in rules.FIRST_GRADE_SOURCE


def test_higher_grades_shift_the_calendar_year_ages() -> None:
    # Grade 3 in the school year starting 2025: turns 8 or 9 in 2025.
    rules.check_school_age(child(dt.date(2016, 12, 31)), 3, JUNE)
    rules.check_school_age(child(dt.date(2017, 12, 31)), 3, JUNE)
    with pytest.raises(NotAllowed):
        rules.check_school_age(child(dt.date(2018, 1, 1)), 3, JUNE)
    with pytest.raises(NotAllowed):
        rules.check_school_age(child(dt.date(2015, 12, 31)), 3, JUNE)


def test_kindergarten_ages() -> None:
    """Up to 6 years old (Order No. 254 of 2020, gov.kz services 3042)."""
    rules.check_kindergarten_age(child(JUNE), JUNE)  # born today
    rules.check_kindergarten_age(child(dt.date(2019, 6, 3)), JUNE)  # 5, the last year
    with pytest.raises(NotAllowed):
        rules.check_kindergarten_age(child(dt.date(2019, 6, 2)), JUNE)  # 6 today
    with pytest.raises(NotAllowed):
        rules.check_kindergarten_age(child(dt.date(2018, 6, 3)), JUNE)  # 6, not 7 yet
    assert "No. 254" in rules.KINDERGARTEN_AGES_SOURCE
    with pytest.raises(NotAllowed):
        rules.check_kindergarten_age(child(JUNE + dt.timedelta(days=1)), JUNE)


def test_alive_and_registered_district() -> None:
    with pytest.raises(NotAllowed):
        rules.check_alive(child(JUNE, deceased=True))
    with pytest.raises(NotAllowed):
        rules.check_registered_district(child(JUNE, district=None))
    assert rules.check_registered_district(child(JUNE)) == ("Almaty city", "Medeu district")
