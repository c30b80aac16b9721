"""The pension, health and education pages (the citizen's and each minor child's own),
the children's blocks of the family page, the names of kindergartens and schools, and
the actions (ask for a clinic attachment, report an address change, and for a minor
child ask for a kindergarten queue place or a school enrolment, or withdraw the child
from the kindergarten queue).

Every page reads its parts in parallel over the bus (``zhol.portal.reads.read``), each
part naming its owner and blanking only itself when the owner cannot be read. An
action is a POST form with the session's CSRF token; whom it is about comes from the
form but is never trusted: it must be the signed-in citizen or one of their minor
children, as population says now (403 otherwise), checked before anything is sent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
import grpc
from aiohttp import web
from google.protobuf.message import Message

from zhol.core.busclient import BusCallError, BusClient
from zhol.core.errors import ZholError
from zhol.core.iin import Iin
from zhol.education.v1 import education_pb2
from zhol.health.v1 import health_pb2
from zhol.pension.v1 import pension_pb2
from zhol.population.v1 import population_pb2
from zhol.portal import methods, reads
from zhol.portal.i18n import CATALOGUES
from zhol.portal.reads import Part

CONTRIBUTION_MONTHS = 24  # the contributions table shows the last two years
ACTION_PURPOSE = "citizen's own request in the e-government portal: an application"
CHILD_ACTION_PURPOSE = (
    "citizen's request in the e-government portal about their minor child: an application"
)
CLINIC_ID = re.compile(r"PHC-\d{2}-\d{3}")
KINDERGARTEN_ID = re.compile(r"KG-\d{3}-\d{2}")
SCHOOL_ID = re.compile(r"SCH-\d{3}-\d{2}")
GRADES = range(1, 12)  # 1..11, as education has them
PLACES_TTL_S = 60.0  # how long the names of kindergartens and schools are kept
PLACES_PURPOSE = "e-government portal: names of kindergartens and schools (reference data)"
ADDRESS_FIELDS = ("region", "district", "locality", "street", "building", "apartment")
REQUIRED_ADDRESS = ("region", "locality", "street", "building")
MAX_FIELD = 100


def add_routes(app: web.Application) -> None:
    aiohttp_jinja2.get_env(app).filters["utc"] = format_utc
    app.router.add_get("/pension", pension_page, name="pension")
    app.router.add_get("/health", health_page, name="health")
    app.router.add_get("/education", education_page, name="education")
    app.router.add_get("/actions/clinic", clinic_form, name="clinic_form")
    app.router.add_post("/actions/clinic", clinic_submit, name="clinic_submit")
    app.router.add_get("/actions/address", address_form, name="address_form")
    app.router.add_post("/actions/address", address_submit, name="address_submit")
    app.router.add_get("/person/{iin}/pension", child_pension_page, name="child_pension")
    app.router.add_get("/person/{iin}/health", child_health_page, name="child_health")
    app.router.add_get("/person/{iin}/education", child_education_page, name="child_education")
    app.router.add_get("/actions/kindergarten", kindergarten_form, name="kindergarten_form")
    app.router.add_post("/actions/kindergarten", kindergarten_submit, name="kindergarten_submit")
    app.router.add_get("/actions/school", school_form, name="school_form")
    app.router.add_post("/actions/school", school_submit, name="school_submit")
    app.router.add_post("/actions/withdraw", withdraw_submit, name="withdraw_submit")
    app[PLACES] = PlacesCache(time.monotonic, PLACES_TTL_S)


def format_utc(unix_ms: int) -> str:
    if not unix_ms:
        return ""
    return dt.datetime.fromtimestamp(unix_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M")


def _bus(request: web.Request) -> tuple[BusClient, float]:
    from zhol.portal import app as portal  # app.py routes here: imported late (no cycle)

    return request.app[portal.BUS], request.app[portal.SETTINGS].bus_timeout_s


def _months_back(today: dt.date, months: int) -> pension_pb2.Month:
    index = today.year * 12 + today.month - 1 - (months - 1)
    return pension_pb2.Month(year=index // 12, month=index % 12 + 1)


# -- pages -------------------------------------------------------------------------


async def pension_page(request: web.Request) -> web.StreamResponse:
    """GET /pension: contributions by month, pension status with its calculation and
    sources, benefits and their payments (all from pension, in parallel)."""
    from zhol.portal import app as portal  # the page helpers; imported late (no cycle)

    citizen = portal._citizen(request)
    bus, timeout = _bus(request)
    pension = await read_pension(bus, citizen, citizen, timeout, request.app[portal.TODAY]())
    return portal._page(request, "pension.html", pension.context())


@dataclass(frozen=True)
class PensionParts:
    contributions: Part[pension_pb2.GetContributionsResponse]
    status: Part[pension_pb2.PensionStatus]
    benefits: Part[pension_pb2.ListBenefitsResponse]

    def context(self) -> dict[str, Any]:
        return {"contributions": self.contributions, "status": self.status,
                "benefits": self.benefits, "months": CONTRIBUTION_MONTHS}  # fmt: skip


async def read_pension(
    bus: BusClient, citizen: str, subject: str, timeout: float, today: dt.date
) -> PensionParts:
    """Contributions, pension status and benefits of ``subject``, in parallel."""

    one = functools.partial(
        reads.read, bus, reads.PENSION, citizen=citizen, subject=subject, timeout=timeout
    )

    parts = await asyncio.gather(
        one(methods.GET_CONTRIBUTIONS, pension_pb2.GetContributionsRequest(
            iin=subject, from_month=_months_back(today, CONTRIBUTION_MONTHS)),
            pension_pb2.GetContributionsResponse),
        one(reads.GET_PENSION_STATUS, pension_pb2.GetPensionStatusRequest(iin=subject),
            pension_pb2.PensionStatus),
        one(reads.LIST_BENEFITS, pension_pb2.ListBenefitsRequest(iin=subject),
            pension_pb2.ListBenefitsResponse),
    )  # fmt: skip
    return PensionParts(*parts)


@dataclass(frozen=True)
class HealthParts:
    attachment: Part[health_pb2.Attachment]
    insurance: Part[health_pb2.InsuranceStatus]
    conclusions: Part[health_pb2.ListDisabilityConclusionsResponse]


async def read_health(bus: BusClient, citizen: str, subject: str, timeout: float) -> HealthParts:
    one = functools.partial(
        reads.read, bus, reads.HEALTH, citizen=citizen, subject=subject, timeout=timeout
    )

    parts = await asyncio.gather(
        one(reads.GET_ATTACHMENT, health_pb2.GetAttachmentRequest(iin=subject),
            health_pb2.Attachment),
        one(reads.GET_INSURANCE, health_pb2.GetInsuranceStatusRequest(iin=subject),
            health_pb2.InsuranceStatus),
        one(methods.LIST_CONCLUSIONS, health_pb2.ListDisabilityConclusionsRequest(iin=subject),
            health_pb2.ListDisabilityConclusionsResponse),
    )  # fmt: skip
    return HealthParts(*parts)


async def health_page(request: web.Request) -> web.StreamResponse:
    """GET /health: clinic attachment, insurance and its category, disability conclusions."""
    from zhol.portal import app as portal  # the page helpers; imported late (no cycle)

    citizen = portal._citizen(request)
    bus, timeout = _bus(request)
    health = await read_health(bus, citizen, citizen, timeout)
    return portal._page(request, "health.html", {"health": health})


@dataclass(frozen=True)
class EducationParts:
    iin: str
    person: Part[population_pb2.Person] | None  # the child's name; None for the citizen
    queue: Part[education_pb2.QueuePosition]
    enrolments: Part[education_pb2.ListEnrolmentsResponse]
    studies: Part[education_pb2.ListStudiesResponse]


async def read_education(
    bus: BusClient, citizen: str, subject: str, timeout: float
) -> tuple[
    Part[education_pb2.QueuePosition],
    Part[education_pb2.ListEnrolmentsResponse],
    Part[education_pb2.ListStudiesResponse],
]:
    """A person's kindergarten queue place, school enrolments and studies at colleges and
    universities (each study names its institution: no catalogue read for those)."""
    queue, enrolments, studies = await asyncio.gather(
        reads.read(bus, reads.EDUCATION, reads.GET_QUEUE_POSITION,
                   education_pb2.GetQueuePositionRequest(iin=subject),
                   education_pb2.QueuePosition, citizen=citizen, subject=subject,
                   timeout=timeout),
        reads.read(bus, reads.EDUCATION, reads.LIST_ENROLMENTS,
                   education_pb2.ListEnrolmentsRequest(iin=subject),
                   education_pb2.ListEnrolmentsResponse, citizen=citizen, subject=subject,
                   timeout=timeout),
        reads.read(bus, reads.EDUCATION, methods.LIST_STUDIES,
                   education_pb2.ListStudiesRequest(iin=subject),
                   education_pb2.ListStudiesResponse, citizen=citizen, subject=subject,
                   timeout=timeout),
    )  # fmt: skip
    return queue, enrolments, studies


async def education_page(request: web.Request) -> web.StreamResponse:
    """GET /education: the citizen's and each minor child's kindergarten queue place,
    school enrolments and studies at colleges and universities (the children from
    population, then every read in parallel)."""
    from zhol.portal import app as portal  # the page helpers; imported late (no cycle)

    citizen = portal._citizen(request)
    bus, timeout = _bus(request)
    family = await portal.family_of(request, citizen)
    children = (
        reads.minor_children(family.value, request.app[portal.TODAY]())
        if family.value is not None
        else ()
    )
    subjects = (citizen, *children)
    people, found, places = await asyncio.gather(
        asyncio.gather(*(reads.read_person(bus, citizen, c, timeout, reads.FAMILY_PURPOSE)
                         for c in children)),
        asyncio.gather(*(read_education(bus, citizen, s, timeout) for s in subjects)),
        places_of(request, citizen),
    )  # fmt: skip
    names: list[Part[population_pb2.Person] | None] = [None, *people]
    blocks = [
        EducationParts(subject, person, *parts)
        for subject, person, parts in zip(subjects, names, found, strict=True)
    ]
    context = {"family": family, "blocks": blocks, "places": places, "can_withdraw": can_withdraw}
    return portal._page(request, "education.html", context)


@dataclass(frozen=True)
class ChildParts:
    """A minor child's block on the family page: clinic, insurance, kindergarten, school."""

    attachment: Part[health_pb2.Attachment]
    insurance: Part[health_pb2.InsuranceStatus]
    queue: Part[education_pb2.QueuePosition]
    enrolments: Part[education_pb2.ListEnrolmentsResponse]


