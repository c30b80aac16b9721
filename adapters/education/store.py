"""The education system's data access layer: SQL in, frozen dataclasses out.

One ``EducationStore`` wraps one SQLite connection and must be used by one thread at
a time. Reads are single statements or a few on one snapshot; every write is one
``BEGIN IMMEDIATE`` transaction that validates inside the transaction and rolls back
on any failure, so a refused request changes nothing.

The decisions themselves are the ``record_*`` functions: they work on a connection
inside a transaction someone else opened, so that the gRPC writes (the store's own
transaction) and the event handlers (the bus inbox's transaction, which also records
the delivery) share one implementation. Each decision enqueues its event in the outbox
on the same connection (``adapters.education.events``). The child's facts come in as a
``Citizen`` read from population for this decision; none of them is written.

Decisions about events are idempotent in effect even without the inbox: a second
``BirthRegistered`` for the same child finds its newborn entry (a partial unique index
allows one) and does nothing; a second ``AddressChanged`` finds the entry already in
the new district; a second ``DeathRegistered`` finds nothing active.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from zhol.adapters.education import events, rules, schema
from zhol.adapters.education.model import (
    AlreadyRecorded,
    Citizen,
    District,
    Enrolment,
    EnrolmentStatus,
    Institution,
    InstitutionKind,
    InvalidInput,
    Kindergarten,
    NotAllowed,
    NotFound,
    QueueEntry,
    QueueMove,
    QueuePosition,
    QueueReason,
    QueueStatus,
    School,
    Study,
    StudyForm,
    StudyLevel,
    StudyRequest,
    WithdrawalCause,
)
from zhol.adapters.runtime.store import AgencyStore
from zhol.core.iin import Iin

T = TypeVar("T")

MAX_FILTER_LENGTH = 200
MAX_ID_LENGTH = 64

_ENTRY = """
    SELECT q.queue_entry_id, q.iin, d.district_id, d.region, d.name, q.kindergarten_id,
           q.queued_on, q.status, q.reason, q.placed_in, q.status_changed_on,
           q.withdrawn_because
    FROM queue_entries AS q JOIN districts AS d ON d.district_id = q.district_id
"""
_ACTIVE_ENTRY = _ENTRY + " WHERE q.iin = ? AND q.status <> 'withdrawn'"
_LATEST_ENTRY = _ENTRY + " WHERE q.iin = ? ORDER BY q.status = 'withdrawn', q.queue_entry_id DESC"
_ENTRY_BY_ID = _ENTRY + " WHERE q.queue_entry_id = ?"
_AHEAD = """
    SELECT count(*) FROM queue_entries
    WHERE status = 'waiting' AND district_id = ?
      AND (queued_on < ? OR (queued_on = ? AND queue_entry_id <= ?))
"""
_MOVES = """
    SELECT m.queue_entry_id, f.district_id, f.region, f.name, t.district_id, t.region, t.name,
           m.moved_on, m.reason
    FROM queue_moves AS m
    JOIN districts AS f ON f.district_id = m.from_district_id
    JOIN districts AS t ON t.district_id = m.to_district_id
    WHERE m.queue_entry_id = ? ORDER BY m.move_id
"""
_KINDERGARTENS = """
    SELECT k.kindergarten_id, k.name, d.district_id, d.region, d.name, k.capacity, k.languages,
           (SELECT count(*) FROM queue_entries AS q
            WHERE q.status = 'placed' AND q.placed_in = k.kindergarten_id)
    FROM kindergartens AS k JOIN districts AS d ON d.district_id = k.district_id
"""
_SCHOOLS = """
    SELECT s.school_id, s.name, d.district_id, d.region, d.name, s.capacity, s.languages,
           (SELECT count(*) FROM school_enrolments AS e
            WHERE e.status = 'active' AND e.school_id = s.school_id)
    FROM schools AS s JOIN districts AS d ON d.district_id = s.district_id
