"""The births bench's verdict: a decision made twice, or never, fails the run."""

from __future__ import annotations

from cli.bench_births import BirthsResult


def _result(**changes: object) -> BirthsResult:
    fields: dict[str, object] = {
        "births": 10, "seconds": 0.5, "messages": 240, "duplicates": (), "missing": (),
        "dead_letters": 0, "cpu_s": {"mj-gw1": 0.05},
    }  # fmt: skip
    fields.update(changes)
    return BirthsResult(**fields)  # type: ignore[arg-type]


def test_figures_of_a_clean_run() -> None:
    figures = _result().as_json()
    assert figures["births_exactly_once"] is True
    assert figures["births_per_s"] == 20.0
    assert figures["messages_per_birth"] == 24.0
    assert figures["cpu_ms_per_birth"] == {"mj-gw1": 5.0}


def test_a_duplicate_decision_fails_the_run() -> None:
    figures = _result(duplicates=("000101500011 clinic_attachment x2",)).as_json()
    assert figures["births_exactly_once"] is False
    assert figures["births_duplicates"] == ["000101500011 clinic_attachment x2"]


def test_a_missing_decision_fails_the_run_and_reports_no_rate() -> None:
    figures = _result(missing=("000101500011 queue_place",)).as_json()
    assert figures["births_exactly_once"] is False
    assert figures["births_per_s"] == 0.0


def test_a_dead_letter_fails_the_run() -> None:
    assert _result(dead_letters=1).as_json()["births_exactly_once"] is False


def test_the_bench_exits_non_zero_unless_exactly_once() -> None:
    from argparse import Namespace

    from cli.bench_births import report

    args = Namespace(births=0, json=True, data_dir=None)
    assert report(args, {"births_exactly_once": False, "machine": "test"}) == 1
    assert report(args, {"births_exactly_once": True, "machine": "test"}) == 0
