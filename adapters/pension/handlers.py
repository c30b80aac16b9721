"""Events the pension system receives and the decisions they trigger (proactive services).

- ``zhol.population.v1.BirthRegistered``: GetFamily(mother), her children give the
  child's birth order -> the childbirth lump sum and the child-care allowance to the
  mother, each once per child.
- ``zhol.population.v1.DeathRegistered``: GetPerson(deceased) confirms the death;
  GetFamily, then GetPerson of the spouse or of adult children (living?) and of each
  child under 18 by the birth date in its IIN (living, birth date) -> the deceased's
  pensions, benefits and their later payments stop; the burial payments go to the
  spouse, else the eldest living adult child (once each per deceased): the budget's when
  the deceased received a pension or a state social benefit on the death date, the one
  from pension savings when the deceased had savings (an INFO line says which was not
  decided and why); each living child
  under 18 on the death date gets a survivor pension (once per child and deceased), and
  so does each living child of 18 to 22 whose studies education (``ListStudies``) shows
  a full-time study at a college or for a bachelor's degree in force on the death date
  (rules.SURVIVOR_STUDENT: paid until its last day, at most the day before the 23rd
  birthday); such a student counts among the dependants. A failed read of education
  refuses the event like a failed population read (UNAVAILABLE: retried), so a student
  is never dropped for want of an answer.
  For each such child GetFamily(child) and GetPerson of the other parent: when
  population records the other parent as deceased too, the child is an orphan and gets
  the orphan's pension (1.54 PM from 1 July 2023), which replaces the child's survivor
  pension for the first death from the month of the later death.
- ``zhol.health.v1.DisabilityEstablished``: GetPerson(iin), known and living -> the
  disability benefit by group, once per conclusion. A child (under 18 on from_date by
  population's birth date): GetFamily(child), GetPerson of the mother, else the father
  -> the carer's benefit to the first living one, once per conclusion (none, and an INFO
  line, when no parent is living or known).

A handler parses and checks the payload, makes its reads (no transaction open) and
returns the write (``Apply``) that the inbox runs in one transaction with its own
record. Refusals are ``EventRejected`` and write nothing: a malformed payload is
INVALID_ARGUMENT, a person (or mother, or child) unknown to population NOT_FOUND, a
contradiction with population (a "death" of a living person, an event for a deceased
person) FAILED_PRECONDITION, an unreachable population UNAVAILABLE.

Birth order: the mother's children (from GetFamily) born on or before this child, by
the birth date their IINs encode, twins ordered by IIN; the child must be one of them.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections.abc import Callable, Mapping
from typing import Protocol, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from zhol.adapters.bus.inbox import Apply, EventRejected, Handler
from zhol.adapters.bus.population import PopulationReader
from zhol.adapters.pension import calculation, decisions, rules
from zhol.adapters.pension.model import (
    AlreadyRecorded,
    InvalidInput,
    NotAllowed,
    NotFound,
    PensionError,
    Unavailable,
)
from zhol.adapters.pension.sources import (
    RecordingReader,
    StudyReader,
    age_on,
    birth_date_in_iin,
    birth_date_of,
)
from zhol.adapters.runtime.store import today_in_kz
from zhol.bus.v1 import bus_pb2
from zhol.core.clock import Clock
from zhol.core.errors import ZholError
from zhol.core.iin import Iin
from zhol.health.v1 import health_pb2
from zhol.population.v1 import population_pb2

M = TypeVar("M", bound=Message)

log = logging.getLogger("zhol.adapters.pension")

BIRTH_REGISTERED = population_pb2.BirthRegistered.DESCRIPTOR.full_name
DEATH_REGISTERED = population_pb2.DeathRegistered.DESCRIPTOR.full_name
DISABILITY_ESTABLISHED = health_pb2.DisabilityEstablished.DESCRIPTOR.full_name

STATUS: tuple[tuple[type[PensionError], grpc.StatusCode], ...] = (
    (InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyRecorded, grpc.StatusCode.ALREADY_EXISTS),
    (NotAllowed, grpc.StatusCode.FAILED_PRECONDITION),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
)


def status_of(err: PensionError) -> grpc.StatusCode:
    for kind, status in STATUS:
        if isinstance(err, kind):
            return status
    return grpc.StatusCode.INTERNAL


def rejected(err: PensionError) -> EventRejected:
    return EventRejected(status_of(err), str(err))


class PensionEvents:
    """The handlers, bound to a population reader (None: not connected to the bus)."""

    def __init__(self, reader: PopulationReader | None, clock: Clock,
                 education: StudyReader | None = None) -> None:
        self._reader = reader
        self._clock = clock
        self._education = education

    def handlers(self) -> Mapping[str, Handler]:
        return {
            BIRTH_REGISTERED: self.on_birth_registered,
            DEATH_REGISTERED: self.on_death_registered,
            DISABILITY_ESTABLISHED: self.on_disability_established,
        }

    # -- handlers ----------------------------------------------------------------------

    async def on_birth_registered(self, delivery: bus_pb2.EventDelivery) -> Apply:
        event = _decode(population_pb2.BirthRegistered, delivery)
        try:
            mother = _iin(event.mother_iin, "mother_iin")
            child = _iin(event.child_iin, "child_iin")
            birth_date = _date(event.birth_date, "birth_date")
            act = f" (act {event.act_id})" if event.act_id else ""
            reads = self._reads()
            family = await reads.get_family(
                mother,
                purpose=f"pension: childbirth benefit and child-care allowance{act},"
                " birth order from the mother's children",
                fact="the mother's children: the child's birth order",
            )
            order = birth_order(child, birth_date, [c.iin for c in family.children])
            facts = decisions.BirthFacts(
                mother, child, birth_date, order, event.act_id, reads.sources
            )
            # Refuse now (not in the transaction) when no rule covers the birth year.
            calculation.birth_lump_sum(order, birth_date)
        except PensionError as err:
            raise rejected(err) from None
        return self._apply(lambda conn, today, now: decisions.decide_birth(
            conn, facts, today=today, now_ms=now))

    async def on_death_registered(self, delivery: bus_pb2.EventDelivery) -> Apply:
        event = _decode(population_pb2.DeathRegistered, delivery)
        try:
            iin = _iin(event.iin, "iin")
            death_date = _date(event.death_date, "death_date")
            act = f" (act {event.act_id})" if event.act_id else ""
            reads = self._reads()
            person = await reads.get_person(
                iin, purpose=f"pension: stop payments on death{act}",
                fact="registered as deceased",
            )
            if not person.deceased:
                raise NotAllowed(f"population does not record the death of {iin}")
            family = await reads.get_family(
                iin, purpose=f"pension: burial benefit and survivor pensions to the family{act}",
                fact="spouse and children of the deceased",
            )
            # Each decision lists the reads it rests on: the two above and its own.
            burial_reads = reads.fork()
            recipient, relation = await burial_recipient(burial_reads, family, death_date, act)
            survivors = await survivor_children(reads, family, death_date, act)
            facts = decisions.DeathFacts(
                iin, death_date, event.act_id, recipient, relation, burial_reads.sources,
                survivors,
            )
            # Refuse now (not in the transaction) when no rule covers the death year.
            if recipient is not None:
                calculation.burial_benefit(death_date, relation, "")
                rules.BURIAL_SAVINGS.row(death_date)
            dependants = decisions.family_dependants(facts)
            if dependants:
                calculation.survivor_pension(dependants, death_date, survivors[0].birth_date)
        except PensionError as err:
            raise rejected(err) from None
        event_id = delivery.event_id

        def decide(conn: sqlite3.Connection, today: dt.date, now: int) -> None:
            outcome = decisions.decide_death(conn, facts, today=today, now_ms=now)
            for reason in outcome.no_burial:  # the decision log: why no burial payment
                log.info("death: no %s", reason, extra={"event_id": event_id})

        return self._apply(decide)

    async def on_disability_established(self, delivery: bus_pb2.EventDelivery) -> Apply:
        event = _decode(health_pb2.DisabilityEstablished, delivery)
        try:
            iin = _iin(event.iin, "iin")
            if event.group not in rules.DISABILITY_GROUPS:
                raise InvalidInput("group must be 1, 2 or 3")
            from_date = _date(event.from_date, "from_date")
            to_date = _optional_date(event.to_date, "to_date")
            if to_date is not None and to_date < from_date:
                raise InvalidInput("to_date is before from_date")
            conclusion = event.conclusion_id.strip()
            if not conclusion or not conclusion.isprintable() or len(conclusion) > 64:
                raise InvalidInput("conclusion_id is required")
            reads = self._reads()
            person = await reads.get_person(
                iin, purpose=f"pension: disability benefit (conclusion {conclusion})",
                fact="person registered and living; birth date: a child or not",
            )
            if person.deceased:
                raise NotAllowed(f"person {iin} is deceased")
            born = birth_date_of(person)
            calculation.disability_benefit(event.group, from_date, born, event.since_childhood)
            carer = None
            if calculation.is_child_on(born, from_date):
                carer = await carer_of(reads.fork(), iin, born, conclusion)
                if carer is None:
                    log.info("disability of a child: no living parent known, no carer's"
                             " benefit", extra={"event_id": delivery.event_id})
                else:  # refuse now (not in the transaction) when no rule covers the year
                    calculation.carer_of_disabled_child(carer.relation, from_date, to_date,
                                                        born)
            facts = decisions.DisabilityFacts(
                iin, event.group, from_date, to_date, conclusion, reads.sources, carer, born,
                event.since_childhood,
            )
        except PensionError as err:
            raise rejected(err) from None
        return self._apply(lambda conn, today, now: decisions.decide_disability(
            conn, facts, today=today, now_ms=now))

    # -- helpers -----------------------------------------------------------------------

    def _reads(self) -> RecordingReader:
        if self._reader is None:
            raise NotAllowed("not connected to the bus")
        return RecordingReader(self._reader, self._clock, self._education)

    def _apply(self, write: Callable[[sqlite3.Connection, dt.date, int], object]) -> Apply:
        clock = self._clock

        def apply(conn: sqlite3.Connection) -> None:
            try:
                write(conn, today_in_kz(clock), clock.now_ms())
            except PensionError as err:
                raise rejected(err) from None

        return apply


def birth_order(child: str, birth_date: dt.date, children: list[str]) -> int:
    """The child's place among the mother's children, by birth date then IIN."""
    if child not in children:
        raise NotFound("the child is not among the mother's children")
    key = (birth_date, child)
    order = 0
    for sibling in children:
        born = birth_date if sibling == child else birth_date_in_iin(sibling)
        if born is not None and (born, sibling) <= key:
            order += 1
    return order


async def burial_recipient(
    reads: RecordingReader, family: population_pb2.Family, death_date: dt.date, act: str
) -> tuple[str | None, str]:
    """The spouse if living, else the eldest living adult child; (None, "") if nobody."""
    if family.HasField("spouse") and family.spouse.iin:
        spouse = await reads.get_person(
            family.spouse.iin, purpose=f"pension: burial benefit{act}, is the spouse living",
            fact="the spouse is living",
        )
        if not spouse.deceased:
            return spouse.iin, "spouse"
    children = sorted(
        (born, c.iin) for c in family.children
        if (born := birth_date_in_iin(c.iin)) is not None
    )
    adult = rules.BURIAL.adult_age
    for born, child_iin in children:
        if age_on(born, death_date) < adult:
            continue
        child = await reads.get_person(
            child_iin, purpose=f"pension: burial benefit{act}, an adult living child",
            fact="the child is living and adult",
        )
        if not child.deceased and age_on(birth_date_of(child), death_date) >= adult:
            return child.iin, "child"
    return None, ""


async def survivor_children(
    reads: RecordingReader, family: population_pb2.Family, death_date: dt.date, act: str
) -> tuple[decisions.Survivor, ...]:
    """The deceased's children due a survivor pension: living (now) and under the end
    age on the death date by population's birth date, or older but under the student's
    age limit and in full-time study then (education), youngest first. A child whose
    IIN says it was 23 or more on the death date is not read (nothing of it is needed);
    each other child is read once, in a reader forked from ``reads`` (its decision's
    sources), and a child of 18 or more has its studies read too."""
    end_age = rules.SURVIVOR.end_age
    until_age = rules.SURVIVOR_STUDENT.at(death_date).until_age
    children = sorted(
        ((born, c.iin) for c in family.children
         if (born := birth_date_in_iin(c.iin)) is not None
         and age_on(born, death_date) < until_age),
        reverse=True,
    )
    found: list[decisions.Survivor] = []
    for _born, child_iin in children:
        child_reads = reads.fork()
        child = await child_reads.get_person(
            child_iin, purpose=f"pension: survivor pension on a parent's death{act},"
            " the child's birth date and whether living",
            fact=f"the child is living and under {end_age} on the death date, or under"
            f" {until_age} (a full-time student)",
        )
        if child.deceased:
            continue
        born = birth_date_of(child)
        studies = None
        if end_age <= age_on(born, death_date) < until_age:
            studies = await child_reads.list_studies(
                child.iin, purpose=f"pension: survivor pension on a parent's death{act},"
                f" full-time study of a child of {end_age} or more",
                fact="a full-time study at a college or university in force on the death date",
            )
            if calculation.survivor_end(born, death_date, studies).study is None:
                continue  # of age and not in full-time study: not a dependant
        if age_on(born, death_date) < until_age:
            other_died_on = await other_parent_deceased(child_reads, child.iin, family.iin,
                                                        act)
            orphaned_on = None
            if other_died_on is not None:
                day = max(death_date, other_died_on)
                if rules.orphan_row(day) is not None:  # before it: the family's share
                    orphaned_on = day
            found.append(decisions.Survivor(
                child.iin, born, child_reads.sources, orphaned_on,
                other_died_on if orphaned_on and other_died_on != dt.date.min else None,
                studies))
    return tuple(found)


async def other_parent_deceased(reads: RecordingReader, child: str, deceased: str, act: str
                                ) -> dt.date | None:
    """Whether the child's other parent is deceased too (an orphan): the child's family
    read, then each other parent population records; their death date (``date.min``
    when population gives none), or None when any other parent is living, unknown to
    population, or none is recorded (a parent population does not know is not taken as
    deceased)."""
    family = await reads.get_family(
        child, purpose=f"pension: survivor pension on a parent's death{act}, the child's"
        " other parent (an orphan's pension)", fact="the child's mother and father",
    )
    others = [p.iin for p in family.parents
              if p.relation in ("mother", "father") and p.iin and p.iin != deceased]
    died: list[dt.date] = []
    for parent_iin in others:
        try:
            parent = await reads.get_person(
                parent_iin, purpose=f"pension: survivor pension on a parent's death{act},"
                " is the other parent living", fact="whether the other parent is living",
            )
        except NotFound:
            return None
        if not parent.deceased:
            return None
        died.append(_optional_date(parent.death_date, "death_date") or dt.date.min)
    return max(died) if died else None


def carer_candidates(family: population_pb2.Family) -> list[tuple[str, str]]:
    """(relation, iin) of the child's parents in the rule's order of preference (mother,
    then father); a relation population does not record is left out."""
    return [(relation, parent.iin) for relation in rules.CARER_OF_DISABLED_CHILD.parents
            for parent in family.parents if parent.relation == relation and parent.iin]


async def carer_of(reads: RecordingReader, child: str, born: dt.date, conclusion: str
                   ) -> decisions.CarerFacts | None:
    """The parent due the carer's benefit: the first living of the child's parents in
    the rule's order, each read only if the one before is not living; None if nobody.
    ``reads``: the carer decision's own (it starts with the child's read)."""
    family = await reads.get_family(
        child, purpose=f"pension: benefit to a parent raising a disabled child (conclusion"
        f" {conclusion}), the child's parents", fact="the child's mother and father",
    )
    for relation, parent_iin in carer_candidates(family):
        try:
            parent = await reads.get_person(
                parent_iin, purpose=f"pension: benefit to a parent raising a disabled child"
                f" (conclusion {conclusion}), is the {relation} living",
                fact=f"the {relation} is living",
            )
        except NotFound:  # a link population cannot resolve: that parent is not known
            continue
        if not parent.deceased:
            return decisions.CarerFacts(parent.iin, relation, born, reads.sources)
    return None


def _decode(message_type: type[M], delivery: bus_pb2.EventDelivery) -> M:
    try:
        return message_type.FromString(delivery.payload)
    except DecodeError:
        raise EventRejected(
            grpc.StatusCode.INVALID_ARGUMENT, f"payload is not a {delivery.topic}"
        ) from None


def _iin(text: str, field: str) -> str:
    try:
        return Iin.parse(text).value
    except ZholError as err:
        raise InvalidInput(f"{field}: {err.detail}") from None


class _DateMessage(Protocol):
    """A Date of any agency's proto package (population's, health's...): the same fields."""

    @property
    def year(self) -> int: ...
    @property
    def month(self) -> int: ...
    @property
    def day(self) -> int: ...


def _optional_date(message: _DateMessage, field: str) -> dt.date | None:
    year, month, day = message.year, message.month, message.day
    if year == 0 and month == 0 and day == 0:
        return None
    try:
        return dt.date(year, month, day)
    except (ValueError, OverflowError):
        raise InvalidInput(f"{field} is not a valid date") from None


def _date(message: _DateMessage, field: str) -> dt.date:
    day = _optional_date(message, field)
    if day is None:
        raise InvalidInput(f"{field} is required")
    return day
