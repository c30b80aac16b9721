"""The pension system's decisions: facts read over the bus in, rows and events out.

Each ``decide_*`` function runs inside a transaction that its caller opened (the inbox's
for an event, the store's for a request): it reads the pension system's own facts on
that connection (contributions, employment, savings), calculates from the rule tables,
writes the decision with the sources read and its payment schedule, and enqueues the
matching event in the bus outbox. A decision that exists already is not written again
and its event is not enqueued again (the UNIQUE indexes of the schema), so a repeated
event (a new message id for the same birth, say) changes nothing.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, replace

from zhol.adapters.pension import (
    age_recalculation,
    calculation,
    childcare,
    rules,
    solidarity,
    store,
)
from zhol.adapters.pension.model import (
    AlreadyRecorded,
    BenefitDecision,
    BenefitKind,
    Frequency,
    Month,
    NotAllowed,
    Payment,
    PensionDecision,
    PensionKind,
    SourceRead,
)


@dataclass(frozen=True, slots=True)
class BirthFacts:
    """A registered birth and the birth order read from the mother's family."""

    mother_iin: str
    child_iin: str
    birth_date: dt.date
    birth_order: int
    act_id: str
    sources: tuple[SourceRead, ...]


@dataclass(frozen=True, slots=True)
class Survivor:
    """A child of the deceased due a survivor pension: living and under the rule's end
    age on the death date, as read from population (``sources``: the reads for this
    child's decision)."""

    iin: str
    birth_date: dt.date
    sources: tuple[SourceRead, ...]
    # Both parents deceased (population's family of the child): the later death's day
    # (None: not an orphan, the family's share) and the other parent's death day.
    orphaned_on: dt.date | None = None
    other_died_on: dt.date | None = None
    # A child of 18 or more on the death date: its studies from education (a full-time
    # one in force keeps it a dependant); None for a younger child (not asked).
    studies: tuple[calculation.StudyPeriod, ...] | None = None


@dataclass(frozen=True, slots=True)
class DeathFacts:
    """A registered death and, by the family read, who receives the burial benefit
    (``sources``: the reads for that decision) and which children a survivor pension."""

    iin: str
    death_date: dt.date
    act_id: str
    burial_recipient: str | None
    recipient_relation: str  # spouse, child, "" when nobody qualifies
    sources: tuple[SourceRead, ...]
    survivors: tuple[Survivor, ...] = ()


@dataclass(frozen=True, slots=True)
class CarerFacts:
    """The parent who raises a disabled child (the first living of the rule's parents,
    read from population: ``sources``, the reads for that decision)."""

    parent_iin: str
    relation: str  # mother, father
    child_born: dt.date
    sources: tuple[SourceRead, ...]


@dataclass(frozen=True, slots=True)
class DisabilityFacts:
    """A commission's conclusion. ``carer``: for a child, the parent due the carer's
    benefit; None for an adult or a child with no living parent known."""

    iin: str
    group: int
    from_date: dt.date
    to_date: dt.date | None
    conclusion_id: str
    sources: tuple[SourceRead, ...]
    carer: CarerFacts | None = None
    born: dt.date | None = None  # population's birth date: a child's rates (None: adult's)
    since_childhood: bool = False  # the conclusion says so: an adult's childhood rates


@dataclass(frozen=True, slots=True)
class RetirementFacts:
    """A person who reached retirement age, as read from population."""

    iin: str
    female: bool
    reached: rules.RetirementDate
    children_birth_dates: tuple[dt.date, ...]
    as_of: dt.date
    sources: tuple[SourceRead, ...]


@dataclass(frozen=True, slots=True)
class DisabilityOutcome:
    """The benefits written now (None: not written, it existed or is not due)."""

    benefit_id: str | None
    carer_benefit_id: str | None = None


@dataclass(frozen=True, slots=True)
class DeathOutcome:
    payments_stopped: bool
    burial_benefit_id: str | None  # the budget's burial payment, written now
    survivor_pension_ids: tuple[str, ...] = ()  # written now (not those that existed)
    burial_savings_id: str | None = None  # the burial payment from savings, written now
    # Why a burial payment was not decided (no personal data: for the decision log).
    no_burial: tuple[str, ...] = ()


