"""Colleges, universities and studies at them: rules, store, seed and the operator's
commands, on temporary SQLite files (no sockets). Issue 14 item 11: the place of study
beyond school, and the full-time study health's student category rests on."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sqlite_rows import rows
from zhol.adapters.education import rules, schema
from zhol.adapters.education.model import (
    KZ_TIME,
    AlreadyRecorded,
    InstitutionKind,
    InvalidInput,
    NotAllowed,
    NotFound,
    StudyForm,
    StudyLevel,
    StudyRequest,
)
from zhol.adapters.education.seed import STUDENT_AGES, seed_database
from zhol.adapters.education.store import EducationStore
from zhol.adapters.population.seed import seed_database as seed_population
from zhol.cli.main import main
from zhol.core.clock import FixedClock
from zhol.core.iin import Iin, make_iin

TODAY = dt.date(2025, 6, 2)
NOW_MS = int(dt.datetime(2025, 6, 2, 12, tzinfo=KZ_TIME).timestamp() * 1000)
ASTANA = "Astana city"


@pytest.fixture(scope="module")
def population_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("population") / "population.db"
    seed_population(path, 1500, seed=5)
    return path


@pytest.fixture
def db(tmp_path: Path, population_db: Path) -> Path:
    path = tmp_path / "education.db"
    seed_database(path, population_db, seed=7, as_of=TODAY)
    return path


@pytest.fixture
def store(db: Path) -> Iterator[EducationStore]:
    opened = EducationStore.open(db, FixedClock(NOW_MS))
    yield opened
    opened.close()


def tables(db: Path) -> dict[str, list[tuple]]:
    return {t: rows(db, f"SELECT * FROM {t} ORDER BY 1") for t in ("institutions", "studies")}


def person(serial: int = 9100) -> Iin:
    iin = make_iin(dt.date(2004, 3, 15), True, serial)
    assert iin is not None
    return iin


def institution(store: EducationStore, kind: str) -> str:
    return store.list_institutions(ASTANA, "", kind)[0].institution_id


# -- rules -------------------------------------------------------------------------------


def test_the_rule_tables_are_documented_with_their_sources() -> None:
    text = (Path(__file__).parents[2] / "docs" / "rules-health-education.md").read_text()
    for table in ("`STUDY_LEVELS`", "`STUDENT`", "`ATTACHMENT`"):
        row = next(line for line in text.splitlines() if line.startswith(f"| {table} |"))
        assert row.rstrip().endswith("|") and row.split("|")[-2].strip(), table  # a source


def test_each_level_is_taught_at_one_kind_with_a_source() -> None:
    assert set(rules.STUDY_LEVELS) == set(StudyLevel)
    assert rules.STUDY_LEVELS[StudyLevel.VOCATIONAL] is InstitutionKind.COLLEGE
    assert "319-III" in rules.STUDY_LEVELS_SOURCE and "system choice" in rules.STUDY_LEVELS_SOURCE
    rules.check_study(InstitutionKind.UNIVERSITY, StudyLevel.MASTER, TODAY, TODAY)  # today: yes
    with pytest.raises(InvalidInput):
        rules.check_study(InstitutionKind.UNIVERSITY, StudyLevel.MASTER,
                          TODAY + dt.timedelta(days=1), TODAY)
    with pytest.raises(NotAllowed):
        rules.check_study(InstitutionKind.COLLEGE, StudyLevel.BACHELOR, TODAY, TODAY)


# -- the store ---------------------------------------------------------------------------


def test_record_list_and_end_a_study(db: Path, store: EducationStore) -> None:
    iin = person()
    university = institution(store, "university")
    before = store.get_institution(university).students
    study = store.record_study(StudyRequest(iin, university, StudyLevel.BACHELOR,
                                            StudyForm.FULL_TIME, dt.date(2024, 9, 1)))
    assert (study.iin, study.institution.institution_id, study.ended_on) == (iin, university, None)
    assert study.institution.district.region == ASTANA
    assert store.get_institution(university).students == before + 1
    assert store.list_studies(iin) == (study,)
    ended = store.end_study(iin, study.study_id, TODAY)
    assert ended.ended_on == TODAY
    assert store.get_institution(university).students == before
    # a new study after the old one ended, at the same university: newest first
    master = store.record_study(StudyRequest(iin, university, StudyLevel.MASTER,
                                             StudyForm.PART_TIME, TODAY))
    assert [s.study_id for s in store.list_studies(iin)] == [master.study_id, study.study_id]
    assert store.end_study(iin, master.study_id, None).ended_on == TODAY  # default: today


def test_refused_studies_change_nothing(db: Path, store: EducationStore) -> None:
    iin = person(9101)
    college, university = institution(store, "college"), institution(store, "university")
    study = store.record_study(StudyRequest(iin, college, StudyLevel.VOCATIONAL,
                                            StudyForm.FULL_TIME, dt.date(2023, 9, 1)))
    before = tables(db)
    refused = [
        (lambda: store.record_study(StudyRequest(iin, college, StudyLevel.BACHELOR,
                                                 StudyForm.FULL_TIME, TODAY)), NotAllowed),
        (lambda: store.record_study(StudyRequest(iin, college, StudyLevel.VOCATIONAL,
                                                 StudyForm.PART_TIME, TODAY)), AlreadyRecorded),
        (lambda: store.record_study(StudyRequest(iin, university, StudyLevel.BACHELOR,
                                                 StudyForm.FULL_TIME,
                                                 TODAY + dt.timedelta(days=1))), InvalidInput),
        (lambda: store.record_study(StudyRequest(iin, "UNI-999-01", StudyLevel.BACHELOR,
                                                 StudyForm.FULL_TIME, TODAY)), NotFound),
        (lambda: store.end_study(iin, study.study_id, dt.date(2023, 8, 31)), InvalidInput),
        (lambda: store.end_study(iin, study.study_id, TODAY + dt.timedelta(days=1)),
         InvalidInput),
        # another person's study is not found: the data subject is bound to the data
        (lambda: store.end_study(person(9102), study.study_id, TODAY), NotFound),
        (lambda: store.end_study(iin, 10**9, TODAY), NotFound),
        (lambda: store.list_institutions(kind="school"), InvalidInput),
    ]
    for call, error in refused:
        with pytest.raises(error):
            call()
    assert tables(db) == before
    store.end_study(iin, study.study_id, dt.date(2023, 9, 1))  # its first day may be its last
    ended = tables(db)
    with pytest.raises(NotAllowed):
        store.end_study(iin, study.study_id, TODAY)  # ends once
    assert tables(db) == ended


def test_an_older_file_gains_the_tables(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = schema.connect(path)
    try:
        for ddl in schema.TABLES:
            if "institutions" not in ddl and "studies" not in ddl:
                conn.execute(ddl)
        conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION}")
        conn.execute("INSERT INTO districts VALUES (1, 'Astana city', 'Yesil district')")
        schema.ensure_schema(conn)
        conn.execute("INSERT INTO institutions VALUES ('COL-001-01', 'A college', 'college', 1)")
        assert conn.execute("SELECT count(*) FROM studies").fetchone() == (0,)
    finally:
        conn.close()


# -- the seed ----------------------------------------------------------------------------


def test_the_seed_gives_every_region_colleges_and_a_university(
    db: Path, store: EducationStore, tmp_path: Path, population_db: Path,
) -> None:
    regions = {r for (r,) in rows(db, "SELECT DISTINCT region FROM districts")}
    for region in regions:
        kinds = {i.kind for i in store.list_institutions(region)}
        assert kinds == {InstitutionKind.COLLEGE, InstitutionKind.UNIVERSITY}, region
    studies = rows(db, "SELECT s.iin, s.level, s.form, s.started_on, s.ended_on, i.kind"
                       " FROM studies s JOIN institutions i USING (institution_id)")
    assert {form for _i, _l, form, *_ in studies} == {"full_time", "part_time"}
    low, high = STUDENT_AGES
    for iin, level, _form, started, ended, kind in studies:
        assert low <= rules.age_on(Iin(iin).birth_date, TODAY) <= high
        assert rules.STUDY_LEVELS[StudyLevel(level)].value == kind
        assert dt.date.fromisoformat(started) <= TODAY and ended is None
    # deterministic for a seed and date
    again = tmp_path / "again.db"
    seed_database(again, population_db, seed=7, as_of=TODAY)
    assert tables(again) == tables(db)


# -- the operator's commands -------------------------------------------------------------


def test_the_operator_commands(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    iin = person(9103).value
    base = ["adapter", "education"]
    assert main([*base, "institutions", "--db", str(db), "--region", ASTANA,
                 "--kind", "university", "--json"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    university = json.loads(line)["institutionId"]
    record = [*base, "record-study", "--db", str(db), "--iin", iin, "--institution",
              university, "--level", "bachelor", "--form", "full_time",
              "--started-on", "2024-09-01"]
    assert main([*record, "--json"]) == 0
    study_id = json.loads(capsys.readouterr().out)["studyId"]
    assert main(record) == 1  # already studying there: refused, nothing changed
    before = tables(db)
    assert main([*base, "end-study", "--db", str(db), "--iin", iin, "--study-id", study_id,
                 "--ended-on", "2024-08-31"]) == 2
    assert main([*base, "studies", "--db", str(db), "--iin", "12345"]) == 2
    assert main([*base, "studies", "--db", str(db.with_name("none.db")), "--iin", iin]) == 2
    assert tables(db) == before
    assert main([*base, "end-study", "--db", str(db), "--iin", iin, "--study-id", study_id,
                 "--ended-on", "2025-06-01"]) == 0
    assert main([*base, "studies", "--db", str(db), "--iin", iin]) == 0
    out = capsys.readouterr().out
    assert f"{university}" in out and "bachelor full_time from 2024-09-01 to 2025-06-01" in out
