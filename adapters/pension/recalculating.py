"""The recalculation run: the active decisions read, recalculated and written, one
transaction per decision (the pure part is ``recalculation``).

Looked at: every active child-care allowance, disability benefit and carer's benefit
(monthly benefits), and every active survivor and age pension (``age_recalculation``).
Each is read again inside its own ``BEGIN IMMEDIATE`` transaction, recomputed from
pension's own facts (the stored calculation's inputs: birth order, group, dependants;
service years, incomes and savings; the mother's contributions; the birth date and sex
the IIN encodes) with the rules in force, and, when its payments change,
its unpaid schedule is replaced, the recalculation decision and its arrears written and
``zhol.pension.v1.BenefitRecalculated`` enqueued in the outbox, all committed together.
A decision that cannot be recomputed (an input missing from its stored calculation, no
rule for a month) is skipped with its reason and left as it is.

A survivor pension of a child aged 17 to 22 on ``as_of`` is also checked against the
child's studies, which the caller read from education beforehand (``studies``; the
run itself makes no bus call): the pension ends the day before the 18th birthday
unless a full-time study (rules.SURVIVOR_STUDENT) is in force on the later of the
pension's first day and that birthday; then it runs to the study's last day, at most
the day before the 23rd birthday. So the run extends the schedule of a child who turns
18 in full-time study, and shortens it when education has recorded the study's end. A
child whose studies could not be read is skipped with the reason (the pension left as
it is, checked again by the next run); with ``studies`` None (a run without the bus,
the command on the file) nothing is checked and the stored end stays.

A burial benefit decided under the earlier rule (``recalculation.old_burial``) whose
deceased had pension savings and no burial payment from them gets that payment now, as
the death handler decides it (``BenefitAssigned``, the savings reduced), to the old
decision's recipient, with a recalculation decision of the old one; the budget payment
made is kept. Not looked at: other one-off benefits.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from zhol.adapters.bus.outbox import enqueue_event
from zhol.adapters.pension import (
    age_recalculation,
    calculation,
    childcare,
    recalculation,
    rules,
    store,
)
from zhol.adapters.pension.model import (
    CURRENCY,
    BenefitDecision,
    BenefitKind,
    CalcItem,
    Frequency,
    InvalidInput,
    Month,
    Payment,
    PaymentStatus,
    PensionCalculation,
    PensionError,
    items_from_json,
    items_to_json,
)
from zhol.adapters.pension.recalculation import Entitlement, Recalculation, RuleRef
from zhol.adapters.pension.sources import age_on, birth_date_in_iin
from zhol.core.iin import Iin
from zhol.pension.v1 import pension_pb2 as pb
from zhol.pension.v1 import recalculation_pb2 as rpb

SURVIVOR_PENSION = "survivor_pension"  # the kind a recalculated survivor pension is named by
BURIAL = BenefitKind.BURIAL_BENEFIT.value
BENEFIT_KINDS = ("child_care_allowance", "disability_benefit", "carer_of_disabled_child")
EARLIEST_AS_OF = dt.date(2010, 1, 1)  # the first rows of the rule tables


# A survivor pension's child is checked against education from this age (the year
# before the 18th birthday, so a run before the birthday extends the schedule in time).
STUDY_CHECK_FROM_AGE = 17


class Skip(Exception):
    """This decision cannot be recomputed (the reason); it is left as it is."""


@dataclass(frozen=True, slots=True)
class StudiesRead:
    """Education's answer for one child (``studies``), or why it could not be read."""

    studies: tuple[calculation.StudyPeriod, ...] = ()
    failed: str = ""


def children_to_check(conn: sqlite3.Connection, as_of: dt.date) -> list[str]:
    """The children of active survivor pensions whose studies the run needs: aged
    ``STUDY_CHECK_FROM_AGE`` to the student's limit (23, exclusive) on ``as_of``, by the
    birth date their IIN encodes."""
    until_age = rules.SURVIVOR_STUDENT.at(as_of).until_age
    found = []
    for (iin,) in conn.execute(
            "SELECT DISTINCT iin FROM pension_assignments WHERE status = 'active'"
            " AND kind = 'survivor' ORDER BY iin"):
        born = birth_date_in_iin(iin)
        if born is not None and STUDY_CHECK_FROM_AGE <= age_on(born, as_of) < until_age:
            found.append(iin)
    return found


