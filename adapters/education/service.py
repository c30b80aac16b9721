"""The education system's gRPC service (zhol.education.v1.EducationRegistry).

Protobuf stays here: requests are parsed into typed values and store results mapped
back to messages. The adapter is the provider IS itself, so failures are plain gRPC
statuses, never ``zhol-error`` trailers:

| failure                                                   | status              |
|-----------------------------------------------------------|---------------------|
| malformed IIN, id or filter; grade outside 1..11; a        | INVALID_ARGUMENT    |
| ``read_mask`` path that is not a field of the answer      |                     |
| unknown kindergarten or school; never queued; a person     | NOT_FOUND           |
| population does not know                                  |                     |
| already queued; already enrolled in that school; placed    | ALREADY_EXISTS      |
| age or district rule not met; deceased; no registered      | FAILED_PRECONDITION |
| district; full; not connected to the bus; population       |                     |
| refused the read                                          |                     |
| population unreachable or too slow                        | UNAVAILABLE,        |
|                                                           | DEADLINE_EXCEEDED   |
| anything unexpected (logged, no detail sent)              | INTERNAL            |

Colleges and universities (``ListInstitutions``) and studies at them (``RecordStudy``,
``EndStudy``, ``ListStudies``): a study's level must be taught at the institution's
kind (``rules.STUDY_LEVELS``); recording one reads from population that the person
exists and is alive; ending one needs the person's IIN with the study id (the data
subject is bound to the data: another person's study id is NOT_FOUND).

``GetQueuePosition`` and ``ListEnrolments`` also carry the child as population knows
them at the moment of the answer (name, birth date, the family's region and district):
one GetPerson through the bus per answer, never stored. When that read fails (or the
bus is off) the answer is still made from education's own facts, with ``person`` unset
and ``person_status`` / ``person_reason`` saying why (``adapters.bus.population``). A
``read_mask`` without them (the caller has the person already) skips that read.

Reads run on the event loop against a query-only connection. Writes that need the
child's facts first read them from population over the bus (on the loop, no
transaction open), then run one transaction on a dedicated writer thread; after a
commit the outbox publisher is told to publish the decision's event.
"""

from __future__ import annotations

import logging
from pathlib import Path

import grpc

from zhol.adapters.bus.population import PERSON_FIELDS, show_person
from zhol.adapters.education.citizens import (
    PURPOSE_ENROLMENT,
    PURPOSE_ENROLMENTS_ANSWER,
    PURPOSE_QUEUE_ANSWER,
    PURPOSE_QUEUE_REQUEST,
    PURPOSE_STUDY,
    Citizens,
)
from zhol.adapters.education.events import REASON_TO_PB, date_pb
from zhol.adapters.education.model import (
    EducationError,
    Enrolment,
    EnrolmentStatus,
    Institution,
    InvalidInput,
    Kindergarten,
    NotAllowed,
    QueueEntry,
    QueueMove,
    QueuePosition,
    QueueStatus,
    School,
    Study,
    StudyForm,
    StudyLevel,
    StudyRequest,
    status_for,
)
from zhol.adapters.education.store import EducationStore
from zhol.adapters.runtime.service import Notify, RequestParser, StorePair, rpc_errors
from zhol.core.clock import Clock
from zhol.education.v1 import education_pb2 as pb
from zhol.education.v1 import education_pb2_grpc as pb_grpc

log = logging.getLogger("zhol.adapters.education")

_STATUS_TO_PB = {
    QueueStatus.WAITING: pb.QUEUE_STATUS_WAITING,
    QueueStatus.PLACED: pb.QUEUE_STATUS_PLACED,
    QueueStatus.WITHDRAWN: pb.QUEUE_STATUS_WITHDRAWN,
}
_ENROLMENT_TO_PB = {
    EnrolmentStatus.ACTIVE: pb.ENROLMENT_STATUS_ACTIVE,
    EnrolmentStatus.TRANSFERRED: pb.ENROLMENT_STATUS_TRANSFERRED,
    EnrolmentStatus.LEFT: pb.ENROLMENT_STATUS_LEFT,
}


def _status(exc: Exception) -> grpc.StatusCode | None:
    return status_for(exc) if isinstance(exc, EducationError) else None


_rpc = rpc_errors(_status, log, "education")  # each RPC's failures become its status


