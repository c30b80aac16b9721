"""Life events and decisions: what the state decided for the citizen with no application.

The agencies publish their decisions as bus events (identifiers and facts only:
``zhol.pension.v1.BenefitAssigned``, ``PensionAssigned``, ``PaymentsStopped``,
``BenefitRecalculated``,
``zhol.health.v1.ClinicAttached``, ``DisabilityEstablished``,
``zhol.education.v1.QueuedForKindergarten``, ``QueueEntryMoved``,
``PlacedInKindergarten``, ``EnrolledInSchool``). The portal's subsystem subscribes to
them; its gateway delivers each to the portal's ``zhol.bus.v1.EventSink`` (``FeedSink``), at least
once. The sink keeps each event as it came (its payload bytes, which by the protocol
carry no copies of personal data), with the IINs it is about, in a small SQLite inbox
(``FeedStore``): the portal's inbox of decisions addressed to citizens, kept
``retention_days`` and then deleted. Nothing else of the citizen's is stored; the
family is read over the bus when a page is shown.

The feed page shows the signed-in citizen the entries about themselves and about their
minor children (parenthood read from population at that moment), newest first; each
says what happened, when, by which agency and why (the event's facts, with the basis
the decision rests on when the event carries it). An entry is new until the citizen
marks it read (``feed_reads``: the reader's IIN and the message id, nothing else); each
reader's marks are their own, so a parent marking a child's entry marks it for
themselves only.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import grpc
from aiohttp import web
from google.protobuf.message import DecodeError, Message

from zhol.bus.v1 import bus_pb2, bus_pb2_grpc
from zhol.core.errors import ZholError
from zhol.core.iin import Iin
from zhol.education.v1 import education_pb2
from zhol.health.v1 import health_pb2
from zhol.pension.v1 import pension_pb2, recalculation_pb2

log = logging.getLogger("zhol.portal.feed")

PENSION = "KZ/GOV/MLSPP/pension"
HEALTH = "KZ/GOV/MOH/health"
EDUCATION = "KZ/GOV/MES/education"
KAZAKHSTAN = dt.timezone(dt.timedelta(hours=5))  # one time zone, UTC+5, since 2024
RETENTION_DAYS = 2 * 366
FEED_LIMIT = 200  # entries a page shows, newest first
STOP_REASONS = frozenset({"death"})  # PaymentsStopped reasons with their own sentence


@dataclass(frozen=True)
class FeedTopic:
    """A decision event the feed shows: who publishes it, its payload type, and the
    payload's fields that name the citizens it is for."""

    publisher: str
    message: type[Message]
    subject_fields: tuple[str, ...]


FEED_TOPICS: dict[str, FeedTopic] = {
    "zhol.pension.v1.BenefitAssigned": FeedTopic(
        PENSION, pension_pb2.BenefitAssigned, ("recipient_iin", "subject_iin")
    ),
    "zhol.pension.v1.PensionAssigned": FeedTopic(PENSION, pension_pb2.PensionAssigned, ("iin",)),
    "zhol.pension.v1.PaymentsStopped": FeedTopic(PENSION, pension_pb2.PaymentsStopped, ("iin",)),
    "zhol.pension.v1.BenefitRecalculated": FeedTopic(
        PENSION, recalculation_pb2.BenefitRecalculated, ("recipient_iin", "subject_iin")
    ),
    "zhol.health.v1.ClinicAttached": FeedTopic(HEALTH, health_pb2.ClinicAttached, ("iin",)),
    "zhol.health.v1.DisabilityEstablished": FeedTopic(
        HEALTH, health_pb2.DisabilityEstablished, ("iin",)
    ),
    "zhol.education.v1.QueuedForKindergarten": FeedTopic(
        EDUCATION, education_pb2.QueuedForKindergarten, ("iin",)
    ),
    "zhol.education.v1.QueueEntryMoved": FeedTopic(
        EDUCATION, education_pb2.QueueEntryMoved, ("iin",)
    ),
    "zhol.education.v1.PlacedInKindergarten": FeedTopic(
        EDUCATION, education_pb2.PlacedInKindergarten, ("iin",)
    ),
    "zhol.education.v1.EnrolledInSchool": FeedTopic(
        EDUCATION, education_pb2.EnrolledInSchool, ("iin",)
    ),
}
# "publisher/topic", as the portal's subsystem subscribes (cli/federation.py).
FEED_SUBSCRIPTIONS = tuple(f"{t.publisher}/{name}" for name, t in FEED_TOPICS.items())

