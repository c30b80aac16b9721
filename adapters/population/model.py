"""The population registry's values and failures: frozen dataclasses, no protobuf, no SQL.

The store returns these; the gRPC service maps them to protobuf at the edge. Every
failure is a ``RegistryError`` subclass whose class says which gRPC status it becomes:

| class           | gRPC status          | when                                                   |
|-----------------|----------------------|--------------------------------------------------------|
| InvalidInput    | INVALID_ARGUMENT     | bad arguments whatever the registry holds: page token,  |
|                 |                      | page size, empty name, unset sex, date in the future    |
| NotFound        | NOT_FOUND            | an IIN (person, mother, father) the registry lacks      |
| AlreadyRecorded | ALREADY_EXISTS       | the fact is already registered: a second death, the     |
|                 |                      | same birth twice (mother, birth date, first name), a    |
|                 |                      | change to the name the person already has               |
| NotAllowed      | FAILED_PRECONDITION  | the registry's data forbids it: mother not female or    |
|                 |                      | deceased, father not male, birth before the mother's,   |
|                 |                      | death before birth, new address or name for a deceased  |
|                 |                      | person                                                  |
| Exhausted       | RESOURCE_EXHAUSTED   | no free IIN serial left for that birth date             |

A malformed IIN is ``core.errors.ZholError("InvalidIdentifier")`` from ``Iin.parse``.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from zhol.adapters.runtime.store import KZ_TIME as KZ_TIME  # re-exported
from zhol.core.iin import Iin

CITIZENSHIP_KZ = "KAZ"


class Sex(enum.Enum):
    MALE = "M"
    FEMALE = "F"


class Relation(enum.Enum):
    MOTHER = "mother"
    FATHER = "father"
    SPOUSE = "spouse"
    CHILD = "child"


class ActKind(enum.Enum):
    BIRTH = "birth"
    DEATH = "death"
    MARRIAGE = "marriage"
    NAME_CHANGE = "name_change"


class NameChangeReason(enum.Enum):
    MARRIAGE = "marriage"  # took the spouse's name
    DIVORCE = "divorce"  # returned to a former name
    APPLICATION = "application"  # changed on the citizen's application


@dataclass(frozen=True, slots=True)
class Address:
    region: str
    district: str
    locality: str
    street: str
    building: str
    apartment: str
    registered_on: dt.date
    until: dt.date | None = None  # a temporary registration's last day; None: open-ended


@dataclass(frozen=True, slots=True)
class Person:
    iin: Iin
    last_name: str
    first_name: str
    patronymic: str
    sex: Sex
    birth_date: dt.date
    citizenship: str
    death_date: dt.date | None
    address: Address | None

    @property
    def deceased(self) -> bool:
        return self.death_date is not None


@dataclass(frozen=True, slots=True)
class PersonPage:
    persons: tuple[Person, ...]
    next_page_token: str  # empty on the last page


@dataclass(frozen=True, slots=True)
class Relative:
    iin: Iin
    relation: Relation


@dataclass(frozen=True, slots=True)
class Family:
    iin: Iin
    parents: tuple[Relative, ...]
    spouse: Relative | None
    children: tuple[Relative, ...]


@dataclass(frozen=True, slots=True)
class CivilAct:
    act_id: str
    kind: ActKind
    iin: Iin
    registered_on: dt.date


@dataclass(frozen=True, slots=True)
class BirthRegistration:
    """What a registry office records for a newborn."""

    mother: Iin
    father: Iin | None
    last_name: str
    first_name: str
    patronymic: str
    sex: Sex
    birth_date: dt.date


@dataclass(frozen=True, slots=True)
class RegisteredBirth:
    child: Person
    act: CivilAct


@dataclass(frozen=True, slots=True)
class AddressChange:
    """A new registered address; ``registered_on`` defaults to today. ``temporary``: a
    registration at a place of temporary residence (beside the permanent address),
    ended by ``until`` (its last day) or open-ended."""

    region: str
    district: str
    locality: str
    street: str
    building: str
    apartment: str
    registered_on: dt.date | None = None
    temporary: bool = False
    until: dt.date | None = None


@dataclass(frozen=True, slots=True)
class NameChange:
    """A new full name; validated by the store (required, length, printable)."""

    last_name: str
    first_name: str
    patronymic: str
    reason: NameChangeReason


@dataclass(frozen=True, slots=True)
class ChangedName:
    person: Person
    act: CivilAct


class RegistryError(Exception):
    """A request the population registry refuses; nothing was changed."""


class InvalidInput(RegistryError, ValueError):
    pass


class NotFound(RegistryError, LookupError):
    pass


class AlreadyRecorded(RegistryError):
    pass


class NotAllowed(RegistryError):
    pass


class Exhausted(RegistryError):
    pass
