"""The health system's data access layer: SQL in, frozen dataclasses out.

``HealthStore`` wraps one SQLite connection and must be used by one thread at a time.
Reads are single statements. Every write is one ``BEGIN IMMEDIATE`` transaction that
validates inside the transaction and rolls back on any failure, so a refused request
changes nothing.

The write rules themselves live in ``Decisions``, which works on a connection whose
transaction the caller opened: ``HealthStore`` opens one for a request; the bus's
``EventSinkServicer`` opens one for an event (together with its inbox record). Each
decision enqueues its events (``ClinicAttached``, ``AttachmentClosed``,
``DisabilityEstablished``) in the outbox in that same transaction.

| decision             | rule                                                        |
|----------------------|-------------------------------------------------------------|
| attach_on_request    | the clinic serves the district given (permanent or temporary |
|                      | registration, read by the caller); not already there;       |
|                      | a free place; the previous attachment closes (request)      |
| attach_newborn       | the mother's clinic, else the clinic of the child's         |
|                      | district with most free places; at most one newborn         |
|                      | attachment per person, none when already attached; the      |
|                      | age categories (child_under_1, preschool_child, pupil)      |
| close_on_death       | the open attachment closes (death); state-paid periods end  |
|                      | on the death date                                           |
| follow_address       | nothing unless the open attachment's clinic is outside the  |
|                      | new district and its basis (a temporary registration, a     |
|                      | school, a workplace, a college or university) no longer     |
|                      | holds (rules.stays_after_move); then the clinic there with  |
|                      | most free places, by the registered address                 |
| record_conclusion    | no overlap with the person's other conclusions; every group |
|                      | state-paid for the same period (rules.DISABILITY_CATEGORY)  |
| record_ground        | a well-formed fact (rules.validate_ground); no overlap with |
|                      | the person's periods of the same category; a carer's person |
|                      | cared for has a group-1 conclusion in force on the first day |
| end_ground           | the recorded period, shortened (never lengthened)           |
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from zhol.adapters.bus.outbox import enqueue_event
from zhol.adapters.health import rules, schema
from zhol.adapters.health.model import (
    AlreadyRecorded,
    Attachment,
    AttachReason,
    Clinic,
    ConclusionRequest,
    Decision,
    DetachReason,
    DisabilityConclusion,
    GroundRequest,
    InsurancePeriod,
    InvalidInput,
    NotAllowed,
    NotFound,
    PlaceCheck,
    StateInsuredGround,
    Unavailable,
)
from zhol.adapters.runtime.store import AgencyStore, today_in_kz
from zhol.core.clock import Clock
from zhol.core.iin import Iin
from zhol.health.v1 import health_pb2 as pb

T = TypeVar("T")

CONCLUSION_PREFIX = "MSE-"
MAX_CLINIC_ID_LENGTH = 64
MAX_PLACE_LENGTH = 200

_CLINIC_COLUMNS = """
    SELECT c.clinic_id, c.name, c.region, c.district, c.capacity,
           (SELECT count(*) FROM attachments AS a
            WHERE a.clinic_id = c.clinic_id AND a.detached_on IS NULL)
    FROM clinics AS c
"""
_ATTACHMENT_COLUMNS = """
    SELECT a.iin, a.attached_on, a.reason, a.detached_on, a.detach_reason, a.basis,
           c.clinic_id, c.name, c.region, c.district, c.capacity,
           (SELECT count(*) FROM attachments AS o
            WHERE o.clinic_id = c.clinic_id AND o.detached_on IS NULL)
    FROM attachments AS a JOIN clinics AS c ON c.clinic_id = a.clinic_id
"""
_OPEN_ATTACHMENT = _ATTACHMENT_COLUMNS + " WHERE a.iin = ? AND a.detached_on IS NULL"
_PERIOD_COLUMNS = """
    SELECT iin, social_category, valid_from, valid_to, source FROM insurance_periods
