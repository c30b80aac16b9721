"""The benefit to a parent raising a disabled child: its rule, the choice of the parent
and the decisions on a temporary SQLite file (no sockets: population is a stand-in
answering from a dict)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from tests.sqlite_rows import rows
from zhol.adapters.bus.client import BusCallError
from zhol.adapters.bus.outbox import read_outbox
from zhol.adapters.pension import calculation, decisions, handlers, rules, schema
from zhol.adapters.pension.model import KZ_TIME, Month, NotAllowed
from zhol.adapters.pension.sources import RecordingReader
from zhol.adapters.pension.store import PensionStore
from zhol.core.clock import FixedClock
from zhol.core.iin import Iin, make_iin
from zhol.population.v1 import population_pb2 as ppb

TODAY = dt.date(2026, 6, 15)
NOW_MS = int(dt.datetime(2026, 6, 15, 12, tzinfo=KZ_TIME).timestamp() * 1000)
CARER = "carer_of_disabled_child"


def iin(born: dt.date, female: bool, serial: int) -> str:
    made = make_iin(born, female, serial)
    assert made is not None
    return made.value


CHILD = iin(dt.date(2015, 3, 10), False, 101)
MOTHER = iin(dt.date(1988, 4, 2), True, 102)
FATHER = iin(dt.date(1986, 9, 30), False, 103)


# -- the rule ----------------------------------------------------------------------------


@pytest.mark.parametrize(("day", "share", "monthly"), [
    (dt.date(2022, 2, 1), "1.4", 50425),  # 36,018 PM x 1.4 = 50,425.2
    (dt.date(2023, 6, 30), "1.4", 56794),  # 40,567 PM x 1.4 = 56,793.8: the last day
    (dt.date(2023, 7, 1), "1.61", 65313),  # 40,567 PM x 1.61 = 65,312.87 from 1 July 2023
    (dt.date(2024, 2, 1), "1.61", 69885),  # 43,407 PM x 1.61 = 69,885.27
    (dt.date(2026, 2, 1), "1.61", 81870),  # 50,851 PM x 1.61 = 81,870.11
    (dt.date(2031, 2, 1), "1.61", 81870),  # the 2026 PM and the share stay in force
])
def test_the_amount_is_a_share_of_the_subsistence_minimum(day: dt.date, share: str,
                                                          monthly: int) -> None:
    """1.61 PM since 1 July 2023, 1.4 before [aqparat.info 10531163; kaz.inform.kz]."""
    due = calculation.carer_of_disabled_child("mother", day, None, dt.date(day.year - 5, 1, 1))
    assert due.amount.amount == monthly
    items = {i.name: i for i in due.amount.items}
    assert items["carer_share"].value == share and items["amount"].value == str(monthly)
    assert "source: " in items["carer_share"].note and "aqparat" in items["carer_share"].note
    assert items["subsistence_minimum"].note.startswith(
        f"rule table SUBSISTENCE_MINIMUM from {min(day.year, 2026)}-01-01; source: the law on"
        " the republican budget")
    with pytest.raises(NotAllowed):  # no row for the year: refused, not guessed
        calculation.carer_of_disabled_child("mother", dt.date(2009, 12, 31), None,
                                            dt.date(2005, 1, 1))


def test_each_month_is_paid_at_the_pm_of_its_year() -> None:
    """A benefit set in 2023 is paid at the 2024, 2025 and 2026 PM in those years."""
    assert [calculation.carer_amount(Month(y, m)) for y, m in (
        (2023, 6), (2023, 7), (2024, 1), (2025, 1), (2026, 1))] == [
        56794, 65313, 69885, rules.tenge(Decimal(46228) * Decimal("1.61")), 81870]


@pytest.mark.parametrize(("born", "to_date", "ends_on"), [
    (dt.date(2015, 3, 10), None, dt.date(2033, 3, 9)),  # open-ended: until 18
    (dt.date(2015, 3, 10), dt.date(2027, 5, 31), dt.date(2027, 5, 31)),  # the conclusion's
    (dt.date(2015, 3, 10), dt.date(2040, 1, 1), dt.date(2033, 3, 9)),  # 18 comes first
    (dt.date(2012, 2, 29), None, dt.date(2030, 2, 28)),  # turns 18 on 1 March 2030
])
def test_the_period_ends_at_the_18th_birthday_or_the_conclusion(
        born: dt.date, to_date: dt.date | None, ends_on: dt.date) -> None:
    due = calculation.carer_of_disabled_child("father", dt.date(2026, 6, 1), to_date, born)
    assert due.ends_on == ends_on
    assert {i.name: i.value for i in due.amount.items}["ends_on"] == ends_on.isoformat()


def test_a_child_is_under_18_on_the_day() -> None:
    born = dt.date(2008, 6, 1)
    assert calculation.is_child_on(born, dt.date(2026, 5, 31))
    assert not calculation.is_child_on(born, dt.date(2026, 6, 1))
    assert rules.CARER_OF_DISABLED_CHILD.child_under == 18


# -- the parent --------------------------------------------------------------------------


class Population:
    """Stands in for the bus's PopulationReader: persons and families from dicts."""

    def __init__(self, persons: dict[str, ppb.Person], family: ppb.Family) -> None:
        self.persons = persons
        self.family = family
        self.asked: list[str] = []

    async def get_person(self, iin: str, *, purpose: str) -> ppb.Person:
        self.asked.append(iin)
        if iin not in self.persons:
            raise BusCallError("GetPerson", grpc.StatusCode.NOT_FOUND, "no such person")
        return self.persons[iin]

    async def get_family(self, iin: str, *, purpose: str) -> ppb.Family:
        self.asked.append(iin)
        return self.family


