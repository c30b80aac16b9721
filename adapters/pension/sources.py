"""Reads of the population registry (and of education's studies) over the bus, each one
recorded as a ``SourceRead``.

A decision lists what it rests on: every read made for it (service, purpose, data
subject, the fact used, when). ``RecordingReader`` wraps the bus library's
``PopulationReader`` and keeps that list; the decision stores it with its rows, and
``GetPensionStatus`` / ``ListBenefits`` return it.

A read that fails becomes a ``PensionError`` (``reading_failed``): NOT_FOUND answered
by the registry itself is ``NotFound`` (an unknown person); an unreachable gateway or
a timeout is ``Unavailable``; anything else the bus refused (access denied, unknown
service, expired configuration) is ``NotAllowed``.

Education (KZ/GOV/MES/education) is asked for a child's studies at colleges and
universities (``ListStudies``, the child as the data subject) by ``StudyReader``: the
survivor pension of a child of 18 or more in full-time study. Its failures map the same
way (``studies_failed``); NOT_FOUND from education itself is "no studies". A failed read
never counts as "no study": the caller refuses (the event is retried) or leaves the
decision as it is.
"""

from __future__ import annotations

import datetime as dt

import grpc

from zhol.adapters.bus.client import BusCallError, BusClient
from zhol.adapters.bus.population import PopulationReader
from zhol.adapters.pension.calculation import StudyPeriod
from zhol.adapters.pension.model import NotAllowed, NotFound, PensionError, SourceRead, Unavailable
from zhol.core.clock import Clock
from zhol.core.errors import ZholError
from zhol.core.iin import Iin
from zhol.education.v1 import education_pb2
from zhol.population.v1 import population_pb2

POPULATION = "KZ/GOV/MJ/population"
SERVICE = "zhol.population.v1.PopulationRegistry"
EDUCATION = "KZ/GOV/MES/education"
EDUCATION_SERVICE = "zhol.education.v1.EducationRegistry"
LIST_STUDIES = f"/{EDUCATION_SERVICE}/ListStudies"

_TRANSPORT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


def reading_failed(err: BusCallError, what: str) -> PensionError:
    if err.from_provider and err.status is grpc.StatusCode.NOT_FOUND:
        return NotFound(f"{what}: unknown to the population registry")
    if err.status in _TRANSPORT:
        return Unavailable(f"{what}: the population registry could not be asked "
                           f"({err.zhol_error or err.status.name})")
    return NotAllowed(f"{what}: the bus refused the read ({err.zhol_error or err.status.name})")


def studies_failed(err: BusCallError, iin: str) -> PensionError:
    """A failed ``ListStudies`` read (NOT_FOUND from education is not a failure)."""
    origin = err.zhol_error or err.status.name
    if err.status in _TRANSPORT:
        return Unavailable(f"studies of {iin}: education could not be asked ({origin})")
    return NotAllowed(f"studies of {iin}: the bus refused the read ({origin})")


class StudyReader:
    """A person's studies at colleges and universities from education, through our
    gateway."""

    def __init__(self, bus: BusClient, *, timeout: float = 5.0) -> None:
        self._bus = bus
        self._timeout = timeout

    async def list_studies(self, iin: str, *, purpose: str) -> tuple[StudyPeriod, ...]:
        """The person's studies (empty: none); ``PensionError`` when the read failed."""
        try:
            answer = await self._bus.call(
                LIST_STUDIES, education_pb2.ListStudiesRequest(iin=iin),
                education_pb2.ListStudiesResponse, purpose=purpose, data_subject=iin,
                timeout=self._timeout,
            )
        except BusCallError as err:
            if err.from_provider and err.status is grpc.StatusCode.NOT_FOUND:
                return ()
            raise studies_failed(err, iin) from None
        return tuple(study_of(s) for s in answer.studies)


def study_of(study: education_pb2.Study) -> StudyPeriod:
    try:
        first = dt.date(study.started_on.year, study.started_on.month, study.started_on.day)
    except ValueError:
        raise Unavailable("education answered a study without a valid first day") from None
    end = study.ended_on
    try:
        last = None if (end.year, end.month, end.day) == (0, 0, 0) else dt.date(
            end.year, end.month, end.day)
    except ValueError:
        raise Unavailable("education answered a study with an invalid last day") from None
    return StudyPeriod(first, last, study.level, study.form, study.institution_id)


class RecordingReader:
    """Population (and education) reads for one decision (or one run), recorded in
    order."""

    def __init__(self, reader: PopulationReader, clock: Clock,
                 education: StudyReader | None = None) -> None:
        self._reader = reader
        self._clock = clock
        self._education = education
        self._sources: list[SourceRead] = []

    @property
    def sources(self) -> tuple[SourceRead, ...]:
        return tuple(self._sources)

    def fork(self) -> RecordingReader:
        """A reader for one person's decision that starts with this one's sources."""
        forked = RecordingReader(self._reader, self._clock, self._education)
        forked._sources = list(self._sources)
        return forked

    async def list_studies(self, iin: str, *, purpose: str, fact: str
                           ) -> tuple[StudyPeriod, ...]:
        if self._education is None:
            raise NotAllowed("education is not reachable: not connected to the bus")
        studies = await self._education.list_studies(iin, purpose=purpose)
        self._sources.append(SourceRead(f"{EDUCATION_SERVICE}/ListStudies", EDUCATION,
                                        purpose, iin, fact, self._clock.now_ms()))
        return studies

    async def get_person(self, iin: str, *, purpose: str, fact: str) -> population_pb2.Person:
        try:
            person = await self._reader.get_person(iin, purpose=purpose)
        except BusCallError as err:
            raise reading_failed(err, f"person {iin}") from None
        self._record("GetPerson", purpose, iin, fact)
        return person

    async def get_family(self, iin: str, *, purpose: str, fact: str) -> population_pb2.Family:
        try:
            family = await self._reader.get_family(iin, purpose=purpose)
        except BusCallError as err:
            raise reading_failed(err, f"family of {iin}") from None
        self._record("GetFamily", purpose, iin, fact)
        return family

    async def list_persons(
        self, page_size: int, page_token: str, *, purpose: str, fact: str, record: bool
    ) -> population_pb2.ListPersonsResponse:
        try:
            page = await self._reader.list_persons(page_size, page_token, purpose=purpose)
        except BusCallError as err:
            raise reading_failed(err, "the list of persons") from None
        if record:
            self._record("ListPersons", purpose, "", fact)
        return page

    def _record(self, method: str, purpose: str, subject: str, fact: str) -> None:
        self._sources.append(SourceRead(
            f"{SERVICE}/{method}", POPULATION, purpose, subject, fact, self._clock.now_ms()
        ))


def birth_date_of(person: population_pb2.Person) -> dt.date:
    """A person's birth date as the registry returned it."""
    day = person.birth_date
    try:
        return dt.date(day.year, day.month, day.day)
    except ValueError:
        raise NotAllowed(f"the registry returned no birth date for {person.iin}") from None


def birth_date_in_iin(iin: str) -> dt.date | None:
    """The birth date an IIN encodes (its first seven digits), None for a malformed one.

    Used for a relative the family read returned (a sibling's place in the birth order,
    a child's care years): the date is part of the identifier population gave us, so no
    further read of that relative is needed.
    """
    try:
        return Iin.parse(iin).birth_date
    except ZholError:
        return None


def age_on(birth_date: dt.date, day: dt.date) -> int:
    """Full years of age on ``day``."""
    years = day.year - birth_date.year
    if (day.month, day.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years