SCHEMA = """
CREATE TABLE IF NOT EXISTS feed_events (
    message_id     TEXT PRIMARY KEY,
    event_id       TEXT NOT NULL,
    topic          TEXT NOT NULL,
    publisher      TEXT NOT NULL,
    occurred_at_ms INTEGER NOT NULL,
    received_at_ms INTEGER NOT NULL,
    payload        BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS feed_events_event
    ON feed_events (publisher, topic, event_id) WHERE event_id != '';
CREATE INDEX IF NOT EXISTS feed_events_occurred ON feed_events (occurred_at_ms);
CREATE TABLE IF NOT EXISTS feed_subjects (
    iin        TEXT NOT NULL,
    message_id TEXT NOT NULL REFERENCES feed_events (message_id) ON DELETE CASCADE,
    PRIMARY KEY (iin, message_id)
) WITHOUT ROWID;
-- Which entries a citizen marked read: the reader's IIN and the message id only.
CREATE TABLE IF NOT EXISTS feed_reads (
    iin        TEXT NOT NULL,
    message_id TEXT NOT NULL REFERENCES feed_events (message_id) ON DELETE CASCADE,
    read_at_ms INTEGER NOT NULL,
    PRIMARY KEY (iin, message_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS feed_reads_message ON feed_reads (message_id);
"""
MAX_MESSAGE_ID = 128  # a bus message id is far shorter; a longer form value is malformed


