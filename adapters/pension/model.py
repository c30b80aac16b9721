"""The pension system's values and failures: frozen dataclasses, no protobuf, no SQL.

Pension (KZ/GOV/MLSPP/pension) owns employers, employment periods, monthly
contributions, pension savings, pension assignments, benefits and payments. It keeps a
citizen's IIN and nothing else of the person: birth date, sex and family are read from
the population registry over the bus whenever a decision needs them, and each such read
is stored with the decision as a ``SourceRead``.

The store returns these values; the gRPC service maps them to protobuf at the edge.
Money is whole tenge (``int``). Every failure is a ``PensionError`` subclass whose
class says which gRPC status it becomes:

| class           | gRPC status          | when                                                   |
|-----------------|----------------------|--------------------------------------------------------|
| InvalidInput    | INVALID_ARGUMENT     | bad arguments whatever the data: malformed IIN or BIN,  |
|                 |                      | bad month or date, amounts not matching the rate table  |
| NotFound        | NOT_FOUND            | unknown employer; person unknown to population          |
| AlreadyRecorded | ALREADY_EXISTS       | the employer already reported that month for the person |
| NotAllowed      | FAILED_PRECONDITION  | the data forbids it (deceased person, no rule for the   |
|                 |                      | year); not connected to the bus; the bus refused access |
| Unavailable     | UNAVAILABLE          | population could not be asked (gateway down, timeout)   |
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from dataclasses import dataclass, field
from typing import Any

from zhol.adapters.runtime.store import KZ_TIME as KZ_TIME  # re-exported
from zhol.core.iin import check_digit

SUBSYSTEM = "KZ/GOV/MLSPP/pension"
CURRENCY = "KZT"


class PensionKind(enum.Enum):
    AGE = "age"
    DISABILITY = "disability"
    SURVIVOR = "survivor"


class BenefitKind(enum.Enum):
    CHILDBIRTH_LUMP_SUM = "childbirth_lump_sum"
    CHILD_CARE_ALLOWANCE = "child_care_allowance"
    DISABILITY_BENEFIT = "disability_benefit"
    BURIAL_BENEFIT = "burial_benefit"
    CARER_OF_DISABLED_CHILD = "carer_of_disabled_child"  # to a parent raising the child
    # The lump sum for burial from the deceased's pension savings (the UAPF's payment);
    # ``BURIAL_BENEFIT`` is the budget's lump-sum burial payment.
    BURIAL_SAVINGS_PAYMENT = "burial_savings_payment"


class Frequency(enum.Enum):
    MONTHLY = "monthly"
    ONE_OFF = "one_off"


class PaymentStatus(enum.Enum):
    SCHEDULED = "scheduled"
    PAID = "paid"
    STOPPED = "stopped"


# -- identifiers and calendar values -----------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class Month:
    """A calendar month; text form ``YYYY-MM`` (sorts as months do)."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1 <= self.year <= 9999:
            raise InvalidInput(f"{self.year:04d}-{self.month:02d} is not a month")

    @classmethod
    def of(cls, day: dt.date) -> Month:
        return cls(day.year, day.month)

    @classmethod
    def parse(cls, text: str) -> Month:
        year, sep, month = text.partition("-")
        if not sep or not year.isdigit() or not month.isdigit():
            raise InvalidInput(f"{text!r} is not a month (YYYY-MM)")
        return cls(int(year), int(month))

    def plus(self, months: int) -> Month:
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    def minus(self, other: Month) -> int:
        """Months from ``other`` to this month."""
        return (self.year - other.year) * 12 + self.month - other.month

    @property
    def first_day(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True, slots=True, order=True)
class Bin:
    """A business identification number (an employer): 12 digits, ``YYMM`` of
    registration, the entity type (4 resident, 5 non-resident, 6 individual
    entrepreneur in a joint venture), an attribute digit, a serial and the IIN's mod-11
    check digit."""

    value: str

    @classmethod
    def parse(cls, text: str) -> Bin:
        if len(text) != 12 or not text.isascii() or not text.isdigit():
            raise InvalidInput("a BIN is exactly 12 digits")
        if not 1 <= int(text[2:4]) <= 12:
            raise InvalidInput("BIN digits 3-4 must be a month of registration")
        if text[4] not in "456":
            raise InvalidInput("BIN digit 5 (entity type) must be 4, 5 or 6")
        if check_digit(text[:11]) != ord(text[11]) - 48:
            raise InvalidInput("BIN check digit is wrong")
        return cls(text)

    def __str__(self) -> str:
        return self.value


def make_bin(registered: dt.date, serial: int, entity_type: int = 4) -> Bin | None:
    """A valid BIN for synthetic employers, or None when the serial has no check digit."""
    first = f"{registered:%y%m}{entity_type}0{serial:05d}"
    digit = check_digit(first)
    return None if digit is None else Bin(first + str(digit))


