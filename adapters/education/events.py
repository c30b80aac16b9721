"""The events education publishes, enqueued in the outbox of the deciding transaction.

Each function builds the protobuf payload from the decision's dataclasses and stores
it with ``adapters.bus.outbox.enqueue_event`` on the caller's connection, inside the
caller's write transaction: the decision and its event are committed together or not
at all. Payloads carry identifiers and education's own facts, never personal data.

| topic                                   | when                                        |
|-----------------------------------------|---------------------------------------------|
| zhol.education.v1.QueuedForKindergarten | a child got a place in the queue            |
| zhol.education.v1.QueueEntryMoved       | the place moved to another district         |
| zhol.education.v1.PlacedInKindergarten  | a waiting child was given a kindergarten    |
| zhol.education.v1.EnrolledInSchool      | a child was enrolled in a school            |
"""

from __future__ import annotations

import datetime as dt
import sqlite3

from zhol.adapters.bus.outbox import enqueue_event
from zhol.adapters.education.model import Enrolment, QueueEntry, QueueMove, QueueReason
from zhol.education.v1 import education_pb2 as pb

QUEUED_FOR_KINDERGARTEN = pb.QueuedForKindergarten.DESCRIPTOR.full_name
QUEUE_ENTRY_MOVED = pb.QueueEntryMoved.DESCRIPTOR.full_name
ENROLLED_IN_SCHOOL = pb.EnrolledInSchool.DESCRIPTOR.full_name
PLACED_IN_KINDERGARTEN = pb.PlacedInKindergarten.DESCRIPTOR.full_name

TOPICS: tuple[str, ...] = (
    QUEUED_FOR_KINDERGARTEN, QUEUE_ENTRY_MOVED, ENROLLED_IN_SCHOOL, PLACED_IN_KINDERGARTEN
)

REASON_TO_PB = {
    QueueReason.NEWBORN: pb.QUEUE_REASON_NEWBORN,
    QueueReason.REQUEST: pb.QUEUE_REASON_REQUEST,
    QueueReason.ADDRESS_CHANGE: pb.QUEUE_REASON_ADDRESS_CHANGE,
}


def date_pb(day: dt.date) -> pb.Date:
    return pb.Date(year=day.year, month=day.month, day=day.day)


def queued(conn: sqlite3.Connection, entry: QueueEntry, now_ms: int) -> str:
    payload = pb.QueuedForKindergarten(
        queue_entry_id=entry.queue_entry_id,
        iin=entry.iin.value,
        district=entry.district.name,
        region=entry.district.region,
        reason=REASON_TO_PB[entry.reason],
        queued_on=date_pb(entry.queued_on),
    )
    return enqueue_event(conn, QUEUED_FOR_KINDERGARTEN, payload,
                         data_subject=entry.iin.value, occurred_at_ms=now_ms)


def moved(conn: sqlite3.Connection, entry: QueueEntry, move: QueueMove, now_ms: int) -> str:
    payload = pb.QueueEntryMoved(
        queue_entry_id=entry.queue_entry_id,
        iin=entry.iin.value,
        from_district=move.from_district.name,
        to_district=move.to_district.name,
        from_region=move.from_district.region,
        to_region=move.to_district.region,
        queued_on=date_pb(entry.queued_on),
    )
    return enqueue_event(conn, QUEUE_ENTRY_MOVED, payload,
                         data_subject=entry.iin.value, occurred_at_ms=now_ms)


def placed(conn: sqlite3.Connection, entry: QueueEntry, placed_on: dt.date, now_ms: int) -> str:
    payload = pb.PlacedInKindergarten(
        queue_entry_id=entry.queue_entry_id,
        iin=entry.iin.value,
        kindergarten_id=entry.placed_in or "",
        district=entry.district.name,
        region=entry.district.region,
        placed_on=date_pb(placed_on),
        queued_on=date_pb(entry.queued_on),
    )
    return enqueue_event(conn, PLACED_IN_KINDERGARTEN, payload,
                         data_subject=entry.iin.value, occurred_at_ms=now_ms)


def enrolled(conn: sqlite3.Connection, enrolment: Enrolment, now_ms: int) -> str:
    payload = pb.EnrolledInSchool(
        iin=enrolment.iin.value,
        school_id=enrolment.school_id,
        grade=enrolment.grade,
        enrolment_id=enrolment.enrolment_id,
        school_year_start=date_pb(enrolment.school_year_start),
    )
    return enqueue_event(conn, ENROLLED_IN_SCHOOL, payload,
                         data_subject=enrolment.iin.value, occurred_at_ms=now_ms)