"""
_CONCLUSION_COLUMNS = """
    SELECT conclusion_id, iin, disability_group, valid_from, valid_to, decided_on,
           since_childhood
    FROM disability_conclusions
"""
_GROUND_COLUMNS = """
    SELECT iin, social_category, valid_from, valid_to, basis, cared_for_iin, recorded_on
    FROM state_insured_grounds
"""


class HealthStore(AgencyStore, agency="health", schema=schema):
    # -- reads -------------------------------------------------------------------------

    def list_clinics(self, region: str = "", district: str = "") -> tuple[Clinic, ...]:
        """Clinics in (region, district, clinic_id) order; empty filters match all."""
        region = _place(region, "region")
        district = _place(district, "district")
        return list_clinics(self._conn, region, district)

    def get_clinic(self, clinic_id: str) -> Clinic:
        return get_clinic(self._conn, parse_clinic_id(clinic_id))

    def get_attachment(self, iin: Iin) -> Attachment:
        """The open attachment; ``NotFound`` when the person is attached nowhere."""
        found = open_attachment(self._conn, iin)
        if found is None:
            raise NotFound(f"{iin} is not attached to any clinic")
        return found

    def list_attachments(self, iin: Iin) -> tuple[Attachment, ...]:
        rows = self._conn.execute(
            _ATTACHMENT_COLUMNS + " WHERE a.iin = ? ORDER BY a.attached_on, a.id", (iin.value,)
        ).fetchall()
        return tuple(_attachment(row) for row in rows)

    def state_paid_period(self, iin: Iin, day: dt.date) -> InsurancePeriod | None:
        """The state-paid period covering ``day`` (the latest started), or None."""
        day_text = day.isoformat()
        row = self._conn.execute(
            _PERIOD_COLUMNS + " WHERE iin = ? AND category = 'state_paid'"
            " AND valid_from <= ? AND (valid_to IS NULL OR valid_to >= ?)"
            " ORDER BY valid_from DESC, social_category LIMIT 1",
            (iin.value, day_text, day_text),
        ).fetchone()
        return None if row is None else _period(row)

    def list_insurance_periods(self, iin: Iin) -> tuple[InsurancePeriod, ...]:
        rows = self._conn.execute(
            _PERIOD_COLUMNS + " WHERE iin = ? ORDER BY valid_from, social_category",
            (iin.value,),
        ).fetchall()
        return tuple(_period(row) for row in rows)

    def list_conclusions(self, iin: Iin) -> tuple[DisabilityConclusion, ...]:
        rows = self._conn.execute(
            _CONCLUSION_COLUMNS + " WHERE iin = ? ORDER BY valid_from, conclusion_id",
            (iin.value,),
        ).fetchall()
        return tuple(_conclusion(row) for row in rows)

    def list_grounds(self, iin: Iin) -> tuple[StateInsuredGround, ...]:
        """The recorded facts of rules.RECORDED_GROUNDS, oldest first."""
        return list_grounds(self._conn, iin)

    def grounds_on(self, iin: Iin, day: dt.date) -> tuple[StateInsuredGround, ...]:
        """The recorded facts whose period covers ``day``."""
        return tuple(g for g in list_grounds(self._conn, iin)
                     if rules.overlaps(g.valid_from, g.valid_to, day, day))

    # -- writes (one transaction each) -------------------------------------------------

    def attach_on_request(
        self, iin: Iin, clinic_id: str, *, region: str, district: str,
        basis: str = rules.REGISTERED_ADDRESS,
    ) -> Decision:
        """Attach at the citizen's request; ``region``/``district`` are those of the
        place ``basis`` names (one of rules.ATTACHMENT.bases, read by the caller over the
        bus), stored with the attachment; insurance is no condition."""
        clinic_id = parse_clinic_id(clinic_id)
        return self.run(lambda d: d.attach_on_request(iin, clinic_id, region, district, basis))

    def record_conclusion(
        self, request: ConclusionRequest, *, birth_date: dt.date
    ) -> DisabilityConclusion:
        """Record the commission's conclusion (``birth_date`` read from population)."""
        rules.validate_conclusion(request, self.today())
        return self.run(lambda d: d.record_conclusion(request, birth_date))

    def record_ground(self, request: GroundRequest) -> StateInsuredGround:
        rules.validate_ground(request, self.today())
        return self.run(lambda d: d.record_ground(request))

    def end_ground(
        self, iin: Iin, social_category: str, valid_from: dt.date, valid_to: dt.date
    ) -> StateInsuredGround:
        return self.run(lambda d: d.end_ground(iin, social_category, valid_from, valid_to))

    def run(self, decide: Callable[[Decisions], T]) -> T:
        """Run one decision in its own transaction (rolled back if it raises)."""
        with self._transaction():
            return decide(Decisions(self._conn, self._clock))

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise


class Decisions:
    """The write rules, on a connection whose transaction the caller opened and commits.

    A method either changes what it must (and enqueues the events announcing it) or
    raises a ``HealthError`` after changing nothing itself; the caller rolls back.
    """

    def __init__(self, conn: sqlite3.Connection, clock: Clock) -> None:
        if not conn.in_transaction:
            raise RuntimeError("Decisions needs an open write transaction")
        self._conn = conn
        self._clock = clock
        self._today = today_in_kz(clock)

    @property
    def today(self) -> dt.date:
        return self._today

    # -- attachments -------------------------------------------------------------------

    def attach_on_request(
        self, iin: Iin, clinic_id: str, region: str, district: str,
        basis: str = rules.REGISTERED_ADDRESS,
    ) -> Decision:
        if basis not in rules.ATTACHMENT.bases:
            raise InvalidInput(f"basis must be one of {', '.join(rules.ATTACHMENT.bases)}")
        clinic = get_clinic(self._conn, clinic_id)
        if not clinic.serves(region, district):
            raise NotAllowed(
                f"clinic {clinic.clinic_id} serves {clinic.district}, {clinic.region};"
                " the person is registered in another district"
            )
        current = open_attachment(self._conn, iin)
        if current is not None and current.clinic.clinic_id == clinic.clinic_id:
            raise AlreadyRecorded(f"{iin} is already attached to {clinic.clinic_id}")
        if clinic.free <= 0:
            raise NotAllowed(f"clinic {clinic.clinic_id} has no free places")
        return self._move(iin, current, clinic, AttachReason.REQUEST, DetachReason.REQUEST,
                          basis=basis)

    def attach_newborn(
        self,
        child: Iin,
        mother: Iin,
        birth_date: dt.date,
        *,
        home: tuple[str, str] | None,
        source: str,
    ) -> Decision:
        """Attach a newborn to the mother's clinic (else a clinic of ``home``, the child's
        (region, district)) and record the age categories. Once per child."""
        for category, first, last in rules.age_periods(birth_date):
            self._conn.execute(
                "INSERT INTO insurance_periods (iin, category, social_category, valid_from,"
                " valid_to, source, recorded_on) VALUES (?, 'state_paid', ?, ?, ?, ?, ?)"
                " ON CONFLICT (iin, social_category, valid_from) DO NOTHING",
                (child.value, category, first.isoformat(), last.isoformat(), source,
                 self._today.isoformat()),
            )
        already = self._conn.execute(
            "SELECT 1 FROM attachments WHERE iin = ? AND (reason = 'newborn'"
            " OR detached_on IS NULL) LIMIT 1",
            (child.value,),
        ).fetchone()
        if already is not None:
            return Decision()
        mothers = open_attachment(self._conn, mother)
        if mothers is not None:
            clinic = mothers.clinic
        elif home is not None:
            chosen = rules.choose_clinic(list_clinics(self._conn, *home))
            if chosen is None:
                return Decision()
            clinic = chosen
        else:
            return Decision()
        return self._move(child, None, clinic, AttachReason.NEWBORN, DetachReason.REQUEST,
                          on=max(self._today, birth_date), basis=rules.REGISTERED_ADDRESS)

    def close_on_death(self, iin: Iin, death_date: dt.date) -> Decision:
        """Close the open attachment on the death date; end state-paid periods then."""
        day = death_date.isoformat()
        self._conn.execute(
            "DELETE FROM insurance_periods WHERE iin = ? AND valid_from > ?", (iin.value, day)
        )
        self._conn.execute(
            "UPDATE insurance_periods SET valid_to = ?"
            " WHERE iin = ? AND (valid_to IS NULL OR valid_to > ?)",
            (day, iin.value, day),
        )
        # the recorded grounds (rules.RECORDED_GROUNDS) end on the death date too
        self._conn.execute(
            "DELETE FROM state_insured_grounds WHERE iin = ? AND valid_from > ?", (iin.value, day)
        )
        self._conn.execute(
            "UPDATE state_insured_grounds SET valid_to = ?, ended_on = ?"
            " WHERE iin = ? AND (valid_to IS NULL OR valid_to > ?)",
            (day, self._today.isoformat(), iin.value, day),
        )
        current = open_attachment(self._conn, iin)
        if current is None:
            return Decision()
        closed = self._close(current, DetachReason.DEATH, max(death_date, current.attached_on))
        return Decision(closed=closed)

    def follow_address(
        self, iin: Iin, region: str, district: str, checked: PlaceCheck | None = None
    ) -> Decision:
        """After a move: re-attach to a clinic of the new district when the current
        clinic is elsewhere, unless the attachment rests on a place that still holds
        (rules.stays_after_move; ``checked``: what the caller asked over the bus about
        the open attachment's place); nothing when nothing is open."""
        current = open_attachment(self._conn, iin)
        if current is None:
            return Decision()
        serves = current.clinic.serves(region, district)
        holds = False
        if not serves and current.basis in rules.KEPT_ON_MOVE:
            if checked is None or (checked.clinic_id, checked.basis) != (
                current.clinic.clinic_id, current.basis
            ):
                # the attachment changed since its place was asked about: ask again
                raise Unavailable("the attachment changed while its place was checked")
            holds = checked.holds
        if rules.stays_after_move(current.basis, serves_new_home=serves, place_holds=holds):
            return Decision()
        clinic = rules.choose_clinic(list_clinics(self._conn, region, district))
        if clinic is None:
            return Decision()  # no clinic there: better attached elsewhere than nowhere
        return self._move(
            iin, current, clinic, AttachReason.ADDRESS_CHANGE, DetachReason.ADDRESS_CHANGE,
            basis=rules.REGISTERED_ADDRESS,
        )

    # -- disability --------------------------------------------------------------------

    def record_conclusion(
        self, request: ConclusionRequest, birth_date: dt.date
    ) -> DisabilityConclusion:
        rules.validate_conclusion(request, self._today)
        if request.valid_from < birth_date:
            raise NotAllowed("from_date is before the person's birth")
        rows = self._conn.execute(
            _CONCLUSION_COLUMNS + " WHERE iin = ?", (request.iin.value,)
        ).fetchall()
        for existing in map(_conclusion, rows):
            same = (existing.group, existing.valid_from, existing.valid_to) == (
                request.group, request.valid_from, request.valid_to,
            )
            if same:
                raise AlreadyRecorded(
                    f"the same conclusion is already recorded as {existing.conclusion_id}"
                )
            if rules.overlaps(existing.valid_from, existing.valid_to,
                              request.valid_from, request.valid_to):
                raise NotAllowed(
                    f"the period overlaps conclusion {existing.conclusion_id}"
                )
        conclusion = DisabilityConclusion(
            conclusion_id=self._next_conclusion_id(),
            iin=request.iin,
            group=request.group,
            valid_from=request.valid_from,
            valid_to=request.valid_to,
            decided_on=self._today,
            since_childhood=request.since_childhood,
        )
        self._conn.execute(
            "INSERT INTO disability_conclusions (conclusion_id, iin, disability_group,"
            " valid_from, valid_to, decided_on, since_childhood) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (conclusion.conclusion_id, conclusion.iin.value, conclusion.group,
             conclusion.valid_from.isoformat(), _iso(conclusion.valid_to),
             conclusion.decided_on.isoformat(), int(conclusion.since_childhood)),
        )
        category = rules.DISABILITY_CATEGORY[conclusion.group]
        if category is not None:
            self._conn.execute(
                "INSERT INTO insurance_periods (iin, category, social_category, valid_from,"
                " valid_to, source, recorded_on) VALUES (?, 'state_paid', ?, ?, ?, ?, ?)"
                " ON CONFLICT (iin, social_category, valid_from) DO UPDATE SET"
                " valid_to = excluded.valid_to, source = excluded.source,"
                " recorded_on = excluded.recorded_on",
                (conclusion.iin.value, category, conclusion.valid_from.isoformat(),
                 _iso(conclusion.valid_to), f"conclusion {conclusion.conclusion_id}",
                 self._today.isoformat()),
            )
        self._enqueue(
            conclusion.iin,
            pb.DisabilityEstablished(
                iin=conclusion.iin.value,
                group=conclusion.group,
                from_date=date_pb(conclusion.valid_from),
                to_date=date_pb(conclusion.valid_to) if conclusion.valid_to else None,
                conclusion_id=conclusion.conclusion_id,
                since_childhood=conclusion.since_childhood,
            ),
        )
        return conclusion

    # -- recorded grounds of state-paid insurance (rules.RECORDED_GROUNDS) ---------------

    def record_ground(self, request: GroundRequest) -> StateInsuredGround:
        rule = rules.validate_ground(request, self._today)
        for existing in list_grounds(self._conn, request.iin):
            if existing.social_category != request.social_category:
                continue
            if (existing.valid_from, existing.valid_to) == (request.valid_from, request.valid_to):
                raise AlreadyRecorded(f"the same {request.social_category} period is recorded")
            if rules.overlaps(existing.valid_from, existing.valid_to,
                              request.valid_from, request.valid_to):
                raise NotAllowed(
                    f"the period overlaps the {request.social_category} period from"
                    f" {existing.valid_from.isoformat()}"
                )
        if rule.cares_for_group is not None:
            assert request.cared_for is not None  # validate_ground
            rows = self._conn.execute(
                _CONCLUSION_COLUMNS + " WHERE iin = ?", (request.cared_for.value,)
            ).fetchall()
            if rules.active_conclusion(
                map(_conclusion, rows), rule.cares_for_group, request.valid_from
            ) is None:
                raise NotAllowed(
                    f"the person cared for has no group-{rule.cares_for_group} conclusion"
                    f" in force on {request.valid_from.isoformat()}"
                )
        ground = StateInsuredGround(
            request.iin, request.social_category, request.valid_from, request.valid_to,
            request.basis.strip(), request.cared_for, self._today,
        )
        self._conn.execute(
            "INSERT INTO state_insured_grounds (iin, social_category, valid_from, valid_to,"
            " basis, cared_for_iin, recorded_on) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (ground.iin.value, ground.social_category, ground.valid_from.isoformat(),
             _iso(ground.valid_to), ground.basis,
             None if ground.cared_for is None else ground.cared_for.value,
             ground.recorded_on.isoformat()),
        )
        return ground

    def end_ground(
        self, iin: Iin, social_category: str, valid_from: dt.date, valid_to: dt.date
    ) -> StateInsuredGround:
        """Set the last day of a recorded period (a release, the end of the care)."""
        if social_category not in rules.RECORDED_GROUNDS:
            raise InvalidInput(
                f"social_category must be one of {', '.join(sorted(rules.RECORDED_GROUNDS))}"
            )
        if valid_to < valid_from:
            raise InvalidInput("to_date is before from_date")
        found = [g for g in list_grounds(self._conn, iin)
                 if (g.social_category, g.valid_from) == (social_category, valid_from)]
        if not found:
            raise NotFound(f"no {social_category} period of {iin} from {valid_from.isoformat()}")
        (ground,) = found
        if ground.valid_to == valid_to:
            raise AlreadyRecorded(f"the period already ends on {valid_to.isoformat()}")
        if ground.valid_to is not None and valid_to > ground.valid_to:
            raise NotAllowed(
                f"the period ends on {ground.valid_to.isoformat()}; it can only be shortened"
            )
        self._conn.execute(
            "UPDATE state_insured_grounds SET valid_to = ?, ended_on = ?"
            " WHERE iin = ? AND social_category = ? AND valid_from = ?",
            (valid_to.isoformat(), self._today.isoformat(), iin.value, social_category,
             valid_from.isoformat()),
        )
        return StateInsuredGround(
            ground.iin, ground.social_category, ground.valid_from, valid_to, ground.basis,
            ground.cared_for, ground.recorded_on,
        )

    # -- helpers -----------------------------------------------------------------------

    def _move(
        self,
        iin: Iin,
        current: Attachment | None,
        clinic: Clinic,
        reason: AttachReason,
        detach_reason: DetachReason,
        *,
        basis: str,
        on: dt.date | None = None,
    ) -> Decision:
        day = on or self._today
        closed = None
        if current is not None:
            closed = self._close(current, detach_reason, max(day, current.attached_on))
        self._conn.execute(
            "INSERT INTO attachments (iin, clinic_id, attached_on, reason, basis)"
            " VALUES (?, ?, ?, ?, ?)",
            (iin.value, clinic.clinic_id, day.isoformat(), reason.value, basis),
        )
        opened = Attachment(
            iin, get_clinic(self._conn, clinic.clinic_id), day, reason, basis=basis
        )
        self._enqueue(
            iin,
            pb.ClinicAttached(
                iin=iin.value, clinic_id=clinic.clinic_id, reason=reason.value,
                attached_on=date_pb(day),
            ),
        )
        return Decision(closed=closed, opened=opened)

    def _close(self, current: Attachment, reason: DetachReason, day: dt.date) -> Attachment:
        self._conn.execute(
            "UPDATE attachments SET detached_on = ?, detach_reason = ?"
            " WHERE iin = ? AND detached_on IS NULL",
            (day.isoformat(), reason.value, current.iin.value),
        )
        self._enqueue(
            current.iin,
            pb.AttachmentClosed(
                iin=current.iin.value, clinic_id=current.clinic.clinic_id,
                reason=reason.value, closed_on=date_pb(day),
            ),
        )
        return Attachment(
            current.iin, current.clinic, current.attached_on, current.reason, day, reason,
            current.basis,
        )

    def _enqueue(self, iin: Iin, event: pb.DisabilityEstablished | pb.ClinicAttached
                 | pb.AttachmentClosed) -> None:
        enqueue_event(
            self._conn, event.DESCRIPTOR.full_name, event,
            data_subject=iin.value, occurred_at_ms=self._clock.now_ms(),
        )

    def _next_conclusion_id(self) -> str:
        prefix = f"{CONCLUSION_PREFIX}{self._today.year}-"
        (highest,) = self._conn.execute(
            "SELECT max(conclusion_id) FROM disability_conclusions"
            " WHERE conclusion_id >= ? AND conclusion_id < ?",
            (prefix, prefix[:-1] + "."),  # '.' sorts right after '-'
        ).fetchone()
        number = int(highest[len(prefix):]) + 1 if highest else 1
        return f"{prefix}{number:07d}"


