"""Decisions made under a wrong rule, recalculated by the real pension adapter over gRPC
on 127.0.0.1 (PensionRecalculation/RecalculateBenefits) and by ``zhol adapter pension
recalculate`` on the SQLite file: once, with the old and new amounts, the rules and the
arrears, each published as BenefitRecalculated; a second run changes nothing."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from tests.adapter_helpers import parse_adapter, rpc_error
from tests.sqlite_rows import rows
from tests.unit.test_pension_age_recalculation import (
    BASE_2025,
    BASE_2026,
    NEW_SOLIDARITY,
    OLD_AMOUNT,
    old_age_pension,
)
from zhol.adapters.bus.outbox import read_outbox
from zhol.adapters.pension import cli, recalculating, schema, store
from zhol.adapters.pension.model import (
    KZ_TIME,
    BenefitDecision,
    BenefitKind,
    CalcItem,
    Frequency,
    Month,
    Payment,
    PaymentStatus,
    PensionCalculation,
    PensionDecision,
    PensionKind,
)
from zhol.adapters.pension.seed import seed_database
from zhol.adapters.pension.server import PensionServer, PensionSettings, serve
from zhol.adapters.population.seed import seed_database as seed_population
from zhol.core.clock import FixedClock
from zhol.core.iin import make_iin
from zhol.pension.v1 import pension_pb2 as pb
from zhol.pension.v1 import pension_pb2_grpc as pb_grpc
from zhol.pension.v1 import recalculation_pb2 as rpb
from zhol.pension.v1 import recalculation_pb2_grpc as rpb_grpc

pytestmark = pytest.mark.integration

TODAY = dt.date(2026, 6, 15)
NOW_MS = int(dt.datetime(2026, 6, 15, 12, tzinfo=KZ_TIME).timestamp() * 1000)
RECALCULATED = rpb.BenefitRecalculated.DESCRIPTOR.full_name
BIRTH = dt.date(2025, 9, 10)
STATE_2025, STATE_2026 = 22648, 24912  # 5.76 MCI of 2025 and 2026
GROUP_1_2025, GROUP_1_2026 = 101702, 111872  # 2.2 PM of 2025 and 2026


def iin(born: dt.date, female: bool, serial: int) -> str:
    made = make_iin(born, female, serial)
    assert made is not None
    return made.value


MOTHER = iin(dt.date(1996, 3, 3), True, 901)  # no contributions: the state benefit
CHILD = iin(BIRTH, False, 902)
DISABLED = iin(dt.date(1980, 1, 1), False, 903)


def schedule(first: Month, count: int, amount: int) -> tuple[Payment, ...]:
    """The old code's schedule: one amount for every month; months before June paid."""
    return tuple(Payment(m, amount, PaymentStatus.PAID if m < Month.of(TODAY) else
                         PaymentStatus.SCHEDULED)
                 for m in (first.plus(i) for i in range(count)))


def old_decisions(db: Path) -> None:
    """A child-care allowance under the earlier rule (12 months) and a disability
    benefit fixed at its first year's PM, as the code decided them before issue 14."""
    old = (
        BenefitDecision(
            BenefitKind.CHILD_CARE_ALLOWANCE, MOTHER, CHILD, STATE_2025, Frequency.MONTHLY,
            BIRTH, dt.date(2026, 9, 9), "population BirthRegistered, act MJ-OLD",
            (CalcItem("birth_order", "1"), CalcItem("amount", str(STATE_2025), "KZT"),
             CalcItem("payments", "12", "months")),
            (), schedule(Month.of(BIRTH), 12, STATE_2025)),
        BenefitDecision(
            BenefitKind.DISABILITY_BENEFIT, DISABLED, DISABLED, GROUP_1_2025,
            Frequency.MONTHLY, dt.date(2025, 9, 1), None,
            "health DisabilityEstablished, conclusion MSE-OLD",
            (CalcItem("group", "1"), CalcItem("amount", str(GROUP_1_2025), "KZT")),
            (), schedule(Month(2025, 9), 12, GROUP_1_2025)),
    )
    conn = schema.connect(db)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for decision in old:
            assert store.insert_benefit(conn, decision, today=dt.date(2025, 9, 20),
                                        now_ms=NOW_MS)
        conn.execute("COMMIT")
    finally:
        conn.close()