class EducationRegistryServicer(pb_grpc.EducationRegistryServicer):
    """Serves one education database: ``reader`` on the loop, ``writer`` on its thread."""

    def __init__(self, stores: StorePair[EducationStore], citizens: Citizens) -> None:
        self._stores = stores
        self._reader = stores.reader
        self._writer = stores.writer
        self._citizens = citizens

    @classmethod
    def open(
        cls,
        db_path: Path,
        clock: Clock,
        citizens: Citizens,
        *,
        on_commit: Notify | None = None,
    ) -> EducationRegistryServicer:
        return cls(StorePair.open(EducationStore.open, db_path, clock, agency="education",
                                  on_commit=on_commit), citizens)

    def close(self) -> None:
        """Wait for a running write, then close both connections."""
        self._stores.close()

    # -- reads -------------------------------------------------------------------------

    @_rpc
    async def ListKindergartens(self, request: pb.ListKindergartensRequest,
                                context: grpc.aio.ServicerContext
                                ) -> pb.ListKindergartensResponse:
        found = self._reader.list_kindergartens(request.region, request.district)
        return pb.ListKindergartensResponse(kindergartens=[kindergarten_pb(k) for k in found])

    @_rpc
    async def ListSchools(self, request: pb.ListSchoolsRequest,
                          context: grpc.aio.ServicerContext) -> pb.ListSchoolsResponse:
        found = self._reader.list_schools(request.region, request.district)
        return pb.ListSchoolsResponse(schools=[school_pb(s) for s in found])

    @_rpc
    async def GetQueuePosition(self, request: pb.GetQueuePositionRequest,
                               context: grpc.aio.ServicerContext) -> pb.QueuePosition:
        iin = parse_iin(request.iin, "iin")
        mask = parse_read_mask(request, pb.QueuePosition)
        answer = position_pb(self._reader.queue_position(iin))
        if mask.wants_any(*PERSON_FIELDS):
            show_person(answer, await self._citizens.now(iin, purpose=PURPOSE_QUEUE_ANSWER))
        return mask.apply(answer)

    @_rpc
    async def ListEnrolments(self, request: pb.ListEnrolmentsRequest,
                             context: grpc.aio.ServicerContext) -> pb.ListEnrolmentsResponse:
        iin = parse_iin(request.iin, "iin")
        mask = parse_read_mask(request, pb.ListEnrolmentsResponse)
        found = self._reader.list_enrolments(iin)
        answer = pb.ListEnrolmentsResponse(enrolments=[enrolment_pb(e) for e in found])
        if mask.wants_any(*PERSON_FIELDS):
            show_person(answer, await self._citizens.now(iin, purpose=PURPOSE_ENROLMENTS_ANSWER))
        return mask.apply(answer)

    # -- writes ------------------------------------------------------------------------

    @_rpc
    async def EnqueueForKindergarten(self, request: pb.EnqueueForKindergartenRequest,
                                     context: grpc.aio.ServicerContext) -> pb.QueuePosition:
        iin = parse_iin(request.iin, "iin")
        kindergarten_id = request.kindergarten_id.strip() or None
        if kindergarten_id is not None:  # a bad id is refused before asking population
            self._reader.get_kindergarten(kindergarten_id)
        child = await self._citizens.read(iin, purpose=PURPOSE_QUEUE_REQUEST)
        position = await self._stores.write(self._writer.enqueue, child, kindergarten_id)
        return position_pb(position)

    @_rpc
    async def WithdrawFromQueue(self, request: pb.WithdrawFromQueueRequest,
                                context: grpc.aio.ServicerContext) -> pb.QueuePosition:
        iin = parse_iin(request.iin, "iin")
        # Withdrawing and placing enqueue no event (adapters.education.events).
        withdrawn = await self._stores.write(self._writer.withdraw, iin, notify=False)
        return position_pb(withdrawn)

    @_rpc
    async def PlaceInKindergarten(self, request: pb.PlaceInKindergartenRequest,
                                  context: grpc.aio.ServicerContext) -> pb.QueuePosition:
        iin = parse_iin(request.iin, "iin")
        position = await self._stores.write(
            self._writer.place, iin, request.kindergarten_id.strip(), notify=False
        )
        return position_pb(position)

    @_rpc
    async def EnrollInSchool(self, request: pb.EnrollInSchoolRequest,
                             context: grpc.aio.ServicerContext) -> pb.Enrolment:
        iin = parse_iin(request.iin, "iin")
        grade = request.grade or 1
        school_id = request.school_id.strip()
        self._reader.get_school(school_id)  # a bad id is refused before asking population
        child = await self._citizens.read(iin, purpose=PURPOSE_ENROLMENT)
        enrolment = await self._stores.write(self._writer.enroll, child, school_id, grade)
        return enrolment_pb(enrolment)

    # -- colleges, universities and studies --------------------------------------------

    @_rpc
    async def ListInstitutions(self, request: pb.ListInstitutionsRequest,
                               context: grpc.aio.ServicerContext
                               ) -> pb.ListInstitutionsResponse:
        found = self._reader.list_institutions(request.region, request.district, request.kind)
        return pb.ListInstitutionsResponse(institutions=[institution_pb(i) for i in found])

    @_rpc
    async def ListStudies(self, request: pb.ListStudiesRequest,
                          context: grpc.aio.ServicerContext) -> pb.ListStudiesResponse:
        found = self._reader.list_studies(parse_iin(request.iin, "iin"))
        return pb.ListStudiesResponse(studies=[study_pb(s) for s in found])

    @_rpc
    async def RecordStudy(self, request: pb.RecordStudyRequest,
                          context: grpc.aio.ServicerContext) -> pb.Study:
        study = parse_study(request)
        self._reader.get_institution(study.institution_id)  # refused before asking population
        person = await self._citizens.read(study.iin, purpose=PURPOSE_STUDY)
        if person.deceased:
            raise NotAllowed(f"person {study.iin} is deceased")
        # Studies enqueue no event (adapters.education.events).
        recorded = await self._stores.write(self._writer.record_study, study, notify=False)
        return study_pb(recorded)

    @_rpc
    async def EndStudy(self, request: pb.EndStudyRequest,
                       context: grpc.aio.ServicerContext) -> pb.Study:
        iin = parse_iin(request.iin, "iin")
        if request.study_id <= 0:
            raise InvalidInput("study_id is required")
        ended_on = parse_optional_date(request.ended_on, "ended_on")
        ended = await self._stores.write(self._writer.end_study, iin, request.study_id,
                                         ended_on, notify=False)
        return study_pb(ended)



