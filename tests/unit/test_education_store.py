"""The education system's seed, store and decisions, on temporary SQLite files (no sockets).

The child's facts (birth date, address district) are ``Citizen`` values built here, as
population would answer them over the bus; the store never writes them.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sqlite_rows import rows
from zhol.adapters.bus.outbox import read_outbox
from zhol.adapters.education import events, schema
from zhol.adapters.education.model import (
    KZ_TIME,
    AlreadyRecorded,
    Citizen,
    EnrolmentStatus,
    InvalidInput,
    NotAllowed,
    NotFound,
    QueueReason,
    QueueStatus,
    WithdrawalCause,
)
from zhol.adapters.education.seed import seed_database
from zhol.adapters.education.store import (
    EducationStore,
    record_address_change,
    record_death,
    record_newborn,
)
from zhol.adapters.population import reference
from zhol.adapters.population.seed import seed_database as seed_population
from zhol.core.clock import FixedClock
from zhol.core.iin import Iin, make_iin
from zhol.education.v1 import education_pb2 as pb

TODAY = dt.date(2025, 6, 2)
NOW_MS = int(dt.datetime(2025, 6, 2, 12, tzinfo=KZ_TIME).timestamp() * 1000)
ALMATY, MEDEU, ALATAU = "Almaty city", "Medeu district", "Alatau district"
PERSONAL_COLUMNS = {
    "first_name", "last_name", "patronymic", "name", "birth_date", "sex", "gender",
    "address", "region", "district", "street", "locality", "building", "apartment",
}
ALL_TABLES = (*schema.TABLE_NAMES, "bus_outbox", "bus_inbox")


@pytest.fixture(scope="module")
def population_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("population") / "population.db"
    seed_population(path, 3000, seed=5)
    return path


@pytest.fixture
def db(tmp_path: Path, population_db: Path) -> Path:
    path = tmp_path / "education.db"
    seed_database(path, population_db, seed=7)
    return path


@pytest.fixture
def store(db: Path) -> Iterator[EducationStore]:
    opened = EducationStore.open(db, FixedClock(NOW_MS))
    yield opened
    opened.close()


def snapshot(db: Path) -> dict[str, list[tuple]]:
    """Every row of every table: a refused request must leave this exactly as it was."""
    return {table: sorted(rows(db, f"SELECT * FROM {table}"), key=repr) for table in ALL_TABLES}


@pytest.fixture
def unchanged(db: Path, store: EducationStore) -> Iterator[None]:
    before = snapshot(db)
    yield
    assert snapshot(db) == before


def outbox(db: Path) -> list[tuple[str, bytes, str]]:
    conn = sqlite3.connect(db)
    try:
        return [(e.topic, e.payload, e.data_subject) for e in read_outbox(conn)]
    finally:
        conn.close()


_serials = iter(range(9000, 9999))


def citizen(born: dt.date, region: str | None = ALMATY, district: str | None = MEDEU, *,
            deceased: bool = False, iin: Iin | None = None) -> Citizen:
    """A child population would describe so (IIN serials above any the seed uses)."""
    while iin is None:
        iin = make_iin(born, False, next(_serials))
    return Citizen(iin, born, deceased, region, district)


def school_of(store: EducationStore, region: str, district: str) -> str:
    return store.list_schools(region, district)[0].school_id


# -- seeding -----------------------------------------------------------------------------


def test_seed_covers_every_district_of_the_population_seed(store: EducationStore) -> None:
    for region, (_weight, districts) in reference.REGIONS.items():
        for district, _locality in districts:
            kindergartens = store.list_kindergartens(region, district)
            schools = store.list_schools(region, district)
            assert len(kindergartens) >= 2 and len(schools) >= 2, (region, district)
            assert all(k.capacity > 0 and k.languages for k in kindergartens)
            assert all(s.district.name == district for s in schools)
    assert len(store.list_kindergartens()) == store.counts()["kindergartens"]
    assert {k.district.region for k in store.list_kindergartens(district=MEDEU)} == {ALMATY}


def test_seed_queues_and_enrols_children_where_they_live(db: Path, population_db: Path) -> None:
    lives = dict(
        (iin, (region, district)) for iin, region, district in rows(
            population_db,
            "SELECT iin, region, district FROM addresses WHERE valid_to IS NULL",
        )
    )
    queued = rows(db, "SELECT q.iin, d.region, d.name, q.status FROM queue_entries q"
                      " JOIN districts d USING (district_id)")
    enrolled = rows(db, "SELECT e.iin, d.region, d.name, e.grade FROM school_enrolments e"
                        " JOIN schools s USING (school_id) JOIN districts d USING (district_id)")
    assert len(queued) > 50 and len(enrolled) > 50
    assert {status for *_rest, status in queued} == {"waiting", "placed"}
    for iin, region, district, _status in queued:
        assert lives[iin] == (region, district)
        assert Iin.parse(iin).birth_date > dt.date(2018, 9, 1)  # under 6 on 1 September
    for iin, region, district, grade in enrolled:
        assert lives[iin] == (region, district)
        assert 1 <= grade <= 11
    assert not {iin for iin, *_ in queued} & {iin for iin, *_ in enrolled}
    over = rows(db, "SELECT k.kindergarten_id FROM kindergartens k WHERE k.capacity <"
                    " (SELECT count(*) FROM queue_entries q WHERE q.placed_in = k.kindergarten_id)")
    assert over == []


def test_seed_without_population_has_institutions_only(tmp_path: Path) -> None:
    path = tmp_path / "education.db"
    report = seed_database(path)
    assert report.districts == sum(len(places) for _w, places in reference.REGIONS.values())
    assert report.kindergartens >= 2 * report.districts
    assert (report.queue_entries, report.enrolments) == (0, 0)
    with pytest.raises(FileExistsError):
        seed_database(path)


def test_the_schema_keeps_no_personal_data(db: Path) -> None:
    """Once-only: tables about citizens hold the IIN and education's own facts only."""
    tables = [name for (name,) in rows(db, "SELECT name FROM sqlite_master WHERE type='table'")]
    for table in tables:
        columns = {row[1] for row in rows(db, f"PRAGMA table_info({table})")}
        if "iin" in columns:
            assert not columns & PERSONAL_COLUMNS, table
        assert not columns & {"first_name", "last_name", "patronymic", "birth_date", "sex",
                              "gender", "address", "street", "locality"}, table


