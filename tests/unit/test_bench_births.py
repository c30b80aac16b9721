"""The births bench's verdict: a decision made twice, or never, fails the run."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from zhol.cli.bench_births import BirthsResult, Decisions
from zhol.cli.federation import Layout

A, B = "000101500011", "000101600012"


def _result(**changes: object) -> BirthsResult:
    fields: dict[str, object] = {
        "births": 10, "seconds": 0.5, "messages": 240, "duplicates": (), "missing": (),
        "dead_letters": 0, "unpublished": 0, "cpu_s": {"mj-gw1": 0.05},
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


def test_a_dead_letter_or_an_unpublished_event_fails_the_run() -> None:
    assert _result(dead_letters=1).as_json()["births_exactly_once"] is False
    assert _result(unpublished=1).as_json()["births_exactly_once"] is False


def test_the_bench_exits_non_zero_unless_exactly_once() -> None:
    from argparse import Namespace

    from zhol.cli.bench_births import report

    args = Namespace(births=0, json=True, data_dir=None)
    assert report(args, {"births_exactly_once": False, "machine": "test"}) == 1
    assert report(args, {"births_exactly_once": True, "machine": "test"}) == 0


def test_decisions_are_counted_per_child_from_the_agencies_databases(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    tables = {
        "pension": ("benefits (subject_iin TEXT, kind TEXT)", "benefits",
                    [(A, "childbirth_lump_sum"), (A, "child_care_allowance"),
                     (A, "child_care_allowance"), (B, "childbirth_lump_sum"),
                     (B, "burial_benefit")]),
        "health": ("attachments (iin TEXT, reason TEXT)", "attachments",
                   [(A, "newborn"), (B, "request")]),
        "education": ("queue_entries (iin TEXT, reason TEXT)", "queue_entries",
                      [(A, "newborn"), (B, "newborn")]),
    }  # fmt: skip
    for name, (schema, table, rows) in tables.items():
        layout.adapter_db(name).parent.mkdir(parents=True)
        with contextlib.closing(sqlite3.connect(layout.adapter_db(name))) as db:
            db.execute(f"CREATE TABLE {schema}")
            db.executemany(f"INSERT INTO {table} VALUES (?, ?)", rows)
            db.commit()
    counts = Decisions(layout).counts([A, B])
    assert counts[(A, "child_care_allowance")] == 2
    assert counts[(A, "clinic_attachment")] == 1 and counts[(A, "queue_place")] == 1
    assert counts[(B, "childbirth_lump_sum")] == 1
    # Another kind of benefit and a requested attachment are not the newborn's decisions.
    assert counts[(B, "child_care_allowance")] == 0 and counts[(B, "clinic_attachment")] == 0
