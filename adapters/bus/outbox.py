"""The transactional outbox: an event is stored in the agency's own database in the same
transaction as the decision it announces, then published through our gateway.

Writing the event and the decision together means neither exists without the other:
a crash after the commit loses nothing (the publisher finds the row on its next pass),
a refused or rolled-back write enqueues nothing.

    with store.transaction():                       # the agency's BEGIN IMMEDIATE
        conn.execute("INSERT INTO benefits ...")
        enqueue_event(conn, "zhol.pension.v1.BenefitAssigned", event,
                      data_subject=iin, occurred_at_ms=clock.now_ms())
    publisher.notify()                              # after the commit: publish now

``OutboxPublisher`` runs beside the adapter's server with its own connection. It sends
each unpublished row, in enqueue order, to ``zhol.bus.v1.Events/Publish`` on our gateway
and marks it published. A failure is recorded on the row (attempts, next attempt with
exponential backoff from 0.2 s doubling up to 30 s, and the error *code*, never the
payload). Sending the same row twice is harmless: the gateway treats a second publish
of an ``event_id`` as already queued, so a crash between publishing and marking costs
one idempotent re-publish. When the gateway is unreachable (UNAVAILABLE,
DEADLINE_EXCEEDED) the pass stops at the first failure and the publisher holds off
until that row's next attempt instead of trying every row; when that attempt
succeeds, the rows behind it follow in the same pass. A (re)started publisher retries
every pending row at once, whatever its backoff.

Times (enqueued, published, next attempt) come from the injected clock; waiting uses
the event loop's timer, never longer than ``poll_interval`` (1 s), so a clock moved by
a test or a scenario is noticed within a second, or at once after ``notify()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc
from google.protobuf.message import Message

from zhol.adapters.bus.client import BusCallError, BusClient
from zhol.bus.v1 import bus_pb2
from zhol.core.clock import Clock
from zhol.core.errors import ZholError
from zhol.core.iin import Iin

T = TypeVar("T")

log = logging.getLogger("zhol.adapters.bus.outbox")

PUBLISH_METHOD = "/zhol.bus.v1.Events/Publish"

OUTBOX_TABLE = "bus_outbox"

# One statement, so it works with conn.execute as well as conn.executescript.
OUTBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS bus_outbox (
    event_id           TEXT PRIMARY KEY,
    topic              TEXT NOT NULL,
    payload            BLOB NOT NULL,
    data_subject       TEXT NOT NULL DEFAULT '',
    occurred_at_ms     INTEGER NOT NULL,
    enqueued_at_ms     INTEGER NOT NULL,
    published_at_ms    INTEGER,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER NOT NULL DEFAULT 0,
    last_error         TEXT NOT NULL DEFAULT ''
);
"""

# The unpublished rows only (a partial index stays small however many were published).
# OutboxPublisher creates it too; adding it to the agency's schema is optional.
OUTBOX_INDEX = (
    "CREATE INDEX IF NOT EXISTS bus_outbox_pending ON bus_outbox (next_attempt_at_ms)"
    " WHERE published_at_ms IS NULL"
)

FIRST_BACKOFF_MS = 200
MAX_BACKOFF_MS = 30_000
POLL_INTERVAL_S = 1.0

# The gateway could not be reached or did not answer in time: every row would fail alike.
_TRANSPORT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


def ensure_outbox(conn: sqlite3.Connection) -> None:
    """Create the outbox table and its index when missing."""
    conn.execute(OUTBOX_SCHEMA)
    conn.execute(OUTBOX_INDEX)


def backoff_ms(attempts: int) -> int:
    """Delay before the next attempt after ``attempts`` failures: 200 ms doubling, 30 s cap."""
    if attempts <= 0:
        return 0
    if attempts > 20:  # 200 ms * 2**19 is far beyond the cap already
        return MAX_BACKOFF_MS
    return min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (attempts - 1))