# -- shared reads (any connection) -------------------------------------------------------


def list_clinics(conn: sqlite3.Connection, region: str, district: str) -> tuple[Clinic, ...]:
    where, args = [], []
    if region:
        where.append("c.region = ?")
        args.append(region)
    if district:
        where.append("c.district = ?")
        args.append(district)
    sql = _CLINIC_COLUMNS
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY c.region, c.district, c.clinic_id"
    return tuple(_clinic(row) for row in conn.execute(sql, args))


def get_clinic(conn: sqlite3.Connection, clinic_id: str) -> Clinic:
    row = conn.execute(_CLINIC_COLUMNS + " WHERE c.clinic_id = ?", (clinic_id,)).fetchone()
    if row is None:
        raise NotFound(f"no clinic {clinic_id}")
    return _clinic(row)


def list_grounds(conn: sqlite3.Connection, iin: Iin) -> tuple[StateInsuredGround, ...]:
    rows = conn.execute(
        _GROUND_COLUMNS + " WHERE iin = ? ORDER BY valid_from, social_category", (iin.value,)
    ).fetchall()
    return tuple(_ground(row) for row in rows)


def open_attachment(conn: sqlite3.Connection, iin: Iin) -> Attachment | None:
    row = conn.execute(_OPEN_ATTACHMENT, (iin.value,)).fetchone()
    return None if row is None else _attachment(row)