"""
_INSTITUTIONS = """
    SELECT i.institution_id, i.name, i.kind, d.district_id, d.region, d.name,
           (SELECT count(*) FROM studies AS s
            WHERE s.institution_id = i.institution_id AND s.ended_on IS NULL)
    FROM institutions AS i JOIN districts AS d ON d.district_id = i.district_id
"""
_STUDY = """
    SELECT study_id, iin, institution_id, level, form, started_on, ended_on FROM studies
"""
_ENROLMENT = """
    SELECT enrolment_id, iin, school_id, grade, enrolled_on, status, school_year_start
    FROM school_enrolments
"""


@dataclass(frozen=True, slots=True)
class DeathOutcome:
    """What a registered death ended here (either may be None)."""

    withdrawn: QueueEntry | None
    enrolment_ended: Enrolment | None


class EducationStore(AgencyStore, agency="education", schema=schema):
    # -- reads -------------------------------------------------------------------------

    def find_district(self, region: str, district: str) -> District | None:
        return find_district(self._conn, region, district)

    def list_kindergartens(self, region: str = "", district: str = "") -> tuple[Kindergarten, ...]:
        where, args = _place_filter(region, district)
        sql = _KINDERGARTENS + where + " ORDER BY k.kindergarten_id"
        return tuple(_kindergarten(row) for row in self._conn.execute(sql, args))

    def list_schools(self, region: str = "", district: str = "") -> tuple[School, ...]:
        where, args = _place_filter(region, district)
        sql = _SCHOOLS + where + " ORDER BY s.school_id"
        return tuple(_school(row) for row in self._conn.execute(sql, args))

    def get_kindergarten(self, kindergarten_id: str) -> Kindergarten:
        return _get_kindergarten(self._conn, kindergarten_id)

    def get_school(self, school_id: str) -> School:
        return _get_school(self._conn, school_id)

    def queue_position(self, iin: Iin) -> QueuePosition:
        """The child's active entry (else its latest) with its position; ``NotFound``
        when the child was never queued."""
        with self._snapshot():
            row = self._conn.execute(_LATEST_ENTRY, (iin.value,)).fetchone()
            if row is None:
                raise NotFound(f"child {iin} is not in the kindergarten queue")
            return position_of(self._conn, _entry(row))

    def list_enrolments(self, iin: Iin) -> tuple[Enrolment, ...]:
        """The child's enrolments, newest first (empty when never enrolled)."""
        rows = self._conn.execute(
            _ENROLMENT + " WHERE iin = ? ORDER BY enrolment_id DESC", (iin.value,)
        ).fetchall()
        return tuple(_enrolment(row) for row in rows)

    # -- writes ------------------------------------------------------------------------

    def enqueue(self, child: Citizen, kindergarten_id: str | None) -> QueuePosition:
        """Queue a child on a parent's request (the child's facts read from population)."""
        today = self.today()
        with self._transaction():
            entry = record_request(self._conn, child, kindergarten_id, today,
                                   self._clock.now_ms())
            return position_of(self._conn, entry)

    def withdraw(self, iin: Iin) -> QueuePosition:
        """Take a child out of the queue on a parent's request."""
        today = self.today()
        with self._transaction():
            entry = _active_entry(self._conn, iin)
            if entry is None:
                raise NotFound(f"child {iin} has no active place in the kindergarten queue")
            withdrawn = _withdraw(self._conn, entry, WithdrawalCause.REQUEST, today)
            return position_of(self._conn, withdrawn)

    def place(self, iin: Iin, kindergarten_id: str) -> QueuePosition:
        """Give a waiting child a place in a kindergarten of its queue's district."""
        today = self.today()
        with self._transaction():
            entry = record_placement(self._conn, iin, kindergarten_id, today,
                                     self._clock.now_ms())
            return position_of(self._conn, entry)

    def enroll(self, child: Citizen, school_id: str, grade: int) -> Enrolment:
        """Enrol a child in a school (the child's facts read from population)."""
        today = self.today()
        with self._transaction():
            return record_enrolment(self._conn, child, school_id, grade, today,
                                    self._clock.now_ms())

    # -- colleges, universities and studies ----------------------------------------------

    def list_institutions(self, region: str = "", district: str = "", kind: str = ""
                          ) -> tuple[Institution, ...]:
        where, args = _place_filter(region, district)
        if kind.strip():
            try:
                chosen = InstitutionKind(kind.strip())
            except ValueError:
                raise InvalidInput("kind must be college or university") from None
            where += (" AND " if where else " WHERE ") + "i.kind = ?"
            args = (*args, chosen.value)
        sql = _INSTITUTIONS + where + " ORDER BY i.institution_id"
        return tuple(_institution(row) for row in self._conn.execute(sql, args))

    def get_institution(self, institution_id: str) -> Institution:
        return _get_institution(self._conn, institution_id)

    def list_studies(self, iin: Iin) -> tuple[Study, ...]:
        """The person's studies, newest first (empty when none)."""
        with self._snapshot():
            rows = self._conn.execute(
                _STUDY + " WHERE iin = ? ORDER BY started_on DESC, study_id DESC", (iin.value,)
            ).fetchall()
            return tuple(_study(self._conn, row) for row in rows)

    def record_study(self, request: StudyRequest) -> Study:
        """A student's admission: the institution teaches the level, one open study per
        person and institution."""
        today = self.today()
        with self._transaction():
            institution = _get_institution(self._conn, request.institution_id)
            rules.check_study(institution.kind, request.level, request.started_on, today)
            open_there = self._conn.execute(
                "SELECT study_id FROM studies WHERE iin = ? AND institution_id = ?"
                " AND ended_on IS NULL", (request.iin.value, institution.institution_id),
            ).fetchone()
            if open_there is not None:
                raise AlreadyRecorded(
                    f"{request.iin} already studies at {institution.institution_id}"
                    f" (study {open_there[0]})"
                )
            cursor = self._conn.execute(
                "INSERT INTO studies (iin, institution_id, level, form, started_on, ended_on)"
                " VALUES (?, ?, ?, ?, ?, NULL)",
                (request.iin.value, institution.institution_id, request.level.value,
                 request.form.value, request.started_on.isoformat()),
            )
            return _study_by_id(self._conn, int(cursor.lastrowid or 0))

    def end_study(self, iin: Iin, study_id: int, ended_on: dt.date | None) -> Study:
        """End the person's open study on ``ended_on`` (its last day; None: today)."""
        today = self.today()
        with self._transaction():
            row = self._conn.execute(_STUDY + " WHERE study_id = ?", (study_id,)).fetchone()
            if row is None or row[1] != iin.value:
                raise NotFound(f"{iin} has no study {study_id}")
            study = _study(self._conn, row)
            last = ended_on or today
            rules.check_study_end(study, last, today)
            self._conn.execute(
                "UPDATE studies SET ended_on = ? WHERE study_id = ?", (last.isoformat(), study_id)
            )
            return _study_by_id(self._conn, study_id)

    def apply(self, decision: Callable[..., T], *args: object) -> T:
        """Run a ``record_*`` function in one transaction of this store (tests, tools)."""
        with self._transaction():
            return decision(self._conn, *args)

    # -- helpers -----------------------------------------------------------------------

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

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """Several reads on one committed snapshot."""
        self._conn.execute("BEGIN")
        try:
            yield
        finally:
            self._conn.execute("COMMIT")


