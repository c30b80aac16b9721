"""Events health receives from the population registry, and what it does with them.

Each handler reads what it needs over the bus first (no transaction open), then
returns the write, which ``EventSinkServicer`` runs in one transaction with the inbox
record. The write enqueues ``ClinicAttached`` / ``AttachmentClosed`` in that same
transaction. The decisions are idempotent in effect even without the inbox (one
newborn attachment per person, one open attachment per person; a death or a move
already followed changes nothing), so a birth delivered twice attaches the child once.

| topic                                 | reads (population)  | decision                    |
|---------------------------------------|---------------------|-----------------------------|
| zhol.population.v1.BirthRegistered    | GetPerson (child)   | attach to the mother's      |
|                                       |                     | clinic; child_under_1,      |
|                                       |                     | preschool_child, pupil      |
| zhol.population.v1.DeathRegistered    | GetPerson           | close the attachment        |
|                                       |                     | (death); end state-paid     |
|                                       |                     | periods on the death date   |
| zhol.population.v1.AddressChanged     | GetAddress; for an  | re-attach in the new        |
|                                       | attachment by a     | district when the clinic is |
|                                       | place of work,      | elsewhere, unless it rests  |
|                                       | study or temporary  | on a place still in force   |
|                                       | stay, that place    | there (rules.KEPT_ON_MOVE); |
|                                       | (as AttachToClinic) | else nothing                |

Refusals (``EventRejected``, nothing written; the gateway retries, then dead-letters):
a payload that does not parse or a malformed IIN -> INVALID_ARGUMENT; a person unknown
to population -> NOT_FOUND; a death population does not record -> FAILED_PRECONDITION;
not connected to the bus -> FAILED_PRECONDITION; population (or, for a kept place,
education or pension) unreachable, or the attachment changed while its place was asked
about -> UNAVAILABLE.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from zhol.adapters.bus.inbox import Apply, EventRejected, Handler
from zhol.adapters.bus.population import ADDRESS_CHANGED, BIRTH_REGISTERED, DEATH_REGISTERED
from zhol.adapters.health import lookups as purposes
from zhol.adapters.health import rules
from zhol.adapters.health.lookups import Lookups
from zhol.adapters.health.model import (
    HealthError,
    InvalidInput,
    NotAllowed,
    NotFound,
    PlaceCheck,
    Unavailable,
)
from zhol.adapters.health.store import Decisions, peek_open_attachment
from zhol.adapters.runtime.store import today_in_kz
from zhol.bus.v1 import bus_pb2
from zhol.core.clock import Clock
from zhol.core.errors import ZholError
from zhol.core.iin import Iin
from zhol.population.v1 import population_pb2

T = TypeVar("T")
M = TypeVar("M", bound=Message)

_STATUS: tuple[tuple[type[HealthError], grpc.StatusCode], ...] = (
    (InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (NotAllowed, grpc.StatusCode.FAILED_PRECONDITION),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
)

TOPICS: tuple[str, ...] = (BIRTH_REGISTERED, DEATH_REGISTERED, ADDRESS_CHANGED)


def event_handlers(lookups: Lookups | None, clock: Clock, db_path: Path) -> dict[str, Handler]:
    """topic -> handler, for ``EventSinkServicer`` (``lookups`` None: no bus); ``db_path``
    is health's database, looked at (read-only) before the bus reads of a move."""
    handlers = _Handlers(lookups, clock, db_path)
    return {
        BIRTH_REGISTERED: handlers.birth_registered,
        DEATH_REGISTERED: handlers.death_registered,
        ADDRESS_CHANGED: handlers.address_changed,
    }


