"""The pension system over real gRPC on 127.0.0.1, reading a real population registry.

The pension adapter's bus client points directly at a real population adapter server
(it speaks the same gRPC as a gateway's IS side); events are delivered to the pension
adapter's EventSink over real gRPC as crafted ``EventDelivery`` messages about births
and deaths really registered in that population server. Nothing of ours is mocked.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
from google.protobuf.message import Message

from tests.adapter_helpers import date_pb, rpc_error
from zhol.adapters.bus.outbox import read_outbox
from zhol.adapters.pension import rules, schema
from zhol.adapters.pension.employer_contribution import employer_pension_amount
from zhol.adapters.pension.model import KZ_TIME, Month, make_bin
from zhol.adapters.pension.seed import seed_database
from zhol.adapters.pension.server import PensionServer, PensionSettings, serve
from zhol.adapters.population.seed import seed_database as seed_population
from zhol.adapters.population.server import PopulationServer, PopulationSettings
from zhol.adapters.population.server import serve as serve_population
from zhol.bus.v1 import bus_pb2, bus_pb2_grpc
from zhol.cli.main import main as zhol_main
from zhol.core.clock import FixedClock
from zhol.core.iin import Iin, make_iin
from zhol.health.v1 import health_pb2
from zhol.pension.v1 import claims_pb2 as cpb
from zhol.pension.v1 import claims_pb2_grpc as cpb_grpc
from zhol.pension.v1 import pension_pb2 as pb
from zhol.pension.v1 import pension_pb2_grpc as pb_grpc
from zhol.population.v1 import population_pb2 as ppb
from zhol.population.v1 import population_pb2_grpc as ppb_grpc

pytestmark = pytest.mark.integration

TODAY = dt.date(2026, 6, 15)
MCI = rules.MCI.at(TODAY)
BIRTH = ppb.BirthRegistered.DESCRIPTOR.full_name
DEATH = ppb.DeathRegistered.DESCRIPTOR.full_name
DISABILITY = health_pb2.DisabilityEstablished.DESCRIPTOR.full_name
BENEFIT_ASSIGNED = pb.BenefitAssigned.DESCRIPTOR.full_name
CARER = "carer_of_disabled_child"


def noon(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, 12, tzinfo=KZ_TIME).timestamp() * 1000)


@dataclass
class World:
    pension: pb_grpc.PensionRegistryStub
    sink: bus_pb2_grpc.EventSinkStub
    population: ppb_grpc.PopulationRegistryStub
    pension_db: Path
    population_db: Path
    clock: FixedClock
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    def rows(self, sql: str, *args: object, db: Path | None = None) -> list[tuple]:
        conn = sqlite3.connect(db or self.pension_db)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def people(self, sql: str, *args: object) -> list[tuple]:
        return self.rows(sql, *args, db=self.population_db)

    def snapshot(self) -> dict[str, list[tuple]]:
        return {t: sorted(self.rows(f"SELECT * FROM {t}"), key=repr) for t in schema.TABLE_NAMES}

    def events(self) -> list[tuple[str, str]]:
        conn = sqlite3.connect(self.pension_db)
        try:
            return [(e.topic, e.data_subject) for e in read_outbox(conn)]
        finally:
            conn.close()

    async def deliver(self, topic: str, payload: Message | bytes, *,
                      message_id: str | None = None) -> None:
        data = payload if isinstance(payload, bytes) else payload.SerializeToString()
        await self.sink.Receive(bus_pb2.EventDelivery(
            event_id=str(uuid.uuid4()), message_id=message_id or str(uuid.uuid4()), topic=topic,
            publisher="KZ/GOV/MJ/population", subscriber="KZ/GOV/MLSPP/pension",
            payload=data, occurred_at_unix_ms=self.clock.now_ms(), attempt=1,
        ))

    async def register_birth(self, mother: str, day: dt.date, first_name: str
                             ) -> ppb.BirthRegistered:
        registered = await self.population.RegisterBirth(ppb.RegisterBirthRequest(
            mother_iin=mother, last_name="Test", first_name=first_name, sex=ppb.SEX_FEMALE,
            birth_date=date_pb(day),
        ))
        return ppb.BirthRegistered(child_iin=registered.child.iin, mother_iin=mother,
                                   birth_date=date_pb(day), act_id=registered.act.act_id)

    async def benefits(self, iin: str) -> dict[str, pb.Benefit]:
        listed = await self.pension.ListBenefits(pb.ListBenefitsRequest(iin=iin))
        return {b.kind: b for b in listed.benefits}


async def start(tmp_path: Path, *, bus: bool = True
                ) -> tuple[World, list[PensionServer | PopulationServer]]:
    population_db = tmp_path / "population.db"
    pension_db = tmp_path / "pension.db"
    seed_population(population_db, 300, seed=3)
    seed_database(pension_db, population_db, as_of=TODAY, seed=1)
    clock = FixedClock(noon(TODAY))
    population = await serve_population(PopulationSettings(db_path=population_db), clock=clock)
    settings = PensionSettings(
        db_path=pension_db, gateway_address=population.address if bus else "",
        publish_events=False, port_file=tmp_path / "run" / "pension.port",
    )
    pension = await serve(settings, clock=clock)
    to_pension = grpc.aio.insecure_channel(pension.address)
    to_population = grpc.aio.insecure_channel(population.address)
    return World(
        pb_grpc.PensionRegistryStub(to_pension), bus_pb2_grpc.EventSinkStub(to_pension),
        ppb_grpc.PopulationRegistryStub(to_population), pension_db, population_db, clock,
        [to_pension, to_population],
    ), [pension, population]


async def stop(world: World, servers: list[PensionServer | PopulationServer]) -> None:
    for channel in world.channels:
        await channel.close()
    for server in servers:
        await server.stop(0)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    running, servers = await start(tmp_path)
    try:
        yield running
    finally:
        await stop(running, servers)
    assert not (tmp_path / "run" / "pension.port").exists()


def a_childless_woman(world: World) -> str:
    return world.people(
        "SELECT p.iin FROM persons p WHERE p.sex = 'F' AND p.death_date IS NULL"
        " AND p.birth_date BETWEEN '1988-01-01' AND '2000-12-31' AND NOT EXISTS"
        " (SELECT 1 FROM family_links f WHERE f.iin = p.iin AND f.relation = 'child')"
        " ORDER BY p.iin LIMIT 1"
    )[0][0]


# -- births ------------------------------------------------------------------------------


async def test_childbirth_benefits_by_birth_order(world: World) -> None:
    mother = a_childless_woman(world)
    births = [await world.register_birth(mother, day, name) for day, name in (
        (dt.date(2019, 3, 1), "Aigerim"), (dt.date(2021, 4, 2), "Dana"),
        (dt.date(2023, 5, 3), "Saule"), (TODAY - dt.timedelta(days=3), "Aliya"),
    )]
    await world.deliver(BIRTH, births[0])  # the first child
    await world.deliver(BIRTH, births[3])  # the fourth child
    await world.deliver(BIRTH, births[1])  # the second child, delivered late

    def by_subject(kind: str, listed: list[pb.Benefit]) -> dict[str, pb.Benefit]:
        return {b.subject_iin: b for b in listed if b.kind == kind}

    listed = list((await world.pension.ListBenefits(pb.ListBenefitsRequest(iin=mother))).benefits)
    lump = by_subject("childbirth_lump_sum", listed)
    care = by_subject("child_care_allowance", listed)
    first, second, fourth = births[0].child_iin, births[1].child_iin, births[3].child_iin
    assert {iin: b.amount for iin, b in lump.items()} == {  # the MCI on the birth date
        first: 38 * rules.MCI.at(dt.date(2019, 1, 1)),
        second: 38 * rules.MCI.at(dt.date(2021, 1, 1)), fourth: 63 * MCI}
    assert all(b.recipient_iin == mother and b.currency == "KZT" for b in listed)
    assert lump[fourth].frequency == "one_off" and len(lump[fourth].payments) == 1
    # The child-care allowance rises with the birth order (its floor does, by the table).
    floor = {b.subject_iin: next(i.value for i in b.calculation if i.name == "floor")
             for b in care.values()}
    assert int(floor[fourth]) > int(floor[second]) > int(floor[first])
    assert care[fourth].frequency == "monthly" and len(care[fourth].payments) == 18
    assert len(care[first].payments) == 12  # one before 1 January 2023: until one
    regime = {b.subject_iin: next(i.value for i in b.calculation if i.name == "regime")
              for b in care.values()}
    assert set(regime.values()) <= {"insured", "uninsured"} and len(regime) == 3
    items = {i.name: i.value for i in lump[fourth].calculation}
    assert (items["birth_order"], items["lump_sum_mci"], items["mci"]) == ("4", "63", str(MCI))
    (read,) = lump[fourth].sources
    assert read.service == "zhol.population.v1.PopulationRegistry/GetFamily"
    assert (read.provider, read.data_subject) == ("KZ/GOV/MJ/population", mother)
    assert read.purpose and read.fact
    as_subject = await world.pension.ListBenefits(pb.ListBenefitsRequest(iin=fourth))
    assert {b.kind for b in as_subject.benefits} == {"childbirth_lump_sum", "child_care_allowance"}
    assert world.events() == [("zhol.pension.v1.BenefitAssigned", mother)] * 6


async def test_a_birth_is_paid_once_however_often_it_arrives(world: World) -> None:
    mother = a_childless_woman(world)
    birth = await world.register_birth(mother, TODAY - dt.timedelta(days=1), "Madina")
    message_id = str(uuid.uuid4())
    await world.deliver(BIRTH, birth, message_id=message_id)
    after_first = world.snapshot()
    await world.deliver(BIRTH, birth, message_id=message_id)  # the same delivery again
    assert world.snapshot() == after_first
    await world.deliver(BIRTH, birth)  # the same birth under a new message id
    counts = world.rows("SELECT kind, count(*) FROM benefits WHERE subject_iin = ?"
                        " GROUP BY kind", birth.child_iin)
    assert dict(counts) == {"childbirth_lump_sum": 1, "child_care_allowance": 1}
    assert len(world.events()) == 2
    assert world.rows("SELECT count(*) FROM bus_inbox") == [(2,)]


async def test_unknown_mother_is_not_found_and_nothing_is_written(world: World) -> None:
    unknown = make_iin(dt.date(1977, 7, 7), True, 9876)
    child = make_iin(TODAY, False, 9875)
    assert unknown is not None and child is not None
    before = world.snapshot()
    event = ppb.BirthRegistered(child_iin=child.value, mother_iin=unknown.value,
                                birth_date=date_pb(TODAY), act_id="MJ-9999999999")
    error = await rpc_error(world.deliver(BIRTH, event))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    # A known mother and a child who is not hers: NOT_FOUND as well.
    event.mother_iin = a_childless_woman(world)
    error = await rpc_error(world.deliver(BIRTH, event))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert world.snapshot() == before


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff\xff\xff",
        ppb.BirthRegistered(child_iin="123", mother_iin="x", birth_date=ppb.Date(year=2026)),
    ],
)
async def test_malformed_events_are_invalid_argument(world: World, payload: object) -> None:
    before = world.snapshot()
    error = await rpc_error(world.deliver(BIRTH, payload))  # type: ignore[arg-type]
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert world.snapshot() == before


# -- deaths ------------------------------------------------------------------------------


async def test_death_stops_payments_and_assigns_burial_to_the_spouse(world: World) -> None:
    """A pensioner with savings dies: the budget's 35 MCI and the savings' 94 MCI (at most
    the balance, taken from it) to the spouse."""
    pensioners = {iin for (iin,) in world.rows(
        "SELECT a.iin FROM pension_assignments a JOIN pension_savings s ON s.iin = a.iin"
        " WHERE s.balance > 0")}
    couples = world.people(
        "SELECT f.iin, f.relative_iin FROM family_links f"
        " JOIN persons a ON a.iin = f.iin JOIN persons b ON b.iin = f.relative_iin"
        " WHERE f.relation = 'spouse' AND a.death_date IS NULL AND b.death_date IS NULL"
        " ORDER BY f.iin"
    )
    deceased, spouse = next((a, b) for a, b in couples if a in pensioners)
    death_day = TODAY - dt.timedelta(days=2)
    (balance,) = world.rows("SELECT balance FROM pension_savings WHERE iin = ?", deceased)[0]
    died = await world.population.RegisterDeath(
        ppb.RegisterDeathRequest(iin=deceased, death_date=date_pb(death_day)))
    event = ppb.DeathRegistered(iin=deceased, death_date=date_pb(death_day),
                                act_id=died.act.act_id)
    await world.deliver(DEATH, event)

    status = await world.pension.GetPensionStatus(pb.GetPensionStatusRequest(iin=deceased))
    savings = min(94 * MCI, balance)
    assert status.savings_balance == balance - savings
    assert not status.receives_pension
    (assignment,) = status.assignments
    assert (assignment.status, assignment.stop_reason) == ("stopped", "death")
    later = {p.status for p in assignment.payments
             if (p.month.year, p.month.month) > (death_day.year, death_day.month)}
    assert later == {"stopped"}
    benefits = await world.benefits(spouse)
    burial = benefits["burial_benefit"]
    assert (burial.amount, burial.recipient_iin, burial.subject_iin) == (35 * MCI, spouse,
                                                                        deceased)
    from_savings = benefits["burial_savings_payment"]
    assert (from_savings.amount, from_savings.recipient_iin, from_savings.subject_iin,
            from_savings.frequency) == (savings, spouse, deceased, "one_off")
    reads = [(s.service.rpartition("/")[2], s.data_subject) for s in burial.sources]
    assert reads == [("GetPerson", deceased), ("GetFamily", deceased), ("GetPerson", spouse)]
    assert from_savings.sources == burial.sources
    assert world.events() == [("zhol.pension.v1.PaymentsStopped", deceased)] + [
        ("zhol.pension.v1.BenefitAssigned", spouse)] * 2
    # The stop names what it rests on (the portal's feed shows it as the basis).
    conn = sqlite3.connect(world.pension_db)
    try:
        stopped = pb.PaymentsStopped.FromString(read_outbox(conn)[0].payload)
    finally:
        conn.close()
    assert stopped.basis == f"population DeathRegistered, act {died.act.act_id}"
    # No child under 18: no survivor pension.
    assert world.rows("SELECT count(*) FROM pension_assignments WHERE kind = 'survivor'") == [
        (0,)]
    before = world.snapshot()
    await world.deliver(DEATH, event)  # a second delivery of the same death
    after = world.snapshot()
    assert {t: v for t, v in after.items() if t != "bus_inbox"} == {
        t: v for t, v in before.items() if t != "bus_inbox"}


async def test_death_of_a_non_recipient_pays_only_from_the_savings(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    """Neither pension nor benefit on the death date: no budget burial payment (the log
    says why); the savings' payment to the spouse."""
    paid = {iin for (iin,) in world.rows("SELECT iin FROM pension_assignments UNION"
                                         " SELECT recipient_iin FROM benefits")}
    saved = {iin for (iin,) in world.rows("SELECT iin FROM pension_savings WHERE balance > 0")}
    couples = world.people(
        "SELECT f.iin, f.relative_iin FROM family_links f"
        " JOIN persons a ON a.iin = f.iin JOIN persons b ON b.iin = f.relative_iin"
        " WHERE f.relation = 'spouse' AND a.death_date IS NULL AND b.death_date IS NULL"
        " ORDER BY f.iin"
    )
    deceased, spouse = next((a, b) for a, b in couples if a in saved - paid)
    death_day = TODAY - dt.timedelta(days=1)
    died = await world.population.RegisterDeath(
        ppb.RegisterDeathRequest(iin=deceased, death_date=date_pb(death_day)))
    with caplog.at_level(logging.INFO, logger="zhol.adapters.pension"):
        await world.deliver(DEATH, ppb.DeathRegistered(
            iin=deceased, death_date=date_pb(death_day), act_id=died.act.act_id))
    benefits = await world.benefits(spouse)
    assert set(benefits) == {"burial_savings_payment"}
    assert benefits["burial_savings_payment"].subject_iin == deceased
    assert any("no budget burial payment: the deceased received no pension" in r.getMessage()
               and deceased not in r.getMessage() for r in caplog.records)