# -- decisions (on a connection inside the caller's transaction) -------------------------


def record_request(
    conn: sqlite3.Connection,
    child: Citizen,
    kindergarten_id: str | None,
    today: dt.date,
    now_ms: int,
) -> QueueEntry:
    """A parent asks for a kindergarten place: age, address and one active entry checked."""
    rules.check_alive(child)
    rules.check_kindergarten_age(child, today)
    district = _served_district(conn, child)
    if _active_entry(conn, child.iin) is not None:
        raise AlreadyRecorded(f"child {child.iin} already has a place in the kindergarten queue")
    if kindergarten_id:
        kindergarten = _get_kindergarten(conn, kindergarten_id)
        if kindergarten.district.district_id != district.district_id:
            raise NotAllowed(
                f"kindergarten {kindergarten_id} is in {_where(kindergarten.district)}; the"
                f" child is registered in {_where(district)}"
            )
    if _active_enrolment(conn, child.iin) is not None:
        raise NotAllowed(f"child {child.iin} is enrolled in a school")
    entry = _insert_entry(conn, child.iin, district, kindergarten_id or None, today,
                          QueueReason.REQUEST, today)
    events.queued(conn, entry, now_ms)
    return entry


def record_newborn(
    conn: sqlite3.Connection, child: Citizen, queued_on: dt.date, today: dt.date, now_ms: int
) -> QueueEntry | None:
    """Queue a newborn in the district of its registered address, exactly once.

    None (nothing written) when the child was queued as a newborn before, already has
    an active entry (a parent was quicker than the event), died, or is past the
    kindergarten age (a birth registered late). ``NotAllowed`` when the child has no
    registered district that education serves.
    """
    if child.deceased:
        return None
    if rules.age_on(child.birth_date, today) not in rules.KINDERGARTEN_AGES:
        return None
    row = conn.execute(
        "SELECT 1 FROM queue_entries WHERE iin = ?"
        " AND (reason = 'newborn' OR status <> 'withdrawn') LIMIT 1",
        (child.iin.value,),
    ).fetchone()
    if row is not None:
        return None
    district = _served_district(conn, child)
    queued_on = min(max(queued_on, child.birth_date), today)
    entry = _insert_entry(conn, child.iin, district, None, queued_on, QueueReason.NEWBORN, today)
    events.queued(conn, entry, now_ms)
    return entry


