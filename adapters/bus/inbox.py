"""Receiving events exactly once in effect: the inbox and the EventSink service.

Our gateway delivers each event at least once (a retry after a lost acknowledgement
repeats the delivery, with the same ``message_id``). ``EventSinkServicer`` makes the
effect happen once: the event's write and the inbox record of its ``message_id`` are
committed in ONE transaction, and a delivery whose ``message_id`` (or whose
publisher's ``event_id`` for the same topic) is already recorded is acknowledged
without doing anything.

Handling one delivery:

1. ``message_id`` and ``topic`` must be present (else INVALID_ARGUMENT);
2. already in ``bus_inbox``: acknowledge (a duplicate), nothing else;
3. the topic needs a handler (else UNIMPLEMENTED: we receive what we never
   subscribed to handle, and the publisher's gateway dead-letters it at once instead
   of retrying; docs/protocol.md, "What a receiver answers");
4. ``apply = await handler(delivery)``: the handler does its reads through the bus
   first (async, no transaction open) and returns the write;
5. one ``BEGIN IMMEDIATE`` transaction on the servicer's own connection: insert the
   inbox row, run ``apply(conn)``, commit; acknowledge.

Refusals (``EventRejected`` from the handler or from ``apply``) end the call with
their status and nothing written; the gateway retries and finally dead-letters the
delivery. A duplicate that raced past step 2 (two deliveries at once) hits the inbox
PRIMARY KEY in step 5, is rolled back and acknowledged.

``apply`` raising ``sqlite3.IntegrityError`` for a UNIQUE (or PRIMARY KEY) constraint
of the agency's own tables means the decision the event asks for already exists: an
agency expresses "once" in its schema (one childbirth benefit per child, one open
attachment per person), so the same fact arriving again, e.g. re-published under a new
event id or by another event, finds it done. Retrying could never succeed and would
only end as a dead letter, so the servicer rolls the attempt back, records the inbox
row alone and acknowledges. Handlers must therefore use UNIQUE constraints only for
"this decision exists"; any other integrity failure (NOT NULL, CHECK, FOREIGN KEY) is
a bug and answers INTERNAL with nothing written.

All SQLite work runs on one worker thread with the servicer's own connection, so
transactions of concurrent deliveries never interleave and the event loop never
blocks on the database. Logs name the topic, message and event ids, never payloads.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NoReturn, TypeVar

import grpc

from zhol.adapters.bus.client import BusCallError
from zhol.adapters.bus.outbox import connect_default
from zhol.bus.v1 import bus_pb2, bus_pb2_grpc
from zhol.core.clock import Clock

T = TypeVar("T")

log = logging.getLogger("zhol.adapters.bus.inbox")

INBOX_TABLE = "bus_inbox"

# One statement, so it works with conn.execute as well as conn.executescript.
INBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS bus_inbox (
    message_id     TEXT PRIMARY KEY,
    event_id       TEXT NOT NULL DEFAULT '',
    topic          TEXT NOT NULL,
    publisher      TEXT NOT NULL DEFAULT '',
    received_at_ms INTEGER NOT NULL
);
"""

# One delivery per publisher's event and topic; the servicer creates it when missing.
INBOX_INDEX = (
    "CREATE UNIQUE INDEX IF NOT EXISTS bus_inbox_event"
    " ON bus_inbox (publisher, topic, event_id) WHERE event_id != ''"
)

Apply = Callable[[sqlite3.Connection], None]
Handler = Callable[[bus_pb2.EventDelivery], Awaitable[Apply]]

_UNIQUE_ERRORS = frozenset({"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"})


def ensure_inbox(conn: sqlite3.Connection) -> None:
    """Create the inbox table and its index when missing."""
    conn.execute(INBOX_SCHEMA)
    conn.execute(INBOX_INDEX)


class EventRejected(Exception):
    """A handler refuses the event (e.g. an unknown person): nothing is written, the call
    ends with ``status`` and ``detail`` (no personal data in it), the gateway retries."""

    def __init__(self, status: grpc.StatusCode, detail: str) -> None:
        if status is grpc.StatusCode.OK:
            raise ValueError("a rejection needs an error status")
        super().__init__(f"{status.name}: {detail}")
        self.status = status
        self.detail = detail


