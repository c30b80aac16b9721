"""The health system over real gRPC on 127.0.0.1 (ephemeral ports).

Health's ``gateway_address`` points at a stand-in for its gateway's IS side: one real
grpc.aio server carrying the real population registry servicer (on a seeded
database), the real pension registry servicer (seeded for the same population) in the
tests of the contributions path, which are skipped while ``adapters.pension`` is not
importable, and a small recorder of ``zhol.bus.v1.Events/Publish`` calls. The
stand-in speaks the same gRPC as a gateway, so health's reads and publications go
through its real ``BusClient`` and ``OutboxPublisher``; an interceptor records the
metadata of every read (client, purpose, data subject). Events are handed to health's
``EventSink`` over real gRPC; the payloads are the ones the population registry itself
enqueued.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.adapter_helpers import rpc_error
from tests.sqlite_rows import rows
from zhol.adapters.bus.outbox import read_outbox
from zhol.adapters.education.citizens import Citizens
from zhol.adapters.education.seed import seed_database as seed_education
from zhol.adapters.education.service import EducationRegistryServicer
from zhol.adapters.health.model import KZ_TIME
from zhol.adapters.health.seed import seed_database as seed_health
from zhol.adapters.health.server import HealthServer, HealthSettings, serve
from zhol.adapters.pension.employer_contribution import employer_pension_amount
from zhol.adapters.population.seed import seed_database as seed_population
from zhol.adapters.population.service import PopulationRegistryServicer
from zhol.bus.v1 import bus_pb2, bus_pb2_grpc
from zhol.core.clock import FixedClock
from zhol.core.iin import Iin, make_iin
from zhol.education.v1 import education_pb2 as edu
from zhol.education.v1 import education_pb2_grpc as edu_grpc
from zhol.health.v1 import health_pb2 as pb
from zhol.health.v1 import health_pb2_grpc as pb_grpc
from zhol.pension.v1 import pension_pb2
from zhol.pension.v1 import pension_pb2_grpc as pension_grpc
from zhol.population.v1 import population_pb2 as pop
from zhol.population.v1 import population_pb2_grpc as pop_grpc

pytestmark = pytest.mark.integration

COUNT = 250
TODAY = dt.date(2025, 6, 2)
NOON_MS = int(dt.datetime(2025, 6, 2, 12, tzinfo=KZ_TIME).timestamp() * 1000)
HEALTH = "KZ/GOV/MOH/health"
POPULATION = "KZ/GOV/MJ/population"
BIRTH = "zhol.population.v1.BirthRegistered"
DEATH = "zhol.population.v1.DeathRegistered"
MOVED = "zhol.population.v1.AddressChanged"
ATTACHED = "zhol.health.v1.ClinicAttached"
CLOSED = "zhol.health.v1.AttachmentClosed"
DISABILITY = "zhol.health.v1.DisabilityEstablished"
PAYLOADS: dict[str, Any] = {
    ATTACHED: pb.ClinicAttached, CLOSED: pb.AttachmentClosed, DISABILITY: pb.DisabilityEstablished,
}


# -- the gateway stand-in ----------------------------------------------------------------


class EventsRecorder(bus_pb2_grpc.EventsServicer):
    """``zhol.bus.v1.Events``: records each published event id once, with its metadata."""

    def __init__(self) -> None:
        self.published: dict[str, tuple[bus_pb2.PublishRequest, dict[str, str]]] = {}
        self.arrived = asyncio.Event()

    async def Publish(self, request: bus_pb2.PublishRequest,
                      context: grpc.aio.ServicerContext) -> bus_pb2.PublishResponse:
        metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        self.published.setdefault(request.event_id, (request, metadata))
        self.arrived.set()
        return bus_pb2.PublishResponse(event_id=request.event_id)

    async def wait_for(self, topic: str, subject: str, timeout: float = 3.0
                       ) -> tuple[bus_pb2.PublishRequest, dict[str, str]]:
        async def arrived() -> tuple[bus_pb2.PublishRequest, dict[str, str]]:
            while True:
                for request, metadata in self.published.values():
                    if request.topic == topic and request.data_subject == subject:
                        return request, metadata
                self.arrived.clear()
                await self.arrived.wait()

        return await asyncio.wait_for(arrived(), timeout)


class ReadRecorder(grpc.aio.ServerInterceptor):
    """Records (method, metadata) of every call the stand-in receives."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str]]] = []

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]],
                                details: grpc.HandlerCallDetails) -> Any:
        metadata = {k: v for k, v in details.invocation_metadata or () if isinstance(v, str)}
        self.calls.append((details.method, metadata))
        return await continuation(details)

    def methods(self) -> list[str]:
        return [method.rsplit("/", 1)[-1] for method, _ in self.calls
                if not method.startswith("/zhol.bus.v1.")]


@dataclass
class World:
    health: pb_grpc.HealthRegistryStub
    sink: bus_pb2_grpc.EventSinkStub
    population: pop_grpc.PopulationRegistryStub
    pension: pension_grpc.PensionRegistryStub
    health_db: Path
    population_db: Path
    education_db: Path
    events: EventsRecorder
    reads: ReadRecorder
    running: HealthServer
    with_pension: bool
    education: edu_grpc.EducationRegistryStub  # through the stand-in, as health reaches it

    # -- reading the databases directly (test only) --

    def health_rows(self, sql: str, *args: object) -> list[tuple]:
        return rows(self.health_db, sql, *args)

    def population_rows(self, sql: str, *args: object) -> list[tuple]:
        return rows(self.population_db, sql, *args)

    def snapshot(self) -> dict[str, list[tuple]]:
        """Health's tables, its inbox and its outbox's events (not their publish state)."""
        tables = ("clinics", "attachments", "insurance_periods", "disability_conclusions",
                  "bus_inbox")
        shot = {t: sorted(self.health_rows(f"SELECT * FROM {t}"), key=repr) for t in tables}
        shot["bus_outbox"] = self.health_rows(
            "SELECT event_id, topic, payload, data_subject FROM bus_outbox ORDER BY rowid"
        )
        return shot

    def health_events(self, subject: str) -> list[tuple[str, Any]]:
        conn = sqlite3.connect(self.health_db)
        try:
            return [(e.topic, PAYLOADS[e.topic].FromString(e.payload))
                    for e in read_outbox(conn) if e.data_subject == subject]
        finally:
            conn.close()

    def population_event(self, topic: str, subject: str) -> tuple[str, bytes]:
        """(event id, payload) of the last event population enqueued about ``subject``."""
        conn = sqlite3.connect(self.population_db)
        try:
            found = [e for e in read_outbox(conn)
                     if e.topic == topic and e.data_subject == subject]
        finally:
            conn.close()
        assert found, f"population enqueued no {topic}"
        return found[-1].event_id, found[-1].payload

    async def deliver(self, topic: str, subject: str, payload: bytes, *,
                      event_id: str | None = None, message_id: str | None = None) -> None:
        delivery = bus_pb2.EventDelivery(
            event_id=event_id or str(uuid.uuid4()),
            message_id=message_id or str(uuid.uuid4()),
            topic=topic,
            publisher=POPULATION,
            subscriber=HEALTH,
            data_subject=subject,
            payload=payload,
            occurred_at_unix_ms=NOON_MS,
            attempt=1,
        )
        await self.sink.Receive(delivery)

    async def deliver_population_event(self, topic: str, subject: str) -> None:
        event_id, payload = self.population_event(topic, subject)
        await self.deliver(topic, subject, payload, event_id=event_id)


