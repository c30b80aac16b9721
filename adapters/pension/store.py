"""The pension system's data access layer: SQL in, frozen dataclasses out.

``PensionStore`` wraps one SQLite connection and must be used by one thread at a time.
Reads are single statements or run inside one transaction; every write is one
``BEGIN IMMEDIATE`` transaction that validates inside the transaction and rolls back on
any failure, so a refused request changes nothing.

The module-level functions taking a connection (``insert_benefit``, ``insert_pension``,
``stop_payments`` and the ``*_of`` reads) run inside a transaction someone else opened:
the store's own, or the inbox's (an event's write is committed together with the inbox
record). A decision's event is enqueued in the bus outbox in that same transaction.
Decisions that may happen once only are guarded by UNIQUE indexes and inserted with
``ON CONFLICT DO NOTHING``: a second attempt writes nothing and enqueues nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from google.protobuf.message import Message

from zhol.adapters.bus.outbox import enqueue_event
from zhol.adapters.pension import rules, schema
from zhol.adapters.pension.employer_contribution import employer_pension_amount
from zhol.adapters.pension.model import (
    CURRENCY,
    AlreadyRecorded,
    ArrearsMonth,
    Benefit,
    BenefitDecision,
    BenefitKind,
    Contribution,
    ContributionHistory,
    ContributionReport,
    EmploymentPeriod,
    Frequency,
    InsuranceCheck,
    InvalidInput,
    Month,
    NotFound,
    Payment,
    PaymentKind,
    PaymentStatus,
    PensionAssignment,
    PensionCalculation,
    PensionDecision,
    PensionKind,
    PensionStatus,
    RecalculationRecord,
    RuleRow,
    SourceRead,
    items_from_json,
    items_to_json,
)
from zhol.adapters.runtime.store import AgencyStore
from zhol.core.iin import Iin
from zhol.pension.v1 import pension_pb2 as pb

MAX_INCOME = 10_000_000_000  # tenge a month: anything above is a typing error

_ASSIGNMENT_COLUMNS = (
    "assignment_id, iin, kind, monthly_amount, effective_from, assigned_on, status,"
    " stopped_on, stop_reason, basis, calculation, ends_on, breadwinner_iin"
)
_BENEFIT_COLUMNS = (
    "benefit_id, kind, recipient_iin, subject_iin, amount, frequency, period_from,"
    " period_to, status, assigned_on, basis, calculation, stopped_on, stop_reason"
)


class PensionStore(AgencyStore, agency="pension", schema=schema):
    @property
    def connection(self) -> sqlite3.Connection:
        return self._conn

    # -- reads -------------------------------------------------------------------------

    def get_contributions(
        self, iin: Iin, from_month: Month | None = None, to_month: Month | None = None
    ) -> ContributionHistory:
        if from_month is not None and to_month is not None and from_month > to_month:
            raise InvalidInput("from_month is after to_month")
        low = str(from_month) if from_month else "0000-00"
        high = str(to_month) if to_month else "9999-99"
        with self._read():
            rows = self._conn.execute(
                "SELECT iin, month, employer_bin, income, pension_amount, social_amount,"
                " recorded_on, employer_pension_amount FROM contributions"
                " WHERE iin = ? AND month >= ? AND month <= ? ORDER BY month, employer_bin",
                (iin.value, low, high),
            ).fetchall()
            balance = savings_of(self._conn, iin.value)
        contributions = tuple(
            Contribution(r[0], Month.parse(r[1]), r[2], r[3], r[4], r[5],
                         dt.date.fromisoformat(r[6]), r[7])
            for r in rows
        )
        return ContributionHistory(
            iin.value, contributions,
            sum(c.pension_amount for c in contributions),
            sum(c.social_amount for c in contributions),
            balance,
            sum(c.employer_pension_amount for c in contributions),
        )

    def employment_periods(self, iin: Iin) -> tuple[EmploymentPeriod, ...]:
        return employment_of(self._conn, iin.value)

    def savings_balance(self, iin: Iin) -> int:
        return savings_of(self._conn, iin.value)

    def insurance_check(self, iin: Iin, as_of: dt.date) -> InsuranceCheck:
        """Insured through contributions: paid for at least ``INSURANCE.min_paid_months``
        of the ``INSURANCE.window_months`` calendar months before the month of ``as_of``."""
        rule = rules.INSURANCE
        last = Month.of(as_of).plus(-1)
        first = last.plus(-(rule.window_months - 1))
        (paid,) = self._conn.execute(
            "SELECT count(DISTINCT month) FROM contributions"
            " WHERE iin = ? AND month >= ? AND month <= ? AND pension_amount > 0",
            (iin.value, str(first), str(last)),
        ).fetchone()
        return InsuranceCheck(
            iin.value, paid >= rule.min_paid_months, paid, rule.min_paid_months,
            rule.window_months, first, last,
        )

    def pension_status(self, iin: Iin) -> PensionStatus:
        with self._read():
            rows = self._conn.execute(
                f"SELECT {_ASSIGNMENT_COLUMNS} FROM pension_assignments WHERE iin = ?"
                " ORDER BY effective_from DESC, assigned_on DESC, assignment_id",
                (iin.value,),
            ).fetchall()
            assignments = tuple(_assignment(self._conn, row) for row in rows)
            balance = savings_of(self._conn, iin.value)
        month = Month.of(self.today())
        assignments = tuple(replace(a, monthly_amount=amount_of_month(
            a.payments, month, a.monthly_amount)) for a in assignments)
        return PensionStatus(iin.value, assignments, balance, self.today())

    def get_assignment(self, assignment_id: str) -> PensionAssignment:
        with self._read():
            row = self._conn.execute(
                f"SELECT {_ASSIGNMENT_COLUMNS} FROM pension_assignments WHERE assignment_id = ?",
                (assignment_id,),
            ).fetchone()
            if row is None:
                raise NotFound(f"no pension assignment {assignment_id}")
            return _assignment(self._conn, row)

    def list_benefits(self, iin: Iin) -> tuple[Benefit, ...]:
        """Benefits where the person is the recipient or the subject, newest first."""
        with self._read():
            rows = self._conn.execute(
                f"SELECT {_BENEFIT_COLUMNS} FROM benefits WHERE recipient_iin = ?"
                f" UNION SELECT {_BENEFIT_COLUMNS} FROM benefits WHERE subject_iin = ?"
                " ORDER BY assigned_on DESC, period_from DESC, kind, benefit_id",
                (iin.value, iin.value),
            ).fetchall()
            benefits = tuple(_benefit(self._conn, row) for row in rows)
        month = Month.of(self.today())
        return tuple(replace(b, amount=amount_of_month(b.payments, month, b.amount))
                     if b.frequency is Frequency.MONTHLY else b for b in benefits)

    def get_benefit(self, benefit_id: str) -> Benefit:
        with self._read():
            row = self._conn.execute(
                f"SELECT {_BENEFIT_COLUMNS} FROM benefits WHERE benefit_id = ?", (benefit_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"no benefit {benefit_id}")
            return _benefit(self._conn, row)

    def with_age_pension(self, iins: Iterable[str]) -> set[str]:
        """Which of ``iins`` already have an age pension assignment (any status)."""
        found: set[str] = set()
        batch: list[str] = []
        for iin in iins:
            batch.append(iin)
            if len(batch) == 500:
                found |= self._age_pensioners(batch)
                batch = []
        if batch:
            found |= self._age_pensioners(batch)
        return found

    def _age_pensioners(self, iins: list[str]) -> set[str]:
        marks = ",".join("?" * len(iins))
        rows = self._conn.execute(
            f"SELECT iin FROM pension_assignments WHERE kind = 'age' AND iin IN ({marks})",
            iins,
        ).fetchall()
        return {row[0] for row in rows}

    # -- writes ------------------------------------------------------------------------

    def record_contribution(self, report: ContributionReport) -> Contribution:
        """An employer's report for one month: checked against the rate table, added to
        the person's pension savings. ``AlreadyRecorded`` for a second report of the
        same employer, person and month."""
        today = self.today()
        month = report.month
        if month.year < rules.FIRST_CONTRIBUTION_YEAR:
            raise InvalidInput(f"month is before {rules.FIRST_CONTRIBUTION_YEAR}-01")
        if month > Month.of(today):
            raise InvalidInput("month is in the future")
        if not 0 < report.income <= MAX_INCOME:
            raise InvalidInput("income must be positive")
        if min(report.pension_amount, report.social_amount,
               report.employer_pension_amount) < 0:
            raise InvalidInput("amounts must not be negative")
        expected = rules.expected_contributions(report.income, month.year)
        if abs(report.pension_amount - expected.pension_amount) > rules.CONTRIBUTION_TOLERANCE:
            raise InvalidInput(
                f"pension_amount must be {expected.pension_amount} for this income and month"
            )
        if abs(report.social_amount - expected.social_amount) > rules.CONTRIBUTION_TOLERANCE:
            raise InvalidInput(
                f"social_amount must be {expected.social_amount} for this income and month"
            )
        employer = employer_pension_amount(
            report.income, month.year, Iin.parse(report.iin).birth_date)
        if abs(report.employer_pension_amount - employer) > rules.CONTRIBUTION_TOLERANCE:
            raise InvalidInput(f"employer_pension_amount must be {employer} for this income,"
                               " month and the worker's birth year")
        with self.transaction():
            row = self._conn.execute(
                "SELECT 1 FROM employers WHERE bin = ?", (report.employer_bin.value,)
            ).fetchone()
            if row is None:
                raise NotFound(f"no employer with BIN {report.employer_bin}")
            inserted = self._conn.execute(
                "INSERT INTO contributions (iin, month, employer_bin, income, pension_amount,"
                " social_amount, recorded_on, employer_pension_amount)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (report.iin, str(month), report.employer_bin.value, report.income,
                 report.pension_amount, report.social_amount, today.isoformat(),
                 report.employer_pension_amount),
            ).rowcount
            if not inserted:
                raise AlreadyRecorded(
                    f"employer {report.employer_bin} already reported {month} for this person"
                )
            self._conn.execute(
                "INSERT INTO pension_savings VALUES (?, ?, ?) ON CONFLICT (iin) DO UPDATE"
                " SET balance = balance + excluded.balance, updated_on = excluded.updated_on",
                (report.iin, report.pension_amount, today.isoformat()),
            )
        return Contribution(  # the OPVR goes to a conditional account, not to savings
            report.iin, month, report.employer_bin.value, report.income,
            report.pension_amount, report.social_amount, today,
            report.employer_pension_amount,
        )

    def assign_pension(self, decision: PensionDecision) -> PensionAssignment | None:
        """Write a pension decision and enqueue ``PensionAssigned``; None when the person
        already has one of that kind (nothing written)."""
        with self.transaction():
            assignment_id = insert_pension(
                self._conn, decision, today=self.today(), now_ms=self._clock.now_ms()
            )
        return None if assignment_id is None else self.get_assignment(assignment_id)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _read(self) -> Iterator[None]:
        """Several statements seeing one snapshot (a deferred read transaction)."""
        if self._conn.in_transaction:
            yield
            return
        self._conn.execute("BEGIN")
        try:
            yield
        finally:
            self._conn.execute("COMMIT")


def amount_of_month(payments: tuple[Payment, ...], month: Month, stored: int) -> int:
    """The amount a monthly decision shows as its amount in ``month``: the schedule's
    payment for that month (each month is paid at the PM or MCI of its year), else the
    last before it (an ended or stopped decision), else the first (one not yet started);
    ``stored`` (the first month's, kept as decided) when nothing is scheduled. Stopped
    payments are never shown."""
    live = [p for p in payments if p.status is not PaymentStatus.STOPPED
            and p.kind is PaymentKind.REGULAR]  # arrears are not a month's amount
    if not live:
        return stored
    due = [p for p in live if p.month <= month]
    return (due[-1] if due else live[0]).amount


# -- reads on a caller's connection ------------------------------------------------------


def savings_of(conn: sqlite3.Connection, iin: str) -> int:
    row = conn.execute("SELECT balance FROM pension_savings WHERE iin = ?", (iin,)).fetchone()
    return row[0] if row else 0


# The state social benefits (besides pensions) whose recipient's death makes the budget's
# burial payment due: the disability benefit. The family benefits (childbirth, child care,
# the carer's benefit) are state benefits to families with children, not these.
BURIAL_QUALIFYING_BENEFITS = ("disability_benefit",)


def received_on(conn: sqlite3.Connection, iin: str, day: dt.date) -> tuple[str, ...]:
    """The person's pensions and state social benefits in force on ``day`` (started on or
    before it, not ended or stopped before it), as "<kind> <decision id>"; empty: none."""
    when = day.isoformat()
    pensions = conn.execute(
        "SELECT kind, assignment_id FROM pension_assignments WHERE iin = ?"
        " AND effective_from <= ? AND (ends_on IS NULL OR ends_on >= ?)"
        " AND (stopped_on IS NULL OR stopped_on >= ?) ORDER BY effective_from, assignment_id",
        (iin, when, when, when),
    ).fetchall()
    marks = ",".join("?" * len(BURIAL_QUALIFYING_BENEFITS))
    benefits = conn.execute(
        f"SELECT kind, benefit_id FROM benefits WHERE recipient_iin = ? AND kind IN ({marks})"
        " AND period_from <= ? AND (period_to IS NULL OR period_to >= ?)"
        " AND (stopped_on IS NULL OR stopped_on >= ?) ORDER BY period_from, benefit_id",
        (iin, *BURIAL_QUALIFYING_BENEFITS, when, when, when),
    ).fetchall()
    return (tuple(f"{kind} pension {ident}" for kind, ident in pensions)
            + tuple(f"{kind} {ident}" for kind, ident in benefits))


def withdraw_savings(conn: sqlite3.Connection, iin: str, amount: int, day: dt.date) -> None:
    """Take ``amount`` (at most the balance: the caller's calculation) from the savings."""
    conn.execute(
        "UPDATE pension_savings SET balance = balance - ?, updated_on = ? WHERE iin = ?"
        " AND balance >= ?",
        (amount, day.isoformat(), iin, amount),
    )


def employment_of(conn: sqlite3.Connection, iin: str) -> tuple[EmploymentPeriod, ...]:
    rows = conn.execute(
        "SELECT e.iin, e.employer_bin, r.title, e.started_on, e.ended_on, r.region, r.district"
        " FROM employment_periods AS e JOIN employers AS r ON r.bin = e.employer_bin"
        " WHERE e.iin = ? ORDER BY e.started_on, e.id",
        (iin,),
    ).fetchall()
    return tuple(
        EmploymentPeriod(r[0], r[1], r[2], dt.date.fromisoformat(r[3]),
                         dt.date.fromisoformat(r[4]) if r[4] else None, r[5], r[6])
        for r in rows
    )


def monthly_incomes(conn: sqlite3.Connection, iin: str, first: Month, last: Month
                    ) -> dict[Month, int]:
    """Recorded income per month (all employers) from ``first`` to ``last`` inclusive."""
    rows = conn.execute(
        "SELECT month, sum(income) FROM contributions"
        " WHERE iin = ? AND month >= ? AND month <= ? GROUP BY month",
        (iin, str(first), str(last)),
    ).fetchall()
    return {Month.parse(month): total for month, total in rows}


def contribution_months(conn: sqlite3.Connection, iin: str, first: Month, last: Month
                        ) -> tuple[tuple[Month, int, int, int], ...]:
    """Each employer's report from ``first`` to ``last`` inclusive: (month, income,
    pension contribution, social contribution)."""
    rows = conn.execute(
        "SELECT month, income, pension_amount, social_amount FROM contributions"
        " WHERE iin = ? AND month >= ? AND month <= ? ORDER BY month, employer_bin",
        (iin, str(first), str(last)),
    ).fetchall()
    return tuple((Month.parse(month), income, pension, social)
                 for month, income, pension, social in rows)


# -- writes on a caller's connection (inside its transaction) ----------------------------


def insert_benefit(
    conn: sqlite3.Connection, decision: BenefitDecision, *, today: dt.date, now_ms: int
) -> str | None:
    """Write a benefit with its sources and payments and enqueue ``BenefitAssigned``.

    Returns the new benefit id, or None when that benefit already exists (the UNIQUE
    indexes: once per kind and subject, or per conclusion): then nothing is written.
    """
    benefit_id = f"BN-{uuid.uuid4()}"
    inserted = conn.execute(
        f"INSERT INTO benefits ({_BENEFIT_COLUMNS})"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, NULL, '')"
        " ON CONFLICT DO NOTHING",
        (benefit_id, decision.kind.value, decision.recipient_iin, decision.subject_iin,
         decision.amount, decision.frequency.value, decision.period_from.isoformat(),
         decision.period_to.isoformat() if decision.period_to else None, today.isoformat(),
         decision.basis, items_to_json(decision.items)),
    ).rowcount
    if not inserted:
        return None
    _insert_sources(conn, benefit_id, decision.sources)
    conn.executemany(
        "INSERT INTO payments (benefit_id, month, amount, status) VALUES (?, ?, ?, ?)",
        [(benefit_id, str(p.month), p.amount, p.status.value) for p in decision.payments],
    )
    event = pb.BenefitAssigned(
        benefit_id=benefit_id, kind=decision.kind.value, recipient_iin=decision.recipient_iin,
        subject_iin=decision.subject_iin, amount=decision.amount, currency=CURRENCY,
        frequency=decision.frequency.value, basis=decision.basis,
    )
    enqueue_event(conn, _topic(event), event, data_subject=decision.recipient_iin,
                  occurred_at_ms=now_ms)
    return benefit_id