class EventSinkServicer(bus_pb2_grpc.EventSinkServicer):
    """zhol.bus.v1.EventSink for one agency database; see the module docstring."""

    def __init__(
        self,
        db_path: Path,
        handlers: Mapping[str, Handler],
        clock: Clock,
        *,
        connect: Callable[[Path], sqlite3.Connection] = connect_default,
    ) -> None:
        if not db_path.is_file():
            raise FileNotFoundError(f"no database at {db_path}")
        self._handlers = dict(handlers)
        self._clock = clock
        self._conn = connect(db_path)
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bus-inbox")
        try:
            ensure_inbox(self._conn)
        except BaseException:
            self._conn.close()
            self._db.shutdown(wait=False)
            raise

    @property
    def topics(self) -> frozenset[str]:
        return frozenset(self._handlers)

    def close(self) -> None:
        """Wait for a running transaction, then close the connection."""
        self._db.shutdown(wait=True)
        self._conn.close()

    async def Receive(
        self, request: bus_pb2.EventDelivery, context: grpc.aio.ServicerContext
    ) -> bus_pb2.EventAck:
        try:
            await self.handle(request)
        except EventRejected as rejected:
            log.info(
                "event rejected",
                extra={"topic": request.topic, "message_id": request.message_id,
                       "event_id": request.event_id, "status": rejected.status.name},
            )
            await _abort(context, rejected.status, rejected.detail)
        except Exception:
            log.exception(
                "event handling failed",
                extra={"topic": request.topic, "message_id": request.message_id,
                       "event_id": request.event_id},
            )
            await _abort(context, grpc.StatusCode.INTERNAL, "internal error")
        return bus_pb2.EventAck()

    async def handle(self, delivery: bus_pb2.EventDelivery) -> bool:
        """Handle one delivery: True when applied now, False when it was a duplicate.

        Raises ``EventRejected`` for every refusal (with nothing written).
        """
        if not delivery.message_id.strip():
            raise EventRejected(grpc.StatusCode.INVALID_ARGUMENT, "message_id is required")
        if not delivery.topic.strip():
            raise EventRejected(grpc.StatusCode.INVALID_ARGUMENT, "topic is required")
        if await self._in_db(self._seen, delivery):
            log.debug("duplicate delivery", extra={"message_id": delivery.message_id})
            return False
        handler = self._handlers.get(delivery.topic)
        if handler is None:
            raise EventRejected(
                grpc.StatusCode.UNIMPLEMENTED, f"no handler for topic {delivery.topic}"
            )
        try:
            apply = await handler(delivery)
        except BusCallError as err:
            raise EventRejected(
                err.status, f"a read through the bus failed: {err.zhol_error or err.status.name}"
            ) from None
        return await self._in_db(self._record, delivery, apply, self._clock.now_ms())

    # -- database work (on the servicer's thread) --------------------------------------

    async def _in_db(self, function: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db, function, *args)

    def _seen(self, delivery: bus_pb2.EventDelivery) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM bus_inbox WHERE message_id = ?"
            " OR (event_id != '' AND event_id = ? AND publisher = ? AND topic = ?)",
            (delivery.message_id, delivery.event_id, delivery.publisher, delivery.topic),
        ).fetchone()
        return row is not None

    def _record(self, delivery: bus_pb2.EventDelivery, apply: Apply, now: int) -> bool:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if not self._insert(delivery, now):
                conn.execute("ROLLBACK")
                return False  # a concurrent duplicate got there first
            try:
                apply(conn)
            except sqlite3.IntegrityError as err:
                if getattr(err, "sqlite_errorname", "") not in _UNIQUE_ERRORS:
                    raise
                # The decision already exists (see the module docstring): record the
                # delivery alone so it is not offered again, and acknowledge.
                conn.execute("ROLLBACK")
                log.info(
                    "event already applied",
                    extra={"topic": delivery.topic, "message_id": delivery.message_id},
                )
                conn.execute("BEGIN IMMEDIATE")
                self._insert(delivery, now)
                conn.execute("COMMIT")
                return False
            if not conn.in_transaction:
                raise RuntimeError("apply must not end the transaction")
            conn.execute("COMMIT")
            return True
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _insert(self, delivery: bus_pb2.EventDelivery, now: int) -> bool:
        try:
            self._conn.execute(
                "INSERT INTO bus_inbox (message_id, event_id, topic, publisher, received_at_ms)"
                " VALUES (?, ?, ?, ?, ?)",
                (delivery.message_id, delivery.event_id, delivery.topic, delivery.publisher,
                 now),
            )
        except sqlite3.IntegrityError:
            return False
        return True


async def _abort(context: grpc.aio.ServicerContext, status: grpc.StatusCode, detail: str
                 ) -> NoReturn:
    await context.abort(status, detail)
    raise AssertionError("unreachable")  # context.abort raises


__all__ = [
    "Apply",
    "EventRejected",
    "EventSinkServicer",
    "Handler",
    "INBOX_INDEX",
    "INBOX_SCHEMA",
    "INBOX_TABLE",
    "ensure_inbox",
]