async def test_death_assigns_a_survivor_pension_to_each_living_minor_child(world: World
                                                                          ) -> None:
    father, mother = world.people(
        "SELECT h.iin, w.iin FROM family_links f JOIN persons h ON h.iin = f.iin"
        " JOIN persons w ON w.iin = f.relative_iin WHERE f.relation = 'spouse'"
        " AND h.sex = 'M' AND h.death_date IS NULL AND w.death_date IS NULL"
        " AND h.birth_date < '1980-01-01' AND w.birth_date < '1980-01-01'"
        " ORDER BY h.iin LIMIT 1")[0]

    async def birth(years: int, name: str) -> str:
        registered = await world.population.RegisterBirth(ppb.RegisterBirthRequest(
            mother_iin=mother, father_iin=father, last_name="Test", first_name=name,
            sex=ppb.SEX_MALE, birth_date=date_pb(TODAY.replace(year=TODAY.year - years)),
        ))
        return registered.child.iin

    adult, minor, another, gone = [await birth(y, n) for y, n in (
        (25, "Arman"), (10, "Bolat"), (3, "Dauren"), (5, "Erlan"))]
    await world.population.RegisterDeath(ppb.RegisterDeathRequest(
        iin=gone, death_date=date_pb(TODAY - dt.timedelta(days=30))))
    death_day = TODAY - dt.timedelta(days=1)
    died = await world.population.RegisterDeath(
        ppb.RegisterDeathRequest(iin=father, death_date=date_pb(death_day)))
    # Who qualifies, by population's own tables: the father's living children under 18.
    cutoff = death_day.replace(year=death_day.year - 18).isoformat()
    minors = {iin for (iin,) in world.people(
        "SELECT c.iin FROM family_links f JOIN persons c ON c.iin = f.relative_iin"
        " WHERE f.iin = ? AND f.relation = 'child' AND c.death_date IS NULL"
        " AND c.birth_date > ?", father, cutoff)}
    assert {minor, another} <= minors and not {adult, gone} & minors
    event = ppb.DeathRegistered(iin=father, death_date=date_pb(death_day),
                                act_id=died.act.act_id)
    message_id = str(uuid.uuid4())
    await world.deliver(DEATH, event, message_id=message_id)

    survivors = world.rows("SELECT iin, breadwinner_iin, ends_on FROM pension_assignments"
                           " WHERE kind = 'survivor'")
    assert sorted(iin for iin, _, _ in survivors) == sorted(minors)  # once each
    assert {b for _, b, _ in survivors} == {father}
    share = rules.SURVIVOR.row(TODAY, len(minors)).pm_share
    family = rules.tenge(rules.SUBSISTENCE_MINIMUM.at(TODAY) * share)
    status = await world.pension.GetPensionStatus(pb.GetPensionStatusRequest(iin=minor))
    (pension,) = status.assignments
    assert status.receives_pension and (pension.kind, pension.status) == ("survivor", "active")
    assert (pension.breadwinner_iin, pension.monthly_amount) == (
        father, rules.tenge(Decimal(family) / len(minors)))
    turns_18 = TODAY.replace(year=TODAY.year + 8) - dt.timedelta(days=1)
    assert (pension.ends_on.year, pension.ends_on.month, pension.ends_on.day) == (
        turns_18.year, turns_18.month, turns_18.day)
    items = {i.name: i.value for i in pension.calculation.items}
    assert (items["dependants"], items["family_amount"]) == (str(len(minors)), str(family))
    assert pension.calculation.monthly_amount == pension.monthly_amount
    assert pension.calculation.explanation and not pension.calculation.retirement_age
    reads = [(s.service.rpartition("/")[2], s.data_subject) for s in pension.sources]
    assert reads == [("GetPerson", father), ("GetFamily", father), ("GetPerson", minor),
                     ("GetFamily", minor), ("GetPerson", mother)]  # is the mother living
    assert all(s.purpose and s.fact for s in pension.sources)
    assert pension.payments[0].month == pb.Month(year=2026, month=7)
    for nobody in (adult, gone):
        none = await world.pension.GetPensionStatus(pb.GetPensionStatusRequest(iin=nobody))
        assert not none.assignments
    published = [subject for topic, subject in world.events()
                 if topic == "zhol.pension.v1.PensionAssigned"]
    assert sorted(published) == sorted(minors)

    before = world.snapshot()
    await world.deliver(DEATH, event, message_id=message_id)  # the same delivery again
    assert world.snapshot() == before
    await world.deliver(DEATH, event)  # the same death under a new message id
    after = world.snapshot()
    assert {t: v for t, v in after.items() if t != "bus_inbox"} == {
        t: v for t, v in before.items() if t != "bus_inbox"}