def family(*parents: tuple[str, str]) -> ppb.Family:
    return ppb.Family(iin=CHILD, parents=[ppb.Relative(iin=i, relation=r) for r, i in parents])


def person(who: str, deceased: bool = False) -> ppb.Person:
    return ppb.Person(iin=who, deceased=deceased)


async def choose(persons: dict[str, ppb.Person], fam: ppb.Family
                 ) -> tuple[decisions.CarerFacts | None, list[str]]:
    population = Population(persons, fam)
    reads = RecordingReader(population, FixedClock(NOW_MS))  # type: ignore[arg-type]
    carer = await handlers.carer_of(reads, CHILD, dt.date(2015, 3, 10), "MSE-7")
    return carer, population.asked


def test_the_mother_comes_before_the_father_whatever_the_order() -> None:
    both = family(("father", FATHER), ("mother", MOTHER))
    assert handlers.carer_candidates(both) == [("mother", MOTHER), ("father", FATHER)]
    assert handlers.carer_candidates(family(("father", FATHER))) == [("father", FATHER)]
    assert handlers.carer_candidates(family()) == []


async def test_the_living_mother_is_the_carer_and_the_father_is_not_read() -> None:
    carer, asked = await choose({MOTHER: person(MOTHER), FATHER: person(FATHER)},
                                family(("mother", MOTHER), ("father", FATHER)))
    assert carer is not None and (carer.parent_iin, carer.relation) == (MOTHER, "mother")
    assert asked == [CHILD, MOTHER]
    assert [(s.service.rpartition("/")[2], s.data_subject) for s in carer.sources] == [
        ("GetFamily", CHILD), ("GetPerson", MOTHER)]
    assert all("conclusion MSE-7" in s.purpose and s.fact for s in carer.sources)


@pytest.mark.parametrize("mother", ["deceased", "unknown to population", "not recorded"])
async def test_else_the_living_father(mother: str) -> None:
    persons = {FATHER: person(FATHER)}
    if mother == "deceased":
        persons[MOTHER] = person(MOTHER, deceased=True)
    parents = [("father", FATHER)] if mother == "not recorded" else [
        ("mother", MOTHER), ("father", FATHER)]
    carer, _ = await choose(persons, family(*parents))
    assert carer is not None and (carer.parent_iin, carer.relation) == (FATHER, "father")


async def test_no_living_parent_no_carer() -> None:
    dead = {MOTHER: person(MOTHER, deceased=True), FATHER: person(FATHER, deceased=True)}
    assert (await choose(dead, family(("mother", MOTHER), ("father", FATHER))))[0] is None
    assert (await choose({}, family()))[0] is None


# -- decisions on a file -----------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "pension.db"
    schema.create_database(path)
    return path


@pytest.fixture
def store(db: Path) -> Iterator[PensionStore]:
    opened = PensionStore.open(db, FixedClock(NOW_MS))
    yield opened
    opened.close()


def decide(db: Path, facts: decisions.DisabilityFacts | decisions.DeathFacts
           ) -> object:
    conn = schema.connect(db)
    try:
        conn.execute("BEGIN IMMEDIATE")
        if isinstance(facts, decisions.DisabilityFacts):
            result: object = decisions.decide_disability(conn, facts, today=TODAY,
                                                         now_ms=NOW_MS)
        else:
            result = decisions.decide_death(conn, facts, today=TODAY, now_ms=NOW_MS)
        conn.execute("COMMIT")
        return result
    finally:
        conn.close()


def conclusion(concl: str, from_date: dt.date, to_date: dt.date | None, parent: str,
               relation: str = "mother") -> decisions.DisabilityFacts:
    carer = decisions.CarerFacts(parent, relation, dt.date(2015, 3, 10), ())
    return decisions.DisabilityFacts(CHILD, 1, from_date, to_date, concl, (), carer)


