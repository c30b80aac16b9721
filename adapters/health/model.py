"""The health system's values and failures: frozen dataclasses, no protobuf, no SQL.

Health (KZ/GOV/MOH/health) owns clinics, clinic attachments, state-paid insurance
periods and the medical advisory commission's disability conclusions. It keeps a
citizen's IIN and nothing else of the person: name, birth date, sex and address are
read from the population registry over the bus whenever a decision needs them.

The store returns these values; the gRPC service maps them to protobuf at the edge.
Every failure is a ``HealthError`` subclass whose class says which gRPC status it
becomes:

| class           | gRPC status          | when                                                   |
|-----------------|----------------------|--------------------------------------------------------|
| InvalidInput    | INVALID_ARGUMENT     | bad arguments whatever the data: malformed IIN, empty   |
|                 |                      | clinic id, group outside 1..3, bad or future dates      |
| NotFound        | NOT_FOUND            | unknown clinic, person unknown to population, no open   |
|                 |                      | attachment                                              |
| AlreadyRecorded | ALREADY_EXISTS       | already attached to that clinic; the same conclusion    |
|                 |                      | recorded twice                                          |
| NotAllowed      | FAILED_PRECONDITION  | the data forbids it: clinic in another district, person |
|                 |                      | not insured, deceased, no registered address, clinic    |
|                 |                      | full, overlapping conclusion; not connected to the bus  |
| Unavailable     | UNAVAILABLE          | population or pension could not be asked (bus failure)  |
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from zhol.adapters.runtime.store import KZ_TIME as KZ_TIME  # re-exported
from zhol.core.iin import Iin

SUBSYSTEM = "KZ/GOV/MOH/health"


class AttachReason(enum.Enum):
    """Why an attachment was opened."""

    REQUEST = "request"  # the citizen chose the clinic (or the seeded attachment campaign)
    NEWBORN = "newborn"  # a registered birth: the mother's clinic
    ADDRESS_CHANGE = "address_change"  # moved to another district: a clinic there


class DetachReason(enum.Enum):
    """Why an attachment was closed."""

    REQUEST = "request"  # the citizen attached elsewhere
    ADDRESS_CHANGE = "address_change"  # moved to another district
    DEATH = "death"


class InsuranceCategory(enum.Enum):
    STATE_PAID = "state_paid"  # the state pays the premium (a social category)
    CONTRIBUTIONS = "contributions"  # insured through contributions (pension's records)


@dataclass(frozen=True, slots=True)
class Clinic:
    clinic_id: str
    name: str
    region: str
    district: str
    capacity: int
    attached: int = 0  # open attachments now

    @property
    def free(self) -> int:
        return self.capacity - self.attached

    def serves(self, region: str, district: str) -> bool:
        """True when the clinic lies in that region's district (the attachment rule)."""
        return (self.region, self.district) == (region, district)


@dataclass(frozen=True, slots=True)
class Attachment:
    iin: Iin
    clinic: Clinic
    attached_on: dt.date
    reason: AttachReason
    detached_on: dt.date | None = None
    detach_reason: DetachReason | None = None
    # The place whose district the clinic served when it was made (rules.ATTACHMENT.bases);
    # "": made before the basis was stored, treated as the registered address.
    basis: str = ""

    @property
    def open(self) -> bool:
        return self.detached_on is None


@dataclass(frozen=True, slots=True)
class PlaceCheck:
    """What was asked over the bus about an open attachment's place before a move is
    followed: whether the place ``basis`` names is still in force in the district of
    ``clinic_id`` (rules.KEPT_ON_MOVE)."""

    clinic_id: str
    basis: str
    holds: bool


@dataclass(frozen=True, slots=True)
class InsurancePeriod:
    """A period during which the state pays the person's premium (``valid_to`` is the
    last day, inclusive; None: open-ended)."""

    iin: Iin
    social_category: str
    valid_from: dt.date
    valid_to: dt.date | None
    source: str

    def covers(self, day: dt.date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True, slots=True)
class InsuranceStatus:
    """The answer to "is this person insured today?"."""

    iin: Iin
    insured: bool
    category: InsuranceCategory | None
    as_of: dt.date
    period: InsurancePeriod | None = None  # the state-paid period, when state_paid
    source: str = ""


@dataclass(frozen=True, slots=True)
class ConclusionRequest:
    """What the medical advisory commission decided (``valid_to`` None: indefinite)."""

    iin: Iin
    group: int
    valid_from: dt.date
    valid_to: dt.date | None
    since_childhood: bool = False  # the disability arose before 18


@dataclass(frozen=True, slots=True)
class DisabilityConclusion:
    conclusion_id: str
    iin: Iin
    group: int
    valid_from: dt.date
    valid_to: dt.date | None
    decided_on: dt.date
    since_childhood: bool = False


@dataclass(frozen=True, slots=True)
class GroundRequest:
    """A fact another agency holds that makes the person state-insured (rules.RECORDED_GROUNDS),
    as an operator records it (``valid_to`` None: until ended)."""

    iin: Iin
    social_category: str
    valid_from: dt.date
    valid_to: dt.date | None
    basis: str  # the list or document it rests on
    cared_for: Iin | None = None  # the person cared for (carer_of_disabled_group_1 only)


@dataclass(frozen=True, slots=True)
class StateInsuredGround:
    iin: Iin
    social_category: str
    valid_from: dt.date
    valid_to: dt.date | None
    basis: str
    cared_for: Iin | None
    recorded_on: dt.date


@dataclass(frozen=True, slots=True)
class Decision:
    """What an event or a request changed: the attachment closed and the one opened.

    Both None means nothing needed doing (the fact was already recorded)."""

    closed: Attachment | None = None
    opened: Attachment | None = None

    @property
    def changed(self) -> bool:
        return self.closed is not None or self.opened is not None


class HealthError(Exception):
    """A request the health system refuses; nothing was changed."""


class InvalidInput(HealthError, ValueError):
    pass


class NotFound(HealthError, LookupError):
    pass


class AlreadyRecorded(HealthError):
    pass


class NotAllowed(HealthError):
    pass


class Unavailable(HealthError):
    pass
