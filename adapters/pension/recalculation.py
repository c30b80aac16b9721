"""Recalculating decisions made under a wrong or changed rule (pure, no I/O).

A decision's payments are never changed silently. For a benefit or pension still due,
the amounts the rules in force give for each month (``Entitlement``) are compared with
its payment schedule (``recalculate``):

- the payments already made stay as they are: every month before the change month (the
  month of the run's ``as_of``) and any month marked paid;
- the unpaid schedule from the change month on is replaced by the months and amounts
  due now (a child-care allowance decided for 12 months gains the months to 1.5);
- a month already paid below what was due, or due and never scheduled, gets its
  difference as arrears, a supplementary payment recorded with the decision (arrears
  recorded by an earlier recalculation count as paid); a month paid above what is due
  now is not claimed back (system choice: the overpayment was the agency's error);
- nothing differs: no decision (``None``), so a second run changes nothing.

The kind-specific parts (``child_care``, ``indexed``) say which months are due, at
which amounts and by which rule table rows (with their sources).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from zhol.adapters.pension import calculation, childcare, rules
from zhol.adapters.pension.model import CalcItem, Month, Payment, PaymentStatus


@dataclass(frozen=True, slots=True)
class RuleRef:
    """A rule table row the new amounts rest on; ``in_force_from`` None for a rule that
    is not a dated row (the yearly indexation)."""

    table: str
    in_force_from: dt.date | None
    source: str


@dataclass(frozen=True, slots=True)
class Entitlement:
    """What is due by the rules in force: each month's amount (the months of the whole
    period known, past ones included), the last day due, the rule rows, the reason and
    the new calculation's items."""

    due: Mapping[Month, int]
    ends_on: dt.date | None
    rules: tuple[RuleRef, ...]
    reason: str
    items: tuple[CalcItem, ...] = ()


@dataclass(frozen=True, slots=True)
class Arrears:
    month: Month
    due: int
    paid: int  # paid, plus arrears recorded for the month by earlier recalculations
    amount: int  # due - paid, above zero


@dataclass(frozen=True, slots=True)
class Recalculation:
    change_from: Month
    old_amount: int  # the old schedule's amount for the first new month (0: none)
    new_amount: int
    old_ends_on: dt.date | None
    new_ends_on: dt.date | None
    replaced: tuple[Payment, ...]  # the unpaid payments the new schedule replaces
    schedule: tuple[Payment, ...]  # the new unpaid schedule from change_from
    arrears: tuple[Arrears, ...]
    rules: tuple[RuleRef, ...]
    reason: str

    @property
    def arrears_total(self) -> int:
        return sum(a.amount for a in self.arrears)


def _is_paid(payment: Payment, change_from: Month) -> bool:
    if payment.status is PaymentStatus.STOPPED:
        return False
    return payment.status is PaymentStatus.PAID or payment.month < change_from


def recalculate(
    schedule: Sequence[Payment],
    entitlement: Entitlement,
    change_from: Month,
    *,
    old_ends_on: dt.date | None,
    recorded_arrears: Mapping[Month, int] | None = None,
) -> Recalculation | None:
    """The recalculation of one decision whose ``schedule`` is its payments (every
    status) and ``entitlement`` what the rules in force give; None when they agree."""
    recorded = recorded_arrears or {}
    paid = {p.month: p.amount for p in schedule if _is_paid(p, change_from)}
    stopped = {p.month for p in schedule if p.status is PaymentStatus.STOPPED}
    arrears = []
    for month in sorted(entitlement.due):
        if month in stopped or not (month < change_from or month in paid):
            continue
        already = paid.get(month, 0) + recorded.get(month, 0)
        due = entitlement.due[month]
        if due > already:
            arrears.append(Arrears(month, due, already, due - already))
    replaced = tuple(p for p in schedule if p.month >= change_from
                     and p.status is PaymentStatus.SCHEDULED)
    new = tuple(Payment(m, entitlement.due[m]) for m in sorted(entitlement.due)
                if m >= change_from and m not in paid and m not in stopped)
    if not arrears and [(p.month, p.amount) for p in replaced] == [
            (p.month, p.amount) for p in new]:
        return None
    first = new[0].month if new else change_from
    old = {p.month: p.amount for p in schedule if p.status is not PaymentStatus.STOPPED}
    return Recalculation(
        change_from, old.get(first, 0), entitlement.due.get(first, 0), old_ends_on,
        entitlement.ends_on, replaced, new, tuple(arrears), entitlement.rules,
        entitlement.reason,
    )