def insert_pension(
    conn: sqlite3.Connection, decision: PensionDecision, *, today: dt.date, now_ms: int
) -> str | None:
    """Write a pension assignment with its sources and payments and enqueue
    ``PensionAssigned``; None when it exists already (nothing written): an age pension
    for the person, a survivor pension for the person and that breadwinner."""
    assignment_id = f"PA-{uuid.uuid4()}"
    inserted = conn.execute(
        f"INSERT INTO pension_assignments ({_ASSIGNMENT_COLUMNS})"
        " VALUES (?, ?, ?, ?, ?, ?, 'active', NULL, '', ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (assignment_id, decision.iin, decision.kind.value, decision.monthly_amount,
         decision.effective_from.isoformat(), today.isoformat(), decision.basis,
         decision.calculation.to_json(),
         decision.ends_on.isoformat() if decision.ends_on else None,
         decision.breadwinner_iin or None),
    ).rowcount
    if not inserted:
        return None
    _insert_sources(conn, assignment_id, decision.sources)
    conn.executemany(
        "INSERT INTO payments (assignment_id, month, amount, status) VALUES (?, ?, ?, ?)",
        [(assignment_id, str(p.month), p.amount, p.status.value) for p in decision.payments],
    )
    event = pb.PensionAssigned(
        assignment_id=assignment_id, iin=decision.iin, kind=decision.kind.value,
        monthly_amount=decision.monthly_amount, effective_from=_date_pb(decision.effective_from),
        basis=decision.basis,
    )
    enqueue_event(conn, _topic(event), event, data_subject=decision.iin, occurred_at_ms=now_ms)
    return assignment_id