async def test_the_second_parent_s_death_makes_an_orphan_paid_1_54_pm_each(world: World
                                                                         ) -> None:
    father, mother = living_couples(world)[3]
    child = await a_child_of(world, father, mother, 9)

    async def dies(iin: str, day: dt.date) -> ppb.DeathRegistered:
        died = await world.population.RegisterDeath(
            ppb.RegisterDeathRequest(iin=iin, death_date=date_pb(day)))
        return ppb.DeathRegistered(iin=iin, death_date=date_pb(day), act_id=died.act.act_id)

    world.clock.current_ms = noon(dt.date(2026, 3, 12))
    await world.deliver(DEATH, await dies(father, dt.date(2026, 3, 10)))
    (first,) = (await world.pension.GetPensionStatus(
        pb.GetPensionStatusRequest(iin=child))).assignments
    items = {i.name for i in first.calculation.items}
    assert "dependants" in items and "orphan_share" not in items  # the mother is living
    world.clock.current_ms = noon(dt.date(2026, 5, 21))
    mother_dies = await dies(mother, dt.date(2026, 5, 20))
    await world.deliver(DEATH, mother_dies)
    status = await world.pension.GetPensionStatus(pb.GetPensionStatusRequest(iin=child))
    by_breadwinner = {a.breadwinner_iin: a for a in status.assignments}
    orphan, old = by_breadwinner[mother], by_breadwinner[father]
    assert (orphan.status, old.status) == ("active", "stopped")
    assert orphan.monthly_amount == 78311  # 1.54 x 50,851 (zakon.kz 6509919: 78,311)
    items = {i.name: i.value for i in orphan.calculation.items}
    assert (items["orphan_share"], items["orphaned_on"]) == ("1.54", "2026-05-20")
    assert f"replaces survivor pension {old.assignment_id} from 2026-05" in orphan.basis
    assert orphan.assignment_id in old.stop_reason
    assert (old.stopped_on.month, old.stopped_on.day) == (4, 30)
    # Never paid twice: April at the family's share (0.92 PM), from May (the second
    # death's month) the orphan's pension alone.
    live = {}
    for pension in (old, orphan):
        for p in pension.payments:
            if p.status != "stopped":
                month = (p.month.year, p.month.month)
                assert month not in live
                live[month] = p.amount
    assert (live[(2026, 4)], live[(2026, 5)], live[(2026, 12)]) == (46783, 78311, 78311)
    assert min(live) == (2026, 4) and old.monthly_amount == 46783  # its last month's
    ends = dt.date(2035, 6, 14)  # born on 15 June 2017: the day before 18
    assert (orphan.ends_on.year, orphan.ends_on.month, orphan.ends_on.day) == (
        ends.year, ends.month, ends.day)
    reads = [(s.service.rpartition("/")[2], s.data_subject) for s in orphan.sources]
    assert reads[-2:] == [("GetFamily", child), ("GetPerson", father)]
    # The same death again, or the father's again: nothing more (one orphan's pension).
    before = world.snapshot()
    await world.deliver(DEATH, mother_dies)
    after = world.snapshot()
    assert {t: v for t, v in after.items() if t != "bus_inbox"} == {
        t: v for t, v in before.items() if t != "bus_inbox"}


