"""Once-only, proved live (issue 3): pension, health and education show a citizen as
the population registry knows them at the moment of each answer, read over the bus,
never copied.

A whole federation in this process on 127.0.0.1: registry, the four gateways and the
four adapters as real gRPC servers (mutual TLS between gateways), each agency on its
own seeded SQLite file. For one child the test reads the pension, health and education
answers, changes the family's address and the child's name in population, reads again
and finds the new values in all three answers at once, with no event handled and no
copy job; the agencies' database files hold neither the new name nor the new street,
while population's file does. Then population goes down (and one agency runs with the
bus off): the agencies still answer their own facts, with the person part absent and
the reason given.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio

from tests.integration.bus_federation import Federation, start_federation
from tests.integration.seeded_agencies import AGENCIES, serve_seeded_agencies
from zhol.adapters.education.server import EducationSettings
from zhol.adapters.education.server import serve as serve_education
from zhol.cli.federation import ALL_AGENCIES, EDUCATION, HEALTH, PENSION
from zhol.education.v1 import education_pb2 as ed
from zhol.education.v1 import education_pb2_grpc as ed_grpc
from zhol.gateway.messagelog import list_records
from zhol.health.v1 import health_pb2 as hl
from zhol.health.v1 import health_pb2_grpc as hl_grpc
from zhol.pension.v1 import pension_pb2 as pen
from zhol.pension.v1 import pension_pb2_grpc as pen_grpc
from zhol.population.v1 import population_pb2 as pop
from zhol.population.v1 import population_pb2_grpc as pop_grpc

pytestmark = pytest.mark.integration

POPULATION_GATEWAY = "KZ/GOV/MJ/gw1"


@dataclass
class World:
    fed: Federation
    servers: dict[str, Any]
    channels: list[grpc.aio.Channel]
    population: pop_grpc.PopulationRegistryStub
    pension: pen_grpc.PensionRegistryStub
    health: hl_grpc.HealthRegistryStub
    education: ed_grpc.EducationRegistryStub

    def db(self, agency: str) -> Path:
        return self.fed.layout.adapter_db(agency)

    def rows(self, agency: str, sql: str, *args: object) -> list[tuple]:
        conn = sqlite3.connect(f"file:{self.db(agency)}?mode=ro", uri=True)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def files_contain(self, agency: str, text: str) -> bool:
        """Whether any file of the agency's database (main, WAL, journal) holds ``text``."""
        needle = text.encode("utf-8")
        return any(needle in f.read_bytes() for f in self.db(agency).parent.iterdir()
                   if f.name.startswith(self.db(agency).name))


@pytest_asyncio.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    fed = await start_federation(tmp_path, persons=300, agencies=ALL_AGENCIES)
    servers: dict[str, Any] = {}
    channels: list[grpc.aio.Channel] = []
    try:
        await serve_seeded_agencies(fed, servers)

        def channel(name: str) -> grpc.aio.Channel:
            channels.append(grpc.aio.insecure_channel(fed.ports.adapter_address(name)))
            return channels[-1]

        yield World(
            fed, servers, channels,
            pop_grpc.PopulationRegistryStub(channel("population")),
            pen_grpc.PensionRegistryStub(channel("pension")),
            hl_grpc.HealthRegistryStub(channel("health")),
            ed_grpc.EducationRegistryStub(channel("education")),
        )
    finally:
        for ch in channels:
            await ch.close()
        for running in servers.values():
            await running.stop(0)
        await fed.stop()


def pick_child(world: World) -> tuple[str, tuple[str, str]]:
    """A child waiting in the kindergarten queue with an open clinic attachment, and
    another district (region, district) where both health and education serve."""
    waiting = {iin for (iin,) in world.rows(
        "education", "SELECT iin FROM queue_entries WHERE status = 'waiting'")}
    attached = {iin for (iin,) in world.rows(
        "health", "SELECT iin FROM attachments WHERE detached_on IS NULL")}
    child = min(waiting & attached)
    clinics = set(world.rows("health", "SELECT region, district FROM clinics"))
    districts = set(world.rows("education", "SELECT region, name FROM districts"))
    (region, district) = world.rows(
        "education",
        "SELECT d.region, d.name FROM queue_entries AS q JOIN districts AS d"
        " USING (district_id) WHERE q.iin = ?", child,
    )[0]
    elsewhere = sorted((clinics & districts) - {(region, district)})
    return child, elsewhere[0]