def enqueue_event(
    conn: sqlite3.Connection,
    topic: str,
    payload: Message,
    *,
    data_subject: str,
    occurred_at_ms: int,
    enqueued_at_ms: int | None = None,
) -> str:
    """Store an event to publish; returns its id (a UUID4). Never commits.

    Call it inside the transaction that records the decision the event announces, so
    that both are committed or neither. ``topic`` must be the payload message's full
    name (``zhol.population.v1.BirthRegistered``); ``data_subject`` is the IIN the event
    is about, or "". ``enqueued_at_ms`` defaults to ``occurred_at_ms``.
    """
    if conn.isolation_level is None and not conn.in_transaction:
        raise RuntimeError("enqueue_event must run inside the caller's write transaction")
    if topic != payload.DESCRIPTOR.full_name:
        raise ValueError(
            f"topic {topic!r} is not the payload's message name {payload.DESCRIPTOR.full_name!r}"
        )
    if data_subject:
        try:
            Iin.parse(data_subject)
        except ZholError:
            raise ValueError("data_subject must be a valid IIN or empty") from None
    event_id = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO bus_outbox (event_id, topic, payload, data_subject, occurred_at_ms,"
        " enqueued_at_ms, published_at_ms, attempts, next_attempt_at_ms, last_error)"
        " VALUES (?, ?, ?, ?, ?, ?, NULL, 0, 0, '')",
        (event_id, topic, payload.SerializeToString(), data_subject, occurred_at_ms,
         occurred_at_ms if enqueued_at_ms is None else enqueued_at_ms),
    )
    return event_id


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One outbox row (for the publisher and for status reports and tests)."""

    event_id: str
    topic: str
    payload: bytes
    data_subject: str
    occurred_at_ms: int
    enqueued_at_ms: int
    published_at_ms: int | None
    attempts: int
    next_attempt_at_ms: int
    last_error: str


_COLUMNS = (
    "event_id, topic, payload, data_subject, occurred_at_ms, enqueued_at_ms,"
    " published_at_ms, attempts, next_attempt_at_ms, last_error"
)


def read_outbox(conn: sqlite3.Connection, *, pending_only: bool = False) -> list[OutboxEntry]:
    """Outbox rows in enqueue order."""
    where = " WHERE published_at_ms IS NULL" if pending_only else ""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM bus_outbox{where} ORDER BY rowid").fetchall()
    return [OutboxEntry(*row) for row in rows]


def connect_default(path: Path) -> sqlite3.Connection:
    """A connection for the bus helpers: autocommit (explicit BEGIN), busy timeout, foreign
    keys on; the journal mode is the agency's choice (set when it created the file)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