@dataclass(frozen=True, slots=True)
class Decision:
    """An active benefit or survivor pension as stored (``table``: where)."""

    decision_id: str
    table: str  # benefits, pension_assignments
    kind: str
    recipient_iin: str
    subject_iin: str
    period_from: dt.date
    ends_on: dt.date | None
    items: tuple[CalcItem, ...]
    calculation_json: str


@dataclass(frozen=True, slots=True)
class Outcome:
    decision: Decision
    recalculation: Recalculation
    recalculation_id: str  # "" in a dry run


@dataclass(frozen=True, slots=True)
class Skipped:
    decision_id: str
    kind: str
    reason: str


@dataclass(frozen=True, slots=True)
class RunReport:
    as_of: dt.date
    dry_run: bool
    examined: int
    recalculated: tuple[Outcome, ...]
    skipped: tuple[Skipped, ...]
    # Arrears recorded by earlier runs, before arrears were paid out, scheduled now.
    arrears_backfilled: int = 0

    @property
    def unchanged(self) -> int:
        return self.examined - len(self.recalculated) - len(self.skipped)


def check_as_of(as_of: dt.date, today: dt.date) -> None:
    """Months before ``as_of``'s are taken as paid: a later day would count months not
    yet paid; the rule tables start in 2010."""
    if as_of > today:
        raise InvalidInput(f"as_of must not be after today ({today.isoformat()})")
    if as_of < EARLIEST_AS_OF:
        raise InvalidInput(f"as_of must not be before {EARLIEST_AS_OF.isoformat()}")


def run(pension: store.PensionStore, as_of: dt.date, *, dry_run: bool = False,
        now_ms: Callable[[], int], studies: Mapping[str, StudiesRead] | None = None
        ) -> RunReport:
    """Recalculate every active decision as of ``as_of`` (one transaction each);
    ``studies``: education's answers for ``children_to_check`` (None: not checked)."""
    today = pension.today()
    check_as_of(as_of, today)
    conn = pension.connection
    ids = _active_ids(conn)
    outcomes: list[Outcome] = []
    skipped: list[Skipped] = []
    backfilled = 0
    if not dry_run:
        with pension.transaction():
            backfilled = schedule_unpaid_arrears(conn, Month.of(as_of))
    for table, decision_id in ids:
        with pension.transaction():
            decision = _decision(conn, table, decision_id)
            if decision is None:  # stopped or superseded since the list was read
                continue
            try:
                if decision.kind == BURIAL:
                    burial = _burial(conn, decision, as_of, today, dry_run=dry_run,
                                     now_ms=now_ms)
                    if burial is not None:
                        outcomes.append(burial)
                    continue
                result = _recalculate(conn, decision, as_of, studies)
            except (Skip, PensionError) as err:
                skipped.append(Skipped(decision.decision_id, decision.kind, str(err)))
                continue
            if result is None:
                continue
            entitlement, recalc = result
            recalculation_id = "" if dry_run else write(
                conn, decision, recalc, entitlement, as_of=as_of, today=today,
                now_ms=now_ms())
            outcomes.append(Outcome(decision, recalc, recalculation_id))
    return RunReport(as_of, dry_run, len(ids), tuple(outcomes), tuple(skipped), backfilled)


def schedule_unpaid_arrears(conn: sqlite3.Connection, month: Month) -> int:
    """The arrears of recalculations recorded before arrears were paid out (no
    ``arrears_payments`` row) scheduled once in ``month``; how many."""
    return conn.execute(
        "INSERT INTO arrears_payments (recalculation_id, month, amount)"
        " SELECT recalculation_id, ?, arrears_total FROM recalculations AS r"
        " WHERE arrears_total > 0 AND NOT EXISTS (SELECT 1 FROM arrears_payments AS p"
        " WHERE p.recalculation_id = r.recalculation_id)", (str(month),),
    ).rowcount


# -- reads -------------------------------------------------------------------------------