# -- queueing on request -----------------------------------------------------------------


def test_request_queues_and_enqueues_the_event(db: Path, store: EducationStore) -> None:
    child = citizen(dt.date(2024, 1, 10))
    kindergarten = store.list_kindergartens(ALMATY, MEDEU)[1].kindergarten_id
    position = store.enqueue(child, kindergarten)
    entry = position.entry
    assert (entry.status, entry.reason, entry.queued_on) == (
        QueueStatus.WAITING, QueueReason.REQUEST, TODAY
    )
    assert (entry.district.region, entry.district.name) == (ALMATY, MEDEU)
    assert entry.kindergarten_id == kindergarten
    assert position.position == position.waiting_in_district  # queued today: the last
    assert store.queue_position(child.iin) == position
    [(topic, payload, subject)] = outbox(db)
    event = pb.QueuedForKindergarten.FromString(payload)
    assert topic == events.QUEUED_FOR_KINDERGARTEN and subject == child.iin.value
    assert (event.queue_entry_id, event.iin, event.district, event.region, event.reason) == (
        entry.queue_entry_id, child.iin.value, MEDEU, ALMATY, pb.QUEUE_REASON_REQUEST
    )
    with pytest.raises(AlreadyRecorded):
        store.enqueue(child, None)


def test_refused_requests_change_nothing(db: Path, store: EducationStore, unchanged: None
                                         ) -> None:
    young = dt.date(2023, 5, 5)
    elsewhere = store.list_kindergartens(ALMATY, ALATAU)[0].kindergarten_id
    (waiting_iin, region, district) = rows(
        db, "SELECT q.iin, d.region, d.name FROM queue_entries q JOIN districts d"
            " USING (district_id) WHERE status = 'waiting' LIMIT 1")[0]
    (pupil,) = rows(db, "SELECT iin FROM school_enrolments LIMIT 1")[0]
    cases = [
        (citizen(dt.date(2018, 6, 2)), None, NotAllowed),           # 7 today
        (citizen(young, deceased=True), None, NotAllowed),
        (citizen(young, None, None), None, NotAllowed),              # no registered address
        (citizen(young, ALMATY, "Nowhere district"), None, NotAllowed),
        (citizen(young), elsewhere, NotAllowed),                     # not in the child's district
        (citizen(young), "KG-999-99", NotFound),
        (citizen(young), "KG\x00", InvalidInput),
        (citizen(Iin.parse(waiting_iin).birth_date, region, district,
                 iin=Iin.parse(waiting_iin)), None, AlreadyRecorded),
        (citizen(Iin.parse(pupil).birth_date, iin=Iin.parse(pupil)), None, NotAllowed),
    ]
    for child, kindergarten, error in cases:
        with pytest.raises(error):
            store.enqueue(child, kindergarten)


