"""The health system's rule tables and the pure decisions built on them (no I/O).

Rule tables (parameters, not constants buried in code):

- ``SOCIAL_CATEGORIES``: the social categories for which the state pays the
  compulsory health insurance premium (DOMAIN.md: about 15 of them). Everyone else is
  insured through contributions, which are pension's records (asked over the bus).
- ``AGE_CATEGORIES``: state-paid periods that follow from the birth date alone: a
  child under one, a preschool child until seven, a pupil until eighteen. A registered
  birth records all three for the newborn; the seed records them from the IIN.
- ``DISABILITY_CATEGORY``: the state-paid category a disability group brings: every
  person with a disability, group 3 too (``DISABILITY_SOURCE``). Groups 1 and 2 keep
  their category ``disabled_group_1_2``; group 3 has ``disabled_group_3``.
- ``NON_WORKING_PARENT``: a non-working parent of a child under three is state-insured.
  Derived at the moment of asking, never stored: the children and their birth dates
  from population (``GetFamily``, ``GetPerson``), "non-working" from pension's
  contributions (``IsInsuredByContributions``), by ``non_working_parent_period``.
- ``ATTACHMENT``: what a clinic attachment on request requires. Insurance is no
  condition (primary care is in the state-guaranteed volume); the clinic must serve
  the district of the person's registered (permanent) address or of their temporary
  registration in force today, both population's, of a school the person is enrolled
  in now (education), of the employer of an employment period in force today (pension:
  the place of work) or of a college or university of a study in force today
  (education: the place of study), asked in that order (``places_on``).
- ``RECORDED_GROUNDS``: state-paid categories resting on a fact another agency holds
  (carer lists, kandas status, penitentiary and detention lists), none of which is on
  the bus: an operator records the fact (``RecordStateInsuredGround``) and the
  category is derived from it at the moment of asking (``recorded_ground_period``):
  the carer and the kandas only in months they are non-working (``NON_WORKING_PARENT``'s
  test), the carer only while the person cared for has an active conclusion of group 1
  and is alive; prisoners and detainees whether or not they work.
- ``STUDENT``: a person with a full-time study at a college or university in force
  today is state-insured as a student. Derived at the moment of asking, never stored:
  the studies from education (``ListStudies``), by ``student_period``.
- ``KEPT_ON_MOVE``: the bases of an attachment that a move of the registered address
  does not end while the place still holds (``stays_after_move``): a temporary
  registration, a school, a workplace, a college or university in the clinic's
  district. An attachment by the registered address (or of unknown basis) follows the
  move to a clinic of the new district.
- ``SEED_PENSION_AGE``: the age from which the seed marks a person as a state-paid
  pensioner (synthetic data only; at run time that fact would come from pension).

Decisions:

- ``choose_clinic``: where a person is placed without choosing (newborn without an
  attached mother, a move to another district): the clinic of the district with the
  most free places, ties broken by the smaller clinic id, so the choice is
  deterministic.
- ``validate_conclusion``: what makes a commission's conclusion well-formed.
- ``overlaps``: two date periods (last day inclusive, None open-ended) share a day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from zhol.adapters.health.model import (
    Clinic,
    ConclusionRequest,
    DisabilityConclusion,
    GroundRequest,
    InvalidInput,
    StateInsuredGround,
)

# social category -> description. The state pays the premium for each of these.
SOCIAL_CATEGORIES: dict[str, str] = {
    "child_under_1": "child under one year",
    "preschool_child": "preschool child, one to six years",
    "pupil": "pupil, seven to seventeen years",
    "student": "full-time student (vocational, bachelor, master, doctoral)",
    "conscript": "conscript in military service",
    "disabled_group_1_2": "person with a disability of group 1 or 2",
    "disabled_group_3": "person with a disability of group 3",
    "parent_on_leave": "parent on leave caring for a child under three",
    "pregnant": "pregnant woman",
    "unemployed": "registered unemployed after losing a job",
    "targeted_assistance": "recipient of targeted social assistance",
    "pensioner": "age pensioner",
    "mother_of_many": "mother of many children (Altyn alka, Kumis alka)",
    "carer_of_disabled_child": "non-working parent caring for a disabled child",
    "war_veteran": "veteran of the Great Patriotic War or a person of equal standing",
    "disabled_child": "child with a disability",
    "non_working_parent_child_under_3": "non-working parent of a child under three",
    "carer_of_disabled_group_1": "non-working person caring for a person with a group-1 disability",
    "non_working_kandas": "non-working kandas (ethnic Kazakh repatriate with kandas status)",
    "non_working_house_arrest": "non-working person under house arrest",
    "prisoner": "person serving a sentence in a penal institution (not minimum security)",
    "detainee": "person held in a pre-trial detention facility",
}

# (social category, from age, until age): the period runs from the birthday at
# ``from age`` to the day before the birthday at ``until age``.
AGE_CATEGORIES: tuple[tuple[str, int, int], ...] = (
    ("child_under_1", 0, 1),
    ("preschool_child", 1, 7),
    ("pupil", 7, 18),
)

# disability group -> state-paid social category (None: no change of insurance).
DISABILITY_CATEGORY: dict[int, str | None] = {
    1: "disabled_group_1_2",
    2: "disabled_group_1_2",
    3: "disabled_group_3",
}
DISABILITY_SINCE = dt.date(2020, 1, 1)
DISABILITY_SOURCE = (
    'zakon.kz 6505805 "who the state insures" [o]: the state pays the compulsory health'
    " insurance contribution for every person with a disability, of any group"
)
DISABILITY_GROUPS: tuple[int, ...] = tuple(sorted(DISABILITY_CATEGORY))


@dataclass(frozen=True, slots=True)
class NonWorkingParentRule:
    category: str  # the social category it gives (SOCIAL_CATEGORIES)
    child_under: int  # age in years the youngest child has not reached yet
    # The parent counts as non-working in a month when pension holds no contribution
    # for it nor for the ``quiet_months_before`` calendar months before it (system
    # choice, docs/rules-health-education.md: the law does not say how it is decided).
    quiet_months_before: int
    since: dt.date
    source: str


NON_WORKING_PARENT = NonWorkingParentRule(
    category="non_working_parent_child_under_3",
    child_under=3,
    quiet_months_before=3,
    since=dt.date(2020, 1, 1),
    source=(
        'zakon.kz 6505805 "who the state insures" [o]; the Social Health Insurance Fund\'s'
        " Zhambyl branch (ru.jambylinfo.kz, \"who is exempt from CSHI contributions\"): one of"
        " the legal representatives of a child under three, a non-working parent;"
        ' "non-working": no contribution in the month nor the 3 months before (system choice)'
    ),
)


@dataclass(frozen=True, slots=True)
class AttachmentRule:
    requires_insurance: bool
    bases: tuple[str, ...]  # places whose district the clinic may serve, in asking order
    since: dt.date
    source: str


REGISTERED_ADDRESS = "registered_address"  # population's permanent address
TEMPORARY_ADDRESS = "temporary_address"  # population's temporary registration in force
SCHOOL = "school"  # the place of study: a school of an active enrolment (education)
WORKPLACE = "workplace"  # the place of work: an employer of a current employment (pension)
COLLEGE_OR_UNIVERSITY = "college_or_university"  # the place of study: an active study there

ATTACHMENT = AttachmentRule(
    requires_insurance=False,
    bases=(REGISTERED_ADDRESS, TEMPORARY_ADDRESS, SCHOOL, WORKPLACE, COLLEGE_OR_UNIVERSITY),
    since=dt.date(2020, 1, 1),
    source=(
        'egov.kz "choice of a clinic" (attachment to a primary care organisation): primary'
        " care is in the state-guaranteed volume of free medical care, attachment is by"
        " place of permanent or temporary residence, work or study [q]"
    ),
)


# The bases an attachment keeps after a move of the registered address while they hold
# (the law lets a person attach where they work or study, or live temporarily; a move of
# the permanent address takes none of these away). An attachment by the registered
# address, or of unknown basis ("": made before the basis was stored), follows the move.
KEPT_ON_MOVE: frozenset[str] = frozenset(
    {TEMPORARY_ADDRESS, SCHOOL, WORKPLACE, COLLEGE_OR_UNIVERSITY}
)


def stays_after_move(basis: str, *, serves_new_home: bool, place_holds: bool) -> bool:
    """Whether the open attachment stays when the registered address moves: its clinic
    serves the new home district, or its basis is one of ``KEPT_ON_MOVE`` and that place
    is still in force in the clinic's district (``place_holds``: asked over the bus)."""
    if serves_new_home:
        return True
    return basis in KEPT_ON_MOVE and place_holds