class Refused(Exception):
    """A delivery the sink will not keep: the call ends with ``status`` (no payload in it)."""

    def __init__(self, status: grpc.StatusCode, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def subjects_of(topic: FeedTopic, event: Message) -> tuple[str, ...]:
    """The distinct valid IINs the event names in its subject fields, in field order."""
    found: list[str] = []
    for name in topic.subject_fields:
        value = getattr(event, name)
        try:
            iin = Iin.parse(value).value
        except ZholError:
            continue  # empty or malformed: names nobody the feed could show it to
        if iin not in found:
            found.append(iin)
    return tuple(found)


@dataclass(frozen=True)
class FeedEntry:
    message_id: str
    topic: str
    publisher: str
    occurred_at_ms: int
    event: Message
    about: tuple[str, ...]  # of the IINs asked for, those this entry is about
    received_at_ms: int = 0
    read: bool = False  # marked read by the reader the entries were asked for


class FeedStore:
    """The portal's inbox of decision events (one SQLite file, one worker thread)."""

    def __init__(
        self,
        path: Path,
        *,
        retention_days: int = RETENTION_DAYS,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        if retention_days <= 0:
            raise ValueError("retention_days must be positive")
        self._retention_ms = retention_days * 24 * 3600 * 1000
        self._now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(SCHEMA)
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="portal-feed")

    def close(self) -> None:
        self._db.shutdown(wait=True)
        self._conn.close()

    async def _in_db(self, function: Callable[..., Any], *args: object) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._db, function, *args)

    async def keep(self, delivery: bus_pb2.EventDelivery, subjects: Sequence[str]) -> bool:
        """Keep one delivery (True), or nothing when it is a duplicate (False)."""
        result: bool = await self._in_db(self._keep, delivery, tuple(subjects))
        return result

    async def entries(
        self, iins: Iterable[str], limit: int = FEED_LIMIT, *, reader: str = ""
    ) -> list[FeedEntry]:
        """The entries about any of ``iins``, newest first; ``read`` as ``reader`` marked."""
        result: list[FeedEntry] = await self._in_db(self._entries, tuple(iins), limit, reader)
        return result

    async def unread(self, reader: str, iins: Iterable[str]) -> int:
        """How many entries about any of ``iins`` ``reader`` has not marked read."""
        result: int = await self._in_db(self._unread, reader, tuple(iins))
        return result

    async def mark_read(self, reader: str, message_id: str, iins: Iterable[str]) -> bool:
        """Mark one entry read for ``reader``, if it is about one of ``iins`` (the reader's
        feed); False, and nothing written, when it is not (someone else's, or none)."""
        result: bool = await self._in_db(self._mark_read, reader, message_id, tuple(iins))
        return result

    async def mark_all_read(self, reader: str, iins: Iterable[str], until_ms: int) -> int:
        """Mark read for ``reader`` every entry about ``iins`` received by ``until_ms`` (what
        the page showed; a later arrival stays new). How many were newly marked."""
        result: int = await self._in_db(self._mark_all, reader, tuple(iins), until_ms)
        return result

    def _keep(self, delivery: bus_pb2.EventDelivery, subjects: tuple[str, ...]) -> bool:
        conn, now = self._conn, self._now_ms()
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Retention: what is older than the window goes, with its subjects.
            conn.execute(
                "DELETE FROM feed_events WHERE occurred_at_ms < ?", (now - self._retention_ms,)
            )
            try:
                conn.execute(
                    "INSERT INTO feed_events VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (delivery.message_id, delivery.event_id, delivery.topic,
                     delivery.publisher, delivery.occurred_at_unix_ms or now, now,
                     delivery.payload),
                )  # fmt: skip
            except sqlite3.IntegrityError:
                conn.execute("COMMIT")  # a redelivery, or the same event again
                return False
            conn.executemany(
                "INSERT INTO feed_subjects (iin, message_id) VALUES (?, ?)",
                [(iin, delivery.message_id) for iin in subjects],
            )
            conn.execute("COMMIT")
            return True
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _entries(self, iins: tuple[str, ...], limit: int, reader: str) -> list[FeedEntry]:
        if not iins:
            return []
        marks = ",".join("?" * len(iins))
        rows = self._conn.execute(
            "SELECT e.message_id, e.topic, e.publisher, e.occurred_at_ms, e.payload,"
            " group_concat(s.iin), e.received_at_ms, EXISTS (SELECT 1 FROM feed_reads r"
            "  WHERE r.iin = ? AND r.message_id = e.message_id)"
            " FROM feed_events e JOIN feed_subjects s ON s.message_id = e.message_id"
            f" WHERE s.iin IN ({marks}) GROUP BY e.message_id"
            " ORDER BY e.occurred_at_ms DESC, e.message_id LIMIT ?",
            (reader, *iins, limit),
        ).fetchall()
        found = []
        for message_id, topic, publisher, occurred, payload, about, received, read in rows:
            kind = FEED_TOPICS.get(topic)
            if kind is None:
                continue  # a topic no longer shown
            found.append(
                FeedEntry(message_id, topic, publisher, occurred,
                          kind.message.FromString(payload), tuple(about.split(",")),
                          received, bool(read))
            )  # fmt: skip
        return found

    def _unread(self, reader: str, iins: tuple[str, ...]) -> int:
        if not iins:
            return 0
        marks = ",".join("?" * len(iins))
        ((count,),) = self._conn.execute(
            "SELECT count(DISTINCT s.message_id) FROM feed_subjects s"
            f" JOIN feed_events e ON e.message_id = s.message_id WHERE s.iin IN ({marks})"
            f" AND e.topic IN ({','.join('?' * len(FEED_TOPICS))})"
            " AND NOT EXISTS (SELECT 1 FROM feed_reads r"
            "  WHERE r.iin = ? AND r.message_id = s.message_id)",
            (*iins, *FEED_TOPICS, reader),
        ).fetchall()
        return int(count)

    def _mark_read(self, reader: str, message_id: str, iins: tuple[str, ...]) -> bool:
        if not iins:
            return False
        marks = ",".join("?" * len(iins))
        # One statement: the entry is marked only if it is in the reader's feed.
        self._conn.execute(
            "INSERT OR IGNORE INTO feed_reads (iin, message_id, read_at_ms)"
            " SELECT ?, message_id, ? FROM feed_subjects"
            f" WHERE message_id = ? AND iin IN ({marks}) LIMIT 1",
            (reader, self._now_ms(), message_id, *iins),
        )
        found = self._conn.execute(
            f"SELECT 1 FROM feed_subjects WHERE message_id = ? AND iin IN ({marks}) LIMIT 1",
            (message_id, *iins),
        ).fetchone()
        return found is not None

    def _mark_all(self, reader: str, iins: tuple[str, ...], until_ms: int) -> int:
        if not iins:
            return 0
        marks = ",".join("?" * len(iins))
        cursor = self._conn.execute(
            "INSERT OR IGNORE INTO feed_reads (iin, message_id, read_at_ms)"
            " SELECT DISTINCT ?, s.message_id, ? FROM feed_subjects s"
            " JOIN feed_events e ON e.message_id = s.message_id"
            f" WHERE s.iin IN ({marks}) AND e.received_at_ms <= ?",
            (reader, self._now_ms(), *iins, until_ms),
        )
        return cursor.rowcount