def decide_birth(conn: sqlite3.Connection, facts: BirthFacts, *, today: dt.date,
                 now_ms: int) -> list[str]:
    """The childbirth lump sum and the child-care allowance to the mother (each once per
    child). The allowance's months are scheduled whole (18, a fixed period: the schedule
    horizon is for open-ended payments), each at the index of its year. Returns the ids
    of the benefits written now."""
    birth_month = Month.of(facts.birth_date)
    first = birth_month.plus(-childcare.CHILD_CARE_INSURED.window_months)
    reports = store.contribution_months(conn, facts.mother_iin, first, birth_month.plus(-1))
    lump = calculation.birth_lump_sum(facts.birth_order, facts.birth_date)
    care = childcare.child_care(facts.birth_order, facts.birth_date,
                                (childcare.ContributionMonth(*row) for row in reports))
    basis = f"population BirthRegistered, act {facts.act_id}" if facts.act_id else (
        "population BirthRegistered")
    decisions = (
        BenefitDecision(
            BenefitKind.CHILDBIRTH_LUMP_SUM, facts.mother_iin, facts.child_iin, lump.amount,
            Frequency.ONE_OFF, facts.birth_date, facts.birth_date, basis, lump.items,
            facts.sources, (Payment(birth_month, lump.amount),),
        ),
        BenefitDecision(
            BenefitKind.CHILD_CARE_ALLOWANCE, facts.mother_iin, facts.child_iin, care.amount,
            Frequency.MONTHLY, facts.birth_date, care.ends_on, basis, care.items,
            facts.sources, care.payments,
        ),
    )
    written = []
    for decision in decisions:
        benefit_id = store.insert_benefit(conn, decision, today=today, now_ms=now_ms)
        if benefit_id is not None:
            written.append(benefit_id)
    return written


def decide_death(conn: sqlite3.Connection, facts: DeathFacts, *, today: dt.date,
                 now_ms: int) -> DeathOutcome:
    """Stop the deceased's pensions and benefits; the burial payments to the family (the
    budget's when the deceased received a pension or a state social benefit on the death
    date, the savings' when the deceased had pension savings); a survivor pension to each
    qualifying child (once per child and deceased: the schema's unique index, so a
    repeated death writes and publishes nothing more)."""
    basis = death_basis(facts.act_id)
    received = store.received_on(conn, facts.iin, facts.death_date)  # before stopping them
    balance = store.savings_of(conn, facts.iin)
    stopped = store.stop_payments(conn, facts.iin, facts.death_date, "death", now_ms=now_ms,
                                  basis=basis)
    burial_id = savings_id = None
    no_burial: list[str] = []
    paid_on = Month.of(max(facts.death_date, today))
    if facts.burial_recipient is None:
        no_burial.append("burial payments: no living spouse or adult child to receive them")
    elif not received:
        no_burial.append("budget burial payment: the deceased received no pension or state"
                         " social benefit on the death date")
    else:
        amount = calculation.burial_benefit(facts.death_date, facts.recipient_relation,
                                            "; ".join(received))
        decision = BenefitDecision(
            BenefitKind.BURIAL_BENEFIT, facts.burial_recipient, facts.iin, amount.amount,
            Frequency.ONE_OFF, facts.death_date, facts.death_date, basis, amount.items,
            facts.sources, (Payment(paid_on, amount.amount),),
        )
        burial_id = store.insert_benefit(conn, decision, today=today, now_ms=now_ms)
    if facts.burial_recipient is not None and balance <= 0:
        no_burial.append("burial payment from savings: the deceased had no pension savings")
    elif facts.burial_recipient is not None:
        amount = calculation.burial_savings_payment(facts.death_date, facts.recipient_relation,
                                                    balance)
        decision = BenefitDecision(
            BenefitKind.BURIAL_SAVINGS_PAYMENT, facts.burial_recipient, facts.iin,
            amount.amount, Frequency.ONE_OFF, facts.death_date, facts.death_date, basis,
            amount.items, facts.sources, (Payment(paid_on, amount.amount),),
        )
        savings_id = store.insert_benefit(conn, decision, today=today, now_ms=now_ms)
        if savings_id is not None:  # paid out of the savings: the rest is inherited
            store.withdraw_savings(conn, facts.iin, amount.amount, today)
    survivor_ids = []
    for child in facts.survivors:
        if child.orphaned_on is not None:
            assignment_id = decide_orphan(conn, facts, child, today=today, now_ms=now_ms)
        elif any(orphan for _, orphan in store.active_survivor_pensions(conn, child.iin)):
            continue  # the child is paid the orphan's pension already
        else:
            pension = survivor_pension_decision(facts, child, today=today)
            assignment_id = store.insert_pension(conn, pension, today=today, now_ms=now_ms)
        if assignment_id is not None:
            survivor_ids.append(assignment_id)
    return DeathOutcome(stopped, burial_id, tuple(survivor_ids), savings_id, tuple(no_burial))


