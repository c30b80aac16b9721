"""Claims citizens make to the pension system over gRPC (zhol.pension.v1.PensionClaims,
served beside PensionRegistry on the adapter's port; not a bus service).

``ClaimBurialBenefit``: the budget's burial payment to the person who arranged the
burial. Population is asked over the bus, as for every decision (the reads are kept as
the decision's sources): that the deceased is recorded as deceased, and the death date;
that the claimant is a living person. What the deceased received on the death date is
pension's own record (``decisions.decide_burial_claim``). Refusals are plain gRPC
statuses, nothing written: a malformed IIN or the claimant naming themselves
INVALID_ARGUMENT; no death recorded, an unknown or deceased claimant, nothing due, no
rule for the death date, not connected to the bus FAILED_PRECONDITION; a burial payment
already decided for the death ALREADY_EXISTS; population unreachable UNAVAILABLE.
"""

from __future__ import annotations

import datetime as dt
import logging

import grpc

from zhol.adapters.bus.population import PopulationReader
from zhol.adapters.pension import decisions
from zhol.adapters.pension.handlers import STATUS
from zhol.adapters.pension.model import InvalidInput, NotAllowed, NotFound
from zhol.adapters.pension.service import benefit_pb
from zhol.adapters.pension.sources import RecordingReader
from zhol.adapters.pension.store import PensionStore
from zhol.adapters.runtime.service import RequestParser, StorePair, rpc_errors
from zhol.core.clock import Clock
from zhol.pension.v1 import claims_pb2 as cpb
from zhol.pension.v1 import claims_pb2_grpc as cpb_grpc
from zhol.pension.v1 import pension_pb2 as pb
from zhol.population.v1 import population_pb2

log = logging.getLogger("zhol.adapters.pension")

_rpc = rpc_errors(STATUS, log, "pension")
_parse = RequestParser(InvalidInput)

PURPOSE_DEATH = "pension: burial payment claim (the death and its date)"
PURPOSE_CLAIMANT = "pension: burial payment claim (the claimant is living)"


class PensionClaimsServicer(cpb_grpc.PensionClaimsServicer):
    def __init__(self, stores: StorePair[PensionStore], clock: Clock,
                 population: PopulationReader | None) -> None:
        self._stores = stores
        self._clock = clock
        self._population = population

    @_rpc
    async def ClaimBurialBenefit(
        self, request: cpb.ClaimBurialBenefitRequest, context: grpc.aio.ServicerContext
    ) -> pb.Benefit:
        claimant = _parse.iin(request.claimant_iin, "claimant_iin")
        deceased = _parse.iin(request.deceased_iin, "deceased_iin")
        if claimant.value == deceased.value:
            raise InvalidInput("the claimant cannot be the deceased")
        if self._population is None:
            raise NotAllowed("not connected to the bus")
        reads = RecordingReader(self._population, self._clock)
        death_date = died_on(await _person(
            reads, deceased.value, PURPOSE_DEATH, "registered as deceased, the death date"))
        arranger = await _person(reads, claimant.value, PURPOSE_CLAIMANT,
                                 "the claimant is a living person")
        if arranger.deceased:
            raise NotAllowed("population records the claimant as deceased")
        claim = decisions.BurialClaim(claimant.value, deceased.value, death_date,
                                      reads.sources)
        benefit_id = await self._stores.write(self._write, claim, notify=False)
        self._stores.committed()  # BenefitAssigned enqueued
        log.info("burial payment claimed", extra={"benefit_id": benefit_id})
        return benefit_pb(self._stores.reader.get_benefit(benefit_id))

    def _write(self, claim: decisions.BurialClaim) -> str:
        writer = self._stores.writer
        with writer.transaction() as conn:
            return decisions.decide_burial_claim(conn, claim, today=writer.today(),
                                                 now_ms=self._clock.now_ms())


async def _person(reads: RecordingReader, iin: str, purpose: str, fact: str
                  ) -> population_pb2.Person:
    try:
        return await reads.get_person(iin, purpose=purpose, fact=fact)
    except NotFound:  # a person population does not know: no death, no claimant
        raise NotAllowed("population does not know this person") from None


def died_on(person: population_pb2.Person) -> dt.date:
    """The death date population records; NotAllowed when it records no death."""
    day = person.death_date
    if not person.deceased or (day.year, day.month, day.day) == (0, 0, 0):
        raise NotAllowed("population records no death of this person")
    try:
        return dt.date(day.year, day.month, day.day)
    except ValueError:
        raise NotAllowed("population's death date is not a valid date") from None