def peek_open_attachment(path: Path, iin: Iin) -> Attachment | None:
    """The open attachment, read on a query-only connection of its own (an event
    handler's look before its bus reads; the write re-reads it in its transaction)."""
    conn = schema.connect(path, read_only=True)
    try:
        return open_attachment(conn, iin)
    finally:
        conn.close()


# -- parsing and values ------------------------------------------------------------------


def parse_clinic_id(text: str) -> str:
    clinic_id = text.strip()
    if not clinic_id:
        raise InvalidInput("clinic_id is required")
    if len(clinic_id) > MAX_CLINIC_ID_LENGTH or not (
        clinic_id.isascii() and clinic_id.isprintable()
    ):
        raise InvalidInput("clinic_id is malformed")
    return clinic_id


def _place(text: str, field: str) -> str:
    value = text.strip()
    if len(value) > MAX_PLACE_LENGTH or not value.isprintable():
        raise InvalidInput(f"{field} is malformed")
    return value


def date_pb(day: dt.date) -> pb.Date:
    return pb.Date(year=day.year, month=day.month, day=day.day)


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


def _date(text: str | None) -> dt.date | None:
    return None if text is None else dt.date.fromisoformat(text)


def _clinic(row: tuple) -> Clinic:
    clinic_id, name, region, district, capacity, attached = row
    return Clinic(clinic_id, name, region, district, capacity, attached)


