"""Health's recorded grounds of state-paid insurance (rules.RECORDED_GROUNDS) at their
boundaries: pure functions, no I/O."""

from __future__ import annotations

import datetime as dt

import pytest

from zhol.adapters.health import rules
from zhol.adapters.health.model import (
    DisabilityConclusion,
    GroundRequest,
    InvalidInput,
    StateInsuredGround,
)
from zhol.core.iin import Iin, make_iin

TODAY = dt.date(2025, 6, 2)


def iin(birth: dt.date, serial: int) -> Iin:
    made = make_iin(birth, False, serial)
    assert made is not None
    return made


PERSON = iin(dt.date(1980, 3, 4), 101)
CARED_FOR = iin(dt.date(1950, 7, 8), 202)


def ground(category: str, first: dt.date, last: dt.date | None,
           cared_for: Iin | None = None) -> StateInsuredGround:
    return StateInsuredGround(PERSON, category, first, last, "list 7", cared_for, TODAY)


def conclusion(group: int, first: dt.date, last: dt.date | None) -> DisabilityConclusion:
    return DisabilityConclusion("MSE-2025-0000001", CARED_FOR, group, first, last, first)


def test_every_recorded_ground_names_its_source_and_category() -> None:
    assert set(rules.RECORDED_GROUNDS) == {
        "carer_of_disabled_group_1", "non_working_kandas", "non_working_house_arrest",
        "prisoner", "detainee",
    }
    for category, rule in rules.RECORDED_GROUNDS.items():
        assert rule.category == category and category in rules.SOCIAL_CATEGORIES
        # the house arrest came with the order of 28 March 2022, after [o]'s list
        assert ("[o]" in rule.source or "28 March 2022" in rule.source) and rule.held_by.strip()
        # the non-working test is NON_WORKING_PARENT's, a system choice
        assert ("system choice" in rule.source) is rule.non_working
    assert rules.RECORDED_GROUNDS["carer_of_disabled_group_1"].cares_for_group == 1


# -- what a recorded fact must be ---------------------------------------------------------


def request(**changes: object) -> GroundRequest:
    fields: dict[str, object] = {
        "iin": PERSON, "social_category": "prisoner", "valid_from": dt.date(2025, 5, 1),
        "valid_to": None, "basis": "MIA CEC list 2025-05", "cared_for": None,
    }
    fields.update(changes)
    return GroundRequest(**fields)  # type: ignore[arg-type]


def test_a_well_formed_fact_gives_its_rule() -> None:
    assert rules.validate_ground(request(), TODAY) is rules.RECORDED_GROUNDS["prisoner"]
    carer = request(social_category="carer_of_disabled_group_1", cared_for=CARED_FOR)
    assert rules.validate_ground(carer, TODAY).cares_for_group == 1
    # from today, and a last day on the first day, are well-formed
    rules.validate_ground(request(valid_from=TODAY, valid_to=TODAY), TODAY)