# Seed only: age at which a synthetic person counts as a state-paid pensioner.
SEED_PENSION_AGE: dict[bool, int] = {False: 63, True: 61}  # female -> age

# The earliest date a conclusion may start (older records are not kept electronically).
EARLIEST_CONCLUSION = dt.date(2000, 1, 1)


def add_years(day: dt.date, years: int) -> dt.date:
    """The same calendar day ``years`` later; 29 February becomes 1 March."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return dt.date(day.year + years, 3, 1)


def age_periods(birth_date: dt.date) -> tuple[tuple[str, dt.date, dt.date], ...]:
    """The state-paid periods the birth date alone gives: (category, first, last day)."""
    one_day = dt.timedelta(days=1)
    return tuple(
        (category, add_years(birth_date, low), add_years(birth_date, high) - one_day)
        for category, low, high in AGE_CATEGORIES
    )


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def next_month_start(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def non_working_parent_period(
    day: dt.date, children_born: Iterable[dt.date], *, paid_in_window: bool
) -> tuple[dt.date, dt.date] | None:
    """The state-paid period (first, last day) of a parent on ``day``, or None.

    ``children_born``: the birth dates of the parent's living children (population);
    ``paid_in_window``: pension holds a contribution for the month of ``day`` or one
    of the ``quiet_months_before`` months before it (the parent works). The period is
    the month of ``day``, cut to the day before the youngest child's third birthday
    (on that birthday the child is no longer under three) and to its birth.
    """
    rule = NON_WORKING_PARENT
    if day < rule.since or paid_in_window:
        return None
    born = [b for b in children_born if b <= day < add_years(b, rule.child_under)]
    if not born:
        return None
    youngest = max(born)
    last = min(next_month_start(day), add_years(youngest, rule.child_under)) - dt.timedelta(1)
    return max(month_start(day), min(born)), last


@dataclass(frozen=True, slots=True)
class RecordedGroundRule:
    category: str  # the social category it gives (SOCIAL_CATEGORIES)
    held_by: str  # who holds the fact in reality (not on the bus: an operator records it)
    non_working: bool  # counts only in months with no contribution (NON_WORKING_PARENT's test)
    cares_for_group: int | None  # the person cared for has an active conclusion of this group
    since: dt.date
    source: str


@dataclass(frozen=True, slots=True)
class PlacePeriod:
    """A period at a place another registry holds: an employment at an employer (pension)
    or a study at a college or university (education), with the place's district."""

    first: dt.date
    last: dt.date | None  # the last day, inclusive; None while it lasts
    region: str
    district: str
    form: str = ""  # a study's form (full_time, part_time); "" for an employment
    level: str = ""  # a study's level (vocational, bachelor, master, doctoral)

    def in_force(self, day: dt.date) -> bool:
        return self.first <= day and (self.last is None or day <= self.last)