def _attachment(row: tuple) -> Attachment:
    iin, attached_on, reason, detached_on, detach_reason, basis = row[:6]
    return Attachment(
        Iin(iin),
        _clinic(row[6:]),
        dt.date.fromisoformat(attached_on),
        AttachReason(reason),
        _date(detached_on),
        DetachReason(detach_reason) if detach_reason else None,
        basis,
    )


def _period(row: tuple) -> InsurancePeriod:
    iin, category, valid_from, valid_to, source = row
    return InsurancePeriod(
        Iin(iin), category, dt.date.fromisoformat(valid_from), _date(valid_to), source
    )


def _conclusion(row: tuple) -> DisabilityConclusion:
    conclusion_id, iin, group, valid_from, valid_to, decided_on, since_childhood = row
    return DisabilityConclusion(
        conclusion_id, Iin(iin), group, dt.date.fromisoformat(valid_from), _date(valid_to),
        dt.date.fromisoformat(decided_on), bool(since_childhood),
    )


def _ground(row: tuple) -> StateInsuredGround:
    iin, category, valid_from, valid_to, basis, cared_for, recorded_on = row
    return StateInsuredGround(
        Iin(iin), category, dt.date.fromisoformat(valid_from), _date(valid_to), basis,
        None if cared_for is None else Iin(cared_for), dt.date.fromisoformat(recorded_on),
    )


__all__ = [
    "Decisions",
    "HealthStore",
    "get_clinic",
    "list_clinics",
    "open_attachment",
    "peek_open_attachment",
    "parse_clinic_id",
]
