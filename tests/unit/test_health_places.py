"""Health's places of work and study (clinic attachment) and the student's state-paid
insurance (issue 14 item 11): pure rules at their boundary days, no I/O."""

from __future__ import annotations

import datetime as dt

import pytest

from zhol.adapters.health import rules
from zhol.adapters.health.rules import PlacePeriod

JUNE_2 = dt.date(2025, 6, 2)
ESIL = ("Astana city", "Yesil district")
MEDEU = ("Almaty city", "Medeu district")


def at(place: tuple[str, str], first: dt.date, last: dt.date | None, form: str = "",
       level: str = "") -> PlacePeriod:
    return PlacePeriod(first, last, *place, form, level)


def test_the_bases_of_attachment_include_work_and_study() -> None:
    # egov.kz "choice of a clinic" [q]: residence (permanent, temporary), work, study
    assert rules.ATTACHMENT.bases == (
        rules.REGISTERED_ADDRESS, rules.TEMPORARY_ADDRESS, rules.SCHOOL, rules.WORKPLACE,
        rules.COLLEGE_OR_UNIVERSITY,
    )
    assert not rules.ATTACHMENT.requires_insurance


@pytest.mark.parametrize(
    ("last", "counts"),
    [
        (JUNE_2, True),                             # ends today: today is its last day
        (JUNE_2 - dt.timedelta(days=1), False),     # ended yesterday
        (None, True),                               # open
    ],
)
def test_a_place_counts_up_to_its_last_day(last: dt.date | None, counts: bool) -> None:
    places = rules.places_on([at(ESIL, dt.date(2020, 1, 1), last)], JUNE_2)
    assert (ESIL in places) is counts


def test_a_place_counts_from_its_first_day_and_needs_a_district() -> None:
    assert rules.places_on([at(ESIL, JUNE_2, None)], JUNE_2) == {ESIL}
    assert rules.places_on([at(ESIL, JUNE_2 + dt.timedelta(days=1), None)], JUNE_2) == set()
    assert rules.places_on([at(("Astana city", ""), dt.date(2020, 1, 1), None)], JUNE_2) == set()
    # several employers at once: each one's district
    both = [at(ESIL, dt.date(2020, 1, 1), None), at(MEDEU, dt.date(2024, 1, 1), None)]
    assert rules.places_on(both, JUNE_2) == {ESIL, MEDEU}


@pytest.mark.parametrize("level", ["vocational", "bachelor", "master", "doctoral"])
def test_a_full_time_student_is_state_insured(level: str) -> None:
    study = at(ESIL, dt.date(2023, 9, 1), None, "full_time", level)
    assert rules.student_period(JUNE_2, [study]) == (dt.date(2023, 9, 1), None)


def test_a_part_time_student_is_not() -> None:
    study = at(ESIL, dt.date(2023, 9, 1), None, "part_time", "bachelor")
    assert rules.student_period(JUNE_2, [study]) is None


@pytest.mark.parametrize(
    ("last", "insured"),
    [
        (JUNE_2, True),                          # the study's last day
        (JUNE_2 - dt.timedelta(days=1), False),  # the day after it ended
    ],
)
def test_the_day_a_study_ends(last: dt.date, insured: bool) -> None:
    study = at(ESIL, dt.date(2021, 9, 1), last, "full_time", "bachelor")
    period = rules.student_period(JUNE_2, [study])
    assert (period == (dt.date(2021, 9, 1), last)) if insured else period is None


def test_the_period_spans_the_full_time_studies_in_force() -> None:
    ended = at(ESIL, dt.date(2019, 9, 1), dt.date(2023, 6, 30), "full_time", "bachelor")
    master = at(ESIL, dt.date(2023, 9, 1), dt.date(2025, 6, 30), "full_time", "master")
    part = at(MEDEU, dt.date(2022, 9, 1), None, "part_time", "vocational")
    assert rules.student_period(JUNE_2, [ended, master, part]) == (
        dt.date(2023, 9, 1), dt.date(2025, 6, 30),
    )
    # not before the rule's first day
    old = at(ESIL, dt.date(2018, 9, 1), None, "full_time", "doctoral")
    assert rules.student_period(JUNE_2, [old]) == (rules.STUDENT.since, None)
    assert rules.student_period(dt.date(2019, 12, 31), [old]) is None


# -- a move of the registered address (rules.KEPT_ON_MOVE) ------------------------------


@pytest.mark.parametrize(
    ("basis", "serves_new_home", "place_holds", "stays"),
    [
        # the clinic serves the new home district: it stays, whatever the basis
        (rules.REGISTERED_ADDRESS, True, False, True),
        (rules.WORKPLACE, True, False, True),
        # by the registered address (or unknown: made before the basis was stored): follows
        (rules.REGISTERED_ADDRESS, False, True, False),
        ("", False, True, False),
        # by a place of work, study or temporary stay the law lets the person keep
        (rules.TEMPORARY_ADDRESS, False, True, True),
        (rules.SCHOOL, False, True, True),
        (rules.WORKPLACE, False, True, True),
        (rules.COLLEGE_OR_UNIVERSITY, False, True, True),
        # ... only while that place still holds
        (rules.TEMPORARY_ADDRESS, False, False, False),
        (rules.SCHOOL, False, False, False),
        (rules.WORKPLACE, False, False, False),
        (rules.COLLEGE_OR_UNIVERSITY, False, False, False),
    ],
)
def test_a_move_keeps_an_attachment_by_a_place_that_still_holds(
    basis: str, serves_new_home: bool, place_holds: bool, stays: bool
) -> None:
    assert rules.stays_after_move(
        basis, serves_new_home=serves_new_home, place_holds=place_holds
    ) is stays


def test_every_basis_but_the_registered_address_is_kept_on_a_move() -> None:
    assert set(rules.ATTACHMENT.bases) - {rules.REGISTERED_ADDRESS} == rules.KEPT_ON_MOVE