async def read_children(
    bus: BusClient, citizen: str, children: tuple[str, ...], timeout: float
) -> dict[str, ChildParts]:
    """Every minor child's four parts, all read in parallel, each about that child."""

    async def one(child: str) -> ChildParts:
        part = functools.partial(
            reads.read, bus, citizen=citizen, subject=child, timeout=timeout
        )

        parts = await asyncio.gather(
            part(reads.HEALTH, reads.GET_ATTACHMENT, health_pb2.GetAttachmentRequest(iin=child),
                 health_pb2.Attachment),
            part(reads.HEALTH, reads.GET_INSURANCE,
                 health_pb2.GetInsuranceStatusRequest(iin=child), health_pb2.InsuranceStatus),
            part(reads.EDUCATION, reads.GET_QUEUE_POSITION,
                 education_pb2.GetQueuePositionRequest(iin=child), education_pb2.QueuePosition),
            part(reads.EDUCATION, reads.LIST_ENROLMENTS,
                 education_pb2.ListEnrolmentsRequest(iin=child),
                 education_pb2.ListEnrolmentsResponse),
        )  # fmt: skip
        return ChildParts(*parts)

    found = await asyncio.gather(*(one(child) for child in children))
    return dict(zip(children, found, strict=True))


# -- actions -----------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """The owner's answer to an action: ``value`` or why it did not happen."""

    owner: str
    value: Message | None = None
    problem: str | None = None  # refused_by_owner, invalid_by_owner, unavailable, refused
    reason: str = ""  # the owner's own words (FAILED_PRECONDITION, INVALID_ARGUMENT)
    code: str = ""  # the owner's status of a refusal ("ALREADY_EXISTS"), to translate


