"""Health's rules of issue 14 at their boundaries (pure functions, no I/O)."""

from __future__ import annotations

import datetime as dt

import pytest

from zhol.adapters.health import rules

JUNE_2 = dt.date(2025, 6, 2)


def test_every_health_rule_names_its_source() -> None:
    for source in (rules.DISABILITY_SOURCE, rules.NON_WORKING_PARENT.source,
                   rules.ATTACHMENT.source, rules.STUDENT.source):
        assert source.strip()
    assert "[o]" in rules.STUDENT.source and "[q]" in rules.ATTACHMENT.source
    assert rules.STUDENT.category in rules.SOCIAL_CATEGORIES
    assert "[o]" in rules.NON_WORKING_PARENT.source
    assert "system choice" in rules.NON_WORKING_PARENT.source
    assert rules.NON_WORKING_PARENT.category in rules.SOCIAL_CATEGORIES
    for ground in rules.RECORDED_GROUNDS.values():
        assert ground.source.strip() and ground.category in rules.SOCIAL_CATEGORIES


@pytest.mark.parametrize(
    ("born", "covered"),
    [
        (dt.date(2022, 6, 3), True),   # turns 3 tomorrow: still under three today
        (dt.date(2022, 6, 2), False),  # turns 3 today: no longer under three
        (dt.date(2025, 6, 2), True),   # born today
        (dt.date(2025, 6, 3), False),  # not born yet
    ],
)
def test_a_child_under_three_on_the_day(born: dt.date, covered: bool) -> None:
    period = rules.non_working_parent_period(JUNE_2, [born], paid_in_window=False)
    assert (period is not None) is covered


def test_the_period_is_the_month_cut_at_the_third_birthday() -> None:
    # the youngest child counts: the older one turns 3 on 10 June, the younger later
    assert rules.non_working_parent_period(
        JUNE_2, [dt.date(2022, 6, 10)], paid_in_window=False
    ) == (dt.date(2025, 6, 1), dt.date(2025, 6, 9))
    assert rules.non_working_parent_period(
        JUNE_2, [dt.date(2022, 6, 10), dt.date(2024, 1, 5)], paid_in_window=False
    ) == (dt.date(2025, 6, 1), dt.date(2025, 6, 30))
    # born this month: from the birth
    assert rules.non_working_parent_period(
        dt.date(2025, 6, 20), [dt.date(2025, 6, 15)], paid_in_window=False
    ) == (dt.date(2025, 6, 15), dt.date(2025, 6, 30))
    # 29 February: the third birthday is 1 March
    assert rules.non_working_parent_period(
        dt.date(2027, 2, 28), [dt.date(2024, 2, 29)], paid_in_window=False
    ) == (dt.date(2027, 2, 1), dt.date(2027, 2, 28))
    assert rules.non_working_parent_period(
        dt.date(2027, 3, 1), [dt.date(2024, 2, 29)], paid_in_window=False
    ) is None


def test_a_month_with_contributions_makes_the_parent_working() -> None:
    child = [dt.date(2024, 1, 5)]
    assert rules.non_working_parent_period(JUNE_2, child, paid_in_window=True) is None
    assert rules.non_working_parent_period(JUNE_2, child, paid_in_window=False) is not None
    assert rules.non_working_parent_period(JUNE_2, [], paid_in_window=False) is None


def test_month_helpers() -> None:
    assert rules.month_start(JUNE_2) == dt.date(2025, 6, 1)
    assert rules.next_month_start(dt.date(2025, 12, 31)) == dt.date(2026, 1, 1)
    assert rules.next_month_start(dt.date(2024, 1, 31)) == dt.date(2024, 2, 1)