def places_on(periods: Iterable[PlacePeriod], day: dt.date) -> frozenset[tuple[str, str]]:
    """The (region, district) of every period in force on ``day`` (the last day counts;
    a place without a district counts nowhere)."""
    return frozenset((p.region, p.district) for p in periods if p.in_force(day) and p.district)


@dataclass(frozen=True, slots=True)
class StudentRule:
    category: str  # the social category it gives (SOCIAL_CATEGORIES)
    forms: tuple[str, ...]  # the study forms that give it
    levels: tuple[str, ...]  # the study levels that give it
    since: dt.date
    source: str


_NON_WORKING = (
    '"non-working": no contribution in the month nor the 3 months before, as for'
    " NON_WORKING_PARENT (system choice)"
)
CARER_OF_GROUP_1 = "carer_of_disabled_group_1"
KANDAS = "non_working_kandas"
PRISONER = "prisoner"
DETAINEE = "detainee"
HOUSE_ARREST = "non_working_house_arrest"

RECORDED_GROUNDS: dict[str, RecordedGroundRule] = {
    rule.category: rule
    for rule in (
        RecordedGroundRule(
            category=CARER_OF_GROUP_1,
            held_by="carer list of the labour and social protection system",
            non_working=True,
            cares_for_group=1,
            since=dt.date(2022, 3, 28),
            source=(
                'zakon.kz 6505805 "who the state insures" [o], item 6: "non-working persons'
                ' caring for a person with a group-1 disability"; in the list since 28 March'
                " 2022 (ernur.kz after inbusiness.kz: the Minister of Health's order extending"
                " the list takes effect on 28 March 2022); the person cared for: an active"
                f" group-1 conclusion in health and alive (population); {_NON_WORKING}"
            ),
        ),
        RecordedGroundRule(
            category=KANDAS,
            held_by="kandas status of the migration system",
            non_working=True,
            cares_for_group=None,
            since=dt.date(2020, 1, 1),
            source=(
                'zakon.kz 6505805 "who the state insures" [o]: non-working kandas (named'
                ' "oralman" in the Law on compulsory social health insurance until 2021);'
                f" {_NON_WORKING}"
            ),
        ),
        RecordedGroundRule(
            category=HOUSE_ARREST,
            held_by="house arrest orders (courts and the police)",
            non_working=True,
            cares_for_group=None,
            since=dt.date(2022, 3, 28),
            source=(
                "ernur.kz after inbusiness.kz: the Minister of Health's order extending the"
                " list of those the state insures to non-working persons under house arrest"
                " (with the carers of a person with a group-1 disability) takes effect on 28"
                f" March 2022; {_NON_WORKING}"
            ),
        ),
        RecordedGroundRule(
            category=PRISONER,
            held_by="list of the criminal-executive committee (Ministry of Internal Affairs)",
            non_working=False,
            cares_for_group=None,
            since=dt.date(2020, 1, 1),
            source=(
                'zakon.kz 6505805 "who the state insures" [o], item 8: persons serving a'
                " court sentence in institutions of the criminal-executive system, except"
                " minimum-security institutions; whether or not they work"
            ),
        ),
        RecordedGroundRule(
            category=DETAINEE,
            held_by="list of the criminal-executive committee (Ministry of Internal Affairs)",
            non_working=False,
            cares_for_group=None,
            since=dt.date(2020, 1, 1),
            source=(
                'zakon.kz 6505805 "who the state insures" [o]: persons held in pre-trial'
                " detention facilities; whether or not they work"
            ),
        ),
    )
}
MAX_BASIS_LENGTH = 300


