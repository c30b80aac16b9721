"""The health system's rules, seed and store on temporary SQLite files (no sockets)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sqlite_rows import rows
from zhol.adapters.bus.outbox import read_outbox
from zhol.adapters.health import reference, rules, schema
from zhol.adapters.health.model import (
    KZ_TIME,
    AlreadyRecorded,
    AttachReason,
    Clinic,
    ConclusionRequest,
    DetachReason,
    InvalidInput,
    NotAllowed,
    NotFound,
    PlaceCheck,
    Unavailable,
)
from zhol.adapters.health.seed import UNATTACHED_SHARE, seed_database
from zhol.adapters.health.store import HealthStore
from zhol.adapters.population import reference as population_reference
from zhol.adapters.population.seed import seed_database as seed_population
from zhol.core.clock import FixedClock
from zhol.core.iin import Iin, make_iin
from zhol.health.v1 import health_pb2 as pb

COUNT = 300
TODAY = dt.date(2025, 6, 2)

# Columns that would hold a citizen's personal details (once-only: population owns them).
PERSONAL = {
    "first_name", "last_name", "patronymic", "name", "birth_date", "sex", "gender",
    "address", "region", "district", "street", "locality", "building", "apartment",
}


def clock_on(day: dt.date, hour: int = 12) -> FixedClock:
    moment = dt.datetime(day.year, day.month, day.day, hour, tzinfo=KZ_TIME)
    return FixedClock(int(moment.timestamp() * 1000))


@pytest.fixture(scope="module")
def population_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("population") / "population.db"
    seed_population(path, COUNT, seed=5)
    return path


@pytest.fixture
def db(tmp_path: Path, population_db: Path) -> Path:
    path = tmp_path / "health.db"
    seed_database(path, population_db, seed=2)
    return path


@pytest.fixture
def store(db: Path) -> Iterator[HealthStore]:
    opened = HealthStore.open(db, clock_on(TODAY))
    yield opened
    opened.close()


def snapshot(db: Path) -> dict[str, list[tuple]]:
    """Every row of every table, the outbox and inbox included."""
    tables = [name for (name,) in rows(db, "SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {t: sorted(rows(db, f"SELECT * FROM {t}"), key=repr) for t in tables}


@pytest.fixture
def unchanged(db: Path, store: HealthStore) -> Iterator[None]:
    before = snapshot(db)
    yield
    assert snapshot(db) == before


def events(db: Path) -> list[tuple[str, object]]:
    conn = sqlite3.connect(db)
    try:
        decoded = []
        for entry in read_outbox(conn):
            kind = {
                "zhol.health.v1.ClinicAttached": pb.ClinicAttached,
                "zhol.health.v1.AttachmentClosed": pb.AttachmentClosed,
                "zhol.health.v1.DisabilityEstablished": pb.DisabilityEstablished,
            }[entry.topic]
            decoded.append((entry.topic, kind.FromString(entry.payload)))
        return decoded
    finally:
        conn.close()


def attached(db: Path, population_db: Path) -> tuple[Iin, str, str, str]:
    """A person with an open attachment: (iin, clinic id, region, district)."""
    for iin, clinic_id, region, district in rows(
        db,
        "SELECT a.iin, a.clinic_id, c.region, c.district FROM attachments a"
        " JOIN clinics c USING (clinic_id) WHERE a.detached_on IS NULL ORDER BY a.iin",
    ):
        return Iin(iin), clinic_id, region, district
    raise AssertionError("nobody attached")


def other_clinic(db: Path, region: str, district: str, not_this: str) -> str:
    return rows(
        db,
        "SELECT clinic_id FROM clinics WHERE region = ? AND district = ? AND clinic_id != ?"
        " ORDER BY clinic_id LIMIT 1",
        region, district, not_this,
    )[0][0]


def unknown_iin() -> Iin:
    iin = make_iin(dt.date(1977, 7, 7), False, 9876)
    assert iin is not None
    return iin


# -- rule tables -------------------------------------------------------------------------


def test_every_population_district_has_clinics() -> None:
    clinics = reference.clinic_directory()
    served = {(c.region, c.district) for c in clinics}
    for region, (_weight, places) in population_reference.REGIONS.items():
        for district, _locality in places:
            assert (region, district) in served, (region, district)
            count = sum(1 for c in clinics if (c.region, c.district) == (region, district))
            assert count >= 2


def test_clinic_directory_is_stable_and_unique() -> None:
    first, second = reference.clinic_directory(), reference.clinic_directory()
    assert first == second
    assert len({c.clinic_id for c in first}) == len(first)
    assert len({c.name for c in first}) == len(first)
    assert all(c.capacity > 0 and c.clinic_id.startswith("PHC-") for c in first)


def test_age_periods_follow_the_birthdays() -> None:
    periods = rules.age_periods(dt.date(2024, 2, 29))
    assert periods == (
        ("child_under_1", dt.date(2024, 2, 29), dt.date(2025, 2, 28)),
        ("preschool_child", dt.date(2025, 3, 1), dt.date(2031, 2, 28)),
        ("pupil", dt.date(2031, 3, 1), dt.date(2042, 2, 28)),
    )
    assert all(category in rules.SOCIAL_CATEGORIES for category, _f, _t in periods)


def test_every_disability_group_is_state_paid() -> None:
    # rules.DISABILITY_SOURCE [o]: every person with a disability, group 3 too.
    assert rules.DISABILITY_CATEGORY == {
        1: "disabled_group_1_2", 2: "disabled_group_1_2", 3: "disabled_group_3",
    }
    assert set(rules.DISABILITY_CATEGORY.values()) <= set(rules.SOCIAL_CATEGORIES)
    assert "[o]" in rules.DISABILITY_SOURCE and "[q]" in rules.ATTACHMENT.source


def test_choose_clinic_prefers_free_places_then_the_smaller_id() -> None:
    a = Clinic("PHC-1", "A", "R", "D", 100, 90)
    b = Clinic("PHC-2", "B", "R", "D", 50, 10)
    c = Clinic("PHC-0", "C", "R", "D", 40, 0)
    assert rules.choose_clinic([a, b]) == b
    assert rules.choose_clinic([b, a, c]) == c  # 40 free places each: the smaller id
    assert rules.choose_clinic([]) is None


def test_overlaps() -> None:
    d = dt.date
    assert rules.overlaps(d(2025, 1, 1), None, d(2030, 1, 1), None)
    assert rules.overlaps(d(2025, 1, 1), d(2025, 12, 31), d(2025, 12, 31), None)
    assert not rules.overlaps(d(2025, 1, 1), d(2025, 12, 31), d(2026, 1, 1), None)
    assert not rules.overlaps(d(2026, 1, 1), None, d(2025, 1, 1), d(2025, 12, 31))


@pytest.mark.parametrize(
    ("group", "first", "last"),
    [
        (0, dt.date(2025, 1, 1), None),
        (4, dt.date(2025, 1, 1), None),
        (2, TODAY + dt.timedelta(days=1), None),
        (2, dt.date(2025, 5, 1), dt.date(2025, 4, 30)),
        (1, dt.date(1999, 12, 31), None),
    ],
)
def test_validate_conclusion_refuses(group: int, first: dt.date, last: dt.date | None) -> None:
    request = ConclusionRequest(Iin("000000000000"), group, first, last)
    with pytest.raises(InvalidInput):
        rules.validate_conclusion(request, TODAY)


# -- seed and schema ---------------------------------------------------------------------


def test_schema_holds_no_personal_details(db: Path) -> None:
    for (table,) in rows(db, "SELECT name FROM sqlite_master WHERE type = 'table'"):
        columns = {row[1] for row in rows(db, f"PRAGMA table_info({table})")}
        personal = columns & PERSONAL
        if table == "clinics":  # the clinic's own location, not a citizen's
            personal -= {"name", "region", "district"}
        assert not personal, (table, personal)


def test_seed_attaches_living_persons_in_their_district(db: Path, population_db: Path) -> None:
    living = dict(
        (iin, (region, district))
        for iin, region, district in rows(
            population_db,
            "SELECT p.iin, a.region, a.district FROM persons p JOIN addresses a"
            " ON a.iin = p.iin AND a.valid_to IS NULL WHERE p.death_date IS NULL",
        )
    )
    seeded = rows(
        db,
        "SELECT a.iin, c.region, c.district FROM attachments a JOIN clinics c USING (clinic_id)",
    )
    assert len(seeded) == len({iin for iin, _r, _d in seeded})  # one each
    for iin, region, district in seeded:
        assert living[iin] == (region, district)
    assert len(seeded) >= len(living) * (1 - 4 * UNATTACHED_SHARE)
    assert len(rows(db, "SELECT 1 FROM clinics")) == len(reference.clinic_directory())


def test_seed_without_population_holds_only_clinics(tmp_path: Path) -> None:
    path = tmp_path / "clinics.db"
    report = seed_database(path)
    assert (report.clinics, report.attachments, report.insurance_periods) == (
        len(reference.clinic_directory()), 0, 0,
    )
    with pytest.raises(FileExistsError):
        seed_database(path)


def test_one_open_attachment_per_person_is_enforced_by_the_schema(db: Path) -> None:
    (iin, clinic_id), *_ = rows(
        db, "SELECT iin, clinic_id FROM attachments WHERE detached_on IS NULL LIMIT 1"
    )
    conn = schema.connect(db)
    try:
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(
                "INSERT INTO attachments (iin, clinic_id, attached_on, reason)"
                " VALUES (?, ?, '2025-01-01', 'request')",
                (iin, clinic_id),
            )
    finally:
        conn.close()


# -- attaching on request ----------------------------------------------------------------


def test_attach_on_request_moves_the_person(db: Path, store: HealthStore,
                                            population_db: Path) -> None:
    iin, old, region, district = attached(db, population_db)
    new = other_clinic(db, region, district, old)
    decision = store.attach_on_request(iin, new, region=region, district=district)
    assert decision.closed is not None and decision.opened is not None
    assert decision.closed.clinic.clinic_id == old
    assert decision.closed.detach_reason is DetachReason.REQUEST
    assert store.get_attachment(iin).clinic.clinic_id == new
    assert store.get_attachment(iin).reason is AttachReason.REQUEST
    assert [(t, e.clinic_id, e.reason) for t, e in events(db)] == [
        ("zhol.health.v1.AttachmentClosed", old, "request"),
        ("zhol.health.v1.ClinicAttached", new, "request"),
    ]


def test_attach_on_request_of_an_unattached_person(db: Path, store: HealthStore) -> None:
    iin = unknown_iin()
    clinic = store.list_clinics("Astana city", "Nura district")[0]
    decision = store.attach_on_request(
        iin, clinic.clinic_id, region="Astana city", district="Nura district"
    )
    assert decision.closed is None and decision.opened is not None
    assert decision.opened.clinic.attached == clinic.attached + 1
    assert [t for t, _e in events(db)] == ["zhol.health.v1.ClinicAttached"]


def test_attach_to_a_clinic_of_another_district_changes_nothing(
    db: Path, store: HealthStore, population_db: Path
) -> None:
    iin, old, region, district = attached(db, population_db)
    elsewhere = rows(db, "SELECT clinic_id FROM clinics WHERE district != ? LIMIT 1", district)
    before = snapshot(db)
    with pytest.raises(NotAllowed):
        store.attach_on_request(iin, elsewhere[0][0], region=region, district=district)
    with pytest.raises(AlreadyRecorded):
        store.attach_on_request(iin, old, region=region, district=district)
    with pytest.raises(NotFound):
        store.attach_on_request(iin, "PHC-00-000", region=region, district=district)
    with pytest.raises(InvalidInput):
        store.attach_on_request(iin, " ", region=region, district=district)
    assert snapshot(db) == before


def test_a_full_clinic_takes_nobody(db: Path, store: HealthStore, population_db: Path) -> None:
    iin, old, region, district = attached(db, population_db)
    new = other_clinic(db, region, district, old)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "UPDATE clinics SET capacity = max(1, (SELECT count(*) FROM attachments"
            " WHERE clinic_id = ?1 AND detached_on IS NULL)) WHERE clinic_id = ?1",
            (new,),
        )
        conn.execute(
            "INSERT INTO attachments (iin, clinic_id, attached_on, reason)"
            " SELECT ?, ?, '2024-01-01', 'request' WHERE NOT EXISTS"
            " (SELECT 1 FROM attachments WHERE clinic_id = ? AND detached_on IS NULL)",
            (unknown_iin().value, new, new),
        )
    conn.close()
    before = snapshot(db)
    with pytest.raises(NotAllowed):
        store.attach_on_request(iin, new, region=region, district=district)
    assert snapshot(db) == before


# -- events: birth, death, move ----------------------------------------------------------


def newborn(day: dt.date = TODAY - dt.timedelta(days=2)) -> Iin:
    iin = make_iin(day, True, 4321)
    assert iin is not None
    return iin


def test_newborn_goes_to_the_mothers_clinic_once(db: Path, store: HealthStore,
                                                  population_db: Path) -> None:
    mother, clinic_id, region, district = attached(db, population_db)
    child = newborn()
    birth = TODAY - dt.timedelta(days=2)
    for _ in range(3):
        store.run(lambda d: d.attach_newborn(child, mother, birth, home=None, source="act 1"))
    history = store.list_attachments(child)
    assert len(history) == 1
    assert history[0].clinic.clinic_id == clinic_id and history[0].reason is AttachReason.NEWBORN
    period = store.state_paid_period(child, TODAY)
    assert period is not None and period.social_category == "child_under_1"
    assert period.valid_to == dt.date(2026, 5, 30)
    assert store.state_paid_period(child, dt.date(2027, 1, 1)).social_category == (  # type: ignore[union-attr]
        "preschool_child"
    )
    assert [(t, e.iin, e.clinic_id, e.reason) for t, e in events(db)] == [
        ("zhol.health.v1.ClinicAttached", child.value, clinic_id, "newborn"),
    ]


def test_newborn_of_an_unattached_mother_goes_to_the_districts_freest_clinic(
    db: Path, store: HealthStore
) -> None:
    child = newborn()
    home = ("Astana city", "Yesil district")
    expected = rules.choose_clinic(store.list_clinics(*home))
    assert expected is not None
    store.run(lambda d: d.attach_newborn(child, unknown_iin(), TODAY, home=home, source="x"))
    assert store.get_attachment(child).clinic.clinic_id == expected.clinic_id
    # with neither an attached mother nor a known district: insured, attached nowhere
    orphan = make_iin(TODAY, False, 4321)
    assert orphan is not None
    store.run(lambda d: d.attach_newborn(orphan, unknown_iin(), TODAY, home=None, source="x"))
    assert store.list_attachments(orphan) == ()
    assert store.state_paid_period(orphan, TODAY) is not None


def test_death_closes_the_attachment_once(db: Path, store: HealthStore,
                                          population_db: Path) -> None:
    iin, clinic_id, _region, _district = attached(db, population_db)
    died = TODAY - dt.timedelta(days=1)
    first = store.run(lambda d: d.close_on_death(iin, died))
    again = store.run(lambda d: d.close_on_death(iin, died))
    assert first.closed is not None and not again.changed
    with pytest.raises(NotFound):
        store.get_attachment(iin)
    (last,) = store.list_attachments(iin)[-1:]
    assert (last.detached_on, last.detach_reason) == (died, DetachReason.DEATH)
    assert store.state_paid_period(iin, TODAY) is None
    assert [(t, e.clinic_id, e.reason) for t, e in events(db)] == [
        ("zhol.health.v1.AttachmentClosed", clinic_id, "death"),
    ]


def test_move_within_the_district_changes_nothing(db: Path, store: HealthStore,
                                                  population_db: Path) -> None:
    iin, _clinic_id, region, district = attached(db, population_db)
    before = snapshot(db)
    assert not store.run(lambda d: d.follow_address(iin, region, district)).changed
    assert not store.run(lambda d: d.follow_address(unknown_iin(), "Astana city",
                                                    "Nura district")).changed
    assert snapshot(db) == before


def test_move_to_another_district_reattaches(db: Path, store: HealthStore,
                                             population_db: Path) -> None:
    iin, old, region, district = attached(db, population_db)
    target = ("Ulytau region", "Satpayev city")
    assert (region, district) != target
    expected = rules.choose_clinic(store.list_clinics(*target))
    decision = store.run(lambda d: d.follow_address(iin, *target))
    assert decision.opened is not None and expected is not None
    assert decision.opened.clinic.clinic_id == expected.clinic_id
    assert decision.opened.reason is AttachReason.ADDRESS_CHANGE
    assert [(t, e.clinic_id, e.reason) for t, e in events(db)] == [
        ("zhol.health.v1.AttachmentClosed", old, "address_change"),
        ("zhol.health.v1.ClinicAttached", expected.clinic_id, "address_change"),
    ]
    # the same move delivered again finds it done
    assert not store.run(lambda d: d.follow_address(iin, *target)).changed


def test_attachments_keep_their_basis(db: Path, store: HealthStore,
                                     population_db: Path) -> None:
    iin, old, region, district = attached(db, population_db)
    assert store.get_attachment(iin).basis == rules.REGISTERED_ADDRESS  # the seed's
    elsewhere = rows(db, "SELECT clinic_id, region, district FROM clinics WHERE district != ?"
                     " ORDER BY clinic_id LIMIT 1", district)[0]
    decision = store.attach_on_request(iin, elsewhere[0], region=elsewhere[1],
                                       district=elsewhere[2], basis=rules.WORKPLACE)
    assert decision.opened is not None and decision.closed is not None
    assert (decision.opened.basis, decision.closed.basis) == (
        rules.WORKPLACE, rules.REGISTERED_ADDRESS)
    assert [a.basis for a in store.list_attachments(iin)] == [
        rules.REGISTERED_ADDRESS, rules.WORKPLACE]
    before = snapshot(db)
    with pytest.raises(InvalidInput):
        store.attach_on_request(iin, old, region=region, district=district, basis="hobby")
    assert snapshot(db) == before


def by_workplace(db: Path, store: HealthStore, population_db: Path) -> tuple[Iin, str]:
    """A person attached (on request) by their workplace in another district than their
    home: (iin, clinic id)."""
    iin, _old, _region, district = attached(db, population_db)
    clinic, region, there = rows(
        db, "SELECT clinic_id, region, district FROM clinics WHERE district != ?"
        " AND district != 'Satpayev city' ORDER BY clinic_id LIMIT 1", district)[0]
    store.attach_on_request(iin, clinic, region=region, district=there, basis=rules.WORKPLACE)
    return iin, clinic


def test_a_move_keeps_an_attachment_by_a_workplace_that_still_holds(
    db: Path, store: HealthStore, population_db: Path
) -> None:
    iin, clinic = by_workplace(db, store, population_db)
    target = ("Ulytau region", "Satpayev city")
    before = snapshot(db)
    kept = store.run(lambda d: d.follow_address(
        iin, *target, PlaceCheck(clinic, rules.WORKPLACE, holds=True)))
    assert not kept.changed
    assert snapshot(db) == before
    # the workplace no longer holds: to the new district's freest clinic, by the address
    expected = rules.choose_clinic(store.list_clinics(*target))
    assert expected is not None
    moved = store.run(lambda d: d.follow_address(
        iin, *target, PlaceCheck(clinic, rules.WORKPLACE, holds=False)))
    assert moved.opened is not None and moved.closed is not None
    assert (moved.opened.clinic.clinic_id, moved.opened.reason, moved.opened.basis) == (
        expected.clinic_id, AttachReason.ADDRESS_CHANGE, rules.REGISTERED_ADDRESS)
    assert (moved.closed.detach_reason, moved.closed.basis) == (
        DetachReason.ADDRESS_CHANGE, rules.WORKPLACE)


def test_a_move_asked_about_another_attachment_changes_nothing(
    db: Path, store: HealthStore, population_db: Path
) -> None:
    iin, clinic = by_workplace(db, store, population_db)
    target = ("Ulytau region", "Satpayev city")
    before = snapshot(db)
    for checked in (None, PlaceCheck(clinic, rules.SCHOOL, holds=True),
                    PlaceCheck("PHC-00-000", rules.WORKPLACE, holds=True)):
        with pytest.raises(Unavailable):
            store.run(lambda d, c=checked: d.follow_address(iin, *target, c))
    assert snapshot(db) == before


def test_a_health_file_made_before_the_basis_gains_the_column(db: Path,
                                                              population_db: Path) -> None:
    iin, clinic, _region, _district = attached(db, population_db)
    conn = schema.connect(db)
    conn.execute("ALTER TABLE attachments DROP COLUMN basis")
    conn.close()
    store = HealthStore.open(db, clock_on(TODAY))
    try:
        assert store.get_attachment(iin).basis == ""  # unknown: as the registered address
        # an attachment of unknown basis follows a move, as one by the registered address
        moved = store.run(lambda d: d.follow_address(iin, "Ulytau region", "Satpayev city"))
        assert moved.closed is not None and moved.closed.clinic.clinic_id == clinic
    finally:
        store.close()
    assert rows(db, "SELECT basis FROM attachments WHERE iin = ? AND clinic_id = ?",
                iin.value, clinic)[0] == ("",)


# -- disability conclusions --------------------------------------------------------------


def an_adult(db: Path, population_db: Path) -> tuple[Iin, dt.date]:
    iin, birth = rows(
        population_db,
        "SELECT iin, birth_date FROM persons WHERE death_date IS NULL"
        " AND birth_date BETWEEN '1970-01-01' AND '1990-01-01' ORDER BY iin LIMIT 1",
    )[0]
    return Iin(iin), dt.date.fromisoformat(birth)


def test_group_2_conclusion_makes_the_person_state_insured(
    db: Path, store: HealthStore, population_db: Path
) -> None:
    iin, birth = an_adult(db, population_db)
    assert store.state_paid_period(iin, TODAY) is None
    first, last = dt.date(2025, 5, 20), dt.date(2026, 5, 19)
    conclusion = store.record_conclusion(ConclusionRequest(iin, 2, first, last), birth_date=birth)
    assert conclusion.conclusion_id == "MSE-2025-0000001"
    assert conclusion.decided_on == TODAY
    period = store.state_paid_period(iin, TODAY)
    assert period is not None
    assert (period.social_category, period.valid_from, period.valid_to) == (
        "disabled_group_1_2", first, last,
    )
    ((topic, event),) = events(db)
    assert topic == "zhol.health.v1.DisabilityEstablished"
    assert (event.iin, event.group, event.conclusion_id) == (iin.value, 2, "MSE-2025-0000001")
    assert (event.from_date.year, event.from_date.month, event.from_date.day) == (2025, 5, 20)
    assert (event.to_date.year, event.to_date.month, event.to_date.day) == (2026, 5, 19)
    assert store.list_conclusions(iin) == (conclusion,)


def test_group_3_conclusion_makes_the_person_state_insured(
    db: Path, store: HealthStore, population_db: Path
) -> None:
    # The state pays for every person with a disability, group 3 too [o].
    iin, birth = an_adult(db, population_db)
    first, last = dt.date(2024, 12, 31), dt.date(2025, 12, 31)
    store.record_conclusion(ConclusionRequest(iin, 3, first, last), birth_date=birth)
    assert store.state_paid_period(iin, first - dt.timedelta(days=1)) is None
    for day in (first, TODAY, last):
        period = store.state_paid_period(iin, day)
        assert period is not None and period.social_category == "disabled_group_3"
    assert store.state_paid_period(iin, last + dt.timedelta(days=1)) is None
    ((topic, event),) = events(db)
    assert event.group == 3 and event.HasField("to_date")


def test_refused_conclusions_change_nothing(db: Path, store: HealthStore,
                                            population_db: Path) -> None:
    iin, birth = an_adult(db, population_db)
    store.record_conclusion(ConclusionRequest(iin, 2, dt.date(2025, 1, 10), None),
                            birth_date=birth)
    before = snapshot(db)
    with pytest.raises(AlreadyRecorded):
        store.record_conclusion(ConclusionRequest(iin, 2, dt.date(2025, 1, 10), None),
                                birth_date=birth)
    with pytest.raises(NotAllowed):  # overlaps the open-ended one
        store.record_conclusion(ConclusionRequest(iin, 1, dt.date(2025, 3, 1), None),
                                birth_date=birth)
    with pytest.raises(NotAllowed):  # before the person was born
        store.record_conclusion(ConclusionRequest(iin, 1, dt.date(2005, 3, 1), None),
                                birth_date=dt.date(2010, 1, 1))
    with pytest.raises(InvalidInput):
        store.record_conclusion(ConclusionRequest(iin, 5, dt.date(2025, 3, 1), None),
                                birth_date=birth)
    assert snapshot(db) == before


def test_a_conclusion_says_whether_disabled_since_childhood(
    db: Path, store: HealthStore, population_db: Path
) -> None:
    iin, birth = an_adult(db, population_db)
    since = store.record_conclusion(
        ConclusionRequest(iin, 2, dt.date(2024, 5, 20), dt.date(2024, 12, 31),
                          since_childhood=True), birth_date=birth)
    plain = store.record_conclusion(ConclusionRequest(iin, 2, dt.date(2025, 1, 1), None),
                                    birth_date=birth)
    assert (since.since_childhood, plain.since_childhood) == (True, False)
    assert store.list_conclusions(iin) == (since, plain)
    assert [event.since_childhood for _, event in events(db)] == [True, False]
    assert rows(db, "SELECT since_childhood FROM disability_conclusions ORDER BY valid_from"
                ) == [(1,), (0,)]


def test_a_health_file_made_before_since_childhood_gains_the_column(db: Path) -> None:
    conn = schema.connect(db)
    conn.execute("ALTER TABLE disability_conclusions DROP COLUMN since_childhood")
    conn.execute("INSERT INTO disability_conclusions VALUES"
                 " ('MSE-2024-0000001', '900101300017', 1, '2024-01-01', NULL, '2024-01-02')")
    conn.close()
    HealthStore.open(db, clock_on(TODAY)).close()
    assert rows(db, "SELECT conclusion_id, since_childhood FROM disability_conclusions") == [
        ("MSE-2024-0000001", 0)]
