"""Synthetic data for the pension system, deterministic for a given seed and date.

SEEDING ONLY, NOT A RUNTIME READ. To give the citizens of a seeded population registry
plausible careers, the seed opens that registry's SQLite file *read-only* and reads the
IINs and death dates of its persons, nothing else (a birth date and sex come from the
IIN itself, which encodes them). Nothing of the person is stored except the IIN: the
pension database holds employers, employment periods, monthly contributions, pension
savings and the age pensions of those who retired before the seed date. At run time the
pension system reads population only through the bus.

What is generated, as of ``as_of`` (default: today):

- employers: one per 40 persons (at least 20), each with a valid BIN, a title and the
  region and district it is registered in, drawn from the population seed's districts
  weighted by residents as that seed places homes (``reference.weighted_places``), with
  a random stream of its own so the rest of the seed is the same as without places;
- each adult's career from age 18-24: periods of 1 to 12 years with different employers
  and gaps of up to two years, until death, retirement or ``as_of`` (where four in five
  of those of working age are still employed: the last period is open);
- a personal income level (log-normal around the national average wage of each year);
- monthly contributions (pension, social and the employer's pension contribution, by the
  rate tables) for every month of the ``CONTRIBUTION_MONTHS`` before the month of
  ``as_of`` that an employment period covers;
- pension savings: the pension contributions of every employed year since 1998 at the
  person's income level, with a flat 25% investment income;
- an age pension, calculated by the same rules as at run time (``calculation``), for
  every living person who reached retirement age before the first day of the month of
  ``as_of``; those who reach it later (this month included) are left to the retirement
  run. Seeded pensions list no sources (they predate the bus) and say so in their basis.
  Their last three months of payments are paid, nine more scheduled.

The bulk load is one transaction with the journal off; indexes are built afterwards
and the file switches to WAL for serving.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from zhol.adapters.pension import calculation, rules, schema
from zhol.adapters.pension.employer_contribution import employer_pension_amount
from zhol.adapters.pension.model import Month, PaymentStatus, make_bin
from zhol.adapters.population import reference
from zhol.core.errors import ZholError
from zhol.core.iin import Iin

CONTRIBUTION_MONTHS = 36
PERSONS_PER_EMPLOYER = 40
MIN_EMPLOYERS = 20
EMPLOYED_SHARE = 0.8
NEVER_WORKED_SHARE = 0.05
INVESTMENT_INCOME = 1.25
PLACES_STREAM = 0x504C4143  # added to the seed for the employers' places ("PLAC")
SAVINGS_SINCE = 1998
LEGACY_BASIS = ("legacy assignment made before the bus (synthetic seed data): age reached "
                "on {reached}; no sources were read over the bus")

_WORDS = (
    "Altyn", "Samruk", "Dala", "Kazyna", "Baiterek", "Steppe", "Tengri", "Aksu", "Saryarka",
    "Zhetysu", "Kokshe", "Irtysh", "Caspian", "Orda", "Nomad", "Turan", "Ulytau", "Kyran",
)
_TRADES = (
    "Construction", "Logistics", "Trade", "Energy", "Foods", "Mining", "Telecom", "Textiles",
    "Services", "Agro", "Medical Centre", "Engineering", "Transport", "Finance", "Software",
)
_FORMS = ("LLP", "JSC", "LLP", "LLP", "State Enterprise")


def average_wage(year: int) -> float:
    """The national average monthly wage of a year, tenge (approximate, seed only)."""
    if year >= 2026:
        return 450_000.0
    if year == 2025:
        return 420_000.0
    return 390_000.0 * 0.87 ** (2024 - year)


@dataclass(frozen=True, slots=True)
class SeedReport:
    persons_read: int
    employers: int
    employment_periods: int
    contributions: int
    savings_accounts: int
    pensions: int
    payments: int
    seconds: float


def seed_database(
    path: Path,
    population_db: Path,
    *,
    as_of: dt.date,
    seed: int = 1,
) -> SeedReport:
    """Create a new pension database at ``path`` for the persons of ``population_db``."""
    if path.exists():
        raise FileExistsError(f"{path} already exists")
    if not population_db.is_file():
        raise FileNotFoundError(f"no population database at {population_db}")
    started = time.perf_counter()
    persons = _read_population(population_db)
    world = _World(random.Random(seed), as_of, len(persons),
                   places=random.Random(seed + PLACES_STREAM))
    for iin, death in persons:
        world.person(iin, death)
    try:
        _load(path, world)
    except BaseException:
        for leftover in (path, path.with_name(path.name + "-wal"),
                         path.with_name(path.name + "-shm")):
            leftover.unlink(missing_ok=True)
        raise
    return SeedReport(
        persons_read=len(persons),
        employers=len(world.employers),
        employment_periods=len(world.periods),
        contributions=len(world.contributions),
        savings_accounts=len(world.savings),
        pensions=len(world.pensions),
        payments=len(world.payments),
        seconds=time.perf_counter() - started,
    )


def _read_population(population_db: Path) -> list[tuple[str, dt.date | None]]:
    """IINs and death dates, read-only (seeding only; see the module docstring)."""
    uri = f"{population_db.resolve().as_uri()}?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    try:
        rows = conn.execute("SELECT iin, death_date FROM persons ORDER BY iin").fetchall()
    finally:
        conn.close()
    return [(iin, dt.date.fromisoformat(death) if death else None) for iin, death in rows]


def _load(path: Path, world: _World) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA temp_store = MEMORY")
        schema.create_tables(conn)
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO employers (bin, title, registered_on, region, district)"
            " VALUES (?, ?, ?, ?, ?)",
            world.employers,
        )
        conn.executemany(
            "INSERT INTO employment_periods (iin, employer_bin, started_on, ended_on)"
            " VALUES (?, ?, ?, ?)",
            world.periods,
        )
        world.contributions.sort()
        conn.executemany(
            "INSERT INTO contributions (iin, month, employer_bin, income, pension_amount,"
            " social_amount, recorded_on, employer_pension_amount)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            world.contributions,
        )
        conn.executemany("INSERT INTO pension_savings VALUES (?, ?, ?)", world.savings)
        conn.executemany(
            "INSERT INTO pension_assignments (assignment_id, iin, kind, monthly_amount,"
            " effective_from, assigned_on, status, stopped_on, stop_reason, basis, calculation)"
            " VALUES (?, ?, 'age', ?, ?, ?, 'active', NULL, '', ?, ?)",
            world.pensions,
        )
        conn.executemany(
            "INSERT INTO payments (assignment_id, benefit_id, month, amount, status)"
            " VALUES (?, NULL, ?, ?, ?)",
            world.payments,
        )
        schema.create_indexes(conn)
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("ANALYZE")
    finally:
        conn.close()


class _World:
    """Rows for the tables, built in memory as plain tuples."""

    def __init__(self, rng: random.Random, as_of: dt.date, persons: int, *,
                 places: random.Random) -> None:
        self.rng = rng
        self._place_rng = places
        self.as_of = as_of
        self.today = as_of.isoformat()
        self.this_month = Month.of(as_of)
        self.window = [self.this_month.plus(-i) for i in range(CONTRIBUTION_MONTHS, 0, -1)]
        self.window_days = [(str(m), m.year, m.first_day) for m in self.window]
        self.employers: list[tuple[str, str, str, str, str]] = []
        self.periods: list[tuple[str, str, str, str | None]] = []
        self.contributions: list[tuple[str, str, str, int, int, int, str, int]] = []
        self.savings: list[tuple[str, int, str]] = []
        self.pensions: list[tuple[str, str, int, str, str, str, str]] = []
        self.payments: list[tuple[str, str, int, str]] = []
        self._rates: dict[tuple[int, int], rules.ExpectedContributions] = {}
        self._make_employers(max(MIN_EMPLOYERS, persons // PERSONS_PER_EMPLOYER))

    def _make_employers(self, count: int) -> None:
        rng = self.rng
        places = reference.weighted_places()
        serial = 0
        while len(self.employers) < count:
            serial += 1
            registered = dt.date(1991 + rng.randrange(9), 1 + rng.randrange(12), 1)
            made = make_bin(registered, serial)
            if made is None:
                continue
            title = f"{rng.choice(_WORDS)} {rng.choice(_TRADES)} {rng.choice(_FORMS)}"
            region, district, _locality = places[self._place_rng.randrange(len(places))]
            self.employers.append((made.value, title, registered.isoformat(), region, district))

    def _contributions(self, income: int, year: int) -> rules.ExpectedContributions:
        key = (income, year)
        found = self._rates.get(key)
        if found is None:
            found = self._rates[key] = rules.expected_contributions(income, year)
        return found

    def person(self, iin_text: str, death: dt.date | None) -> None:
        rng = self.rng
        try:
            iin = Iin.parse(iin_text)
        except ZholError:
            return
        birth = iin.birth_date
        female = iin.is_female
        retirement = rules.retirement_date(birth, female)
        adult = rules.add_months(birth, 12 * (18 + rng.randrange(7)) + rng.randrange(12))
        periods: list[tuple[str, dt.date, dt.date | None]] = []
        factor = min(4.0, max(0.3, math.exp(rng.gauss(0.0, 0.45))))
        balance = 0
        worked = rng.random() >= NEVER_WORKED_SHARE
        if worked and adult < self.as_of and (death is None or adult < death):
            end = min(self.as_of, retirement.reached_on, death or self.as_of)
            working_now = end == self.as_of and rng.random() < EMPLOYED_SHARE
            periods = self._career(iin.value, adult, end, working_now)
        if periods:
            self._month_contributions(iin.value, birth, periods, factor)
            balance = self._savings(periods, factor)
            if balance:
                self.savings.append((iin.value, balance, self.today))
        alive = death is None or death > self.as_of
        # Pensions of those of age before this year were assigned before the bus; the
        # retirement run (`zhol scenario retirement`) assigns this year's, with their rule.
        if alive and retirement.reached_on < dt.date(self.this_month.year, 1, 1):
            self._legacy_pension(iin.value, female, retirement, periods, factor, balance)

    def _career(self, iin: str, start: dt.date, end: dt.date, open_end: bool
                ) -> list[tuple[str, dt.date, dt.date | None]]:
        rng = self.rng
        periods: list[tuple[str, dt.date, dt.date | None]] = []
        begin = start
        while begin < end:
            employer = self.employers[rng.randrange(len(self.employers))][0]
            stop = begin + dt.timedelta(days=365 + rng.randrange(11 * 365))
            if stop >= end:
                periods.append((employer, begin, None if open_end else end))
                break
            periods.append((employer, begin, stop))
            begin = stop + dt.timedelta(days=1 + rng.randrange(2 * 365))
        for employer, since, until in periods:
            self.periods.append(
                (iin, employer, since.isoformat(), until.isoformat() if until else None)
            )
        return periods

    def _month_contributions(
        self, iin: str, birth: dt.date, periods: list[tuple[str, dt.date, dt.date | None]],
        factor: float,
    ) -> None:
        window_start = self.window[0].first_day
        relevant = [p for p in periods if p[2] is None or p[2] >= window_start]
        if not relevant:
            return
        incomes: dict[int, int] = {}
        for text, year, first in self.window_days:
            for employer, since, until in relevant:
                if since <= first and (until is None or until >= first):
                    income = incomes.get(year)
                    if income is None:
                        income = incomes[year] = max(
                            rules.MINIMUM_WAGE.of_year(year),
                            int(round(average_wage(year) * factor, -2)),
                        )
                    due = self._contributions(income, year)
                    self.contributions.append((
                        iin, text, employer, income, due.pension_amount,
                        due.social_amount, self.today,
                        employer_pension_amount(income, year, birth),
                    ))
                    break

    def _savings(self, periods: list[tuple[str, dt.date, dt.date | None]], factor: float
                 ) -> int:
        total = 0.0
        for _employer, since, until in periods:
            last = until or self.as_of
            for year in range(max(since.year, SAVINGS_SINCE), last.year + 1):
                low = max(since, dt.date(year, 1, 1))
                high = min(last, dt.date(year, 12, 31))
                if high < low:
                    continue
                months = ((high - low).days + 1) / 30.44
                total += 0.10 * average_wage(year) * factor * months
        return int(total * INVESTMENT_INCOME)

    def _legacy_pension(
        self,
        iin: str,
        female: bool,
        retirement: rules.RetirementDate,
        periods: list[tuple[str, dt.date, dt.date | None]],
        factor: float,
        balance: int,
    ) -> None:
        reached = retirement.reached_on
        worked_until_retirement = any(
            until is None or until >= reached - dt.timedelta(days=365) for _, _, until in periods
        )
        income = int(round(average_wage(reached.year - 1) * factor, -2))
        inputs = calculation.PensionInputs(
            female=female,
            reached_age_on=reached,
            retirement_age_months=retirement.age_months,
            calculated_on=self.as_of,
            employment=tuple((since, until) for _, since, until in periods),
            children_birth_dates=(),
            monthly_incomes=(income,) * 36 if worked_until_retirement else (),
            savings_balance=balance,
        )
        result = calculation.age_pension(inputs)
        assignment_id = f"PA-{uuid.UUID(int=self.rng.getrandbits(128), version=4)}"
        self.pensions.append((
            assignment_id, iin, result.monthly_amount, reached.isoformat(), reached.isoformat(),
            LEGACY_BASIS.format(reached=reached.isoformat()), result.to_json(),
        ))
        for offset in range(-3, 9):
            status = PaymentStatus.PAID if offset < 0 else PaymentStatus.SCHEDULED
            self.payments.append(
                (assignment_id, str(self.this_month.plus(offset)), result.monthly_amount,
                 status.value)
            )