def snapshot(db: Path) -> dict[str, list[tuple]]:
    return {t: sorted(rows(db, f"SELECT * FROM {t}"), key=repr) for t in schema.TABLE_NAMES}


def recalculated_events(db: Path) -> list[rpb.BenefitRecalculated]:
    conn = sqlite3.connect(db)
    try:
        return [rpb.BenefitRecalculated.FromString(e.payload) for e in read_outbox(conn)
                if e.topic == RECALCULATED]
    finally:
        conn.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    population = tmp_path / "population.db"
    seed_population(population, 60, seed=3)
    path = tmp_path / "pension.db"
    seed_database(path, population, as_of=TODAY, seed=1)
    old_decisions(path)
    return path


@pytest.fixture
async def running(db: Path) -> AsyncIterator[tuple[PensionServer, grpc.aio.Channel]]:
    server = await serve(PensionSettings(db_path=db, publish_events=False),
                         clock=FixedClock(NOW_MS))
    channel = grpc.aio.insecure_channel(server.address)
    try:
        yield server, channel
    finally:
        await channel.close()
        await server.stop(0)


def as_of(day: dt.date) -> pb.Date:
    return pb.Date(year=day.year, month=day.month, day=day.day)


async def test_decisions_under_the_old_rules_are_recalculated_once_and_published(
    db: Path, running: tuple[PensionServer, grpc.aio.Channel]
) -> None:
    _, channel = running
    recalc = rpb_grpc.PensionRecalculationStub(channel)
    before = snapshot(db)

    # Refused: as_of after today would count months not yet paid. Nothing changes.
    error = await rpc_error(recalc.RecalculateBenefits(rpb.RecalculateBenefitsRequest(
        as_of=as_of(TODAY + dt.timedelta(days=1)))))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    dry = await recalc.RecalculateBenefits(rpb.RecalculateBenefitsRequest(
        as_of=as_of(TODAY), dry_run=True))
    assert dry.dry_run and len(dry.recalculated) == 2
    assert {r.recalculation_id for r in dry.recalculated} == {""}
    assert snapshot(db) == before

    answer = await recalc.RecalculateBenefits(rpb.RecalculateBenefitsRequest(as_of=as_of(TODAY)))
    done = {r.kind: r for r in answer.recalculated}
    assert set(done) == {"child_care_allowance", "disability_benefit"}
    care, disability = done["child_care_allowance"], done["disability_benefit"]
    assert (care.old_amount, care.new_amount, care.old_payments, care.new_payments) == (
        STATE_2025, STATE_2026, 3, 9)
    assert (care.new_ends_on.year, care.new_ends_on.month, care.new_ends_on.day) == (
        2027, 3, 9)
    assert care.arrears_total == 5 * (STATE_2026 - STATE_2025)  # January to May 2026
    assert care.rules[0].table == "CHILD_CARE_PERIOD" and "informburo.kz" in care.rules[0].source
    assert (disability.old_amount, disability.new_amount) == (GROUP_1_2025, GROUP_1_2026)
    assert disability.arrears_total == 5 * (GROUP_1_2026 - GROUP_1_2025)
    assert [r.table for r in disability.rules] == ["DISABILITY_BENEFIT", "INDEXED_YEARLY"]
    assert "lada.kz 147819" in disability.rules[0].source

    # The payments made are kept; the allowance now runs to the child's 1.5.
    benefits = await pb_grpc.PensionRegistryStub(channel).ListBenefits(
        pb.ListBenefitsRequest(iin=MOTHER, read_mask={"paths": ["benefits"]}))
    (allowance,) = [b for b in benefits.benefits if b.kind == "child_care_allowance"]
    paid = [(p.month.month, p.amount) for p in allowance.payments if p.status == "paid"]
    assert len(paid) == 9 and {a for _, a in paid} == {STATE_2025}
    assert len([p for p in allowance.payments if p.kind == "regular"]) == 18
    assert allowance.amount == STATE_2026
    assert rows(db, "SELECT count(*), sum(arrears_total) FROM recalculations") == [
        (2, care.arrears_total + disability.arrears_total)]

    events = {e.decision_id: e for e in recalculated_events(db)}
    assert set(events) == {care.decision_id, disability.decision_id}
    published = events[care.decision_id]
    assert (published.recipient_iin, published.subject_iin, published.old_amount,
            published.new_amount, published.arrears_total) == (
        MOTHER, CHILD, STATE_2025, STATE_2026, care.arrears_total)

    # ListBenefits shows each recalculation decision with the benefit, and its arrears
    # as one payment in the run's month (the first not taken as paid).
    assert (care.arrears_paid_in.year, care.arrears_paid_in.month) == (2026, 6)
    assert (published.arrears_paid_in.year, published.arrears_paid_in.month) == (2026, 6)
    shown = await pb_grpc.PensionRegistryStub(channel).ListBenefits(
        pb.ListBenefitsRequest(iin=DISABLED, read_mask={"paths": ["benefits"]}))
    (benefit,) = [b for b in shown.benefits if b.kind == "disability_benefit"]
    (decision,) = benefit.recalculations
    assert decision.recalculation_id == disability.recalculation_id != ""
    assert (decision.old_amount, decision.new_amount, decision.currency) == (
        GROUP_1_2025, GROUP_1_2026, "KZT")
    assert (decision.decided_on.year, decision.decided_on.month, decision.decided_on.day) == (
        2026, 6, 15)
    assert [r.table for r in decision.rules] == ["DISABILITY_BENEFIT", "INDEXED_YEARLY"]
    assert "lada.kz 147819" in decision.rules[0].source
    assert decision.rules[0].in_force_from.year == 2023 and decision.reason == disability.reason
    assert "arrears 50850 KZT" in decision.reason
    assert [(a.month.month, a.amount) for a in decision.arrears] == [
        (m, GROUP_1_2026 - GROUP_1_2025) for m in range(1, 6)]
    assert decision.arrears_total == 5 * (GROUP_1_2026 - GROUP_1_2025)  # 50,850
    assert (decision.arrears_paid_in.year, decision.arrears_paid_in.month) == (2026, 6)
    owed = [(p.month.year, p.month.month, p.amount, p.status, p.recalculation_id)
            for p in benefit.payments if p.kind == "arrears"]
    assert owed == [(2026, 6, 50_850, "scheduled", decision.recalculation_id)]
    june = [p for p in benefit.payments if (p.month.year, p.month.month) == (2026, 6)]
    assert [(p.kind, p.amount) for p in june] == [("regular", GROUP_1_2026),
                                                 ("arrears", 50_850)]
    assert benefit.amount == GROUP_1_2026  # the arrears are not the month's amount

    after = snapshot(db)
    again = await recalc.RecalculateBenefits(rpb.RecalculateBenefitsRequest(as_of=as_of(TODAY)))
    assert not again.recalculated and not again.skipped and again.unchanged == again.examined
    assert again.arrears_scheduled == 0
    assert snapshot(db) == after  # the arrears paid once: no second payment
    assert rows(db, "SELECT count(*), sum(amount) FROM arrears_payments") == [
        (2, care.arrears_total + disability.arrears_total)]


