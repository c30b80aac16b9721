"""What education does when population publishes an event (received through the bus).

| topic                                 | effect                                              |
|---------------------------------------|-----------------------------------------------------|
| zhol.population.v1.BirthRegistered    | the newborn joins the kindergarten queue of the     |
|                                       | district of its registered address (population gives |
|                                       | a newborn the mother's), reason newborn, once       |
| zhol.population.v1.AddressChanged     | a waiting child's place moves to the new district,  |
|                                       | keeping its queued_on date; the move is recorded     |
| zhol.population.v1.DeathRegistered    | the active queue entry is withdrawn, an active       |
|                                       | school enrolment ends                                |

Each handler first reads the person from population over the bus (no transaction
open), then returns the write that the bus inbox runs in one transaction with the
record of the delivery. An event that cannot be applied raises ``EventRejected`` and
writes nothing: a malformed payload or IIN (INVALID_ARGUMENT), a person population
does not know (NOT_FOUND), a district education does not serve, a death population
does not show, no bus (FAILED_PRECONDITION), population unreachable (UNAVAILABLE).
The gateway retries a rejected delivery and finally dead-letters it.

Events are facts, decisions are rules: a newborn who died before the event arrived,
or a child without a waiting entry whose address changed, is acknowledged with nothing
to do.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from zhol.adapters.bus.inbox import Apply, EventRejected, Handler
from zhol.adapters.bus.population import ADDRESS_CHANGED, BIRTH_REGISTERED, DEATH_REGISTERED
from zhol.adapters.education.citizens import (
    PURPOSE_ADDRESS_CHANGED,
    PURPOSE_DEATH,
    PURPOSE_NEWBORN,
    Citizens,
)
from zhol.adapters.education.model import Citizen, EducationError, status_for
from zhol.adapters.education.store import (
    record_address_change,
    record_death,
    record_newborn,
)
from zhol.adapters.runtime.store import date_in_kz, today_in_kz
from zhol.bus.v1 import bus_pb2
from zhol.core.clock import Clock
from zhol.core.errors import ZholError
from zhol.core.iin import Iin
from zhol.population.v1 import population_pb2

E = TypeVar("E", bound=Message)

TOPICS: tuple[str, ...] = (BIRTH_REGISTERED, ADDRESS_CHANGED, DEATH_REGISTERED)


class PopulationEvents:
    """The handlers for population's events, reading through ``citizens``."""

    def __init__(self, citizens: Citizens, clock: Clock) -> None:
        self._citizens = citizens
        self._clock = clock

    def handlers(self) -> dict[str, Handler]:
        return {
            BIRTH_REGISTERED: self.birth_registered,
            ADDRESS_CHANGED: self.address_changed,
            DEATH_REGISTERED: self.death_registered,
        }

    async def birth_registered(self, delivery: bus_pb2.EventDelivery) -> Apply:
        event = _payload(delivery, population_pb2.BirthRegistered)
        child = await self._read(_iin(event.child_iin, "child_iin"), PURPOSE_NEWBORN)
        now = self._clock.now_ms()
        today = today_in_kz(self._clock)
        occurred = date_in_kz(delivery.occurred_at_unix_ms) if delivery.occurred_at_unix_ms > 0 \
            else today
        return _guarded(lambda conn: record_newborn(conn, child, occurred, today, now))

    async def address_changed(self, delivery: bus_pb2.EventDelivery) -> Apply:
        event = _payload(delivery, population_pb2.AddressChanged)
        child = await self._read(_iin(event.iin, "iin"), PURPOSE_ADDRESS_CHANGED)
        now = self._clock.now_ms()
        today = today_in_kz(self._clock)
        return _guarded(lambda conn: record_address_change(conn, child, today, now))

    async def death_registered(self, delivery: bus_pb2.EventDelivery) -> Apply:
        event = _payload(delivery, population_pb2.DeathRegistered)
        person = await self._read(_iin(event.iin, "iin"), PURPOSE_DEATH)
        if not person.deceased:
            raise EventRejected(grpc.StatusCode.FAILED_PRECONDITION,
                                "population does not record this death")
        today = today_in_kz(self._clock)
        return _guarded(lambda conn: record_death(conn, person.iin, today))

    async def _read(self, iin: Iin, purpose: str) -> Citizen:
        try:
            return await self._citizens.read(iin, purpose=purpose)
        except EducationError as err:
            raise EventRejected(status_for(err), str(err)) from None


def _guarded(decide: Callable[[sqlite3.Connection], object]) -> Apply:
    """The write, with education's refusals turned into ``EventRejected``."""

    def apply(conn: sqlite3.Connection) -> None:
        try:
            decide(conn)
        except EducationError as err:
            raise EventRejected(status_for(err), str(err)) from None

    return apply


def _payload(delivery: bus_pb2.EventDelivery, kind: type[E]) -> E:
    try:
        return kind.FromString(delivery.payload)
    except DecodeError:
        raise EventRejected(grpc.StatusCode.INVALID_ARGUMENT,
                            f"payload is not a {kind.DESCRIPTOR.full_name}") from None


def _iin(text: str, field: str) -> Iin:
    try:
        return Iin.parse(text)
    except ZholError as err:
        raise EventRejected(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {err.detail}") from None
