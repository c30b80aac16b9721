"""What the pages read over the bus, each read naming the citizen, the purpose and the
data subject, so that every read is in the gateways' message logs under that subject.

A page gathers its reads in parallel (``asyncio.gather``); each read ends as a ``Part``
that either holds the answer or says which registry could not be read, so a registry
that is down blanks only its own part of the page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Generic, TypeVar

import grpc
from google.protobuf.message import Message

from zhol.core.busclient import BusCallError, BusClient
from zhol.core.errors import ZholError
from zhol.core.iin import Iin
from zhol.population.v1 import population_pb2

M = TypeVar("M", bound=Message)

POPULATION = "KZ/GOV/MJ/population"
GET_PERSON = "/zhol.population.v1.PopulationRegistry/GetPerson"
GET_FAMILY = "/zhol.population.v1.PopulationRegistry/GetFamily"

OWN_PURPOSE = "citizen's own request in the e-government portal"
CHILD_PURPOSE = "citizen's request in the e-government portal about their minor child"
FAMILY_PURPOSE = "citizen's own request in the e-government portal: their family page"
ADULT_AGE = 18


@dataclass(frozen=True)
class Part(Generic[M]):
    """One registry's answer on a page: ``value``, or ``problem`` ("unavailable",
    "not_found", "refused") naming why the ``owner`` could not be read."""

    owner: str
    value: M | None = None
    problem: str | None = None


def citizen_user_id(iin: str) -> str:
    """The acting user in ``zhol-user-id``: the signed-in citizen."""
    return f"citizen:{iin}"


async def read(
    bus: BusClient,
    owner: str,
    method: str,
    request: Message,
    response_type: type[M],
    *,
    citizen: str,
    subject: str,
    timeout: float,
    purpose: str = "",
) -> Part[M]:
    purpose = purpose or (OWN_PURPOSE if subject == citizen else CHILD_PURPOSE)
    try:
        value = await bus.call(
            method,
            request,
            response_type,
            purpose=purpose,
            data_subject=subject,
            user_id=citizen_user_id(citizen),
            timeout=timeout,
            provider=owner,
        )
    except BusCallError as err:
        return Part(owner, problem=_problem(err))
    return Part(owner, value)


def _problem(err: BusCallError) -> str:
    if err.from_provider and err.status == grpc.StatusCode.NOT_FOUND:
        return "not_found"
    if err.status == grpc.StatusCode.PERMISSION_DENIED:
        return "refused"
    return "unavailable"


async def read_person(
    bus: BusClient, citizen: str, subject: str, timeout: float, purpose: str = ""
) -> Part[population_pb2.Person]:
    return await read(
        bus,
        POPULATION,
        GET_PERSON,
        population_pb2.GetPersonRequest(iin=subject),
        population_pb2.Person,
        citizen=citizen,
        subject=subject,
        timeout=timeout,
        purpose=purpose,
    )


async def read_family(
    bus: BusClient, citizen: str, subject: str, timeout: float
) -> Part[population_pb2.Family]:
    return await read(
        bus,
        POPULATION,
        GET_FAMILY,
        population_pb2.GetFamilyRequest(iin=subject),
        population_pb2.Family,
        citizen=citizen,
        subject=subject,
        timeout=timeout,
    )


def is_minor(iin: str, today: dt.date) -> bool:
    """Under 18 on ``today``, by the birth date the IIN carries."""
    born = Iin.parse(iin).birth_date
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    return age < ADULT_AGE


def minor_children(family: population_pb2.Family, today: dt.date) -> tuple[str, ...]:
    """The IINs of the family's children who are minors (parenthood as population has it)."""
    found = []
    for child in family.children:
        try:
            if is_minor(child.iin, today):
                found.append(child.iin)
        except ZholError:
            continue  # a malformed IIN from the registry is nobody we may show
    return tuple(found)