@pytest.mark.parametrize(("second_death", "orphan"), [
    (dt.date(2023, 6, 30), False), (dt.date(2023, 7, 1), True)])
async def test_an_orphan_s_pension_from_1_july_2023(world: World, second_death: dt.date,
                                                   orphan: bool) -> None:
    father, mother = living_couples(world)[4]
    child = await a_child_of(world, father, mother, 12)
    for parent, day in ((father, dt.date(2023, 1, 15)), (mother, second_death)):
        died = await world.population.RegisterDeath(
            ppb.RegisterDeathRequest(iin=parent, death_date=date_pb(day)))
    await world.deliver(DEATH, ppb.DeathRegistered(
        iin=mother, death_date=date_pb(second_death), act_id=died.act.act_id))
    (pension,) = (await world.pension.GetPensionStatus(
        pb.GetPensionStatusRequest(iin=child))).assignments
    items = {i.name: i.value for i in pension.calculation.items}
    # Before 1 July 2023 no orphan's size is on record: the family's share (one child).
    assert ("orphan_share" in items, pension.monthly_amount) == (
        (True, 78311) if orphan else (False, 46783))
    assert "loss of both parents" in pension.basis if orphan else "dependants" in items


async def test_death_of_a_living_person_is_refused(world: World) -> None:
    living = a_childless_woman(world)
    before = world.snapshot()
    event = ppb.DeathRegistered(iin=living, death_date=date_pb(TODAY), act_id="MJ-1")
    error = await rpc_error(world.deliver(DEATH, event))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    unknown = make_iin(dt.date(1950, 1, 1), False, 9999)
    assert unknown is not None
    event.iin = unknown.value
    error = await rpc_error(world.deliver(DEATH, event))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert world.snapshot() == before