async def _minors(
    request: web.Request, citizen: str
) -> list[tuple[str, Part[population_pb2.Person]]]:
    """The citizen's minor children as population says now, each with their person."""
    from zhol.portal import app as portal  # the page helpers; imported late (no cycle)

    bus, timeout = _bus(request)
    family = await portal.family_of(request, citizen)
    children = (
        reads.minor_children(family.value, request.app[portal.TODAY]())
        if family.value is not None
        else ()
    )
    people = await asyncio.gather(
        *(reads.read_person(bus, citizen, c, timeout, reads.FAMILY_PURPOSE) for c in children)
    )
    return list(zip(children, people, strict=True))


def _name(iin: str, person: Part[population_pb2.Person]) -> str:
    return f"{person.value.last_name} {person.value.first_name}" if person.value else iin


async def _whom(request: web.Request, citizen: str) -> list[tuple[str, str]]:
    """(IIN, name) of the citizen and their minor children, for the forms' choice."""
    children = await _minors(request, citizen)
    return [(citizen, ""), *((child, _name(child, person)) for child, person in children)]


async def _subject(request: web.Request, citizen: str, given: str) -> str:
    """Whom a form is about: the citizen or a minor child of theirs, else 403/400/503."""
    from zhol.portal import app as portal  # the page helpers; imported late (no cycle)

    try:
        subject = Iin.parse(given.strip()).value
    except ZholError:
        raise portal.PageError(400, "error_bad_iin") from None
    if subject == citizen:
        return subject
    bus, timeout = _bus(request)
    family = await portal.family_of(request, citizen)
    if family.value is None:
        raise portal.PageError(503, "error_503")
    if subject not in reads.minor_children(family.value, request.app[portal.TODAY]()):
        raise portal.PageError(403, "error_403")
    return subject