def _active_ids(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    marks = ",".join("?" * len(BENEFIT_KINDS))
    benefits = conn.execute(
        f"SELECT benefit_id FROM benefits WHERE status = 'active' AND frequency = 'monthly'"
        f" AND kind IN ({marks}) ORDER BY benefit_id", BENEFIT_KINDS,
    ).fetchall()
    burials = conn.execute(
        "SELECT benefit_id FROM benefits WHERE status = 'active' AND kind = ?"
        " ORDER BY benefit_id", (BURIAL,),
    ).fetchall()
    pensions = conn.execute(
        "SELECT assignment_id FROM pension_assignments WHERE status = 'active'"
        " AND kind IN ('survivor', 'age') ORDER BY assignment_id",
    ).fetchall()
    return ([("benefits", row[0]) for row in (*benefits, *burials)]
            + [("pension_assignments", row[0]) for row in pensions])


def _date(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def _decision(conn: sqlite3.Connection, table: str, decision_id: str) -> Decision | None:
    if table == "benefits":
        row = conn.execute(
            "SELECT kind, recipient_iin, subject_iin, period_from, period_to, calculation"
            " FROM benefits WHERE benefit_id = ? AND status = 'active'", (decision_id,),
        ).fetchone()
        if row is None:
            return None
        kind, recipient, subject, start, end, calc = row
        return Decision(decision_id, table, kind, recipient, subject,
                        dt.date.fromisoformat(start), _date(end), items_from_json(calc), calc)
    row = conn.execute(
        "SELECT iin, effective_from, ends_on, calculation, kind FROM pension_assignments"
        " WHERE assignment_id = ? AND status = 'active'", (decision_id,),
    ).fetchone()
    if row is None:
        return None
    iin, start, end, calc, pension_kind = row
    kind = age_recalculation.KIND if pension_kind == "age" else SURVIVOR_PENSION
    return Decision(decision_id, table, kind, iin, iin,
                    dt.date.fromisoformat(start), _date(end),
                    PensionCalculation.from_json(calc).items, calc)


def _column(decision: Decision) -> str:
    return "benefit_id" if decision.table == "benefits" else "assignment_id"


def schedule_of(conn: sqlite3.Connection, decision: Decision) -> tuple[Payment, ...]:
    """The decision's payments, every status, by month."""
    rows = conn.execute(
        f"SELECT month, amount, status FROM payments WHERE {_column(decision)} = ?"
        " ORDER BY month", (decision.decision_id,),
    ).fetchall()
    return tuple(Payment(Month.parse(m), a, PaymentStatus(s)) for m, a, s in rows)


def recorded_arrears(conn: sqlite3.Connection, decision: Decision) -> dict[Month, int]:
    """The arrears earlier recalculations recorded for each month of this decision."""
    rows = conn.execute(
        "SELECT a.month, sum(a.amount) FROM recalculation_arrears AS a JOIN recalculations"
        f" AS r USING (recalculation_id) WHERE r.{_column(decision)} = ? GROUP BY a.month",
        (decision.decision_id,),
    ).fetchall()
    return {Month.parse(month): total for month, total in rows}


def _item(decision: Decision, name: str) -> int:
    for item in decision.items:
        if item.name == name:
            try:
                return int(item.value)
            except ValueError:
                break
    raise Skip(f"the stored calculation has no whole-number item {name!r}")


def _refs(months: list[Month], ref_of: Callable[[Month], RuleRef]) -> tuple[RuleRef, ...]:
    found: list[RuleRef] = []
    for month in months:
        ref = ref_of(month)
        if ref not in found:
            found.append(ref)
    return tuple(found)


def _survivor_period(decision: Decision, months: list[Month], change_from: Month,
                     studies: Mapping[str, StudiesRead] | None
                     ) -> tuple[dt.date | None, list[Month], tuple[RuleRef, ...], str]:
    """A survivor pension's last day and months by the child's studies (when the run
    read them): (ends_on, months, rule rows, the reason's words on the study)."""
    read = None if studies is None else studies.get(decision.recipient_iin)
    if read is None:
        return decision.ends_on, months, (), ""
    if read.failed:
        raise Skip(f"the child's full-time study could not be checked ({read.failed}): left"
                   " as it is until a run can ask education")
    born = birth_date_in_iin(decision.recipient_iin)
    if born is None:
        raise Skip("the IIN encodes no birth date")
    end = calculation.survivor_end(born, decision.period_from, read.studies)
    last = Month.of(end.ends_on)
    horizon = change_from.plus(rules.SCHEDULE.horizon_months - 1)
    kept = [m for m in months if m <= last]
    after = kept[-1].plus(1) if kept else months[0]
    while after <= min(last, horizon):
        kept.append(after)
        after = after.plus(1)
    student = rules.SURVIVOR_STUDENT.row(max(decision.period_from,
                                             calculation.birthday(born, rules.SURVIVOR.end_age)))
    ref = RuleRef("SURVIVOR_STUDENT", student.start, student.source)
    if end.study is None:
        note = (f"; no full-time study in force on the {rules.SURVIVOR.end_age}th birthday"
                " (education ListStudies): due until the day before it")
    else:
        note = (f"; full-time study (education ListStudies: {end.study.describe()}) keeps the"
                f" child a dependant until {end.ends_on.isoformat()}, at most the day before"
                " the 23rd birthday")
    return end.ends_on, kept, (ref,), note


def entitlement(conn: sqlite3.Connection, decision: Decision, change_from: Month,
                studies: Mapping[str, StudiesRead] | None = None) -> Entitlement:
    """What the rules in force give for ``decision``, from pension's own facts (and,
    for a survivor pension, the child's studies the run read)."""
    months = sorted(p.month for p in schedule_of(conn, decision))
    if decision.kind == "child_care_allowance":
        birth = decision.period_from
        birth_month = Month.of(birth)
        first = birth_month.plus(-childcare.CHILD_CARE_INSURED.window_months)
        reports = store.contribution_months(conn, decision.recipient_iin, first,
                                            birth_month.plus(-1))
        return recalculation.child_care(
            _item(decision, "birth_order"), birth,
            (childcare.ContributionMonth(*row) for row in reports), change_from)
    if not months:
        raise Skip("no payment schedule")
    if decision.kind == "disability_benefit":
        group = _item(decision, "group")
        born = birth_date_in_iin(decision.subject_iin)
        # The conclusion said "since childhood" (the line is absent otherwise).
        childhood = any(i.name == "since_childhood" for i in decision.items)
        return recalculation.indexed(
            months, lambda m: calculation.disability_amount(group, born, m, childhood),
            _refs(months, lambda m: RuleRef(
                "DISABILITY_BENEFIT", rules.DISABILITY_BENEFIT.row(m.first_day).start,
                rules.DISABILITY_BENEFIT.row(m.first_day).source)),
            f"disability benefit, group {group}: each month at the size in force and the"
            " PM or MCI of the year paid", decision.ends_on,
            calculation.disability_benefit(group, max(change_from, months[0]).first_day,
                                           born, childhood).items)
    if decision.kind == "carer_of_disabled_child":
        table = rules.CARER_OF_DISABLED_CHILD.pm_share
        return recalculation.indexed(
            months, calculation.carer_amount,
            _refs(months, lambda m: RuleRef("CARER_OF_DISABLED_CHILD",
                                            table.row(m.first_day).start,
                                            table.row(m.first_day).source)),
            "benefit for raising a disabled child: each month at the share of the PM in"
            " force and the PM of the year paid", decision.ends_on)
    if decision.kind == SURVIVOR_PENSION and any(
            i.name == "orphan_share" for i in decision.items):
        orphans = rules.SURVIVOR_ORPHAN
        ends_on, months, study, note = _survivor_period(decision, months, change_from,
                                                        studies)
        return recalculation.indexed(
            months, calculation.orphan_amount,
            _refs(months, lambda m: RuleRef("SURVIVOR_ORPHAN", orphans.row(m.first_day).start,
                                            orphans.row(m.first_day).source)) + study,
            "orphan's survivor pension: each month at the orphan's share in force and the"
            " PM of the year paid" + note, ends_on)
    if decision.kind == SURVIVOR_PENSION:
        dependants = _item(decision, "dependants")
        if dependants < 1:
            raise Skip("dependants must be at least 1")
        shares = rules.SURVIVOR.family_share
        ends_on, months, study, note = _survivor_period(decision, months, change_from,
                                                        studies)
        return recalculation.indexed(
            months, lambda m: calculation.survivor_amount(dependants, m),
            _refs(months, lambda m: RuleRef("SURVIVOR", shares.row(m.first_day).start,
                                            shares.row(m.first_day).source)) + study,
            f"survivor pension, {dependants} dependant(s): each month at the family's share"
            " in force and the PM of the year paid" + note, ends_on)
    if decision.kind == age_recalculation.KIND:
        return age_recalculation.age_pension(_assigned(conn, decision, months), change_from)
    raise Skip(f"kind {decision.kind} is not recalculated")


def _assigned(conn: sqlite3.Connection, decision: Decision, months: list[Month]
              ) -> age_recalculation.Assigned:
    """An age pension as stored: its calculation, assignment day and schedule, with the
    birth date and sex its IIN encodes (what population gave the retirement run)."""
    born = birth_date_in_iin(decision.recipient_iin)
    if born is None:
        raise Skip("the IIN encodes no birth date")
    (assigned_on,) = conn.execute(
        "SELECT assigned_on FROM pension_assignments WHERE assignment_id = ?",
        (decision.decision_id,)).fetchone()
    return age_recalculation.Assigned(
        Iin.parse(decision.recipient_iin).is_female, born,
        PensionCalculation.from_json(decision.calculation_json),
        dt.date.fromisoformat(assigned_on), tuple(months))


def _recalculate(conn: sqlite3.Connection, decision: Decision, as_of: dt.date,
                 studies: Mapping[str, StudiesRead] | None = None
                 ) -> tuple[Entitlement, Recalculation] | None:
    change_from = Month.of(as_of)
    due = entitlement(conn, decision, change_from, studies)
    if not recalculation.still_due(due, as_of):
        return None
    result = recalculation.recalculate(
        schedule_of(conn, decision), due, change_from, old_ends_on=decision.ends_on,
        recorded_arrears=recorded_arrears(conn, decision))
    return None if result is None else (due, result)


def _burial(conn: sqlite3.Connection, decision: Decision, as_of: dt.date, today: dt.date, *,
            dry_run: bool, now_ms: Callable[[], int]) -> Outcome | None:
    """An old burial decision: the payment from the deceased's savings decided now when
    there are savings and none was decided (None otherwise: nothing to do, a second run
    finds the payment); the budget payment made is kept, nothing recorded for it."""
    if not recalculation.old_burial(decision.items):
        return None
    deceased = decision.subject_iin
    if conn.execute("SELECT 1 FROM benefits WHERE kind = ? AND subject_iin = ?",
                    (BenefitKind.BURIAL_SAVINGS_PAYMENT.value, deceased)).fetchone():
        return None
    balance = store.savings_of(conn, deceased)
    if balance <= 0:
        return None
    relation = next((i.value for i in decision.items if i.name == "recipient"), "")
    if relation not in ("spouse", "child"):
        raise Skip("the stored calculation has no recipient (spouse or child)")
    (old_amount,) = conn.execute("SELECT amount FROM benefits WHERE benefit_id = ?",
                                 (decision.decision_id,)).fetchone()
    # Paid from the run's day, as the death handler pays from the day it decides.
    amount, recalc = recalculation.burial_savings(
        decision.period_from, relation, balance, old_amount, Month.of(today))
    recalculation_id = "" if dry_run else write_burial(
        conn, decision, recalc, amount, as_of=as_of, today=today, now_ms=now_ms())
    return Outcome(decision, recalc, recalculation_id)


def write_burial(conn: sqlite3.Connection, decision: Decision, recalc: Recalculation,
                 amount: calculation.Amount, *, as_of: dt.date, today: dt.date,
                 now_ms: int) -> str:
    """The savings payment as the death handler writes it (``BenefitAssigned``, the old
    decision's reads as its sources, the savings reduced) and the recalculation decision
    of the old burial benefit naming it; inside the caller's transaction."""
    recalculation_id = f"RC-{uuid.uuid4()}"
    (basis,) = conn.execute("SELECT basis FROM benefits WHERE benefit_id = ?",
                            (decision.decision_id,)).fetchone()
    death = decision.period_from
    savings_id = store.insert_benefit(conn, BenefitDecision(
        BenefitKind.BURIAL_SAVINGS_PAYMENT, decision.recipient_iin, decision.subject_iin,
        amount.amount, Frequency.ONE_OFF, death, death,
        f"{basis}; recalculation {recalculation_id} of {decision.decision_id}",
        amount.items, store.sources_of(conn, decision.decision_id), recalc.schedule,
    ), today=today, now_ms=now_ms)
    if savings_id is None:  # decided since it was read: nothing more to write
        return ""
    store.withdraw_savings(conn, decision.subject_iin, amount.amount, today)
    conn.execute(
        "INSERT INTO recalculations (recalculation_id, benefit_id, decided_on, as_of,"
        " change_from, old_amount, new_amount, old_ends_on, new_ends_on, arrears_total,"
        " reason, rules, replaced, schedule, old_calculation, new_calculation)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, '[]', ?, ?, ?)",
        (recalculation_id, decision.decision_id, today.isoformat(), as_of.isoformat(),
         str(recalc.change_from), recalc.old_amount, recalc.new_amount,
         _optional(recalc.old_ends_on), _optional(recalc.new_ends_on),
         f"{recalc.reason}; decided as {savings_id}", rules_json(recalc.rules),
         _payments_json(recalc.schedule), decision.calculation_json,
         items_to_json(amount.items)),
    )
    return recalculation_id


# -- writes ------------------------------------------------------------------------------


def reason_text(decision: Decision, recalc: Recalculation) -> str:
    """The reason as the decision states it: the rule, then what changed."""
    if decision.kind == BURIAL:  # a one-off payment decided: the reason says it all
        return recalc.reason
    parts = [recalc.reason]
    if recalc.old_ends_on != recalc.new_ends_on:
        parts.append(f"due until {_iso(recalc.new_ends_on)} (was {_iso(recalc.old_ends_on)})")
    if recalc.old_amount != recalc.new_amount:
        first = recalc.schedule[0].month if recalc.schedule else recalc.change_from
        parts.append(f"{first}: {recalc.new_amount} KZT a month (was {recalc.old_amount})")
    if recalc.arrears:
        parts.append(f"arrears {recalc.arrears_total} KZT for {len(recalc.arrears)} month(s)"
                     f" from {recalc.arrears[0].month} to {recalc.arrears[-1].month}")
    return "; ".join(parts)


def _iso(day: dt.date | None) -> str:
    return day.isoformat() if day else "open-ended"


def _payments_json(payments: tuple[Payment, ...]) -> str:
    return json.dumps([[str(p.month), p.amount] for p in payments], separators=(",", ":"))


def rules_json(refs: tuple[RuleRef, ...]) -> str:
    return json.dumps([[r.table, r.in_force_from.isoformat() if r.in_force_from else "",
                        r.source] for r in refs], separators=(",", ":"))


def write(conn: sqlite3.Connection, decision: Decision, recalc: Recalculation,
          due: Entitlement, *, as_of: dt.date, today: dt.date, now_ms: int) -> str:
    """The recalculation decision, its arrears, the new unpaid schedule, the decision's
    current amount and end, and the event; inside the caller's transaction."""
    recalculation_id = f"RC-{uuid.uuid4()}"
    column = _column(decision)
    benefit = decision.table == "benefits"
    reason = reason_text(decision, recalc)
    conn.execute(
        "INSERT INTO recalculations (recalculation_id, benefit_id, assignment_id,"
        " decided_on, as_of, change_from, old_amount, new_amount, old_ends_on, new_ends_on,"
        " arrears_total, reason, rules, replaced, schedule, old_calculation,"
        " new_calculation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (recalculation_id, decision.decision_id if benefit else None,
         None if benefit else decision.decision_id, today.isoformat(), as_of.isoformat(),
         str(recalc.change_from), recalc.old_amount, recalc.new_amount,
         _optional(recalc.old_ends_on), _optional(recalc.new_ends_on), recalc.arrears_total,
         reason, rules_json(recalc.rules), _payments_json(recalc.replaced),
         _payments_json(recalc.schedule), decision.calculation_json,
         items_to_json(due.items)),
    )
    conn.executemany(
        "INSERT INTO recalculation_arrears VALUES (?, ?, ?, ?, ?)",
        [(recalculation_id, str(a.month), a.due, a.paid, a.amount) for a in recalc.arrears],
    )
    if recalc.arrears_total > 0:  # paid once, in the first month not taken as paid
        conn.execute("INSERT INTO arrears_payments (recalculation_id, month, amount)"
                     " VALUES (?, ?, ?)",
                     (recalculation_id, str(recalc.change_from), recalc.arrears_total))
    conn.execute(
        f"DELETE FROM payments WHERE {column} = ? AND month >= ? AND status = 'scheduled'",
        (decision.decision_id, str(recalc.change_from)),
    )
    conn.executemany(
        f"INSERT INTO payments ({column}, month, amount, status) VALUES (?, ?, ?, 'scheduled')",
        [(decision.decision_id, str(p.month), p.amount) for p in recalc.schedule],
    )
    if benefit:
        # The benefit shows its current amount and end; the old ones stay in the decision.
        conn.execute(
            "UPDATE benefits SET amount = ?, period_to = ?, calculation = ? WHERE benefit_id = ?",
            (recalc.new_amount, _optional(recalc.new_ends_on),
             items_to_json(due.items) if due.items else decision.calculation_json,
             decision.decision_id),
        )
    else:
        conn.execute(
            "UPDATE pension_assignments SET monthly_amount = ? WHERE assignment_id = ?",
            (recalc.new_amount, decision.decision_id),
        )
        if decision.kind == SURVIVOR_PENSION and recalc.new_ends_on is not None:
            # A full-time study extends it past 18, or its recorded end shortens it.
            conn.execute("UPDATE pension_assignments SET ends_on = ? WHERE assignment_id = ?",
                         (recalc.new_ends_on.isoformat(), decision.decision_id))
    event = event_of(decision, recalc, recalculation_id, reason)
    enqueue_event(conn, event.DESCRIPTOR.full_name, event, data_subject=decision.recipient_iin,
                  occurred_at_ms=now_ms)
    return recalculation_id


def _optional(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def _date_pb(day: dt.date | None) -> pb.Date | None:
    return None if day is None else pb.Date(year=day.year, month=day.month, day=day.day)


def rule_pb(ref: RuleRef) -> rpb.RuleChanged:
    return rpb.RuleChanged(table=ref.table, in_force_from=_date_pb(ref.in_force_from),
                           source=ref.source)


def event_of(decision: Decision, recalc: Recalculation, recalculation_id: str,
             reason: str) -> rpb.BenefitRecalculated:
    return rpb.BenefitRecalculated(
        recalculation_id=recalculation_id, decision_id=decision.decision_id,
        kind=decision.kind, recipient_iin=decision.recipient_iin,
        subject_iin=decision.subject_iin, old_amount=recalc.old_amount,
        new_amount=recalc.new_amount, currency=CURRENCY,
        change_from=pb.Month(year=recalc.change_from.year, month=recalc.change_from.month),
        new_ends_on=_date_pb(recalc.new_ends_on), arrears_total=recalc.arrears_total,
        rules=[rule_pb(r) for r in recalc.rules], reason=reason,
        arrears_paid_in=(pb.Month(year=recalc.change_from.year, month=recalc.change_from.month)
                         if recalc.arrears_total > 0 else None),
    )


def recalculation_pb(outcome: Outcome, decided_on: dt.date) -> rpb.Recalculation:
    r, d = outcome.recalculation, outcome.decision
    return rpb.Recalculation(
        recalculation_id=outcome.recalculation_id, decision_id=d.decision_id, kind=d.kind,
        recipient_iin=d.recipient_iin, subject_iin=d.subject_iin, old_amount=r.old_amount,
        new_amount=r.new_amount, currency=CURRENCY,
        change_from=pb.Month(year=r.change_from.year, month=r.change_from.month),
        old_ends_on=_date_pb(r.old_ends_on), new_ends_on=_date_pb(r.new_ends_on),
        old_payments=len(r.replaced), new_payments=len(r.schedule),
        arrears=[rpb.Arrears(month=pb.Month(year=a.month.year, month=a.month.month),
                             due=a.due, paid=a.paid, amount=a.amount) for a in r.arrears],
        arrears_total=r.arrears_total, rules=[rule_pb(x) for x in r.rules],
        reason=reason_text(d, r), decided_on=_date_pb(decided_on),
        arrears_paid_in=(pb.Month(year=r.change_from.year, month=r.change_from.month)
                         if r.arrears_total > 0 else None),
    )


def report_pb(report: RunReport, decided_on: dt.date) -> rpb.RecalculateBenefitsResponse:
    return rpb.RecalculateBenefitsResponse(
        as_of=_date_pb(report.as_of), dry_run=report.dry_run, examined=report.examined,
        unchanged=report.unchanged, arrears_scheduled=report.arrears_backfilled,
        recalculated=[recalculation_pb(o, decided_on) for o in report.recalculated],
        skipped=[rpb.RecalculationSkipped(decision_id=s.decision_id, kind=s.kind,
                                          reason=s.reason) for s in report.skipped],
    )