async def test_the_funeral_arranger_claims_the_burial_payment_once(world: World) -> None:
    """The person who arranged the burial claims the budget's burial payment (35 MCI of
    the death date's MCI) for a pensioner whose death pension has not processed yet;
    refusals change nothing, and the death's registration then pays no second one."""
    claims = cpb_grpc.PensionClaimsStub(world.channels[0])
    pensioners = {iin for (iin,) in world.rows(
        "SELECT iin FROM pension_assignments WHERE kind = 'age' AND status = 'active'")}
    living = {iin for (iin,) in world.people("SELECT iin FROM persons"
                                             " WHERE death_date IS NULL")}
    deceased = sorted(pensioners & living)[0]
    arranger = a_childless_woman(world)
    unknown = make_iin(dt.date(1950, 1, 1), False, 9999)
    assert unknown is not None

    def claim(claimant: str, died: str) -> object:
        return claims.ClaimBurialBenefit(cpb.ClaimBurialBenefitRequest(
            claimant_iin=claimant, deceased_iin=died))

    before = world.snapshot()
    for claimant, died, code in (
            ("12345", deceased, grpc.StatusCode.INVALID_ARGUMENT),  # bad IIN
            (arranger, arranger, grpc.StatusCode.INVALID_ARGUMENT),  # the claimant's own
            (arranger, deceased, grpc.StatusCode.FAILED_PRECONDITION),  # no such death
            (arranger, unknown.value, grpc.StatusCode.FAILED_PRECONDITION)):  # unknown
        assert (await rpc_error(claim(claimant, died))).code() == code
    assert world.snapshot() == before

    death_day = TODAY - dt.timedelta(days=2)
    died = await world.population.RegisterDeath(
        ppb.RegisterDeathRequest(iin=deceased, death_date=date_pb(death_day)))
    assert (await rpc_error(claim(unknown.value, deceased))).code() == (
        grpc.StatusCode.FAILED_PRECONDITION)  # a claimant population does not know
    benefit = await claim(arranger, deceased)
    assert (benefit.kind, benefit.recipient_iin, benefit.subject_iin, benefit.amount,
            benefit.frequency) == ("burial_benefit", arranger, deceased, 35 * MCI, "one_off")
    assert 35 * MCI == 151_375
    items = {i.name: i for i in benefit.calculation}
    assert items["recipient"].value == "funeral_arranger" and "art. 242" in (
        items["recipient"].note)
    assert "age pension" in items["deceased_received"].value
    assert [(s.service.rpartition("/")[2], s.data_subject) for s in benefit.sources] == [
        ("GetPerson", deceased), ("GetPerson", arranger)]
    assert [(p.month.month, p.amount) for p in benefit.payments] == [(6, 151_375)]
    assert world.events()[-1] == ("zhol.pension.v1.BenefitAssigned", arranger)

    # Claimed once: a second claim, by anyone, is refused and changes nothing.
    after = world.snapshot()
    again = await rpc_error(claim(a_childless_woman(world), deceased))
    assert again.code() == grpc.StatusCode.ALREADY_EXISTS
    assert world.snapshot() == after
    # The death's registration stops the pension and decides no second burial payment.
    await world.deliver(DEATH, ppb.DeathRegistered(
        iin=deceased, death_date=date_pb(death_day), act_id=died.act.act_id))
    assert world.rows("SELECT recipient_iin FROM benefits WHERE kind = 'burial_benefit'"
                      " AND subject_iin = ?", deceased) == [(arranger,)]


async def test_no_burial_payment_is_claimed_for_a_death_that_made_none_due(world: World
                                                                          ) -> None:
    paid = {iin for (iin,) in world.rows("SELECT iin FROM pension_assignments UNION"
                                         " SELECT recipient_iin FROM benefits")}
    candidates = [iin for (iin,) in world.people(
        "SELECT iin FROM persons WHERE death_date IS NULL AND birth_date < '2000-01-01'"
        " ORDER BY iin") if iin not in paid]
    deceased = candidates[0]
    await world.population.RegisterDeath(
        ppb.RegisterDeathRequest(iin=deceased, death_date=date_pb(TODAY)))
    before = world.snapshot()
    error = await rpc_error(cpb_grpc.PensionClaimsStub(world.channels[0]).ClaimBurialBenefit(
        cpb.ClaimBurialBenefitRequest(claimant_iin=a_childless_woman(world),
                                      deceased_iin=deceased)))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert world.snapshot() == before