async def _call(
    request: web.Request, owner: str, method: str, message: Message, answer: type[Any],
    citizen: str, subject: str,
) -> Outcome:  # fmt: skip
    bus, timeout = _bus(request)
    try:
        value = await bus.call(
            method, message, answer,
            purpose=ACTION_PURPOSE if subject == citizen else CHILD_ACTION_PURPOSE,
            data_subject=subject, user_id=reads.citizen_user_id(citizen), timeout=timeout,
            provider=owner,
        )  # fmt: skip
    except BusCallError as err:
        return _outcome(owner, err)
    return Outcome(owner, value)


def _outcome(owner: str, err: BusCallError) -> Outcome:
    if err.from_provider and err.status in (
        grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.NOT_FOUND,
    ):  # fmt: skip
        return Outcome(owner, problem="refused_by_owner", reason=err.details, code=err.status.name)
    if err.from_provider and err.status == grpc.StatusCode.INVALID_ARGUMENT:
        return Outcome(owner, problem="invalid_by_owner", reason=err.details, code=err.status.name)
    if err.status == grpc.StatusCode.PERMISSION_DENIED or not (
        err.from_provider or err.status in _NOT_ANSWERING
    ):  # the bus itself refused (a right, the data subject, the request)
        return Outcome(owner, problem="refused")
    return Outcome(owner, problem="unavailable")


_NOT_ANSWERING = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
)


_STATUS = {"refused_by_owner": 409, "invalid_by_owner": 400, "refused": 403, "unavailable": 503}


def refusal_key(action: str, outcome: Outcome) -> str:
    """The text key of the owner's refusal in the citizen's words, where the owner's
    status has one for this action ("" otherwise: the owner's own words only)."""
    key = f"refusal_{action}_{outcome.code.lower()}"
    return key if outcome.code and key in CATALOGUES["en"] else ""


def _result(
    request: web.Request, action: str, outcome: Outcome, subject: str, citizen: str,
    extra: Mapping[str, Any] | None = None,
) -> web.Response:  # fmt: skip
    status = 200 if outcome.problem is None else _STATUS[outcome.problem]
    context = {
        "action": action, "outcome": outcome, "subject": subject,
        "subject_is_citizen": subject == citizen, "refusal": refusal_key(action, outcome),
        **(extra or {}),
    }  # fmt: skip
    from zhol.portal import app as portal

    return portal._page(request, "action_result.html", context, status)