def test_position_is_by_queued_on_then_entry_id(store: EducationStore) -> None:
    a, b, c = (citizen(dt.date(2025, 3, 1)) for _ in range(3))
    store.apply(record_newborn, a, dt.date(2025, 5, 1), TODAY, NOW_MS)
    store.apply(record_newborn, b, dt.date(2025, 4, 1), TODAY, NOW_MS)
    store.apply(record_newborn, c, dt.date(2025, 5, 1), TODAY, NOW_MS)
    positions = {name: store.queue_position(child.iin).position
                 for name, child in (("a", a), ("b", b), ("c", c))}
    assert positions["b"] < positions["a"] < positions["c"]
    assert positions["c"] == positions["a"] + 1
    assert store.queue_position(a.iin).waiting_in_district >= 3
    with pytest.raises(NotFound):
        store.queue_position(citizen(dt.date(2025, 3, 1)).iin)


# -- events: birth, address change, death ------------------------------------------------


def test_newborn_is_queued_exactly_once(db: Path, store: EducationStore) -> None:
    child = citizen(dt.date(2025, 5, 30))
    entry = store.apply(record_newborn, child, dt.date(2025, 5, 31), TODAY, NOW_MS)
    assert entry is not None
    assert (entry.reason, entry.queued_on, entry.district.name) == (
        QueueReason.NEWBORN, dt.date(2025, 5, 31), MEDEU
    )
    before = snapshot(db)
    for _ in range(3):  # the same fact again, however it arrives
        assert store.apply(record_newborn, child, dt.date(2025, 6, 1), TODAY, NOW_MS) is None
    assert snapshot(db) == before
    store.withdraw(child.iin)
    assert store.apply(record_newborn, child, TODAY, TODAY, NOW_MS) is None  # never re-queued
    assert rows(db, "SELECT count(*) FROM queue_entries WHERE iin = ?", child.iin.value) == [(1,)]
    assert [t for t, _p, s in outbox(db) if s == child.iin.value] == [
        events.QUEUED_FOR_KINDERGARTEN
    ]


def test_newborn_already_queued_on_request_or_dead_is_left_alone(db: Path,
                                                                 store: EducationStore) -> None:
    asked = citizen(dt.date(2025, 5, 1))
    store.enqueue(asked, None)
    before = snapshot(db)
    assert store.apply(record_newborn, asked, TODAY, TODAY, NOW_MS) is None
    assert store.apply(record_newborn, citizen(TODAY, deceased=True), TODAY, TODAY,
                       NOW_MS) is None
    assert store.apply(record_newborn, citizen(dt.date(2017, 1, 1)), TODAY, TODAY,
                       NOW_MS) is None  # a birth registered late, past kindergarten age
    assert snapshot(db) == before
    with pytest.raises(NotAllowed):  # a newborn without a served district
        store.apply(record_newborn, citizen(TODAY, None, None), TODAY, TODAY, NOW_MS)
    assert snapshot(db) == before


