"""The retirement scenario: find who reached retirement age, assign the age pension.

1. Page through the population registry (``ListPersons``; one read per page, no single
   data subject) and keep the living persons whose retirement date by the rule table
   (``rules.retirement_date``: sex and birth date, the age in force in the year it is
   reached) is on or before ``as_of``.
2. Leave out those who already have an age pension (our own table).
3. For each of the others read the person again (``GetPerson``, with the citizen as the
   data subject, so the gateways' logs and the citizen's portal show the read) and, for
   a woman, her family (``GetFamily``: children's care years count as service).
4. Calculate from contributions, employment periods and savings, and write the
   assignment with its breakdown, the sources read and its payments, enqueueing
   ``PensionAssigned`` in the same transaction (one transaction per person).

A second run finds the same persons in step 2 and assigns nobody twice; two runs at
once cannot either (the schema allows one age pension per IIN).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from zhol.adapters.pension import rules
from zhol.adapters.pension.decisions import RetirementFacts
from zhol.adapters.pension.model import NotFound, PensionAssignment, PensionError, RetirementRun
from zhol.adapters.pension.sources import RecordingReader, birth_date_in_iin, birth_date_of
from zhol.population.v1 import population_pb2

DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 1000
CONCURRENT_READS = 8


@dataclass(frozen=True, slots=True)
class Candidate:
    iin: str
    female: bool
    reached: rules.RetirementDate


Write = Callable[[RetirementFacts], Awaitable[PensionAssignment | None]]
Known = Callable[[list[str]], Awaitable[set[str]]]


def candidate(person: population_pb2.Person, as_of: dt.date) -> Candidate | None:
    """A living person of retirement age on ``as_of`` (by the rule table), else None."""
    if person.deceased or person.sex == population_pb2.SEX_UNSPECIFIED:
        return None
    try:
        born = birth_date_of(person)
    except PensionError:  # a record without a valid birth date is no candidate
        return None
    female = person.sex == population_pb2.SEX_FEMALE
    reached = rules.retirement_date(born, female)
    if reached.reached_on > as_of:
        return None
    return Candidate(person.iin, female, reached)


async def assign_retirement_pensions(
    reads: RecordingReader,
    as_of: dt.date,
    *,
    page_size: int,
    with_age_pension: Known,
    write: Write,
) -> RetirementRun:
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    scanned = 0
    found: list[Candidate] = []
    token = ""
    first_page = True
    while True:
        page = await reads.list_persons(
            size, token,
            purpose=f"pension: retirement age search as of {as_of.isoformat()}"
            " (birth date, sex)",
            fact="persons of retirement age (birth date, sex, living)",
            record=first_page,
        )
        first_page = False
        scanned += len(page.persons)
        for person in page.persons:
            match = candidate(person, as_of)
            if match is not None:
                found.append(match)
        token = page.next_page_token
        if not token:
            break
    already = await with_age_pension([c.iin for c in found])
    pending = [c for c in found if c.iin not in already]
    limit = asyncio.Semaphore(CONCURRENT_READS)
    skipped: list[str] = []

    async def one(match: Candidate) -> PensionAssignment | None:
        async with limit:
            try:
                facts = await _facts(reads.fork(), match, as_of)
            except NotFound:
                skipped.append(match.iin)
                return None
            if facts is None:
                return None
            return await write(facts)

    results = await asyncio.gather(*(one(c) for c in pending))
    assigned = tuple(sorted((a for a in results if a is not None), key=lambda a: a.iin))
    return RetirementRun(as_of, assigned, scanned, len(found), len(already), tuple(skipped))


async def _facts(reads: RecordingReader, match: Candidate, as_of: dt.date
                 ) -> RetirementFacts | None:
    person = await reads.get_person(
        match.iin, purpose="pension: age pension assignment (birth date, sex, living)",
        fact="birth date and sex: the retirement age and the day it is reached",
    )
    fresh = candidate(person, as_of)
    if fresh is None:  # died or was corrected since the list was read
        return None
    children: tuple[dt.date, ...] = ()
    if fresh.female:
        family = await reads.get_family(
            match.iin, purpose="pension: age pension, child-care years of service (children)",
            fact="children: years caring for each child under three count as service",
        )
        children = tuple(
            born for c in family.children if (born := birth_date_in_iin(c.iin)) is not None
        )
    return RetirementFacts(
        fresh.iin, fresh.female, fresh.reached, children, as_of, reads.sources
    )
