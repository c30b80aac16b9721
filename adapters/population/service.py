"""The population registry's gRPC service (zhol.population.v1.PopulationRegistry).

Protobuf stays here: requests are parsed into typed values (``Iin.parse``, dates,
``Sex``) and store results are mapped back to messages. The adapter is the provider
IS itself, so failures are plain gRPC statuses, never ``zhol-error`` trailers:

| failure                                              | status              |
|------------------------------------------------------|---------------------|
| malformed IIN, bad date, bad page token or size,     | INVALID_ARGUMENT    |
| missing name or sex, date in the future, unknown     |                     |
| reason for a name change                             |                     |
| unknown person, mother or father                     | NOT_FOUND           |
| death already registered; same birth registered;     | ALREADY_EXISTS      |
| a new name equal to the current one                  |                     |
| mother not female or deceased, father not male,      | FAILED_PRECONDITION |
| dates before a birth, new address or name for the    |                     |
| deceased                                             |                     |
| no IIN serial left for the birth date                | RESOURCE_EXHAUSTED  |
| anything unexpected (logged, no detail sent)         | INTERNAL            |

Point reads (GetPerson, GetAddress, GetFamily) and ListPersons run directly on the
event loop against a query-only connection: a primary-key lookup takes tens of
microseconds, far less than handing it to a thread. Writes run one at a time on a
dedicated writer thread with its own connection, off the loop. A write that registers
a birth, a death or an address change enqueues its event in the same transaction; after
it commits, ``on_commit`` (the outbox publisher's ``notify``) is called so the event is
published at once.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import grpc

from zhol.adapters.population.model import (
    Address,
    AddressChange,
    AlreadyRecorded,
    BirthRegistration,
    CivilAct,
    Exhausted,
    Family,
    InvalidInput,
    NameChange,
    NameChangeReason,
    NotAllowed,
    NotFound,
    Person,
    RegistryError,
    Relative,
    Sex,
)
from zhol.adapters.population.store import PopulationStore
from zhol.adapters.runtime.service import Notify, RequestParser, StorePair, rpc_errors
from zhol.core.clock import Clock
from zhol.population.v1 import population_pb2 as pb
from zhol.population.v1 import population_pb2_grpc as pb_grpc

log = logging.getLogger("zhol.adapters.population")

_STATUS: tuple[tuple[type[RegistryError], grpc.StatusCode], ...] = (
    (InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyRecorded, grpc.StatusCode.ALREADY_EXISTS),
    (NotAllowed, grpc.StatusCode.FAILED_PRECONDITION),
    (Exhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
)
_SEX_TO_PB = {Sex.MALE: pb.SEX_MALE, Sex.FEMALE: pb.SEX_FEMALE}
_SEX_FROM_PB: dict[int, Sex] = {pb.SEX_MALE: Sex.MALE, pb.SEX_FEMALE: Sex.FEMALE}


_rpc = rpc_errors(_STATUS, log, "population")  # each RPC's failures become its status


class PopulationRegistryServicer(pb_grpc.PopulationRegistryServicer):
    """Serves one population database: ``reader`` on the loop, ``writer`` on its thread."""

    def __init__(self, stores: StorePair[PopulationStore]) -> None:
        self._stores = stores
        self._reader = stores.reader
        self._writer = stores.writer

    @classmethod
    def open(
        cls, db_path: Path, clock: Clock, *, on_commit: Notify | None = None
    ) -> PopulationRegistryServicer:
        return cls(StorePair.open(PopulationStore.open, db_path, clock, agency="population",
                                  on_commit=on_commit))

    def close(self) -> None:
        """Wait for a running write, then close both connections."""
        self._stores.close()

    # -- reads -------------------------------------------------------------------------

    @_rpc
    async def GetPerson(self, request: pb.GetPersonRequest, context: grpc.aio.ServicerContext
                        ) -> pb.Person:
        return person_pb(self._reader.get_person(parse_iin(request.iin, "iin")))

    @_rpc
    async def ListPersons(self, request: pb.ListPersonsRequest,
                          context: grpc.aio.ServicerContext) -> pb.ListPersonsResponse:
        page = self._reader.list_persons(request.page_size, request.page_token)
        return pb.ListPersonsResponse(
            persons=[person_pb(p) for p in page.persons],
            next_page_token=page.next_page_token,
        )

    @_rpc
    async def GetAddress(self, request: pb.GetAddressRequest, context: grpc.aio.ServicerContext
                         ) -> pb.Address:
        return address_pb(self._reader.get_address(
            parse_iin(request.iin, "iin"), temporary=request.temporary
        ))

    @_rpc
    async def GetFamily(self, request: pb.GetFamilyRequest, context: grpc.aio.ServicerContext
                        ) -> pb.Family:
        return family_pb(self._reader.get_family(parse_iin(request.iin, "iin")))

    # -- writes ------------------------------------------------------------------------

    @_rpc
    async def RegisterBirth(self, request: pb.RegisterBirthRequest,
                            context: grpc.aio.ServicerContext) -> pb.RegisterBirthResponse:
        birth = BirthRegistration(
            mother=parse_iin(request.mother_iin, "mother_iin"),
            father=parse_iin(request.father_iin, "father_iin") if request.father_iin else None,
            last_name=request.last_name,
            first_name=request.first_name,
            patronymic=request.patronymic,
            sex=parse_sex(request.sex),
            birth_date=parse_date(request.birth_date, "birth_date"),
        )
        registered = await self._stores.write(self._writer.register_birth, birth)
        return pb.RegisterBirthResponse(
            child=person_pb(registered.child), act=act_pb(registered.act)
        )

    @_rpc
    async def RegisterDeath(self, request: pb.RegisterDeathRequest,
                            context: grpc.aio.ServicerContext) -> pb.RegisterDeathResponse:
        iin = parse_iin(request.iin, "iin")
        death_date = parse_date(request.death_date, "death_date")
        act = await self._stores.write(self._writer.register_death, iin, death_date)
        return pb.RegisterDeathResponse(act=act_pb(act))

    @_rpc
    async def ChangeAddress(self, request: pb.ChangeAddressRequest,
                            context: grpc.aio.ServicerContext) -> pb.Address:
        iin = parse_iin(request.iin, "iin")
        if not request.HasField("address"):
            raise InvalidInput("address is required")
        given = request.address
        change = AddressChange(
            region=given.region,
            district=given.district,
            locality=given.locality,
            street=given.street,
            building=given.building,
            apartment=given.apartment,
            registered_on=parse_optional_date(given.registered_on, "address.registered_on"),
            temporary=request.temporary,
            until=parse_optional_date(given.until, "address.until"),
        )
        address = await self._stores.write(self._writer.change_address, iin, change)
        return address_pb(address)

    @_rpc
    async def ChangeName(self, request: pb.ChangeNameRequest,
                         context: grpc.aio.ServicerContext) -> pb.ChangeNameResponse:
        iin = parse_iin(request.iin, "iin")
        change = NameChange(
            last_name=request.last_name,
            first_name=request.first_name,
            patronymic=request.patronymic,
            reason=parse_name_reason(request.reason),
        )
        changed = await self._stores.write(self._writer.change_name, iin, change)
        return pb.ChangeNameResponse(person=person_pb(changed.person), act=act_pb(changed.act))




# -- protobuf to values ------------------------------------------------------------------


_parse = RequestParser(InvalidInput)
parse_iin = _parse.iin
parse_date = _parse.date
parse_optional_date = _parse.optional_date


def parse_sex(value: int) -> Sex:
    sex = _SEX_FROM_PB.get(value)
    if sex is None:
        raise InvalidInput("sex must be SEX_MALE or SEX_FEMALE")
    return sex


def parse_name_reason(text: str) -> NameChangeReason:
    try:
        return NameChangeReason(text)
    except ValueError:
        raise InvalidInput("reason must be marriage, divorce or application") from None


# -- values to protobuf ------------------------------------------------------------------


def date_pb(date: dt.date) -> pb.Date:
    return pb.Date(year=date.year, month=date.month, day=date.day)


def address_pb(address: Address) -> pb.Address:
    return pb.Address(
        region=address.region,
        district=address.district,
        locality=address.locality,
        street=address.street,
        building=address.building,
        apartment=address.apartment,
        registered_on=date_pb(address.registered_on),
        until=date_pb(address.until) if address.until is not None else None,
    )


def person_pb(person: Person) -> pb.Person:
    message = pb.Person(
        iin=person.iin.value,
        last_name=person.last_name,
        first_name=person.first_name,
        patronymic=person.patronymic,
        sex=_SEX_TO_PB[person.sex],
        birth_date=date_pb(person.birth_date),
        citizenship=person.citizenship,
        deceased=person.death_date is not None,
    )
    if person.death_date is not None:
        message.death_date.CopyFrom(date_pb(person.death_date))
    if person.address is not None:
        message.address.CopyFrom(address_pb(person.address))
    return message


def relative_pb(relative: Relative) -> pb.Relative:
    return pb.Relative(iin=relative.iin.value, relation=relative.relation.value)


def family_pb(family: Family) -> pb.Family:
    message = pb.Family(
        iin=family.iin.value,
        parents=[relative_pb(r) for r in family.parents],
        children=[relative_pb(r) for r in family.children],
    )
    if family.spouse is not None:
        message.spouse.CopyFrom(relative_pb(family.spouse))
    return message


def act_pb(act: CivilAct) -> pb.CivilAct:
    return pb.CivilAct(
        act_id=act.act_id, kind=act.kind.value, registered_on=date_pb(act.registered_on)
    )
