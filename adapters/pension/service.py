"""The pension system's gRPC service (zhol.pension.v1.PensionRegistry).

Protobuf stays here: requests are parsed into typed values (``Iin.parse``, ``Bin``,
``Month``, dates) and store results are mapped back to messages. The adapter is the
provider IS itself, so failures are plain gRPC statuses, never ``zhol-error`` trailers:

| failure                                                 | status              |
|---------------------------------------------------------|---------------------|
| malformed IIN, BIN, month or date; from after to;       | INVALID_ARGUMENT    |
| income not positive; amounts not matching the rate table|                     |
| a ``read_mask`` path that is not a field of the answer  |                     |
| unknown employer                                        | NOT_FOUND           |
| the employer already reported that month for the person | ALREADY_EXISTS      |
| not connected to the bus; the bus refused a read; no    | FAILED_PRECONDITION |
| rule-table row for the year                             |                     |
| population could not be reached (gateway down, timeout) | UNAVAILABLE         |
| anything unexpected (logged, no detail sent)            | INTERNAL            |

``GetPensionStatus`` and ``ListBenefits`` also carry the person as population knows
them at the moment of the answer (name, birth date, the registered address payment
letters go to): one GetPerson through the bus per answer, never stored. When that read
fails the answer is still made from pension's own facts, with ``person`` unset and
``person_status`` / ``person_reason`` saying why (``adapters.bus.population``). A
``read_mask`` without them (the caller has the person already) skips that read.

Reads of our own database run on the event loop against a query-only connection (a few
indexed lookups). Writes run one at a time on a dedicated writer thread with its own
connection; after a write that enqueued an event the outbox publisher is woken.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path

import grpc

from zhol.adapters.bus.population import (
    PERSON_FIELDS,
    PopulationReader,
    read_current,
    show_person,
)
from zhol.adapters.pension import decisions, retirement
from zhol.adapters.pension.handlers import STATUS
from zhol.adapters.pension.model import (
    Benefit,
    Bin,
    CalcItem,
    Contribution,
    ContributionReport,
    EmploymentPeriod,
    InvalidInput,
    Month,
    NotAllowed,
    Payment,
    PensionAssignment,
    PensionCalculation,
    RecalculationRecord,
    SourceRead,
)
from zhol.adapters.pension.sources import RecordingReader
from zhol.adapters.pension.store import PensionStore
from zhol.adapters.runtime.service import Notify, RequestParser, StorePair, rpc_errors
from zhol.core.clock import Clock
from zhol.pension.v1 import pension_pb2 as pb
from zhol.pension.v1 import pension_pb2_grpc as pb_grpc

log = logging.getLogger("zhol.adapters.pension")

# zhol-purpose of the reads that show the person in an answer (logged by both gateways).
PURPOSE_STATUS_HOLDER = "pension status answer: the holder's name, birth date and address"
PURPOSE_BENEFITS_PERSON = "benefits answer: the person's name, birth date and address"

EARLIEST_AS_OF = dt.date(1998, 1, 1)
LATEST_AS_OF = dt.date(2099, 12, 31)


_rpc = rpc_errors(STATUS, log, "pension")  # each RPC's failures become its status


class PensionRegistryServicer(pb_grpc.PensionRegistryServicer):
    """Serves one pension database: ``reader`` on the loop, ``writer`` on its thread."""

    def __init__(
        self,
        stores: StorePair[PensionStore],
        clock: Clock,
        population: PopulationReader | None = None,
    ) -> None:
        self._stores = stores
        self._reader = stores.reader
        self._writer = stores.writer
        self._clock = clock
        self._population = population
        self._retirement_lock = asyncio.Lock()

    @classmethod
    def open(
        cls,
        db_path: Path,
        clock: Clock,
        population: PopulationReader | None = None,
        *,
        on_commit: Notify | None = None,
    ) -> PensionRegistryServicer:
        return cls(StorePair.open(PensionStore.open, db_path, clock, agency="pension",
                                  on_commit=on_commit), clock, population)

    def close(self) -> None:
        """Wait for a running write, then close both connections."""
        self._stores.close()

    @property
    def stores(self) -> StorePair[PensionStore]:
        """The connections, shared with the recalculation service (recalc_service)."""
        return self._stores

    # -- contributions -----------------------------------------------------------------

    @_rpc
    async def GetContributions(
        self, request: pb.GetContributionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetContributionsResponse:
        iin = parse_iin(request.iin, "iin")
        first = parse_optional_month(request.from_month, "from_month")
        last = parse_optional_month(request.to_month, "to_month")
        history = self._reader.get_contributions(iin, first, last)
        return pb.GetContributionsResponse(
            iin=history.iin,
            contributions=[contribution_pb(c) for c in history.contributions],
            total_pension_amount=history.total_pension_amount,
            total_social_amount=history.total_social_amount,
            savings_balance=history.savings_balance,
            total_employer_pension_amount=history.total_employer_pension_amount,
        )

    @_rpc
    async def RecordContribution(
        self, request: pb.RecordContributionRequest, context: grpc.aio.ServicerContext
    ) -> pb.Contribution:
        report = ContributionReport(
            employer_bin=Bin.parse(request.employer_bin),
            iin=parse_iin(request.iin, "iin").value,
            month=parse_month(request.month, "month"),
            income=request.income,
            pension_amount=request.pension_amount,
            social_amount=request.social_amount,
            employer_pension_amount=request.employer_pension_amount,
        )
        # No event: a contribution is a fact of pension's own, published to nobody.
        recorded = await self._stores.write(
            self._writer.record_contribution, report, notify=False
        )
        return contribution_pb(recorded)

    @_rpc
    async def GetEmploymentPeriods(
        self, request: pb.GetEmploymentPeriodsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetEmploymentPeriodsResponse:
        periods = self._reader.employment_periods(parse_iin(request.iin, "iin"))
        return pb.GetEmploymentPeriodsResponse(periods=[period_pb(p) for p in periods])

    @_rpc
    async def IsInsuredByContributions(
        self, request: pb.IsInsuredByContributionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.IsInsuredByContributionsResponse:
        iin = parse_iin(request.iin, "iin")
        as_of = parse_optional_date(request.as_of, "as_of") or self._reader.today()
        check = self._reader.insurance_check(iin, as_of)
        return pb.IsInsuredByContributionsResponse(
            iin=check.iin, insured=check.insured, paid_months=check.paid_months,
            required_months=check.required_months, window_months=check.window_months,
            window_from=month_pb(check.window_from), window_to=month_pb(check.window_to),
        )

    # -- decisions ---------------------------------------------------------------------

    @_rpc
    async def GetPensionStatus(
        self, request: pb.GetPensionStatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.PensionStatus:
        iin = parse_iin(request.iin, "iin")
        mask = parse_read_mask(request, pb.PensionStatus)
        status = self._reader.pension_status(iin)
        answer = pb.PensionStatus(
            iin=status.iin,
            receives_pension=status.receives_pension,
            assignments=[assignment_pb(a) for a in status.assignments],
            savings_balance=status.savings_balance,
        )
        if mask.wants_any(*PERSON_FIELDS):
            show_person(answer, await read_current(
                self._population, iin.value, purpose=PURPOSE_STATUS_HOLDER
            ))
        return mask.apply(answer)

    @_rpc
    async def ListBenefits(
        self, request: pb.ListBenefitsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListBenefitsResponse:
        iin = parse_iin(request.iin, "iin")
        mask = parse_read_mask(request, pb.ListBenefitsResponse)
        benefits = self._reader.list_benefits(iin)
        answer = pb.ListBenefitsResponse(benefits=[benefit_pb(b) for b in benefits])
        if mask.wants_any(*PERSON_FIELDS):
            show_person(answer, await read_current(
                self._population, iin.value, purpose=PURPOSE_BENEFITS_PERSON
            ))
        return mask.apply(answer)

    @_rpc
    async def AssignRetirementPensions(
        self, request: pb.AssignRetirementPensionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.AssignRetirementPensionsResponse:
        as_of = parse_optional_date(request.as_of, "as_of") or self._reader.today()
        if not EARLIEST_AS_OF <= as_of <= LATEST_AS_OF:
            raise InvalidInput(f"as_of must be between {EARLIEST_AS_OF} and {LATEST_AS_OF}")
        if request.page_size < 0:
            raise InvalidInput("page_size must not be negative")
        if self._population is None:
            raise NotAllowed("not connected to the bus")
        reads = RecordingReader(self._population, self._clock)
        async with self._retirement_lock:
            run = await retirement.assign_retirement_pensions(
                reads, as_of, page_size=request.page_size,
                with_age_pension=self._with_age_pension, write=self._assign_age_pension,
            )
        log.info("retirement run", extra={"as_of": as_of.isoformat(),
                                           "assigned": len(run.assigned)})
        return pb.AssignRetirementPensionsResponse(
            as_of=date_pb(run.as_of),
            assigned=[assignment_pb(a) for a in run.assigned],
            persons_scanned=run.persons_scanned,
            reached_age=run.reached_age,
            already_assigned=run.already_assigned,
        )

    async def _with_age_pension(self, iins: list[str]) -> set[str]:
        return self._reader.with_age_pension(iins)

    async def _assign_age_pension(
        self, facts: decisions.RetirementFacts
    ) -> PensionAssignment | None:
        # Only an assignment enqueued an event (None: nothing was decided).
        assigned = await self._stores.write(self._write_age_pension, facts, notify=False)
        if assigned is not None:
            self._stores.committed()
        return assigned

    def _write_age_pension(self, facts: decisions.RetirementFacts) -> PensionAssignment | None:
        writer = self._writer
        with writer.transaction() as conn:
            assignment_id = decisions.decide_age_pension(
                conn, facts, today=writer.today(), now_ms=self._clock.now_ms()
            )
        return None if assignment_id is None else writer.get_assignment(assignment_id)



# -- protobuf to values ------------------------------------------------------------------


_parse = RequestParser(InvalidInput)
parse_iin = _parse.iin
parse_optional_date = _parse.optional_date
parse_read_mask = _parse.read_mask


def parse_optional_month(message: pb.Month, field: str) -> Month | None:
    if message.year == 0 and message.month == 0:
        return None
    try:
        return Month(message.year, message.month)
    except InvalidInput:
        raise InvalidInput(f"{field} is not a valid month") from None


def parse_month(message: pb.Month, field: str) -> Month:
    month = parse_optional_month(message, field)
    if month is None:
        raise InvalidInput(f"{field} is required")
    return month


# -- values to protobuf ------------------------------------------------------------------


def date_pb(day: dt.date | None) -> pb.Date | None:
    return None if day is None else pb.Date(year=day.year, month=day.month, day=day.day)


def month_pb(month: Month) -> pb.Month:
    return pb.Month(year=month.year, month=month.month)


def contribution_pb(c: Contribution) -> pb.Contribution:
    return pb.Contribution(
        iin=c.iin, month=month_pb(c.month), employer_bin=c.employer_bin, income=c.income,
        pension_amount=c.pension_amount, social_amount=c.social_amount,
        recorded_on=date_pb(c.recorded_on), employer_pension_amount=c.employer_pension_amount,
    )


def period_pb(p: EmploymentPeriod) -> pb.EmploymentPeriod:
    return pb.EmploymentPeriod(
        iin=p.iin, employer_bin=p.employer_bin, employer_title=p.employer_title,
        started_on=date_pb(p.started_on), ended_on=date_pb(p.ended_on),
        employer_region=p.employer_region, employer_district=p.employer_district,
    )


def item_pb(item: CalcItem) -> pb.CalculationItem:
    return pb.CalculationItem(name=item.name, value=item.value, unit=item.unit, note=item.note)


def source_pb(source: SourceRead) -> pb.SourceRead:
    return pb.SourceRead(
        service=source.service, provider=source.provider, purpose=source.purpose,
        data_subject=source.data_subject, fact=source.fact, read_at_unix_ms=source.read_at_ms,
    )


def payment_pb(payment: Payment) -> pb.Payment:
    return pb.Payment(month=month_pb(payment.month), amount=payment.amount,
                      status=payment.status.value, kind=payment.kind.value,
                      recalculation_id=payment.recalculation_id)


def recalculation_pb(r: RecalculationRecord) -> pb.RecalculationDecision:
    return pb.RecalculationDecision(
        recalculation_id=r.recalculation_id, decided_on=date_pb(r.decided_on),
        change_from=month_pb(r.change_from), old_amount=r.old_amount,
        new_amount=r.new_amount, currency="KZT", old_ends_on=date_pb(r.old_ends_on),
        new_ends_on=date_pb(r.new_ends_on),
        rules=[pb.RecalculationRule(table=x.table, in_force_from=date_pb(x.in_force_from),
                                    source=x.source) for x in r.rules],
        reason=r.reason,
        arrears=[pb.RecalculationArrears(month=month_pb(a.month), due=a.due, paid=a.paid,
                                         amount=a.amount) for a in r.arrears],
        arrears_total=r.arrears_total,
        arrears_paid_in=month_pb(r.arrears_paid_in) if r.arrears_paid_in else None,
    )


def calculation_pb(calc: PensionCalculation) -> pb.PensionCalculation:
    return pb.PensionCalculation(
        base_pension=calc.base_pension,
        solidarity_part=calc.solidarity_part,
        accumulative_part=calc.accumulative_part,
        monthly_amount=calc.monthly_amount,
        years_of_service=calc.years_of_service,
        employment_years=calc.employment_years,
        child_care_years=calc.child_care_years,
        service_years_before_1998=calc.service_years_before_1998,
        average_monthly_income=calc.average_monthly_income,
        contribution_months=calc.contribution_months,
        savings_balance=calc.savings_balance,
        retirement_age=calc.retirement_age,
        reached_age_on=date_pb(calc.reached_age_on),
        rule_year=calc.rule_year,
        items=[item_pb(i) for i in calc.items],
        explanation=list(calc.explanation),
    )


def assignment_pb(a: PensionAssignment) -> pb.PensionAssignment:
    return pb.PensionAssignment(
        assignment_id=a.assignment_id, iin=a.iin, kind=a.kind.value,
        monthly_amount=a.monthly_amount, currency="KZT",
        effective_from=date_pb(a.effective_from), assigned_on=date_pb(a.assigned_on),
        status=a.status, stopped_on=date_pb(a.stopped_on), stop_reason=a.stop_reason,
        basis=a.basis, calculation=calculation_pb(a.calculation),
        sources=[source_pb(s) for s in a.sources], payments=[payment_pb(p) for p in a.payments],
        ends_on=date_pb(a.ends_on), breadwinner_iin=a.breadwinner_iin,
        recalculations=[recalculation_pb(r) for r in a.recalculations],
    )


def benefit_pb(b: Benefit) -> pb.Benefit:
    return pb.Benefit(
        benefit_id=b.benefit_id, kind=b.kind.value, recipient_iin=b.recipient_iin,
        subject_iin=b.subject_iin, amount=b.amount, currency="KZT",
        frequency=b.frequency.value, period_from=date_pb(b.period_from),
        period_to=date_pb(b.period_to), status=b.status, assigned_on=date_pb(b.assigned_on),
        basis=b.basis, calculation=[item_pb(i) for i in b.items],
        sources=[source_pb(s) for s in b.sources], payments=[payment_pb(p) for p in b.payments],
        stopped_on=date_pb(b.stopped_on), stop_reason=b.stop_reason,
        recalculations=[recalculation_pb(r) for r in b.recalculations],
    )
