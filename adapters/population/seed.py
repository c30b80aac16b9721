"""Synthetic citizens for the population registry, deterministic for a given seed.

The generator builds households: a married couple (spouse links, a marriage act, one
shared address) and their children (linked to both parents both ways, the father's
surname in the child's form, a patronymic from the father's first name, a birth act,
the household address). Grown-up children marry into later households: a daughter
then takes her husband's surname (usually) and her parents' address is closed in her
address history. Some people live alone. Older people may have died, with a death act.
Everything seeded happened before ``AS_OF``.

The bulk load is one transaction of plain tuples through ``executemany`` with the
journal and fsync switched off; indexes are built afterwards, then the file switches
to WAL for serving. A million persons load in well under a minute.
"""

from __future__ import annotations

import bisect
import datetime as dt
import gc
import itertools
import operator
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zhol.adapters.population import reference, schema
from zhol.core.iin import make_iin

AS_OF = dt.date(2025, 1, 1)
FIRST_BIRTH_YEAR = 1940
LAST_ADULT_BIRTH_YEAR = 2003

_LAST_DAY = AS_OF.toordinal() - 1
_YEAR = 365.25
_MAX_GAP = int(8 * _YEAR)
_RUSSIAN_SHARE = 0.2
_KAZAKH_FORMS_FROM = dt.date(1996, 1, 1).toordinal()  # uly/kyzy patronymics get common
# Children per couple: 0..5 with cumulative weights 10, 30, 60, 82, 94, 100.
_CHILDREN_CUMULATIVE = (10, 30, 60, 82, 94, 100)


@dataclass(frozen=True, slots=True)
class SeedReport:
    persons: int
    addresses: int
    family_links: int
    civil_acts: int
    seconds: float


def seed_database(
    path: Path,
    count: int = 10_000,
    seed: int = 1,
    *,
    progress: Callable[[str], None] | None = None,
) -> SeedReport:
    """Create a new population database at ``path`` holding ``count`` synthetic persons."""
    if count < 0:
        raise ValueError("count must not be negative")
    if path.exists():
        raise FileExistsError(f"{path} already exists")
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    # Millions of small lists and tuples, none of them cyclic: the cyclic collector
    # would rescan the growing heap again and again (it doubles the time).
    collecting = gc.isenabled()
    gc.disable()
    try:
        census = _Census(seed)
        census.populate(count)
        say(f"generated {count} persons in {time.perf_counter() - started:.1f} s")
        try:
            _load(path, census, say)
        except BaseException:
            path.unlink(missing_ok=True)  # no half-seeded registry left behind
            raise
    finally:
        if collecting:
            gc.enable()
    seconds = time.perf_counter() - started
    return SeedReport(
        persons=len(census.persons),
        addresses=len(census.addresses),
        family_links=len(census.links),
        civil_acts=len(census.acts),
        seconds=seconds,
    )