@dataclass(frozen=True, slots=True)
class BurialClaim:
    """A claim for the budget's burial payment by the person who arranged the burial,
    with the death as population records it (``sources``: the reads)."""

    claimant_iin: str
    deceased_iin: str
    death_date: dt.date
    sources: tuple[SourceRead, ...]


def decide_burial_claim(conn: sqlite3.Connection, claim: BurialClaim, *, today: dt.date,
                        now_ms: int) -> str:
    """The budget's burial payment to the claimant, when the deceased received a pension
    or a state social benefit on the death date (pension's own records) and none was
    decided for this death; payable in the month of the claim or of the death, whichever
    is later. Refused, nothing written: ``NotAllowed`` (nothing due), ``AlreadyRecorded``
    (decided already: on the death's registration or by an earlier claim)."""
    if conn.execute("SELECT 1 FROM benefits WHERE kind = ? AND subject_iin = ?",
                    (BenefitKind.BURIAL_BENEFIT.value, claim.deceased_iin)).fetchone():
        raise AlreadyRecorded("a burial payment was already decided for this death")
    received = store.received_on(conn, claim.deceased_iin, claim.death_date)
    if not received:
        raise NotAllowed("no burial payment due: the deceased received no pension or state"
                         " social benefit on the death date")
    amount = calculation.burial_benefit(claim.death_date, calculation.FUNERAL_ARRANGER,
                                        "; ".join(received))
    basis = (f"claim by the person who arranged the burial, {today.isoformat()}; population"
             f" GetPerson: died on {claim.death_date.isoformat()}")
    benefit_id = store.insert_benefit(conn, BenefitDecision(
        BenefitKind.BURIAL_BENEFIT, claim.claimant_iin, claim.deceased_iin, amount.amount,
        Frequency.ONE_OFF, claim.death_date, claim.death_date, basis, amount.items,
        claim.sources, (Payment(Month.of(max(claim.death_date, today)), amount.amount),),
    ), today=today, now_ms=now_ms)
    if benefit_id is None:  # the unique index: decided since the check above
        raise AlreadyRecorded("a burial payment was already decided for this death")
    return benefit_id


def decide_orphan(conn: sqlite3.Connection, facts: DeathFacts, child: Survivor, *,
                  today: dt.date, now_ms: int) -> str | None:
    """The orphan's pension to a child both of whose parents are deceased, once: none
    when the child has an active orphan's pension already (the parents' deaths can arrive
    in either order). It replaces the child's active survivor pension for the other
    parent's death from its first month (stopped, its scheduled payments from that month
    stopped; a month already paid is not paid again), and its basis says so."""
    existing = store.active_survivor_pensions(conn, child.iin)
    if any(orphan for _, orphan in existing):
        return None
    replaced = [assignment_id for assignment_id, _ in existing]
    pension = orphan_pension_decision(facts, child, today=today, replaces=replaced)
    paid = store.paid_months(conn, replaced)
    pension = replace(pension, payments=tuple(p for p in pension.payments
                                              if p.month not in paid))
    assignment_id = store.insert_pension(conn, pension, today=today, now_ms=now_ms)
    if assignment_id is None:
        return None
    first = orphan_first_month(child, today)
    for old in replaced:
        store.replace_survivor_pension(
            conn, old, first, f"replaced by the orphan's pension {assignment_id}: both"
            " parents deceased")
    return assignment_id


