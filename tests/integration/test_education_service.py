"""The education system over real gRPC on 127.0.0.1, reading a real population registry.

The education adapter's bus client points straight at a population adapter server (it
speaks the same gRPC as a gateway's IS side), so every read of a child's birth date and
address really crosses a socket to population. Population's events are delivered to
education's EventSink over real gRPC, as its gateway would deliver them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf.message import Message

from tests.adapter_helpers import date_pb, rpc_error
from zhol.adapters.bus.outbox import read_outbox
from zhol.adapters.education import events
from zhol.adapters.education.seed import seed_database
from zhol.adapters.education.server import EducationServer, EducationSettings, serve
from zhol.adapters.population.model import KZ_TIME
from zhol.adapters.population.seed import seed_database as seed_population
from zhol.adapters.population.server import PopulationSettings
from zhol.adapters.population.server import serve as serve_population
from zhol.bus.v1 import bus_pb2, bus_pb2_grpc
from zhol.core.clock import FixedClock
from zhol.core.iin import make_iin
from zhol.education.v1 import education_pb2 as pb
from zhol.education.v1 import education_pb2_grpc as pb_grpc
from zhol.population.v1 import population_pb2 as ppb
from zhol.population.v1 import population_pb2_grpc as ppb_grpc

pytestmark = pytest.mark.integration

TODAY = dt.date(2025, 6, 2)
NOW_MS = int(dt.datetime(2025, 6, 2, 12, tzinfo=KZ_TIME).timestamp() * 1000)
ALMATY, MEDEU = "Almaty city", "Medeu district"
STATE_TABLES = ("queue_entries", "queue_moves", "school_enrolments", "bus_outbox", "bus_inbox")


@dataclass(frozen=True)
class Setup:
    education: pb_grpc.EducationRegistryStub
    sink: bus_pb2_grpc.EventSinkStub
    population: ppb_grpc.PopulationRegistryStub
    db: Path
    population_db: Path
    running: EducationServer

    def rows(self, sql: str, *args: object, db: Path | None = None) -> list[tuple]:
        conn = sqlite3.connect(db or self.db)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def state(self) -> dict[str, list[tuple]]:
        return {t: sorted(self.rows(f"SELECT * FROM {t}"), key=repr) for t in STATE_TABLES}

    def topics(self) -> list[str]:
        conn = sqlite3.connect(self.db)
        try:
            return [entry.topic for entry in read_outbox(conn)]
        finally:
            conn.close()


@pytest.fixture(scope="module")
def seeded_population(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("seed") / "population.db"
    seed_population(path, 1200, seed=9)
    return path


@pytest.fixture
async def setup(tmp_path: Path, seeded_population: Path) -> AsyncIterator[Setup]:
    population_db = tmp_path / "population.db"
    shutil.copy(seeded_population, population_db)
    db = tmp_path / "education.db"
    seed_database(db, population_db, seed=2)
    clock = FixedClock(NOW_MS)
    population = await serve_population(PopulationSettings(db_path=population_db), clock=clock)
    settings = EducationSettings(
        db_path=db, port_file=tmp_path / "run" / "education.port",
        gateway_address=population.address, publish_events=False,
    )
    running = await serve(settings, clock=clock)
    try:
        async with (
            grpc.aio.insecure_channel(running.address) as channel,
            grpc.aio.insecure_channel(population.address) as population_channel,
        ):
            yield Setup(
                pb_grpc.EducationRegistryStub(channel), bus_pb2_grpc.EventSinkStub(channel),
                ppb_grpc.PopulationRegistryStub(population_channel), db, population_db, running,
            )
    finally:
        await running.stop(0)
        await population.stop(0)
    assert not settings.port_file.exists()  # type: ignore[union-attr]


def delivery(topic_message: Message, subject: str, *, message_id: str | None = None,
             event_id: str | None = None) -> bus_pb2.EventDelivery:
    return bus_pb2.EventDelivery(
        event_id=event_id or str(uuid.uuid4()),
        message_id=message_id or str(uuid.uuid4()),
        topic=topic_message.DESCRIPTOR.full_name,
        publisher="KZ/GOV/MJ/population",
        subscriber="KZ/GOV/MES/education",
        data_subject=subject,
        payload=topic_message.SerializeToString(),
        occurred_at_unix_ms=NOW_MS,
        attempt=1,
    )


def a_mother(setup: Setup) -> str:
    return setup.rows(
        "SELECT p.iin FROM persons p JOIN addresses a ON a.iin = p.iin AND a.valid_to IS NULL"
        " WHERE p.sex = 'F' AND p.death_date IS NULL AND p.birth_date BETWEEN ? AND ?"
        " ORDER BY p.iin LIMIT 1",
        "1975-01-01", "2000-12-31", db=setup.population_db,
    )[0][0]


async def register_birth(setup: Setup, first_name: str = "Aruzhan") -> tuple[str, ppb.Address]:
    """A newborn registered in population today; returns its IIN and the mother's address."""
    mother = a_mother(setup)
    registered = await setup.population.RegisterBirth(ppb.RegisterBirthRequest(
        mother_iin=mother, last_name="Akhmetova", first_name=first_name, patronymic="",
        sex=ppb.SEX_FEMALE, birth_date=date_pb(TODAY - dt.timedelta(days=2)),
    ))
    address = await setup.population.GetAddress(ppb.GetAddressRequest(iin=mother))
    return registered.child.iin, address