def record_address_change(
    conn: sqlite3.Connection, child: Citizen, today: dt.date, now_ms: int
) -> QueueMove | None:
    """Move a waiting child's place to the district of its new registered address.

    The entry keeps its ``queued_on`` (the child keeps its seniority) and drops its
    preferred kindergarten (which stands in the old district); the move is recorded.
    None (nothing written) when there is no waiting entry, the district is the same,
    the child died or has no registered district any more. A placed child keeps its
    kindergarten. ``NotAllowed`` when education does not serve the new district.
    """
    entry = _active_entry(conn, child.iin)
    if entry is None or entry.status is not QueueStatus.WAITING or child.deceased:
        return None
    if not child.region or not child.district:
        return None
    district = _served_district(conn, child)
    if district.district_id == entry.district.district_id:
        return None
    conn.execute(
        "UPDATE queue_entries SET district_id = ?, kindergarten_id = NULL"
        " WHERE queue_entry_id = ?",
        (district.district_id, entry.queue_entry_id),
    )
    conn.execute(
        "INSERT INTO queue_moves (queue_entry_id, from_district_id, to_district_id, moved_on,"
        " reason) VALUES (?, ?, ?, ?, ?)",
        (entry.queue_entry_id, entry.district.district_id, district.district_id,
         today.isoformat(), QueueReason.ADDRESS_CHANGE.value),
    )
    move = QueueMove(entry.queue_entry_id, entry.district, district, today,
                     QueueReason.ADDRESS_CHANGE)
    events.moved(conn, _entry_by_id(conn, entry.queue_entry_id), move, now_ms)
    return move


def record_death(conn: sqlite3.Connection, iin: Iin, today: dt.date) -> DeathOutcome:
    """Withdraw the child's active queue entry and end its active school enrolment."""
    entry = _active_entry(conn, iin)
    withdrawn = _withdraw(conn, entry, WithdrawalCause.DEATH, today) if entry else None
    enrolment = _active_enrolment(conn, iin)
    ended = None
    if enrolment is not None:
        ended = _end_enrolment(conn, enrolment, EnrolmentStatus.LEFT, today)
    return DeathOutcome(withdrawn, ended)


