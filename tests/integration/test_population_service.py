"""The population registry over real gRPC on 127.0.0.1 (an ephemeral port)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from tests.adapter_helpers import date_pb, rpc_error
from tests.sqlite_rows import one
from zhol.adapters.population.model import KZ_TIME
from zhol.adapters.population.seed import seed_database
from zhol.adapters.population.server import PopulationServer, PopulationSettings, serve
from zhol.core.clock import FixedClock
from zhol.core.iin import make_iin
from zhol.population.v1 import population_pb2 as pb
from zhol.population.v1 import population_pb2_grpc as pb_grpc

pytestmark = pytest.mark.integration

COUNT = 250
TODAY = dt.date(2025, 6, 2)
NOON = dt.datetime(2025, 6, 2, 12, tzinfo=KZ_TIME)


@dataclass(frozen=True)
class Registry:
    stub: pb_grpc.PopulationRegistryStub
    running: PopulationServer
    db: Path

    def one(self, sql: str, *args: object) -> tuple:
        return one(self.db, sql, *args)


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[Registry]:
    db = tmp_path / "population.db"
    seed_database(db, COUNT, seed=3)
    settings = PopulationSettings(db_path=db, port_file=tmp_path / "run" / "population.port")
    running = await serve(settings, clock=FixedClock(int(NOON.timestamp() * 1000)))
    try:
        async with grpc.aio.insecure_channel(running.address) as channel:
            yield Registry(pb_grpc.PopulationRegistryStub(channel), running, db)
    finally:
        await running.stop(0)
    assert not settings.port_file.exists()  # type: ignore[union-attr]


def a_mother(registry: Registry) -> str:
    return registry.one(
        "SELECT p.iin FROM persons p JOIN addresses a ON a.iin = p.iin AND a.valid_to IS NULL"
        " WHERE p.sex = 'F' AND p.death_date IS NULL AND p.birth_date BETWEEN ? AND ?"
        " ORDER BY p.iin LIMIT 1",
        "1975-01-01", "2000-12-31",
    )[0]


def a_living(registry: Registry, sex: str) -> str:
    return registry.one(
        "SELECT iin FROM persons WHERE sex = ? AND death_date IS NULL"
        " AND birth_date < '1995-01-01' ORDER BY iin DESC LIMIT 1",
        sex,
    )[0]


async def test_port_file_holds_the_bound_port(registry: Registry) -> None:
    port_file = registry.running.settings.port_file
    assert port_file is not None
    assert port_file.read_text().strip() == str(registry.running.port)
    assert registry.running.port > 0


async def test_get_person(registry: Registry) -> None:
    iin, last, first, birth = registry.one(
        "SELECT iin, last_name, first_name, birth_date FROM persons ORDER BY iin LIMIT 1 OFFSET 9"
    )
    person = await registry.stub.GetPerson(pb.GetPersonRequest(iin=iin))
    assert (person.iin, person.last_name, person.first_name) == (iin, last, first)
    assert dt.date(person.birth_date.year, person.birth_date.month,
                   person.birth_date.day).isoformat() == birth
    assert person.sex in (pb.SEX_MALE, pb.SEX_FEMALE)
    assert person.citizenship
    assert person.address.region


@pytest.mark.parametrize("iin", ["", "12345", "85030430017x", "850304300179", "850304301810"])
async def test_malformed_iin_is_invalid_argument(registry: Registry, iin: str) -> None:
    error = await rpc_error(registry.stub.GetPerson(pb.GetPersonRequest(iin=iin)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "iin" in (error.details() or "")


async def test_unknown_iin_is_not_found(registry: Registry) -> None:
    unknown = make_iin(dt.date(1977, 7, 7), False, 9876)
    assert unknown is not None
    for call in (
        registry.stub.GetPerson(pb.GetPersonRequest(iin=unknown.value)),
        registry.stub.GetAddress(pb.GetAddressRequest(iin=unknown.value)),
        registry.stub.GetFamily(pb.GetFamilyRequest(iin=unknown.value)),
    ):
        assert (await rpc_error(call)).code() == grpc.StatusCode.NOT_FOUND


async def test_list_persons_pages_cover_everyone_exactly_once(registry: Registry) -> None:
    seen: list[str] = []
    token = ""
    while True:
        page = await registry.stub.ListPersons(
            pb.ListPersonsRequest(page_size=60, page_token=token)
        )
        assert len(page.persons) <= 60
        seen += [p.iin for p in page.persons]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == COUNT
    assert seen == sorted(set(seen))


@pytest.mark.parametrize(
    "request_",
    [pb.ListPersonsRequest(page_token="%%%"), pb.ListPersonsRequest(page_size=-5),
     pb.ListPersonsRequest(page_token="MTIzNDU2Nzg5MDEy")],  # "123456789012": bad IIN
)
async def test_bad_paging_is_invalid_argument(
    registry: Registry, request_: pb.ListPersonsRequest
) -> None:
    error = await rpc_error(registry.stub.ListPersons(request_))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_get_family_and_address(registry: Registry) -> None:
    child, mother = registry.one(
        "SELECT iin, relative_iin FROM family_links WHERE relation = 'mother' LIMIT 1"
    )
    family = await registry.stub.GetFamily(pb.GetFamilyRequest(iin=child))
    assert family.iin == child
    assert {r.relation for r in family.parents} == {"mother", "father"}
    assert mother in {r.iin for r in family.parents}
    of_mother = await registry.stub.GetFamily(pb.GetFamilyRequest(iin=mother))
    assert child in {r.iin for r in of_mother.children}
    assert of_mother.spouse.relation == "spouse"
    address = await registry.stub.GetAddress(pb.GetAddressRequest(iin=child))
    assert address.region and address.locality and address.registered_on.year


async def test_register_birth_then_the_family_shows_the_child(registry: Registry) -> None:
    mother = a_mother(registry)
    father = a_living(registry, "M")
    request = pb.RegisterBirthRequest(
        mother_iin=mother, father_iin=father, last_name="Omarova", first_name="Tomiris",
        patronymic="Askarovna", sex=pb.SEX_FEMALE, birth_date=date_pb(TODAY),
    )
    registered = await registry.stub.RegisterBirth(request)
    child = registered.child
    assert child.iin.startswith("250602")
    assert child.iin[6] == "6"  # born in the 2000s, female
    assert child.first_name == "Tomiris"
    assert registered.act.kind == "birth"
    assert registered.act.act_id
    assert registered.act.registered_on == date_pb(TODAY)
    of_mother = await registry.stub.GetFamily(pb.GetFamilyRequest(iin=mother))
    assert child.iin in {r.iin for r in of_mother.children}
    of_child = await registry.stub.GetFamily(pb.GetFamilyRequest(iin=child.iin))
    assert {(r.iin, r.relation) for r in of_child.parents} == {
        (mother, "mother"), (father, "father")
    }
    fetched = await registry.stub.GetPerson(pb.GetPersonRequest(iin=child.iin))
    mothers = await registry.stub.GetAddress(pb.GetAddressRequest(iin=mother))
    assert fetched.address.street == mothers.street
    again = await rpc_error(registry.stub.RegisterBirth(request))
    assert again.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_refused_births_get_their_status(registry: Registry) -> None:
    mother = a_mother(registry)
    unknown = make_iin(dt.date(1990, 3, 3), True, 9123)
    assert unknown is not None
    base = {"mother_iin": mother, "last_name": "Bekova", "first_name": "Dana",
            "sex": pb.SEX_FEMALE, "birth_date": date_pb(TODAY)}
    cases = [
        ({"mother_iin": unknown.value}, grpc.StatusCode.NOT_FOUND),
        ({"father_iin": a_living(registry, "F")}, grpc.StatusCode.FAILED_PRECONDITION),
        ({"mother_iin": a_living(registry, "M")}, grpc.StatusCode.FAILED_PRECONDITION),
        ({"mother_iin": "42"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"birth_date": pb.Date()}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"birth_date": pb.Date(year=2025, month=2, day=30)}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"birth_date": date_pb(TODAY + dt.timedelta(days=1))},
         grpc.StatusCode.INVALID_ARGUMENT),
        ({"sex": pb.SEX_UNSPECIFIED}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"first_name": ""}, grpc.StatusCode.INVALID_ARGUMENT),
    ]
    persons = registry.one("SELECT count(*) FROM persons")
    for changes, status in cases:
        request = pb.RegisterBirthRequest(**{**base, **changes})
        error = await rpc_error(registry.stub.RegisterBirth(request))
        assert error.code() == status, changes
    assert registry.one("SELECT count(*) FROM persons") == persons


async def test_register_death(registry: Registry) -> None:
    iin = a_living(registry, "M")
    request = pb.RegisterDeathRequest(iin=iin, death_date=date_pb(TODAY - dt.timedelta(days=2)))
    response = await registry.stub.RegisterDeath(request)
    assert response.act.kind == "death"
    person = await registry.stub.GetPerson(pb.GetPersonRequest(iin=iin))
    assert person.deceased
    assert person.death_date == date_pb(TODAY - dt.timedelta(days=2))
    again = await rpc_error(registry.stub.RegisterDeath(request))
    assert again.code() == grpc.StatusCode.ALREADY_EXISTS
    missing = await rpc_error(registry.stub.RegisterDeath(pb.RegisterDeathRequest(iin=iin)))
    assert missing.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_change_address(registry: Registry) -> None:
    iin = a_mother(registry)
    (rows_before,) = registry.one("SELECT count(*) FROM addresses WHERE iin = ?", iin)
    new = pb.Address(region="Shymkent city", district="Al-Farabi district",
                     locality="Shymkent", street="Tauke Khan Avenue", building="7")
    changed = await registry.stub.ChangeAddress(pb.ChangeAddressRequest(iin=iin, address=new))
    assert changed.registered_on == date_pb(TODAY)
    assert changed.street == "Tauke Khan Avenue"
    assert await registry.stub.GetAddress(pb.GetAddressRequest(iin=iin)) == changed
    person = await registry.stub.GetPerson(pb.GetPersonRequest(iin=iin))
    assert person.address == changed
    assert registry.one("SELECT count(*) FROM addresses WHERE iin = ?", iin) == (rows_before + 1,)
    no_address = await rpc_error(registry.stub.ChangeAddress(pb.ChangeAddressRequest(iin=iin)))
    assert no_address.code() == grpc.StatusCode.INVALID_ARGUMENT
    blank = pb.Address(region="", locality="Shymkent", street="Tauke Khan Avenue", building="7")
    error = await rpc_error(registry.stub.ChangeAddress(pb.ChangeAddressRequest(iin=iin,
                                                                                address=blank)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await registry.stub.GetAddress(pb.GetAddressRequest(iin=iin)) == changed


async def test_concurrent_reads_and_writes(registry: Registry) -> None:
    iins = [registry.one("SELECT iin FROM persons ORDER BY iin LIMIT 1 OFFSET ?", i)[0]
            for i in range(0, COUNT, 10)]
    mother = a_mother(registry)
    births = [
        registry.stub.RegisterBirth(pb.RegisterBirthRequest(
            mother_iin=mother, last_name="Iskakova", first_name=name,
            sex=pb.SEX_FEMALE, birth_date=date_pb(TODAY - dt.timedelta(days=1))))
        for name in ("Aliya", "Asel", "Dana", "Zarina", "Inkar")
    ]
    reads = [registry.stub.GetPerson(pb.GetPersonRequest(iin=i)) for i in iins]
    results = await asyncio.gather(*births, *reads)
    children = {r.child.iin for r in results[:5]}
    assert len(children) == 5
    assert [p.iin for p in results[5:]] == iins
