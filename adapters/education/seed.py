"""Synthetic data for the education system, deterministic for a given seed.

Every district of the population seed's reference list (``adapters.population.reference``)
gets kindergartens and schools. Given a population database (opened read-only, here
only: this is synthetic seeding, not a copy job), the children found in it also get a
plausible history as of ``AS_OF``:

- preschool children (under 6 on the last 1 September) stand in the kindergarten
  queue of the district they live in: most were queued as newborns a few days after
  birth, some on a parent's request later; the older ones are mostly placed in a
  kindergarten of that district (while it has room), the others wait;
- pupils (6 to 16 on the last 1 September) are enrolled in grade ``age - 5`` of a
  school of their district, since the 1 September they started that grade.

- young people (17 to 24 on ``as_of``), about two in five, study at a college or
  university of the region they live in: vocational (17-19), bachelor (18-22), master
  (23-24) or doctoral (a few of 24), full-time (four in five) or part-time, since the
  1 September of the year they started, still studying. Every region has a college and
  a university in its first district (its centre) and a second college in its second
  district. These draw from a random stream of their own, so the rest of the seed is
  the same as without them.

Only the IIN and education's own facts are written: the age is derived from the IIN,
the district decides which institution, neither is stored. Districts found in the
population's addresses but missing from the reference list are added too. The number
of institutions grows with the children of a district, so capacities stay plausible.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zhol.adapters.education import rules, schema
from zhol.adapters.population import reference
from zhol.core.errors import ZholError
from zhol.core.iin import Iin

AS_OF = dt.date(2025, 1, 1)  # the population seed's date: everything seeded is before it

MIN_KINDERGARTENS = 2
MIN_SCHOOLS = 2
CHILDREN_PER_KINDERGARTEN = 120  # plan a new kindergarten for so many preschool children
PUPILS_PER_SCHOOL = 900
STUDENT_AGES = (17, 24)  # completed years on as_of, both included
STUDYING_SHARE = 0.4
FULL_TIME_SHARE = 0.8
STUDIES_STREAM = 0x53545544  # added to the seed for colleges and studies ("STUD")
COLLEGE_NAMES: tuple[str, ...] = (
    "Higher College of Technology", "Polytechnic College", "Medical College",
    "College of Service and Tourism", "Agrarian and Technical College", "Pedagogical College",
)
UNIVERSITY_NAMES: tuple[str, ...] = (
    "State University", "Technical University", "University named after Al-Farabi",
    "Pedagogical University", "University of Economics and Law",
)

KINDERGARTEN_NAMES: tuple[str, ...] = (
    "Balapan", "Aigolek", "Baldyrgan", "Karlygash", "Bobek", "Kunshuak", "Erketai",
    "Akbota", "Alpamys", "Solnyshko", "Rodnichok", "Ainalayin", "Shugyla", "Zhuldyzai",
    "Kulynshak", "Teremok", "Altyn Dan", "Bulbul", "Nurai", "Aruzhan",
)
SCHOOL_PATRONS: tuple[str, ...] = (
    "Abai", "Ybyrai Altynsarin", "Mukhtar Auezov", "Shokan Ualikhanov", "Zhambyl",
    "Akhmet Baitursynuly", "Kanysh Satpayev", "Magzhan Zhumabayev", "Alikhan Bokeikhan",
    "Saken Seifullin", "Abylai Khan", "Al-Farabi", "Mirzhakyp Dulatuly", "Sabit Mukanov",
)
# Languages of instruction (ISO 639-1) with cumulative weights out of 100.
LANGUAGE_MIXES: tuple[tuple[int, str], ...] = (
    (45, "kk"), (85, "kk,ru"), (95, "ru"), (100, "kk,ru,en"),
)


@dataclass(frozen=True, slots=True)
class SeedReport:
    districts: int
    kindergartens: int
    schools: int
    queue_entries: int
    placed: int
    enrolments: int
    institutions: int
    studies: int
    seconds: float


@dataclass(frozen=True, slots=True)
class _Child:
    iin: str
    birth_date: dt.date
    place: tuple[str, str]  # (region, district), not stored


def seed_database(
    path: Path,
    population_db: Path | None = None,
    seed: int = 1,
    *,
    as_of: dt.date = AS_OF,
    progress: Callable[[str], None] | None = None,
) -> SeedReport:
    """Create a new education database at ``path``; read children from ``population_db``
    (read-only) when given."""
    if path.exists():
        raise FileExistsError(f"{path} already exists")
    if population_db is not None and not population_db.is_file():
        raise FileNotFoundError(f"no population database at {population_db}")
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    places: list[tuple[str, str]] = [
        (region, district)
        for region, (_weight, districts) in reference.REGIONS.items()
        for district, _locality in districts
    ]
    children: list[_Child] = []
    young: list[tuple[str, dt.date, str]] = []
    if population_db is not None:
        children = _read_children(population_db, as_of)
        young = _read_young(population_db, as_of)
        known = set(places)
        for child in children:
            if child.place not in known:
                known.add(child.place)
                places.append(child.place)
        say(f"read {len(children)} children from {population_db}")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        report = _load(path, places, children, random.Random(seed), as_of,
                       _Studies(places, young, random.Random(seed + STUDIES_STREAM), as_of))
    except BaseException:
        for leftover in (path, path.with_name(path.name + "-wal"),
                         path.with_name(path.name + "-shm")):
            leftover.unlink(missing_ok=True)  # no half-seeded database left behind
        raise
    say("education database written")
    return SeedReport(**report, seconds=time.perf_counter() - started)


def _read_children(population_db: Path, as_of: dt.date) -> list[_Child]:
    """Living persons under 17 on ``as_of`` with a registered district, in IIN order."""
    uri = f"{population_db.resolve().as_uri()}?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    try:
        rows = conn.execute(
            "SELECT p.iin, a.region, a.district FROM persons AS p"
            " JOIN addresses AS a ON a.iin = p.iin AND a.valid_to IS NULL"
            " WHERE p.death_date IS NULL AND a.district <> '' ORDER BY p.iin"
        ).fetchall()
    finally:
        conn.close()
    school_year = rules.school_year_start(as_of)
    oldest = rules.grade_ages(school_year.year, rules.GRADES.stop - 1).high
    children = []
    for iin_text, region, district in rows:
        try:
            born = Iin.parse(iin_text).birth_date
        except ZholError:
            continue
        if born >= as_of or rules.age_on(born, school_year) > oldest:
            continue
        children.append(_Child(iin_text, born, (region, district)))
    return children


def _read_young(population_db: Path, as_of: dt.date) -> list[tuple[str, dt.date, str]]:
    """Living persons of ``STUDENT_AGES`` on ``as_of``: (IIN, birth date, region), in IIN
    order (seeding only: the region picks a college or university, it is not stored)."""
    uri = f"{population_db.resolve().as_uri()}?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    try:
        rows = conn.execute(
            "SELECT p.iin, a.region FROM persons AS p"
            " JOIN addresses AS a ON a.iin = p.iin AND a.valid_to IS NULL"
            " WHERE p.death_date IS NULL AND a.region <> '' ORDER BY p.iin"
        ).fetchall()
    finally:
        conn.close()
    young = []
    low, high = STUDENT_AGES
    for iin_text, region in rows:
        try:
            born = Iin.parse(iin_text).birth_date
        except ZholError:
            continue
        if low <= rules.age_on(born, as_of) <= high:
            young.append((iin_text, born, region))
    return young


class _Studies:
    """Colleges, universities and studies: rows for ``institutions`` and ``studies``."""

    def __init__(self, places: list[tuple[str, str]], young: list[tuple[str, dt.date, str]],
                 rng: random.Random, as_of: dt.date) -> None:
        self.institutions: list[tuple[str, str, str, int]] = []
        self.studies: list[tuple[str, str, str, str, str]] = []
        by_region: dict[str, list[int]] = defaultdict(list)
        for district_id, (region, _district) in enumerate(places, start=1):
            by_region[region].append(district_id)
        mine: dict[tuple[str, str], list[str]] = defaultdict(list)
        for region, ids in by_region.items():
            plan = [("college", ids[0]), ("university", ids[0])]
            if len(ids) > 1:
                plan.append(("college", ids[1]))
            for kind, district_id in plan:
                prefix, names = (("COL", COLLEGE_NAMES) if kind == "college"
                                 else ("UNI", UNIVERSITY_NAMES))
                institution_id = f"{prefix}-{district_id:03d}-01"
                name = f"{region.split()[0]} {rng.choice(names)}"
                self.institutions.append((institution_id, name, kind, district_id))
                mine[(region, kind)].append(institution_id)
        # the last 1 September on or before as_of: the year's intake started then
        intake = dt.date(as_of.year if (as_of.month, as_of.day) >= (9, 1) else as_of.year - 1,
                         9, 1)
        for iin, born, region in young:
            if rng.random() >= STUDYING_SHARE:
                continue
            age = rules.age_on(born, intake)
            level, kind, first_age = _level_for(age, rng)
            there = mine.get((region, kind))
            if not there:
                continue
            started = dt.date(intake.year - max(0, age - first_age), 9, 1)
            form = "full_time" if rng.random() < FULL_TIME_SHARE else "part_time"
            self.studies.append((iin, rng.choice(there), level, form, started.isoformat()))


def _level_for(age: int, rng: random.Random) -> tuple[str, str, int]:
    """(level, kind of institution, the age the level starts at) for a student of ``age``
    on the last intake."""
    if age <= 17 or (age <= 19 and rng.random() < 0.4):
        return "vocational", "college", min(age, 16)
    if age <= 21 or (age == 22 and rng.random() < 0.5):
        return "bachelor", "university", 18
    if age >= 24 and rng.random() < 0.15:
        return "doctoral", "university", 24
    return "master", "university", 22


def _load(
    path: Path,
    places: list[tuple[str, str]],
    children: list[_Child],
    rng: random.Random,
    as_of: dt.date,
    higher: _Studies,
) -> dict[str, int]:
    school_year = rules.school_year_start(as_of)
    first_grade = rules.grade_ages(school_year.year, 1)
    preschool: dict[tuple[str, str], list[_Child]] = defaultdict(list)
    pupils: dict[tuple[str, str], list[tuple[_Child, int]]] = defaultdict(list)
    for child in children:
        age = rules.age_on(child.birth_date, school_year)
        if age < first_grade.low:
            preschool[child.place].append(child)
        else:
            grade = age - first_grade.low + 1
            if grade in rules.GRADES:
                pupils[child.place].append((child, grade))

    districts: list[tuple[int, str, str]] = []
    kindergartens: list[tuple[str, str, int, int, str]] = []
    schools: list[tuple[str, str, int, int, str]] = []
    entries: list[tuple] = []
    enrolments: list[tuple] = []
    placed = 0
    for district_id, place in enumerate(places, start=1):
        districts.append((district_id, *place))
        kids = preschool.get(place, [])
        count = max(MIN_KINDERGARTENS, math.ceil(len(kids) / CHILDREN_PER_KINDERGARTEN))
        district_kgs: list[list] = []
        for number in range(1, count + 1):
            kg_id = f"KG-{district_id:03d}-{number:02d}"
            name = (f"Kindergarten No. {rng.randint(1, 180)}"
                    f" \"{rng.choice(KINDERGARTEN_NAMES)}\"")
            capacity = 10 * rng.randint(8, 32)
            kindergartens.append((kg_id, name, district_id, capacity, _languages(rng)))
            district_kgs.append([kg_id, capacity])
        for child in kids:
            entry, took = _queue_entry(child, district_id, district_kgs, rng, as_of)
            entries.append(entry)
            placed += took
        kids_at_school = pupils.get(place, [])
        count = max(MIN_SCHOOLS, math.ceil(len(kids_at_school) / PUPILS_PER_SCHOOL))
        school_ids = []
        for number in range(1, count + 1):
            school_id = f"SCH-{district_id:03d}-{number:02d}"
            name = (f"Secondary school No. {rng.randint(1, 120)}"
                    f" named after {rng.choice(SCHOOL_PATRONS)}")
            capacity = 100 * rng.randint(12, 24)
            schools.append((school_id, name, district_id, capacity, _languages(rng)))
            school_ids.append(school_id)
        for index, (child, grade) in enumerate(kids_at_school):
            started = dt.date(school_year.year - grade + 1, school_year.month, school_year.day)
            enrolments.append((child.iin, school_ids[index % len(school_ids)], grade,
                               started.isoformat(), school_year.isoformat()))

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        schema.create_tables(conn)
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO districts VALUES (?, ?, ?)", districts)
        conn.executemany("INSERT INTO kindergartens VALUES (?, ?, ?, ?, ?)", kindergartens)
        conn.executemany("INSERT INTO schools VALUES (?, ?, ?, ?, ?)", schools)
        conn.executemany(
            "INSERT INTO institutions (institution_id, name, kind, district_id)"
            " VALUES (?, ?, ?, ?)",
            higher.institutions,
        )
        conn.executemany(
            "INSERT INTO studies (iin, institution_id, level, form, started_on, ended_on)"
            " VALUES (?, ?, ?, ?, ?, NULL)",
            higher.studies,
        )
        entries.sort(key=lambda row: (row[3], row[0]))  # ids follow seniority
        conn.executemany(
            "INSERT INTO queue_entries (iin, district_id, kindergarten_id, queued_on, status,"
            " reason, placed_in, status_changed_on, withdrawn_because)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            entries,
        )
        conn.executemany(
            "INSERT INTO school_enrolments (iin, school_id, grade, enrolled_on,"
            " school_year_start, status, ended_on) VALUES (?, ?, ?, ?, ?, 'active', NULL)",
            enrolments,
        )
        schema.create_indexes(conn)
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("ANALYZE")
    finally:
        conn.close()
    return {
        "districts": len(districts),
        "kindergartens": len(kindergartens),
        "schools": len(schools),
        "queue_entries": len(entries),
        "placed": placed,
        "enrolments": len(enrolments),
        "institutions": len(higher.institutions),
        "studies": len(higher.studies),
    }


def _queue_entry(
    child: _Child,
    district_id: int,
    kindergartens: list[list],
    rng: random.Random,
    as_of: dt.date,
) -> tuple[tuple, int]:
    """One queue row for a preschool child, and 1 when it took a kindergarten place."""
    last_day = as_of - dt.timedelta(days=1)
    born = child.birth_date
    if rng.random() < 0.85:
        reason = "newborn"
        queued_on = min(born + dt.timedelta(days=rng.randint(1, 25)), last_day)
    else:
        reason = "request"
        span = max(1, (last_day - born).days)
        queued_on = born + dt.timedelta(days=rng.randint(1, span))
    preferred = None
    if rng.random() < 0.3:
        preferred = rng.choice(kindergartens)[0]
    age = rules.age_on(born, as_of)
    if age >= 2 and rng.random() < min(0.9, 0.25 * age):
        free = [kg for kg in kindergartens if kg[1] > 0]
        if free:
            chosen = next((kg for kg in free if kg[0] == preferred), rng.choice(free))
            chosen[1] -= 1
            since = queued_on + dt.timedelta(days=rng.randint(365, 365 * max(1, age - 1)))
            since = min(since, last_day)
            return (child.iin, district_id, preferred, queued_on.isoformat(), "placed", reason,
                    chosen[0], since.isoformat()), 1
    return (child.iin, district_id, preferred, queued_on.isoformat(), "waiting", reason, None,
            queued_on.isoformat()), 0


def _languages(rng: random.Random) -> str:
    roll = rng.random() * 100
    for bound, languages in LANGUAGE_MIXES:
        if roll < bound:
            return languages
    return LANGUAGE_MIXES[-1][1]