def record_placement(
    conn: sqlite3.Connection, iin: Iin, kindergarten_id: str, today: dt.date, now_ms: int
) -> QueueEntry:
    """Place a waiting child: the kindergarten stands in the entry's district, has a free
    place, and no child ahead in that district waits for it (or for any kindergarten).
    Enqueues ``PlacedInKindergarten``."""
    entry = _active_entry(conn, iin)
    if entry is None:
        raise NotFound(f"child {iin} has no active place in the kindergarten queue")
    if entry.status is QueueStatus.PLACED:
        raise AlreadyRecorded(f"child {iin} is already placed in {entry.placed_in}")
    kindergarten = _get_kindergarten(conn, kindergarten_id)
    if kindergarten.district.district_id != entry.district.district_id:
        raise NotAllowed(
            f"kindergarten {kindergarten_id} is in {_where(kindergarten.district)}; the"
            f" queue place is in {_where(entry.district)}"
        )
    if kindergarten.placed >= kindergarten.capacity:
        raise NotAllowed(f"kindergarten {kindergarten_id} has no free place")
    (ahead,) = conn.execute(
        "SELECT count(*) FROM queue_entries WHERE status = 'waiting' AND district_id = ?"
        " AND (kindergarten_id IS NULL OR kindergarten_id = ?)"
        " AND (queued_on < ? OR (queued_on = ? AND queue_entry_id < ?))",
        (entry.district.district_id, kindergarten_id, entry.queued_on.isoformat(),
         entry.queued_on.isoformat(), entry.queue_entry_id),
    ).fetchone()
    if ahead:
        raise NotAllowed(f"{ahead} children are ahead in the queue for {kindergarten_id}")
    conn.execute(
        "UPDATE queue_entries SET status = 'placed', placed_in = ?, status_changed_on = ?"
        " WHERE queue_entry_id = ?",
        (kindergarten_id, today.isoformat(), entry.queue_entry_id),
    )
    placed = _entry_by_id(conn, entry.queue_entry_id)
    events.placed(conn, placed, today, now_ms)
    return placed


def record_enrolment(
    conn: sqlite3.Connection,
    child: Citizen,
    school_id: str,
    grade: int,
    today: dt.date,
    now_ms: int,
) -> Enrolment:
    """Enrol a child: the school stands in the child's registered district, the child's
    age fits the grade on the school year's 1 September, the school has room. An active
    enrolment elsewhere ends as ``transferred``; an active queue entry is withdrawn."""
    if grade not in rules.GRADES:
        raise InvalidInput(f"grade must be {rules.GRADES.start}..{rules.GRADES.stop - 1}")
    school = _get_school(conn, school_id)
    rules.check_alive(child)
    region, district = rules.check_registered_district(child)
    if (school.district.region, school.district.name) != (region, district):
        raise NotAllowed(
            f"school {school_id} is in {_where(school.district)}; the child is registered in"
            f" {district}, {region}"
        )
    start = rules.check_school_age(child, grade, today)
    current = _active_enrolment(conn, child.iin)
    if current is not None and current.school_id == school_id:
        raise AlreadyRecorded(f"child {child.iin} is already enrolled in {school_id}")
    if school.enrolled >= school.capacity:
        raise NotAllowed(f"school {school_id} has no free place")
    if current is not None:
        _end_enrolment(conn, current, EnrolmentStatus.TRANSFERRED, today)
    cursor = conn.execute(
        "INSERT INTO school_enrolments (iin, school_id, grade, enrolled_on, school_year_start,"
        " status, ended_on) VALUES (?, ?, ?, ?, ?, 'active', NULL)",
        (child.iin.value, school_id, grade, today.isoformat(), start.isoformat()),
    )
    enrolment = Enrolment(int(cursor.lastrowid or 0), child.iin, school_id, grade, today,
                          EnrolmentStatus.ACTIVE, start)
    entry = _active_entry(conn, child.iin)
    if entry is not None:
        _withdraw(conn, entry, WithdrawalCause.SCHOOL, today)
    events.enrolled(conn, enrolment, now_ms)
    return enrolment