def orphan_first_month(child: Survivor, today: dt.date) -> Month:
    """An orphan's pension is paid from the month of the later death (the month the
    earlier survivor pension is replaced from), or this month when decided later."""
    assert child.orphaned_on is not None
    return max(Month.of(child.orphaned_on), Month.of(today))


def orphan_pension_decision(facts: DeathFacts, child: Survivor, *, today: dt.date,
                            replaces: list[str]) -> PensionDecision:
    """The child's orphan's pension, ``SCHEDULE.horizon_months`` ahead at most, ending
    with the month of the day before the 18th birthday."""
    assert child.orphaned_on is not None
    result = calculation.orphan_pension(facts.death_date, child.other_died_on,
                                        child.orphaned_on, child.birth_date, child.studies)
    first = orphan_first_month(child, today)
    count = min(rules.SCHEDULE.horizon_months,
                calculation.months_between(first, Month.of(result.ends_on)))
    other = child.other_died_on.isoformat() if child.other_died_on else "(date not given)"
    basis = (f"loss of both parents: {death_basis(facts.act_id)}, died on"
             f" {facts.death_date.isoformat()}; the other parent died on {other};"
             f" due until {result.ends_on.isoformat()}")
    if replaces:
        basis += f"; replaces survivor pension {', '.join(replaces)} from {first}"
    return PensionDecision(
        child.iin, PensionKind.SURVIVOR, max(child.orphaned_on, child.birth_date), basis,
        result.calculation, child.sources,
        calculation.indexed_payments(first, count, calculation.orphan_amount),
        ends_on=result.ends_on, breadwinner_iin=facts.iin,
    )


def death_basis(act_id: str) -> str:
    return f"population DeathRegistered, act {act_id}" if act_id else (
        "population DeathRegistered")


def survivor_pension_decision(facts: DeathFacts, child: Survivor, *, today: dt.date
                              ) -> PensionDecision:
    """The child's survivor pension. Payments start the month after the death (the
    deceased's own payments run to the death month), or this month when decided later,
    and end with the month of ``ends_on``; at most ``SCHEDULE.horizon_months`` ahead."""
    dependants = family_dependants(facts)
    result = calculation.survivor_pension(dependants, facts.death_date, child.birth_date,
                                          child.studies)
    first = max(Month.of(facts.death_date).plus(1), Month.of(today))
    count = min(rules.SCHEDULE.horizon_months,
                calculation.months_between(first, Month.of(result.ends_on)))
    basis = (f"loss of the breadwinner: {death_basis(facts.act_id)}, died on"
             f" {facts.death_date.isoformat()}; due until {result.ends_on.isoformat()}")
    return PensionDecision(
        child.iin, PensionKind.SURVIVOR, max(facts.death_date, child.birth_date), basis,
        result.calculation, child.sources,
        calculation.indexed_payments(
            first, count, lambda month: calculation.survivor_amount(dependants, month)),
        ends_on=result.ends_on, breadwinner_iin=facts.iin,
    )


def family_dependants(facts: DeathFacts) -> int:
    """The children sharing the family's amount: the orphans are paid their own."""
    return sum(1 for child in facts.survivors if child.orphaned_on is None)


def decide_disability(conn: sqlite3.Connection, facts: DisabilityFacts, *, today: dt.date,
                      now_ms: int) -> DisabilityOutcome:
    """The monthly disability benefit by group and, for a child with a living parent,
    the carer's benefit to that parent; each once per conclusion. A conclusion not seen
    before supersedes the subject's benefits of both kinds from earlier conclusions (a
    child's earlier carer's benefit ends even when no parent is due a new one)."""
    amount = calculation.disability_benefit(facts.group, facts.from_date, facts.born,
                                            facts.since_childhood)
    basis = disability_basis(facts.conclusion_id)
    benefit_id = store.insert_benefit(conn, BenefitDecision(
        BenefitKind.DISABILITY_BENEFIT, facts.iin, facts.iin, amount.amount, Frequency.MONTHLY,
        facts.from_date, facts.to_date, basis, amount.items, facts.sources,
        monthly_until(facts.from_date, facts.to_date, lambda month: calculation.
                      disability_amount(facts.group, facts.born, month,
                                        facts.since_childhood)),
    ), today=today, now_ms=now_ms)
    carer_id = None
    if facts.carer is not None:
        carer = facts.carer
        due = calculation.carer_of_disabled_child(carer.relation, facts.from_date,
                                                  facts.to_date, carer.child_born)
        carer_id = store.insert_benefit(conn, BenefitDecision(
            BenefitKind.CARER_OF_DISABLED_CHILD, carer.parent_iin, facts.iin,
            due.amount.amount, Frequency.MONTHLY, facts.from_date, due.ends_on, basis,
            due.amount.items, carer.sources,
            monthly_until(facts.from_date, due.ends_on, calculation.carer_amount),
        ), today=today, now_ms=now_ms)
    if benefit_id is not None or carer_id is not None:
        for kind in sorted(rules.ONCE_PER_CONCLUSION, key=lambda k: k.value):
            store.supersede_benefits(conn, kind, facts.iin, facts.from_date, basis)
    return DisabilityOutcome(benefit_id, carer_id)