def stop_payments(
    conn: sqlite3.Connection, iin: str, effective: dt.date, reason: str, *, now_ms: int,
    basis: str = "",
) -> bool:
    """Stop a person's active pensions and benefits (as recipient, or as subject of a
    monthly benefit) from ``effective``: their scheduled payments after that month are
    stopped. Enqueues ``PaymentsStopped`` when anything was active; False otherwise."""
    day = effective.isoformat()
    after = str(Month.of(effective))
    assignments = [row[0] for row in conn.execute(
        "SELECT assignment_id FROM pension_assignments WHERE iin = ? AND status = 'active'",
        (iin,),
    )]
    benefits = [row[0] for row in conn.execute(
        "SELECT benefit_id FROM benefits WHERE status = 'active' AND kind != 'burial_benefit'"
        " AND kind != 'burial_savings_payment'"
        " AND (recipient_iin = ? OR (subject_iin = ? AND frequency = 'monthly'))",
        (iin, iin),
    )]
    if not assignments and not benefits:
        return False
    for assignment_id in assignments:
        conn.execute(
            "UPDATE pension_assignments SET status = 'stopped', stopped_on = ?, stop_reason = ?"
            " WHERE assignment_id = ?",
            (day, reason, assignment_id),
        )
        conn.execute(
            "UPDATE payments SET status = 'stopped' WHERE assignment_id = ? AND month > ?"
            " AND status = 'scheduled'",
            (assignment_id, after),
        )
    for benefit_id in benefits:
        conn.execute(
            "UPDATE benefits SET status = 'stopped', stopped_on = ?, stop_reason = ?"
            " WHERE benefit_id = ?",
            (day, reason, benefit_id),
        )
        conn.execute(
            "UPDATE payments SET status = 'stopped' WHERE benefit_id = ? AND month > ?"
            " AND status = 'scheduled'",
            (benefit_id, after),
        )
    event = pb.PaymentsStopped(
        iin=iin, reason=reason, effective=_date_pb(effective), basis=basis
    )
    enqueue_event(conn, _topic(event), event, data_subject=iin, occurred_at_ms=now_ms)
    return True