# Each answer that embeds the person: (its RPC's stub, request, answer type).
READS: dict[str, tuple[str, str, Any, Any]] = {
    "pension": ("pension", "GetPensionStatus", pen.GetPensionStatusRequest, pen.PensionStatus),
    "benefits": ("pension", "ListBenefits", pen.ListBenefitsRequest, pen.ListBenefitsResponse),
    "attachment": ("health", "GetAttachment", hl.GetAttachmentRequest, hl.Attachment),
    "insurance": ("health", "GetInsuranceStatus", hl.GetInsuranceStatusRequest,
                  hl.InsuranceStatus),
    "queue": ("education", "GetQueuePosition", ed.GetQueuePositionRequest, ed.QueuePosition),
    "enrolments": ("education", "ListEnrolments", ed.ListEnrolmentsRequest,
                   ed.ListEnrolmentsResponse),
}  # fmt: skip
PERSON_FIELDS = ("person", "person_status", "person_reason")


async def answers(
    world: World, iin: str, mask: Callable[[Any], list[str]] | None = None
) -> dict[str, Any]:
    """Each answer about ``iin``; ``mask(answer type)``: the ``read_mask`` paths to ask."""
    found = {}
    for name, (stub, method, request_type, answer_type) in READS.items():
        request = request_type(iin=iin)
        if mask is not None:
            request.read_mask.paths[:] = mask(answer_type)
        found[name] = await getattr(getattr(world, stub), method)(request)
    return found


def shown(answer: Any) -> tuple[str, str, str, str]:
    """(status name, last name, first name, district) of an answer's person."""
    status = answer.DESCRIPTOR.fields_by_name["person_status"].enum_type
    return (status.values_by_number[answer.person_status].name, answer.person.last_name,
            answer.person.first_name, answer.person.address.district)


async def test_a_change_in_population_is_what_every_agency_answers_next(world: World) -> None:
    child, (new_region, new_district) = pick_child(world)
    before = await world.population.GetPerson(pop.GetPersonRequest(iin=child))
    was = ("PERSON_STATUS_CURRENT", before.last_name, before.first_name,
           before.address.district)
    for name, answer in (await answers(world, child)).items():
        assert shown(answer) == was, name
        assert answer.person.iin == child and answer.person_reason == ""
        assert answer.person.birth_date.year == before.birth_date.year
    first = await answers(world, child)
    # pension and health show the full registered address, education only the district
    assert first["benefits"].person.address.street == before.address.street
    assert first["attachment"].person.address.street == before.address.street
    assert "street" not in ed.RegisteredDistrict.DESCRIPTOR.fields_by_name

    marker = uuid.uuid4().hex[:10]
    new_name, new_street = f"Renamed{marker}", f"Live street {marker}"
    await world.population.ChangeAddress(pop.ChangeAddressRequest(iin=child, address=pop.Address(
        region=new_region, district=new_district, locality=new_region, street=new_street,
        building="7")))
    renamed = await world.population.ChangeName(pop.ChangeNameRequest(
        iin=child, last_name=new_name, first_name=before.first_name,
        patronymic=before.patronymic, reason="application"))
    assert renamed.act.kind == "name_change" and renamed.person.last_name == new_name

    # the very next answers, with no copy job and no event needed
    now = ("PERSON_STATUS_CURRENT", new_name, before.first_name, new_district)
    after = await answers(world, child)
    for name, answer in after.items():
        assert shown(answer) == now, name
    assert after["benefits"].person.address.street == new_street
    assert after["insurance"].person.address.street == new_street
    assert after["queue"].person.address.region == new_region

    # every read named the child as data subject and its purpose, on population's gateway
    logged = list_records(world.fed.layout.gateway(POPULATION_GATEWAY) / "messagelog.db",
                          data_subject=child)
    readers = {(r["client"], r["purpose"]) for r in logged
               if r["kind"] == "request" and r["service"].endswith("/GetPerson")}
    assert {client for client, _ in readers} >= {PENSION, HEALTH, EDUCATION}
    assert all("name" in purpose for _, purpose in readers if purpose.endswith("answer"))

    # no agency keeps what it showed; population, which owns it, does (the probe works)
    for text in (new_name, new_street):
        assert not [a for a in AGENCIES if world.files_contain(a, text)], text
        assert world.files_contain("population", text)