class FeedSink(bus_pb2_grpc.EventSinkServicer):
    """zhol.bus.v1.EventSink of the portal: its gateway delivers the decision events here.

    Fails closed: a topic the feed does not show, or one from another publisher than
    the agency that owns it, is refused (UNIMPLEMENTED / PERMISSION_DENIED), and a
    payload that does not decode is INVALID_ARGUMENT; nothing is kept of either.
    """

    def __init__(self, store: FeedStore) -> None:
        self._store = store

    async def Receive(
        self, request: bus_pb2.EventDelivery, context: grpc.aio.ServicerContext[Any, Any]
    ) -> bus_pb2.EventAck:
        try:
            await self.handle(request)
        except Refused as refused:
            log.info("event refused", extra={"topic": request.topic,
                                             "status": refused.status.name})  # fmt: skip
            await _abort(context, refused.status, refused.detail)
        return bus_pb2.EventAck()

    async def handle(self, delivery: bus_pb2.EventDelivery) -> bool:
        if not delivery.message_id.strip() or not delivery.topic.strip():
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "message_id and topic are required")
        topic = FEED_TOPICS.get(delivery.topic)
        if topic is None:
            raise Refused(grpc.StatusCode.UNIMPLEMENTED, "a topic the feed does not show")
        if delivery.publisher != topic.publisher:
            raise Refused(grpc.StatusCode.PERMISSION_DENIED, "not the topic's publisher")
        try:
            event = topic.message.FromString(delivery.payload)
        except DecodeError:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "payload does not decode") from None
        subjects = subjects_of(topic, event)
        if not subjects:
            return False  # about nobody the portal could show it to: acknowledged, not kept
        kept = await self._store.keep(delivery, subjects)
        log.info("event kept" if kept else "duplicate event",
                 extra={"topic": delivery.topic, "message_id": delivery.message_id})  # fmt: skip
        return kept


async def _abort(context: grpc.aio.ServicerContext[Any, Any], status: grpc.StatusCode, detail: str
                 ) -> NoReturn:
    await context.abort(status, detail)
    raise AssertionError("unreachable")


async def start_sink(store: FeedStore, listen: str) -> tuple[grpc.aio.Server, int]:
    """The EventSink server the portal's gateway delivers to (plaintext on ``listen``,
    as the gateway reaches a local IS by default); its port."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", 64 * 1024),
            ("grpc.so_reuseport", 0),  # never share a port with another process
        ]
    )
    bus_pb2_grpc.add_EventSinkServicer_to_server(FeedSink(store), server)
    port = server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    await server.start()
    return server, port


# -- the page ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryView:
    """One entry as the page shows it, in the citizen's language."""

    when: str  # dd.mm.yyyy HH:MM, Kazakhstan's time
    when_iso: str  # for <time datetime>
    agency: str  # the publisher subsystem (its name is in the catalogues)
    what: str  # a text key
    whom: str  # "" for the citizen, else the child's IIN
    facts: tuple[tuple[str, str, bool], ...]  # (label's text key, value, value is a key)
    why: str  # a text key
    basis: str  # what the decision rests on, as the event says ("" when it does not)
    message_id: str = ""  # what the "mark as read" form names
    read: bool = False


def _date(value: Any) -> str:
    if not value.year:
        return ""
    return f"{value.day:02d}.{value.month:02d}.{value.year:04d}"


def _money(amount: int, currency: str) -> str:
    return f"{amount:,}".replace(",", "\u00a0") + f" {currency or 'KZT'}"


