"""The health system's gRPC service (zhol.health.v1.HealthRegistry).

Protobuf stays here: requests are parsed into typed values (``Iin.parse``, dates,
clinic ids) and store results are mapped back to messages. The adapter is the
provider IS itself, so failures are plain gRPC statuses, never ``zhol-error`` trailers:

| failure                                                    | status              |
|------------------------------------------------------------|---------------------|
| malformed IIN or clinic id, group outside 1..3, missing,   | INVALID_ARGUMENT    |
| impossible or future dates, to_date before from_date; a    |                     |
| ``read_mask`` path that is not a field of the answer       |                     |
| unknown clinic; person unknown to population; no open      | NOT_FOUND           |
| attachment                                                 |                     |
| already attached to that clinic; same conclusion again     | ALREADY_EXISTS      |
| clinic in another district than the person's registered    | FAILED_PRECONDITION |
| one, their temporary registration's, their school's,       |                     |
| employer's (current employment) and college's or           |                     |
| university's (current study) (insurance is no condition);  |                     |
| deceased; no registered district; clinic full;             |                     |
| overlapping conclusion; not connected to the bus           |                     |
| population, pension or education could not be asked        | UNAVAILABLE         |
| anything unexpected (logged, no detail sent)               | INTERNAL            |

``GetInsuranceStatus``: a state-paid period health recorded; else a recorded
``prisoner`` or ``detainee`` ground (``rules.RECORDED_GROUNDS``, nobody asked); else
insured through contributions (pension); else, for a parent of a living child under
three with no contribution this month nor the 3 before, the derived state-paid category
``non_working_parent_child_under_3`` (``rules.NON_WORKING_PARENT``: population's
GetFamily and GetPerson of the child, pension asked once more for this month); else a
recorded ``carer_of_disabled_group_1`` (the person cared for: a group-1 conclusion in
force here, alive in population) or ``non_working_kandas`` ground, with no contribution
this month either; else, for a person with a full-time study at a college or university
in force today, the derived category ``student`` (``rules.STUDENT``: education's
ListStudies). A failed read of any derivation is UNAVAILABLE, never "not insured".

``RecordStateInsuredGround`` / ``EndStateInsuredGround``: an operator records the facts
other agencies hold (not on the bus); bad input is INVALID_ARGUMENT
(``rules.validate_ground``), an overlap of the same category, a person cared for
without a group-1 conclusion in force on the first day, a deceased person or a
lengthened end FAILED_PRECONDITION, an unknown person or period NOT_FOUND.

``GetAttachment`` and ``GetInsuranceStatus`` also carry the person as population knows
them at the moment of the answer (name, birth date, registered address and district):
one GetPerson through the bus per answer, never stored. When that read fails (or the
bus is off) the answer is still made from health's own facts, with ``person`` unset
and ``person_status`` / ``person_reason`` saying why (``adapters.bus.population``). A
``read_mask`` without them (the caller has the person already) skips that read.

Reads of health's own data run on the event loop against a query-only connection;
writes run one at a time on a dedicated writer thread with its own connection. Reads
of other agencies go through the bus (``Lookups``) before the write, and the write
re-checks what it relies on inside its transaction. After a write that enqueued
events, ``on_commit`` (the outbox publisher's ``notify``) is called.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import grpc

from zhol.adapters.bus.population import NOT_CONNECTED, PERSON_FIELDS, PersonRead, show_person
from zhol.adapters.health import lookups as purposes
from zhol.adapters.health import rules
from zhol.adapters.health.lookups import PENSION_SUBSYSTEM, Lookups
from zhol.adapters.health.model import (
    AlreadyRecorded,
    Attachment,
    Clinic,
    ConclusionRequest,
    DetachReason,
    DisabilityConclusion,
    GroundRequest,
    HealthError,
    InsuranceCategory,
    InsurancePeriod,
    InsuranceStatus,
    InvalidInput,
    NotAllowed,
    NotFound,
    StateInsuredGround,
    Unavailable,
)
from zhol.adapters.health.store import HealthStore, date_pb
from zhol.adapters.runtime.service import Notify, RequestParser, StorePair, rpc_errors
from zhol.core.clock import Clock
from zhol.core.iin import Iin
from zhol.health.v1 import health_pb2 as pb
from zhol.health.v1 import health_pb2_grpc as pb_grpc

log = logging.getLogger("zhol.adapters.health")

_STATUS: tuple[tuple[type[HealthError], grpc.StatusCode], ...] = (
    (InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyRecorded, grpc.StatusCode.ALREADY_EXISTS),
    (NotAllowed, grpc.StatusCode.FAILED_PRECONDITION),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
)


_rpc = rpc_errors(_STATUS, log, "health")  # each RPC's failures become its status


class HealthRegistryServicer(pb_grpc.HealthRegistryServicer):
    """Serves one health database: ``reader`` on the loop, ``writer`` on its thread."""

    def __init__(self, stores: StorePair[HealthStore], lookups: Lookups | None) -> None:
        self._stores = stores
        self._reader = stores.reader
        self._writer = stores.writer
        self._lookups = lookups

    @classmethod
    def open(
        cls,
        db_path: Path,
        clock: Clock,
        lookups: Lookups | None,
        *,
        on_commit: Notify | None = None,
    ) -> HealthRegistryServicer:
        return cls(StorePair.open(HealthStore.open, db_path, clock, agency="health",
                                  on_commit=on_commit), lookups)

    def close(self) -> None:
        """Wait for a running write, then close both connections."""
        self._stores.close()

    # -- clinics and attachments -------------------------------------------------------

    @_rpc
    async def ListClinics(self, request: pb.ListClinicsRequest,
                          context: grpc.aio.ServicerContext) -> pb.ListClinicsResponse:
        clinics = self._reader.list_clinics(request.region, request.district)
        return pb.ListClinicsResponse(clinics=[clinic_pb(c) for c in clinics])

    @_rpc
    async def GetAttachment(self, request: pb.GetAttachmentRequest,
                            context: grpc.aio.ServicerContext) -> pb.Attachment:
        iin = parse_iin(request.iin, "iin")
        mask = parse_read_mask(request, pb.Attachment)
        answer = attachment_pb(self._reader.get_attachment(iin))
        if mask.wants_any(*PERSON_FIELDS):
            show_person(answer, await self._person(iin, purposes.PURPOSE_ATTACHMENT_PATIENT))
        return mask.apply(answer)

    @_rpc
    async def ListAttachments(self, request: pb.ListAttachmentsRequest,
                              context: grpc.aio.ServicerContext) -> pb.ListAttachmentsResponse:
        found = self._reader.list_attachments(parse_iin(request.iin, "iin"))
        return pb.ListAttachmentsResponse(attachments=[attachment_pb(a) for a in found])

    @_rpc
    async def AttachToClinic(self, request: pb.AttachToClinicRequest,
                             context: grpc.aio.ServicerContext) -> pb.Attachment:
        iin = parse_iin(request.iin, "iin")
        clinic = self._reader.get_clinic(request.clinic_id)
        self._refuse_if_settled(iin, clinic)
        bus = self._bus()
        address = await bus.address(iin, purpose=purposes.PURPOSE_ATTACH_DISTRICT)
        if not address.district:
            raise NotAllowed(f"{iin} has no registered district")
        region, district = address.region, address.district
        basis = rules.REGISTERED_ADDRESS
        if not clinic.serves(region, district):
            # rules.ATTACHMENT.bases: a temporary registration, a school, a workplace or a
            # college or university there serves too
            other = await self._other_basis(iin, clinic)
            if other is None:
                raise NotAllowed(
                    f"clinic {clinic.clinic_id} serves {clinic.district}, {clinic.region};"
                    " the person neither lives (permanently or temporarily), works nor"
                    " studies there"
                )
            basis, region, district = other, clinic.region, clinic.district
        # Today no insurance check: primary care is in the state-guaranteed volume
        # (rules.ATTACHMENT, egov.kz [q]); the table, not this code, says so.
        if rules.ATTACHMENT.requires_insurance:
            status = await self._insurance(iin, purposes.PURPOSE_ATTACH_INSURANCE)
            if not status.insured:
                raise NotAllowed(f"{iin} is not insured")
        decision = await self._stores.write(
            lambda: self._writer.attach_on_request(
                iin, clinic.clinic_id, region=region, district=district, basis=basis
            )
        )
        assert decision.opened is not None
        return attachment_pb(decision.opened)

    # -- insurance ---------------------------------------------------------------------

    @_rpc
    async def GetInsuranceStatus(self, request: pb.GetInsuranceStatusRequest,
                                 context: grpc.aio.ServicerContext) -> pb.InsuranceStatus:
        iin = parse_iin(request.iin, "iin")
        mask = parse_read_mask(request, pb.InsuranceStatus)
        status = await self._insurance(iin, purposes.PURPOSE_INSURANCE_STATUS)
        answer = insurance_pb(status)
        if mask.wants_any(*PERSON_FIELDS):
            show_person(answer, await self._person(iin, purposes.PURPOSE_INSURANCE_PERSON))
        return mask.apply(answer)

    # -- disability --------------------------------------------------------------------

    @_rpc
    async def RecordDisabilityConclusion(
        self, request: pb.RecordDisabilityConclusionRequest, context: grpc.aio.ServicerContext
    ) -> pb.DisabilityConclusion:
        conclusion = ConclusionRequest(
            iin=parse_iin(request.iin, "iin"),
            group=request.group,
            valid_from=parse_date(request.from_date, "from_date"),
            valid_to=parse_optional_date(request.to_date, "to_date"),
            since_childhood=request.since_childhood,
        )
        rules.validate_conclusion(conclusion, self._reader.today())
        person = await self._bus().person(
            conclusion.iin, purpose=purposes.PURPOSE_CONCLUSION
        )
        if person.deceased:
            raise NotAllowed(f"{conclusion.iin} is deceased")
        birth = parse_optional_date(person.birth_date, "birth_date") or (
            conclusion.iin.birth_date
        )
        recorded = await self._stores.write(
            lambda: self._writer.record_conclusion(conclusion, birth_date=birth)
        )
        return conclusion_pb(recorded)

    @_rpc
    async def ListDisabilityConclusions(
        self, request: pb.ListDisabilityConclusionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDisabilityConclusionsResponse:
        found = self._reader.list_conclusions(parse_iin(request.iin, "iin"))
        return pb.ListDisabilityConclusionsResponse(
            conclusions=[conclusion_pb(c) for c in found]
        )

    # -- recorded grounds of state-paid insurance (rules.RECORDED_GROUNDS) ---------------

    @_rpc
    async def RecordStateInsuredGround(
        self, request: pb.RecordStateInsuredGroundRequest, context: grpc.aio.ServicerContext
    ) -> pb.StateInsuredGround:
        ground = GroundRequest(
            iin=parse_iin(request.iin, "iin"),
            social_category=request.social_category,
            valid_from=parse_date(request.from_date, "from_date"),
            valid_to=parse_optional_date(request.to_date, "to_date"),
            basis=request.basis,
            cared_for=(parse_iin(request.cared_for_iin, "cared_for_iin")
                       if request.cared_for_iin else None),
        )
        rules.validate_ground(ground, self._reader.today())
        bus = self._bus()
        if (await bus.person(ground.iin, purpose=purposes.PURPOSE_GROUND_PERSON)).deceased:
            raise NotAllowed(f"{ground.iin} is deceased")
        if ground.cared_for is not None:
            cared_for = await bus.person(
                ground.cared_for, purpose=purposes.PURPOSE_GROUND_CARED_FOR
            )
            if cared_for.deceased:
                raise NotAllowed("the person cared for is deceased")
        recorded = await self._stores.write(lambda: self._writer.record_ground(ground))
        return ground_pb(recorded)

    @_rpc
    async def EndStateInsuredGround(
        self, request: pb.EndStateInsuredGroundRequest, context: grpc.aio.ServicerContext
    ) -> pb.StateInsuredGround:
        iin = parse_iin(request.iin, "iin")
        valid_from = parse_date(request.from_date, "from_date")
        valid_to = parse_date(request.to_date, "to_date")
        ended = await self._stores.write(
            lambda: self._writer.end_ground(iin, request.social_category, valid_from, valid_to)
        )
        return ground_pb(ended)

    @_rpc
    async def ListStateInsuredGrounds(
        self, request: pb.ListStateInsuredGroundsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListStateInsuredGroundsResponse:
        found = self._reader.list_grounds(parse_iin(request.iin, "iin"))
        return pb.ListStateInsuredGroundsResponse(grounds=[ground_pb(g) for g in found])

    # -- helpers -----------------------------------------------------------------------

    def _bus(self) -> Lookups:
        if self._lookups is None:
            raise NotAllowed("not connected to the bus: population and pension cannot be asked")
        return self._lookups

    async def _person(self, iin: Iin, purpose: str) -> PersonRead:
        if self._lookups is None:
            return NOT_CONNECTED
        return await self._lookups.person_now(iin, purpose=purpose)

    async def _other_basis(self, iin: Iin, clinic: Clinic) -> str | None:
        """The first of ``rules.ATTACHMENT.bases`` after the registered address whose
        district the clinic serves: the person's temporary registration in force
        (population), a school the person is enrolled in now (education), an employer of
        an employment in force today (pension), a college or university of a study in
        force today (education); None when none does."""
        bus = self._bus()
        today = self._reader.today()
        place = (clinic.region, clinic.district)
        for basis in rules.ATTACHMENT.bases:
            purpose = purposes.ATTACH_PURPOSES.get(basis)
            if purpose is not None and await bus.place_holds(
                iin, basis, place, today, purpose=purpose
            ):
                return basis
        return None

    def _refuse_if_settled(self, iin: Iin, clinic: Clinic) -> None:
        """Cheap local refusals before asking anybody (re-checked when writing)."""
        history = self._reader.list_attachments(iin)
        last = history[-1] if history else None
        if last is not None and last.detach_reason is DetachReason.DEATH:
            raise NotAllowed(f"{iin} is deceased")
        if last is not None and last.open and last.clinic.clinic_id == clinic.clinic_id:
            raise AlreadyRecorded(f"{iin} is already attached to {clinic.clinic_id}")
        if clinic.free <= 0:
            raise NotAllowed(f"clinic {clinic.clinic_id} has no free places")

    async def _insurance(self, iin: Iin, purpose: str) -> InsuranceStatus:
        """State-paid from our own periods; otherwise contributions, asked of pension."""
        today = self._reader.today()
        period = self._reader.state_paid_period(iin, today) or await self._recorded_ground(
            iin, today, non_working=False
        )
        if period is not None:
            return InsuranceStatus(
                iin, True, InsuranceCategory.STATE_PAID, today, period, period.source
            )
        contributions = await self._bus().contributions(iin, purpose=purpose)
        if not contributions.insured:
            parent = await self._non_working_parent(iin, today) or await self._recorded_ground(
                iin, today, non_working=True
            )
            if parent is not None:
                return InsuranceStatus(
                    iin, True, InsuranceCategory.STATE_PAID, today, parent, parent.source
                )
            student = await self._student(iin, today)
            if student is not None:
                return InsuranceStatus(
                    iin, True, InsuranceCategory.STATE_PAID, today, student, student.source
                )
        return InsuranceStatus(
            iin,
            contributions.insured,
            InsuranceCategory.CONTRIBUTIONS if contributions.insured else None,
            today,
            None,
            PENSION_SUBSYSTEM,
        )

    async def _non_working_parent(self, iin: Iin, today: dt.date) -> InsurancePeriod | None:
        """rules.NON_WORKING_PARENT, asked only of a person whom contributions do not
        insure (pension found no paid month among the 3 before this one): a living child
        under three (population) and no contribution for this month either (pension)."""
        bus = self._bus()
        born: list[dt.date] = []
        for child in await bus.children(iin, purpose=purposes.PURPOSE_PARENT_CHILDREN):
            if rules.add_years(child.birth_date, rules.NON_WORKING_PARENT.child_under) <= today:
                continue  # the IIN's birth date is population's: no read for an older child
            try:
                person = await bus.person(child, purpose=purposes.PURPOSE_PARENT_CHILD)
            except NotFound:
                continue  # a family link to a person population no longer knows
            birth = parse_optional_date(person.birth_date, "birth_date")
            if not person.deceased and birth is not None:
                born.append(birth)
        if not rules.non_working_parent_period(today, born, paid_in_window=False):
            return None
        paid = await self._paid_this_month(iin, today, purposes.PURPOSE_PARENT_WORK)
        period = rules.non_working_parent_period(today, born, paid_in_window=paid)
        if period is None:
            return None
        first, last = period
        source = (
            f"KZ/GOV/MJ/population (a child under {rules.NON_WORKING_PARENT.child_under});"
            f" {_no_contribution(today)}"
        )
        return InsurancePeriod(
            iin, rules.NON_WORKING_PARENT.category, first, last, source
        )

    async def _student(self, iin: Iin, today: dt.date) -> InsurancePeriod | None:
        """rules.STUDENT, asked only of a person nothing else insures: a full-time study
        at a college or university in force today (education's ListStudies). A failed
        read raises (UNAVAILABLE), as the non-working parent's does."""
        studies = await self._bus().studies(iin, purpose=purposes.PURPOSE_STUDENT)
        period = rules.student_period(today, studies)
        if period is None:
            return None
        first, last = period
        source = f"{purposes.EDUCATION_SUBSYSTEM} (full-time study since {first.isoformat()})"
        return InsurancePeriod(iin, rules.STUDENT.category, first, last, source)

    async def _paid_this_month(self, iin: Iin, today: dt.date, purpose: str) -> bool:
        """Pension holds a contribution for this month (asked of a person whom
        contributions do not insure: no paid month among the 3 before it)."""
        # The month asked about: pension's window for the 1st of the next month ends with it.
        month = await self._bus().contributions(
            iin, purpose=purpose, as_of=rules.next_month_start(today)
        )
        if month.window_to != (today.year, today.month):
            raise Unavailable("pension's contribution window does not end with this month")
        return month.paid_months > 0

    async def _recorded_ground(
        self, iin: Iin, today: dt.date, *, non_working: bool
    ) -> InsurancePeriod | None:
        """rules.RECORDED_GROUNDS: the state-paid period a recorded fact gives today. With
        ``non_working`` False only the categories counted whether or not the person works
        (nobody is asked); with True only those counted in non-working months, asked only
        of a person whom contributions do not insure."""
        for ground in self._reader.grounds_on(iin, today):
            rule = rules.RECORDED_GROUNDS.get(ground.social_category)
            if rule is None or rule.non_working is not non_working:
                continue
            source = f"{rule.held_by}: {ground.basis} (recorded {ground.recorded_on.isoformat()})"
            care = None
            if rule.cares_for_group is not None:
                care = await self._care(ground.cared_for, rule.cares_for_group, today)
                if care is None:
                    continue
                source += (f"; conclusion {care.conclusion_id} (group {care.group}) of the"
                           " person cared for; KZ/GOV/MJ/population (alive)")
            paid = non_working and await self._paid_this_month(
                iin, today, purposes.PURPOSE_GROUND_WORK
            )
            period = rules.recorded_ground_period(today, ground, paid_in_window=paid, care=care)
            if period is None:
                continue
            if non_working:
                source += f"; {_no_contribution(today)}"
            return InsurancePeriod(iin, rule.category, period[0], period[1], source)
        return None

    async def _care(
        self, cared_for: Iin | None, group: int, today: dt.date
    ) -> DisabilityConclusion | None:
        """The conclusion of ``group`` in force today of a person cared for who is alive."""
        if cared_for is None:
            return None
        care = rules.active_conclusion(self._reader.list_conclusions(cared_for), group, today)
        if care is None:
            return None
        try:
            person = await self._bus().person(cared_for, purpose=purposes.PURPOSE_GROUND_ALIVE)
        except NotFound:
            return None
        return None if person.deceased else care


def _no_contribution(today: dt.date) -> str:
    """The source of "non-working": pension's months without a contribution."""
    since = today.year * 12 + today.month - 1 - rules.NON_WORKING_PARENT.quiet_months_before
    return (f"{PENSION_SUBSYSTEM} (no contribution {since // 12}-{since % 12 + 1:02d}"
            f" to {today.year}-{today.month:02d})")


# -- protobuf to values ------------------------------------------------------------------


_parse = RequestParser(InvalidInput)
parse_iin = _parse.iin
parse_date = _parse.date
parse_optional_date = _parse.optional_date
parse_read_mask = _parse.read_mask


# -- values to protobuf ------------------------------------------------------------------


def clinic_pb(clinic: Clinic) -> pb.Clinic:
    return pb.Clinic(
        clinic_id=clinic.clinic_id,
        name=clinic.name,
        region=clinic.region,
        district=clinic.district,
        capacity=clinic.capacity,
        attached=clinic.attached,
    )


def attachment_pb(attachment: Attachment) -> pb.Attachment:
    message = pb.Attachment(
        iin=attachment.iin.value,
        clinic_id=attachment.clinic.clinic_id,
        attached_on=date_pb(attachment.attached_on),
        reason=attachment.reason.value,
        clinic=clinic_pb(attachment.clinic),
        basis=attachment.basis,
    )
    if attachment.detached_on is not None:
        message.detached_on.CopyFrom(date_pb(attachment.detached_on))
    if attachment.detach_reason is not None:
        message.detach_reason = attachment.detach_reason.value
    return message


def insurance_pb(status: InsuranceStatus) -> pb.InsuranceStatus:
    message = pb.InsuranceStatus(
        iin=status.iin.value,
        insured=status.insured,
        category=status.category.value if status.category else "",
        source=status.source,
        as_of=date_pb(status.as_of),
    )
    if status.period is not None:
        message.social_category = status.period.social_category
        message.valid_from.CopyFrom(date_pb(status.period.valid_from))
        if status.period.valid_to is not None:
            message.valid_to.CopyFrom(date_pb(status.period.valid_to))
    return message


def conclusion_pb(conclusion: DisabilityConclusion) -> pb.DisabilityConclusion:
    message = pb.DisabilityConclusion(
        conclusion_id=conclusion.conclusion_id,
        iin=conclusion.iin.value,
        group=conclusion.group,
        from_date=date_pb(conclusion.valid_from),
        decided_on=date_pb(conclusion.decided_on),
        since_childhood=conclusion.since_childhood,
    )
    if conclusion.valid_to is not None:
        message.to_date.CopyFrom(date_pb(conclusion.valid_to))
    return message


def ground_pb(ground: StateInsuredGround) -> pb.StateInsuredGround:
    message = pb.StateInsuredGround(
        iin=ground.iin.value,
        social_category=ground.social_category,
        from_date=date_pb(ground.valid_from),
        basis=ground.basis,
        cared_for_iin="" if ground.cared_for is None else ground.cared_for.value,
        recorded_on=date_pb(ground.recorded_on),
    )
    if ground.valid_to is not None:
        message.to_date.CopyFrom(date_pb(ground.valid_to))
    return message