# -- contributions and employment --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Employer:
    bin: Bin
    title: str
    registered_on: dt.date


@dataclass(frozen=True, slots=True)
class EmploymentPeriod:
    iin: str
    employer_bin: str
    employer_title: str
    started_on: dt.date
    ended_on: dt.date | None
    employer_region: str = ""  # where the employer is registered; "" when not recorded
    employer_district: str = ""


@dataclass(frozen=True, slots=True)
class ContributionReport:
    """What an employer reports for one person and month (``RecordContribution``)."""

    employer_bin: Bin
    iin: str
    month: Month
    income: int
    pension_amount: int
    social_amount: int
    employer_pension_amount: int = 0  # OPVR (employer_contribution.py)


@dataclass(frozen=True, slots=True)
class Contribution:
    iin: str
    month: Month
    employer_bin: str
    income: int
    pension_amount: int
    social_amount: int
    recorded_on: dt.date
    employer_pension_amount: int = 0  # OPVR: to a conditional account, not to savings


@dataclass(frozen=True, slots=True)
class ContributionHistory:
    iin: str
    contributions: tuple[Contribution, ...]
    total_pension_amount: int
    total_social_amount: int
    savings_balance: int
    total_employer_pension_amount: int = 0


@dataclass(frozen=True, slots=True)
class InsuranceCheck:
    iin: str
    insured: bool
    paid_months: int
    required_months: int
    window_months: int
    window_from: Month
    window_to: Month


# -- decisions ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CalcItem:
    """One line of a calculation: an input, a coefficient or a result."""

    name: str
    value: str
    unit: str = ""
    note: str = ""


@dataclass(frozen=True, slots=True)
class SourceRead:
    """One read over the bus a decision rests on (stored with the decision)."""

    service: str
    provider: str
    purpose: str
    data_subject: str
    fact: str
    read_at_ms: int


class PaymentKind(enum.Enum):
    REGULAR = "regular"  # the decision's own schedule
    ARREARS = "arrears"  # a recalculation's arrears, paid once (``recalculation_id``)


@dataclass(frozen=True, slots=True)
class Payment:
    month: Month
    amount: int
    status: PaymentStatus = PaymentStatus.SCHEDULED
    kind: PaymentKind = PaymentKind.REGULAR
    recalculation_id: str = ""  # arrears: the recalculation decision that owes them


@dataclass(frozen=True, slots=True)
class RuleRow:
    """A rule table row a recalculation rests on (``in_force_from`` None: not a dated
    row, the yearly indexation)."""

    table: str
    in_force_from: dt.date | None
    source: str


@dataclass(frozen=True, slots=True)
class ArrearsMonth:
    month: Month
    due: int
    paid: int
    amount: int


@dataclass(frozen=True, slots=True)
class RecalculationRecord:
    """A recalculation decision as stored (table ``recalculations``), shown with the
    decision it recalculated."""

    recalculation_id: str
    decided_on: dt.date
    change_from: Month
    old_amount: int
    new_amount: int
    old_ends_on: dt.date | None
    new_ends_on: dt.date | None
    rules: tuple[RuleRow, ...]
    reason: str
    arrears: tuple[ArrearsMonth, ...]
    arrears_total: int
    arrears_paid_in: Month | None  # the month the arrears are paid once (None: none)


@dataclass(frozen=True, slots=True)
class PensionCalculation:
    """A pension's calculation. The age pension fills every field; a pension calculated
    otherwise (survivor) has the age pension's parts at zero, no retirement age and no
    ``reached_age_on``, and its breakdown in ``items`` and ``explanation`` alone."""

    base_pension: int
    solidarity_part: int
    accumulative_part: int
    monthly_amount: int
    years_of_service: float
    employment_years: float
    child_care_years: float
    service_years_before_1998: float
    average_monthly_income: int
    contribution_months: int
    savings_balance: int
    retirement_age_months: int
    reached_age_on: dt.date | None
    rule_year: int
    items: tuple[CalcItem, ...]
    explanation: tuple[str, ...]

    @classmethod
    def by_items(cls, monthly_amount: int, rule_year: int, items: tuple[CalcItem, ...],
                 explanation: tuple[str, ...]) -> PensionCalculation:
        """A calculation that is its items alone (not an age pension)."""
        return cls(0, 0, 0, monthly_amount, 0.0, 0.0, 0.0, 0.0, 0, 0, 0, 0, None, rule_year,
                   items, explanation)

    @property
    def retirement_age(self) -> str:
        """Years as text: "63" or "61.5"; "" when no retirement age applies."""
        if self.retirement_age_months == 0:
            return ""
        years, months = divmod(self.retirement_age_months, 12)
        return str(years) if months == 0 else f"{years + months / 12:g}"

    def to_json(self) -> str:
        data: dict[str, Any] = {
            name: getattr(self, name) for name in _CALCULATION_SCALARS
        }
        reached = self.reached_age_on
        data["reached_age_on"] = reached.isoformat() if reached else None
        data["items"] = [items_row(item) for item in self.items]
        data["explanation"] = list(self.explanation)
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> PensionCalculation:
        data = json.loads(text)
        return cls(
            **{name: data[name] for name in _CALCULATION_SCALARS},
            reached_age_on=(dt.date.fromisoformat(data["reached_age_on"])
                            if data["reached_age_on"] else None),
            items=tuple(CalcItem(*row) for row in data["items"]),
            explanation=tuple(data["explanation"]),
        )


