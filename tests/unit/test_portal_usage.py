"""The "who used my data" page's pure parts: the form, the targets and the merge."""

from __future__ import annotations

import datetime as dt

import pytest

from zhol.bus.v1 import usage_pb2
from zhol.portal.usage import (
    MAX_PAGE,
    PAGE_SIZE,
    Answer,
    Filters,
    UsageTarget,
    merge,
    parse_filters,
    parse_target,
)

MJ = UsageTarget("KZ/GOV/MJ/gw1", "KZ/GOV/MJ/population")
PORTAL = UsageTarget("KZ/GOV/MDDIAI/gw1", "KZ/GOV/MDDIAI/portal")
AGENCIES = ("KZ/GOV/MJ", "KZ/GOV/MDDIAI")
SERVICE = "KZ/GOV/MJ/population/zhol.population.v1.PopulationRegistry/GetPerson"


def entry(
    message_id: str, at: int, kind: str = "request", member: str = "KZ/GOV/MDDIAI"
) -> usage_pb2.UsageEntry:
    return usage_pb2.UsageEntry(
        logged_at_unix_ms=at,
        message_id=message_id,
        kind=kind,
        client=f"{member}/portal",
        client_member=member,
        user_id="citizen:x",
        service=SERVICE,
        method="GetPerson",
        access=usage_pb2.USAGE_ACCESS_READ,
    )


def test_one_row_per_exchange_newest_first_with_every_gateway_that_logged_it() -> None:
    answers = (
        Answer(MJ, (entry("b", 2005, "response"), entry("b", 2001), entry("a", 1001))),
        Answer(PORTAL, (entry("b", 2006, "response"), entry("b", 2000), entry("a", 1000))),
    )
    timeline = merge(answers, Filters())
    assert [r.message_id for r in timeline.rows] == ["b", "a"]
    assert timeline.rows[0].at_ms == 2000  # the request's time, the earliest record
    assert timeline.rows[0].gateways == ("KZ/GOV/MDDIAI/gw1", "KZ/GOV/MJ/gw1")
    assert not timeline.has_more and not timeline.truncated


def test_agency_filter_and_paging() -> None:
    many = tuple(entry(f"m{i:03d}", 10_000 + i) for i in range(PAGE_SIZE + 5))
    other = (entry("x", 99_999, member="KZ/GOV/MLSPP"),)
    answers = (Answer(PORTAL, many + other),)
    first = merge(answers, Filters(agency="KZ/GOV/MDDIAI"))
    assert len(first.rows) == PAGE_SIZE and first.has_more
    assert first.rows[0].message_id == f"m{PAGE_SIZE + 4:03d}"
    second = merge(answers, Filters(agency="KZ/GOV/MDDIAI", page=2))
    assert [r.message_id for r in second.rows] == [f"m{i:03d}" for i in range(4, -1, -1)]
    assert not second.has_more
    assert [r.message_id for r in merge(answers, Filters(agency="KZ/GOV/MLSPP")).rows] == ["x"]


def test_a_gateway_with_more_records_bounds_what_is_shown() -> None:
    # MJ gave only its records back to 2000: older rows might miss its part, so they wait.
    answers = (
        Answer(MJ, (entry("new", 3000), entry("mid", 2000)), more=True),
        Answer(PORTAL, (entry("new", 3001), entry("mid", 2001), entry("old", 1000))),
    )
    timeline = merge(answers, Filters())
    assert [r.message_id for r in timeline.rows] == ["new"]
    assert timeline.truncated


def test_the_form_is_checked() -> None:
    form = {"agency": "KZ/GOV/MJ", "from": "2026-01-02", "to": "2026-01-02"}
    filters = parse_filters(form, AGENCIES)
    assert filters.date_from == filters.date_to == dt.date(2026, 1, 2)
    assert filters.to_ms - filters.from_ms == 24 * 3600 * 1000
    # Midnight in Kazakhstan (UTC+5) is 19:00 UTC the day before.
    assert filters.from_ms == int(dt.datetime(2026, 1, 1, 19, tzinfo=dt.UTC).timestamp() * 1000)
    assert parse_filters({"iin": "123"}, AGENCIES) == Filters()  # no such field: ignored
    for bad in (
        {"agency": "KZ/GOV/XX"},
        {"from": "2026-02-30"},
        {"from": "20260101"},
        {"to": "9999-12-31"},
        {"from": "2026-01-02", "to": "2026-01-01"},
        {"page": "0"},
        {"page": str(MAX_PAGE + 1)},
        {"page": "-1"},
        {"page": "٣"},
    ):
        with pytest.raises(ValueError):
            parse_filters(bad, AGENCIES)
    assert "agency=KZ%2FGOV%2FMJ" in filters.query(page=2) and "page=2" in filters.query(page=2)


def test_targets_name_a_gateway_and_a_subsystem_of_its_member() -> None:
    assert parse_target("KZ/GOV/MJ/gw1=KZ/GOV/MJ/population") == MJ
    bad_targets = (
        "KZ/GOV/MJ/gw1",
        "KZ/GOV/MJ/gw1=KZ/GOV/MOH/health",
        "a=b",
        "KZ/GOV/MJ/=KZ/GOV/MJ/x",
    )
    for bad in bad_targets:
        with pytest.raises(ValueError):
            parse_target(bad)