def supersede_benefits(
    conn: sqlite3.Connection, kind: BenefitKind, subject_iin: str, from_date: dt.date,
    basis: str
) -> int:
    """A new conclusion (``basis``) replaces the subject's active benefits of ``kind``
    (the disability benefit, the carer's benefit for the child) from other conclusions:
    they end the day before it starts and their payments from its first month stop."""
    rows = [row[0] for row in conn.execute(
        "SELECT benefit_id FROM benefits WHERE kind = ?"
        " AND subject_iin = ? AND status = 'active' AND basis != ?",
        (kind.value, subject_iin, basis),
    )]
    for benefit_id in rows:
        conn.execute(
            "UPDATE benefits SET status = 'superseded', stopped_on = ?,"
            " stop_reason = 'new conclusion' WHERE benefit_id = ?",
            ((from_date - dt.timedelta(days=1)).isoformat(), benefit_id),
        )
        conn.execute(
            "UPDATE payments SET status = 'stopped' WHERE benefit_id = ? AND month >= ?"
            " AND status = 'scheduled'",
            (benefit_id, str(Month.of(from_date))),
        )
    return len(rows)


def active_survivor_pensions(conn: sqlite3.Connection, iin: str) -> list[tuple[str, bool]]:
    """The person's active survivor pensions: (assignment id, an orphan's pension?)."""
    rows = conn.execute(
        "SELECT assignment_id, calculation FROM pension_assignments WHERE iin = ?"
        " AND kind = 'survivor' AND status = 'active' ORDER BY assignment_id", (iin,),
    ).fetchall()
    return [(assignment_id, any(item.name == "orphan_share" for item in
                                PensionCalculation.from_json(calc).items))
            for assignment_id, calc in rows]


