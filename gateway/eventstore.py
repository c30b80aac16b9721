"""The gateway's durable event state (DATA_DIR/events.db): outbox and inbox.

Outbox (publisher side): one row per (event, subscriber) delivery, written before
the publishing IS is answered, so an accepted event survives a restart. A
delivery is retried with backoff until the subscriber's gateway acknowledges it,
and set aside as a dead letter after too many attempts (`zhol events retry`
re-queues it). Inbox (subscriber side): delivery ids already handed to our IS, so
a redelivery is acknowledged without handing it over twice.

SQLite work runs on one worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, TypeVarTuple

from zhol.core.errors import ZholError
from zhol.gateway.refusal import status_name

_log = logging.getLogger(__name__)

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    delivery_id TEXT PRIMARY KEY,          -- the message id of every attempt
    event_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    publisher TEXT NOT NULL,
    subscriber TEXT NOT NULL,
    data_subject TEXT NOT NULL,
    user_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    payload BLOB NOT NULL,
    occurred_at_ms INTEGER NOT NULL,
    queued_at_ms INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',
    delivered_at_ms INTEGER,
    last_status INTEGER NOT NULL DEFAULT 0,  -- the receiving IS's gRPC code if it refused
    last_message TEXT NOT NULL DEFAULT '',   -- its (cleaned) message, or our error's detail
    last_attempt_at_ms INTEGER,
    requeued_attempts INTEGER NOT NULL DEFAULT 0,  -- attempts made before the last re-queue
    UNIQUE (event_id, subscriber)
) STRICT;
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_at_ms);
CREATE TABLE IF NOT EXISTS inbox (
    delivery_id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    publisher TEXT NOT NULL,
    subscriber TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL
) STRICT;
"""

# Columns added after the first release: an events.db made before them gains them,
# every row kept, when the gateway opens it.
_ADDED_COLUMNS = (
    ("last_status", "INTEGER NOT NULL DEFAULT 0"),
    ("last_message", "TEXT NOT NULL DEFAULT ''"),
    ("last_attempt_at_ms", "INTEGER"),
    ("requeued_attempts", "INTEGER NOT NULL DEFAULT 0"),
)


@dataclass(frozen=True, slots=True)
class Delivery:
    delivery_id: str
    event_id: str
    topic: str
    publisher: str
    subscriber: str
    data_subject: str
    user_id: str
    purpose: str
    payload: bytes
    occurred_at_ms: int
    attempts: int  # made so far (every one, also before a re-queue of a dead letter)


@dataclass(frozen=True, slots=True)
class AttemptFailure:
    """Why one attempt failed: our catalogued code, and if the receiving IS refused, its
    gRPC code (0 otherwise) and message; ``permanent`` dead-letters it at once."""

    code: str
    message: str = ""
    receiver_status: int = 0
    permanent: bool = False


@dataclass(frozen=True, slots=True)
class OutboxStatus:
    pending: int
    retrying: int
    delivered: int
    dead: int
    oldest_pending_ms: int | None
    dead_letters: tuple[dict[str, Any], ...]
    # One entry per subscriber: its counts, its latest failure and its next retry.
    subscribers: tuple[dict[str, Any], ...] = ()


def backoff_ms(attempts: int) -> int:
    """Delay before the next attempt: 0.5 s doubling, at most 60 s."""
    return min(60_000, 500 << max(0, attempts - 1))