def describe(
    entry: FeedEntry, citizen: str, place: Callable[[str], str] = lambda place_id: place_id
) -> EntryView:
    """What happened, when, by whom and why: the event's own facts, nothing read about
    anyone; ``place`` names a kindergarten or school by its id (reference data)."""
    when = dt.datetime.fromtimestamp(entry.occurred_at_ms / 1000, KAZAKHSTAN)
    whom = "" if citizen in entry.about else entry.about[0]
    event = entry.event
    facts: list[tuple[str, str, bool]] = []
    basis = ""
    if isinstance(event, pension_pb2.BenefitAssigned):
        what, why = f"feed_benefit_{event.kind}", f"feed_why_benefit_{event.kind}"
        facts.append(("feed_amount", _money(event.amount, event.currency), False))
        facts.append(("feed_frequency", f"feed_{event.frequency}", True))
        if event.recipient_iin == citizen and event.subject_iin and event.subject_iin != citizen:
            whom = event.subject_iin  # paid to the parent, for this child
        basis = event.basis
    elif isinstance(event, pension_pb2.PensionAssigned):
        what, why = f"feed_pension_{event.kind}", f"feed_why_pension_{event.kind}"
        facts.append(("feed_monthly_amount", _money(event.monthly_amount, "KZT"), False))
        facts.append(("feed_effective_from", _date(event.effective_from), False))
        basis = event.basis
    elif isinstance(event, pension_pb2.PaymentsStopped):
        what = "feed_payments_stopped"
        why = f"feed_why_stopped_{event.reason}" if event.reason in STOP_REASONS else (
            "feed_why_stopped")
        facts.append(("feed_stopped_from", _date(event.effective), False))
        basis = event.basis
    elif isinstance(event, recalculation_pb2.BenefitRecalculated):
        what, why = f"feed_recalculated_{event.kind}", "feed_why_recalculated"
        facts.append(("feed_old_amount", _money(event.old_amount, event.currency), False))
        facts.append(("feed_new_amount", _money(event.new_amount, event.currency), False))
        facts.append(("feed_effective_from", _date(pension_pb2.Date(
            year=event.change_from.year, month=event.change_from.month, day=1)), False))
        if event.arrears_total:
            facts.append(("feed_arrears", _money(event.arrears_total, event.currency), False))
        if event.recipient_iin == citizen and event.subject_iin and event.subject_iin != citizen:
            whom = event.subject_iin  # paid to the parent, for this child
        basis = event.reason  # the rule that changed, its source and what changed
    elif isinstance(event, health_pb2.DisabilityEstablished):
        what, why = "feed_disability", "feed_why_disability"
        facts.append(("feed_disability_group", str(event.group), False))
        facts.append(("feed_effective_from", _date(event.from_date), False))
        until = _date(event.to_date)
        facts.append(("feed_until", until or "feed_indefinite", not until))
        basis = event.conclusion_id  # the medical advisory commission's conclusion
    elif isinstance(event, education_pb2.EnrolledInSchool):
        what, why = "feed_enrolled", "feed_why_enrolled"
        facts.append(("feed_school", place(event.school_id), False))
        facts.append(("feed_grade", str(event.grade), False))
        facts.append(("feed_school_year", _date(event.school_year_start), False))
        facts.append(("feed_enrolment", str(event.enrolment_id), False))
    elif isinstance(event, health_pb2.ClinicAttached):
        what, why = "feed_clinic_attached", f"feed_why_clinic_{event.reason}"
        facts.append(("feed_clinic", event.clinic_id, False))
        facts.append(("feed_on", _date(event.attached_on), False))
    elif isinstance(event, education_pb2.QueuedForKindergarten):
        what = "feed_queued"
        why = {education_pb2.QUEUE_REASON_NEWBORN: "feed_why_queued_newborn",
               education_pb2.QUEUE_REASON_ADDRESS_CHANGE: "feed_why_queued_moved"
               }.get(event.reason, "feed_why_queued_request")  # fmt: skip
        facts.append(("feed_district", f"{event.district}, {event.region}", False))
        facts.append(("feed_queued_on", _date(event.queued_on), False))
    elif isinstance(event, education_pb2.QueueEntryMoved):
        what, why = "feed_queue_moved", "feed_why_queue_moved"
        facts.append(("feed_district", f"{event.to_district}, {event.to_region}", False))
        facts.append(("feed_queued_on", _date(event.queued_on), False))
    elif isinstance(event, education_pb2.PlacedInKindergarten):
        what, why = "feed_placed", "feed_why_placed"
        facts.append(("feed_kindergarten", place(event.kindergarten_id), False))
        facts.append(("feed_district", f"{event.district}, {event.region}", False))
        facts.append(("feed_on", _date(event.placed_on), False))
        facts.append(("feed_queued_on", _date(event.queued_on), False))
    else:  # pragma: no cover - FEED_TOPICS names only the types above
        what, why = "feed_decision", "feed_why_unknown"
    return EntryView(
        when=when.strftime("%d.%m.%Y %H:%M"),
        when_iso=when.isoformat(timespec="minutes"),
        agency=entry.publisher,
        what=what,
        whom=whom,
        facts=tuple(facts),
        why=why,
        basis=basis,
        message_id=entry.message_id,
        read=entry.read,
    )