def test_address_change_moves_the_place_and_keeps_queued_on(db: Path,
                                                             store: EducationStore) -> None:
    child = citizen(dt.date(2024, 2, 2))
    preferred = store.list_kindergartens(ALMATY, MEDEU)[0].kindergarten_id
    first = store.enqueue(child, preferred).entry
    later = dt.date(2025, 7, 1)
    moved_to = Citizen(child.iin, child.birth_date, False, "Astana city", "Yesil district")
    move = store.apply(record_address_change, moved_to, later, NOW_MS + 1)
    assert move is not None
    assert (move.from_district.name, move.to_district.name, move.moved_on) == (
        MEDEU, "Yesil district", later
    )
    position = store.queue_position(child.iin)
    entry = position.entry
    assert entry.queue_entry_id == first.queue_entry_id
    assert (entry.district.region, entry.district.name) == ("Astana city", "Yesil district")
    assert entry.queued_on == first.queued_on == TODAY  # seniority kept
    assert entry.kindergarten_id is None  # the preference stood in the old district
    assert entry.status is QueueStatus.WAITING and entry.reason is QueueReason.REQUEST
    assert position.moves == (move,)
    topic, payload, subject = outbox(db)[-1]
    event = pb.QueueEntryMoved.FromString(payload)
    assert topic == events.QUEUE_ENTRY_MOVED and subject == child.iin.value
    assert (event.queue_entry_id, event.from_district, event.to_district, event.to_region) == (
        entry.queue_entry_id, MEDEU, "Yesil district", "Astana city"
    )
    assert event.queued_on == pb.Date(year=TODAY.year, month=TODAY.month, day=TODAY.day)
    before = snapshot(db)  # the same change again: nothing to do
    assert store.apply(record_address_change, moved_to, later, NOW_MS + 2) is None
    assert snapshot(db) == before


def test_seniority_counts_in_the_new_district(db: Path, store: EducationStore) -> None:
    early = citizen(dt.date(2023, 1, 1), "Astana city", "Nura district")
    store.apply(record_newborn, early, dt.date(2023, 1, 10), TODAY, NOW_MS)
    late = citizen(dt.date(2025, 1, 1), "Astana city", "Nura district")
    store.apply(record_newborn, late, dt.date(2025, 1, 10), TODAY, NOW_MS)
    before = store.queue_position(late.iin).position
    store.apply(record_address_change, Citizen(early.iin, early.birth_date, False, ALMATY, MEDEU),
                TODAY, NOW_MS)
    assert store.queue_position(late.iin).position == before - 1  # one fewer ahead
    moved = store.queue_position(early.iin)
    ahead = rows(db, "SELECT count(*) FROM queue_entries q JOIN districts d USING (district_id)"
                     " WHERE d.name = ? AND status = 'waiting' AND queued_on <= '2023-01-10'",
                 MEDEU)[0][0]
    assert moved.position <= ahead


def test_address_changes_that_move_nothing(db: Path, store: EducationStore) -> None:
    child = citizen(dt.date(2024, 3, 3))
    store.enqueue(child, None)
    (placed_iin, _region, district) = rows(
        db, "SELECT q.iin, d.region, d.name FROM queue_entries q JOIN districts d"
            " USING (district_id) WHERE status = 'placed' LIMIT 1")[0]
    placed = Iin.parse(placed_iin)
    before = snapshot(db)
    same = [
        Citizen(child.iin, child.birth_date, False, ALMATY, MEDEU),        # same district
        Citizen(child.iin, child.birth_date, False, None, None),           # no address now
        Citizen(child.iin, child.birth_date, True, "Astana city", "Nura district"),  # died
        citizen(dt.date(2024, 3, 3), "Astana city", "Nura district"),      # never queued
        Citizen(placed, placed.birth_date, False,
                *(("Astana city", "Nura district") if district != "Nura district"
                  else (ALMATY, MEDEU))),                                  # placed stays
    ]
    for facts in same:
        assert store.apply(record_address_change, facts, TODAY, NOW_MS) is None
    assert snapshot(db) == before
    with pytest.raises(NotAllowed):  # a district education does not serve
        store.apply(record_address_change,
                    Citizen(child.iin, child.birth_date, False, ALMATY, "Nowhere"), TODAY, NOW_MS)
    assert snapshot(db) == before