def birth_event(child: str) -> ppb.BirthRegistered:
    return ppb.BirthRegistered(child_iin=child, birth_date=date_pb(TODAY - dt.timedelta(days=2)),
                               act_id="MJ-0000000001")


def other_place(address: ppb.Address) -> ppb.Address:
    region, district = ("Astana city", "Yesil district")
    if address.district == district:
        region, district = ALMATY, MEDEU
    return ppb.Address(region=region, district=district, locality=region.split()[0],
                       street="Turan Avenue", building="12")


def unknown_iin() -> str:
    iin = make_iin(dt.date(2024, 4, 4), True, 9876)
    assert iin is not None
    return iin.value


# -- institutions ------------------------------------------------------------------------


async def test_list_kindergartens_and_schools(setup: Setup) -> None:
    found = await setup.education.ListKindergartens(
        pb.ListKindergartensRequest(region=ALMATY, district=MEDEU))
    assert len(found.kindergartens) >= 2
    first = found.kindergartens[0]
    assert (first.region, first.district) == (ALMATY, MEDEU)
    assert first.kindergarten_id and first.name and first.capacity > 0 and first.languages
    schools = await setup.education.ListSchools(pb.ListSchoolsRequest(district=MEDEU))
    assert schools.schools and {s.region for s in schools.schools} == {ALMATY}
    everything = await setup.education.ListSchools(pb.ListSchoolsRequest())
    assert len({s.district for s in everything.schools}) > 80
    error = await rpc_error(setup.education.ListSchools(pb.ListSchoolsRequest(region="\x07")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


# -- the kindergarten queue on request ---------------------------------------------------


async def test_enqueue_reads_population_and_queues_in_the_childs_district(setup: Setup) -> None:
    child, address = await register_birth(setup)
    position = await setup.education.EnqueueForKindergarten(
        pb.EnqueueForKindergartenRequest(iin=child))
    entry = position.entry
    assert (entry.iin, entry.region, entry.district) == (child, address.region, address.district)
    assert (entry.status, entry.reason) == (pb.QUEUE_STATUS_WAITING, pb.QUEUE_REASON_REQUEST)
    assert entry.queued_on == pb.Date(year=2025, month=6, day=2)
    assert 1 <= position.position == position.waiting_in_district
    shown = await setup.education.GetQueuePosition(pb.GetQueuePositionRequest(iin=child))
    # the same entry, and the child as population knows them now
    assert (shown.person_status, shown.person.iin) == (pb.PERSON_STATUS_CURRENT, child)
    assert shown.person.address.district == address.district
    for field in ("person", "person_status"):
        shown.ClearField(field)
    assert shown == position
    assert setup.topics() == [events.QUEUED_FOR_KINDERGARTEN]
    again = await rpc_error(setup.education.EnqueueForKindergarten(
        pb.EnqueueForKindergartenRequest(iin=child)))
    assert again.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_refused_enqueues_change_nothing(setup: Setup) -> None:
    child, address = await register_birth(setup)
    elsewhere = await setup.education.ListKindergartens(pb.ListKindergartensRequest(
        region=other_place(address).region, district=other_place(address).district))
    adult = a_mother(setup)
    before = setup.state()
    cases = [
        (pb.EnqueueForKindergartenRequest(iin="12345"), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.EnqueueForKindergartenRequest(iin=unknown_iin()), grpc.StatusCode.NOT_FOUND),
        (pb.EnqueueForKindergartenRequest(iin=adult), grpc.StatusCode.FAILED_PRECONDITION),
        (pb.EnqueueForKindergartenRequest(
            iin=child, kindergarten_id=elsewhere.kindergartens[0].kindergarten_id),
         grpc.StatusCode.FAILED_PRECONDITION),
        (pb.EnqueueForKindergartenRequest(iin=child, kindergarten_id="KG-999-01"),
         grpc.StatusCode.NOT_FOUND),
    ]
    for request, status in cases:
        error = await rpc_error(setup.education.EnqueueForKindergarten(request))
        assert error.code() == status, request
    assert setup.state() == before
    missing = await rpc_error(setup.education.GetQueuePosition(
        pb.GetQueuePositionRequest(iin=child)))
    assert missing.code() == grpc.StatusCode.NOT_FOUND


# -- school enrolment --------------------------------------------------------------------


async def test_enrolment_checks_age_and_district_over_the_bus(setup: Setup) -> None:
    # 6 or 7 on 1 September 2025, with a registered district, not yet at school.
    child, region, district = setup.rows(
        "SELECT p.iin, a.region, a.district FROM persons p JOIN addresses a"
        " ON a.iin = p.iin AND a.valid_to IS NULL WHERE p.death_date IS NULL"
        " AND p.birth_date BETWEEN '2018-09-02' AND '2019-09-01' ORDER BY p.iin LIMIT 1",
        db=setup.population_db,
    )[0]
    young = setup.rows(
        "SELECT p.iin FROM persons p JOIN addresses a ON a.iin = p.iin AND a.valid_to IS NULL"
        " WHERE p.death_date IS NULL AND p.birth_date > '2020-01-01' ORDER BY p.iin LIMIT 1",
        db=setup.population_db,
    )[0][0]
    here = (await setup.education.ListSchools(
        pb.ListSchoolsRequest(region=region, district=district))).schools[0].school_id
    there_place = other_place(ppb.Address(region=region, district=district))
    there = (await setup.education.ListSchools(pb.ListSchoolsRequest(
        region=there_place.region, district=there_place.district))).schools[0].school_id
    before = setup.state()
    cases = [
        (pb.EnrollInSchoolRequest(iin=child, school_id=there), grpc.StatusCode.FAILED_PRECONDITION),
        (pb.EnrollInSchoolRequest(iin=young, school_id=here), grpc.StatusCode.FAILED_PRECONDITION),
        (pb.EnrollInSchoolRequest(iin=child, school_id="SCH-999-01"), grpc.StatusCode.NOT_FOUND),
        (pb.EnrollInSchoolRequest(iin=unknown_iin(), school_id=here), grpc.StatusCode.NOT_FOUND),
        (pb.EnrollInSchoolRequest(iin=child, school_id=here, grade=12),
         grpc.StatusCode.INVALID_ARGUMENT),
    ]
    for request, status in cases:
        error = await rpc_error(setup.education.EnrollInSchool(request))
        assert error.code() == status, request
    assert setup.state() == before
    enrolment = await setup.education.EnrollInSchool(
        pb.EnrollInSchoolRequest(iin=child, school_id=here))
    assert (enrolment.iin, enrolment.school_id, enrolment.grade, enrolment.status) == (
        child, here, 1, pb.ENROLMENT_STATUS_ACTIVE)
    assert enrolment.school_year_start == pb.Date(year=2025, month=9, day=1)
    listed = await setup.education.ListEnrolments(pb.ListEnrolmentsRequest(iin=child))
    assert list(listed.enrolments) == [enrolment]
    assert setup.topics() == [events.ENROLLED_IN_SCHOOL]
    # The seeded queue place of this preschooler ended with the enrolment.
    position = await setup.education.GetQueuePosition(pb.GetQueuePositionRequest(iin=child))
    assert position.entry.status == pb.QUEUE_STATUS_WITHDRAWN
    assert position.entry.withdrawn_because == "school"


# -- population's events -----------------------------------------------------------------


async def test_newborn_is_queued_in_the_mothers_district_exactly_once(setup: Setup) -> None:
    child, address = await register_birth(setup)
    first = delivery(birth_event(child), child)
    await setup.sink.Receive(first)
    await setup.sink.Receive(first)  # the gateway's retry: same message id
    await setup.sink.Receive(delivery(birth_event(child), child))  # re-published anew
    entries = setup.rows("SELECT reason, status, queued_on FROM queue_entries WHERE iin = ?",
                         child)
    assert entries == [("newborn", "waiting", "2025-06-02")]
    position = await setup.education.GetQueuePosition(pb.GetQueuePositionRequest(iin=child))
    assert (position.entry.region, position.entry.district) == (address.region, address.district)
    assert position.entry.reason == pb.QUEUE_REASON_NEWBORN
    assert setup.topics() == [events.QUEUED_FOR_KINDERGARTEN]
    assert setup.rows("SELECT count(*) FROM bus_inbox") == [(2,)]


async def test_address_change_moves_the_place_keeping_queued_on(setup: Setup) -> None:
    child, address = await register_birth(setup)
    await setup.sink.Receive(delivery(birth_event(child), child))
    queued = await setup.education.GetQueuePosition(pb.GetQueuePositionRequest(iin=child))
    new = other_place(address)
    await setup.population.ChangeAddress(ppb.ChangeAddressRequest(iin=child, address=new))
    changed = ppb.AddressChanged(iin=child, changed_on=date_pb(TODAY))
    await setup.sink.Receive(delivery(changed, child))
    moved = await setup.education.GetQueuePosition(pb.GetQueuePositionRequest(iin=child))
    assert moved.entry.queue_entry_id == queued.entry.queue_entry_id
    assert (moved.entry.region, moved.entry.district) == (new.region, new.district)
    assert moved.entry.queued_on == queued.entry.queued_on
    assert [(m.from_district, m.to_district) for m in moved.moves] == [
        (address.district, new.district)
    ]
    assert moved.moves[0].reason == pb.QUEUE_REASON_ADDRESS_CHANGE
    assert setup.topics() == [events.QUEUED_FOR_KINDERGARTEN, events.QUEUE_ENTRY_MOVED]

    # A new street in the same district: the place stays where it is.
    same = ppb.Address(region=new.region, district=new.district, locality=new.locality,
                       street="Kenesary Street", building="3")
    await setup.population.ChangeAddress(ppb.ChangeAddressRequest(iin=child, address=same))
    before = {t: rows for t, rows in setup.state().items() if t != "bus_inbox"}
    await setup.sink.Receive(delivery(changed, child))
    assert {t: rows for t, rows in setup.state().items() if t != "bus_inbox"} == before


async def test_death_withdraws_the_queue_place(setup: Setup) -> None:
    child, _address = await register_birth(setup)
    await setup.sink.Receive(delivery(birth_event(child), child))
    living = ppb.DeathRegistered(iin=child, death_date=date_pb(TODAY), act_id="MJ-1")
    before = setup.state()
    error = await rpc_error(setup.sink.Receive(delivery(living, child)))  # not dead in population
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert setup.state() == before
    await setup.population.RegisterDeath(ppb.RegisterDeathRequest(iin=child,
                                                                  death_date=date_pb(TODAY)))
    await setup.sink.Receive(delivery(living, child))
    position = await setup.education.GetQueuePosition(pb.GetQueuePositionRequest(iin=child))
    assert position.entry.status == pb.QUEUE_STATUS_WITHDRAWN
    assert position.entry.withdrawn_because == "death"
    assert position.position == 0


async def test_events_for_unknown_persons_are_not_found_and_write_nothing(setup: Setup) -> None:
    stranger = unknown_iin()
    before = setup.state()
    for message in (
        birth_event(stranger),
        ppb.AddressChanged(iin=stranger, changed_on=date_pb(TODAY)),
        ppb.DeathRegistered(iin=stranger, death_date=date_pb(TODAY)),
    ):
        error = await rpc_error(setup.sink.Receive(delivery(message, stranger)))
        assert error.code() == grpc.StatusCode.NOT_FOUND
    bad = delivery(birth_event("42"), "")
    assert (await rpc_error(setup.sink.Receive(bad))).code() == grpc.StatusCode.INVALID_ARGUMENT
    garbage = bus_pb2.EventDelivery(message_id="m-1", topic=bad.topic, payload=b"\xff\xff")
    error = await rpc_error(setup.sink.Receive(garbage))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    other = bus_pb2.EventDelivery(message_id="m-2", topic="zhol.health.v1.Unknown")
    error = await rpc_error(setup.sink.Receive(other))
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    assert setup.state() == before


# -- without population ------------------------------------------------------------------


@pytest.mark.parametrize("gateway", ["", "127.0.0.1:1"])
async def test_without_a_reachable_bus_decisions_fail_clearly(
    tmp_path: Path, seeded_population: Path, gateway: str
) -> None:
    db = tmp_path / "education.db"
    seed_database(db, seeded_population, seed=2)
    running = await serve(EducationSettings(db_path=db, gateway_address=gateway),
                          clock=FixedClock(NOW_MS))
    expected = grpc.StatusCode.FAILED_PRECONDITION if not gateway else grpc.StatusCode.UNAVAILABLE
    try:
        async with grpc.aio.insecure_channel(running.address) as channel:
            stub = pb_grpc.EducationRegistryStub(channel)
            listed = await stub.ListKindergartens(pb.ListKindergartensRequest(district=MEDEU))
            assert listed.kindergartens
            child = unknown_iin()
            error = await rpc_error(stub.EnqueueForKindergarten(
                pb.EnqueueForKindergartenRequest(iin=child)))
            assert error.code() == expected
            sink = bus_pb2_grpc.EventSinkStub(channel)
            error = await rpc_error(sink.Receive(delivery(birth_event(child), child)))
            assert error.code() == expected
    finally:
        await running.stop(0)


async def test_decisions_wait_in_the_outbox_until_the_gateway_takes_them(
    tmp_path: Path, seeded_population: Path
) -> None:
    """With the publisher on, a committed decision is offered to the gateway at once; this
    "gateway" (population itself) has no Events service, so the event stays pending."""
    population_db = tmp_path / "population.db"
    shutil.copy(seeded_population, population_db)
    db = tmp_path / "education.db"
    seed_database(db, population_db, seed=2)
    clock = FixedClock(NOW_MS)
    population = await serve_population(PopulationSettings(db_path=population_db), clock=clock)
    running = await serve(EducationSettings(db_path=db, gateway_address=population.address),
                          clock=clock)
    try:
        async with grpc.aio.insecure_channel(population.address) as channel:
            setup = Setup(pb_grpc.EducationRegistryStub(channel),
                          bus_pb2_grpc.EventSinkStub(channel),
                          ppb_grpc.PopulationRegistryStub(channel), db, population_db, running)
            child, _address = await register_birth(setup)
        async with grpc.aio.insecure_channel(running.address) as channel:
            await bus_pb2_grpc.EventSinkStub(channel).Receive(delivery(birth_event(child), child))
        for _ in range(100):
            attempts = setup.rows("SELECT attempts, last_error, published_at_ms FROM bus_outbox")
            if attempts and attempts[0][0] >= 1:
                break
            await asyncio.sleep(0.02)
        [(tried, error, published)] = attempts
        assert tried >= 1 and error.startswith("UNIMPLEMENTED") and published is None
    finally:
        await running.stop(0)
        await population.stop(0)


# -- colleges, universities and studies (issue 14 item 11) --------------------------------


async def test_studies_over_grpc_read_population_and_refusals_change_nothing(
    setup: Setup,
) -> None:
    universities = (await setup.education.ListInstitutions(
        pb.ListInstitutionsRequest(region="Astana city", kind="university"))).institutions
    assert universities and {u.kind for u in universities} == {"university"}
    university = universities[0].institution_id
    student = setup.rows(
        "SELECT iin FROM persons WHERE death_date IS NULL AND birth_date BETWEEN ? AND ?"
        " ORDER BY iin LIMIT 1", "1995-01-01", "2004-12-31", db=setup.population_db)[0][0]
    dead = setup.rows("SELECT iin FROM persons WHERE death_date IS NOT NULL ORDER BY iin LIMIT 1",
                      db=setup.population_db)[0][0]

    def request(iin: str, **changes: object) -> pb.RecordStudyRequest:
        fields: dict[str, object] = dict(iin=iin, institution_id=university, level="bachelor",
                                         form="full_time", started_on=pb.Date(year=2024,
                                                                              month=9, day=1))
        fields.update(changes)
        return pb.RecordStudyRequest(**fields)  # type: ignore[arg-type]

    def studies() -> list[tuple]:
        return setup.rows("SELECT * FROM studies ORDER BY study_id")

    before = studies()
    refused = [
        (request(unknown_iin()), grpc.StatusCode.NOT_FOUND),  # population knows nobody
        (request(dead), grpc.StatusCode.FAILED_PRECONDITION),
        (request(student, level="vocational"), grpc.StatusCode.FAILED_PRECONDITION),
        (request(student, form="evening"), grpc.StatusCode.INVALID_ARGUMENT),
        (request(student, institution_id="UNI-999-01"), grpc.StatusCode.NOT_FOUND),
        (request(student, started_on=pb.Date(year=2025, month=6, day=3)),
         grpc.StatusCode.INVALID_ARGUMENT),
    ]
    for bad, code in refused:
        assert (await rpc_error(setup.education.RecordStudy(bad))).code() == code, bad
    assert studies() == before
    study = await setup.education.RecordStudy(request(student))
    assert (study.iin, study.institution.institution_id, study.form) == (
        student, university, "full_time")
    assert not study.HasField("ended_on")
    listed = await setup.education.ListStudies(pb.ListStudiesRequest(iin=student))
    assert listed.studies[0] == study  # newest first (the seed may have given others)
    # another person cannot end it (the data subject is bound to the data)
    other = pb.EndStudyRequest(iin=dead, study_id=study.study_id)
    assert (await rpc_error(setup.education.EndStudy(other))).code() == (
        grpc.StatusCode.NOT_FOUND)
    ended = await setup.education.EndStudy(pb.EndStudyRequest(iin=student,
                                                              study_id=study.study_id))
    assert ended.ended_on == pb.Date(year=2025, month=6, day=2)  # default: today
