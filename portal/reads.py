"""What the pages read over the bus, each read naming the citizen, the purpose and the
data subject, so that every read is in the gateways' message logs under that subject.

A page gathers its reads in parallel (``asyncio.gather``); each read ends as a ``Part``
that either holds the answer or says which registry could not be read, so a registry
that is down blanks only its own part of the page.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from dataclasses import dataclass
from typing import Generic, TypeVar

import grpc
from google.protobuf.message import Message

from zhol.core.busclient import BusCallError, BusClient
from zhol.core.errors import ZholError
from zhol.core.iin import Iin
from zhol.education.v1 import education_pb2
from zhol.health.v1 import health_pb2
from zhol.pension.v1 import pension_pb2
from zhol.population.v1 import population_pb2
from zhol.portal import methods

M = TypeVar("M", bound=Message)

POPULATION = "KZ/GOV/MJ/population"
HEALTH = "KZ/GOV/MOH/health"
PENSION = "KZ/GOV/MLSPP/pension"
EDUCATION = "KZ/GOV/MES/education"
GET_PERSON = "/zhol.population.v1.PopulationRegistry/GetPerson"
GET_FAMILY = "/zhol.population.v1.PopulationRegistry/GetFamily"
GET_ATTACHMENT = "/zhol.health.v1.HealthRegistry/GetAttachment"
GET_INSURANCE = "/zhol.health.v1.HealthRegistry/GetInsuranceStatus"
GET_PENSION_STATUS = "/zhol.pension.v1.PensionRegistry/GetPensionStatus"
LIST_BENEFITS = "/zhol.pension.v1.PensionRegistry/ListBenefits"
GET_QUEUE_POSITION = "/zhol.education.v1.EducationRegistry/GetQueuePosition"
LIST_ENROLMENTS = "/zhol.education.v1.EducationRegistry/ListEnrolments"
# What the portal reads, "provider/service/Method", for the providers' access rights.
PORTAL_READS = tuple(
    f"{owner}/{method.strip('/')}"
    for owner, method in (
        (POPULATION, GET_PERSON),
        (POPULATION, GET_FAMILY),
        (HEALTH, GET_ATTACHMENT),
        (HEALTH, GET_INSURANCE),
        (PENSION, GET_PENSION_STATUS),
        (PENSION, LIST_BENEFITS),
        (EDUCATION, GET_QUEUE_POSITION),
        (EDUCATION, LIST_ENROLMENTS),
        # The pension, health and education pages and the actions (zhol.portal.pages).
        (PENSION, methods.GET_CONTRIBUTIONS),
        (HEALTH, methods.LIST_CONCLUSIONS),
        (HEALTH, methods.LIST_CLINICS),
        (HEALTH, methods.ATTACH_TO_CLINIC),
        (POPULATION, methods.CHANGE_ADDRESS),
        # Names of kindergartens and schools (catalogues: no data subject) and a minor
        # child's applications to education (zhol.portal.pages).
        (EDUCATION, methods.LIST_KINDERGARTENS),
        (EDUCATION, methods.LIST_SCHOOLS),
        (EDUCATION, methods.ENQUEUE_FOR_KINDERGARTEN),
        (EDUCATION, methods.ENROLL_IN_SCHOOL),
        (EDUCATION, methods.WITHDRAW_FROM_QUEUE),
        # Studies at colleges and universities on the education pages (zhol.portal.pages).
        (EDUCATION, methods.LIST_STUDIES),
    )
)

# The part of a provider's answer that it fills by reading the person from population
# (pension, health and education embed it). The portal reads population itself and never
# shows that copy, so it asks without it (``read_mask``) and the provider skips the read.
PERSON_FIELDS = frozenset({"person", "person_status", "person_reason"})

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
    without_person(request, response_type)
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


def without_person(request: Message, response_type: type[Message]) -> None:
    """Ask for every field of the answer but ``PERSON_FIELDS``, where the request takes
    a ``read_mask`` (AIP-157 partial response: an exchange with population fewer)."""
    if "read_mask" not in request.DESCRIPTOR.fields_by_name:
        return
    wanted = [f.name for f in response_type.DESCRIPTOR.fields if f.name not in PERSON_FIELDS]
    request.read_mask.paths[:] = wanted  # type: ignore[attr-defined]


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


@dataclass(frozen=True)
class Account:
    """Every part of a personal account page (a citizen's or their minor child's)."""

    person: Part[population_pb2.Person]
    family: Part[population_pb2.Family]
    attachment: Part[health_pb2.Attachment]
    insurance: Part[health_pb2.InsuranceStatus]
    pension: Part[pension_pb2.PensionStatus]
    benefits: Part[pension_pb2.ListBenefitsResponse]
    queue: Part[education_pb2.QueuePosition]
    enrolments: Part[education_pb2.ListEnrolmentsResponse]


async def read_account(bus: BusClient, citizen: str, subject: str, timeout: float) -> Account:
    """The four registries' parts about ``subject``, read in parallel."""

    one = functools.partial(read, bus, citizen=citizen, subject=subject, timeout=timeout)

    parts = await asyncio.gather(
        one(POPULATION, GET_PERSON, population_pb2.GetPersonRequest(iin=subject),
            population_pb2.Person),
        one(POPULATION, GET_FAMILY, population_pb2.GetFamilyRequest(iin=subject),
            population_pb2.Family),
        one(HEALTH, GET_ATTACHMENT, health_pb2.GetAttachmentRequest(iin=subject),
            health_pb2.Attachment),
        one(HEALTH, GET_INSURANCE, health_pb2.GetInsuranceStatusRequest(iin=subject),
            health_pb2.InsuranceStatus),
        one(PENSION, GET_PENSION_STATUS, pension_pb2.GetPensionStatusRequest(iin=subject),
            pension_pb2.PensionStatus),
        one(PENSION, LIST_BENEFITS, pension_pb2.ListBenefitsRequest(iin=subject),
            pension_pb2.ListBenefitsResponse),
        one(EDUCATION, GET_QUEUE_POSITION, education_pb2.GetQueuePositionRequest(iin=subject),
            education_pb2.QueuePosition),
        one(EDUCATION, LIST_ENROLMENTS, education_pb2.ListEnrolmentsRequest(iin=subject),
            education_pb2.ListEnrolmentsResponse),
    )  # fmt: skip
    return Account(*parts)  # type: ignore[arg-type]