_CALCULATION_SCALARS = (
    "base_pension", "solidarity_part", "accumulative_part", "monthly_amount",
    "years_of_service", "employment_years", "child_care_years",
    "service_years_before_1998", "average_monthly_income", "contribution_months",
    "savings_balance", "retirement_age_months", "rule_year",
)


def items_row(item: CalcItem) -> list[str]:
    return [item.name, item.value, item.unit, item.note]


def items_to_json(items: tuple[CalcItem, ...]) -> str:
    return json.dumps([items_row(item) for item in items], separators=(",", ":"))


def items_from_json(text: str) -> tuple[CalcItem, ...]:
    return tuple(CalcItem(*row) for row in json.loads(text))


@dataclass(frozen=True, slots=True)
class PensionDecision:
    """An age (or survivor) pension about to be written. ``ends_on`` (inclusive) is the
    last day it is due, None: for life; ``breadwinner_iin`` the deceased a survivor
    pension is paid for, "" for other kinds."""

    iin: str
    kind: PensionKind
    effective_from: dt.date
    basis: str
    calculation: PensionCalculation
    sources: tuple[SourceRead, ...]
    payments: tuple[Payment, ...]
    ends_on: dt.date | None = None
    breadwinner_iin: str = ""

    @property
    def monthly_amount(self) -> int:
        return self.calculation.monthly_amount


@dataclass(frozen=True, slots=True)
class PensionAssignment:
    assignment_id: str
    iin: str
    kind: PensionKind
    monthly_amount: int
    effective_from: dt.date
    assigned_on: dt.date
    status: str  # active, stopped
    stopped_on: dt.date | None
    stop_reason: str
    basis: str
    calculation: PensionCalculation
    sources: tuple[SourceRead, ...]
    payments: tuple[Payment, ...]
    ends_on: dt.date | None = None  # inclusive; None: for life
    breadwinner_iin: str = ""  # survivor pensions: the deceased
    recalculations: tuple[RecalculationRecord, ...] = ()  # oldest first


@dataclass(frozen=True, slots=True)
class PensionStatus:
    iin: str
    assignments: tuple[PensionAssignment, ...]
    savings_balance: int
    as_of: dt.date  # the day the status describes

    @property
    def receives_pension(self) -> bool:
        """An active assignment that has not reached its end (a survivor pension ends
        the day before the child turns 18, with no one needing to stop it)."""
        return any(
            a.status == "active" and (a.ends_on is None or a.ends_on >= self.as_of)
            for a in self.assignments
        )


@dataclass(frozen=True, slots=True)
class BenefitDecision:
    """A benefit about to be written."""

    kind: BenefitKind
    recipient_iin: str
    subject_iin: str
    amount: int
    frequency: Frequency
    period_from: dt.date
    period_to: dt.date | None
    basis: str
    items: tuple[CalcItem, ...]
    sources: tuple[SourceRead, ...]
    payments: tuple[Payment, ...]


@dataclass(frozen=True, slots=True)
class Benefit:
    benefit_id: str
    kind: BenefitKind
    recipient_iin: str
    subject_iin: str
    amount: int
    frequency: Frequency
    period_from: dt.date
    period_to: dt.date | None
    status: str  # active, completed, stopped, superseded
    assigned_on: dt.date
    basis: str
    items: tuple[CalcItem, ...]
    sources: tuple[SourceRead, ...]
    payments: tuple[Payment, ...]
    stopped_on: dt.date | None = None
    stop_reason: str = ""
    recalculations: tuple[RecalculationRecord, ...] = ()  # oldest first


@dataclass(frozen=True, slots=True)
class RetirementRun:
    as_of: dt.date
    assigned: tuple[PensionAssignment, ...]
    persons_scanned: int
    reached_age: int
    already_assigned: int
    skipped: tuple[str, ...] = field(default=())  # IINs population no longer knows


# -- failures ----------------------------------------------------------------------------


class PensionError(Exception):
    """A request or event the pension system refuses; nothing was changed."""


class InvalidInput(PensionError, ValueError):
    pass


class NotFound(PensionError, LookupError):
    pass


class AlreadyRecorded(PensionError):
    pass


class NotAllowed(PensionError):
    pass


class Unavailable(PensionError):
    pass
