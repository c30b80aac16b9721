"""Synthetic seed data for the health system, deterministic for a given seed.

Always: the clinic directory (``reference.clinic_directory``), health's own facts.

With a population database (``population_db``): attachments and state-paid insurance
periods for the synthetic citizens, so that the demo starts from a plausible state.
This is SYNTHETIC SEEDING, done once by the seed command, not a copy of anybody's
data at run time: the population file is opened read-only, and from it the seed
learns only which living persons exist (their IINs) and the district they are
registered in, to pick a clinic there. The health database receives the IIN and the
clinic id (plus periods derived from the IIN's own birth-date and sex digits); it
never stores a name, birth date, sex or address. At run time the adapter reads
population only over the bus.

- about 2% of living persons stay unattached (nobody chose a clinic yet);
- the others are attached to the clinic of their district with the most free places
  (``rules.choose_clinic``, the same rule as a move), on a day after their birth:
  children born since 2015 as newborns on their birth day, everybody else during an
  attachment campaign between 2015 and the end of 2024;
- state-paid periods: the age categories (``rules.AGE_CATEGORIES``) that end on or
  after 1 January 2020, when compulsory health insurance started, and age pensioners
  (``rules.SEED_PENSION_AGE``) from the day they reached that age.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zhol.adapters.health import reference, rules, schema
from zhol.core.iin import Iin

AS_OF = dt.date(2025, 1, 1)  # everything seeded happened before this day
INSURANCE_START = dt.date(2020, 1, 1)  # compulsory health insurance began
CAMPAIGN_FROM = dt.date(2015, 1, 1)
UNATTACHED_SHARE = 0.02
SEED_SOURCE = "seed (synthetic)"

_LIVING = """
    SELECT p.iin, a.region, a.district
    FROM persons AS p JOIN addresses AS a ON a.iin = p.iin AND a.valid_to IS NULL
    WHERE p.death_date IS NULL
    ORDER BY p.iin
"""


@dataclass(frozen=True, slots=True)
class SeedReport:
    clinics: int
    persons_read: int
    attachments: int
    insurance_periods: int
    unplaced: int  # registered in a district without a clinic (should stay 0)
    seconds: float


def seed_database(
    path: Path,
    population_db: Path | None = None,
    seed: int = 1,
    *,
    progress: Callable[[str], None] | None = None,
) -> SeedReport:
    """Create a new health database at ``path``; see the module docstring."""
    if path.exists():
        raise FileExistsError(f"{path} already exists")
    if population_db is not None and not population_db.is_file():
        raise FileNotFoundError(f"no population database at {population_db}")
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    clinics = reference.clinic_directory()
    attachments: list[tuple[str, str, str, str]] = []
    periods: list[tuple[str, str, str, str | None, str, str]] = []
    persons = unplaced = 0
    if population_db is not None:
        persons, unplaced = _plan(population_db, clinics, seed, attachments, periods)
        say(f"planned {len(attachments)} attachments for {persons} persons")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        _load(path, clinics, attachments, periods)
    except BaseException:
        for leftover in (path, path.with_name(path.name + "-wal"),
                         path.with_name(path.name + "-shm")):
            leftover.unlink(missing_ok=True)  # no half-seeded database left behind
        raise
    say("loaded")
    return SeedReport(
        clinics=len(clinics),
        persons_read=persons,
        attachments=len(attachments),
        insurance_periods=len(periods),
        unplaced=unplaced,
        seconds=time.perf_counter() - started,
    )


def _plan(
    population_db: Path,
    clinics: tuple,
    seed: int,
    attachments: list[tuple[str, str, str, str]],
    periods: list[tuple[str, str, str, str | None, str, str]],
) -> tuple[int, int]:
    """Fill ``attachments`` and ``periods``; returns (persons read, persons unplaced)."""
    rng = random.Random(seed)
    # (region, district) -> [[free places, clinic id], ...]
    places: dict[tuple[str, str], list[list]] = {}
    for clinic in clinics:
        places.setdefault((clinic.region, clinic.district), []).append(
            [clinic.capacity, clinic.clinic_id]
        )
    recorded = AS_OF.isoformat()
    newborns_from = CAMPAIGN_FROM.toordinal()
    campaign_span = AS_OF.toordinal() - newborns_from
    last_day = AS_OF.toordinal() - 1
    persons = unplaced = 0
    conn = sqlite3.connect(f"{population_db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        for iin_text, region, district in conn.execute(_LIVING):
            persons += 1
            iin = Iin(iin_text)
            birth = iin.birth_date
            _insurance(iin_text, birth, iin.is_female, recorded, periods)
            if rng.random() < UNATTACHED_SHARE:
                continue
            candidates = places.get((region, district))
            if not candidates:
                unplaced += 1
                continue
            best = candidates[0]
            for candidate in candidates[1:]:
                if (-candidate[0], candidate[1]) < (-best[0], best[1]):
                    best = candidate
            best[0] -= 1
            born = birth.toordinal()
            if born >= newborns_from:
                day, reason = born, "newborn"
            else:
                day = newborns_from + int(rng.random() * campaign_span)
                reason = "request"
            day = min(max(day, born), last_day)
            attachments.append(
                (iin_text, best[1], dt.date.fromordinal(day).isoformat(), reason)
            )
    finally:
        conn.close()
    return persons, unplaced


def _insurance(
    iin: str,
    birth: dt.date,
    female: bool,
    recorded: str,
    periods: list[tuple[str, str, str, str | None, str, str]],
) -> None:
    for category, first, last in rules.age_periods(birth):
        if last >= INSURANCE_START and first < AS_OF:
            periods.append(
                (iin, category, first.isoformat(), last.isoformat(), SEED_SOURCE, recorded)
            )
    retired = rules.add_years(birth, rules.SEED_PENSION_AGE[female])
    if retired < AS_OF:
        periods.append((iin, "pensioner", retired.isoformat(), None, SEED_SOURCE, recorded))


def _load(
    path: Path,
    clinics: tuple,
    attachments: list[tuple[str, str, str, str]],
    periods: list[tuple[str, str, str, str | None, str, str]],
) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA temp_store = MEMORY")
        schema.create_tables(conn)
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO clinics VALUES (?, ?, ?, ?, ?)",
            [(c.clinic_id, c.name, c.region, c.district, c.capacity) for c in clinics],
        )
        conn.executemany(
            "INSERT INTO attachments (iin, clinic_id, attached_on, reason, basis)"
            " VALUES (?, ?, ?, ?, 'registered_address')",
            attachments,
        )
        conn.executemany(
            "INSERT INTO insurance_periods (iin, category, social_category, valid_from,"
            " valid_to, source, recorded_on) VALUES (?, 'state_paid', ?, ?, ?, ?, ?)",
            periods,
        )
        schema.create_indexes(conn)
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("ANALYZE")
    finally:
        conn.close()
