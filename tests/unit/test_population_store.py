"""The population registry's seed and store, on temporary SQLite files (no sockets)."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sqlite_rows import rows
from zhol.adapters.population import reference
from zhol.adapters.population.model import (
    KZ_TIME,
    ActKind,
    AddressChange,
    AlreadyRecorded,
    BirthRegistration,
    Exhausted,
    InvalidInput,
    NotAllowed,
    NotFound,
    Relation,
    Sex,
)
from zhol.adapters.population.schema import TABLE_NAMES
from zhol.adapters.population.seed import AS_OF, seed_database
from zhol.adapters.population.store import PopulationStore, decode_page_token, encode_page_token
from zhol.core.clock import FixedClock
from zhol.core.errors import ZholError
from zhol.core.iin import Iin, make_iin

COUNT = 400
TODAY = dt.date(2025, 6, 2)


def clock_on(day: dt.date, hour: int = 12) -> FixedClock:
    moment = dt.datetime(day.year, day.month, day.day, hour, tzinfo=KZ_TIME)
    return FixedClock(int(moment.timestamp() * 1000))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "population.db"
    seed_database(path, COUNT, seed=11)
    return path


@pytest.fixture
def store(db: Path) -> Iterator[PopulationStore]:
    opened = PopulationStore.open(db, clock_on(TODAY))
    yield opened
    opened.close()


def snapshot(db: Path) -> dict[str, list[tuple]]:
    """Every row of every table: a refused request must leave this exactly as it was."""
    return {table: sorted(rows(db, f"SELECT * FROM {table}"), key=repr) for table in TABLE_NAMES}


@pytest.fixture
def unchanged(db: Path, store: PopulationStore) -> Iterator[None]:
    before = snapshot(db)
    counts = store.counts()
    yield
    assert store.counts() == counts
    assert snapshot(db) == before


def a_mother(db: Path) -> Iin:
    (iin,) = rows(
        db,
        "SELECT p.iin FROM persons p JOIN addresses a ON a.iin = p.iin AND a.valid_to IS NULL"
        " WHERE p.sex = 'F' AND p.death_date IS NULL AND p.birth_date BETWEEN ? AND ?"
        " ORDER BY p.iin LIMIT 1",
        "1975-01-01", "2000-12-31",
    )[0]
    return Iin.parse(iin)


def a_person(db: Path, sex: str, *, dead: bool = False) -> Iin:
    condition = "IS NOT NULL" if dead else "IS NULL"
    (iin,) = rows(
        db,
        f"SELECT iin FROM persons WHERE sex = ? AND death_date {condition}"
        " AND birth_date < '1990-01-01' ORDER BY iin LIMIT 1",
        sex,
    )[0]
    return Iin.parse(iin)


def a_birth(mother: Iin, **changes: object) -> BirthRegistration:
    values: dict[str, object] = {
        "mother": mother,
        "father": None,
        "last_name": "Akhmetova",
        "first_name": "Aruzhan",
        "patronymic": "Nurlanovna",
        "sex": Sex.FEMALE,
        "birth_date": TODAY - dt.timedelta(days=3),
    }
    values.update(changes)
    return BirthRegistration(**values)  # type: ignore[arg-type]


# -- seeding -----------------------------------------------------------------------------


def test_seed_report_matches_the_tables(db: Path, store: PopulationStore) -> None:
    assert store.counts()["persons"] == COUNT
    for table in TABLE_NAMES:
        # the seed registers nobody at a place of temporary residence
        assert (store.counts()[table] > 0) is (table != "temporary_addresses")
    assert rows(db, "PRAGMA journal_mode") == [("wal",)]


def test_seeded_iins_are_valid_and_encode_birth_date_and_sex(db: Path) -> None:
    for iin, sex, birth_date in rows(db, "SELECT iin, sex, birth_date FROM persons"):
        parsed = Iin.parse(iin)
        assert parsed.birth_date.isoformat() == birth_date
        assert parsed.is_female is (sex == "F")
        assert dt.date(1940, 1, 1) <= parsed.birth_date < AS_OF


def test_seeded_families_are_consistent(db: Path) -> None:
    persons = {r[0]: r for r in rows(db, "SELECT * FROM persons")}
    links = set(rows(db, "SELECT iin, relative_iin, relation FROM family_links"))
    spouses = {iin for iin, _rel, relation in links if relation == "spouse"}
    inverse = {"mother": "child", "father": "child", "spouse": "spouse"}
    assert any(relation == "child" for *_x, relation in links)
    for iin, relative, relation in links:
        if relation != "child":
            assert (relative, iin, inverse[relation]) in links
    birth_acts = {r[0]: r for r in rows(db, "SELECT iin, related_iin FROM civil_acts"
                                            " WHERE kind = 'birth'")}
    marriages = set(rows(db, "SELECT iin, related_iin FROM civil_acts WHERE kind = 'marriage'"))
    for child, relative, relation in links:
        if relation == "spouse":
            assert persons[child][4] != persons[relative][4]
            husband, wife = (child, relative) if persons[child][4] == "M" else (relative, child)
            assert (husband, wife) in marriages
        if relation not in ("mother", "father"):
            continue
        parent = persons[relative]
        kid = persons[child]
        assert parent[4] == ("F" if relation == "mother" else "M")
        assert dt.date.fromisoformat(kid[5]) > dt.date.fromisoformat(parent[5]) + dt.timedelta(
            days=18 * 365
        )
        if relation == "mother":
            assert birth_acts[child][1] == relative
        else:
            female = kid[4] == "F"
            forms = {reference.patronymic_for(parent[2], female, kazakh_form=k)
                     for k in (False, True)}
            assert kid[3] in forms
            married_woman = female and child in spouses
            assert reference.male_surname_of(kid[1]) == parent[1] or married_woman
    deceased = {r[0] for r in rows(db, "SELECT iin FROM persons WHERE death_date IS NOT NULL")}
    assert deceased
    assert deceased == {r[0] for r in rows(db, "SELECT iin FROM civil_acts WHERE kind='death'")}


def test_every_person_has_exactly_one_current_address(db: Path) -> None:
    current = rows(db, "SELECT iin, count(*) FROM addresses WHERE valid_to IS NULL GROUP BY iin")
    assert len(current) == COUNT
    assert {n for _iin, n in current} == {1}
    regions = {r[0] for r in rows(db, "SELECT DISTINCT region FROM addresses")}
    assert regions <= set(reference.REGIONS)
    ended = rows(db, "SELECT registered_on, valid_to FROM addresses WHERE valid_to IS NOT NULL")
    assert ended, "married children leave their parents' address"
    assert all(start <= end for start, end in ended)


def test_seeding_is_deterministic(tmp_path: Path) -> None:
    dumps = []
    for name, seed in (("a.db", 5), ("b.db", 5), ("c.db", 6)):
        seed_database(tmp_path / name, 150, seed=seed)
        dumps.append(snapshot(tmp_path / name))
    assert dumps[0] == dumps[1]
    assert dumps[0] != dumps[2]


def test_seeding_refuses_an_existing_file(db: Path) -> None:
    with pytest.raises(FileExistsError):
        seed_database(db, 10)


def test_seeding_zero_persons_gives_an_empty_registry(tmp_path: Path) -> None:
    report = seed_database(tmp_path / "empty.db", 0)
    assert report.persons == 0
    store = PopulationStore.open(tmp_path / "empty.db", clock_on(TODAY))
    try:
        assert store.list_persons().persons == ()
    finally:
        store.close()


def test_opening_a_missing_database_fails(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        PopulationStore.open(tmp_path / "nothing.db", clock_on(TODAY))


# -- reads -------------------------------------------------------------------------------


def test_get_person_returns_identity_and_current_address(db: Path, store: PopulationStore) -> None:
    mother = a_mother(db)
    person = store.get_person(mother)
    assert person.iin == mother
    assert person.sex is Sex.FEMALE
    assert person.address is not None
    assert person.address == store.get_address(mother)
    assert not person.deceased


def test_unknown_iin_is_not_found(store: PopulationStore) -> None:
    unknown = make_iin(dt.date(1977, 7, 7), False, 9876)
    assert unknown is not None
    with pytest.raises(NotFound):
        store.get_person(unknown)
    with pytest.raises(NotFound):
        store.get_address(unknown)
    with pytest.raises(NotFound):
        store.get_family(unknown)


def test_family_of_a_child_and_of_its_mother(db: Path, store: PopulationStore) -> None:
    child, mother = rows(
        db, "SELECT iin, relative_iin FROM family_links WHERE relation = 'mother' LIMIT 1"
    )[0]
    family = store.get_family(Iin.parse(child))
    assert {r.relation for r in family.parents} == {Relation.MOTHER, Relation.FATHER}
    assert Iin.parse(mother) in {r.iin for r in family.parents}
    of_mother = store.get_family(Iin.parse(mother))
    assert Iin.parse(child) in {r.iin for r in of_mother.children}
    assert of_mother.spouse is not None
    assert of_mother.spouse.iin in {r.iin for r in family.parents}


def test_list_persons_pages_cover_everyone_exactly_once(store: PopulationStore) -> None:
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = store.list_persons(page_size=37, page_token=token)
        seen += [p.iin.value for p in page.persons]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == COUNT
    assert seen == sorted(set(seen))
    assert pages == -(-COUNT // 37)


def test_list_persons_page_size_default_and_ceiling(store: PopulationStore) -> None:
    assert len(store.list_persons(0).persons) == 100
    assert len(store.list_persons(5000).persons) == COUNT  # coerced to 1000
    with pytest.raises(InvalidInput):
        store.list_persons(-1)


def test_page_tokens_round_trip(store: PopulationStore) -> None:
    first = store.list_persons(3)
    assert decode_page_token(first.next_page_token) == first.persons[-1].iin.value
    assert encode_page_token(first.persons[-1].iin) == first.next_page_token


@pytest.mark.parametrize(
    "token",
    [
        "!!!!",
        "not base64 at all",
        base64.urlsafe_b64encode(b"hello world!").decode(),
        base64.urlsafe_b64encode(b"850304300179").decode(),  # wrong check digit
        base64.urlsafe_b64encode(b"85030430017").decode(),
        "ж",
        base64.b64encode(b"\xff\xfe\xfd").decode(),
    ],
)
def test_malformed_page_token_is_invalid_input(store: PopulationStore, token: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        store.list_persons(10, token)
    assert isinstance(caught.value, ValueError)


# -- register_birth ----------------------------------------------------------------------


def test_register_birth_creates_the_child_links_address_and_act(
    db: Path, store: PopulationStore
) -> None:
    mother = a_mother(db)
    father = a_person(db, "M")
    before = store.counts()
    registered = store.register_birth(a_birth(mother, father=father, sex=Sex.MALE,
                                              first_name="Alikhan", last_name="Akhmetov"))
    child = registered.child
    assert child.iin.birth_date == TODAY - dt.timedelta(days=3)
    assert not child.iin.is_female
    assert child.citizenship == "KAZ"
    assert store.get_person(child.iin) == child
    mothers_address = store.get_address(mother)
    assert child.address is not None
    assert child.address.region == mothers_address.region
    assert child.address.street == mothers_address.street
    assert child.address.registered_on == TODAY
    assert registered.act.kind is ActKind.BIRTH
    assert registered.act.iin == child.iin
    assert registered.act.registered_on == TODAY
    family = store.get_family(child.iin)
    assert {(r.iin, r.relation) for r in family.parents} == {
        (mother, Relation.MOTHER), (father, Relation.FATHER)
    }
    assert child.iin in {r.iin for r in store.get_family(mother).children}
    assert child.iin in {r.iin for r in store.get_family(father).children}
    after = store.counts()
    assert after["persons"] == before["persons"] + 1
    assert after["family_links"] == before["family_links"] + 4
    assert after["addresses"] == before["addresses"] + 1
    assert after["civil_acts"] == before["civil_acts"] + 1


def test_register_birth_takes_the_next_free_serial_of_the_day(
    db: Path, store: PopulationStore
) -> None:
    mother = a_mother(db)
    (day_text,) = rows(
        db, "SELECT birth_date FROM persons WHERE birth_date > ? ORDER BY birth_date LIMIT 1",
        (mother.birth_date + dt.timedelta(days=16 * 365)).isoformat(),
    )[0]
    day = dt.date.fromisoformat(day_text)
    highest = max(int(iin[7:11]) for (iin,) in rows(
        db, "SELECT iin FROM persons WHERE birth_date = ?", day_text))
    first = store.register_birth(a_birth(mother, birth_date=day, first_name="Dana"))
    second = store.register_birth(a_birth(mother, birth_date=day, first_name="Dinara"))
    assert first.child.iin.birth_date == day
    assert int(first.child.iin.value[7:11]) > highest
    assert int(second.child.iin.value[7:11]) > int(first.child.iin.value[7:11])


def test_register_birth_without_a_father(db: Path, store: PopulationStore) -> None:
    mother = a_mother(db)
    before = store.counts()["family_links"]
    registered = store.register_birth(a_birth(mother))
    assert [r.relation for r in store.get_family(registered.child.iin).parents] == [
        Relation.MOTHER
    ]
    assert store.counts()["family_links"] == before + 2


def test_register_birth_on_todays_date_in_kazakhstan(db: Path) -> None:
    # 20:00 UTC on 1 June is already 2 June in Kazakhstan (UTC+5).
    late = FixedClock(int(dt.datetime(2025, 6, 1, 20, tzinfo=dt.UTC).timestamp() * 1000))
    store = PopulationStore.open(db, late)
    try:
        assert store.today() == dt.date(2025, 6, 2)
        store.register_birth(a_birth(a_mother(db), birth_date=dt.date(2025, 6, 2)))
    finally:
        store.close()


@pytest.mark.usefixtures("unchanged")
def test_birth_with_unknown_mother_changes_nothing(store: PopulationStore) -> None:
    unknown = make_iin(dt.date(1990, 1, 1), True, 9000)
    assert unknown is not None
    with pytest.raises(NotFound):
        store.register_birth(a_birth(unknown))


@pytest.mark.usefixtures("unchanged")
def test_birth_with_unknown_father_changes_nothing(db: Path, store: PopulationStore) -> None:
    unknown = make_iin(dt.date(1990, 1, 1), False, 9000)
    with pytest.raises(NotFound):
        store.register_birth(a_birth(a_mother(db), father=unknown))


@pytest.mark.usefixtures("unchanged")
def test_birth_with_a_male_mother_changes_nothing(db: Path, store: PopulationStore) -> None:
    with pytest.raises(NotAllowed):
        store.register_birth(a_birth(a_person(db, "M")))


@pytest.mark.usefixtures("unchanged")
def test_birth_with_a_father_who_is_not_male_changes_nothing(
    db: Path, store: PopulationStore
) -> None:
    with pytest.raises(NotAllowed):
        store.register_birth(a_birth(a_mother(db), father=a_person(db, "F")))


@pytest.mark.usefixtures("unchanged")
def test_birth_to_a_deceased_mother_changes_nothing(db: Path, store: PopulationStore) -> None:
    with pytest.raises(NotAllowed):
        store.register_birth(a_birth(a_person(db, "F", dead=True),
                                     birth_date=dt.date(2024, 1, 1)))


@pytest.mark.usefixtures("unchanged")
def test_birth_in_the_future_changes_nothing(db: Path, store: PopulationStore) -> None:
    with pytest.raises(InvalidInput):
        store.register_birth(a_birth(a_mother(db), birth_date=TODAY + dt.timedelta(days=1)))


@pytest.mark.usefixtures("unchanged")
def test_birth_before_the_mothers_birth_changes_nothing(db: Path, store: PopulationStore) -> None:
    mother = a_mother(db)
    with pytest.raises(NotAllowed):
        store.register_birth(a_birth(mother, birth_date=mother.birth_date - dt.timedelta(1)))


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    "changes",
    [{"first_name": "  "}, {"last_name": ""}, {"first_name": "A\x00"}, {"sex": "F"},
     {"first_name": "x" * 101}],
)
def test_birth_with_bad_names_or_sex_changes_nothing(
    db: Path, store: PopulationStore, changes: dict[str, object]
) -> None:
    with pytest.raises(InvalidInput):
        store.register_birth(a_birth(a_mother(db), **changes))


def test_duplicate_birth_is_refused_and_changes_nothing(db: Path, store: PopulationStore) -> None:
    mother = a_mother(db)
    store.register_birth(a_birth(mother))
    before = snapshot(db)
    with pytest.raises(AlreadyRecorded):
        store.register_birth(a_birth(mother, first_name=" ARUZHAN ", sex=Sex.FEMALE))
    assert snapshot(db) == before
    twin = store.register_birth(a_birth(mother, first_name="Ayaru"))  # a twin sister is fine
    assert twin.child.birth_date == TODAY - dt.timedelta(days=3)


def test_a_failure_inside_the_transaction_rolls_everything_back(
    db: Path, store: PopulationStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(db)

    def broken(*_args: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store, "_insert_act", broken)
    with pytest.raises(sqlite3.OperationalError):
        store.register_birth(a_birth(a_mother(db)))
    with pytest.raises(sqlite3.OperationalError):
        store.register_death(a_person(db, "M"), TODAY)
    assert snapshot(db) == before


def test_no_serial_left_for_the_day_is_exhausted(db: Path, store: PopulationStore) -> None:
    day = dt.date(2024, 2, 29)
    last = next(i for s in range(9999, 0, -1) if (i := make_iin(day, False, s)) is not None)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("INSERT INTO persons VALUES (?, 'Bekov', 'Ayan', '', 'M', ?, 'KAZ', NULL)",
                     (last.value, day.isoformat()))
    conn.close()
    before = snapshot(db)
    with pytest.raises(Exhausted):
        store.register_birth(a_birth(a_mother(db), birth_date=day))
    assert snapshot(db) == before


# -- register_death ----------------------------------------------------------------------


def test_register_death_records_the_date_and_an_act(db: Path, store: PopulationStore) -> None:
    person = a_person(db, "M")
    family = store.get_family(person)
    address = store.get_address(person)
    act = store.register_death(person, TODAY - dt.timedelta(days=1))
    assert act.kind is ActKind.DEATH
    assert act.iin == person
    dead = store.get_person(person)
    assert dead.deceased
    assert dead.death_date == TODAY - dt.timedelta(days=1)
    assert store.get_family(person) == family
    assert store.get_address(person) == address


def test_second_death_is_refused_and_changes_nothing(db: Path, store: PopulationStore) -> None:
    person = a_person(db, "F")
    store.register_death(person, TODAY)
    before = snapshot(db)
    with pytest.raises(AlreadyRecorded):
        store.register_death(person, TODAY)
    assert snapshot(db) == before


@pytest.mark.usefixtures("unchanged")
def test_death_of_a_seeded_deceased_person_is_refused(db: Path, store: PopulationStore) -> None:
    with pytest.raises(AlreadyRecorded):
        store.register_death(a_person(db, "M", dead=True), TODAY)


@pytest.mark.usefixtures("unchanged")
def test_death_of_unknown_person_changes_nothing(store: PopulationStore) -> None:
    with pytest.raises(NotFound):
        store.register_death(make_iin(dt.date(1950, 5, 5), False, 9001), TODAY)  # type: ignore[arg-type]


@pytest.mark.usefixtures("unchanged")
def test_death_in_the_future_or_before_birth_changes_nothing(
    db: Path, store: PopulationStore
) -> None:
    person = a_person(db, "M")
    with pytest.raises(InvalidInput):
        store.register_death(person, TODAY + dt.timedelta(days=1))
    with pytest.raises(NotAllowed):
        store.register_death(person, person.birth_date - dt.timedelta(days=1))


# -- change_address ----------------------------------------------------------------------

NEW_HOME = AddressChange(
    region="Astana city", district="Yesil district", locality="Astana",
    street="Mangilik El Avenue", building="55", apartment="12",
)


def test_change_address_keeps_the_history(db: Path, store: PopulationStore) -> None:
    person = a_mother(db)
    old = store.get_address(person)
    new = store.change_address(person, NEW_HOME)
    assert new.registered_on == TODAY
    assert store.get_address(person) == new
    assert store.get_person(person).address == new
    history = rows(db, "SELECT region, registered_on, valid_to FROM addresses WHERE iin = ?"
                       " ORDER BY id", person.value)
    assert history[-2] == (old.region, old.registered_on.isoformat(), TODAY.isoformat())
    assert history[-1] == ("Astana city", TODAY.isoformat(), None)


def test_change_address_with_an_explicit_date(db: Path, store: PopulationStore) -> None:
    person = a_mother(db)
    day = max(store.get_address(person).registered_on, TODAY - dt.timedelta(days=30))
    change = dataclasses.replace(NEW_HOME, registered_on=day)
    assert store.change_address(person, change).registered_on == day


@pytest.mark.usefixtures("unchanged")
def test_bad_address_changes_change_nothing(db: Path, store: PopulationStore) -> None:
    person = a_mother(db)
    current = store.get_address(person)

    def change(**fields: object) -> AddressChange:
        values = {
            "region": NEW_HOME.region, "district": NEW_HOME.district,
            "locality": NEW_HOME.locality, "street": NEW_HOME.street,
            "building": NEW_HOME.building, "apartment": NEW_HOME.apartment,
            "registered_on": None,
        }
        values.update(fields)
        return AddressChange(**values)  # type: ignore[arg-type]

    with pytest.raises(InvalidInput):
        store.change_address(person, change(region=" "))
    with pytest.raises(InvalidInput):
        store.change_address(person, change(registered_on=TODAY + dt.timedelta(days=1)))
    with pytest.raises(NotAllowed):
        store.change_address(
            person, change(registered_on=current.registered_on - dt.timedelta(days=1))
        )
    with pytest.raises(NotAllowed):
        store.change_address(a_person(db, "M", dead=True), change())
    with pytest.raises(NotFound):
        store.change_address(make_iin(dt.date(1960, 1, 1), True, 9002), change())  # type: ignore[arg-type]


def test_malformed_iin_text_is_rejected_before_the_store() -> None:
    with pytest.raises(ZholError) as caught:
        Iin.parse("12345")
    assert caught.value.code.name == "InvalidIdentifier"
