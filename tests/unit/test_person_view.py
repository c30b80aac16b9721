"""The person in an agency's answer (adapters.bus.population): what each package's
``PersonView`` may show, how population's ``Person`` is copied into it, and how a failed
read becomes ``person_status`` / ``person_reason`` instead of an error."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from zhol.adapters.bus.client import BusCallError
from zhol.adapters.bus.population import (
    NOT_CONNECTED,
    PersonRead,
    PersonStatus,
    read_current,
    show_person,
)
from zhol.education.v1 import education_pb2 as ed
from zhol.health.v1 import health_pb2 as hl
from zhol.pension.v1 import pension_pb2 as pen
from zhol.population.v1 import population_pb2 as pop

ANSWERS: tuple[type[Message], ...] = (
    pen.PensionStatus, pen.ListBenefitsResponse, hl.Attachment, hl.InsuranceStatus,
    ed.QueuePosition, ed.ListEnrolmentsResponse,
)
PERSON = pop.Person(
    iin="850314401236", last_name="Omarova", first_name="Aigerim", patronymic="Serikovna",
    sex=pop.SEX_FEMALE, birth_date=pop.Date(year=1985, month=3, day=14), citizenship="KAZ",
    address=pop.Address(region="Astana city", district="Esil district", locality="Astana",
                        street="Mangilik El", building="12", apartment="40",
                        registered_on=pop.Date(year=2020, month=5, day=1)),
)


def _same_names_and_types(view: Descriptor, source: Descriptor, path: str) -> None:
    for field in view.fields:
        theirs = source.fields_by_name.get(field.name)
        assert theirs is not None, f"{path}.{field.name} is not a field of population's"
        assert theirs.cpp_type == field.cpp_type, f"{path}.{field.name} has another type"
        if field.message_type is not None:
            _same_names_and_types(field.message_type, theirs.message_type,
                                  f"{path}.{field.name}")


@pytest.mark.parametrize("answer", ANSWERS, ids=lambda a: a.DESCRIPTOR.full_name)
def test_every_field_an_agency_shows_is_one_population_answers(answer: type[Message]) -> None:
    fields = answer.DESCRIPTOR.fields_by_name
    view = fields["person"].message_type
    _same_names_and_types(view, pop.Person.DESCRIPTOR, view.full_name)
    assert fields["person_reason"].type == fields["person_reason"].TYPE_STRING
    statuses = set(fields["person_status"].enum_type.values_by_name)
    assert {f"PERSON_STATUS_{s.name}" for s in PersonStatus} | {"PERSON_STATUS_UNSPECIFIED"} == (
        statuses)


@pytest.mark.parametrize("answer", ANSWERS, ids=lambda a: a.DESCRIPTOR.full_name)
def test_a_current_read_is_copied_field_by_field(answer: type[Message]) -> None:
    shown: Any = answer()
    show_person(shown, PersonRead(PersonStatus.CURRENT, PERSON))
    status = shown.DESCRIPTOR.fields_by_name["person_status"].enum_type
    assert status.values_by_number[shown.person_status].name == "PERSON_STATUS_CURRENT"
    assert shown.person_reason == ""
    person = shown.person
    assert (person.iin, person.last_name, person.first_name, person.patronymic) == (
        PERSON.iin, "Omarova", "Aigerim", "Serikovna")
    assert (person.birth_date.year, person.birth_date.day, person.deceased) == (1985, 14, False)
    assert (person.address.region, person.address.district) == ("Astana city", "Esil district")
    assert person.address.registered_on.year == 2020
    has_street = "street" in person.address.DESCRIPTOR.fields_by_name
    assert has_street == (answer.DESCRIPTOR.file.package != "zhol.education.v1")
    if has_street:
        assert (person.address.street, person.address.apartment) == ("Mangilik El", "40")


def test_no_registered_address_leaves_the_address_unset() -> None:
    homeless = pop.Person()
    homeless.CopyFrom(PERSON)
    homeless.ClearField("address")
    shown = pen.PensionStatus()
    show_person(shown, PersonRead(PersonStatus.CURRENT, homeless))
    assert shown.person.last_name == "Omarova" and not shown.person.HasField("address")


@pytest.mark.parametrize("answer", ANSWERS, ids=lambda a: a.DESCRIPTOR.full_name)
def test_a_failed_read_leaves_the_person_out_and_says_why(answer: type[Message]) -> None:
    shown: Any = answer()
    show_person(shown, NOT_CONNECTED)
    assert not shown.HasField("person")
    status = shown.DESCRIPTOR.fields_by_name["person_status"].enum_type
    assert status.values_by_number[shown.person_status].name == "PERSON_STATUS_NOT_CONNECTED"
    assert shown.person_reason == "not connected to the bus"


class Failing:
    """A population reader whose GetPerson fails as the bus would report it."""

    def __init__(self, error: BusCallError) -> None:
        self.error = error

    async def get_person(self, iin: str, *, purpose: str) -> pop.Person:
        raise self.error


@pytest.mark.parametrize(("status", "zhol_error", "expected", "reason"), [
    (grpc.StatusCode.NOT_FOUND, None, PersonStatus.UNKNOWN, "NOT_FOUND"),
    (grpc.StatusCode.UNAVAILABLE, "Server.ServerProxy.ServiceFailed", PersonStatus.UNAVAILABLE,
     "Server.ServerProxy.ServiceFailed"),
    (grpc.StatusCode.DEADLINE_EXCEEDED, "Server.ClientProxy.Timeout", PersonStatus.UNAVAILABLE,
     "Server.ClientProxy.Timeout"),
    (grpc.StatusCode.UNAVAILABLE, None, PersonStatus.UNAVAILABLE, "UNAVAILABLE"),
    (grpc.StatusCode.PERMISSION_DENIED, "Server.ServerProxy.AccessDenied", PersonStatus.REFUSED,
     "Server.ServerProxy.AccessDenied"),
    (grpc.StatusCode.NOT_FOUND, "Server.ClientProxy.UnknownService", PersonStatus.REFUSED,
     "Server.ClientProxy.UnknownService"),
])
async def test_bus_failures_become_a_status(
    status: grpc.StatusCode, zhol_error: str | None, expected: PersonStatus, reason: str
) -> None:
    error = BusCallError("/x.Y/GetPerson", status, "details", zhol_error=zhol_error)
    read = await read_current(Failing(error), PERSON.iin, purpose="test")  # type: ignore[arg-type]
    assert read == PersonRead(expected, None, reason)


async def test_no_reader_is_not_connected() -> None:
    assert await read_current(None, PERSON.iin, purpose="test") == NOT_CONNECTED