def validate_ground(request: GroundRequest, today: dt.date) -> RecordedGroundRule:
    """Refuse a malformed recorded fact with ``InvalidInput`` (the data is not consulted)."""
    rule = RECORDED_GROUNDS.get(request.social_category)
    if rule is None:
        raise InvalidInput(
            f"social_category must be one of {', '.join(sorted(RECORDED_GROUNDS))}"
        )
    if request.valid_from > today:
        raise InvalidInput("from_date is in the future")
    if request.valid_from < EARLIEST_CONCLUSION:
        raise InvalidInput(f"from_date is before {EARLIEST_CONCLUSION.isoformat()}")
    if request.valid_to is not None and request.valid_to < request.valid_from:
        raise InvalidInput("to_date is before from_date")
    basis = request.basis
    if not basis.strip() or len(basis) > MAX_BASIS_LENGTH or not basis.isprintable():
        raise InvalidInput(f"basis is required, printable, at most {MAX_BASIS_LENGTH} characters")
    if (request.cared_for is None) != (rule.cares_for_group is None):
        raise InvalidInput(
            f"cared_for_iin is required for {CARER_OF_GROUP_1} and only for it"
        )
    if request.cared_for == request.iin:
        raise InvalidInput("cared_for_iin is the person's own IIN")
    return rule


def active_conclusion(
    conclusions: Iterable[DisabilityConclusion], group: int, day: dt.date
) -> DisabilityConclusion | None:
    """The conclusion of ``group`` in force on ``day`` (conclusions never overlap)."""
    for conclusion in conclusions:
        if conclusion.group == group and overlaps(
            conclusion.valid_from, conclusion.valid_to, day, day
        ):
            return conclusion
    return None


def recorded_ground_period(
    day: dt.date,
    ground: StateInsuredGround,
    *,
    paid_in_window: bool,
    care: DisabilityConclusion | None = None,
) -> tuple[dt.date, dt.date | None] | None:
    """The state-paid period (first, last day; None open) a recorded fact gives on ``day``.

    ``paid_in_window``: pension holds a contribution for the month of ``day`` or one of
    the ``NON_WORKING_PARENT.quiet_months_before`` months before it (the person works;
    ignored by a category counted whether or not the person works). ``care``: for a
    carer, the living cared-for person's conclusion of the rule's group in force on
    ``day`` (None: none, or the person died). A non-working category covers the month of
    ``day`` only; each period is cut to the recorded one, the category's start and the
    conclusion's period.
    """
    rule = RECORDED_GROUNDS[ground.social_category]
    first, last = max(ground.valid_from, rule.since), ground.valid_to
    if not overlaps(first, last, day, day):
        return None
    if rule.cares_for_group is not None:
        if care is None or care.group != rule.cares_for_group or not overlaps(
            care.valid_from, care.valid_to, day, day
        ):
            return None
        first, last = max(first, care.valid_from), _earlier(last, care.valid_to)
    if rule.non_working:
        if paid_in_window:
            return None
        first = max(first, month_start(day))
        last = _earlier(last, next_month_start(day) - dt.timedelta(days=1))
    return first, last