class _Handlers:
    def __init__(self, lookups: Lookups | None, clock: Clock, db_path: Path) -> None:
        self._lookups = lookups
        self._clock = clock
        self._db_path = db_path

    async def birth_registered(self, delivery: bus_pb2.EventDelivery) -> Apply:
        event = _parse(delivery, population_pb2.BirthRegistered)
        child = _iin(event.child_iin, "child_iin")
        mother = _iin(event.mother_iin, "mother_iin")
        person = await self._ask(self._bus().person(child, purpose=purposes.PURPOSE_NEWBORN))
        if person.deceased:
            return _nothing
        birth_date = _date(person.birth_date) or _date(event.birth_date)
        if birth_date is None:
            raise EventRejected(grpc.StatusCode.FAILED_PRECONDITION, "no birth date on record")
        home = None
        if person.HasField("address") and person.address.district:
            home = (person.address.region, person.address.district)
        source = f"birth act {event.act_id}" if event.act_id else "birth registration"
        return self._decide(
            lambda d: d.attach_newborn(child, mother, birth_date, home=home, source=source)
        )

    async def death_registered(self, delivery: bus_pb2.EventDelivery) -> Apply:
        event = _parse(delivery, population_pb2.DeathRegistered)
        iin = _iin(event.iin, "iin")
        person = await self._ask(self._bus().person(iin, purpose=purposes.PURPOSE_DEATH))
        if not person.deceased:
            raise EventRejected(
                grpc.StatusCode.FAILED_PRECONDITION, "population records no death of the person"
            )
        death_date = _date(person.death_date) or _date(event.death_date)
        if death_date is None:
            raise EventRejected(grpc.StatusCode.FAILED_PRECONDITION, "no death date on record")
        return self._decide(lambda d: d.close_on_death(iin, death_date))

    async def address_changed(self, delivery: bus_pb2.EventDelivery) -> Apply:
        event = _parse(delivery, population_pb2.AddressChanged)
        iin = _iin(event.iin, "iin")
        bus = self._bus()
        address = await self._ask(bus.address(iin, purpose=purposes.PURPOSE_MOVE))
        region, district = address.region, address.district
        checked = None
        current = peek_open_attachment(self._db_path, iin)
        if (current is not None and current.basis in rules.KEPT_ON_MOVE
                and not current.clinic.serves(region, district)):
            # a place of work, study or temporary stay the law lets the person keep: asked
            # again now, as AttachToClinic asks it; kept only while it holds
            holds = await self._ask(bus.place_holds(
                iin, current.basis, (current.clinic.region, current.clinic.district),
                today_in_kz(self._clock), purpose=purposes.PURPOSE_MOVE_PLACE,
                schools_purpose=purposes.PURPOSE_MOVE_SCHOOLS,
            ))
            checked = PlaceCheck(current.clinic.clinic_id, current.basis, holds)
        return self._decide(lambda d: d.follow_address(iin, region, district, checked))

    # -- helpers -----------------------------------------------------------------------

    def _bus(self) -> Lookups:
        if self._lookups is None:
            raise EventRejected(grpc.StatusCode.FAILED_PRECONDITION, "not connected to the bus")
        return self._lookups

    @staticmethod
    async def _ask(read: Awaitable[T]) -> T:
        try:
            return await read
        except HealthError as err:
            raise _rejected(err) from None

    def _decide(self, decide: Callable[[Decisions], object]) -> Apply:
        clock = self._clock

        def apply(conn: sqlite3.Connection) -> None:
            try:
                decide(Decisions(conn, clock))
            except HealthError as err:
                raise _rejected(err) from None

        return apply


def _nothing(_conn: sqlite3.Connection) -> None:
    """The event needs no decision (recorded in the inbox only)."""


def _parse(delivery: bus_pb2.EventDelivery, kind: type[M]) -> M:
    try:
        return kind.FromString(delivery.payload)
    except DecodeError:
        raise EventRejected(
            grpc.StatusCode.INVALID_ARGUMENT, f"payload is not a {kind.DESCRIPTOR.full_name}"
        ) from None


def _iin(text: str, field: str) -> Iin:
    try:
        return Iin.parse(text)
    except ZholError as err:
        raise EventRejected(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {err.detail}") from None


def _date(message: population_pb2.Date) -> dt.date | None:
    if message.year == 0 and message.month == 0 and message.day == 0:
        return None
    try:
        return dt.date(message.year, message.month, message.day)
    except ValueError:
        return None


def _rejected(err: HealthError) -> EventRejected:
    for kind, status in _STATUS:
        if isinstance(err, kind):
            return EventRejected(status, str(err))
    return EventRejected(grpc.StatusCode.FAILED_PRECONDITION, str(err))