# -- disability --------------------------------------------------------------------------


async def test_disability_benefit_by_group(world: World) -> None:
    person = a_childless_woman(world)
    event = health_pb2.DisabilityEstablished(
        iin=person, group=1, from_date=health_pb2.Date(year=2026, month=6, day=1),
        conclusion_id="MSE-2026-0000001",
    )
    await world.deliver(DISABILITY, event)
    await world.deliver(DISABILITY, event)  # a new message id, the same conclusion
    listed = await world.pension.ListBenefits(pb.ListBenefitsRequest(iin=person))
    (benefit,) = listed.benefits
    assert (benefit.kind, benefit.amount, benefit.frequency) == (
        "disability_benefit", 111872, "monthly")  # 2.2 x 50,851 PM since 1 July 2023
    assert benefit.sources[0].data_subject == person
    before = world.snapshot()
    unknown = make_iin(dt.date(1980, 1, 1), True, 9998)
    assert unknown is not None
    event.iin = unknown.value
    error = await rpc_error(world.deliver(DISABILITY, event))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    event.iin, event.group = person, 4
    error = await rpc_error(world.deliver(DISABILITY, event))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert world.snapshot() == before
    assert [s.service.rpartition("/")[2] for s in benefit.sources] == ["GetPerson"]


async def test_an_adult_disabled_since_childhood_is_paid_the_childhood_rate(
        world: World) -> None:
    person = a_childless_woman(world)
    event = health_pb2.DisabilityEstablished(
        iin=person, group=2, from_date=health_pb2.Date(year=2026, month=6, day=1),
        conclusion_id="MSE-2026-0000021", since_childhood=True)
    await world.deliver(DISABILITY, event)
    (benefit,) = (await world.pension.ListBenefits(pb.ListBenefitsRequest(iin=person))
                  ).benefits
    assert benefit.amount == 93057  # 1.83 x 50,851, not the group's 1.76 (89,498)
    assert {i.name: i.value for i in benefit.calculation}["since_childhood"] == "yes"


def living_couples(world: World) -> list[tuple[str, str]]:
    """(father, mother), both living, married, born before 1990."""
    return world.people(
        "SELECT h.iin, w.iin FROM family_links f JOIN persons h ON h.iin = f.iin"
        " JOIN persons w ON w.iin = f.relative_iin WHERE f.relation = 'spouse'"
        " AND h.sex = 'M' AND h.death_date IS NULL AND w.death_date IS NULL"
        " AND h.birth_date < '1990-01-01' AND w.birth_date < '1990-01-01' ORDER BY h.iin")


async def a_child_of(world: World, father: str, mother: str, years: int) -> str:
    registered = await world.population.RegisterBirth(ppb.RegisterBirthRequest(
        mother_iin=mother, father_iin=father, last_name="Test", first_name="Aru",
        sex=ppb.SEX_FEMALE, birth_date=date_pb(TODAY.replace(year=TODAY.year - years)),
    ))
    return registered.child.iin


def conclusion_of(child: str, conclusion_id: str) -> health_pb2.DisabilityEstablished:
    return health_pb2.DisabilityEstablished(
        iin=child, group=2, from_date=health_pb2.Date(year=2026, month=6, day=1),
        conclusion_id=conclusion_id)


def reads_of(benefit: pb.Benefit) -> list[tuple[str, str]]:
    return [(s.service.rpartition("/")[2], s.data_subject) for s in benefit.sources]


async def test_a_disabled_child_s_mother_is_paid_the_carer_s_benefit_once(world: World
                                                                         ) -> None:
    father, mother = living_couples(world)[0]
    child = await a_child_of(world, father, mother, 10)
    event = conclusion_of(child, "MSE-2026-0000010")
    await world.deliver(DISABILITY, event)
    before = world.snapshot()
    await world.deliver(DISABILITY, event)  # a new message id, the same conclusion
    after = world.snapshot()
    assert {t: v for t, v in after.items() if t != "bus_inbox"} == {
        t: v for t, v in before.items() if t != "bus_inbox"}

    listed = (await world.pension.ListBenefits(pb.ListBenefitsRequest(iin=child))).benefits
    assert sorted(b.kind for b in listed) == sorted(["disability_benefit", CARER])  # once each
    own = (await world.benefits(child))["disability_benefit"]
    assert (own.recipient_iin, own.amount) == (child, 93057)  # 10 years old: 1.83 PM
    carer = (await world.benefits(mother))[CARER]
    assert (carer.recipient_iin, carer.subject_iin, carer.frequency, carer.status) == (
        mother, child, "monthly", "active")
    assert carer.amount == 81870  # 1.61 PM since 1 July 2023, 2026 PM 50,851
    assert carer.basis == own.basis
    turns_18 = TODAY.replace(year=TODAY.year + 8) - dt.timedelta(days=1)  # born 10 years ago
    assert (carer.period_to.year, carer.period_to.month, carer.period_to.day) == (
        turns_18.year, turns_18.month, turns_18.day)
    assert len(carer.payments) == rules.SCHEDULE.horizon_months
    assert carer.payments[0].month == pb.Month(year=2026, month=6)
    items = {i.name: i.value for i in carer.calculation}
    assert (items["carer"], items["ends_on"]) == ("mother", turns_18.isoformat())
    assert reads_of(own) == [("GetPerson", child)]
    assert reads_of(carer) == [("GetPerson", child), ("GetFamily", child),
                               ("GetPerson", mother)]  # the father was not read
    assert all(s.purpose and s.fact for s in carer.sources)
    assert world.events() == [(BENEFIT_ASSIGNED, child), (BENEFIT_ASSIGNED, mother)]
    assert not (await world.benefits(father))

    # The child dies: the carer's benefit stops as the child's own does.
    died = TODAY - dt.timedelta(days=1)
    act = await world.population.RegisterDeath(
        ppb.RegisterDeathRequest(iin=child, death_date=date_pb(died)))
    await world.deliver(DEATH, ppb.DeathRegistered(iin=child, death_date=date_pb(died),
                                                   act_id=act.act.act_id))
    for benefit in (await world.pension.ListBenefits(pb.ListBenefitsRequest(iin=child))
                    ).benefits:
        assert (benefit.status, benefit.stop_reason) == ("stopped", "death"), benefit.kind
        assert {p.status for p in benefit.payments
                if (p.month.year, p.month.month) > (2026, 6)} == {"stopped"}


