"""Access requests kept by a gateway (access_requests.db in its data directory).

``received``: the requests other subsystems sent to subsystems this gateway serves
(zhol.bus.v1.Access/RequestAccess), written by the running gateway, decided by its
operator (``zhol gateway approve|reject``). ``sent``: the requests this gateway's own
clients sent, with the last status their provider's gateway reported, written by the
running gateway as the answers pass through (docs/operators.md, 'Access requests').

The gateway and the command line share the file: WAL, and a busy timeout instead of
failing when the other holds the write lock for a moment. A decision and its grant
happen under one write lock (``decide``), so two operators never both decide.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from zhol.core.errors import ZholError

FILE_NAME = "access_requests.db"
PENDING, APPROVED, REJECTED = "PENDING", "APPROVED", "REJECTED"
STATUSES = (PENDING, APPROVED, REJECTED)
BUSY_TIMEOUT_S = 5.0

_COLUMNS = """
    request_id TEXT PRIMARY KEY,
    client TEXT NOT NULL,
    provider TEXT NOT NULL,
    grpc_service TEXT NOT NULL,
    method TEXT NOT NULL,
    topic TEXT NOT NULL,
    reason TEXT NOT NULL,
    user_id TEXT NOT NULL,
    requested_at_ms INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('PENDING', 'APPROVED', 'REJECTED')),
    decided_at_ms INTEGER NOT NULL DEFAULT 0,
    decision_reason TEXT NOT NULL DEFAULT '',
    gateway TEXT NOT NULL
"""

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS received ({_COLUMNS}) STRICT;
-- One pending request per client and right: a second waits for the first's decision.
CREATE UNIQUE INDEX IF NOT EXISTS received_pending
    ON received (client, provider, grpc_service, method, topic) WHERE status = 'PENDING';
CREATE INDEX IF NOT EXISTS received_by_client ON received (client, requested_at_ms);
CREATE TABLE IF NOT EXISTS sent ({_COLUMNS},
    checked_at_ms INTEGER NOT NULL DEFAULT 0  -- when the provider last reported it
) STRICT;
"""

_FIELDS = (
    "request_id, client, provider, grpc_service, method, topic, reason, user_id, "
    "requested_at_ms, status, decided_at_ms, decision_reason, gateway"
)


@dataclass(frozen=True, slots=True)
class StoredRequest:
    """One access request; ``request_id`` is its RequestAccess exchange's message id."""

    request_id: str
    client: str
    provider: str
    grpc_service: str
    method: str
    topic: str
    reason: str
    user_id: str
    requested_at_ms: int
    status: str
    decided_at_ms: int
    decision_reason: str
    gateway: str

    @property
    def target(self) -> str:
        """What is asked for, as ``zhol gateway allow`` / ``zhol events subscribe`` name it."""
        if self.topic:
            return f"{self.provider}/{self.topic}"
        method = f"/{self.method}" if self.method else ""
        return f"{self.provider}/{self.grpc_service}{method}"


def _row(row: Sequence[object]) -> StoredRequest:
    return StoredRequest(*row)  # type: ignore[arg-type]