def paid_months(conn: sqlite3.Connection, assignment_ids: Iterable[str]) -> set[Month]:
    """The months paid under any of these assignments."""
    found: set[Month] = set()
    for assignment_id in assignment_ids:
        found |= {Month.parse(m) for (m,) in conn.execute(
            "SELECT month FROM payments WHERE assignment_id = ? AND status = 'paid'",
            (assignment_id,))}
    return found


def replace_survivor_pension(conn: sqlite3.Connection, assignment_id: str, first: Month,
                             reason: str) -> None:
    """A survivor pension replaced from ``first`` (an orphan's pension takes over): it
    stops the day before and its scheduled payments from ``first`` are stopped; paid
    history is kept."""
    conn.execute(
        "UPDATE pension_assignments SET status = 'stopped', stopped_on = ?, stop_reason = ?"
        " WHERE assignment_id = ?",
        ((first.first_day - dt.timedelta(days=1)).isoformat(), reason, assignment_id),
    )
    conn.execute(
        "UPDATE payments SET status = 'stopped' WHERE assignment_id = ? AND month >= ?"
        " AND status = 'scheduled'", (assignment_id, str(first)),
    )


def _insert_sources(conn: sqlite3.Connection, decision_id: str,
                    sources: tuple[SourceRead, ...]) -> None:
    conn.executemany(
        "INSERT INTO sources_read VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(decision_id, seq, s.service, s.provider, s.purpose, s.data_subject, s.fact,
          s.read_at_ms) for seq, s in enumerate(sources)],
    )