def _load(path: Path, census: _Census, say: Callable[[str], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -1000000")
        conn.execute("PRAGMA temp_store = MEMORY")
        schema.create_tables(conn)
        conn.execute("BEGIN")
        # Insert in key order: rows append to the WITHOUT ROWID tree.
        census.persons.sort(key=operator.itemgetter(0))
        conn.executemany("INSERT INTO persons VALUES (?, ?, ?, ?, ?, ?, ?, ?)", census.persons)
        conn.executemany(
            "INSERT INTO addresses (iin, region, district, locality, street, building,"
            " apartment, registered_on, valid_to) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            census.addresses,
        )
        conn.executemany("INSERT INTO family_links VALUES (?, ?, ?)", census.links)
        conn.executemany("INSERT INTO civil_acts VALUES (?, ?, ?, ?, ?, ?)", census.acts)
        say("rows inserted")
        schema.create_indexes(conn)
        conn.execute("COMMIT")
        say("indexes built")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA analysis_limit = 1000")
        conn.execute("ANALYZE")
    finally:
        conn.close()


class _Census:
    """Rows for the four tables, built in memory as plain lists and tuples.

    Written for speed (a million persons): bound methods in locals, ``random()``
    scaled by hand instead of ``choice``/``randint``, dates as day ordinals with their
    ISO text cached.
    """

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        self.random = rng.random
        self.persons: list[list[str | None]] = []
        self.addresses: list[list[str | None]] = []
        self.links: list[tuple[str, str, str]] = []
        self.acts: list[tuple[str, str, str, str | None, str, str]] = []
        self._act_ids = itertools.count(1)
        self._serials: dict[int, int] = {}
        self._iso: dict[int, str] = {}
        self._elders: list[tuple[list[str | None], int]] = []  # may have died
        # Unmarried grown-up children: (record, birth ordinal, household, address row).
        self._singles: dict[bool, list[tuple[list[str | None], int, int, list[str | None]]]] = {
            False: [],
            True: [],
        }
        self._households = itertools.count(1)
        self._places = list(reference.weighted_places())
        self._patronymics = {
            name: (
                reference.patronymic_for(name, False),
                reference.patronymic_for(name, True),
                reference.patronymic_for(name, False, kazakh_form=True),
                reference.patronymic_for(name, True, kazakh_form=True),
            )
            for name in reference.MALE_NAMES
        }
        # Name groups: index 0 Kazakh, 1 Russian -> (male names, female names, surnames).
        self._groups = (
            (reference.KAZAKH_MALE_NAMES, reference.KAZAKH_FEMALE_NAMES,
             reference.KAZAKH_SURNAMES),
            (reference.RUSSIAN_MALE_NAMES, reference.RUSSIAN_FEMALE_NAMES,
             reference.RUSSIAN_SURNAMES),
        )
        self._russian_surnames = frozenset(reference.RUSSIAN_SURNAMES)
        self._first_adult = dt.date(FIRST_BIRTH_YEAR, 1, 1).toordinal()
        self._last_adult = dt.date(LAST_ADULT_BIRTH_YEAR, 12, 31).toordinal()
        self._elder_cutoff = dt.date(1966, 1, 1).toordinal()

    # -- building blocks ---------------------------------------------------------------

    def pick(self, items: tuple[str, ...] | list[str]) -> str:
        return items[int(self.random() * len(items))]

    def between(self, low: int, high: int) -> int:
        """A whole number in [low, high]."""
        return low + int(self.random() * (high - low + 1))

    def iso(self, ordinal: int) -> str:
        text = self._iso.get(ordinal)
        if text is None:
            text = self._iso[ordinal] = dt.date.fromordinal(ordinal).isoformat()
        return text

    def new_person(
        self,
        female: bool,
        birth: int,
        last_name: str,
        first_name: str,
        patronymic: str,
        citizenship: str = "KAZ",
    ) -> list[str | None]:
        serial = self._serials.get(birth, 0)
        date = dt.date.fromordinal(birth)
        while True:
            serial += 1
            iin = make_iin(date, female, serial)
            if iin is not None:
                break
        self._serials[birth] = serial
        record: list[str | None] = [
            iin.value, last_name, first_name, patronymic, "F" if female else "M",
            self.iso(birth), citizenship, None,
        ]
        self.persons.append(record)
        if birth < self._elder_cutoff:
            self._elders.append((record, birth))
        return record

    def new_adult(
        self, female: bool, birth: int, russian: bool, male_surname: str | None = None
    ) -> list[str | None]:
        """A person whose parents are not on record."""
        r = self.random
        male_names, female_names, surnames = self._groups[russian]
        first = self.pick(female_names if female else male_names)
        forms = self._patronymics[self.pick(male_names)]
        male_surname = male_surname or self.pick(surnames)
        kazakh = not russian and birth >= _KAZAKH_FORMS_FROM and r() < 0.2
        patronymic = forms[(2 if kazakh else 0) + (1 if female else 0)]
        citizenship = "KAZ" if r() >= 0.01 else self.pick(reference.OTHER_CITIZENSHIPS)
        last = reference.surname_for(male_surname, female)
        return self.new_person(female, birth, last, first, patronymic, citizenship)

    def new_home(self) -> tuple[str, ...]:
        r = self.random
        places = self._places
        region, district, locality = places[int(r() * len(places))]
        apartment = str(1 + int(r() * 180)) if r() < 0.7 else ""
        street = self.pick(reference.STREETS)
        return (region, district, locality, street, str(1 + int(r() * 250)), apartment)

    def some_day_after(self, birth: int, low_years: float, high_years: float) -> int:
        """A day ``low_years`` to ``high_years`` after ``birth``, before ``AS_OF``."""
        day = birth + int((low_years + (high_years - low_years) * self.random()) * _YEAR)
        if day <= _LAST_DAY:
            return day
        return self.between(min(birth + int(18 * _YEAR), _LAST_DAY), _LAST_DAY)

    def register_at(
        self, record: list[str | None], home: tuple[str, ...], since: int
    ) -> list[str | None]:
        row: list[str | None] = [record[0], *home, self.iso(since), None]
        self.addresses.append(row)
        return row

    def act(self, kind: str, iin: str, related: str | None, on: int, details: str) -> None:
        act_id = f"MJ-{next(self._act_ids):010d}"
        self.acts.append((act_id, kind, iin, related, self.iso(min(on, _LAST_DAY)), details))

    # -- households --------------------------------------------------------------------

    def populate(self, count: int) -> None:
        r = self.random
        persons = self.persons
        while len(persons) < count:
            room = count - len(persons)
            if room < 2 or r() < 0.12:
                self.single()
            else:
                self.household(room)
        self.deaths()

    def single(self) -> None:
        r = self.random
        female = r() < 0.5
        birth = self.between(self._first_adult, self._last_adult)
        record = self.new_adult(female, birth, r() < _RUSSIAN_SHARE)
        since = self.some_day_after(birth, 18, 40)
        self.register_at(record, self.new_home(), since)

    def take_single(self, female: bool, household: int, near: int | None) -> tuple | None:
        """Maybe marry off a grown-up child from another household, born near ``near``."""
        pool = self._singles[female]
        if not pool or self.random() < 0.5:
            return None
        index = int(self.random() * len(pool))
        entry = pool[index]
        if entry[2] == household or (near is not None and abs(entry[1] - near) > _MAX_GAP):
            return None
        pool[index] = pool[-1]
        pool.pop()
        return entry

    def household(self, room: int) -> None:
        r = self.random
        household = next(self._households)
        wife_entry = self.take_single(True, household, None)
        husband_entry = self.take_single(
            False, wife_entry[2] if wife_entry else household, wife_entry[1] if wife_entry else None
        )
        # Birth dates first, so that a newcomer partner is about the right age.
        if wife_entry is not None:
            wife_birth = wife_entry[1]
        elif husband_entry is not None:
            wife_birth = husband_entry[1] + int((6 * r() - 2) * _YEAR)
        else:
            wife_birth = self.between(self._first_adult, self._last_adult)
        wife_birth = min(max(wife_birth, self._first_adult), self._last_adult)
        if husband_entry is not None:
            husband_birth = husband_entry[1]
        else:
            husband_birth = wife_birth - int((8 * r() - 2) * _YEAR)
            husband_birth = min(max(husband_birth, self._first_adult), self._last_adult)

        if husband_entry is not None:
            husband = husband_entry[0]
        else:
            husband = self.new_adult(False, husband_birth, r() < _RUSSIAN_SHARE)
        family_surname = str(husband[1])
        russian = family_surname in self._russian_surnames
        if wife_entry is not None:
            wife = wife_entry[0]
            if r() < 0.85:
                wife[1] = reference.surname_for(family_surname, True)
        else:
            wife_russian = russian if r() < 0.9 else not russian
            keeps_name = r() < 0.15 or wife_russian != russian
            wife = self.new_adult(
                True, wife_birth, wife_russian, None if keeps_name else family_surname
            )

        youngest = max(wife_birth, husband_birth)
        married = self.some_day_after(youngest, 19, 32)
        husband_iin, wife_iin = str(husband[0]), str(wife[0])
        self.links += ((husband_iin, wife_iin, "spouse"), (wife_iin, husband_iin, "spouse"))
        self.act("marriage", husband_iin, wife_iin, married,
                 f'{{"husband":"{husband_iin}","wife":"{wife_iin}"}}')
        home = self.new_home()
        for entry, record in ((husband_entry, husband), (wife_entry, wife)):
            if entry is not None:
                entry[3][8] = self.iso(married)  # the parents' address ends here
            self.register_at(record, home, married)

        wanted = bisect.bisect(_CHILDREN_CUMULATIVE, r() * _CHILDREN_CUMULATIVE[-1])
        wanted = min(wanted, room - (husband_entry is None) - (wife_entry is None))
        last_possible = min(wife_birth + int(45 * _YEAR), _LAST_DAY)
        born = married + self.between(300, 1500)
        forms = self._patronymics[str(husband[2])]
        for _ in range(wanted):
            if born > last_possible:
                break
            self.child(
                household, husband_iin, wife_iin, family_surname, russian, forms, born, home
            )
            born += self.between(400, 2200)

    def child(
        self,
        household: int,
        father: str,
        mother: str,
        family_surname: str,
        russian: bool,
        forms: tuple[str, str, str, str],
        birth: int,
        home: tuple[str, ...],
    ) -> None:
        r = self.random
        female = r() < 0.49
        male_names, female_names, _surnames = self._groups[russian]
        first = self.pick(female_names if female else male_names)
        kazakh = not russian and birth >= _KAZAKH_FORMS_FROM and r() < 0.3
        patronymic = forms[(2 if kazakh else 0) + (1 if female else 0)]
        last = reference.surname_for(family_surname, female)
        record = self.new_person(female, birth, last, first, patronymic)
        iin = str(record[0])
        self.links += (
            (iin, mother, "mother"),
            (iin, father, "father"),
            (mother, iin, "child"),
            (father, iin, "child"),
        )
        self.act("birth", iin, mother, birth + self.between(1, 25),
                 f'{{"mother":"{mother}","father":"{father}"}}')
        row = self.register_at(record, home, birth)
        if birth <= self._last_adult:
            self._singles[female].append((record, birth, household, row))

    def deaths(self) -> None:
        """Some of the older generation died after 55, leaving addresses and links alone."""
        r = self.random
        cutoff = self._elder_cutoff
        span = cutoff - self._first_adult
        earliest_gap = int(55 * _YEAR)
        for record, birth in self._elders:
            if r() > 0.6 * (cutoff - birth) / span:
                continue
            died = self.between(birth + earliest_gap, _LAST_DAY)
            record[7] = self.iso(died)
            self.act("death", str(record[0]), None, died + self.between(1, 5), "{}")