class EventStore:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zhol-events")
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(_SCHEMA)
            _add_missing_columns(db)
            self._db = db
        return self._db

    async def _run(self, fn: Callable[[*Ts], T], *args: *Ts) -> T:
        """Run ``fn`` on the store's thread. A store that cannot be read or written (a
        full disk, an I/O error) fails like the message log does: LoggingFailed."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except sqlite3.Error as exc:
            _log.warning("event store write failed", extra={"error": type(exc).__name__})
            raise ZholError(
                "LoggingFailed", f"the event store failed: {type(exc).__name__}"
            ) from exc

    def open(self) -> None:
        self._executor.submit(self._connect).result()

    def close(self) -> None:
        def shut() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        self._executor.submit(shut).result()
        self._executor.shutdown(wait=True)

    # Publisher side.

    async def queue(self, deliveries: Sequence[Delivery], now_ms: int) -> list[str]:
        """Queue deliveries of one event; idempotent by (event, subscriber).

        Returns the subscribers queued for this event (now or by an earlier publish).
        """
        return await self._run(self._queue, deliveries, now_ms)

    def _queue(self, deliveries: Sequence[Delivery], now_ms: int) -> list[str]:
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO outbox (delivery_id, event_id, topic, publisher, subscriber,"
                " data_subject, user_id, purpose, payload, occurred_at_ms, queued_at_ms,"
                " state, next_attempt_at_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,'pending',?)"
                " ON CONFLICT (event_id, subscriber) DO NOTHING",
                [
                    (
                        d.delivery_id, d.event_id, d.topic, d.publisher, d.subscriber,
                        d.data_subject, d.user_id, d.purpose, d.payload, d.occurred_at_ms,
                        now_ms, now_ms,
                    )
                    for d in deliveries
                ],
            )  # fmt: skip
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # SQLite may have rolled back itself (a full disk)
                db.execute("ROLLBACK")
            raise
        if not deliveries:
            return []
        rows = db.execute(
            "SELECT subscriber FROM outbox WHERE event_id = ? ORDER BY subscriber",
            (deliveries[0].event_id,),
        ).fetchall()
        return [r[0] for r in rows]

    async def due(self, now_ms: int, limit: int) -> list[Delivery]:
        return await self._run(self._due, now_ms, limit)

    def _due(self, now_ms: int, limit: int) -> list[Delivery]:
        rows = (
            self._connect()
            .execute(
                "SELECT delivery_id, event_id, topic, publisher, subscriber, data_subject, user_id,"
                " purpose, payload, occurred_at_ms, attempts FROM outbox"
                " WHERE state = 'pending' AND next_attempt_at_ms <= ?"
                " ORDER BY next_attempt_at_ms, queued_at_ms LIMIT ?",
                (now_ms, limit),
            )
            .fetchall()
        )
        return [Delivery(*row) for row in rows]

    async def next_due_ms(self) -> int | None:
        return await self._run(self._next_due_ms)

    def _next_due_ms(self) -> int | None:
        row = (
            self._connect()
            .execute("SELECT MIN(next_attempt_at_ms) FROM outbox WHERE state = 'pending'")
            .fetchone()
        )
        return None if row[0] is None else int(row[0])

    async def mark_delivered(self, delivery_id: str, now_ms: int) -> None:
        """The attempt that succeeded counts too: ``attempts`` is every attempt made.
        The last failure stays on record: what the delivery went through."""
        await self._run(
            self._execute,
            "UPDATE outbox SET state = 'delivered', delivered_at_ms = ?, attempts = attempts + 1,"
            " last_attempt_at_ms = ? WHERE delivery_id = ?",
            (now_ms, now_ms, delivery_id),
        )

    async def mark_failed(
        self, delivery_id: str, failure: AttemptFailure, now_ms: int, max_attempts: int
    ) -> bool:
        """Record a failed attempt; returns True when it became a dead letter (after
        ``max_attempts`` since it was queued or last re-queued, or at once when the
        failure is permanent)."""
        return await self._run(self._mark_failed, delivery_id, failure, now_ms, max_attempts)

    def _mark_failed(
        self, delivery_id: str, failure: AttemptFailure, now_ms: int, max_attempts: int
    ) -> bool:
        db = self._connect()
        row = db.execute(
            "SELECT attempts, requeued_attempts FROM outbox WHERE delivery_id = ?",
            (delivery_id,),
        ).fetchone()
        if row is None:
            return False
        attempts = int(row[0]) + 1
        budget_used = attempts - int(row[1])
        dead = failure.permanent or budget_used >= max_attempts
        db.execute(
            "UPDATE outbox SET attempts = ?, last_error = ?, last_status = ?, last_message = ?,"
            " last_attempt_at_ms = ?, state = ?, next_attempt_at_ms = ?"
            " WHERE delivery_id = ? AND state = 'pending'",
            (
                attempts,
                failure.code,
                failure.receiver_status,
                failure.message,
                now_ms,
                DEAD if dead else PENDING,
                now_ms + backoff_ms(budget_used),
                delivery_id,
            ),
        )
        return dead

    def _execute(self, sql: str, params: tuple[Any, ...]) -> int:
        return self._connect().execute(sql, params).rowcount

    async def status(self, now_ms: int) -> OutboxStatus:
        return await self._run(read_status, self._connect(), now_ms)

    # Subscriber side.

    async def seen(self, delivery_id: str) -> bool:
        return await self._run(self._seen, delivery_id)

    def _seen(self, delivery_id: str) -> bool:
        row = (
            self._connect()
            .execute("SELECT 1 FROM inbox WHERE delivery_id = ?", (delivery_id,))
            .fetchone()
        )
        return row is not None

    async def remember(
        self, delivery_id: str, event_id: str, publisher: str, subscriber: str, now_ms: int
    ) -> None:
        await self._run(
            self._execute,
            "INSERT OR IGNORE INTO inbox VALUES (?, ?, ?, ?, ?)",
            (delivery_id, event_id, publisher, subscriber, now_ms),
        )


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Migrate in one write transaction: two processes opening an old file never both add."""
    db.execute("BEGIN IMMEDIATE")
    try:
        present = {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
        for column, definition in _ADDED_COLUMNS:
            if column not in present:
                db.execute(f"ALTER TABLE outbox ADD COLUMN {column} {definition}")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


# The failure columns read_status reports, and what each reads as before its migration.
_FAILURE_COLUMNS = (("last_status", "0"), ("last_message", "''"), ("last_attempt_at_ms", "NULL"))


def _failure_fields(
    attempts: int, code: str, status: int, message: str, at_ms: int | None
) -> dict[str, Any]:
    """A delivery's latest failure as `zhol events status` reports it."""
    return {
        "attempts": attempts,
        "last_error": code,
        "receiver_status": status_name(status) if status else "",
        "last_message": message,
        "last_attempt_at_ms": at_ms,
    }


def read_status(db: sqlite3.Connection, now_ms: int, dead_limit: int = 50) -> OutboxStatus:
    """The outbox as an operator needs it. Reads a file not yet migrated by a running
    gateway too (the newer columns then read as empty)."""
    present = {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
    newer = ", ".join(name if name in present else empty for name, empty in _FAILURE_COLUMNS)
    counts = dict(db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall())
    retrying = db.execute(
        "SELECT COUNT(*) FROM outbox WHERE state = 'pending' AND attempts > 0"
    ).fetchone()[0]
    oldest = db.execute("SELECT MIN(queued_at_ms) FROM outbox WHERE state = 'pending'").fetchone()[
        0
    ]
    dead = db.execute(
        "SELECT delivery_id, event_id, topic, publisher, subscriber, queued_at_ms,"
        f" attempts, last_error, {newer} FROM outbox WHERE state = 'dead'"
        " ORDER BY queued_at_ms LIMIT ?",
        (dead_limit,),
    ).fetchall()
    keys = ("delivery_id", "event_id", "topic", "publisher", "subscriber", "queued_at_ms")
    dead_letters = tuple(
        {**dict(zip(keys, row[:6], strict=True)), **_failure_fields(*row[6:])} for row in dead
    )
    return OutboxStatus(
        pending=int(counts.get(PENDING, 0)),
        retrying=int(retrying),
        delivered=int(counts.get(DELIVERED, 0)),
        dead=int(counts.get(DEAD, 0)),
        oldest_pending_ms=None if oldest is None else now_ms - int(oldest),
        dead_letters=dead_letters,
        subscribers=_per_subscriber(db, newer),
    )


def _per_subscriber(db: sqlite3.Connection, newer: str) -> tuple[dict[str, Any], ...]:
    """Per subscriber: its counts, the latest failure of a delivery not yet delivered
    (pending or dead), and when the next retry is due."""
    rows = db.execute(
        "SELECT subscriber, SUM(state = 'pending'), SUM(state = 'pending' AND attempts > 0),"
        " SUM(state = 'delivered'), SUM(state = 'dead'),"
        " MIN(CASE WHEN state = 'pending' AND attempts > 0 THEN next_attempt_at_ms END)"
        " FROM outbox GROUP BY subscriber ORDER BY subscriber"
    ).fetchall()
    # Oldest first, so each subscriber ends with its latest failure.
    failures = {
        row[0]: _failure_fields(*row[1:6])
        for row in db.execute(
            f"SELECT subscriber, attempts, last_error, {newer} FROM outbox"
            " WHERE last_error != '' AND state != 'delivered'"
            f" ORDER BY coalesce({newer.rsplit(', ', 1)[1]}, 0), rowid"
        )
    }
    quiet = _failure_fields(0, "", 0, "", None)
    return tuple(
        {
            "subscriber": sub,
            "pending": int(pending or 0),
            "retrying": int(retrying or 0),
            "delivered": int(delivered or 0),
            "dead": int(dead or 0),
            "next_retry_at_ms": next_retry,
            **failures.get(sub, quiet),
        }
        for sub, pending, retrying, delivered, dead, next_retry in rows
    )


def requeue_dead(db: sqlite3.Connection, now_ms: int, delivery_id: str | None = None) -> int:
    """Put dead letters (all, or one) back in the queue with a fresh attempt budget.

    The attempts already made stay counted (the next one's EventDelivery.attempt says
    how many came before it), and so does the last failure until the next attempt."""
    _add_missing_columns(db)  # a file the gateway has not opened since an upgrade
    sql = (
        "UPDATE outbox SET state = 'pending', requeued_attempts = attempts,"
        " next_attempt_at_ms = ? WHERE state = 'dead'"
    )
    params: tuple[Any, ...] = (now_ms,)
    if delivery_id is not None:
        sql += " AND delivery_id = ?"
        params += (delivery_id,)
    return db.execute(sql, params).rowcount