FEED_STORE: web.AppKey[FeedStore] = web.AppKey("feed_store", FeedStore)


async def feed_page(request: web.Request) -> web.StreamResponse:
    """GET /feed: the decisions about the signed-in citizen and their minor children."""
    # The page helpers live in app.py, which routes here: imported late (no cycle).
    from zhol.portal import app as portal
    from zhol.portal import pages, reads

    citizen = portal._citizen(request)
    store = request.app.get(FEED_STORE)
    if store is None:
        raise portal.PageError(404, "error_404")  # the portal runs without a feed
    family, places = await asyncio.gather(
        portal.family_of(request, citizen), pages.places_of(request, citizen)
    )
    children: tuple[str, ...] = ()
    if family.value is not None:
        children = reads.minor_children(family.value, request.app[portal.TODAY]())
    iins = (citizen, *children)
    entries = await store.entries(iins, reader=citizen)
    unread = await store.unread(citizen, iins)
    views = [describe(e, citizen, places.label) for e in entries]
    context = {
        "entries": views,
        "family": family,
        "children": children,
        "unread": unread,
        # "Mark all read" covers what this page showed, not what arrives after it.
        "until": max((e.received_at_ms for e in entries), default=0),
    }
    return portal._page(request, "feed.html", context)


async def _readers_feed(request: web.Request) -> tuple[str, FeedStore, tuple[str, ...], bool]:
    """For a mark form: the signed-in citizen, the store, the IINs whose entries are in
    the citizen's feed now (themselves and their minor children), and whether the
    children could be read."""
    from zhol.portal import app as portal
    from zhol.portal import reads

    citizen = portal._citizen(request)
    store = request.app.get(FEED_STORE)
    if store is None:
        raise portal.PageError(404, "error_404")
    family = await portal.family_of(request, citizen)
    if family.value is None:
        return citizen, store, (citizen,), False
    children = reads.minor_children(family.value, request.app[portal.TODAY]())
    return citizen, store, (citizen, *children), True


async def mark_read(request: web.Request) -> web.StreamResponse:
    """POST /feed/read: mark one entry of the citizen's own feed read (CSRF-checked).

    A message id that is not in the citizen's feed (another citizen's entry, or none)
    is 404 and marks nothing; the answer does not say whether such an entry exists."""
    from zhol.portal import app as portal

    portal._citizen(request)
    form = await portal._form(request)
    message_id = form.get("message_id", "")
    if not 0 < len(message_id) <= MAX_MESSAGE_ID or not message_id.isprintable():
        raise portal.PageError(400, "error_400")
    citizen, store, iins, whole = await _readers_feed(request)
    if not await store.mark_read(citizen, message_id, iins):
        # Without the family, a child's entry cannot be told from a stranger's.
        raise portal.PageError(404 if whole else 503, "error_404" if whole else "error_503")
    return web.Response(status=303, headers={"Location": "/feed"})


async def mark_all_read(request: web.Request) -> web.StreamResponse:
    """POST /feed/read-all: mark read every entry of the citizen's feed that the page
    showed (received by its ``until``), the citizen's and their minor children's."""
    from zhol.portal import app as portal

    portal._citizen(request)
    form = await portal._form(request)
    until = form.get("until", "")
    if not until.isascii() or not until.isdigit() or len(until) > 16:
        raise portal.PageError(400, "error_400")
    citizen, store, iins, _ = await _readers_feed(request)
    await store.mark_all_read(citizen, iins, int(until))
    return web.Response(status=303, headers={"Location": "/feed"})


def open_feed(app: web.Application, path: Path | None, retention_days: int) -> None:
    """Give ``app`` its feed store (kept until the app is cleaned up); none without a path."""
    if path is None:
        return
    store = FeedStore(path, retention_days=retention_days)
    app[FEED_STORE] = store

    async def _close(_: web.Application) -> None:
        with contextlib.suppress(Exception):
            store.close()

    app.on_cleanup.append(_close)