class OutboxPublisher:
    """Publishes pending outbox rows through our gateway; see the module docstring."""

    def __init__(
        self,
        db_path: Path,
        bus: BusClient,
        *,
        purpose: str,
        clock: Clock,
        poll_interval: float = POLL_INTERVAL_S,
        batch_size: int = 100,
        publish_timeout: float = 5.0,
        connect: Callable[[Path], sqlite3.Connection] = connect_default,
    ) -> None:
        if not purpose.strip():
            raise ValueError("purpose is required")
        if poll_interval <= 0 or batch_size <= 0 or publish_timeout <= 0:
            raise ValueError("poll_interval, batch_size and publish_timeout must be positive")
        if not db_path.is_file():
            raise FileNotFoundError(f"no database at {db_path}")
        self._bus = bus
        self._purpose = purpose
        self._clock = clock
        self._poll = poll_interval
        self._batch = batch_size
        self._timeout = publish_timeout
        self._conn = connect(db_path)
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bus-outbox")
        self._pass_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._hold_until_ms = 0  # the gateway was unreachable: no attempts before this
        self._closed = False
        try:
            ensure_outbox(self._conn)
        except BaseException:
            self._conn.close()
            self._db.shutdown(wait=False)
            raise

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the background task (call on the running event loop)."""
        if self._closed:
            raise RuntimeError("the publisher is stopped")
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name="bus-outbox-publisher")

    async def stop(self) -> None:
        """Stop the background task and close the connection (the BusClient stays open)."""
        if self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        async with self._pass_lock:  # let a pass started by publish_pending() finish
            pass
        self._db.submit(self._conn.close)
        self._db.shutdown(wait=True)

    def notify(self) -> None:
        """Publish soon: call after committing a write that enqueued an event.

        Safe from any thread; does nothing before ``start()``.
        """
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if _on_loop(loop):
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    # -- publishing --------------------------------------------------------------------

    async def publish_pending(self) -> int:
        """One pass over the due rows, in enqueue order; returns how many were published."""
        if self._closed:
            raise RuntimeError("the publisher is stopped")
        async with self._pass_lock:
            published = 0
            while True:
                now = self._clock.now_ms()
                if now < self._hold_until_ms:
                    return published
                rows = await self._in_db(self._due, now)
                for row in rows:
                    ok = await self._publish(row)
                    if ok is None:  # the gateway is unreachable: stop this pass
                        return published
                    published += ok
                if len(rows) < self._batch:
                    return published

    async def pending(self) -> int:
        """How many events are not yet published."""
        return await self._in_db(
            lambda: self._conn.execute(
                "SELECT count(*) FROM bus_outbox WHERE published_at_ms IS NULL"
            ).fetchone()[0]
        )

    async def _publish(self, row: OutboxEntry) -> bool | None:
        """True published, False failed (backed off), None failed for lack of a gateway."""
        request = bus_pb2.PublishRequest(
            topic=row.topic,
            payload=row.payload,
            data_subject=row.data_subject,
            event_id=row.event_id,
            occurred_at_unix_ms=row.occurred_at_ms,
        )
        try:
            await self._bus.call(
                PUBLISH_METHOD, request, bus_pb2.PublishResponse,
                purpose=self._purpose, data_subject=row.data_subject, timeout=self._timeout,
            )
        except BusCallError as err:
            code = err.status.name
            if err.zhol_error is not None:
                code = f"{code}:{err.zhol_error}"
            transport = err.status in _TRANSPORT
        except Exception as err:  # recorded on the row; the publisher goes on
            code = type(err).__name__
            transport = False
        else:
            await self._in_db(self._mark_published, row.event_id, self._clock.now_ms())
            return True
        attempts = row.attempts + 1
        next_at = self._clock.now_ms() + backoff_ms(attempts)
        await self._in_db(self._mark_failed, row.event_id, attempts, next_at, code)
        log.warning(
            "event publish failed",
            extra={"event_id": row.event_id, "topic": row.topic, "error": code,
                   "attempts": attempts},
        )
        if transport:
            self._hold_until_ms = next_at
            return None
        return False

    # -- the background task -----------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._in_db(self._make_all_due)  # a (re)start retries at once
        except sqlite3.Error:
            log.exception("outbox: cannot reset the backoff of pending events")
        while True:
            self._wake.clear()
            try:
                await self.publish_pending()
                delay = await self._in_db(self._next_delay_s, self._clock.now_ms())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox pass failed")
                delay = self._poll
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)

    # -- database work (on the publisher's thread) -------------------------------------

    async def _in_db(self, function: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db, function, *args)

    def _due(self, now: int) -> list[OutboxEntry]:
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM bus_outbox"
            " WHERE published_at_ms IS NULL AND next_attempt_at_ms <= ?"
            " ORDER BY rowid LIMIT ?",
            (now, self._batch),
        ).fetchall()
        return [OutboxEntry(*row) for row in rows]

    def _mark_published(self, event_id: str, now: int) -> None:
        self._conn.execute(
            "UPDATE bus_outbox SET published_at_ms = ?, last_error = ''"
            " WHERE event_id = ? AND published_at_ms IS NULL",
            (now, event_id),
        )

    def _mark_failed(self, event_id: str, attempts: int, next_at: int, code: str) -> None:
        self._conn.execute(
            "UPDATE bus_outbox SET attempts = ?, next_attempt_at_ms = ?, last_error = ?"
            " WHERE event_id = ? AND published_at_ms IS NULL",
            (attempts, next_at, code[:200], event_id),
        )

    def _make_all_due(self) -> None:
        self._conn.execute(
            "UPDATE bus_outbox SET next_attempt_at_ms = 0"
            " WHERE published_at_ms IS NULL AND next_attempt_at_ms > 0"
        )

    def _next_delay_s(self, now: int) -> float:
        (soonest,) = self._conn.execute(
            "SELECT min(next_attempt_at_ms) FROM bus_outbox WHERE published_at_ms IS NULL"
        ).fetchone()
        if soonest is None:
            return self._poll
        due_at = max(soonest, self._hold_until_ms)
        return min(self._poll, max(0.0, (due_at - now) / 1000))


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


__all__ = [
    "OUTBOX_INDEX",
    "OUTBOX_SCHEMA",
    "OUTBOX_TABLE",
    "OutboxEntry",
    "OutboxPublisher",
    "PUBLISH_METHOD",
    "backoff_ms",
    "connect_default",
    "enqueue_event",
    "ensure_outbox",
    "read_outbox",
]