async def test_population_down_or_bus_off_answers_own_facts_without_the_person(
    world: World,
) -> None:
    child, _ = pick_child(world)
    healthy = await answers(world, child)
    await world.fed.population.stop(0)  # population's system is down; the bus is up
    down = await answers(world, child)
    for name, answer in down.items():
        assert shown(answer)[0] == "PERSON_STATUS_UNAVAILABLE", name
        assert not answer.HasField("person"), name
        assert answer.person_reason.endswith("ServiceFailed"), name
        # the agency's own facts are answered as before
        assert _without_person(answer) == _without_person(healthy[name]), name

    # an agency running without the bus says so, and still answers from its own data
    db = world.db("education")
    offline = await serve_education(EducationSettings(db_path=db))
    try:
        async with grpc.aio.insecure_channel(offline.address) as channel:
            stub = ed_grpc.EducationRegistryStub(channel)
            queue = await stub.GetQueuePosition(ed.GetQueuePositionRequest(iin=child))
    finally:
        await offline.stop(0)
    assert (queue.person_status, queue.person_reason) == (
        ed.PERSON_STATUS_NOT_CONNECTED, "not connected to the bus")
    assert not queue.HasField("person")
    assert queue.entry == healthy["queue"].entry


def _without_person(answer: Any) -> Any:
    copy = type(answer)()
    copy.CopyFrom(answer)
    for field in ("person", "person_status", "person_reason"):
        copy.ClearField(field)
    return copy


def person_reads(world: World, iin: str) -> list[str]:
    """The purposes of the GetPerson requests about ``iin`` in population's gateway log."""
    logged = list_records(world.fed.layout.gateway(POPULATION_GATEWAY) / "messagelog.db",
                          data_subject=iin)
    return sorted(r["purpose"] for r in logged
                  if r["kind"] == "request" and r["service"].endswith("/GetPerson"))


def all_but_person(answer_type: Any) -> list[str]:
    return [f.name for f in answer_type.DESCRIPTOR.fields if f.name not in PERSON_FIELDS]


async def test_a_caller_that_has_the_person_asks_without_it_and_population_is_not_read(
    world: World,
) -> None:
    """AIP-157 partial response: a read_mask leaving the person out (the portal has read
    population itself) saves the agency's GetPerson; no mask is today's full answer."""
    child, _ = pick_child(world)
    before = person_reads(world, child)
    full = await answers(world, child)
    # no mask: every answer reads the person, one GetPerson each (logged, by purpose)
    after_full = person_reads(world, child)
    assert len(after_full) == len(before) + len(READS)
    assert all(shown(a)[0] == "PERSON_STATUS_CURRENT" for a in full.values())

    narrowed = await answers(world, child, mask=all_but_person)
    assert person_reads(world, child) == after_full  # not one more read of population
    for name, answer in narrowed.items():
        assert answer == _without_person(full[name]), name  # the agency's own facts, all
        assert answer.person_status == 0 and not answer.HasField("person"), name

    # the person part alone, or a field of it, still reads population
    star = await answers(world, child, mask=lambda _: ["*"])
    only_name = await answers(world, child, mask=lambda _: ["person.last_name"])
    assert len(person_reads(world, child)) == len(after_full) + 2 * len(READS)
    for name, answer in only_name.items():
        assert star[name] == full[name], name
        assert answer == type(answer)(person={"last_name": full[name].person.last_name}), name


@pytest.mark.parametrize("paths", [["no_such_field"], ["person", ""], ["*", "person"],
                                   ["person.no_such_field"], ["person_status.number"]])
async def test_a_read_mask_naming_no_field_of_the_answer_is_refused_and_reads_nobody(
    world: World, paths: list[str]
) -> None:
    child, _ = pick_child(world)
    before = person_reads(world, child)
    for name, (stub, method, request_type, _) in READS.items():
        request = request_type(iin=child)
        request.read_mask.paths[:] = paths
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await getattr(getattr(world, stub), method)(request)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
    assert person_reads(world, child) == before