async def clinic_form(request: web.Request) -> web.StreamResponse:
    """GET /actions/clinic: whom (the citizen or a minor child) and which clinic, from
    the clinics of the citizen's registered district."""
    from zhol.portal import app as portal  # the page helpers; imported late (no cycle)

    citizen = portal._citizen(request)
    bus, timeout = _bus(request)
    whom, person = await asyncio.gather(
        _whom(request, citizen), reads.read_person(bus, citizen, citizen, timeout)
    )
    clinics: Part[health_pb2.ListClinicsResponse] = Part(reads.HEALTH, problem="unavailable")
    if person.value is not None:
        address = person.value.address
        try:
            found = await bus.call(
                methods.LIST_CLINICS,
                health_pb2.ListClinicsRequest(region=address.region, district=address.district),
                health_pb2.ListClinicsResponse,
                purpose=reads.OWN_PURPOSE,  # a catalogue: about nobody, no data subject
                user_id=reads.citizen_user_id(citizen),
                timeout=timeout,
                provider=reads.HEALTH,
            )
            clinics = Part(reads.HEALTH, found)
        except BusCallError as err:
            clinics = Part(reads.HEALTH, problem=reads._problem(err))
    context = {"whom": whom, "person": person, "clinics": clinics}
    return portal._page(request, "clinic_form.html", context)


async def clinic_submit(request: web.Request) -> web.StreamResponse:
    """POST /actions/clinic: AttachToClinic at health, for the citizen or a minor child."""
    from zhol.portal import app as portal  # the page helpers; imported late (no cycle)

    citizen = portal._citizen(request)
    form = await portal._form(request)
    clinic_id = form.get("clinic", "").strip()
    if not CLINIC_ID.fullmatch(clinic_id):
        raise portal.PageError(400, "error_bad_clinic")
    subject = await _subject(request, citizen, form.get("iin", ""))
    outcome = await _call(
        request, reads.HEALTH, methods.ATTACH_TO_CLINIC,
        health_pb2.AttachToClinicRequest(iin=subject, clinic_id=clinic_id),
        health_pb2.Attachment, citizen, subject,
    )  # fmt: skip
    return _result(request, "clinic", outcome, subject, citizen)


async def address_form(request: web.Request) -> web.StreamResponse:
    """GET /actions/address: the new registered address, for the citizen or a minor child."""
    from zhol.portal import app as portal  # the page helpers; imported late (no cycle)

    citizen = portal._citizen(request)
    whom = await _whom(request, citizen)
    return portal._page(request, "address_form.html", {"whom": whom, "fields": ADDRESS_FIELDS})


def parse_address(form: Mapping[str, str]) -> population_pb2.Address:
    """The form's address: required parts present, each at most 100 printable characters
    (ValueError otherwise). The owner checks the rest."""
    values = {name: " ".join(form.get(name, "").split()) for name in ADDRESS_FIELDS}
    for name, value in values.items():
        if len(value) > MAX_FIELD or not value.isprintable():
            raise ValueError(name)
        if name in REQUIRED_ADDRESS and not value:
            raise ValueError(name)
    return population_pb2.Address(**values)  # type: ignore[arg-type]


async def address_submit(request: web.Request) -> web.StreamResponse:
    """POST /actions/address: ChangeAddress at population (the registration of the new
    address; health and education follow population's AddressChanged event)."""
    from zhol.portal import app as portal  # the page helpers; imported late (no cycle)

    citizen = portal._citizen(request)
    form = await portal._form(request)
    try:
        address = parse_address(form)
    except ValueError:
        raise portal.PageError(400, "error_bad_address") from None
    subject = await _subject(request, citizen, form.get("iin", ""))
    outcome = await _call(
        request, reads.POPULATION, methods.CHANGE_ADDRESS,
        population_pb2.ChangeAddressRequest(iin=subject, address=address),
        population_pb2.Address, citizen, subject,
    )  # fmt: skip
    return _result(request, "address", outcome, subject, citizen)


# -- a minor child's own pages -------------------------------------------------------


async def _child_in_path(request: web.Request, citizen: str, own_page: str) -> str:
    """The minor child named in the path, as population says now: a malformed IIN 404,
    the citizen's own IIN to their own page, anyone else 403 (nothing read about them)."""
    from zhol.portal import app as portal  # the page helpers; imported late (no cycle)

    try:
        subject = Iin.parse(request.match_info["iin"]).value
    except ZholError:
        raise portal.PageError(404, "error_404") from None
    if subject == citizen:
        raise web.HTTPSeeOther(own_page)
    bus, timeout = _bus(request)
    family = await portal.family_of(request, citizen)
    if family.value is None:
        raise portal.PageError(503, "error_503")
    if subject not in reads.minor_children(family.value, request.app[portal.TODAY]()):
        raise portal.PageError(403, "error_403")
    return subject