def test_death_withdraws_the_place_and_ends_the_enrolment(db: Path,
                                                          store: EducationStore) -> None:
    (placed,) = rows(db, "SELECT iin FROM queue_entries WHERE status = 'placed' LIMIT 1")[0]
    (pupil,) = rows(db, "SELECT iin FROM school_enrolments LIMIT 1")[0]
    outcome = store.apply(record_death, Iin.parse(placed), TODAY)
    assert outcome.withdrawn is not None and outcome.enrolment_ended is None
    assert outcome.withdrawn.status is QueueStatus.WITHDRAWN
    assert outcome.withdrawn.withdrawn_because is WithdrawalCause.DEATH
    assert outcome.withdrawn.placed_in is None
    position = store.queue_position(Iin.parse(placed))
    assert position.position == 0 and position.entry.status_changed_on == TODAY
    ended = store.apply(record_death, Iin.parse(pupil), TODAY).enrolment_ended
    assert ended is not None and ended.status is EnrolmentStatus.LEFT
    before = snapshot(db)
    again = store.apply(record_death, Iin.parse(placed), TODAY)
    assert (again.withdrawn, again.enrolment_ended) == (None, None)
    assert snapshot(db) == before


# -- school enrolment --------------------------------------------------------------------


def test_enrolment_in_the_childs_district(db: Path, store: EducationStore) -> None:
    # 5 today (queued: up to 6 years old), turns 6 in 2025 (may start grade 1)
    child = citizen(dt.date(2019, 9, 1))
    store.enqueue(child, None)
    school = school_of(store, ALMATY, MEDEU)
    enrolment = store.enroll(child, school, 1)
    assert (enrolment.grade, enrolment.status, enrolment.school_year_start) == (
        1, EnrolmentStatus.ACTIVE, dt.date(2025, 9, 1)
    )
    assert store.list_enrolments(child.iin) == (enrolment,)
    withdrawn = store.queue_position(child.iin).entry
    assert withdrawn.withdrawn_because is WithdrawalCause.SCHOOL
    topic, payload, _subject = outbox(db)[-1]
    event = pb.EnrolledInSchool.FromString(payload)
    assert topic == events.ENROLLED_IN_SCHOOL
    assert (event.iin, event.school_id, event.grade, event.enrolment_id) == (
        child.iin.value, school, 1, enrolment.enrolment_id
    )
    with pytest.raises(AlreadyRecorded):
        store.enroll(child, school, 1)
    other = store.list_schools(ALMATY, MEDEU)[1].school_id
    moved = store.enroll(child, other, 1)
    history = store.list_enrolments(child.iin)
    assert [e.status for e in history] == [EnrolmentStatus.ACTIVE, EnrolmentStatus.TRANSFERRED]
    assert history[0] == moved


