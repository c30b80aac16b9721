"""Life events and decisions: what the state decided for the citizen with no application.

The agencies publish their decisions as bus events (identifiers and facts only:
``zhol.pension.v1.BenefitAssigned``, ``PensionAssigned``, ``zhol.health.v1.ClinicAttached``,
``zhol.education.v1.QueuedForKindergarten``, ``QueueEntryMoved``,
``PlacedInKindergarten``). The portal's subsystem subscribes to them; its gateway
delivers each to the portal's ``zhol.bus.v1.EventSink`` (``FeedSink``), at least
once. The sink keeps each event as it came (its payload bytes, which by the protocol
carry no copies of personal data), with the IINs it is about, in a small SQLite inbox
(``FeedStore``): the portal's inbox of decisions addressed to citizens, kept
``retention_days`` and then deleted. Nothing else of the citizen's is stored; the
family is read over the bus when a page is shown.

The feed page shows the signed-in citizen the entries about themselves and about their
minor children (parenthood read from population at that moment), newest first; each
says what happened, when, by which agency and why (the event's facts, with the basis
the decision rests on when the event carries it).
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
from zhol.pension.v1 import pension_pb2

log = logging.getLogger("zhol.portal.feed")

PENSION = "KZ/GOV/MLSPP/pension"
HEALTH = "KZ/GOV/MOH/health"
EDUCATION = "KZ/GOV/MES/education"
KAZAKHSTAN = dt.timezone(dt.timedelta(hours=5))  # one time zone, UTC+5, since 2024
RETENTION_DAYS = 2 * 366
FEED_LIMIT = 200  # entries a page shows, newest first


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
    "zhol.health.v1.ClinicAttached": FeedTopic(HEALTH, health_pb2.ClinicAttached, ("iin",)),
    "zhol.education.v1.QueuedForKindergarten": FeedTopic(
        EDUCATION, education_pb2.QueuedForKindergarten, ("iin",)
    ),
    "zhol.education.v1.QueueEntryMoved": FeedTopic(
        EDUCATION, education_pb2.QueueEntryMoved, ("iin",)
    ),
    "zhol.education.v1.PlacedInKindergarten": FeedTopic(
        EDUCATION, education_pb2.PlacedInKindergarten, ("iin",)
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
"""


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

    async def entries(self, iins: Iterable[str], limit: int = FEED_LIMIT) -> list[FeedEntry]:
        """The entries about any of ``iins``, newest first."""
        result: list[FeedEntry] = await self._in_db(self._entries, tuple(iins), limit)
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

    def _entries(self, iins: tuple[str, ...], limit: int) -> list[FeedEntry]:
        if not iins:
            return []
        marks = ",".join("?" * len(iins))
        rows = self._conn.execute(
            "SELECT e.message_id, e.topic, e.publisher, e.occurred_at_ms, e.payload,"
            " group_concat(s.iin) FROM feed_events e"
            " JOIN feed_subjects s ON s.message_id = e.message_id"
            f" WHERE s.iin IN ({marks}) GROUP BY e.message_id"
            " ORDER BY e.occurred_at_ms DESC, e.message_id LIMIT ?",
            (*iins, limit),
        ).fetchall()
        found = []
        for message_id, topic, publisher, occurred, payload, about in rows:
            kind = FEED_TOPICS.get(topic)
            if kind is None:
                continue  # a topic no longer shown
            found.append(
                FeedEntry(message_id, topic, publisher, occurred,
                          kind.message.FromString(payload), tuple(about.split(",")))
            )  # fmt: skip
        return found


class FeedSink(bus_pb2_grpc.EventSinkServicer):
    """zhol.bus.v1.EventSink of the portal: its gateway delivers the decision events here.

    Fails closed: a topic the feed does not show, or one from another publisher than
    the agency that owns it, is refused (FAILED_PRECONDITION / PERMISSION_DENIED), and a
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
            raise Refused(grpc.StatusCode.FAILED_PRECONDITION, "a topic the feed does not show")
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


def _date(value: Any) -> str:
    if not value.year:
        return ""
    return f"{value.day:02d}.{value.month:02d}.{value.year:04d}"


def _money(amount: int, currency: str) -> str:
    return f"{amount:,}".replace(",", "\u00a0") + f" {currency or 'KZT'}"


def describe(entry: FeedEntry, citizen: str) -> EntryView:
    """What happened, when, by whom and why: the event's own facts, nothing read."""
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
        facts.append(("feed_kindergarten", event.kindergarten_id, False))
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
    )


FEED_STORE: web.AppKey[FeedStore] = web.AppKey("feed_store", FeedStore)


async def feed_page(request: web.Request) -> web.StreamResponse:
    """GET /feed: the decisions about the signed-in citizen and their minor children."""
    # The page helpers live in app.py, which routes here: imported late (no cycle).
    from zhol.portal import app as portal
    from zhol.portal import reads

    citizen = portal._citizen(request)
    store = request.app.get(FEED_STORE)
    if store is None:
        raise portal.PageError(404, "error_404")  # the portal runs without a feed
    settings = request.app[portal.SETTINGS]
    family = await reads.read_family(
        request.app[portal.BUS], citizen, citizen, settings.bus_timeout_s
    )
    children: tuple[str, ...] = ()
    if family.value is not None:
        children = reads.minor_children(family.value, request.app[portal.TODAY]())
    entries = await store.entries((citizen, *children))
    views = [describe(e, citizen) for e in entries]
    context = {"entries": views, "family": family, "children": children}
    return portal._page(request, "feed.html", context)


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
