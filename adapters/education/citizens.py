"""Reading a child's facts from the population registry over the bus (once-only).

Education stores none of them: each decision asks population (``GetPerson``, which
carries the birth date, whether the person died and the registered address) with a
purpose that both gateways log and the citizen can see, and turns the answer into a
``Citizen`` for that decision only.

| population / bus answer                       | becomes                                |
|-----------------------------------------------|----------------------------------------|
| NOT_FOUND from population itself              | ``NotFound`` (unknown person)          |
| UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_...  | ``SourceFailed`` with that status      |
| any other failure (bus refusal, access ...)   | ``SourceFailed`` FAILED_PRECONDITION   |
| no bus configured (``gateway_address`` "")    | ``NotAllowed``: not connected          |

``now`` is for answers, not decisions: it never raises for a failed read but returns
the failure as a ``PersonRead`` status, so the answer is made from education's own
facts with the child part marked absent.
"""

from __future__ import annotations

import datetime as dt

import grpc

from zhol.adapters.bus.client import BusCallError
from zhol.adapters.bus.population import PersonRead, PopulationReader, read_current
from zhol.adapters.education.model import Citizen, NotAllowed, NotFound, SourceFailed
from zhol.core.iin import Iin
from zhol.population.v1 import population_pb2

PURPOSE_QUEUE_REQUEST = "kindergarten queue application: age and district of the child"
PURPOSE_NEWBORN = "kindergarten queue for a newborn: district of the family"
PURPOSE_ADDRESS_CHANGED = "kindergarten queue after an address change: new district"
PURPOSE_DEATH = "kindergarten queue and school enrolment after a registered death"
PURPOSE_ENROLMENT = "school enrolment: age and district of the child"
PURPOSE_STUDY = "college or university study: the student exists and is alive"
PURPOSE_QUEUE_ANSWER = "kindergarten queue answer: the child's name and family's district"
PURPOSE_ENROLMENTS_ANSWER = "school enrolments answer: the child's name and family's district"

_PASSED_ON = frozenset({
    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
})


class Citizens:
    """The population registry as education sees it; ``reader`` None = no bus."""

    def __init__(self, reader: PopulationReader | None) -> None:
        self._reader = reader

    @property
    def connected(self) -> bool:
        return self._reader is not None

    async def now(self, iin: Iin, *, purpose: str) -> PersonRead:
        """The child for one answer (``GetQueuePosition``, ``ListEnrolments``): never
        stored; a failed read, or no bus, is a status, not an exception."""
        return await read_current(self._reader, iin.value, purpose=purpose)

    async def read(self, iin: Iin, *, purpose: str) -> Citizen:
        if self._reader is None:
            raise NotAllowed("the education system is not connected to the bus")
        try:
            person = await self._reader.get_person(iin.value, purpose=purpose)
        except BusCallError as err:
            if err.status is grpc.StatusCode.NOT_FOUND and err.from_provider:
                raise NotFound(f"population has no person with IIN {iin}") from None
            origin = err.zhol_error or "population"
            status = err.status if err.status in _PASSED_ON else (
                grpc.StatusCode.FAILED_PRECONDITION
            )
            raise SourceFailed(
                status, f"cannot read the population registry ({origin}: {err.status.name})"
            ) from None
        return citizen_from(iin, person)


def citizen_from(iin: Iin, person: population_pb2.Person) -> Citizen:
    """A ``Citizen`` from a ``zhol.population.v1.Person`` (the edge: protobuf ends here)."""
    birth = person.birth_date
    try:
        birth_date = dt.date(birth.year, birth.month, birth.day)
    except ValueError:
        raise SourceFailed(grpc.StatusCode.FAILED_PRECONDITION,
                           "population answered without a valid birth date") from None
    region = district = None
    if person.HasField("address"):
        region, district = person.address.region or None, person.address.district or None
    return Citizen(iin, birth_date, person.deceased, region, district)