async def test_an_adult_s_conclusion_pays_no_carer_s_benefit(world: World) -> None:
    father, mother = living_couples(world)[2]
    registered = await world.population.RegisterBirth(ppb.RegisterBirthRequest(
        mother_iin=mother, father_iin=father, last_name="Test", first_name="Asel",
        sex=ppb.SEX_FEMALE, birth_date=date_pb(dt.date(2008, 6, 1)),
    ))
    adult = registered.child.iin  # 18 on the conclusion's first day, both parents living
    await world.deliver(DISABILITY, conclusion_of(adult, "MSE-2026-0000013"))
    (own,) = (await world.pension.ListBenefits(pb.ListBenefitsRequest(iin=adult))).benefits
    assert (own.kind, own.recipient_iin) == ("disability_benefit", adult)
    assert reads_of(own) == [("GetPerson", adult)]  # no family read for an adult
    assert world.rows("SELECT count(*) FROM benefits WHERE kind = ?", CARER) == [(0,)]
    assert world.events() == [(BENEFIT_ASSIGNED, adult)]


async def test_a_disabled_child_whose_mother_died_the_father_is_paid(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    father, mother = living_couples(world)[1]
    child = await a_child_of(world, father, mother, 4)
    await world.population.RegisterDeath(ppb.RegisterDeathRequest(
        iin=mother, death_date=date_pb(TODAY - dt.timedelta(days=40))))
    await world.deliver(DISABILITY, conclusion_of(child, "MSE-2026-0000011"))
    carer = (await world.benefits(father))[CARER]
    assert (carer.recipient_iin, carer.subject_iin) == (father, child)
    assert {i.name: i.value for i in carer.calculation}["carer"] == "father"
    assert reads_of(carer) == [("GetPerson", child), ("GetFamily", child),
                               ("GetPerson", mother), ("GetPerson", father)]
    assert not (await world.benefits(mother))

    # Neither parent living: a new conclusion pays the child alone, ends the father's
    # benefit and says so at INFO with no personal data.
    await world.population.RegisterDeath(ppb.RegisterDeathRequest(
        iin=father, death_date=date_pb(TODAY - dt.timedelta(days=2))))
    later = conclusion_of(child, "MSE-2026-0000012")
    later.from_date.month = 7
    with caplog.at_level(logging.INFO, logger="zhol.adapters.pension"):
        await world.deliver(DISABILITY, later)
    (line,) = [r for r in caplog.records if "carer" in r.getMessage()]
    assert line.levelno == logging.INFO
    assert not {child, father, mother, "MSE-2026-0000012"} & set(
        " ".join(map(str, (line.getMessage(), *vars(line).values()))).split())
    statuses = world.rows("SELECT kind, basis, status FROM benefits WHERE subject_iin = ?"
                          " ORDER BY kind, basis", child)
    assert [(k, st) for k, _b, st in statuses] == [
        (CARER, "superseded"), ("disability_benefit", "superseded"),
        ("disability_benefit", "active")]


# -- retirement --------------------------------------------------------------------------


def next_retiree(world: World) -> tuple[dt.date, str, bool, str]:
    """The living person who reaches retirement age first after TODAY: the day, the IIN,
    female, the age (years) by the rule table."""
    upcoming = []
    for iin, sex, born, died in world.people(
        "SELECT iin, sex, birth_date, death_date FROM persons"
    ):
        if died:
            continue
        reached = rules.retirement_date(dt.date.fromisoformat(born), sex == "F")
        if reached.reached_on > TODAY:
            age = f"{reached.age_months / 12:g}"
            upcoming.append((reached.reached_on, iin, sex == "F", age))
    return min(upcoming)


async def test_retirement_as_the_clock_moves(world: World) -> None:
    day, target, female, age = next_retiree(world)
    today = await world.pension.AssignRetirementPensions(pb.AssignRetirementPensionsRequest())
    assert today.as_of == pb.Date(year=TODAY.year, month=TODAY.month, day=TODAY.day)
    assert today.persons_scanned == len(world.people("SELECT iin FROM persons"))
    assert target not in {a.iin for a in today.assigned}

    world.clock.current_ms = noon(day)  # the day the target reaches retirement age
    run = await world.pension.AssignRetirementPensions(
        pb.AssignRetirementPensionsRequest(page_size=120))
    assigned = {a.iin: a for a in run.assigned}
    assert target in assigned
    for assignment in run.assigned:
        reached = assignment.calculation.reached_age_on
        assert dt.date(reached.year, reached.month, reached.day) <= day
    assert run.already_assigned + len(run.assigned) == run.reached_age

    again = await world.pension.AssignRetirementPensions(pb.AssignRetirementPensionsRequest())
    assert list(again.assigned) == []
    assert again.already_assigned == again.reached_age == run.reached_age
    age_pensions = world.rows("SELECT iin, count(*) FROM pension_assignments WHERE kind = 'age'"
                              " GROUP BY iin HAVING count(*) > 1")
    assert age_pensions == []

    status = await world.pension.GetPensionStatus(pb.GetPensionStatusRequest(iin=target))
    assert status.receives_pension
    (assignment,) = status.assignments
    calc = assignment.calculation
    assert assignment.kind == "age" and assignment.monthly_amount == calc.monthly_amount > 0
    assert calc.monthly_amount == calc.base_pension + calc.solidarity_part + calc.accumulative_part
    assert calc.retirement_age == age
    assert {"base_pension", "years_of_service", "average_monthly_income", "base_share",
            "accumulative_part"} <= {i.name for i in calc.items}
    assert calc.explanation
    reads = [(s.service.rpartition("/")[2], s.data_subject) for s in assignment.sources]
    expected = [("ListPersons", ""), ("GetPerson", target)]
    if female:
        expected.append(("GetFamily", target))
    assert reads == expected
    assert ("zhol.pension.v1.PensionAssigned", target) in world.events()
    first_payment = assignment.payments[0].month
    assert (first_payment.year, first_payment.month) == (day.year, day.month)


# -- contributions -----------------------------------------------------------------------


async def test_contributions_and_insurance(world: World) -> None:
    last = Month.of(TODAY).plus(-1)
    iin, employer = world.rows(
        "SELECT iin, employer_bin FROM contributions WHERE month = ? ORDER BY iin LIMIT 1",
        str(last))[0]
    history = await world.pension.GetContributions(pb.GetContributionsRequest(
        iin=iin, from_month=pb.Month(year=last.year, month=1),
        to_month=pb.Month(year=last.year, month=last.month)))
    assert [c.month.month for c in history.contributions] == list(range(1, last.month + 1))
    assert history.total_pension_amount == sum(c.pension_amount for c in history.contributions)
    insured = await world.pension.IsInsuredByContributions(
        pb.IsInsuredByContributionsRequest(iin=iin))
    assert insured.insured and insured.required_months == 1 and insured.window_months == 3

    due = rules.expected_contributions(600_000, 2026)
    opvr = employer_pension_amount(600_000, 2026, Iin.parse(iin).birth_date)
    request = pb.RecordContributionRequest(
        employer_bin=employer, iin=iin, month=pb.Month(year=2026, month=6), income=600_000,
        pension_amount=due.pension_amount, social_amount=due.social_amount,
        employer_pension_amount=opvr)
    recorded = await world.pension.RecordContribution(request)
    assert recorded.pension_amount == 60_000 and recorded.employer_pension_amount == opvr
    after = await world.pension.GetContributions(pb.GetContributionsRequest(iin=iin))
    assert after.savings_balance == history.savings_balance + 60_000  # the OPVR is not savings
    assert after.total_employer_pension_amount == sum(
        c.employer_pension_amount for c in after.contributions) >= opvr

    before = world.snapshot()
    error = await rpc_error(world.pension.RecordContribution(request))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    unknown_employer = make_bin(dt.date(2012, 5, 1), 88_888)
    assert unknown_employer is not None
    for change, code in (
        ({"employer_bin": "123"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"iin": "850304300179"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"month": pb.Month(year=2026, month=13)}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"pension_amount": 1}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"employer_pension_amount": opvr + 100}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"employer_bin": unknown_employer.value, "month": pb.Month(year=2026, month=5)},
         grpc.StatusCode.NOT_FOUND),
    ):
        bad = pb.RecordContributionRequest()
        bad.CopyFrom(request)
        for name, value in change.items():
            if isinstance(value, Message):
                getattr(bad, name).CopyFrom(value)
            else:
                setattr(bad, name, value)
        error = await rpc_error(world.pension.RecordContribution(bad))
        assert error.code() == code, change
    error = await rpc_error(world.pension.GetContributions(pb.GetContributionsRequest(
        iin=iin, from_month=pb.Month(year=2026, month=5), to_month=pb.Month(year=2026, month=1))))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = await rpc_error(world.pension.GetPensionStatus(pb.GetPensionStatusRequest(iin="1")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert world.snapshot() == before


async def test_without_the_bus_population_reads_are_a_failed_precondition(tmp_path: Path
                                                                          ) -> None:
    offline, servers = await start(tmp_path, bus=False)
    try:
        error = await rpc_error(offline.pension.AssignRetirementPensions(
            pb.AssignRetirementPensionsRequest()))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        mother = a_childless_woman(offline)
        birth = await offline.register_birth(mother, TODAY, "Asel")
        before = offline.snapshot()
        error = await rpc_error(offline.deliver(BIRTH, birth))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert offline.snapshot() == before
        status = await offline.pension.GetPensionStatus(pb.GetPensionStatusRequest(iin=mother))
        assert not status.receives_pension  # our own facts are still served
    finally:
        await stop(offline, servers)


async def test_the_claim_command_records_the_funeral_arrangers_claim(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`zhol adapter pension claim-burial` calls the running system's PensionClaims:
    exit 2 for a bad IIN, 1 for a refusal, 0 with the decision, each refusal changing
    nothing."""
    port = (tmp_path / "run" / "pension.port").read_text().strip()
    target = port if ":" in port else f"127.0.0.1:{port}"
    pensioners = {iin for (iin,) in world.rows(
        "SELECT iin FROM pension_assignments WHERE kind = 'age' AND status = 'active'")}
    living = {iin for (iin,) in world.people("SELECT iin FROM persons"
                                             " WHERE death_date IS NULL")}
    deceased = sorted(pensioners & living)[1]
    arranger = a_childless_woman(world)

    async def command(claimant: str, died: str, *extra: str) -> int:
        return await asyncio.to_thread(zhol_main, [
            "adapter", "pension", "claim-burial", "--target", target,
            "--claimant", claimant, "--deceased", died, *extra])

    before = world.snapshot()
    assert await command("12345", deceased) == 2
    assert await command(arranger, deceased) == 1  # population records no death yet
    assert world.snapshot() == before
    await world.population.RegisterDeath(
        ppb.RegisterDeathRequest(iin=deceased, death_date=date_pb(TODAY)))
    capsys.readouterr()
    assert await command(arranger, deceased, "--json") == 0
    decided = json.loads(capsys.readouterr().out)
    assert (decided["kind"], decided["recipientIin"], decided["subjectIin"]) == (
        "burial_benefit", arranger, deceased)
    after = world.snapshot()
    assert await command(arranger, deceased) == 1  # decided once
    assert world.snapshot() == after