def _child_context(child: str, person: Part[population_pb2.Person]) -> dict[str, Any]:
    return {"child": person, "child_iin": child, "child_name": _name(child, person)}


async def child_pension_page(request: web.Request) -> web.StreamResponse:
    """GET /person/{iin}/pension: a minor child's own benefits (as recipient or as the
    child they are paid for), pension status and contributions, read about the child."""
    from zhol.portal import app as portal  # the page helpers; imported late (no cycle)

    citizen = portal._citizen(request)
    child = await _child_in_path(request, citizen, "/pension")
    bus, timeout = _bus(request)
    person, pension = await asyncio.gather(
        reads.read_person(bus, citizen, child, timeout),
        read_pension(bus, citizen, child, timeout, request.app[portal.TODAY]()),
    )
    context = {**pension.context(), **_child_context(child, person)}
    return portal._page(request, "pension.html", context)


async def child_health_page(request: web.Request) -> web.StreamResponse:
    """GET /person/{iin}/health: a minor child's clinic, insurance, disability conclusions."""
    from zhol.portal import app as portal  # the page helpers; imported late (no cycle)

    citizen = portal._citizen(request)
    child = await _child_in_path(request, citizen, "/health")
    bus, timeout = _bus(request)
    person, health = await asyncio.gather(
        reads.read_person(bus, citizen, child, timeout),
        read_health(bus, citizen, child, timeout),
    )
    context = {"health": health, **_child_context(child, person)}
    return portal._page(request, "health.html", context)


async def child_education_page(request: web.Request) -> web.StreamResponse:
    """GET /person/{iin}/education: a minor child's queue place and enrolments, with the
    names of the kindergartens and schools, and the applications for them."""
    from zhol.portal import app as portal  # the page helpers; imported late (no cycle)

    citizen = portal._citizen(request)
    child = await _child_in_path(request, citizen, "/education")
    bus, timeout = _bus(request)
    person, (queue, enrolments, studies), places = await asyncio.gather(
        reads.read_person(bus, citizen, child, timeout),
        read_education(bus, citizen, child, timeout),
        places_of(request, citizen),
    )
    context = {
        "family": Part(reads.POPULATION), "places": places,
        "blocks": [EducationParts(child, person, queue, enrolments, studies)],
        "can_withdraw": can_withdraw, **_child_context(child, person),
    }  # fmt: skip
    return portal._page(request, "education.html", context)


# -- names of kindergartens and schools (reference data, about nobody) --------------


@dataclass(frozen=True)
class Places:
    """Education's kindergartens and schools by id: reference data, no one's personal
    data, so the portal may keep it for a while (``PLACES_TTL_S``)."""

    kindergartens: Mapping[str, education_pb2.Kindergarten]
    schools: Mapping[str, education_pb2.School]

    def label(self, place_id: str) -> str:
        """ "Name (id)", or the id alone when education did not name it."""
        found = self.kindergartens.get(place_id) or self.schools.get(place_id)
        return f"{found.name} ({place_id})" if found is not None and found.name else place_id

    def __bool__(self) -> bool:
        return bool(self.kindergartens or self.schools)


NO_PLACES = Places({}, {})


class PlacesCache:
    """The last names read, for ``ttl_s``. Requests that find them stale share one
    read; when it fails they get the older names (or none), and the next request tries
    again."""

    def __init__(self, clock: Callable[[], float], ttl_s: float) -> None:
        self._clock = clock
        self._ttl_s = ttl_s
        self._value: Places | None = None
        self._read_at = 0.0
        self._reading: asyncio.Future[Places] | None = None

    async def get(self, read: Callable[[], Awaitable[Places | None]]) -> Places:
        if self._value is not None and self._clock() - self._read_at < self._ttl_s:
            return self._value
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._refresh(read))
        # shielded: one request going away must not cancel the others' read
        return await asyncio.shield(self._reading)

    async def _refresh(self, read: Callable[[], Awaitable[Places | None]]) -> Places:
        try:
            found = await read()
            if found is not None:
                self._value, self._read_at = found, self._clock()
            return self._value or NO_PLACES
        finally:
            self._reading = None


PLACES: web.AppKey[PlacesCache] = web.AppKey("places", PlacesCache)


