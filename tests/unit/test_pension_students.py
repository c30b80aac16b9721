"""The survivor pension of a full-time student (rules.SURVIVOR_STUDENT) at its boundary
days: the 18th birthday with and without a full-time study in force, the study's last
day, the day before the 23rd birthday, part-time and postgraduate study; the orphan over
18; the recalculation run extending, ending or skipping a pension by the studies read."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import grpc
import pytest

from tests.sqlite_rows import rows
from zhol.adapters.bus.client import BusCallError
from zhol.adapters.pension import calculation, recalculating, rules, schema, store
from zhol.adapters.pension.calculation import StudyPeriod, survivor_end
from zhol.adapters.pension.model import (
    KZ_TIME,
    CalcItem,
    Month,
    NotAllowed,
    Payment,
    PaymentStatus,
    PensionCalculation,
    PensionDecision,
    PensionKind,
    Unavailable,
)
from zhol.adapters.pension.recalculating import StudiesRead
from zhol.adapters.pension.sources import studies_failed
from zhol.core.clock import FixedClock
from zhol.core.iin import make_iin

BORN = dt.date(2008, 7, 20)
ADULT = dt.date(2026, 7, 20)  # the 18th birthday
CHILD_END = dt.date(2026, 7, 19)
CAP = dt.date(2031, 7, 19)  # the day before the 23rd birthday
DEATH = dt.date(2025, 11, 3)  # the child is 17


def study(first: dt.date, last: dt.date | None, level: str = "bachelor",
          form: str = "full_time") -> StudyPeriod:
    return StudyPeriod(first, last, level, form, "UNI-1")


def test_without_a_study_the_pension_ends_the_day_before_the_18th_birthday() -> None:
    assert survivor_end(BORN, DEATH, None).ends_on == CHILD_END
    assert survivor_end(BORN, DEATH, ()).ends_on == CHILD_END
    assert survivor_end(BORN, DEATH, ()).study is None


def test_a_full_time_study_in_force_on_the_18th_birthday_runs_to_23() -> None:
    open_ended = study(dt.date(2025, 9, 1), None)
    end = survivor_end(BORN, DEATH, (open_ended,))
    assert (end.ends_on, end.study) == (CAP, open_ended)
    assert "224-VII" in end.source


@pytest.mark.parametrize(("last", "ends_on"), [
    (dt.date(2026, 6, 30), CHILD_END),  # ended before 18: the child's pension runs to 18
    (dt.date(2026, 7, 19), CHILD_END),  # ended the day before the birthday: not in force
    (dt.date(2026, 7, 20), dt.date(2026, 7, 20)),  # in force on the birthday: its last day
    (dt.date(2029, 6, 30), dt.date(2029, 6, 30)),  # the study's last day
    (dt.date(2031, 7, 19), CAP),  # the last day is the day before the 23rd birthday
    (dt.date(2031, 7, 20), CAP),  # never beyond it
])
def test_the_study_s_last_day_and_the_day_before_the_23rd_birthday(
        last: dt.date, ends_on: dt.date) -> None:
    assert survivor_end(BORN, DEATH, (study(dt.date(2025, 9, 1), last),)).ends_on == ends_on


def test_a_study_starting_after_the_18th_birthday_does_not_continue_the_pension() -> None:
    assert survivor_end(BORN, DEATH, (study(dt.date(2026, 9, 1), None),)).ends_on == CHILD_END
    # One started after the death but before the birthday is in force on the birthday.
    assert survivor_end(BORN, DEATH, (study(dt.date(2026, 1, 10), None),)).ends_on == CAP


@pytest.mark.parametrize(("level", "form"), [
    ("bachelor", "part_time"), ("vocational", "part_time"),
    ("master", "full_time"), ("doctoral", "full_time"),  # postgraduate: system choice
])
def test_part_time_and_postgraduate_study_do_not_count(level: str, form: str) -> None:
    found = survivor_end(BORN, DEATH, (study(dt.date(2025, 9, 1), None, level, form),))
    assert (found.ends_on, found.study) == (CHILD_END, None)


def test_a_college_study_followed_without_a_gap_by_a_university_one_runs_on() -> None:
    college = study(dt.date(2024, 9, 1), dt.date(2027, 6, 30), "vocational")
    university = study(dt.date(2027, 7, 1), dt.date(2030, 6, 30))
    assert survivor_end(BORN, DEATH, (university, college)).ends_on == dt.date(2030, 6, 30)
    later = study(dt.date(2027, 9, 1), dt.date(2030, 6, 30))  # a summer's gap
    assert survivor_end(BORN, DEATH, (college, later)).ends_on == dt.date(2027, 6, 30)


def test_a_death_after_the_18th_birthday_counts_a_study_in_force_that_day() -> None:
    death = dt.date(2027, 10, 1)  # 19
    assert survivor_end(BORN, death, (study(dt.date(2027, 9, 1), None),)).ends_on == CAP
    assert survivor_end(BORN, death, (study(dt.date(2027, 10, 2), None),)).study is None
    # The day before the 23rd birthday still counts; the birthday itself does not.
    assert survivor_end(BORN, CAP, (study(dt.date(2027, 9, 1), None),)).ends_on == CAP
    assert survivor_end(BORN, CAP + dt.timedelta(days=1),
                        (study(dt.date(2027, 9, 1), None),)).study is None


def test_the_calculation_explains_the_student_rule_instead_of_leaving_it_out() -> None:
    plain = calculation.survivor_pension(2, DEATH, BORN).calculation
    assert not any("Not considered" in line for line in plain.explanation)
    assert any(line.startswith("Full-time students up to 23") for line in plain.explanation)
    full = calculation.survivor_pension(2, DEATH, BORN, (study(dt.date(2025, 9, 1), None),))
    assert full.ends_on == CAP
    items = {i.name: i for i in full.calculation.items}
    assert items["ends_on"].value == CAP.isoformat()
    assert "SURVIVOR_STUDENT; source: Social Code" in items["ends_on"].note
    assert "full_time bachelor study" in items["ends_on"].note
    assert any(line.startswith("Full-time student:") and CAP.isoformat() in line
               for line in full.calculation.explanation)


def test_an_orphan_over_18_in_full_time_study_is_paid_to_the_study_s_end() -> None:
    orphaned = dt.date(2027, 1, 10)  # 18
    last = dt.date(2029, 6, 30)
    paid = calculation.orphan_pension(orphaned, dt.date(2020, 1, 1), orphaned, BORN - (
        dt.timedelta(days=200)), (study(dt.date(2025, 9, 1), last),))
    assert paid.ends_on == last
    assert not any("Not considered" in line for line in paid.calculation.explanation)
    none = calculation.orphan_pension(orphaned, None, orphaned, BORN - dt.timedelta(days=200),
                                      (study(dt.date(2025, 9, 1), last, form="part_time"),))
    assert none.ends_on < orphaned  # of age, part-time: nothing due (the handler drops it)


def test_the_student_rule_names_its_source_for_every_row() -> None:
    assert all(row.source.strip() for row in rules.SURVIVOR_STUDENT.rows)
    assert rules.SURVIVOR_STUDENT.at(dt.date(2026, 1, 1)).until_age == 23


def test_a_failed_study_read_is_unavailable_or_refused_never_no_study() -> None:
    down = BusCallError("/x", grpc.StatusCode.UNAVAILABLE, "down",
                        zhol_error="Server.ServerProxy.ServiceFailed")
    assert isinstance(studies_failed(down, "1"), Unavailable)
    denied = BusCallError("/x", grpc.StatusCode.PERMISSION_DENIED, "no",
                          zhol_error="Server.ServerProxy.AccessDenied")
    assert isinstance(studies_failed(denied, "1"), NotAllowed)


# -- the recalculation run ---------------------------------------------------------------

TODAY = dt.date(2026, 6, 15)
NOW_MS = int(dt.datetime(2026, 6, 15, 12, tzinfo=KZ_TIME).timestamp() * 1000)


def iin(born: dt.date, serial: int) -> str:
    made = make_iin(born, False, serial)
    assert made is not None
    return made.value


CHILD = iin(BORN, 931)  # 17 on TODAY, 18 on 20 July 2026


def pension_db(tmp_path: Path) -> tuple[Path, str]:
    """A survivor pension of CHILD (one dependant), months January to July 2026 (the
    month of the day before the 18th birthday), those before June paid."""
    db = tmp_path / "pension.db"
    schema.create_database(db)
    payments = tuple(Payment(m, calculation.survivor_amount(1, m),
                             PaymentStatus.PAID if m < Month.of(TODAY) else
                             PaymentStatus.SCHEDULED)
                     for m in (Month(2026, 1).plus(i) for i in range(7)))
    decision = PensionDecision(
        CHILD, PensionKind.SURVIVOR, DEATH, "loss of the breadwinner",
        PensionCalculation.by_items(payments[0].amount, 2025, (CalcItem("dependants", "1"),),
                                    ()), (), payments, ends_on=CHILD_END,
        breadwinner_iin=iin(dt.date(1980, 1, 2), 932))
    conn = schema.connect(db)
    try:
        conn.execute("BEGIN IMMEDIATE")
        assignment = store.insert_pension(conn, decision, today=DEATH, now_ms=NOW_MS)
        conn.execute("COMMIT")
    finally:
        conn.close()
    assert assignment is not None
    return db, assignment


def run(db: Path, studies: dict[str, StudiesRead] | None) -> recalculating.RunReport:
    pension = store.PensionStore.open(db, FixedClock(NOW_MS))
    try:
        return recalculating.run(pension, TODAY, now_ms=lambda: NOW_MS, studies=studies)
    finally:
        pension.close()


@pytest.mark.parametrize(("as_of", "checked"), [
    (dt.date(2025, 7, 19), False),  # 16
    (dt.date(2025, 7, 20), True),  # the 17th birthday
    (CAP, True),  # the day before the 23rd birthday
    (CAP + dt.timedelta(days=1), False),  # 23
])
def test_the_run_asks_education_about_children_from_17_to_22(
        tmp_path: Path, as_of: dt.date, checked: bool) -> None:
    db, _ = pension_db(tmp_path)
    conn = schema.connect(db)
    try:
        assert recalculating.children_to_check(conn, as_of) == ([CHILD] if checked else [])
    finally:
        conn.close()


def test_turning_18_in_full_time_study_extends_the_pension(tmp_path: Path) -> None:
    db, assignment = pension_db(tmp_path)
    report = run(db, {CHILD: StudiesRead((study(dt.date(2025, 9, 1), None),))})
    (outcome,) = report.recalculated
    recalc = outcome.recalculation
    assert (recalc.old_ends_on, recalc.new_ends_on) == (CHILD_END, CAP)
    assert [p.month for p in recalc.schedule][-1] == Month(2027, 5)  # 12 months ahead
    assert "SURVIVOR_STUDENT" in {r.table for r in recalc.rules}
    assert rows(db, "SELECT ends_on FROM pension_assignments WHERE assignment_id = ?",
                assignment) == [(CAP.isoformat(),)]
    assert run(db, {CHILD: StudiesRead((study(dt.date(2025, 9, 1), None),))}
               ).recalculated == ()  # once


@pytest.mark.parametrize("studies", [
    (), (study(dt.date(2025, 9, 1), None, form="part_time"),),
    (study(dt.date(2025, 9, 1), dt.date(2026, 7, 19)),),  # ends the day before 18
])
def test_turning_18_without_full_time_study_ends_the_pension(
        tmp_path: Path, studies: tuple[StudyPeriod, ...]) -> None:
    db, _ = pension_db(tmp_path)
    before = rows(db, "SELECT * FROM payments ORDER BY month")
    assert run(db, {CHILD: StudiesRead(studies)}).recalculated == ()
    assert rows(db, "SELECT * FROM payments ORDER BY month") == before


def test_a_failed_study_read_leaves_the_pension_as_it_is(tmp_path: Path) -> None:
    db, assignment = pension_db(tmp_path)
    before = rows(db, "SELECT * FROM payments ORDER BY month")
    report = run(db, {CHILD: StudiesRead(failed="education could not be asked (UNAVAILABLE)")})
    assert [(s.decision_id, s.kind) for s in report.skipped] == [
        (assignment, "survivor_pension")]
    assert "UNAVAILABLE" in report.skipped[0].reason
    assert rows(db, "SELECT * FROM payments ORDER BY month") == before
    assert run(db, None).skipped == ()  # without the bus nothing is checked