@dataclass
class PensionSide:
    """The real pension registry servicer on a database seeded for the same population."""

    servicer: Any

    def add_to(self, server: grpc.aio.Server) -> None:
        pension_grpc.add_PensionRegistryServicer_to_server(self.servicer, server)

    def close(self) -> None:
        self.servicer.close()


def pension_servicer(tmp_path: Path, population_db: Path, clock: FixedClock
                     ) -> PensionSide | None:
    """The pension side, or None while ``adapters.pension`` is not importable."""
    try:
        from zhol.adapters.pension.seed import seed_database as seed_pension
        from zhol.adapters.pension.service import PensionRegistryServicer
    except ImportError:
        return None
    db = tmp_path / "pension.db"
    seed_pension(db, population_db, as_of=TODAY, seed=1)
    return PensionSide(PensionRegistryServicer.open(db, clock))


@contextlib.asynccontextmanager
async def running_world(tmp_path: Path, *, pension: bool, education_served: bool = True
                        ) -> AsyncIterator[World]:
    population_db = tmp_path / "population.db"
    seed_population(population_db, COUNT, seed=3)
    health_db = tmp_path / "health.db"
    seed_health(health_db, population_db, seed=1)
    clock = FixedClock(NOON_MS)
    reads = ReadRecorder()
    stand_in = grpc.aio.server(interceptors=[reads])
    population = PopulationRegistryServicer.open(population_db, clock)
    pop_grpc.add_PopulationRegistryServicer_to_server(population, stand_in)
    education_db = tmp_path / "education.db"
    seed_education(education_db, population_db, seed=1, as_of=TODAY)
    # the real education servicer, for the place of study; it reads nobody here
    education = EducationRegistryServicer.open(education_db, clock, Citizens(None))
    if education_served:
        edu_grpc.add_EducationRegistryServicer_to_server(education, stand_in)
    pension_side = pension_servicer(tmp_path, population_db, clock) if pension else None
    if pension_side is not None:
        pension_side.add_to(stand_in)
    events = EventsRecorder()
    bus_pb2_grpc.add_EventsServicer_to_server(events, stand_in)
    port = stand_in.add_insecure_port("127.0.0.1:0")
    await stand_in.start()
    settings = HealthSettings(
        db_path=health_db, gateway_address=f"127.0.0.1:{port}",
        port_file=tmp_path / "run" / "health.port",
    )
    running = await serve(settings, clock=clock)
    try:
        async with grpc.aio.insecure_channel(running.address) as channel, \
                grpc.aio.insecure_channel(f"127.0.0.1:{port}") as bus_channel:
            yield World(
                pb_grpc.HealthRegistryStub(channel),
                bus_pb2_grpc.EventSinkStub(channel),
                pop_grpc.PopulationRegistryStub(bus_channel),
                pension_grpc.PensionRegistryStub(bus_channel),
                health_db, population_db, education_db, events, reads, running,
                pension_side is not None, edu_grpc.EducationRegistryStub(bus_channel),
            )
    finally:
        await running.stop(0)
        await stand_in.stop(0)
        population.close()
        education.close()
        if pension_side is not None:
            pension_side.close()
    assert not (tmp_path / "run" / "health.port").exists()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with running_world(tmp_path, pension=False) as running:
        yield running


@pytest.fixture
async def world_with_pension(tmp_path: Path) -> AsyncIterator[World]:
    async with running_world(tmp_path, pension=True) as running:
        # The pension registry is part of the project: its absence is a failure, not a skip.
        assert running.with_pension, "adapters.pension is not importable"
        yield running


def date_of(message: pb.Date | pop.Date) -> dt.date | None:
    if (message.year, message.month, message.day) == (0, 0, 0):
        return None
    return dt.date(message.year, message.month, message.day)


def pdate(day: dt.date) -> pop.Date:
    return pop.Date(year=day.year, month=day.month, day=day.day)


def hdate(day: dt.date) -> pb.Date:
    return pb.Date(year=day.year, month=day.month, day=day.day)


def unknown_iin() -> str:
    iin = make_iin(dt.date(1977, 7, 7), False, 9876)
    assert iin is not None
    return iin.value


_ATTACHED_NOW = """
    SELECT a.iin, a.clinic_id, c.region, c.district
    FROM attachments a JOIN clinics c USING (clinic_id)
    WHERE a.detached_on IS NULL AND {insured} EXISTS (
        SELECT 1 FROM insurance_periods p WHERE p.iin = a.iin AND p.valid_from <= ?
        AND (p.valid_to IS NULL OR p.valid_to >= ?))
    ORDER BY a.iin LIMIT 1
"""


def state_insured(world: World) -> tuple[str, str, str, str]:
    """An attached person with a state-paid period today: (iin, clinic, region, district)."""
    day = TODAY.isoformat()
    return world.health_rows(_ATTACHED_NOW.format(insured=""), day, day)[0]


def not_state_insured(world: World) -> tuple[str, str, str, str]:
    day = TODAY.isoformat()
    return world.health_rows(_ATTACHED_NOW.format(insured="NOT"), day, day)[0]


def other_clinic(world: World, region: str, district: str, not_this: str) -> str:
    return world.health_rows(
        "SELECT clinic_id FROM clinics WHERE region = ? AND district = ? AND clinic_id != ?"
        " ORDER BY clinic_id LIMIT 1", region, district, not_this,
    )[0][0]


def freest(clinics: list[pb.Clinic]) -> pb.Clinic:
    return min(clinics, key=lambda c: (-(c.capacity - c.attached), c.clinic_id))


# -- clinics -----------------------------------------------------------------------------


async def test_list_clinics_by_district(world: World) -> None:
    answer = await world.health.ListClinics(
        pb.ListClinicsRequest(region="Almaty city", district="Medeu district")
    )
    assert len(answer.clinics) >= 2
    assert {(c.region, c.district) for c in answer.clinics} == {("Almaty city", "Medeu district")}
    assert all(c.capacity > 0 and c.name and c.clinic_id for c in answer.clinics)
    everything = await world.health.ListClinics(pb.ListClinicsRequest())
    assert len(everything.clinics) == world.health_rows("SELECT count(*) FROM clinics")[0][0]
    assert sum(c.attached for c in everything.clinics) == world.health_rows(
        "SELECT count(*) FROM attachments WHERE detached_on IS NULL"
    )[0][0]
    nowhere = await world.health.ListClinics(pb.ListClinicsRequest(region="Atlantis"))
    assert list(nowhere.clinics) == []