def _topic(message: Message) -> str:
    return message.DESCRIPTOR.full_name


def _date_pb(day: dt.date) -> pb.Date:
    return pb.Date(year=day.year, month=day.month, day=day.day)


# -- rows to values ----------------------------------------------------------------------


def sources_of(conn: sqlite3.Connection, decision_id: str) -> tuple[SourceRead, ...]:
    """The reads a decision rests on, in order."""
    return _sources(conn, decision_id)


def _sources(conn: sqlite3.Connection, decision_id: str) -> tuple[SourceRead, ...]:
    rows = conn.execute(
        "SELECT service, provider, purpose, data_subject, fact, read_at_ms FROM sources_read"
        " WHERE decision_id = ? ORDER BY seq",
        (decision_id,),
    ).fetchall()
    return tuple(SourceRead(*row) for row in rows)


def _payments(conn: sqlite3.Connection, column: str, decision_id: str) -> tuple[Payment, ...]:
    """The decision's schedule and its recalculations' arrears payments, by month (a
    month's regular payment before its arrears)."""
    rows = conn.execute(
        f"SELECT month, amount, status FROM payments WHERE {column} = ? ORDER BY month",
        (decision_id,),
    ).fetchall()
    regular = [Payment(Month.parse(m), a, PaymentStatus(s)) for m, a, s in rows]
    arrears = conn.execute(
        "SELECT p.month, p.amount, p.status, p.recalculation_id FROM arrears_payments AS p"
        f" JOIN recalculations AS r USING (recalculation_id) WHERE r.{column} = ?"
        " ORDER BY p.month, r.decided_on, p.recalculation_id",
        (decision_id,),
    ).fetchall()
    extra = [Payment(Month.parse(m), a, PaymentStatus(s), PaymentKind.ARREARS, rid)
             for m, a, s, rid in arrears]
    return tuple(sorted((*regular, *extra),
                        key=lambda p: (p.month, p.kind is PaymentKind.ARREARS)))