async def read_places(bus: BusClient, citizen: str, timeout: float) -> Places | None:
    """Every kindergarten and school, from education's catalogues (requests that name
    nobody: no data subject); None when either could not be read."""

    def one(method: str, message: Message, answer: type[Any]) -> Awaitable[Any]:
        return bus.call(method, message, answer, purpose=PLACES_PURPOSE,
                        user_id=reads.citizen_user_id(citizen), timeout=timeout,
                        provider=reads.EDUCATION)  # fmt: skip

    try:
        kindergartens, schools = await asyncio.gather(
            one(methods.LIST_KINDERGARTENS, education_pb2.ListKindergartensRequest(),
                education_pb2.ListKindergartensResponse),
            one(methods.LIST_SCHOOLS, education_pb2.ListSchoolsRequest(),
                education_pb2.ListSchoolsResponse),
        )  # fmt: skip
    except BusCallError:
        return None
    return Places(
        {k.kindergarten_id: k for k in kindergartens.kindergartens},
        {s.school_id: s for s in schools.schools},
    )


async def places_of(request: web.Request, citizen: str) -> Places:
    """The names of kindergartens and schools (cached; empty when never read)."""
    bus, timeout = _bus(request)
    return await request.app[PLACES].get(lambda: read_places(bus, citizen, timeout))


# -- a minor child's applications to education ---------------------------------------


async def _child_subject(request: web.Request, citizen: str, given: str) -> str:
    """A form's child: one of the citizen's minor children (the citizen too is 403)."""
    from zhol.portal import app as portal  # the page helpers; imported late (no cycle)

    subject = await _subject(request, citizen, given)
    if subject == citizen:
        raise portal.PageError(403, "error_403")
    return subject


async def _education_form(request: web.Request, template: str, kind: str) -> web.StreamResponse:
    """The form of an application for a minor child: the children, and the
    kindergartens or schools of the districts where they are registered."""
    from zhol.portal import app as portal  # the page helpers; imported late (no cycle)

    citizen = portal._citizen(request)
    children, places = await asyncio.gather(_minors(request, citizen), places_of(request, citizen))
    districts = {
        (p.value.address.region, p.value.address.district)
        for _, p in children
        if p.value is not None
    }
    catalogue: Mapping[str, Any] = (
        places.kindergartens if kind == "kindergarten" else places.schools
    )
    options = [c for c in catalogue.values() if (c.region, c.district) in districts]
    context = {
        "children": [(child, _name(child, person)) for child, person in children],
        "chosen": request.query.get("child", ""), "options": options,
        "places_read": bool(places), "grades": GRADES,
    }  # fmt: skip
    return portal._page(request, template, context)


async def kindergarten_form(request: web.Request) -> web.StreamResponse:
    """GET /actions/kindergarten: which minor child, which kindergarten (or any)."""
    return await _education_form(request, "kindergarten_form.html", "kindergarten")


async def school_form(request: web.Request) -> web.StreamResponse:
    """GET /actions/school: which minor child, which school, which grade."""
    return await _education_form(request, "school_form.html", "school")


def parse_kindergarten(form: Mapping[str, str]) -> str:
    """The preferred kindergarten ("" for any in the child's district); ValueError if
    it is not a kindergarten id."""
    kindergarten = form.get("kindergarten", "").strip()
    if kindergarten and not KINDERGARTEN_ID.fullmatch(kindergarten):
        raise ValueError("kindergarten")
    return kindergarten


def parse_school(form: Mapping[str, str]) -> tuple[str, int]:
    """The school and grade (1..11, default 1); ValueError otherwise."""
    school = form.get("school", "").strip()
    if not SCHOOL_ID.fullmatch(school):
        raise ValueError("school")
    grade_text = form.get("grade", "").strip() or "1"
    if not (grade_text.isascii() and grade_text.isdigit()) or int(grade_text) not in GRADES:
        raise ValueError("grade")
    return school, int(grade_text)