def test_the_command_recalculates_the_file_once(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(*extra: str) -> int:
        args = parse_adapter(cli, "pension", "recalculate", "--db", str(db), *extra)
        result: int = args.func(args)
        return result

    before = snapshot(db)
    assert run("--as-of", "2999-01-01") == 2
    assert "as_of" in capsys.readouterr().err
    assert run("--as-of", TODAY.isoformat(), "--dry-run") == 0
    assert "would recalculate 2" in capsys.readouterr().out
    assert snapshot(db) == before
    assert run("--as-of", TODAY.isoformat(), "--json") == 0
    answer = json.loads(capsys.readouterr().out)
    assert {r["kind"] for r in answer["recalculated"]} == {
        "child_care_allowance", "disability_benefit"}
    assert len(recalculated_events(db)) == 2
    after = snapshot(db)
    assert run("--as-of", TODAY.isoformat()) == 0
    assert "recalculated 0" in capsys.readouterr().out
    assert snapshot(db) == after


def test_survivor_and_carer_amounts_are_indexed_ended_and_unreadable_decisions_left(
    db: Path,
) -> None:
    survivor, parent, child = (iin(dt.date(2012, 5, 5), True, 911),
                               iin(dt.date(1985, 5, 5), True, 912),
                               iin(dt.date(2015, 5, 5), False, 913))
    first = Month(2026, 1)
    carer = BenefitDecision(
        BenefitKind.CARER_OF_DISABLED_CHILD, parent, child, 64719, Frequency.MONTHLY,
        first.first_day, dt.date(2033, 5, 4), "health DisabilityEstablished, conclusion C-1",
        (CalcItem("carer_share", "1.4", "PM"),), (), schedule(first, 12, 64719))
    no_group = BenefitDecision(
        BenefitKind.DISABILITY_BENEFIT, parent, parent, 1, Frequency.MONTHLY,
        first.first_day, None, "health DisabilityEstablished, conclusion C-2", (), (),
        schedule(first, 12, 1))
    ended = BenefitDecision(  # a child born in 2024 is 1.5 before June 2026
        BenefitKind.CHILD_CARE_ALLOWANCE, parent, iin(dt.date(2024, 9, 1), True, 914),
        STATE_2025, Frequency.MONTHLY, dt.date(2024, 9, 1), dt.date(2025, 8, 31),
        "population BirthRegistered", (CalcItem("birth_order", "2"),), (),
        schedule(Month(2024, 9), 12, STATE_2025))
    pension = PensionDecision(
        survivor, PensionKind.SURVIVOR, dt.date(2025, 12, 1), "loss of the breadwinner",
        PensionCalculation.by_items(40000, 2025, (CalcItem("dependants", "1"),), ()), (),
        schedule(first, 12, 40000), ends_on=dt.date(2030, 5, 4),
        breadwinner_iin=iin(dt.date(1980, 1, 2), False, 915))
    conn = schema.connect(db)
    try:
        conn.execute("BEGIN IMMEDIATE")
        ids = [store.insert_benefit(conn, d, today=TODAY, now_ms=NOW_MS)
               for d in (carer, no_group, ended)]
        assignment = store.insert_pension(conn, pension, today=TODAY, now_ms=NOW_MS)
        conn.execute("COMMIT")
    finally:
        conn.close()
    pension_store = store.PensionStore.open(db, FixedClock(NOW_MS))
    try:
        report = recalculating.run(pension_store, TODAY, now_ms=lambda: NOW_MS)
    finally:
        pension_store.close()
    done = {o.decision.decision_id: o.recalculation for o in report.recalculated}
    assert (done[ids[0]].old_amount, done[ids[0]].new_amount) == (64719, 81870)  # 1.61 PM
    assert done[ids[0]].rules[0].table == "CARER_OF_DISABLED_CHILD"
    assert (done[assignment].old_amount, done[assignment].new_amount) == (40000, 46783)
    assert done[assignment].arrears_total == 5 * (46783 - 40000)
    assert ids[2] not in done  # ended: left as it is
    assert [(s.decision_id, s.kind) for s in report.skipped] == [
        (ids[1], "disability_benefit")]
    assert "'group'" in report.skipped[0].reason
    assert rows(db, "SELECT monthly_amount FROM pension_assignments WHERE assignment_id = ?",
                assignment) == [(46783,)]


async def test_an_age_pension_under_the_46_mci_cap_is_recalculated_once_and_published(
    db: Path, running: tuple[PensionServer, grpc.aio.Channel],
    capsys: pytest.CaptureFixture[str],
) -> None:
    reached = dt.date(2025, 9, 10)
    man = iin(dt.date(1962, 9, 10), False, 921)
    stored = old_age_pension(reached=reached)
    pension = PensionDecision(
        man, PensionKind.AGE, reached, "retirement age 63 reached on 2025-09-10", stored, (),
        schedule(Month.of(reached), 12, stored.monthly_amount))
    conn = schema.connect(db)
    try:
        conn.execute("BEGIN IMMEDIATE")
        assignment = store.insert_pension(conn, pension, today=reached, now_ms=NOW_MS)
        conn.execute("COMMIT")
    finally:
        conn.close()

    _, channel = running
    answer = await rpb_grpc.PensionRecalculationStub(channel).RecalculateBenefits(
        rpb.RecalculateBenefitsRequest(as_of=as_of(TODAY)))
    (age,) = [r for r in answer.recalculated if r.decision_id == assignment]
    new = BASE_2026 + NEW_SOLIDARITY
    assert (age.kind, age.recipient_iin, age.old_amount, age.new_amount) == (
        "age_pension", man, OLD_AMOUNT, new)
    assert age.arrears_total == (4 * (BASE_2025 + NEW_SOLIDARITY - OLD_AMOUNT)
                                 + 5 * (new - OLD_AMOUNT))
    (cap,) = [r for r in age.rules if r.table == "SOLIDARITY_INCOME_CAP"]
    assert "55 MCI" in cap.source and cap.in_force_from.year == 2023
    assert rows(db, "SELECT monthly_amount FROM pension_assignments WHERE assignment_id = ?",
                assignment) == [(new,)]
    assert rows(db, "SELECT amount, status FROM payments WHERE assignment_id = ?"
                " AND month >= '2026-06' ORDER BY month", assignment) == [
        (new, "scheduled")] * 3
    (event,) = [e for e in recalculated_events(db) if e.decision_id == assignment]
    assert (event.kind, event.recipient_iin, event.old_amount, event.new_amount) == (
        "age_pension", man, OLD_AMOUNT, new)
    status = await pb_grpc.PensionRegistryStub(channel).GetPensionStatus(
        pb.GetPensionStatusRequest(iin=man, read_mask={"paths": ["assignments"]}))
    (shown,) = status.assignments
    (decision,) = shown.recalculations
    assert (decision.old_amount, decision.new_amount, decision.arrears_total) == (
        OLD_AMOUNT, new, age.arrears_total)
    assert [(p.month.month, p.amount) for p in shown.payments if p.kind == "arrears"] == [
        (6, age.arrears_total)]

    # A second run, by the command on the same file, changes nothing.
    after = snapshot(db)
    args = parse_adapter(cli, "pension", "recalculate", "--db", str(db), "--as-of",
                         TODAY.isoformat())
    assert args.func(args) == 0
    assert "recalculated 0" in capsys.readouterr().out
    assert snapshot(db) == after


def test_an_old_burial_gets_the_savings_payment_once_and_keeps_the_budget_payment(
    db: Path,
) -> None:
    deceased, spouse = (iin(dt.date(1950, 2, 2), False, 921),
                        iin(dt.date(1952, 3, 3), True, 922))
    poor = iin(dt.date(1951, 4, 4), False, 923)  # no savings: nothing due from them
    death = dt.date(2024, 3, 1)  # MCI 3,692
    old_amount = 52 * 3692

    def old_burial(subject: str) -> BenefitDecision:  # as the code decided before issue 14
        return BenefitDecision(
            BenefitKind.BURIAL_BENEFIT, spouse, subject, old_amount, Frequency.ONE_OFF,
            death, death, f"population DeathRegistered, act D-{subject[-3:]}",
            (CalcItem("recipient", "spouse"), CalcItem("burial_mci", "52", "MCI"),
             CalcItem("mci", "3692", "KZT"), CalcItem("amount", str(old_amount), "KZT")),
            (), (Payment(Month(2024, 3), old_amount, PaymentStatus.PAID),))

    conn = schema.connect(db)
    try:
        conn.execute("BEGIN IMMEDIATE")
        ids = [store.insert_benefit(conn, old_burial(s), today=death, now_ms=NOW_MS)
               for s in (deceased, poor)]
        conn.execute("INSERT INTO pension_savings VALUES (?, 500000, '2024-02-01')",
                     (deceased,))
        conn.execute("COMMIT")
    finally:
        conn.close()
    assigned_before = len(assigned_events(db))

    def run() -> recalculating.RunReport:
        pension_store = store.PensionStore.open(db, FixedClock(NOW_MS))
        try:
            return recalculating.run(pension_store, TODAY, now_ms=lambda: NOW_MS)
        finally:
            pension_store.close()

    report = run()
    done = {o.decision.decision_id: o for o in report.recalculated}
    assert ids[1] not in done and ids[0] in done
    savings = 94 * 3692
    burial = done[ids[0]]
    assert (burial.decision.kind, burial.recalculation.new_amount) == (
        "burial_benefit", savings)
    (payment,) = rows(db, "SELECT benefit_id, recipient_iin, amount, calculation, basis"
                          " FROM benefits WHERE kind = 'burial_savings_payment'")
    assert payment[1:3] == (spouse, savings)
    assert '"savings_balance"' in payment[3] and burial.recalculation_id in payment[4]
    assert rows(db, "SELECT balance FROM pension_savings WHERE iin = ?", deceased) == [
        (500000 - savings,)]
    # The budget payment made is kept as it was: not claimed back.
    assert rows(db, "SELECT amount, status FROM benefits WHERE benefit_id IN (?, ?)",
                *ids) == [(old_amount, "active")] * 2
    (record,) = rows(db, "SELECT benefit_id, old_amount, new_amount, reason, rules"
                         " FROM recalculations WHERE recalculation_id = ?",
                     burial.recalculation_id)
    assert record[:3] == (ids[0], 0, savings)
    assert "not claimed back" in record[3] and payment[0] in record[3]
    assert "BURIAL_SAVINGS" in record[4] and "UAPF" in record[4]
    events = assigned_events(db)[assigned_before:]
    assert [(e.benefit_id, e.kind, e.recipient_iin) for e in events] == [
        (payment[0], "burial_savings_payment", spouse)]

    after = snapshot(db)
    again = run()
    assert ids[0] not in {o.decision.decision_id for o in again.recalculated}
    assert not again.skipped
    assert snapshot(db) == after


def assigned_events(db: Path) -> list[pb.BenefitAssigned]:
    conn = sqlite3.connect(db)
    try:
        return [pb.BenefitAssigned.FromString(e.payload) for e in read_outbox(conn)
                if e.topic == pb.BenefitAssigned.DESCRIPTOR.full_name]
    finally:
        conn.close()


def test_arrears_recorded_before_they_were_paid_out_are_scheduled_once(db: Path) -> None:
    def run() -> recalculating.RunReport:
        pension_store = store.PensionStore.open(db, FixedClock(NOW_MS))
        try:
            return recalculating.run(pension_store, TODAY, now_ms=lambda: NOW_MS)
        finally:
            pension_store.close()

    first = run()
    owed = sum(o.recalculation.arrears_total for o in first.recalculated)
    assert owed > 0 and first.arrears_backfilled == 0
    # A file whose recalculations were written before arrears were paid out.
    conn = schema.connect(db)
    try:
        with conn:
            conn.execute("DELETE FROM arrears_payments")
    finally:
        conn.close()
    assert run().arrears_backfilled == 2
    assert rows(db, "SELECT month, sum(amount) FROM arrears_payments GROUP BY month") == [
        ("2026-06", owed)]
    after = snapshot(db)
    assert run().arrears_backfilled == 0
    assert snapshot(db) == after