def test_refused_enrolments_change_nothing(db: Path, store: EducationStore) -> None:
    school = school_of(store, ALMATY, MEDEU)
    full = school_of(store, ALMATY, ALATAU)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE schools SET capacity = 1 WHERE school_id = ?", (full,))
        conn.execute(
            "INSERT INTO school_enrolments (iin, school_id, grade, enrolled_on,"
            " school_year_start, status) VALUES ('000000000000', ?, 5, '2024-09-01',"
            " '2024-09-01', 'active')", (full,))
    conn.close()
    before = snapshot(db)
    six = dt.date(2019, 3, 1)
    cases = [
        (citizen(six, ALMATY, ALATAU), school, 1, NotAllowed),       # another district
        (citizen(six, "Astana city", MEDEU), school, 1, NotAllowed),  # same name elsewhere
        (citizen(dt.date(2020, 1, 1)), school, 1, NotAllowed),        # turns 6 in 2026
        (citizen(dt.date(2017, 12, 31)), school, 1, NotAllowed),      # turns 8 in 2025
        (citizen(six, deceased=True), school, 1, NotAllowed),
        (citizen(six, None, None), school, 1, NotAllowed),
        (citizen(six, ALMATY, ALATAU), full, 1, NotAllowed),          # no free place
        (citizen(six), "SCH-999-99", 1, NotFound),
        (citizen(six), school, 12, InvalidInput),
        (citizen(six), school, 0, InvalidInput),
    ]
    for child, school_id, grade, error in cases:
        with pytest.raises(error):
            store.enroll(child, school_id, grade)
    assert snapshot(db) == before
    assert store.enroll(citizen(dt.date(2016, 3, 1)), school, 3).grade == 3  # 9 in grade 3


# -- placement ---------------------------------------------------------------------------


def test_placement_follows_the_queue_and_capacity(db: Path, store: EducationStore) -> None:
    region, district = "Ulytau region", "Ulytau district"
    kindergartens = store.list_kindergartens(region, district)
    conn = sqlite3.connect(db)
    with conn:  # an empty queue in that district, two places in the first kindergarten
        conn.execute("DELETE FROM queue_entries WHERE district_id = ?",
                     (kindergartens[0].district.district_id,))
        conn.execute("UPDATE kindergartens SET capacity = 1 WHERE kindergarten_id = ?",
                     (kindergartens[0].kindergarten_id,))
    conn.close()
    first, second = (citizen(dt.date(2022, 1, 1), region, district) for _ in range(2))
    store.apply(record_newborn, first, dt.date(2022, 1, 5), TODAY, NOW_MS)
    store.apply(record_newborn, second, dt.date(2022, 1, 9), TODAY, NOW_MS)
    small, other = kindergartens[0].kindergarten_id, kindergartens[1].kindergarten_id
    before = snapshot(db)
    with pytest.raises(NotAllowed):  # the first child waits for any kindergarten
        store.place(second.iin, small)
    with pytest.raises(NotAllowed):
        store.place(first.iin, store.list_kindergartens(ALMATY, MEDEU)[0].kindergarten_id)
    with pytest.raises(NotFound):
        store.place(citizen(dt.date(2022, 1, 1)).iin, small)
    assert snapshot(db) == before
    placed = store.place(first.iin, small)
    assert (placed.entry.status, placed.entry.placed_in, placed.position) == (
        QueueStatus.PLACED, small, 0
    )
    # The decision is published (the portal's life-events feed shows it).
    topic, payload, subject = outbox(db)[-1]
    assert (topic, subject) == ("zhol.education.v1.PlacedInKindergarten", first.iin.value)
    assert pb.PlacedInKindergarten.FromString(payload) == pb.PlacedInKindergarten(
        queue_entry_id=placed.entry.queue_entry_id, iin=first.iin.value,
        kindergarten_id=small, district=district, region=region,
        placed_on=pb.Date(year=TODAY.year, month=TODAY.month, day=TODAY.day),
        queued_on=pb.Date(year=2022, month=1, day=5),
    )  # fmt: skip
    assert store.queue_position(second.iin).position == 1
    with pytest.raises(AlreadyRecorded):
        store.place(first.iin, other)
    with pytest.raises(NotAllowed):  # full now
        store.place(second.iin, small)
    assert store.place(second.iin, other).entry.placed_in == other
    assert store.get_kindergarten(small).placed == 1


def test_list_filters(store: EducationStore) -> None:
    assert store.list_schools("Nowhere", "") == ()
    with pytest.raises(InvalidInput):
        store.list_kindergartens("Almaty\ncity", "")
    with pytest.raises(InvalidInput):
        store.list_schools("", "x" * 201)