def still_due(entitlement: Entitlement, as_of: dt.date) -> bool:
    """Recalculated only while due on ``as_of`` (a child-care allowance: the child is
    under 1.5); an ended benefit is left as it is (system choice, as issue 14 asks)."""
    return entitlement.ends_on is None or entitlement.ends_on >= as_of


# -- what is due, by kind ----------------------------------------------------------------


def _ref(table: str, row: rules.DatedRow[Any]) -> RuleRef:
    return RuleRef(table, row.start, row.source)


INDEXATION = RuleRef("INDEXED_YEARLY", None, rules.INDEXED_YEARLY)


def child_care(birth_order: int, birth_date: dt.date,
               contributions: Iterable[childcare.ContributionMonth],
               change_from: Month) -> Entitlement:
    """The child-care allowance by the rules in force: the period (18 months for a
    child under one on 1 January 2023) and each month's amount at the MCI and minimum
    wage of its year, from the mother's contributions as pension holds them."""
    care = childcare.child_care(birth_order, birth_date, contributions)
    under_one_until = calculation.birthday(birth_date, 1) - dt.timedelta(days=1)
    refs = (
        _ref("CHILD_CARE_PERIOD", childcare.CHILD_CARE_PERIOD.row(under_one_until)),
        _ref("CHILD_CARE_AMOUNT", childcare.CHILD_CARE_AMOUNT.row(
            max(change_from, Month.of(birth_date)).first_day)),
        _ref("STATE_BENEFIT", childcare.STATE_BENEFIT.row(change_from.first_day)),
    )
    return Entitlement(
        {p.month: p.amount for p in care.payments}, care.ends_on, refs,
        f"child-care allowance ({care.regime}) by the rules in force: {len(care.payments)}"
        " monthly payments from the birth month, each at the MCI and minimum wage of the"
        " year paid",
        care.items,
    )


def indexed(months: Iterable[Month], amount_of: Callable[[Month], int],
            refs: tuple[RuleRef, ...], reason: str, ends_on: dt.date | None,
            items: tuple[CalcItem, ...] = ()) -> Entitlement:
    """A benefit whose months stay those scheduled, each at the amount the rules in
    force give for it (the sizes since 1 July 2023, the PM or MCI of the year paid)."""
    return Entitlement({m: amount_of(m) for m in months}, ends_on, (*refs, INDEXATION),
                       reason, items)


# -- a burial decided under the earlier rule ---------------------------------------------


def old_burial(items: Iterable[CalcItem]) -> bool:
    """A burial benefit of the earlier rule (52 MCI from the budget on every death, to
    the spouse or the eldest adult child): its calculation names no ``deceased_received``
    line, which today's rule (``BURIAL_BUDGET``) writes on every budget payment."""
    return all(item.name != "deceased_received" for item in items)


def burial_savings(death_date: dt.date, relation: str, balance: int, old_amount: int,
                   month: Month) -> tuple[calculation.Amount, Recalculation]:
    """The payment from the deceased's pension savings an old burial decision lacks (the
    death handler's calculation: ``BURIAL_SAVINGS`` of the death date, at most the
    ``balance``, above zero), paid in ``month``. The budget payment already made
    (``old_amount``) is kept: not claimed back (system choice, as for every overpayment)."""
    amount = calculation.burial_savings_payment(death_date, relation, balance)
    savings = rules.BURIAL_SAVINGS.row(death_date)
    budget = rules.BURIAL_BUDGET.row(death_date)
    refs = (_ref("BURIAL_SAVINGS", savings), _ref("BURIAL_BUDGET", budget),
            RuleRef("BURIAL", None, rules.BURIAL_RECIPIENT_SOURCE))
    reason = (
        "burial decided under the earlier rule (52 MCI from the budget on every death):"
        f" the payment from the deceased's pension savings decided now, {amount.amount} KZT"
        f" ({savings.value} MCI of the death date's MCI, at most the balance {balance});"
        f" the budget payment of {old_amount} KZT already made is kept (not claimed back)")
    return amount, Recalculation(
        month, 0, amount.amount, death_date, death_date, (), (Payment(month, amount.amount),),
        (), refs, reason)