def _earlier(first: dt.date | None, second: dt.date | None) -> dt.date | None:
    """The earlier of two last days, None being open-ended."""
    if first is None:
        return second
    return first if second is None else min(first, second)


STUDENT = StudentRule(
    category="student",
    forms=("full_time",),
    levels=("vocational", "bachelor", "master", "doctoral"),
    since=dt.date(2020, 1, 1),
    source=(
        'zakon.kz 6505805 "who the state insures" [o]: persons in full-time study at'
        " organisations of technical and vocational, higher and postgraduate education;"
        " part-time study gives no state-paid insurance"
    ),
)


def student_period(
    day: dt.date, studies: Iterable[PlacePeriod]
) -> tuple[dt.date, dt.date | None] | None:
    """The state-paid period (first day, last day or None) of a student on ``day``, or
    None: the full-time studies of ``STUDENT.levels`` in force on ``day``, from the
    earliest first day (not before the rule) to the latest last day (None while one is
    open)."""
    rule = STUDENT
    if day < rule.since:
        return None
    current = [s for s in studies
               if s.form in rule.forms and s.level in rule.levels and s.in_force(day)]
    if not current:
        return None
    first = max(rule.since, min(s.first for s in current))
    ends = [s.last for s in current]
    last = None if None in ends else max(e for e in ends if e is not None)
    return first, last


def choose_clinic(clinics: Iterable[Clinic]) -> Clinic | None:
    """The clinic with the most free places (then the smallest id); None if none."""
    best: Clinic | None = None
    for clinic in clinics:
        if best is None or (-clinic.free, clinic.clinic_id) < (-best.free, best.clinic_id):
            best = clinic
    return best


def overlaps(
    first_from: dt.date, first_to: dt.date | None, second_from: dt.date, second_to: dt.date | None
) -> bool:
    """Two periods (last day inclusive, None: open-ended) share at least one day."""
    return (second_to is None or first_from <= second_to) and (
        first_to is None or second_from <= first_to
    )


def validate_conclusion(request: ConclusionRequest, today: dt.date) -> None:
    """Refuse a malformed conclusion with ``InvalidInput`` (the data is not consulted)."""
    if request.group not in DISABILITY_CATEGORY:
        raise InvalidInput(f"group must be one of {', '.join(map(str, DISABILITY_GROUPS))}")
    if request.valid_from > today:
        raise InvalidInput("from_date is in the future")
    if request.valid_from < EARLIEST_CONCLUSION:
        raise InvalidInput(f"from_date is before {EARLIEST_CONCLUSION.isoformat()}")
    if request.valid_to is not None and request.valid_to < request.valid_from:
        raise InvalidInput("to_date is before from_date")


# The source of each rule above whose value cannot carry one itself (a plain number, a
# tuple, a mapping); the rule objects with a ``source`` carry theirs.
# tests/unit/test_rule_sources.py fails on any rule of this module with neither.
RULE_SOURCES: dict[str, str] = {
    "SOCIAL_CATEGORIES": 'zakon.kz 6505805 "who the state insures" [o]: the categories for'
    " which the state pays the compulsory health insurance contribution; the derived and"
    " recorded ones carry their own sources (NON_WORKING_PARENT, STUDENT, RECORDED_GROUNDS)",
    "AGE_CATEGORIES": "[o]: the state pays for children; the split into under one,"
    " preschool and pupil by age is a system choice (the categories' names only)",
    "DISABILITY_CATEGORY": DISABILITY_SOURCE,
    "DISABILITY_GROUPS": DISABILITY_SOURCE,
    "SEED_PENSION_AGE": "synthetic data only: the seed's pensioners (state-insured by [o]);"
    " at run time pension decides who receives a pension",
    "MAX_BASIS_LENGTH": "system choice: a recorded fact's basis is at most 300 characters",
    "KEPT_ON_MOVE": 'egov.kz "choice of a clinic" [q]: attachment by the place of permanent or'
    " temporary residence, work or study, so a move of the permanent address takes none of"
    " the others away; keeping it while that place holds is a system choice",
}