def position_of(conn: sqlite3.Connection, entry: QueueEntry) -> QueuePosition:
    """The entry with its position among the waiting children of its district."""
    district_id = entry.district.district_id
    (waiting,) = conn.execute(
        "SELECT count(*) FROM queue_entries WHERE status = 'waiting' AND district_id = ?",
        (district_id,),
    ).fetchone()
    position = 0
    if entry.status is QueueStatus.WAITING:
        day = entry.queued_on.isoformat()
        (position,) = conn.execute(
            _AHEAD, (district_id, day, day, entry.queue_entry_id)
        ).fetchone()
    moves = tuple(_move(row) for row in conn.execute(_MOVES, (entry.queue_entry_id,)))
    return QueuePosition(entry, position, waiting, moves)


def find_district(conn: sqlite3.Connection, region: str, name: str) -> District | None:
    row = conn.execute(
        "SELECT district_id, region, name FROM districts WHERE region = ? AND name = ?",
        (region, name),
    ).fetchone()
    return District(*row) if row else None


# -- helpers -----------------------------------------------------------------------------


def _served_district(conn: sqlite3.Connection, child: Citizen) -> District:
    region, name = rules.check_registered_district(child)
    district = find_district(conn, region, name)
    if district is None:
        raise NotAllowed(f"education serves no district {name!r} in region {region!r}")
    return district


def _active_entry(conn: sqlite3.Connection, iin: Iin) -> QueueEntry | None:
    row = conn.execute(_ACTIVE_ENTRY, (iin.value,)).fetchone()
    return _entry(row) if row else None


def _entry_by_id(conn: sqlite3.Connection, queue_entry_id: int) -> QueueEntry:
    return _entry(conn.execute(_ENTRY_BY_ID, (queue_entry_id,)).fetchone())


def _active_enrolment(conn: sqlite3.Connection, iin: Iin) -> Enrolment | None:
    row = conn.execute(
        _ENROLMENT + " WHERE iin = ? AND status = 'active'", (iin.value,)
    ).fetchone()
    return _enrolment(row) if row else None


def _insert_entry(
    conn: sqlite3.Connection,
    iin: Iin,
    district: District,
    kindergarten_id: str | None,
    queued_on: dt.date,
    reason: QueueReason,
    today: dt.date,
) -> QueueEntry:
    cursor = conn.execute(
        "INSERT INTO queue_entries (iin, district_id, kindergarten_id, queued_on, status,"
        " reason, placed_in, status_changed_on, withdrawn_because)"
        " VALUES (?, ?, ?, ?, 'waiting', ?, NULL, ?, NULL)",
        (iin.value, district.district_id, kindergarten_id, queued_on.isoformat(), reason.value,
         today.isoformat()),
    )
    return QueueEntry(int(cursor.lastrowid or 0), iin, district, kindergarten_id, queued_on,
                      QueueStatus.WAITING, reason, None, today, None)


def _withdraw(
    conn: sqlite3.Connection, entry: QueueEntry, cause: WithdrawalCause, today: dt.date
) -> QueueEntry:
    conn.execute(
        "UPDATE queue_entries SET status = 'withdrawn', placed_in = NULL,"
        " withdrawn_because = ?, status_changed_on = ? WHERE queue_entry_id = ?",
        (cause.value, today.isoformat(), entry.queue_entry_id),
    )
    return _entry_by_id(conn, entry.queue_entry_id)


def _end_enrolment(
    conn: sqlite3.Connection, enrolment: Enrolment, status: EnrolmentStatus, today: dt.date
) -> Enrolment:
    conn.execute(
        "UPDATE school_enrolments SET status = ?, ended_on = ? WHERE enrolment_id = ?",
        (status.value, today.isoformat(), enrolment.enrolment_id),
    )
    return Enrolment(enrolment.enrolment_id, enrolment.iin, enrolment.school_id,
                     enrolment.grade, enrolment.enrolled_on, status, enrolment.school_year_start)