def monthly_until(from_date: dt.date, last_day: dt.date | None,
                  amount_of: Callable[[Month], int]) -> tuple[Payment, ...]:
    """Monthly payments from ``from_date``'s month to ``last_day``'s (None: open-ended),
    at most ``SCHEDULE.horizon_months``, each of the amount due for its month."""
    first = Month.of(from_date)
    count = rules.SCHEDULE.horizon_months
    if last_day is not None:
        count = min(count, calculation.months_between(first, Month.of(last_day)))
    return calculation.indexed_payments(first, count, amount_of)


def disability_basis(conclusion_id: str) -> str:
    """The basis text of a disability benefit: unique per conclusion (the schema's index)."""
    return f"health DisabilityEstablished, conclusion {conclusion_id}"


def age_pension_decision(conn: sqlite3.Connection, facts: RetirementFacts, *,
                         today: dt.date) -> PensionDecision:
    """The age pension from the person's employment periods, contributions and savings."""
    reached = facts.reached.reached_on
    reach_month = Month.of(reached)
    window = solidarity.best_income_window(
        store.monthly_incomes(
            conn, facts.iin, Month.of(rules.PENSION_INCOME.earliest), reach_month.plus(-1)
        ),
        reach_month,
    )
    periods = store.employment_of(conn, facts.iin)
    inputs = calculation.PensionInputs(
        female=facts.female,
        reached_age_on=reached,
        retirement_age_months=facts.reached.age_months,
        calculated_on=max(reached, today),
        employment=tuple((p.started_on, p.ended_on) for p in periods),
        children_birth_dates=facts.children_birth_dates,
        monthly_incomes=window.incomes,
        income_window=window.describe(),
        savings_balance=store.savings_of(conn, facts.iin),
        retirement_age_source=facts.reached.source,
    )
    result = calculation.age_pension(inputs)
    basis = (f"retirement age {result.retirement_age} reached on {reached.isoformat()}"
             f" (rule table RETIREMENT_AGE {facts.reached.rule_year}: {facts.reached.source});"
             " found on"
             f" {facts.as_of.isoformat()}")
    # Each month at the values of its year (the base part at that year's share and PM,
    # the solidarity part raised to that year's minimum pension), as the recalculation
    # prices it; a late assignment pays from this month on.
    parts = age_recalculation.rules_of(result, facts.female, inputs.calculated_on)
    payments = calculation.indexed_payments(
        max(reach_month, Month.of(today)), rules.SCHEDULE.horizon_months,
        lambda month: age_recalculation.monthly_amount(parts, month))
    return PensionDecision(
        facts.iin, PensionKind.AGE, reached, basis, result, facts.sources, payments
    )


def decide_age_pension(conn: sqlite3.Connection, facts: RetirementFacts, *, today: dt.date,
                       now_ms: int) -> str | None:
    """Write the age pension unless the person has one already; the new assignment id."""
    exists = conn.execute(
        "SELECT 1 FROM pension_assignments WHERE iin = ? AND kind = 'age'", (facts.iin,)
    ).fetchone()
    if exists is not None:
        return None
    decision = age_pension_decision(conn, facts, today=today)
    return store.insert_pension(conn, decision, today=today, now_ms=now_ms)