def test_a_child_s_conclusion_pays_the_child_and_the_parent_once(db: Path,
                                                                 store: PensionStore) -> None:
    facts = conclusion("MSE-1", dt.date(2026, 6, 1), dt.date(2026, 9, 30), MOTHER)
    first = decide(db, facts)
    assert isinstance(first, decisions.DisabilityOutcome)
    assert first.benefit_id and first.carer_benefit_id
    assert decide(db, facts) == decisions.DisabilityOutcome(None, None)  # once
    (carer,) = [b for b in store.list_benefits(Iin(MOTHER)) if b.kind.value == CARER]
    assert (carer.recipient_iin, carer.subject_iin, carer.status) == (MOTHER, CHILD, "active")
    assert carer.amount == 81870  # 1.61 x 50,851
    assert (carer.period_from, carer.period_to) == (dt.date(2026, 6, 1), dt.date(2026, 9, 30))
    assert [str(p.month) for p in carer.payments] == ["2026-06", "2026-07", "2026-08",
                                                      "2026-09"]
    assert carer.basis == decisions.disability_basis("MSE-1")
    assert {b.kind.value for b in store.list_benefits(Iin(CHILD))} == {
        "disability_benefit", CARER}
    published = [(e.topic, e.data_subject) for e in read_outbox(store.connection)]
    assert published == [("zhol.pension.v1.BenefitAssigned", CHILD),
                         ("zhol.pension.v1.BenefitAssigned", MOTHER)]


def test_the_schedule_pays_each_month_at_its_year_s_pm(db: Path, store: PensionStore
                                                       ) -> None:
    decide(db, conclusion("MSE-9", dt.date(2025, 11, 1), None, MOTHER))
    (carer,) = [b for b in store.list_benefits(Iin(MOTHER)) if b.kind.value == CARER]
    paid = {str(p.month): p.amount for p in carer.payments}
    assert paid["2025-11"] == paid["2025-12"] == 74427  # 46,228 x 1.61 = 74,427.08
    assert paid["2026-01"] == paid["2026-10"] == 81870  # 50,851 x 1.61


def test_a_later_conclusion_supersedes_the_carer_benefit(db: Path,
                                                         store: PensionStore) -> None:
    decide(db, conclusion("MSE-1", dt.date(2026, 1, 1), None, MOTHER))
    decide(db, conclusion("MSE-2", dt.date(2026, 7, 1), None, FATHER, "father"))
    carers = {b.basis: b for b in store.list_benefits(Iin(CHILD)) if b.kind.value == CARER}
    old, new = carers[decisions.disability_basis("MSE-1")], carers[
        decisions.disability_basis("MSE-2")]
    assert (old.status, old.stopped_on, new.status) == (
        "superseded", dt.date(2026, 6, 30), "active")
    assert (old.recipient_iin, new.recipient_iin) == (MOTHER, FATHER)
    assert {p.status.value for p in old.payments if p.month >= Month(2026, 7)} == {"stopped"}
    assert {p.status.value for p in old.payments if p.month < Month(2026, 7)} == {"scheduled"}
    # The child's own benefit was superseded the same way, and only its own kind.
    own = [b.status for b in store.list_benefits(Iin(CHILD)) if b.kind.value != CARER]
    assert sorted(own) == ["active", "superseded"]


def test_without_a_carer_only_the_child_s_benefit(db: Path, store: PensionStore) -> None:
    decide(db, conclusion("MSE-1", dt.date(2026, 1, 1), None, MOTHER))
    facts = decisions.DisabilityFacts(CHILD, 2, dt.date(2026, 6, 1), None, "MSE-3", ())
    outcome = decide(db, facts)
    assert isinstance(outcome, decisions.DisabilityOutcome)
    assert outcome.benefit_id and outcome.carer_benefit_id is None
    # The new conclusion ends the earlier carer's benefit, and brings none.
    assert rows(db, "SELECT basis, status, stopped_on FROM benefits WHERE kind = ?", CARER
                ) == [(decisions.disability_basis("MSE-1"), "superseded", "2026-05-31")]
    assert decide(db, facts) == decisions.DisabilityOutcome(None, None)


def test_the_child_s_death_stops_the_carer_benefit(db: Path, store: PensionStore) -> None:
    decide(db, conclusion("MSE-1", dt.date(2026, 1, 1), None, MOTHER))
    died = dt.date(2026, 6, 10)
    decide(db, decisions.DeathFacts(CHILD, died, "MJ-9", None, "", ()))
    for benefit in store.list_benefits(Iin(CHILD)):
        assert (benefit.status, benefit.stopped_on, benefit.stop_reason) == (
            "stopped", died, "death"), benefit.kind
        assert {p.status.value for p in benefit.payments if p.month > Month.of(died)} == {
            "stopped"}