# -- attaching on request ----------------------------------------------------------------


async def test_attach_on_request_in_the_home_district_when_state_insured(world: World) -> None:
    iin, old, region, district = state_insured(world)
    new = other_clinic(world, region, district, old)
    attachment = await world.health.AttachToClinic(pb.AttachToClinicRequest(iin=iin, clinic_id=new))
    assert (attachment.iin, attachment.clinic_id, attachment.reason) == (iin, new, "request")
    assert date_of(attachment.attached_on) == TODAY
    assert attachment.clinic.district == district
    current = await world.health.GetAttachment(pb.GetAttachmentRequest(iin=iin))
    assert current.clinic_id == new
    history = await world.health.ListAttachments(pb.ListAttachmentsRequest(iin=iin))
    assert [(a.clinic_id, a.detach_reason) for a in history.attachments] == [
        (old, "request"), (new, ""),
    ]
    assert [(t, e.clinic_id, e.reason) for t, e in world.health_events(iin)] == [
        (CLOSED, old, "request"), (ATTACHED, new, "request"),
    ]
    # the district was read over the bus, with a purpose and the citizen as data subject;
    # a state-paid person needs no question to pension; GetAttachment then showed the
    # patient as population knows them now (GetPerson)
    assert world.reads.methods() == ["GetAddress", "GetPerson"]
    _method, metadata = world.reads.calls[0]
    assert metadata["zhol-client"] == HEALTH
    assert metadata["zhol-data-subject"] == iin
    assert "district" in metadata["zhol-purpose"]
    # and the decision was published through the gateway
    request, published = await world.events.wait_for(ATTACHED, iin)
    assert pb.ClinicAttached.FromString(request.payload).clinic_id == new
    assert published["zhol-client"] == HEALTH