@pytest.mark.parametrize(
    "changes",
    [
        {"social_category": "pensioner"},  # a category, but not a recorded one
        {"social_category": ""},
        {"valid_from": TODAY + dt.timedelta(days=1)},
        {"valid_from": dt.date(1999, 12, 31)},
        {"valid_to": dt.date(2025, 4, 30)},  # the day before from_date
        {"basis": " "},
        {"basis": "x" * (rules.MAX_BASIS_LENGTH + 1)},
        {"basis": "list\n7"},
        {"cared_for": CARED_FOR},  # a prisoner cares for nobody
        {"social_category": "carer_of_disabled_group_1"},  # whom?
        {"social_category": "carer_of_disabled_group_1", "cared_for": PERSON},
    ],
)
def test_a_malformed_fact_is_invalid(changes: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        rules.validate_ground(request(**changes), TODAY)


# -- the period a fact gives on the day asked about ---------------------------------------


def test_a_prisoner_is_covered_for_the_recorded_period_whether_or_not_working() -> None:
    held = ground("prisoner", dt.date(2025, 5, 10), dt.date(2025, 6, 20))
    for day in (dt.date(2025, 5, 10), dt.date(2025, 6, 20)):  # first and last day
        for paid in (False, True):
            assert rules.recorded_ground_period(day, held, paid_in_window=paid) == (
                dt.date(2025, 5, 10), dt.date(2025, 6, 20),
            )
    assert rules.recorded_ground_period(dt.date(2025, 5, 9), held, paid_in_window=False) is None
    assert rules.recorded_ground_period(dt.date(2025, 6, 21), held, paid_in_window=False) is None
    # until ended: open
    detained = ground("detainee", dt.date(2025, 6, 1), None)
    assert rules.recorded_ground_period(TODAY, detained, paid_in_window=True) == (
        dt.date(2025, 6, 1), None,
    )


def test_a_kandas_is_covered_for_the_month_asked_while_non_working() -> None:
    kandas = ground("non_working_kandas", dt.date(2025, 5, 20), dt.date(2025, 6, 15))
    assert rules.recorded_ground_period(TODAY, kandas, paid_in_window=False) == (
        dt.date(2025, 6, 1), dt.date(2025, 6, 15),  # the month, cut at the recorded end
    )
    assert rules.recorded_ground_period(dt.date(2025, 5, 20), kandas, paid_in_window=False) == (
        dt.date(2025, 5, 20), dt.date(2025, 5, 31),  # from the recorded start
    )
    # the month a contribution appears (or one of the 3 before) the person works
    assert rules.recorded_ground_period(TODAY, kandas, paid_in_window=True) is None
    assert rules.recorded_ground_period(
        dt.date(2025, 6, 16), kandas, paid_in_window=False) is None
    assert rules.recorded_ground_period(
        dt.date(2025, 5, 19), kandas, paid_in_window=False) is None


def test_a_carer_is_covered_only_while_the_group_1_conclusion_is_in_force() -> None:
    carer = ground("carer_of_disabled_group_1", dt.date(2025, 1, 1), None, CARED_FOR)
    ending = conclusion(1, dt.date(2024, 6, 1), dt.date(2025, 6, 10))
    assert rules.recorded_ground_period(TODAY, carer, paid_in_window=False, care=ending) == (
        dt.date(2025, 6, 1), dt.date(2025, 6, 10),  # cut at the conclusion's last day
    )
    last_day = dt.date(2025, 6, 10)
    assert rules.active_conclusion([ending], 1, last_day) == ending
    assert rules.recorded_ground_period(
        last_day, carer, paid_in_window=False, care=ending) is not None
    # the day after the conclusion ends: no conclusion in force, no cover
    after = dt.date(2025, 6, 11)
    assert rules.active_conclusion([ending], 1, after) is None
    assert rules.recorded_ground_period(after, carer, paid_in_window=False, care=None) is None
    assert rules.recorded_ground_period(after, carer, paid_in_window=False, care=ending) is None
    # a group-2 conclusion is not enough, nor a working carer
    group_2 = conclusion(2, dt.date(2024, 6, 1), None)
    assert rules.active_conclusion([group_2], 1, TODAY) is None
    assert rules.recorded_ground_period(TODAY, carer, paid_in_window=False, care=group_2) is None
    assert rules.recorded_ground_period(TODAY, carer, paid_in_window=True, care=ending) is None


def test_the_carer_category_starts_on_28_march_2022() -> None:
    carer = ground("carer_of_disabled_group_1", dt.date(2022, 1, 1), None, CARED_FOR)
    care = conclusion(1, dt.date(2021, 1, 1), None)
    assert rules.recorded_ground_period(
        dt.date(2022, 3, 27), carer, paid_in_window=False, care=care) is None
    assert rules.recorded_ground_period(
        dt.date(2022, 3, 28), carer, paid_in_window=False, care=care
    ) == (dt.date(2022, 3, 28), dt.date(2022, 3, 31))


def test_a_non_working_person_under_house_arrest_is_covered_from_28_march_2022() -> None:
    arrest = ground("non_working_house_arrest", dt.date(2022, 2, 1), dt.date(2022, 4, 10))
    assert rules.recorded_ground_period(
        dt.date(2022, 3, 27), arrest, paid_in_window=False) is None
    assert rules.recorded_ground_period(
        dt.date(2022, 3, 28), arrest, paid_in_window=False
    ) == (dt.date(2022, 3, 28), dt.date(2022, 3, 31))
    assert rules.recorded_ground_period(
        dt.date(2022, 4, 10), arrest, paid_in_window=False
    ) == (dt.date(2022, 4, 1), dt.date(2022, 4, 10))  # cut at the arrest's recorded end
    assert rules.recorded_ground_period(
        dt.date(2022, 4, 11), arrest, paid_in_window=False) is None
    assert rules.recorded_ground_period(  # working: no cover
        dt.date(2022, 4, 5), arrest, paid_in_window=True) is None
