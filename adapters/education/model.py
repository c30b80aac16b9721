"""The education system's values and failures: frozen dataclasses, no protobuf, no SQL.

Education owns kindergartens, schools, colleges and universities (with the region and
district they stand in), the kindergarten queue, school enrolments and studies at
colleges and universities. Of a citizen it keeps the IIN and
these facts only. What it needs to know about the child (birth date, whether alive,
registered address) is a ``Citizen`` read from the population registry over the bus
for the decision at hand and never stored.

The district of a queue entry is the queue's own fact (where the place is). It starts
as the district of the child's registered address and follows it when that address
changes (``AddressChanged``); the child's address itself is always read from population.

Failures are ``EducationError`` subclasses whose class says which gRPC status they
become (the service maps them at the edge):

| class           | gRPC status          | when                                                  |
|-----------------|----------------------|-------------------------------------------------------|
| InvalidInput    | INVALID_ARGUMENT     | malformed IIN, grade out of 1..11, bad payload         |
| NotFound        | NOT_FOUND            | unknown kindergarten, school, college, university,     |
|                 |                      | queue entry, study (or another person's); a person     |
|                 |                      | population does not know                               |
| AlreadyRecorded | ALREADY_EXISTS       | an active queue entry already; already in that school; |
|                 |                      | an open study at that institution already              |
| NotAllowed      | FAILED_PRECONDITION  | age or district rule not met, deceased, no registered  |
|                 |                      | address, school or kindergarten full, not connected   |
|                 |                      | to the bus; a level the institution does not teach, a  |
|                 |                      | study already ended                                    |
| SourceFailed    | the source's status  | population could not be asked (UNAVAILABLE, ...)       |
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

import grpc

from zhol.adapters.runtime.store import KZ_TIME as KZ_TIME  # re-exported
from zhol.core.iin import Iin


class QueueStatus(enum.Enum):
    WAITING = "waiting"
    PLACED = "placed"
    WITHDRAWN = "withdrawn"


class QueueReason(enum.Enum):
    NEWBORN = "newborn"
    REQUEST = "request"
    ADDRESS_CHANGE = "address_change"


class WithdrawalCause(enum.Enum):
    DEATH = "death"
    REQUEST = "request"
    SCHOOL = "school"  # enrolled in a school


class EnrolmentStatus(enum.Enum):
    ACTIVE = "active"
    TRANSFERRED = "transferred"
    LEFT = "left"


@dataclass(frozen=True, slots=True)
class District:
    district_id: int
    region: str
    name: str


@dataclass(frozen=True, slots=True)
class Kindergarten:
    kindergarten_id: str
    name: str
    district: District
    capacity: int
    languages: tuple[str, ...]
    placed: int


@dataclass(frozen=True, slots=True)
class School:
    school_id: str
    name: str
    district: District
    capacity: int
    languages: tuple[str, ...]
    enrolled: int


@dataclass(frozen=True, slots=True)
class QueueEntry:
    queue_entry_id: int
    iin: Iin
    district: District
    kindergarten_id: str | None  # preferred
    queued_on: dt.date
    status: QueueStatus
    reason: QueueReason
    placed_in: str | None
    status_changed_on: dt.date
    withdrawn_because: WithdrawalCause | None

    @property
    def active(self) -> bool:
        return self.status is not QueueStatus.WITHDRAWN


@dataclass(frozen=True, slots=True)
class QueueMove:
    queue_entry_id: int
    from_district: District
    to_district: District
    moved_on: dt.date
    reason: QueueReason


@dataclass(frozen=True, slots=True)
class QueuePosition:
    entry: QueueEntry
    position: int  # 1 = next in its district; 0 unless waiting
    waiting_in_district: int
    moves: tuple[QueueMove, ...]


@dataclass(frozen=True, slots=True)
class Enrolment:
    enrolment_id: int
    iin: Iin
    school_id: str
    grade: int
    enrolled_on: dt.date
    status: EnrolmentStatus
    school_year_start: dt.date


class InstitutionKind(enum.Enum):
    COLLEGE = "college"  # technical and vocational education
    UNIVERSITY = "university"  # higher and postgraduate education


class StudyLevel(enum.Enum):
    VOCATIONAL = "vocational"
    BACHELOR = "bachelor"
    MASTER = "master"
    DOCTORAL = "doctoral"


class StudyForm(enum.Enum):
    FULL_TIME = "full_time"
    PART_TIME = "part_time"


@dataclass(frozen=True, slots=True)
class Institution:
    institution_id: str
    name: str
    kind: InstitutionKind
    district: District
    students: int  # studies with no end recorded


@dataclass(frozen=True, slots=True)
class Study:
    """A study at a college or university; ``ended_on`` its last day, None while open."""

    study_id: int
    iin: Iin
    institution: Institution
    level: StudyLevel
    form: StudyForm
    started_on: dt.date
    ended_on: dt.date | None


@dataclass(frozen=True, slots=True)
class StudyRequest:
    """A student's admission as the institution's order gives it (``RecordStudy``)."""

    iin: Iin
    institution_id: str
    level: StudyLevel
    form: StudyForm
    started_on: dt.date


@dataclass(frozen=True, slots=True)
class Citizen:
    """What population says about a child, for one decision (never stored).

    ``region``/``district`` are those of the registered address, None without one.
    """

    iin: Iin
    birth_date: dt.date
    deceased: bool
    region: str | None
    district: str | None


class EducationError(Exception):
    """A request or event the education system refuses; nothing was changed."""


class InvalidInput(EducationError, ValueError):
    pass


class NotFound(EducationError, LookupError):
    pass


class AlreadyRecorded(EducationError):
    pass


class NotAllowed(EducationError):
    pass


class SourceFailed(EducationError):
    """Population could not answer; ``status`` is the status to pass on."""

    def __init__(self, status: grpc.StatusCode, detail: str) -> None:
        super().__init__(detail)
        self.status = status


_STATUS: tuple[tuple[type[EducationError], grpc.StatusCode], ...] = (
    (InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyRecorded, grpc.StatusCode.ALREADY_EXISTS),
    (NotAllowed, grpc.StatusCode.FAILED_PRECONDITION),
)


def status_for(error: EducationError) -> grpc.StatusCode:
    """The gRPC status an education failure becomes (the table in this module's docstring)."""
    if isinstance(error, SourceFailed):
        return error.status
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return status
    return grpc.StatusCode.INTERNAL
