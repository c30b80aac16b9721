"""What health asks other agencies over the bus, with the purpose each read is logged under.

Health keeps no personal details: the district a person is registered in (permanently
or temporarily), whether the person is alive, their birth date and children come from
the population registry (KZ/GOV/MJ/population); insurance through contributions comes
from pension (KZ/GOV/MLSPP/pension), and so do a person's employment periods with
their employer's district (the place of work); the school a person attends and their
studies at colleges and universities with the institution's district from education
(KZ/GOV/MES/education). Every read names the citizen as the data subject, except the
list of a district's schools, which names nobody.

Failures become ``HealthError``: the provider answering NOT_FOUND is ``NotFound`` (the
person is unknown to population), any other failure of the read ``Unavailable`` (the
gateway or the provider could not answer; the status code names why).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TypeVar

import grpc
from google.protobuf import field_mask_pb2
from google.protobuf.message import Message

from zhol.adapters.bus.client import BusCallError, BusClient
from zhol.adapters.bus.population import (
    GET_ADDRESS,
    PersonRead,
    PopulationReader,
    read_current,
)
from zhol.adapters.health import rules
from zhol.adapters.health.model import NotFound, Unavailable
from zhol.adapters.health.rules import PlacePeriod
from zhol.core.iin import Iin
from zhol.education.v1 import education_pb2
from zhol.pension.v1 import pension_pb2
from zhol.population.v1 import population_pb2

IS_INSURED_BY_CONTRIBUTIONS = "/zhol.pension.v1.PensionRegistry/IsInsuredByContributions"
PENSION_SUBSYSTEM = "KZ/GOV/MLSPP/pension"
LIST_ENROLMENTS = "/zhol.education.v1.EducationRegistry/ListEnrolments"
LIST_SCHOOLS = "/zhol.education.v1.EducationRegistry/ListSchools"
GET_EMPLOYMENT_PERIODS = "/zhol.pension.v1.PensionRegistry/GetEmploymentPeriods"
LIST_STUDIES = "/zhol.education.v1.EducationRegistry/ListStudies"
EDUCATION_SUBSYSTEM = "KZ/GOV/MES/education"

AnswerT = TypeVar("AnswerT", bound=Message)

# zhol-purpose of each read (logged by both gateways, shown to the citizen).
PURPOSE_ATTACH_DISTRICT = "clinic attachment on request: registered district check"
PURPOSE_ATTACH_TEMPORARY = "clinic attachment on request: temporary residence district check"
PURPOSE_ATTACH_STUDY = "clinic attachment on request: place of study check"
PURPOSE_ATTACH_SCHOOLS = "clinic attachment on request: schools of the clinic's district"
PURPOSE_ATTACH_INSURANCE = "clinic attachment on request: health insurance check"
PURPOSE_INSURANCE_STATUS = "compulsory health insurance status"
PURPOSE_NEWBORN = "clinic attachment and state-paid insurance of a newborn"
PURPOSE_DEATH = "closing the clinic attachment of a deceased person"
PURPOSE_MOVE = "clinic re-attachment after a change of address"
PURPOSE_CONCLUSION = "disability conclusion of the medical advisory commission"
PURPOSE_PUBLISH = "health decisions: clinic attachments and disability conclusions"
PURPOSE_PARENT_CHILDREN = "health insurance status: a non-working parent's children under three"
PURPOSE_PARENT_CHILD = "health insurance status of a parent: the child's birth date"
PURPOSE_PARENT_WORK = "health insurance status: whether a parent of a child under three works"
PURPOSE_ATTACHMENT_PATIENT = "clinic attachment answer: the patient's name and address"
PURPOSE_INSURANCE_PERSON = "health insurance answer: the person's name and address"
PURPOSE_GROUND_PERSON = "recording a state-insured social category: the person"
PURPOSE_GROUND_CARED_FOR = (
    "recording a carer of a person with a group-1 disability: the person cared for"
)
PURPOSE_GROUND_WORK = "health insurance status: whether a person of a recorded category works"
PURPOSE_GROUND_ALIVE = "health insurance status of a carer: whether the person cared for is alive"
PURPOSE_ATTACH_WORK = "clinic attachment on request: place of work check"
PURPOSE_ATTACH_HIGHER = "clinic attachment on request: college or university check"
PURPOSE_STUDENT = "health insurance status: full-time study at a college or university"
PURPOSE_MOVE_PLACE = (
    "clinic re-attachment after a change of address: whether the place of work, study"
    " or temporary residence the attachment rests on still holds"
)
PURPOSE_MOVE_SCHOOLS = "clinic re-attachment after a change of address: schools of the district"
# The purpose of each basis' check when a citizen asks to attach (AttachToClinic).
ATTACH_PURPOSES: dict[str, str] = {
    rules.TEMPORARY_ADDRESS: PURPOSE_ATTACH_TEMPORARY,
    rules.SCHOOL: PURPOSE_ATTACH_STUDY,
    rules.WORKPLACE: PURPOSE_ATTACH_WORK,
    rules.COLLEGE_OR_UNIVERSITY: PURPOSE_ATTACH_HIGHER,
}


@dataclass(frozen=True, slots=True)
class Contributions:
    insured: bool
    paid_months: int
    required_months: int
    window_to: tuple[int, int] = (0, 0)  # (year, month), the last month pension counted


class Lookups:
    """Typed reads through our gateway (one ``BusClient``)."""

    def __init__(self, bus: BusClient, *, timeout: float = 5.0) -> None:
        self._bus = bus
        self._timeout = timeout
        self._population = PopulationReader(bus, timeout=timeout)

    async def person(self, iin: Iin, *, purpose: str) -> population_pb2.Person:
        try:
            return await self._population.get_person(iin.value, purpose=purpose)
        except BusCallError as err:
            raise _failure(err, "population") from None

    async def person_now(self, iin: Iin, *, purpose: str) -> PersonRead:
        """The person for one answer; a failed read is a status, not an exception."""
        return await read_current(self._population, iin.value, purpose=purpose)

    async def address(self, iin: Iin, *, purpose: str) -> population_pb2.Address:
        try:
            return await self._population.get_address(iin.value, purpose=purpose)
        except BusCallError as err:
            raise _failure(err, "population") from None

    async def temporary_address(
        self, iin: Iin, *, purpose: str
    ) -> population_pb2.Address | None:
        """The temporary registration in force today; None when population has none."""
        return await self._about(
            iin, GET_ADDRESS, population_pb2.GetAddressRequest(iin=iin.value, temporary=True),
            population_pb2.Address, purpose=purpose, registry="population",
        )

    async def children(self, iin: Iin, *, purpose: str) -> tuple[Iin, ...]:
        """The person's children as population's family links hold them."""
        try:
            family = await self._population.get_family(iin.value, purpose=purpose)
        except BusCallError as err:
            raise _failure(err, "population") from None
        return tuple(Iin.parse(child.iin) for child in family.children)

    async def place_holds(
        self, iin: Iin, basis: str, place: tuple[str, str], today: dt.date, *,
        purpose: str, schools_purpose: str = PURPOSE_ATTACH_SCHOOLS,
    ) -> bool:
        """Whether the place ``basis`` names (one of rules.KEPT_ON_MOVE) is in force today
        in ``place`` (region, district): the temporary registration (population), a
        school of an active enrolment or a college or university of a study in force
        (education), an employer of an employment in force (pension). Any other basis:
        False, nobody asked."""
        if basis == rules.TEMPORARY_ADDRESS:
            stay = await self.temporary_address(iin, purpose=purpose)
            return stay is not None and (stay.region, stay.district) == place
        if basis == rules.SCHOOL:
            return await self.studies_in(iin, *place, purpose=purpose,
                                         schools_purpose=schools_purpose)
        if basis == rules.WORKPLACE:
            return place in rules.places_on(await self.employment(iin, purpose=purpose), today)
        if basis == rules.COLLEGE_OR_UNIVERSITY:
            return place in rules.places_on(await self.studies(iin, purpose=purpose), today)
        return False

    async def studies_in(
        self, iin: Iin, region: str, district: str, *,
        purpose: str = PURPOSE_ATTACH_STUDY, schools_purpose: str = PURPOSE_ATTACH_SCHOOLS,
    ) -> bool:
        """True when education holds an active school enrolment of the person in a school
        of that region's district (the place of study)."""
        try:
            found = await self._bus.call(
                LIST_ENROLMENTS,
                education_pb2.ListEnrolmentsRequest(
                    iin=iin.value, read_mask=field_mask_pb2.FieldMask(paths=["enrolments"])
                ),
                education_pb2.ListEnrolmentsResponse,
                purpose=purpose,
                data_subject=iin.value,
                timeout=self._timeout,
            )
            schools = {
                e.school_id for e in found.enrolments
                if e.status == education_pb2.ENROLMENT_STATUS_ACTIVE
            }
            if not schools:
                return False
            there = await self._bus.call(
                LIST_SCHOOLS,
                education_pb2.ListSchoolsRequest(region=region, district=district),
                education_pb2.ListSchoolsResponse,
                purpose=schools_purpose,
                timeout=self._timeout,
            )
        except BusCallError as err:
            if err.from_provider and err.status is grpc.StatusCode.NOT_FOUND:
                return False
            raise _failure(err, "education") from None
        return any(s.school_id in schools and (s.region, s.district) == (region, district)
                   for s in there.schools)

    async def employment(self, iin: Iin, *, purpose: str) -> tuple[PlacePeriod, ...]:
        """The person's employment periods with their employer's district (pension;
        empty when pension holds none)."""
        answer = await self._about(
            iin, GET_EMPLOYMENT_PERIODS, pension_pb2.GetEmploymentPeriodsRequest(iin=iin.value),
            pension_pb2.GetEmploymentPeriodsResponse, purpose=purpose, registry="pension",
        )
        if answer is None:
            return ()
        return tuple(
            PlacePeriod(_day(p.started_on), _optional_day(p.ended_on), p.employer_region,
                        p.employer_district)
            for p in answer.periods
        )

    async def studies(self, iin: Iin, *, purpose: str) -> tuple[PlacePeriod, ...]:
        """The person's studies at colleges and universities with the institution's
        district, level and form (education; empty when it holds none)."""
        answer = await self._about(
            iin, LIST_STUDIES, education_pb2.ListStudiesRequest(iin=iin.value),
            education_pb2.ListStudiesResponse, purpose=purpose, registry="education",
        )
        if answer is None:
            return ()
        return tuple(
            PlacePeriod(_day(s.started_on), _optional_day(s.ended_on), s.institution.region,
                        s.institution.district, s.form, s.level)
            for s in answer.studies
        )

    async def contributions(
        self, iin: Iin, *, purpose: str, as_of: dt.date | None = None
    ) -> Contributions:
        """Insured through contributions on ``as_of`` (None: pension's today)."""
        request = pension_pb2.IsInsuredByContributionsRequest(iin=iin.value)
        if as_of is not None:
            request.as_of.CopyFrom(
                pension_pb2.Date(year=as_of.year, month=as_of.month, day=as_of.day)
            )
        answer = await self._about(
            iin, IS_INSURED_BY_CONTRIBUTIONS, request,
            pension_pb2.IsInsuredByContributionsResponse, purpose=purpose, registry="pension",
        )
        if answer is None:
            return Contributions(False, 0, 0)  # no contributions on record at all
        return Contributions(
            answer.insured, answer.paid_months, answer.required_months,
            (answer.window_to.year, answer.window_to.month),
        )

    async def _about(
        self, iin: Iin, method: str, request: Message, answer_type: type[AnswerT], *,
        purpose: str, registry: str,
    ) -> AnswerT | None:
        """One read about ``iin`` through our gateway; None when the owner answers
        NOT_FOUND (it holds nothing about the person), any other failure raised as
        ``_failure`` says."""
        try:
            return await self._bus.call(
                method, request, answer_type, purpose=purpose, data_subject=iin.value,
                timeout=self._timeout,
            )
        except BusCallError as err:
            if err.from_provider and err.status is grpc.StatusCode.NOT_FOUND:
                return None
            raise _failure(err, registry) from None


def _failure(err: BusCallError, registry: str) -> Exception:
    if err.from_provider and err.status is grpc.StatusCode.NOT_FOUND:
        return NotFound(f"{registry}: {err.details or 'no such person'}")
    origin = err.zhol_error or err.status.name
    return Unavailable(f"{registry} could not be asked ({origin})")


def _optional_day(date: pension_pb2.Date | education_pb2.Date) -> dt.date | None:
    """A date of another registry's answer; None when unset or impossible."""
    try:
        return dt.date(date.year, date.month, date.day)
    except ValueError:
        return None


def _day(date: pension_pb2.Date | education_pb2.Date) -> dt.date:
    day = _optional_day(date)
    if day is None:
        raise Unavailable("a registry answered a period without a valid first day")
    return day