def _get_kindergarten(conn: sqlite3.Connection, kindergarten_id: str) -> Kindergarten:
    _check_id(kindergarten_id, "kindergarten_id")
    row = conn.execute(
        _KINDERGARTENS + " WHERE k.kindergarten_id = ?", (kindergarten_id,)
    ).fetchone()
    if row is None:
        raise NotFound(f"no kindergarten {kindergarten_id}")
    return _kindergarten(row)


def _get_school(conn: sqlite3.Connection, school_id: str) -> School:
    _check_id(school_id, "school_id")
    row = conn.execute(_SCHOOLS + " WHERE s.school_id = ?", (school_id,)).fetchone()
    if row is None:
        raise NotFound(f"no school {school_id}")
    return _school(row)


def _get_institution(conn: sqlite3.Connection, institution_id: str) -> Institution:
    _check_id(institution_id, "institution_id")
    row = conn.execute(
        _INSTITUTIONS + " WHERE i.institution_id = ?", (institution_id,)
    ).fetchone()
    if row is None:
        raise NotFound(f"no college or university {institution_id}")
    return _institution(row)


def _study_by_id(conn: sqlite3.Connection, study_id: int) -> Study:
    return _study(conn, conn.execute(_STUDY + " WHERE study_id = ?", (study_id,)).fetchone())


def _check_id(value: str, field: str) -> None:
    if not value:
        raise InvalidInput(f"{field} is required")
    if len(value) > MAX_ID_LENGTH or not value.isprintable():
        raise InvalidInput(f"{field} is malformed")


def _place_filter(region: str, district: str) -> tuple[str, tuple[str, ...]]:
    clauses: list[str] = []
    args: list[str] = []
    for value, column, field in ((region, "d.region", "region"),
                                 (district, "d.name", "district")):
        text = value.strip()
        if len(text) > MAX_FILTER_LENGTH or not text.isprintable():
            raise InvalidInput(f"{field} is malformed")
        if text:
            clauses.append(f"{column} = ?")
            args.append(text)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(args)


def _where(district: District) -> str:
    return f"{district.name}, {district.region}"


# -- rows and values ---------------------------------------------------------------------


def _district(row: tuple) -> District:
    return District(row[0], row[1], row[2])


def _entry(row: tuple) -> QueueEntry:
    (entry_id, iin, district_id, region, name, kindergarten_id, queued_on, status, reason,
     placed_in, changed_on, because) = row
    return QueueEntry(
        entry_id, Iin(iin), District(district_id, region, name), kindergarten_id,
        dt.date.fromisoformat(queued_on), QueueStatus(status), QueueReason(reason), placed_in,
        dt.date.fromisoformat(changed_on), WithdrawalCause(because) if because else None,
    )


def _move(row: tuple) -> QueueMove:
    return QueueMove(row[0], _district(row[1:4]), _district(row[4:7]),
                     dt.date.fromisoformat(row[7]), QueueReason(row[8]))


def _languages(text: str) -> tuple[str, ...]:
    return tuple(code for code in text.split(",") if code)


def _kindergarten(row: tuple) -> Kindergarten:
    return Kindergarten(row[0], row[1], _district(row[2:5]), row[5], _languages(row[6]), row[7])


def _school(row: tuple) -> School:
    return School(row[0], row[1], _district(row[2:5]), row[5], _languages(row[6]), row[7])


def _enrolment(row: tuple) -> Enrolment:
    enrolment_id, iin, school_id, grade, enrolled_on, status, year_start = row
    return Enrolment(enrolment_id, Iin(iin), school_id, grade, dt.date.fromisoformat(enrolled_on),
                     EnrolmentStatus(status), dt.date.fromisoformat(year_start))


def _institution(row: tuple) -> Institution:
    return Institution(row[0], row[1], InstitutionKind(row[2]), _district(row[3:6]), row[6])


def _study(conn: sqlite3.Connection, row: tuple) -> Study:
    study_id, iin, institution_id, level, form, started_on, ended_on = row
    return Study(study_id, Iin(iin), _get_institution(conn, institution_id), StudyLevel(level),
                 StudyForm(form), dt.date.fromisoformat(started_on),
                 dt.date.fromisoformat(ended_on) if ended_on else None)