def _recalculations(conn: sqlite3.Connection, column: str, decision_id: str
                    ) -> tuple[RecalculationRecord, ...]:
    """The recalculation decisions of a benefit or pension, oldest first."""
    rows = conn.execute(
        "SELECT r.recalculation_id, r.decided_on, r.change_from, r.old_amount, r.new_amount,"
        " r.old_ends_on, r.new_ends_on, r.rules, r.reason, r.arrears_total, p.month"
        " FROM recalculations AS r LEFT JOIN arrears_payments AS p USING (recalculation_id)"
        f" WHERE r.{column} = ? ORDER BY r.decided_on, r.change_from, r.recalculation_id",
        (decision_id,),
    ).fetchall()
    found = []
    for (rid, decided, change, old, new, old_end, new_end, refs, reason, total,
         paid_in) in rows:
        arrears = conn.execute(
            "SELECT month, due, paid, amount FROM recalculation_arrears"
            " WHERE recalculation_id = ? ORDER BY month", (rid,)).fetchall()
        found.append(RecalculationRecord(
            rid, dt.date.fromisoformat(decided), Month.parse(change), old, new,
            _optional_date(old_end), _optional_date(new_end),
            tuple(RuleRow(table, _optional_date(start), source)
                  for table, start, source in json.loads(refs)),
            reason, tuple(ArrearsMonth(Month.parse(m), d, p, a) for m, d, p, a in arrears),
            total, Month.parse(paid_in) if paid_in else None))
    return tuple(found)


def _optional_date(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def _assignment(conn: sqlite3.Connection, row: tuple) -> PensionAssignment:
    (assignment_id, iin, kind, amount, effective, assigned, status, stopped, reason, basis,
     calculation, ends_on, breadwinner) = row
    return PensionAssignment(
        assignment_id, iin, PensionKind(kind), amount, dt.date.fromisoformat(effective),
        dt.date.fromisoformat(assigned), status, _optional_date(stopped), reason, basis,
        PensionCalculation.from_json(calculation), _sources(conn, assignment_id),
        _payments(conn, "assignment_id", assignment_id), _optional_date(ends_on),
        breadwinner or "", _recalculations(conn, "assignment_id", assignment_id),
    )


def _benefit(conn: sqlite3.Connection, row: tuple) -> Benefit:
    (benefit_id, kind, recipient, subject, amount, frequency, period_from, period_to, status,
     assigned, basis, calculation, stopped, reason) = row
    return Benefit(
        benefit_id, BenefitKind(kind), recipient, subject, amount, Frequency(frequency),
        dt.date.fromisoformat(period_from), _optional_date(period_to), status,
        dt.date.fromisoformat(assigned), basis, items_from_json(calculation),
        _sources(conn, benefit_id), _payments(conn, "benefit_id", benefit_id),
        _optional_date(stopped), reason, _recalculations(conn, "benefit_id", benefit_id),
    )


__all__ = [
    "PensionStore",
    "employment_of",
    "insert_benefit",
    "insert_pension",
    "monthly_incomes",
    "savings_of",
    "stop_payments",
    "supersede_benefits",
]