async def kindergarten_submit(request: web.Request) -> web.StreamResponse:
    """POST /actions/kindergarten: EnqueueForKindergarten at education, for a minor child
    (education reads the child's age and district from population and decides)."""
    from zhol.portal import app as portal  # the page helpers; imported late (no cycle)

    citizen = portal._citizen(request)
    form = await portal._form(request)
    try:
        kindergarten = parse_kindergarten(form)
    except ValueError:
        raise portal.PageError(400, "error_bad_kindergarten") from None
    subject = await _child_subject(request, citizen, form.get("iin", ""))
    outcome, places = await asyncio.gather(
        _call(request, reads.EDUCATION, methods.ENQUEUE_FOR_KINDERGARTEN,
              education_pb2.EnqueueForKindergartenRequest(
                  iin=subject, kindergarten_id=kindergarten),
              education_pb2.QueuePosition, citizen, subject),
        places_of(request, citizen),
    )  # fmt: skip
    return _result(request, "kindergarten", outcome, subject, citizen, {"places": places})


async def school_submit(request: web.Request) -> web.StreamResponse:
    """POST /actions/school: EnrollInSchool at education, for a minor child (education
    checks the child's age for the grade, the district's school and its free places)."""
    from zhol.portal import app as portal  # the page helpers; imported late (no cycle)

    citizen = portal._citizen(request)
    form = await portal._form(request)
    try:
        school, grade = parse_school(form)
    except ValueError as err:
        raise portal.PageError(400, f"error_bad_{err.args[0]}") from None
    subject = await _child_subject(request, citizen, form.get("iin", ""))
    outcome, places = await asyncio.gather(
        _call(request, reads.EDUCATION, methods.ENROLL_IN_SCHOOL,
              education_pb2.EnrollInSchoolRequest(iin=subject, school_id=school, grade=grade),
              education_pb2.Enrolment, citizen, subject),
        places_of(request, citizen),
    )  # fmt: skip
    return _result(request, "school", outcome, subject, citizen, {"places": places})


async def withdraw_submit(request: web.Request) -> web.StreamResponse:
    """POST /actions/withdraw: take a minor child out of the kindergarten queue, in two
    steps. Without ``confirm=yes`` it only asks: a page with the child's queue place and
    a form to confirm (nothing changed). With it, WithdrawFromQueue at education. Either
    way the child is checked first (population now): anyone else's IIN is 403 and
    nothing is read about them or sent to education."""
    from zhol.portal import app as portal  # the page helpers; imported late (no cycle)

    citizen = portal._citizen(request)
    form = await portal._form(request)
    confirm = form.get("confirm", "")
    if confirm not in ("", "yes"):
        raise portal.PageError(400, "error_400")
    subject = await _child_subject(request, citizen, form.get("iin", ""))
    if confirm != "yes":
        return await _withdraw_confirmation(request, citizen, subject)
    outcome, places = await asyncio.gather(
        _call(request, reads.EDUCATION, methods.WITHDRAW_FROM_QUEUE,
              education_pb2.WithdrawFromQueueRequest(iin=subject),
              education_pb2.QueuePosition, citizen, subject),
        places_of(request, citizen),
    )  # fmt: skip
    return _result(request, "withdraw", outcome, subject, citizen, {"places": places})


ACTIVE_QUEUE = (education_pb2.QUEUE_STATUS_WAITING, education_pb2.QUEUE_STATUS_PLACED)


def can_withdraw(queue: Part[education_pb2.QueuePosition]) -> bool:
    """Whether to offer the withdrawal: the child has a waiting or placed entry, or
    education could not be read (then education decides)."""
    if queue.value is not None:
        entry = queue.value.entry
        return bool(entry.queue_entry_id) and entry.status in ACTIVE_QUEUE
    return queue.problem != "not_found"


async def _withdraw_confirmation(
    request: web.Request, citizen: str, child: str
) -> web.StreamResponse:
    """The confirmation step: whom, the place they would lose, and the form to confirm."""
    from zhol.portal import app as portal  # the page helpers; imported late (no cycle)

    bus, timeout = _bus(request)
    person, queue, places = await asyncio.gather(
        reads.read_person(bus, citizen, child, timeout),
        reads.read(bus, reads.EDUCATION, reads.GET_QUEUE_POSITION,
                   education_pb2.GetQueuePositionRequest(iin=child),
                   education_pb2.QueuePosition, citizen=citizen, subject=child,
                   timeout=timeout),
        places_of(request, citizen),
    )  # fmt: skip
    context = {
        "queue": queue, "enrolments": Part(reads.EDUCATION), "places": places,
        "can_withdraw": can_withdraw(queue), **_child_context(child, person),
    }  # fmt: skip
    return portal._page(request, "withdraw_confirm.html", context)