async def test_attach_to_a_clinic_of_another_district_is_refused(
    world_with_pension: World,
) -> None:
    # refused only once every basis was asked: pension's workplace included
    world = world_with_pension
    iin, _old, _region, district = state_insured(world)
    elsewhere = world.health_rows(
        "SELECT clinic_id FROM clinics WHERE district != ? ORDER BY clinic_id LIMIT 1", district
    )[0][0]
    before = world.snapshot()
    error = await rpc_error(
        world.health.AttachToClinic(pb.AttachToClinicRequest(iin=iin, clinic_id=elsewhere))
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert world.snapshot() == before


async def test_attach_by_the_district_of_a_temporary_registration(
    world_with_pension: World,
) -> None:
    # health rules.ATTACHMENT (egov.kz "choice of a clinic" [q]): permanent or temporary
    # residence; the temporary registration is population's, asked over the bus.
    world = world_with_pension
    iin, old, region, district = state_insured(world)
    elsewhere, there_region, there = world.health_rows(
        "SELECT clinic_id, region, district FROM clinics WHERE district != ?"
        " ORDER BY clinic_id LIMIT 1", district,
    )[0]
    request = pb.AttachToClinicRequest(iin=iin, clinic_id=elsewhere)
    before = world.snapshot()
    assert (await rpc_error(world.health.AttachToClinic(request))).code() == (
        grpc.StatusCode.FAILED_PRECONDITION
    )
    assert world.snapshot() == before
    permanent = await world.population.GetAddress(pop.GetAddressRequest(iin=iin))
    stay = new_address(there_region, there, "Somewhere", "Abay avenue")
    stay.until.CopyFrom(pdate(TODAY + dt.timedelta(days=180)))
    await world.population.ChangeAddress(
        pop.ChangeAddressRequest(iin=iin, address=stay, temporary=True)
    )
    assert await world.population.GetAddress(pop.GetAddressRequest(iin=iin)) == permanent
    world.reads.calls.clear()
    attachment = await world.health.AttachToClinic(request)
    assert (attachment.clinic_id, attachment.reason, attachment.clinic.district) == (
        elsewhere, "request", there,
    )
    assert world.reads.methods() == ["GetAddress", "GetAddress"]
    assert "temporary" in world.reads.calls[1][1]["zhol-purpose"]
    history = await world.health.ListAttachments(pb.ListAttachmentsRequest(iin=iin))
    assert [(a.clinic_id, a.detach_reason) for a in history.attachments] == [
        (old, "request"), (elsewhere, ""),
    ]


async def test_attach_by_the_district_of_the_school_attended(world_with_pension: World) -> None:
    # health rules.ATTACHMENT (egov.kz [q]): the place of study, an active enrolment
    # that education holds, in a school of the clinic's district.
    world = world_with_pension
    attached = dict(world.health_rows(
        "SELECT iin, clinic_id FROM attachments WHERE detached_on IS NULL"
    ))
    pupil, school_region, school_district = next(
        (iin, region, district) for iin, region, district in rows(
            world.education_db,
            "SELECT e.iin, d.region, d.name FROM school_enrolments e"
            " JOIN schools s USING (school_id) JOIN districts d USING (district_id)"
            " WHERE e.status = 'active' ORDER BY e.iin",
        ) if iin in attached
    )
    clinic = other_clinic(world, school_region, school_district, attached[pupil])
    elsewhere, away_region, away = world.health_rows(
        "SELECT clinic_id, region, district FROM clinics WHERE district != ?"
        " ORDER BY clinic_id LIMIT 1", school_district,
    )[0]
    # the family moves away from the school's district (the pupil stays at the school)
    await world.population.ChangeAddress(pop.ChangeAddressRequest(
        iin=pupil, address=new_address(away_region, away, "Elsewhere", "Tole bi street"),
    ))
    world.reads.calls.clear()
    attachment = await world.health.AttachToClinic(
        pb.AttachToClinicRequest(iin=pupil, clinic_id=clinic)
    )
    assert (attachment.clinic_id, attachment.clinic.district) == (clinic, school_district)
    assert world.reads.methods() == ["GetAddress", "GetAddress", "ListEnrolments", "ListSchools"]
    assert [meta.get("zhol-data-subject", "") for _m, meta in world.reads.calls] == [
        pupil, pupil, pupil, "",
    ]
    # a clinic of a third district: neither home nor school; refused, nothing changed
    third = world.health_rows(
        "SELECT clinic_id FROM clinics WHERE district NOT IN (?, ?) ORDER BY clinic_id LIMIT 1",
        school_district, away,
    )[0][0]
    before = world.snapshot()
    error = await rpc_error(
        world.health.AttachToClinic(pb.AttachToClinicRequest(iin=pupil, clinic_id=third))
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert world.snapshot() == before
    assert elsewhere  # the district moved to has clinics of its own


async def test_bad_attach_requests_change_nothing(world: World) -> None:
    iin, old, _region, _district = state_insured(world)
    before = world.snapshot()
    cases = [
        (pb.AttachToClinicRequest(iin="12345", clinic_id=old), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.AttachToClinicRequest(iin=iin, clinic_id=""), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.AttachToClinicRequest(iin=iin, clinic_id="PHC-00-000"), grpc.StatusCode.NOT_FOUND),
        (pb.AttachToClinicRequest(iin=unknown_iin(), clinic_id=old), grpc.StatusCode.NOT_FOUND),
        (pb.AttachToClinicRequest(iin=iin, clinic_id=old), grpc.StatusCode.ALREADY_EXISTS),
    ]
    for request, code in cases:
        assert (await rpc_error(world.health.AttachToClinic(request))).code() == code
    assert (await rpc_error(
        world.health.GetAttachment(pb.GetAttachmentRequest(iin=unknown_iin()))
    )).code() == grpc.StatusCode.NOT_FOUND
    assert world.snapshot() == before


async def test_attach_on_request_never_asks_pension(world: World) -> None:
    # Attachment does not depend on insurance (health rules.ATTACHMENT, egov.kz [q]):
    # with pension unreachable, a person without a state-paid period still attaches.
    iin, old, region, district = not_state_insured(world)
    new = other_clinic(world, region, district, old)
    attachment = await world.health.AttachToClinic(pb.AttachToClinicRequest(iin=iin, clinic_id=new))
    assert (attachment.clinic_id, attachment.reason) == (new, "request")
    assert world.reads.methods() == ["GetAddress"]


# -- insured through contributions (asked of pension) -----------------------------------


async def by_contributions(world: World, insured: bool) -> tuple[str, str, str, str]:
    """An attached person without a state-paid period whom pension finds ``insured``
    (not insured: nor state-insured by a category derived when asked, as a non-working
    parent or a student)."""
    day = TODAY.isoformat()
    for iin, clinic_id, region, district in world.health_rows(
        _ATTACHED_NOW.format(insured="NOT").replace("LIMIT 1", ""), day, day
    ):
        if not insured and (await world.health.GetInsuranceStatus(
                pb.GetInsuranceStatusRequest(iin=iin))).insured:
            continue
        answer = await world.pension.IsInsuredByContributions(
            pension_pb2.IsInsuredByContributionsRequest(iin=iin)
        )
        if answer.insured is insured:
            return iin, clinic_id, region, district
    raise AssertionError(f"nobody in the seed with insured={insured}")


async def test_attach_on_request_when_insured_by_contributions(
    world_with_pension: World,
) -> None:
    world = world_with_pension
    iin, old, region, district = await by_contributions(world, True)
    world.reads.calls.clear()
    new = other_clinic(world, region, district, old)
    attachment = await world.health.AttachToClinic(pb.AttachToClinicRequest(iin=iin, clinic_id=new))
    assert (attachment.clinic_id, attachment.reason) == (new, "request")
    assert world.reads.methods() == ["GetAddress"]
    _method, metadata = world.reads.calls[0]
    assert (metadata["zhol-client"], metadata["zhol-data-subject"]) == (HEALTH, iin)
    status = await world.health.GetInsuranceStatus(pb.GetInsuranceStatusRequest(iin=iin))
    assert (status.insured, status.category, status.source) == (
        True, "contributions", "KZ/GOV/MLSPP/pension",
    )


async def test_an_uninsured_citizen_attaches_on_request(world_with_pension: World) -> None:
    # Primary care is in the state-guaranteed volume (egov.kz "choice of a clinic" [q]).
    world = world_with_pension
    iin, old, region, district = await by_contributions(world, False)
    new = other_clinic(world, region, district, old)
    attachment = await world.health.AttachToClinic(pb.AttachToClinicRequest(iin=iin, clinic_id=new))
    assert (attachment.clinic_id, attachment.reason) == (new, "request")
    status = await world.health.GetInsuranceStatus(pb.GetInsuranceStatusRequest(iin=iin))
    assert (status.insured, status.category) == (False, "")
    assert (await world.health.GetAttachment(pb.GetAttachmentRequest(iin=iin))).clinic_id == new


async def an_uninsured_mother(world: World) -> str:
    """A living woman of child-bearing age, neither state-paid nor insured by pension."""
    day = TODAY.isoformat()
    state_paid = {iin for (iin,) in world.health_rows(
        "SELECT iin FROM insurance_periods WHERE valid_from <= ?"
        " AND (valid_to IS NULL OR valid_to >= ?)", day, day)}
    for (iin,) in world.population_rows(
        "SELECT p.iin FROM persons p JOIN addresses a ON a.iin = p.iin AND a.valid_to IS NULL"
        " WHERE p.sex = 'F' AND p.death_date IS NULL AND p.birth_date BETWEEN ? AND ?"
        " ORDER BY p.iin", "1982-01-01", "2000-12-31",
    ):
        if iin in state_paid:
            continue
        answer = await world.pension.IsInsuredByContributions(
            pension_pb2.IsInsuredByContributionsRequest(iin=iin)
        )
        if answer.paid_months == 0:
            return iin
    raise AssertionError("no uninsured woman of child-bearing age in the seed")



async def record_a_june_contribution(world: World, pension_db: Path, iin: str) -> None:
    """Pension records a contribution for ``iin`` for June 2025 (TODAY's month), the
    amounts copied from a seeded report of the same year so they match the rates."""
    employer, income, pension_amount, social_amount = rows(
        pension_db,
        "SELECT employer_bin, income, pension_amount, social_amount FROM contributions"
        " WHERE month LIKE '2025-%' AND pension_amount > 0 ORDER BY iin LIMIT 1",
    )[0]
    await world.pension.RecordContribution(pension_pb2.RecordContributionRequest(
        employer_bin=employer, iin=iin, month=pension_pb2.Month(year=2025, month=6),
        income=income, pension_amount=pension_amount, social_amount=social_amount,
        employer_pension_amount=employer_pension_amount(
            income, 2025, Iin.parse(iin).birth_date),
    ))

async def test_a_non_working_parent_of_a_child_under_three_is_state_insured(
    world_with_pension: World, tmp_path: Path,
) -> None:
    # health rules.NON_WORKING_PARENT [o]: derived from population's family links and
    # birth dates and from pension's contributions, at the moment of asking.
    world = world_with_pension
    mother = await an_uninsured_mother(world)
    status = await world.health.GetInsuranceStatus(pb.GetInsuranceStatusRequest(iin=mother))
    assert (status.insured, status.category) == (False, "")
    child = await register_birth(world, mother)
    world.reads.calls.clear()
    status = await world.health.GetInsuranceStatus(pb.GetInsuranceStatusRequest(iin=mother))
    assert (status.insured, status.category, status.social_category) == (
        True, "state_paid", "non_working_parent_child_under_3",
    )
    # the month asked about (the child was born on 30 May)
    assert (date_of(status.valid_from), date_of(status.valid_to)) == (
        dt.date(2025, 6, 1), dt.date(2025, 6, 30),
    )
    assert "KZ/GOV/MLSPP/pension" in status.source and "2025-03 to 2025-06" in status.source
    reads = [(method.rsplit("/", 1)[-1], meta["zhol-data-subject"])
             for method, meta in world.reads.calls if "/zhol.bus.v1." not in method]
    assert reads[:4] == [
        ("IsInsuredByContributions", mother), ("GetFamily", mother), ("GetPerson", child),
        ("IsInsuredByContributions", mother),
    ]
    # A contribution for this very month: the parent works, the category is gone.
    await record_a_june_contribution(world, tmp_path / "pension.db", mother)
    status = await world.health.GetInsuranceStatus(pb.GetInsuranceStatusRequest(iin=mother))
    assert (status.insured, status.category, status.social_category) == (False, "", "")
    # the child itself is state-insured by its age, whoever its parents are
    status = await world.health.GetInsuranceStatus(pb.GetInsuranceStatusRequest(iin=child))
    assert status.social_category == "child_under_1" or not status.insured


# -- places of work and study beyond school, the student's insurance (issue 14 item 11) --


def current_work(tmp_path: Path) -> dict[str, set[tuple[str, str]]]:
    """Each person's employers' (region, district) of an employment in force today (the
    pension database, read directly: test only)."""
    day = TODAY.isoformat()
    found: dict[str, set[tuple[str, str]]] = {}
    for iin, region, district in rows(
        tmp_path / "pension.db",
        "SELECT e.iin, r.region, r.district FROM employment_periods e"
        " JOIN employers r ON r.bin = e.employer_bin WHERE e.started_on <= ?"
        " AND (e.ended_on IS NULL OR e.ended_on >= ?) ORDER BY e.iin", day, day,
    ):
        found.setdefault(iin, set()).add((region, district))
    return found


def current_studies(world: World) -> dict[str, set[tuple[str, str]]]:
    """Each person's colleges' and universities' (region, district) of an open study."""
    found: dict[str, set[tuple[str, str]]] = {}
    for iin, region, district in rows(
        world.education_db,
        "SELECT s.iin, d.region, d.name FROM studies s JOIN institutions USING (institution_id)"
        " JOIN districts d USING (district_id) WHERE s.ended_on IS NULL ORDER BY s.iin",
    ):
        found.setdefault(iin, set()).add((region, district))
    return found


def homes(world: World) -> dict[str, tuple[str, str]]:
    return {iin: (region, district) for iin, region, district in world.population_rows(
        "SELECT iin, region, district FROM addresses WHERE valid_to IS NULL")}


def a_clinic_in(world: World, place: tuple[str, str]) -> str:
    return world.health_rows(
        "SELECT clinic_id FROM clinics WHERE region = ? AND district = ? ORDER BY clinic_id"
        " LIMIT 1", *place,
    )[0][0]


def a_clinic_outside(world: World, places: set[tuple[str, str]]) -> str:
    return next(clinic for clinic, region, district in world.health_rows(
        "SELECT clinic_id, region, district FROM clinics ORDER BY clinic_id"
    ) if (region, district) not in places)


def elsewhere_only(world: World, tmp_path: Path, iin: str, place: tuple[str, str]) -> bool:
    """``place`` is none of the person's home, temporary stay or school."""
    stays = world.population_rows(
        "SELECT region, district FROM temporary_addresses WHERE iin = ? AND valid_to IS NULL",
        iin)
    pupil = rows(world.education_db,
                 "SELECT 1 FROM school_enrolments WHERE iin = ? AND status = 'active'", iin)
    return homes(world).get(iin) != place and place not in stays and not pupil


async def test_attach_by_the_district_of_the_workplace(
    world_with_pension: World, tmp_path: Path,
) -> None:
    # health rules.ATTACHMENT (egov.kz "choice of a clinic" [q]): the place of work, the
    # district of the employer of an employment in force, as pension holds it.
    world = world_with_pension
    attached = dict(world.health_rows(
        "SELECT iin, clinic_id FROM attachments WHERE detached_on IS NULL"))
    work, studies = current_work(tmp_path), current_studies(world)
    iin, place = next(
        (iin, place) for iin, places in sorted(work.items()) for place in sorted(places)
        if iin in attached and iin not in studies and elsewhere_only(world, tmp_path, iin, place)
    )
    clinic = a_clinic_in(world, place)
    world.reads.calls.clear()
    attachment = await world.health.AttachToClinic(
        pb.AttachToClinicRequest(iin=iin, clinic_id=clinic))
    assert (attachment.clinic_id, attachment.reason, attachment.basis) == (
        clinic, "request", "workplace")
    assert (attachment.clinic.region, attachment.clinic.district) == place
    assert world.reads.methods() == [
        "GetAddress", "GetAddress", "ListEnrolments", "GetEmploymentPeriods"]
    method, metadata = world.reads.calls[-1]
    assert (metadata["zhol-client"], metadata["zhol-data-subject"]) == (HEALTH, iin)
    assert "place of work" in metadata["zhol-purpose"]
    # a clinic of a district where the person neither lives, works nor studies: refused,
    # once every basis was asked, nothing changed
    third = a_clinic_outside(world, {homes(world)[iin], *work[iin]})
    before = world.snapshot()
    world.reads.calls.clear()
    error = await rpc_error(
        world.health.AttachToClinic(pb.AttachToClinicRequest(iin=iin, clinic_id=third)))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert world.snapshot() == before
    assert world.reads.methods()[-2:] == ["GetEmploymentPeriods", "ListStudies"]


async def test_attach_by_the_district_of_the_university(
    world_with_pension: World, tmp_path: Path,
) -> None:
    # health rules.ATTACHMENT [q]: the place of study, a college or university of a
    # study in force that education holds.
    world = world_with_pension
    attached = dict(world.health_rows(
        "SELECT iin, clinic_id FROM attachments WHERE detached_on IS NULL"))
    work, studies = current_work(tmp_path), current_studies(world)
    iin, place = next(
        (iin, place) for iin, places in sorted(studies.items()) for place in sorted(places)
        if iin in attached and place not in work.get(iin, set())
        and elsewhere_only(world, tmp_path, iin, place)
    )
    clinic = a_clinic_in(world, place)
    world.reads.calls.clear()
    attachment = await world.health.AttachToClinic(
        pb.AttachToClinicRequest(iin=iin, clinic_id=clinic))
    assert (attachment.clinic_id, attachment.basis) == (clinic, "college_or_university")
    assert (attachment.clinic.region, attachment.clinic.district) == place
    assert world.reads.methods()[-2:] == ["GetEmploymentPeriods", "ListStudies"]
    assert world.reads.calls[-1][1]["zhol-data-subject"] == iin
    # the GetAttachment answer says where; a third district is refused, nothing changed
    assert (await world.health.GetAttachment(pb.GetAttachmentRequest(iin=iin))).clinic_id == (
        clinic)
    third = a_clinic_outside(world, {homes(world)[iin], *work.get(iin, set()), *studies[iin]})
    before = world.snapshot()
    error = await rpc_error(
        world.health.AttachToClinic(pb.AttachToClinicRequest(iin=iin, clinic_id=third)))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert world.snapshot() == before


async def an_uninsured_full_time_student(world: World) -> tuple[str, int, dt.date]:
    """(IIN, study id, first day) of a full-time student whom nothing else insures: no
    state-paid period in health, no contribution in pension, no child in population."""
    day = TODAY.isoformat()
    state_paid = {iin for (iin,) in world.health_rows(
        "SELECT iin FROM insurance_periods WHERE valid_from <= ?"
        " AND (valid_to IS NULL OR valid_to >= ?)", day, day)}
    parents = {iin for (iin,) in world.population_rows(
        "SELECT iin FROM family_links WHERE relation = 'child'")}
    for iin, study_id, started in rows(
        world.education_db,
        "SELECT iin, study_id, started_on FROM studies WHERE form = 'full_time'"
        " AND ended_on IS NULL ORDER BY iin",
    ):
        if iin in state_paid or iin in parents:
            continue
        answer = await world.pension.IsInsuredByContributions(
            pension_pb2.IsInsuredByContributionsRequest(iin=iin))
        if not answer.insured:
            return iin, study_id, dt.date.fromisoformat(started)
    raise AssertionError("no uninsured full-time student in the seed")


async def test_a_full_time_student_is_state_insured(world_with_pension: World) -> None:
    # health rules.STUDENT [o]: derived from education's studies at the moment of asking.
    world = world_with_pension
    iin, study_id, started = await an_uninsured_full_time_student(world)
    before = world.snapshot()
    world.reads.calls.clear()
    status = await world.health.GetInsuranceStatus(pb.GetInsuranceStatusRequest(iin=iin))
    assert (status.insured, status.category, status.social_category) == (
        True, "state_paid", "student")
    assert (date_of(status.valid_from), date_of(status.valid_to)) == (started, None)
    assert "KZ/GOV/MES/education" in status.source
    reads = [(m.rsplit("/", 1)[-1], meta["zhol-data-subject"])
             for m, meta in world.reads.calls if "/zhol.bus.v1." not in m]
    assert ("ListStudies", iin) in reads
    # the day a study ends is still its day: the last day of the period
    ended = await world.education.EndStudy(edu.EndStudyRequest(
        iin=iin, study_id=study_id, ended_on=edu.Date(year=2025, month=6, day=2)))
    assert ended.ended_on == edu.Date(year=2025, month=6, day=2)
    status = await world.health.GetInsuranceStatus(pb.GetInsuranceStatusRequest(iin=iin))
    assert (status.social_category, date_of(status.valid_to)) == ("student", TODAY)
    assert world.snapshot() == before  # derived, never stored


@pytest.fixture
async def world_without_education(tmp_path: Path) -> AsyncIterator[World]:
    async with running_world(tmp_path, pension=True, education_served=False) as running:
        yield running


async def test_a_student_status_education_cannot_answer_is_unavailable(
    world_without_education: World,
) -> None:
    # Not "uninsured" for want of an answer: the failed read is said (UNAVAILABLE), as
    # the non-working parent's derivation says it.
    world = world_without_education
    iin, _study, _started = await an_uninsured_full_time_student(world)
    before = world.snapshot()
    error = await rpc_error(
        world.health.GetInsuranceStatus(pb.GetInsuranceStatusRequest(iin=iin)))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "education" in (error.details() or "")
    assert world.snapshot() == before


# -- the newborn -------------------------------------------------------------------------


def a_mother(world: World) -> tuple[str, str]:
    """A living woman of child-bearing age with an open attachment: (iin, clinic id)."""
    attached = dict(world.health_rows(
        "SELECT iin, clinic_id FROM attachments WHERE detached_on IS NULL"
    ))
    for (iin,) in world.population_rows(
        "SELECT p.iin FROM persons p JOIN addresses a ON a.iin = p.iin AND a.valid_to IS NULL"
        " WHERE p.sex = 'F' AND p.death_date IS NULL AND p.birth_date BETWEEN ? AND ?"
        " ORDER BY p.iin", "1982-01-01", "2000-12-31",
    ):
        if iin in attached:
            return iin, attached[iin]
    raise AssertionError("no attached mother in the seed")


async def register_birth(world: World, mother: str) -> str:
    born = await world.population.RegisterBirth(pop.RegisterBirthRequest(
        mother_iin=mother, last_name="Akhmetova", first_name="Aruzhan",
        patronymic="Nurlanovna", sex=pop.SEX_FEMALE,
        birth_date=pdate(TODAY - dt.timedelta(days=3)),
    ))
    return born.child.iin


async def test_newborn_is_attached_to_the_mothers_clinic_exactly_once(world: World) -> None:
    mother, clinic_id = a_mother(world)
    child = await register_birth(world, mother)
    event_id, payload = world.population_event(BIRTH, child)
    first = str(uuid.uuid4())
    await asyncio.gather(
        world.deliver(BIRTH, child, payload, event_id=event_id, message_id=first),
        world.deliver(BIRTH, child, payload, event_id=event_id),  # redelivered by the gateway
        world.deliver(BIRTH, child, payload),  # re-published under a new event id
        world.deliver(BIRTH, child, payload),
    )
    await world.deliver(BIRTH, child, payload, event_id=event_id, message_id=first)
    history = await world.health.ListAttachments(pb.ListAttachmentsRequest(iin=child))
    assert [(a.clinic_id, a.reason, a.detach_reason) for a in history.attachments] == [
        (clinic_id, "newborn", ""),
    ]
    assert [(t, e.clinic_id, e.reason) for t, e in world.health_events(child)] == [
        (ATTACHED, clinic_id, "newborn"),
    ]
    status = await world.health.GetInsuranceStatus(pb.GetInsuranceStatusRequest(iin=child))
    assert (status.insured, status.category, status.social_category) == (
        True, "state_paid", "child_under_1",
    )
    assert date_of(status.valid_from) == TODAY - dt.timedelta(days=3)
    # nothing personal was stored: only the IIN and health's own facts
    assert "GetPerson" in world.reads.methods()
    await world.events.wait_for(ATTACHED, child)


# -- moving ------------------------------------------------------------------------------


def new_address(region: str, district: str, locality: str, street: str) -> pop.Address:
    return pop.Address(region=region, district=district, locality=locality, street=street,
                       building="12", apartment="4")


async def test_a_move_to_another_district_reattaches_and_within_it_does_nothing(
    world: World,
) -> None:
    iin, old, region, district = not_state_insured(world)
    target = ("Ulytau region", "Satpayev city")
    assert (region, district) != target
    clinics = await world.health.ListClinics(
        pb.ListClinicsRequest(region=target[0], district=target[1])
    )
    expected = freest(list(clinics.clinics)).clinic_id
    await world.population.ChangeAddress(pop.ChangeAddressRequest(
        iin=iin, address=new_address(*target, "Satpayev", "Abay Avenue"),
    ))
    await world.deliver_population_event(MOVED, iin)
    current = await world.health.GetAttachment(pb.GetAttachmentRequest(iin=iin))
    assert (current.clinic_id, current.reason) == (expected, "address_change")
    assert [(t, e.clinic_id, e.reason) for t, e in world.health_events(iin)] == [
        (CLOSED, old, "address_change"), (ATTACHED, expected, "address_change"),
    ]
    # another street of the same district: the clinic stays
    before = world.snapshot()
    await world.population.ChangeAddress(pop.ChangeAddressRequest(
        iin=iin, address=new_address(*target, "Satpayev", "Tole Bi Street"),
    ))
    await world.deliver_population_event(MOVED, iin)
    after = world.snapshot()
    assert len(after["bus_inbox"]) == len(before["bus_inbox"]) + 1
    after["bus_inbox"] = before["bus_inbox"]
    assert after == before


def a_third_district(world: World, *avoid: tuple[str, str]) -> tuple[str, str]:
    """A district with clinics that is none of ``avoid``."""
    return next((region, district) for region, district in world.health_rows(
        "SELECT DISTINCT region, district FROM clinics ORDER BY region, district"
    ) if (region, district) not in avoid)


async def move_to(world: World, iin: str, place: tuple[str, str], street: str) -> None:
    await world.population.ChangeAddress(pop.ChangeAddressRequest(
        iin=iin, address=new_address(*place, "Somewhere", street)))
    await world.deliver_population_event(MOVED, iin)


async def test_a_move_keeps_an_attachment_by_the_university_while_the_study_lasts(
    world_with_pension: World, tmp_path: Path,
) -> None:
    # rules.KEPT_ON_MOVE [q]: attachment by the place of study is the person's right
    # wherever they live; a move of the registered address takes it away only once the
    # study has ended (asked of education over the bus, as AttachToClinic asks it).
    world = world_with_pension
    attached = dict(world.health_rows(
        "SELECT iin, clinic_id FROM attachments WHERE detached_on IS NULL"))
    work, studies = current_work(tmp_path), current_studies(world)
    yesterday = (TODAY - dt.timedelta(days=1)).isoformat()
    iin, place = next(
        (iin, place) for iin, places in sorted(studies.items()) for place in sorted(places)
        if iin in attached and place not in work.get(iin, set())
        and elsewhere_only(world, tmp_path, iin, place)
        and not rows(world.education_db, "SELECT 1 FROM studies WHERE iin = ?"
                     " AND ended_on IS NULL AND started_on > ?", iin, yesterday)
    )
    clinic = a_clinic_in(world, place)
    await world.health.AttachToClinic(pb.AttachToClinicRequest(iin=iin, clinic_id=clinic))
    shown = await world.health.GetAttachment(pb.GetAttachmentRequest(iin=iin))
    assert (shown.clinic_id, shown.basis) == (clinic, "college_or_university")  # stored
    history = await world.health.ListAttachments(pb.ListAttachmentsRequest(iin=iin))
    assert [a.basis for a in history.attachments][-2:] == [
        "registered_address", "college_or_university"]
    # the registered address moves to a third district: the study still lasts, it stays
    target = a_third_district(world, homes(world)[iin], place, *work.get(iin, set()))
    before = world.snapshot()
    world.reads.calls.clear()
    await move_to(world, iin, target, "Abay Avenue")
    after = world.snapshot()
    assert len(after["bus_inbox"]) == len(before["bus_inbox"]) + 1
    after["bus_inbox"] = before["bus_inbox"]
    assert after == before
    asked = [(m.rsplit("/", 1)[-1], meta) for m, meta in world.reads.calls
             if "/zhol.bus.v1." not in m]
    assert [m for m, _ in asked] == ["ChangeAddress", "GetAddress", "ListStudies"]
    assert asked[-1][1]["zhol-data-subject"] == iin
    assert "still holds" in asked[-1][1]["zhol-purpose"]
    # the study ends (its last day yesterday): the next move re-attaches by the address
    for (study_id,) in rows(world.education_db, "SELECT study_id FROM studies WHERE iin = ?"
                            " AND ended_on IS NULL", iin):
        await world.education.EndStudy(edu.EndStudyRequest(
            iin=iin, study_id=study_id, ended_on=edu.Date(year=2025, month=6, day=1)))
    clinics = await world.health.ListClinics(pb.ListClinicsRequest(
        region=target[0], district=target[1]))
    expected = freest(list(clinics.clinics)).clinic_id
    await move_to(world, iin, target, "Tole Bi Street")
    current = await world.health.GetAttachment(pb.GetAttachmentRequest(iin=iin))
    assert (current.clinic_id, current.reason, current.basis) == (
        expected, "address_change", "registered_address")
    assert [(t, e.clinic_id, e.reason) for t, e in world.health_events(iin)][-2:] == [
        (CLOSED, clinic, "address_change"), (ATTACHED, expected, "address_change"),
    ]


async def test_a_kept_place_education_cannot_confirm_is_unavailable(
    world_without_education: World,
) -> None:
    # Not re-attached for want of an answer: the event is refused (the gateway retries).
    world = world_without_education
    iin, _clinic, _region, _district = not_state_insured(world)
    conn = sqlite3.connect(world.health_db)
    with conn:  # test only: an attachment by the university, made before this test
        conn.execute("UPDATE attachments SET basis = 'college_or_university'"
                     " WHERE iin = ? AND detached_on IS NULL", (iin,))
    conn.close()
    target = a_third_district(world, homes(world)[iin], (_region, _district))
    await world.population.ChangeAddress(pop.ChangeAddressRequest(
        iin=iin, address=new_address(*target, "Somewhere", "Abay Avenue")))
    before = world.snapshot()
    event_id, payload = world.population_event(MOVED, iin)
    error = await rpc_error(world.deliver(MOVED, iin, payload, event_id=event_id))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert world.snapshot() == before


# -- death -------------------------------------------------------------------------------


async def test_death_closes_the_attachment(world: World) -> None:
    iin, clinic_id, _region, _district = state_insured(world)
    died = TODAY - dt.timedelta(days=1)
    await world.population.RegisterDeath(pop.RegisterDeathRequest(iin=iin, death_date=pdate(died)))
    await world.deliver_population_event(DEATH, iin)
    await world.deliver_population_event(DEATH, iin)  # delivered again: nothing more
    error = await rpc_error(world.health.GetAttachment(pb.GetAttachmentRequest(iin=iin)))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    history = await world.health.ListAttachments(pb.ListAttachmentsRequest(iin=iin))
    last = history.attachments[-1]
    assert (last.clinic_id, last.detach_reason, date_of(last.detached_on)) == (
        clinic_id, "death", died,
    )
    assert [(t, e.reason) for t, e in world.health_events(iin)] == [(CLOSED, "death")]


# -- disability --------------------------------------------------------------------------


async def test_a_conclusion_since_childhood_is_published_for_pension(world: World) -> None:
    iin, _clinic, _region, _district = not_state_insured(world)
    conclusion = await world.health.RecordDisabilityConclusion(
        pb.RecordDisabilityConclusionRequest(iin=iin, group=2, from_date=hdate(
            dt.date(2025, 5, 20)), since_childhood=True))
    assert conclusion.since_childhood
    ((_topic, event),) = world.health_events(iin)
    assert event.since_childhood and event.conclusion_id == conclusion.conclusion_id
    listed = await world.health.ListDisabilityConclusions(
        pb.ListDisabilityConclusionsRequest(iin=iin))
    assert list(listed.conclusions) == [conclusion]


async def test_group_2_conclusion_sets_state_paid_insurance_and_is_published(
    world: World,
) -> None:
    iin, _clinic, _region, _district = not_state_insured(world)
    request = pb.RecordDisabilityConclusionRequest(
        iin=iin, group=2, from_date=hdate(dt.date(2025, 5, 20)),
        to_date=hdate(dt.date(2026, 5, 19)),
    )
    conclusion = await world.health.RecordDisabilityConclusion(request)
    assert conclusion.conclusion_id == "MSE-2025-0000001"
    assert (conclusion.iin, conclusion.group, date_of(conclusion.decided_on)) == (iin, 2, TODAY)
    status = await world.health.GetInsuranceStatus(pb.GetInsuranceStatusRequest(iin=iin))
    assert (status.insured, status.category, status.social_category, status.source) == (
        True, "state_paid", "disabled_group_1_2", "conclusion MSE-2025-0000001",
    )
    assert date_of(status.valid_to) == dt.date(2026, 5, 19)
    ((topic, event),) = world.health_events(iin)
    assert topic == DISABILITY
    assert (event.iin, event.group, event.conclusion_id) == (iin, 2, "MSE-2025-0000001")
    assert (date_of(event.from_date), date_of(event.to_date)) == (
        dt.date(2025, 5, 20), dt.date(2026, 5, 19),
    )
    published, metadata = await world.events.wait_for(DISABILITY, iin)
    assert pb.DisabilityEstablished.FromString(published.payload) == event
    assert (metadata["zhol-client"], metadata["zhol-data-subject"]) == (HEALTH, iin)
    listed = await world.health.ListDisabilityConclusions(
        pb.ListDisabilityConclusionsRequest(iin=iin)
    )
    assert list(listed.conclusions) == [conclusion]
    assert not conclusion.since_childhood and not event.since_childhood  # not asked for
    # the same conclusion again, a bad group, a future start, an unknown person
    before = world.snapshot()
    refusals = [
        (request, grpc.StatusCode.ALREADY_EXISTS),
        (pb.RecordDisabilityConclusionRequest(iin=iin, group=4, from_date=hdate(TODAY)),
         grpc.StatusCode.INVALID_ARGUMENT),
        (pb.RecordDisabilityConclusionRequest(iin=iin, group=1), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.RecordDisabilityConclusionRequest(
            iin=iin, group=1, from_date=hdate(TODAY + dt.timedelta(days=1))),
         grpc.StatusCode.INVALID_ARGUMENT),
        (pb.RecordDisabilityConclusionRequest(iin=iin, group=1, from_date=hdate(TODAY)),
         grpc.StatusCode.FAILED_PRECONDITION),  # overlaps the group 2 period
        (pb.RecordDisabilityConclusionRequest(iin=unknown_iin(), group=1,
                                              from_date=hdate(TODAY)),
         grpc.StatusCode.NOT_FOUND),
    ]
    for refused, code in refusals:
        error = await rpc_error(world.health.RecordDisabilityConclusion(refused))
        assert error.code() == code, refused
    assert world.snapshot() == before


# -- events that are refused -------------------------------------------------------------


async def test_events_about_persons_unknown_to_population_change_nothing(world: World) -> None:
    stranger = unknown_iin()
    mother, _clinic = a_mother(world)
    payloads = {
        BIRTH: pop.BirthRegistered(child_iin=stranger, mother_iin=mother,
                                   birth_date=pdate(TODAY), act_id="MJ-0000000001"),
        DEATH: pop.DeathRegistered(iin=stranger, death_date=pdate(TODAY), act_id="MJ-1"),
        MOVED: pop.AddressChanged(iin=stranger, changed_on=pdate(TODAY)),
    }
    before = world.snapshot()
    for topic, payload in payloads.items():
        error = await rpc_error(world.deliver(topic, stranger, payload.SerializeToString()))
        assert error.code() == grpc.StatusCode.NOT_FOUND, topic
    assert world.snapshot() == before


async def test_malformed_and_unexpected_events_change_nothing(world: World) -> None:
    iin, _clinic, _region, _district = state_insured(world)
    before = world.snapshot()
    cases = [
        (BIRTH, b"\xff\xff\xff", grpc.StatusCode.INVALID_ARGUMENT),
        (DEATH, pop.DeathRegistered(iin="123").SerializeToString(),
         grpc.StatusCode.INVALID_ARGUMENT),
        ("zhol.population.v1.MarriageRegistered", b"", grpc.StatusCode.UNIMPLEMENTED),
        # population records no death of this living person
        (DEATH, pop.DeathRegistered(iin=iin, death_date=pdate(TODAY)).SerializeToString(),
         grpc.StatusCode.FAILED_PRECONDITION),
    ]
    for topic, payload, code in cases:
        error = await rpc_error(world.deliver(topic, iin, payload))
        assert error.code() == code, topic
    assert world.snapshot() == before


# -- without the bus ---------------------------------------------------------------------


async def test_without_the_bus_only_health_own_data_is_served(tmp_path: Path) -> None:
    db = tmp_path / "clinics.db"
    seed_health(db)
    running = await serve(HealthSettings(db_path=db), clock=FixedClock(NOON_MS))
    iin = unknown_iin()
    try:
        async with grpc.aio.insecure_channel(running.address) as channel:
            health = pb_grpc.HealthRegistryStub(channel)
            sink = bus_pb2_grpc.EventSinkStub(channel)
            clinics = (await health.ListClinics(pb.ListClinicsRequest())).clinics
            assert clinics
            refused = [
                health.AttachToClinic(
                    pb.AttachToClinicRequest(iin=iin, clinic_id=clinics[0].clinic_id)
                ),
                health.GetInsuranceStatus(pb.GetInsuranceStatusRequest(iin=iin)),
                health.RecordDisabilityConclusion(pb.RecordDisabilityConclusionRequest(
                    iin=iin, group=2, from_date=hdate(TODAY))),
                sink.Receive(bus_pb2.EventDelivery(
                    message_id="m-1", event_id="e-1", topic=MOVED, publisher=POPULATION,
                    payload=pop.AddressChanged(iin=iin).SerializeToString(),
                )),
            ]
            for call in refused:
                assert (await rpc_error(call)).code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        await running.stop(0)
    assert rows(db, "SELECT count(*) FROM attachments") == [(0,)]
    assert rows(db, "SELECT count(*) FROM bus_inbox") == [(0,)]