# -- protobuf to values ------------------------------------------------------------------


_parse = RequestParser(InvalidInput)
parse_iin = _parse.iin
parse_read_mask = _parse.read_mask
parse_date = _parse.date
parse_optional_date = _parse.optional_date


def parse_study(request: pb.RecordStudyRequest) -> StudyRequest:
    try:
        level = StudyLevel(request.level)
    except ValueError:
        raise InvalidInput("level must be vocational, bachelor, master or doctoral") from None
    try:
        form = StudyForm(request.form)
    except ValueError:
        raise InvalidInput("form must be full_time or part_time") from None
    return StudyRequest(parse_iin(request.iin, "iin"), request.institution_id.strip(), level,
                        form, parse_date(request.started_on, "started_on"))


# -- values to protobuf ------------------------------------------------------------------


def kindergarten_pb(kindergarten: Kindergarten) -> pb.Kindergarten:
    return pb.Kindergarten(
        kindergarten_id=kindergarten.kindergarten_id,
        name=kindergarten.name,
        region=kindergarten.district.region,
        district=kindergarten.district.name,
        capacity=kindergarten.capacity,
        languages=list(kindergarten.languages),
        placed=kindergarten.placed,
    )


def school_pb(school: School) -> pb.School:
    return pb.School(
        school_id=school.school_id,
        name=school.name,
        region=school.district.region,
        district=school.district.name,
        capacity=school.capacity,
        languages=list(school.languages),
        enrolled=school.enrolled,
    )


def entry_pb(entry: QueueEntry) -> pb.QueueEntry:
    return pb.QueueEntry(
        queue_entry_id=entry.queue_entry_id,
        iin=entry.iin.value,
        region=entry.district.region,
        district=entry.district.name,
        kindergarten_id=entry.kindergarten_id or "",
        queued_on=date_pb(entry.queued_on),
        status=_STATUS_TO_PB[entry.status],
        reason=REASON_TO_PB[entry.reason],
        placed_in=entry.placed_in or "",
        status_changed_on=date_pb(entry.status_changed_on),
        withdrawn_because=entry.withdrawn_because.value if entry.withdrawn_because else "",
    )


def move_pb(move: QueueMove) -> pb.QueueMove:
    return pb.QueueMove(
        from_region=move.from_district.region,
        from_district=move.from_district.name,
        to_region=move.to_district.region,
        to_district=move.to_district.name,
        moved_on=date_pb(move.moved_on),
        reason=REASON_TO_PB[move.reason],
    )


def position_pb(position: QueuePosition) -> pb.QueuePosition:
    return pb.QueuePosition(
        entry=entry_pb(position.entry),
        position=position.position,
        waiting_in_district=position.waiting_in_district,
        moves=[move_pb(m) for m in position.moves],
    )


def enrolment_pb(enrolment: Enrolment) -> pb.Enrolment:
    return pb.Enrolment(
        enrolment_id=enrolment.enrolment_id,
        iin=enrolment.iin.value,
        school_id=enrolment.school_id,
        grade=enrolment.grade,
        enrolled_on=date_pb(enrolment.enrolled_on),
        status=_ENROLMENT_TO_PB[enrolment.status],
        school_year_start=date_pb(enrolment.school_year_start),
    )


def institution_pb(institution: Institution) -> pb.Institution:
    return pb.Institution(
        institution_id=institution.institution_id,
        name=institution.name,
        kind=institution.kind.value,
        region=institution.district.region,
        district=institution.district.name,
        students=institution.students,
    )


def study_pb(study: Study) -> pb.Study:
    message = pb.Study(
        study_id=study.study_id,
        iin=study.iin.value,
        institution_id=study.institution.institution_id,
        level=study.level.value,
        form=study.form.value,
        started_on=date_pb(study.started_on),
        institution=institution_pb(study.institution),
    )
    if study.ended_on is not None:
        message.ended_on.CopyFrom(date_pb(study.ended_on))
    return message