class AccessRequestStore:
    """access_requests.db; every method is blocking (the gateway calls it off its loop)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()  # one connection, used from worker threads
        self._db = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (no upgrade deadlock with a reader)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- received (at the provider's gateway) ----------------------------------------

    def pending_count(self, client: str) -> int:
        with self._lock:
            (count,) = self._db.execute(
                "SELECT count(*) FROM received WHERE client = ? AND status = 'PENDING'", (client,)
            ).fetchone()
        return int(count)

    def has_pending(self, request: StoredRequest) -> bool:
        """Whether the client already waits for a decision on the same right."""
        with self._lock:
            found = self._db.execute(
                "SELECT 1 FROM received WHERE client = ? AND provider = ? AND grpc_service = ? "
                "AND method = ? AND topic = ? AND status = 'PENDING'",
                (request.client, request.provider, request.grpc_service, request.method,
                 request.topic),
            ).fetchone()  # fmt: skip
        return found is not None

    def receive(self, request: StoredRequest, max_pending: int) -> None:
        """Keep a new request, PENDING (DuplicateAccessRequest, TooManyAccessRequests)."""
        with self._write() as db:
            (count,) = db.execute(
                "SELECT count(*) FROM received WHERE client = ? AND status = 'PENDING'",
                (request.client,),
            ).fetchone()
            if count >= max_pending:
                raise ZholError("TooManyAccessRequests", f"{count} pending from {request.client}")
            try:
                db.execute(
                    f"INSERT INTO received ({_FIELDS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (request.request_id, request.client, request.provider, request.grpc_service,
                     request.method, request.topic, request.reason, request.user_id,
                     request.requested_at_ms, PENDING, 0, "", request.gateway),
                )  # fmt: skip
            except sqlite3.IntegrityError:
                raise ZholError("DuplicateAccessRequest", request.target) from None

    def received(
        self, status: str | None = None, client: str | None = None, limit: int = -1
    ) -> list[StoredRequest]:
        """Requests kept here, newest first; optionally of one status or one client."""
        where, params = ["1"], []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if client is not None:
            where.append("client = ?")
            params.append(client)
        sql = (
            f"SELECT {_FIELDS} FROM received WHERE {' AND '.join(where)} "
            "ORDER BY requested_at_ms DESC, request_id DESC LIMIT ?"
        )
        with self._lock:
            rows = self._db.execute(sql, (*params, limit)).fetchall()
        return [_row(r) for r in rows]

    def decide(
        self,
        request_id: str,
        status: str,
        reason: str,
        now_ms: int,
        grant: Callable[[StoredRequest], None] | None = None,
    ) -> StoredRequest:
        """Approve or reject a pending request (UnknownAccessRequest, AccessRequestDecided).

        ``grant`` runs inside the write transaction: a failed grant leaves the request
        pending, and nobody else decides it meanwhile. A crash between the grant and the
        commit leaves it pending with the right granted; approving again is harmless.
        """
        if status not in (APPROVED, REJECTED):
            raise ValueError(f"not a decision: {status}")
        with self._write() as db:
            row = db.execute(
                f"SELECT {_FIELDS} FROM received WHERE request_id = ?", (request_id,)
            ).fetchone()
            if row is None:
                raise ZholError("UnknownAccessRequest", f"no access request {request_id[:64]!r}")
            found = _row(row)
            if found.status != PENDING:
                raise ZholError("AccessRequestDecided", f"{request_id} is {found.status.lower()}")
            if grant is not None:
                grant(found)
            db.execute(
                "UPDATE received SET status = ?, decided_at_ms = ?, decision_reason = ? "
                "WHERE request_id = ?",
                (status, now_ms, reason, request_id),
            )
        return dataclasses.replace(
            found, status=status, decided_at_ms=now_ms, decision_reason=reason
        )

    # -- sent (at the consumer's gateway) --------------------------------------------

    def remember_sent(self, request: StoredRequest, checked_at_ms: int) -> None:
        """Record (or refresh) a request of our client as its provider's gateway reports it."""
        with self._write() as db:
            db.execute(
                f"INSERT INTO sent ({_FIELDS}, checked_at_ms) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(request_id) DO UPDATE SET "
                "status = excluded.status, decided_at_ms = excluded.decided_at_ms, "
                "decision_reason = excluded.decision_reason, "
                "checked_at_ms = excluded.checked_at_ms",
                (*dataclasses.astuple(request), checked_at_ms),
            )

    def sent(self, client: str | None = None) -> list[tuple[StoredRequest, int]]:
        """Our clients' requests, newest first, each with when its status was last reported."""
        sql = f"SELECT {_FIELDS}, checked_at_ms FROM sent"
        params: tuple[str, ...] = ()
        if client is not None:
            sql += " WHERE client = ?"
            params = (client,)
        with self._lock:
            rows = self._db.execute(
                sql + " ORDER BY requested_at_ms DESC, request_id DESC", params
            ).fetchall()
        return [(_row(r[:13]), int(r[13])) for r in rows]
