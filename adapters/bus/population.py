"""Typed reads of the population registry (KZ/GOV/MJ/population) through the bus.

Other agencies keep only IINs and their own facts (once-only); whenever they need a
citizen's name, birth date, sex, address or family they ask here, with a purpose that
the gateways log and the citizen can see. Each point read names the citizen as the
data subject. Failures are ``BusCallError``: an unknown IIN is NOT_FOUND with
``zhol_error`` None (the registry itself answered).

``read_current`` and ``show_person`` put the person into an agency's answer as
population knows them at that moment (issue 3: no copies, no copy job). Each agency's
package declares its own ``PersonView`` with population's field names and only the
fields it shows (data minimisation: education shows a district, not a street);
``show_person`` copies exactly those. A failed read never fails the answer: the
agency's own facts are answered, ``person`` stays unset and ``person_status`` /
``person_reason`` say why. A caller that already has the person (it read population
itself) leaves ``PERSON_FIELDS`` out of the request's ``read_mask``: no read is made and
the three stay unset.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from zhol.adapters.bus.client import BusCallError, BusClient
from zhol.population.v1 import population_pb2

SERVICE = "/zhol.population.v1.PopulationRegistry"
GET_PERSON = f"{SERVICE}/GetPerson"
GET_ADDRESS = f"{SERVICE}/GetAddress"
GET_FAMILY = f"{SERVICE}/GetFamily"
LIST_PERSONS = f"{SERVICE}/ListPersons"

# Topics the registry publishes (the event message's full name).
BIRTH_REGISTERED = population_pb2.BirthRegistered.DESCRIPTOR.full_name
DEATH_REGISTERED = population_pb2.DeathRegistered.DESCRIPTOR.full_name
ADDRESS_CHANGED = population_pb2.AddressChanged.DESCRIPTOR.full_name


class PopulationReader:
    def __init__(self, bus: BusClient, *, timeout: float = 5.0) -> None:
        self._bus = bus
        self._timeout = timeout

    async def get_person(self, iin: str, *, purpose: str) -> population_pb2.Person:
        return await self._bus.call(
            GET_PERSON, population_pb2.GetPersonRequest(iin=iin), population_pb2.Person,
            purpose=purpose, data_subject=iin, timeout=self._timeout,
        )

    async def get_address(self, iin: str, *, purpose: str) -> population_pb2.Address:
        return await self._bus.call(
            GET_ADDRESS, population_pb2.GetAddressRequest(iin=iin), population_pb2.Address,
            purpose=purpose, data_subject=iin, timeout=self._timeout,
        )

    async def get_family(self, iin: str, *, purpose: str) -> population_pb2.Family:
        return await self._bus.call(
            GET_FAMILY, population_pb2.GetFamilyRequest(iin=iin), population_pb2.Family,
            purpose=purpose, data_subject=iin, timeout=self._timeout,
        )

    async def list_persons(
        self, page_size: int, page_token: str, *, purpose: str
    ) -> population_pb2.ListPersonsResponse:
        """One page of persons in IIN order (no single data subject)."""
        return await self._bus.call(
            LIST_PERSONS,
            population_pb2.ListPersonsRequest(page_size=page_size, page_token=page_token),
            population_pb2.ListPersonsResponse,
            purpose=purpose, timeout=self._timeout,
        )


# -- the person in an agency's answer ----------------------------------------------------


class PersonStatus(enum.Enum):
    """Names match each agency's ``PERSON_STATUS_*`` proto values."""

    CURRENT = "current"  # read for this answer
    NOT_CONNECTED = "not_connected"  # the agency runs without the bus
    UNAVAILABLE = "unavailable"  # gateway, network or population down or too slow
    REFUSED = "refused"  # the bus refused the read (access right, configuration)
    UNKNOWN = "unknown"  # population itself has no such IIN


@dataclass(frozen=True, slots=True)
class PersonRead:
    status: PersonStatus
    person: population_pb2.Person | None = None  # set exactly when CURRENT
    reason: str = ""  # the bus error code or gRPC status name when not CURRENT


# The answer's fields that the person read fills: a caller whose ``read_mask`` leaves all
# three out already has the person, and the agency does not ask population for it.
PERSON_FIELDS = ("person", "person_status", "person_reason")

NOT_CONNECTED = PersonRead(PersonStatus.NOT_CONNECTED, reason="not connected to the bus")
_TRANSPORT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                        grpc.StatusCode.RESOURCE_EXHAUSTED})


async def read_current(reader: PopulationReader | None, iin: str, *, purpose: str) -> PersonRead:
    """GetPerson for one answer; any bus failure becomes a status, never an exception."""
    if reader is None:
        return NOT_CONNECTED
    try:
        person = await reader.get_person(iin, purpose=purpose)
    except BusCallError as err:
        reason = err.zhol_error or err.status.name
        if err.from_provider and err.status is grpc.StatusCode.NOT_FOUND:
            return PersonRead(PersonStatus.UNKNOWN, reason=reason)
        if err.status in _TRANSPORT:
            return PersonRead(PersonStatus.UNAVAILABLE, reason=reason)
        return PersonRead(PersonStatus.REFUSED, reason=reason)
    return PersonRead(PersonStatus.CURRENT, person)


def show_person(answer: Any, read: PersonRead) -> None:
    """Set ``answer``'s ``person``, ``person_status`` and ``person_reason`` from ``read``."""
    # Any: each agency's answer is its own generated message type; protobuf gives the
    # ones with these three fields no common type to name.
    status = answer.DESCRIPTOR.fields_by_name["person_status"].enum_type
    answer.person_status = status.values_by_name[f"PERSON_STATUS_{read.status.name}"].number
    answer.person_reason = read.reason
    if read.person is not None:
        project(read.person, answer.person)


def project(source: Message, target: Message) -> None:
    """Copy into ``target`` each of its fields that ``source`` has by the same name
    (scalars and nested messages; an unset nested message stays unset; enums, which
    differ per package, and repeated fields are left alone)."""
    source_fields = source.DESCRIPTOR.fields_by_name
    for field in target.DESCRIPTOR.fields:
        theirs = source_fields.get(field.name)
        if theirs is None or theirs.cpp_type != field.cpp_type or field.is_repeated:
            continue
        if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
            if source.HasField(field.name):
                project(getattr(source, field.name), getattr(target, field.name))
                getattr(target, field.name).SetInParent()
        elif field.cpp_type != FieldDescriptor.CPPTYPE_ENUM:  # enums differ per package
            setattr(target, field.name, getattr(source, field.name))
