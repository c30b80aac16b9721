"""The survivor pension of a full-time student (rules.SURVIVOR_STUDENT), over real gRPC on
127.0.0.1: the pension adapter's bus client points at a stand-in for its gateway's IS
side carrying the real population and education registry servicers (seeded for the
same population); deaths are delivered to pension's real EventSink and the
recalculation runs through its real PensionRecalculation service. Nothing of ours is
mocked."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from tests.adapter_helpers import date_pb, rpc_error
from tests.sqlite_rows import rows
from zhol.adapters.bus.client import BusClient
from zhol.adapters.bus.population import PopulationReader
from zhol.adapters.education.citizens import Citizens
from zhol.adapters.education.seed import seed_database as seed_education
from zhol.adapters.education.service import EducationRegistryServicer
from zhol.adapters.pension import rules
from zhol.adapters.pension.calculation import birthday
from zhol.adapters.pension.model import KZ_TIME
from zhol.adapters.pension.seed import seed_database as seed_pension
from zhol.adapters.pension.server import PensionServer, PensionSettings, serve
from zhol.adapters.population.seed import seed_database as seed_population
from zhol.adapters.population.service import PopulationRegistryServicer
from zhol.bus.v1 import bus_pb2, bus_pb2_grpc
from zhol.core.busclient import BusIdentity
from zhol.core.clock import FixedClock
from zhol.education.v1 import education_pb2 as edu
from zhol.education.v1 import education_pb2_grpc as edu_grpc
from zhol.pension.v1 import pension_pb2 as pb
from zhol.pension.v1 import pension_pb2_grpc as pb_grpc
from zhol.pension.v1 import recalculation_pb2 as rpb
from zhol.pension.v1 import recalculation_pb2_grpc as rpb_grpc
from zhol.population.v1 import population_pb2 as ppb
from zhol.population.v1 import population_pb2_grpc as ppb_grpc

pytestmark = pytest.mark.integration

TODAY = dt.date(2026, 6, 15)
NOON_MS = int(dt.datetime(2026, 6, 15, 12, tzinfo=KZ_TIME).timestamp() * 1000)
DEATH = ppb.DeathRegistered.DESCRIPTOR.full_name
STARTED = dt.date(2025, 9, 1)


@dataclass
class World:
    pension: pb_grpc.PensionRegistryStub
    recalculation: rpb_grpc.PensionRecalculationStub
    sink: bus_pb2_grpc.EventSinkStub
    population: ppb_grpc.PopulationRegistryStub
    education: edu_grpc.EducationRegistryStub
    pension_db: Path
    population_db: Path
    education_db: Path

    async def deliver_death(self, iin: str, day: dt.date) -> None:
        died = await self.population.RegisterDeath(
            ppb.RegisterDeathRequest(iin=iin, death_date=date_pb(day)))
        event = ppb.DeathRegistered(iin=iin, death_date=date_pb(day), act_id=died.act.act_id)
        await self.sink.Receive(bus_pb2.EventDelivery(
            event_id=str(uuid.uuid4()), message_id=str(uuid.uuid4()), topic=DEATH,
            publisher="KZ/GOV/MJ/population", subscriber="KZ/GOV/MLSPP/pension",
            payload=event.SerializeToString(), occurred_at_unix_ms=NOON_MS, attempt=1,
        ))

    async def child(self, father: str, mother: str, born: dt.date, name: str) -> str:
        registered: ppb.RegisterBirthResponse = await self.population.RegisterBirth(
            ppb.RegisterBirthRequest(mother_iin=mother, father_iin=father, last_name="Test",
                                     first_name=name, sex=ppb.SEX_MALE,
                                     birth_date=date_pb(born)))
        return registered.child.iin

    async def study(self, iin: str, kind: str, level: str, form: str) -> edu.Study:
        (institution,) = rows(self.education_db, "SELECT institution_id FROM institutions"
                              " WHERE kind = ? ORDER BY institution_id LIMIT 1", kind)[0]
        recorded: edu.Study = await self.education.RecordStudy(edu.RecordStudyRequest(
            iin=iin, institution_id=institution, level=level, form=form,
            started_on=edu.Date(year=STARTED.year, month=STARTED.month, day=STARTED.day)))
        return recorded


@contextlib.asynccontextmanager
async def running(tmp_path: Path, *, education_served: bool = True
                  ) -> AsyncIterator[World]:
    population_db, pension_db, education_db = (
        tmp_path / f"{name}.db" for name in ("population", "pension", "education"))
    seed_population(population_db, 200, seed=3)
    seed_pension(pension_db, population_db, as_of=TODAY, seed=1)
    seed_education(education_db, population_db, seed=1, as_of=TODAY)
    clock = FixedClock(NOON_MS)
    stand_in = grpc.aio.server()
    port = stand_in.add_insecure_port("127.0.0.1:0")
    address = f"127.0.0.1:{port}"
    population = PopulationRegistryServicer.open(population_db, clock)
    ppb_grpc.add_PopulationRegistryServicer_to_server(population, stand_in)
    # Education checks a student against population through the same stand-in.
    citizens = Citizens(PopulationReader(BusClient(BusIdentity(address,
                                                               "KZ/GOV/MES/education"))))
    education = EducationRegistryServicer.open(education_db, clock, citizens)
    if education_served:
        edu_grpc.add_EducationRegistryServicer_to_server(education, stand_in)
    await stand_in.start()
    servers: list[PensionServer] = []
    try:
        servers.append(await serve(PensionSettings(
            db_path=pension_db, gateway_address=address, publish_events=False), clock=clock))
        async with grpc.aio.insecure_channel(servers[0].address) as to_pension, \
                grpc.aio.insecure_channel(address) as to_bus:
            yield World(
                pb_grpc.PensionRegistryStub(to_pension),
                rpb_grpc.PensionRecalculationStub(to_pension),
                bus_pb2_grpc.EventSinkStub(to_pension),
                ppb_grpc.PopulationRegistryStub(to_bus), edu_grpc.EducationRegistryStub(to_bus),
                pension_db, population_db, education_db)
    finally:
        for server in servers:
            await server.stop(0)
        await stand_in.stop(0)
        population.close()
        education.close()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with running(tmp_path) as started:
        yield started


def a_couple_without_young_children(world: World) -> tuple[str, str]:
    """(father, mother), living and married, with no child born in the last 23 years."""
    return rows(world.population_db,
                "SELECT h.iin, w.iin FROM family_links f JOIN persons h ON h.iin = f.iin"
                " JOIN persons w ON w.iin = f.relative_iin WHERE f.relation = 'spouse'"
                " AND h.sex = 'M' AND h.death_date IS NULL AND w.death_date IS NULL"
                " AND h.birth_date < '1980-01-01' AND NOT EXISTS (SELECT 1 FROM family_links"
                " c JOIN persons k ON k.iin = c.relative_iin WHERE c.iin = h.iin"
                " AND c.relation = 'child' AND k.birth_date > '2003-06-14') ORDER BY h.iin"
                " LIMIT 1")[0]


async def test_a_full_time_student_of_19_is_a_dependant_and_a_part_time_one_is_not(
        world: World) -> None:
    father, mother = a_couple_without_young_children(world)
    student_born = dt.date(2007, 3, 10)  # 19 on the death date
    student = await world.child(father, mother, student_born, "Arman")
    part_timer = await world.child(father, mother, dt.date(2006, 2, 2), "Bolat")  # 20
    minor = await world.child(father, mother, dt.date(2016, 1, 1), "Dauren")  # 10
    full = await world.study(student, "university", "bachelor", "full_time")
    await world.study(part_timer, "college", "vocational", "part_time")
    death_day = TODAY - dt.timedelta(days=1)
    await world.deliver_death(father, death_day)

    survivors = dict(rows(world.pension_db, "SELECT iin, ends_on FROM pension_assignments"
                          " WHERE kind = 'survivor' AND breadwinner_iin = ?", father))
    assert set(survivors) == {student, minor}  # the part-time student is not a dependant
    cap = birthday(student_born, 23) - dt.timedelta(days=1)
    assert survivors[student] == cap.isoformat()  # no end recorded: until 23
    status = await world.pension.GetPensionStatus(pb.GetPensionStatusRequest(iin=student))
    (pension,) = status.assignments
    family = rules.tenge(rules.SUBSISTENCE_MINIMUM.at(TODAY)
                         * rules.SURVIVOR.row(TODAY, 2).pm_share)
    assert pension.monthly_amount == rules.tenge(Decimal(family) / 2)
    items = {i.name: i for i in pension.calculation.items}
    assert items["dependants"].value == "2"
    assert "full_time bachelor" in items["ends_on"].note
    assert any(line.startswith("Full-time student:") for line in
               pension.calculation.explanation)
    studies = [s for s in pension.sources if s.service.endswith("/ListStudies")]
    assert [(s.provider, s.data_subject) for s in studies] == [
        ("KZ/GOV/MES/education", student)]
    assert studies[0].purpose and studies[0].fact
    young = await world.pension.GetPensionStatus(pb.GetPensionStatusRequest(iin=minor))
    assert not [s for s in young.assignments[0].sources if s.service.endswith("/ListStudies")]

    # Education records the end of the study: the run re-reads it and ends the pension.
    await world.education.EndStudy(edu.EndStudyRequest(
        iin=student, study_id=full.study_id, ended_on=edu.Date(year=2026, month=6, day=15)))
    report = await world.recalculation.RecalculateBenefits(rpb.RecalculateBenefitsRequest())
    (changed,) = [r for r in report.recalculated if r.recipient_iin == student]
    assert (changed.new_ends_on.year, changed.new_ends_on.month, changed.new_ends_on.day) == (
        2026, 6, 15)
    assert "SURVIVOR_STUDENT" in {r.table for r in changed.rules}
    assert rows(world.pension_db, "SELECT ends_on FROM pension_assignments WHERE iin = ?",
                student) == [("2026-06-15",)]
    assert rows(world.pension_db, "SELECT count(*) FROM payments p JOIN pension_assignments a"
                " USING (assignment_id) WHERE a.iin = ? AND p.status = 'scheduled'",
                student) == [(0,)]  # the first month due (July) is after the last day
    again = await world.recalculation.RecalculateBenefits(rpb.RecalculateBenefitsRequest())
    assert not [r for r in again.recalculated if r.recipient_iin == student]


async def test_a_failed_study_read_refuses_the_death_and_writes_nothing(
        tmp_path: Path) -> None:
    """Education does not answer ListStudies (the stand-in serves population only): the
    death is refused, to be retried, never decided without the student."""
    async with running(tmp_path, education_served=False) as world:
        father, mother = a_couple_without_young_children(world)
        await world.child(father, mother, dt.date(2007, 3, 10), "Arman")
        before = rows(world.pension_db, "SELECT count(*) FROM pension_assignments"
                      " WHERE status = 'stopped' OR kind = 'survivor'")
        refused = await rpc_error(world.deliver_death(father, TODAY - dt.timedelta(days=1)))
        assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert rows(world.pension_db, "SELECT count(*) FROM pension_assignments"
                    " WHERE status = 'stopped' OR kind = 'survivor'") == before
        assert rows(world.pension_db, "SELECT count(*) FROM bus_inbox") == [(0,)]
