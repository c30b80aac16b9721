"""The employer's mandatory pension contribution (OPVR, Social Code): a rule table by year
and the amount an employer owes for one worker and month (pure, no I/O).

Paid from the employer's own funds for workers born on or after 1 January 1975, as a
share of the worker's monthly income, the base at least 1 and at most 50 minimum wages:
1.5% in 2024, 2.5% in 2025, 3.5% in 2026, 4.5% in 2027, 5% from 2028; none before 2024.
It goes to a conditional pension account, not to the worker's own savings, so it does
not add to ``pension_savings`` (the accumulative part).

Not checked: the other exemptions (workers of retirement age, with a permanent group 1
or 2 disability, military personnel): pension does not hold disability or service
status, and nobody born in 1975 or later reaches retirement age before 2036.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from zhol.adapters.pension.rules import MINIMUM_WAGE, YearTable, _sourced_by_year, tenge

BORN_FROM = dt.date(1975, 1, 1)  # workers born before this day are exempt


@dataclass(frozen=True, slots=True)
class EmployerPensionRule:
    rate: Decimal  # of the worker's monthly income
    base_min_mzp: int  # the income counted is at least this many minimum wages
    base_max_mzp: int  # and at most this many


_NONE = "no employer pension contribution before 1 January 2024 (Social Code, in force 1 July 2023)"
_PATH = ("Social Code, from 1 January 2024: 1.5% (2024), 2.5% (2025), 3.5% (2026), 4.5% (2027),"
         " 5% (2028) of the income of workers born on or after 1 January 1975, the base between"
         " 1 and 50 minimum wages (arbaudit.kz, mandatory employer pension contribution;"
         " zakonkz.com citing the UAPF, 2025; lada.kz 146141, 2025-11-21)")

EMPLOYER_PENSION: YearTable[EmployerPensionRule] = _sourced_by_year("employer pension", {
    2010: (EmployerPensionRule(Decimal(0), 1, 50), _NONE),
    2024: (EmployerPensionRule(Decimal("0.015"), 1, 50), _PATH),
    2025: (EmployerPensionRule(Decimal("0.025"), 1, 50), _PATH),
    2026: (EmployerPensionRule(Decimal("0.035"), 1, 50), _PATH),
    2027: (EmployerPensionRule(Decimal("0.045"), 1, 50), _PATH),
    2028: (EmployerPensionRule(Decimal("0.05"), 1, 50), _PATH),
})


def employer_pension_amount(income: int, year: int, born: dt.date) -> int:
    """The employer's pension contribution due on ``income`` in a month of ``year`` for a
    worker born on ``born`` (0 for a worker born before 1975 or a year without it)."""
    rule = EMPLOYER_PENSION.at(year)
    if born < BORN_FROM or rule.rate == 0:
        return 0
    mzp = MINIMUM_WAGE.of_year(year)  # bounds "of the financial year"
    base = min(max(income, rule.base_min_mzp * mzp), rule.base_max_mzp * mzp)
    return tenge(base * rule.rate)
