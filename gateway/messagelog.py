"""The gateway's message log: append-only evidence of every message sent or received.

Every record holds the exact signed header and body bytes, the signature and a
reference to the signer's certificate (the DER is stored once per distinct hash in
``certs``). A gateway forwards no message it has not logged and releases no answer
it has not logged (docs/protocol.md, 'The message log'), so ``append`` returns only
after the commit and raises ``LoggingFailed`` otherwise.

Writes go through one writer thread with its own connection (SQLite writes are
blocking, and blocking calls stay off the event loop) and are group-committed:
whatever callers queued while the previous transaction ran is written in the next
one, so the hot path never pays one commit per message.

``seq`` has no gaps (nothing is deleted, and a rolled-back insert rolls back
``sqlite_sequence`` too), so it can serve as the Merkle leaf index later
(leaf index = seq - 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError

from zhol.bus.v1 import bus_pb2
from zhol.core.clock import Clock
from zhol.core.errors import ZholError
from zhol.core.jsonlog import error_fields
from zhol.security.logleaf import LogLeaf
from zhol.security.logleaf import encode as encode_leaf
from zhol.security.merkle import (
    Node,
    NodeReader,
    TreeState,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
)
from zhol.security.sealing import EVENT_TYPE, REQUEST_TYPE, RESPONSE_TYPE, message_signed_bytes
from zhol.security.validation import cert_sha256

_log = logging.getLogger(__name__)

KINDS = frozenset({"request", "response", "event"})
DIRECTIONS = frozenset({"in", "out"})
SCHEMA_VERSION = 3
BUSY_TIMEOUT_MS = 5000


@dataclass(frozen=True, slots=True)
class LogRecord:
    message_id: str  # exchange UUID (request and response share it)
    kind: str  # "request" | "response" | "event"
    direction: str  # "in" | "out" (seen from this gateway)
    client: str  # KZ/GOV/MLSPP/pension
    service: str  # KZ/GOV/MJ/population/zhol.population.v1.PopulationRegistry/GetPerson
    data_subject: str  # IIN or ""
    user_id: str
    purpose: str
    issued_at_ms: int
    peer: str  # the other gateway's id
    status_code: int  # gRPC status of the provider's answer (responses), else 0
    header: bytes  # exact signed header bytes
    body: bytes  # exact body bytes
    signature: bytes
    signer_cert_sha256: bytes
    signer_cert_der: bytes  # stored once per distinct hash in ``certs``, not per record
    signed_digest: bytes  # SHA-256 of the signed (PAE) bytes


# One sealed message is one record; a message id has several (the request and its
# response; an event delivery's attempts, each sealed afresh, and their acks).
_MESSAGES_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('request', 'response', 'event')),
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    client TEXT NOT NULL,
    service TEXT NOT NULL,
    data_subject TEXT NOT NULL,
    user_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    issued_at_ms INTEGER NOT NULL,
    logged_at_ms INTEGER NOT NULL,
    peer TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    header BLOB NOT NULL,
    body BLOB NOT NULL,
    signature BLOB NOT NULL,
    signer_cert_sha256 BLOB NOT NULL,
    signed_digest BLOB NOT NULL,
    -- Its index (message_id first) also serves lookups by message id.
    UNIQUE (message_id, kind, direction, signed_digest)
) STRICT;
"""

_SCHEMA = (
    _MESSAGES_TABLE.format(name="messages")
    + f"""
CREATE INDEX IF NOT EXISTS messages_by_subject ON messages (data_subject, logged_at_ms);
CREATE INDEX IF NOT EXISTS messages_by_time ON messages (logged_at_ms);
CREATE TABLE IF NOT EXISTS certs (
    sha256 BLOB PRIMARY KEY,
    der BLOB NOT NULL
) STRICT, WITHOUT ROWID;
-- The log as a Merkle tree (docs/protocol.md, "Evidence: the Merkle tree"): leaf n is
-- the record seq = n + 1. Every perfect subtree's hash, written with the records that
-- complete it, so a proof never rereads the log; and the tree's current state (size
-- and frontier), so the writer resumes without a rescan.
CREATE TABLE IF NOT EXISTS tree_nodes (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tree_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    state BLOB NOT NULL
) STRICT;
CREATE TRIGGER IF NOT EXISTS tree_nodes_no_update BEFORE UPDATE ON tree_nodes
BEGIN SELECT RAISE(ABORT, 'the message log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS tree_nodes_no_delete BEFORE DELETE ON tree_nodes
BEGIN SELECT RAISE(ABORT, 'the message log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS messages_no_update BEFORE UPDATE ON messages
BEGIN SELECT RAISE(ABORT, 'the message log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS messages_no_delete BEFORE DELETE ON messages
BEGIN SELECT RAISE(ABORT, 'the message log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS certs_no_update BEFORE UPDATE ON certs
BEGIN SELECT RAISE(ABORT, 'the message log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS certs_no_delete BEFORE DELETE ON certs
BEGIN SELECT RAISE(ABORT, 'the message log is append-only'); END;
PRAGMA user_version = {SCHEMA_VERSION};
"""
)

_INSERT_MESSAGE = """
INSERT INTO messages (
    message_id, kind, direction, client, service, data_subject, user_id, purpose,
    issued_at_ms, logged_at_ms, peer, status_code, header, body, signature,
    signer_cert_sha256, signed_digest
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_INSERT_CERT = "INSERT OR IGNORE INTO certs (sha256, der) VALUES (?, ?)"
_INSERT_NODE = "INSERT INTO tree_nodes (level, idx, hash) VALUES (?, ?, ?)"
_SAVE_TREE = "INSERT OR REPLACE INTO tree_state (id, state) VALUES (1, ?)"


def record_leaf_hash(r: LogRecord, logged_at_ms: int) -> bytes:
    """The Merkle leaf hash of a record as logged at ``logged_at_ms``."""
    leaf = LogLeaf.of(
        kind=r.kind,
        direction=r.direction,
        logged_at_ms=logged_at_ms,
        peer=r.peer,
        header=r.header,
        body=r.body,
        signature=r.signature,
        signer_cert_sha256=r.signer_cert_sha256,
    )
    return leaf_hash(encode_leaf(leaf))


@dataclass(slots=True)
class _Pending:
    """One caller's records and the future it awaits on its own event loop."""

    records: tuple[LogRecord, ...]
    future: asyncio.Future[None]
    loop: asyncio.AbstractEventLoop


_STOP = object()


class MessageLog:
    """Append-only SQLite message log with group commit on one writer thread."""

    def __init__(self, path: Path, clock: Clock, *, max_batch: int = 1024) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._path = Path(path)
        self._clock = clock
        self._max_batch = max_batch
        # Groups of appends (list[_Pending]), or the stop marker.
        self._queue: queue.SimpleQueue[list[_Pending] | object] = queue.SimpleQueue()
        # Guards the open/closed state so nothing is queued behind the stop marker.
        self._state_lock = threading.Lock()
        self._accepting = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._open_error: BaseException | None = None
        self._commits = 0
        # Hashes of certificates committed to ``certs`` (writer thread only).
        self._known_certs: set[bytes] = set()
        # The tree over every committed record (writer thread only).
        self._tree = TreeState()
        # Appends of the current event-loop iteration, per loop (that loop's thread only).
        self._staged: dict[asyncio.AbstractEventLoop, list[_Pending]] = {}

    @property
    def path(self) -> Path:
        return self._path

    @property
    def accepting(self) -> bool:
        """False until opened, once closed, or once its writer stopped: appends fail."""
        return self._accepting

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def commits(self) -> int:
        """Transactions committed so far: shows that writes are grouped."""
        return self._commits

    def open(self) -> None:
        """Create the schema and start the writer thread; raises LoggingFailed if it can't."""
        with self._state_lock:
            if self._closed:
                raise ZholError("LoggingFailed", "the message log is closed")
            if self._thread is not None:
                return
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._thread = threading.Thread(target=self._run, name="zhol-messagelog", daemon=True)
            self._thread.start()
            self._ready.wait()
            if self._open_error is not None:
                self._closed = True
                raise ZholError(
                    "LoggingFailed", f"cannot open the message log: {self._open_error}"
                ) from self._open_error
            self._accepting = True

    async def append(self, records: Sequence[LogRecord]) -> None:
        """Log ``records`` in one transaction; returns after the commit.

        Raises ZholError("LoggingFailed") when the records were not committed, in
        which case none of them is in the log.
        """
        batch = tuple(records)
        if not batch:
            return
        _check_records(batch)
        if not self._accepting:
            raise ZholError("LoggingFailed", "the message log is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        staged = self._staged.get(loop)
        if staged is None:
            staged = self._staged[loop] = []
            loop.call_soon(self._hand_over, loop)
        staged.append(_Pending(batch, future, loop))
        await future

    def _split(self, group: list[_Pending]) -> list[list[_Pending]]:
        """Groups of at most max_batch records (a larger single append stays whole)."""
        parts: list[list[_Pending]] = []
        size = self._max_batch
        for pending in group:
            if size + len(pending.records) > self._max_batch:
                parts.append([])
                size = 0
            parts[-1].append(pending)
            size += len(pending.records)
        return parts

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        """Give the writer what this loop appended during one iteration, as one group:
        one wake-up of the writer thread for all of it, not one per append."""
        group = self._staged.pop(loop, None)
        if not group:
            return
        with self._state_lock:
            if self._accepting:
                for part in self._split(group):
                    self._queue.put(part)
                return
        closed = ZholError("LoggingFailed", "the message log is not open")
        for pending in group:
            _resolve(pending, closed)

    def recent_request_ids(self, since_ms: int) -> set[str]:
        """Ids of requests received ("in") logged at or after ``since_ms``.

        Lets the replay guard remember recent ids across a restart.
        """
        try:
            conn = _connect_ro(self._path)
            try:
                rows = conn.execute(
                    "SELECT DISTINCT message_id FROM messages"
                    " WHERE kind = 'request' AND direction = 'in' AND logged_at_ms >= ?",
                    (since_ms,),
                ).fetchall()
            finally:
                conn.close()
        except (sqlite3.Error, OSError) as exc:
            raise ZholError("LoggingFailed", f"cannot read the message log: {exc}") from exc
        return {row[0] for row in rows}

    def holds(self, message_id: str, kind: str, direction: str) -> bool:
        """Whether a record of ``message_id`` with this kind and direction is committed.

        Lets a retried event delivery tell "an earlier attempt already logged this
        exchange" apart from a log that cannot be written.
        """
        try:
            conn = _connect_ro(self._path)
            try:
                row = conn.execute(
                    "SELECT 1 FROM messages WHERE message_id = ? AND kind = ? AND direction = ?",
                    (message_id, kind, direction),
                ).fetchone()
            finally:
                conn.close()
        except (sqlite3.Error, OSError) as exc:
            raise ZholError("LoggingFailed", f"cannot read the message log: {exc}") from exc
        return row is not None

    def close(self) -> None:
        """Write everything already appended, then stop the writer; later appends fail."""
        with self._state_lock:
            self._accepting = False
            self._closed = True
            thread = self._thread
            # Appends of this iteration not yet handed over go before the stop marker.
            for group in self._staged.values():
                for part in self._split(group):
                    self._queue.put(part)
            self._staged.clear()
            if thread is not None and thread.is_alive():
                self._queue.put(_STOP)
        if thread is not None:
            thread.join()

    # The writer thread.

    def _run(self) -> None:
        try:
            conn = self._connect_writer()
        except BaseException as exc:  # reported to open(), which raises
            self._open_error = exc
            self._ready.set()
            return
        self._ready.set()
        carry: list[_Pending] | None = None
        batch: list[_Pending] = []
        try:
            while True:
                first = carry if carry is not None else self._queue.get()
                carry = None
                if first is _STOP:
                    return
                assert isinstance(first, list)
                # A group (part of one loop iteration's appends) stays whole.
                batch = list(first)
                size = sum(len(p.records) for p in batch)
                stop = False
                while size < self._max_batch:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stop = True
                        break
                    assert isinstance(item, list)
                    records = sum(len(p.records) for p in item)
                    if size + records > self._max_batch:
                        carry = item
                        break
                    batch.extend(item)
                    size += records
                self._write_batch(conn, batch)
                if stop:
                    return
        except BaseException as exc:
            # A bug in the writer: nobody may wait forever for a commit.
            _log.exception("message log writer stopped")
            with self._state_lock:
                self._accepting = False
                self._closed = True
            # Settling twice is harmless: a future already resolved is left alone.
            for pending in [*batch, *(carry or ())]:
                _fail(pending, exc)
            self._fail_queued(exc)
        finally:
            conn.close()

    def _connect_writer(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            from_version = _migrate(conn)
            conn.executescript(_SCHEMA)
            self._tree = _load_tree(conn, rebuild=from_version is not None and from_version < 3)
        except BaseException:
            conn.close()
            raise
        return conn

    def _write_batch(self, conn: sqlite3.Connection, batch: list[_Pending]) -> None:
        """Commit the whole batch at once; on failure, retry each caller alone.

        The retry isolates a bad caller (say, a duplicate record) so it does not
        take down the others that happened to share its transaction.
        """
        try:
            self._commit(conn, [r for pending in batch for r in pending.records])
        except Exception as exc:  # binding errors too, not only sqlite3.Error
            if len(batch) == 1:
                _fail(batch[0], exc)
                return
        else:
            _succeed_all(batch)
            return
        for pending in batch:
            try:
                self._commit(conn, list(pending.records))
            except Exception as exc:
                _fail(pending, exc)
            else:
                _succeed(pending)

    def _commit(self, conn: sqlite3.Connection, records: list[LogRecord]) -> None:
        logged_at_ms = self._clock.now_ms()
        # A certificate already committed needs no second insert (the table is append-only).
        known = self._known_certs
        certs = {
            r.signer_cert_sha256: r.signer_cert_der
            for r in records
            if r.signer_cert_der and r.signer_cert_sha256 not in known
        }
        # The records' leaves, in seq order; the tree advances only if the commit does.
        tree = self._tree
        nodes: list[Node] = []
        for r in records:
            tree, completed = tree.append_with_nodes(record_leaf_hash(r, logged_at_ms))
            nodes.extend(completed)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(_INSERT_MESSAGE, [_row(r, logged_at_ms) for r in records])
            if certs:
                conn.executemany(_INSERT_CERT, certs.items())
            conn.executemany(_INSERT_NODE, [(n.level, n.index, n.hash) for n in nodes])
            conn.execute(_SAVE_TREE, (tree.to_bytes(),))
            (last_seq,) = conn.execute("SELECT max(seq) FROM messages").fetchone()
            if last_seq != tree.size:  # leaf n must be seq n + 1: never commit otherwise
                raise sqlite3.IntegrityError(f"seq {last_seq} is not tree size {tree.size}")
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        known.update(certs)
        self._tree = tree
        self._commits += 1

    def _fail_queued(self, exc: BaseException) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, list):
                for pending in item:
                    _fail(pending, exc)


def _migrate(conn: sqlite3.Connection) -> int | None:
    """Bring an older log's schema to this version, keeping every record and its seq;
    returns the version it upgraded from (None: a new log, or already current).

    Version 1 allowed one record per (message id, kind, direction); version 2 one per
    sealed message, since a request is logged before it is sent and each event
    delivery attempt is sealed afresh: the table is rebuilt in one transaction, its
    rows copied as they are. Version 3 adds the Merkle tree's tables, which the writer
    then builds over the existing records once (``_load_tree``).
    """
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(
            f"message log schema {version} is newer than this gateway's {SCHEMA_VERSION}"
        )
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages'"
    ).fetchone()
    if not exists or version == SCHEMA_VERSION:
        return None
    if version < 2:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # DROP TABLE drops the table's triggers before its rows, so none fires.
            conn.execute(_MESSAGES_TABLE.format(name="messages_v2"))
            conn.execute("INSERT INTO messages_v2 SELECT * FROM messages ORDER BY seq")
            conn.execute("DROP TABLE messages")
            conn.execute("ALTER TABLE messages_v2 RENAME TO messages")
            conn.execute("PRAGMA user_version = 2")
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
    _log.info("message log schema upgraded", extra={"from_version": version})
    return int(version)


def _load_tree(conn: sqlite3.Connection, *, rebuild: bool) -> TreeState:
    """The tree over the committed records: the saved state, or (a log from before the
    tree, ``rebuild``) built once from every record, in seq order, and saved."""
    row = conn.execute("SELECT state FROM tree_state WHERE id = 1").fetchone()
    (count,) = conn.execute("SELECT count(*) FROM messages").fetchone()
    if not rebuild:
        # A log kept as a tree from its start: its saved state must match its records
        # (a state that is gone or differs means the files were altered: fail closed).
        tree = TreeState() if row is None else TreeState.from_bytes(bytes(row[0]))
        if tree.size != count:
            raise sqlite3.DatabaseError(f"tree of {tree.size} leaves over {count} records")
        return tree
    tree = TreeState()
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows = conn.execute(
            "SELECT seq, kind, direction, logged_at_ms, peer, header, body, signature,"
            " signer_cert_sha256 FROM messages ORDER BY seq"
        )
        for seq, kind, direction, logged_at_ms, peer, header, body, signature, cert in rows:
            if seq != tree.size + 1:
                raise sqlite3.DatabaseError(f"seq {seq} follows {tree.size}: a gap")
            leaf = LogLeaf.of(
                kind=kind, direction=direction, logged_at_ms=logged_at_ms, peer=peer,
                header=header, body=body, signature=signature, signer_cert_sha256=cert,
            )  # fmt: skip
            tree, completed = tree.append_with_nodes(leaf_hash(encode_leaf(leaf)))
            conn.executemany(_INSERT_NODE, [(n.level, n.index, n.hash) for n in completed])
        conn.execute(_SAVE_TREE, (tree.to_bytes(),))
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    return tree


def _check_records(records: tuple[LogRecord, ...]) -> None:
    """Refuse malformed records before they reach the writer (a caller bug, not a disk error)."""
    for r in records:
        if r.kind not in KINDS or r.direction not in DIRECTIONS:
            raise ZholError("LoggingFailed", f"bad record kind/direction {r.kind}/{r.direction}")
        # A wrong hash would file the certificate under someone else's name for good.
        if r.signer_cert_der and cert_sha256(r.signer_cert_der) != r.signer_cert_sha256:
            raise ZholError("LoggingFailed", "signer certificate does not match its hash")


def _row(r: LogRecord, logged_at_ms: int) -> tuple[Any, ...]:
    return (
        r.message_id, r.kind, r.direction, r.client, r.service, r.data_subject, r.user_id,
        r.purpose, r.issued_at_ms, logged_at_ms, r.peer, r.status_code, r.header, r.body,
        r.signature, r.signer_cert_sha256, r.signed_digest,
    )  # fmt: skip


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            _log.exception("message log rollback failed")


def _resolve(pending: _Pending, exc: BaseException | None) -> None:
    def settle() -> None:
        if pending.future.done():  # the caller was cancelled; the outcome stands anyway
            return
        if exc is None:
            pending.future.set_result(None)
        else:
            pending.future.set_exception(exc)

    # RuntimeError: the caller's loop is already closed, so nobody is waiting.
    with contextlib.suppress(RuntimeError):
        pending.loop.call_soon_threadsafe(settle)


def _succeed(pending: _Pending) -> None:
    _resolve(pending, None)


def _succeed_all(batch: list[_Pending]) -> None:
    """Wake every caller of a committed batch: one hand-over per event loop, not per caller."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for pending in batch:
        by_loop.setdefault(pending.loop, []).append(pending.future)

    def settle(futures: list[asyncio.Future[None]]) -> None:
        for future in futures:
            if not future.done():  # a cancelled caller: the outcome stands anyway
                future.set_result(None)

    for loop, futures in by_loop.items():
        # RuntimeError: that loop is already closed, so nobody is waiting.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, futures)


def _fail(pending: _Pending, cause: BaseException) -> None:
    _log.warning(
        "message log write failed",
        extra={"records": len(pending.records), **error_fields(cause)},  # the cause, no data
    )
    err = ZholError("LoggingFailed", f"message log write failed: {type(cause).__name__}")
    err.__cause__ = cause
    _resolve(pending, err)


# The read side: plain functions over a read-only connection (CLI, audits, portal).


def _connect_ro(path: Path) -> sqlite3.Connection:
    """A read-only connection; refuses to create a log that is not there."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no message log at {path}")
    conn = sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000
    )
    conn.row_factory = sqlite3.Row
    return conn


@dataclass(frozen=True, slots=True)
class TreeHead:
    """The log's Merkle tree as committed: its size (the last seq) and root hash."""

    size: int
    root_hash: bytes


def tree_head(path: Path) -> TreeHead:
    """The committed tree's size and root, read-only (FileNotFoundError: no log)."""
    conn = _connect_ro(path)
    try:
        row = conn.execute("SELECT state FROM tree_state WHERE id = 1").fetchone()
    finally:
        conn.close()
    tree = TreeState() if row is None else TreeState.from_bytes(bytes(row["state"]))
    return TreeHead(tree.size, tree.root())


def _stored_nodes(conn: sqlite3.Connection) -> NodeReader:
    def read(level: int, index: int) -> bytes:
        row = conn.execute(
            "SELECT hash FROM tree_nodes WHERE level = ? AND idx = ?", (level, index)
        ).fetchone()
        if row is None:
            raise sqlite3.DatabaseError(f"tree node {level}/{index} is missing")
        return bytes(row["hash"])

    return read


def record_inclusion_proof(path: Path, seq: int, size: int) -> tuple[bytes, ...]:
    """The inclusion proof of record ``seq`` (leaf ``seq - 1``) in the tree of ``size``
    leaves, from the stored subtree hashes (O(log n) reads, no rescan)."""
    conn = _connect_ro(path)
    try:
        return inclusion_proof(seq - 1, size, _stored_nodes(conn))
    finally:
        conn.close()


def log_consistency_proof(path: Path, size1: int, size2: int) -> tuple[bytes, ...]:
    """The consistency proof from the tree of ``size1`` leaves to that of ``size2``."""
    conn = _connect_ro(path)
    try:
        return consistency_proof(size1, size2, _stored_nodes(conn))
    finally:
        conn.close()


def format_ms(ms: int) -> str:
    """ISO-8601 UTC with milliseconds, e.g. 2026-09-21T10:15:00.123Z."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def log_summary(path: Path) -> tuple[int, int | None]:
    """(number of records, when the newest was logged or None), read-only.

    Raises FileNotFoundError when there is no log at ``path``.
    """
    conn = _connect_ro(path)
    try:
        count, last = conn.execute("SELECT COUNT(*), MAX(logged_at_ms) FROM messages").fetchone()
    finally:
        conn.close()
    return int(count), None if last is None else int(last)


def list_records(
    path: Path,
    *,
    limit: int | None = None,
    message_id: str | None = None,
    data_subject: str | None = None,
    since_ms: int | None = None,
) -> list[dict[str, Any]]:
    """Records matching every given filter, oldest first, without bodies.

    Each record also carries ``signed`` (the values its signed header states, None
    when the header cannot be decoded) and ``mismatch`` (the fields whose column
    disagrees with them; see ``check_record``). Filters select on the columns.
    With ``limit``, the newest ``limit`` matches. Raises FileNotFoundError when
    there is no log at ``path`` and sqlite3.Error when it is not readable.
    """
    where: list[str] = []
    params: list[Any] = []
    if message_id is not None:
        where.append("message_id = ?")
        params.append(message_id)
    if data_subject is not None:
        where.append("data_subject = ?")
        params.append(data_subject)
    if since_ms is not None:
        where.append("logged_at_ms >= ?")
        params.append(since_ms)
    sql = (
        "SELECT seq, message_id, kind, direction, client, service, data_subject, user_id,"
        " purpose, issued_at_ms, logged_at_ms, peer, status_code, signed_digest,"
        " signer_cert_sha256, length(body) AS body_size, header, body FROM messages"
    )
    if where:
        sql += " WHERE " + " AND ".join(where)
    if limit is not None:
        sql += " ORDER BY seq DESC LIMIT ?"
        params.append(max(limit, 0))
    else:
        sql += " ORDER BY seq"
    conn = _connect_ro(path)
    try:
        rows = conn.execute(sql, params).fetchall()
    finally:
        conn.close()
    if limit is not None:
        rows.reverse()
    return [_describe(row) for row in rows]


def _describe(row: sqlite3.Row) -> dict[str, Any]:
    described = _columns(row)
    check = check_record(described, bytes(row["header"]), bytes(row["body"]))
    described["signed"] = check.signed
    described["mismatch"] = list(check.mismatch)
    return described


def _columns(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "seq": row["seq"],
        "message_id": row["message_id"],
        "kind": row["kind"],
        "direction": row["direction"],
        "client": row["client"],
        "service": row["service"],
        "data_subject": row["data_subject"],
        "user_id": row["user_id"],
        "purpose": row["purpose"],
        "logged_at": format_ms(row["logged_at_ms"]),
        "logged_at_ms": row["logged_at_ms"],
        "issued_at_ms": row["issued_at_ms"],
        "peer": row["peer"],
        "status_code": row["status_code"],
        "signed_digest": bytes(row["signed_digest"]).hex(),
        "signer_cert_sha256": bytes(row["signer_cert_sha256"]).hex(),
        "body_size": row["body_size"],
    }


# What a record's columns claim, checked against its signed header (no signature check).

# The columns a signed header states, in the order they are reported.
SIGNED_FIELDS = (
    "message_id", "kind", "client", "service", "data_subject", "user_id", "purpose",
    "issued_at_ms", "status_code",
)  # fmt: skip
_KIND_NAMES = {
    bus_pb2.MESSAGE_KIND_REQUEST: "request",
    bus_pb2.MESSAGE_KIND_RESPONSE: "response",
    bus_pb2.MESSAGE_KIND_EVENT: "event",
}
_PAYLOAD_TYPES = {"request": REQUEST_TYPE, "response": RESPONSE_TYPE, "event": EVENT_TYPE}


@dataclass(frozen=True, slots=True)
class RecordCheck:
    """What a record's signed header states, and which columns disagree with it."""

    signed: dict[str, Any] | None  # None: the header bytes are not a MessageHeader
    mismatch: tuple[str, ...]  # column names, "header" when it cannot be decoded
    # The bytes the signature covers (PAE of the signed kind), when the kind is known:
    # computed for the digest, kept so a signature check does not build them again.
    signed_bytes: bytes | None = None


def _subsystem_text(s: bus_pb2.SubsystemId) -> str:
    # Formatted, not parsed: a malformed identifier must show up as a mismatch, not raise.
    return f"{_member_text(s.member)}/{s.subsystem_code}"


def _member_text(m: bus_pb2.MemberId) -> str:
    return f"{m.instance}/{m.member_class}/{m.member_code}"


def _signer_text(h: bus_pb2.MessageHeader) -> str:
    """The member whose key must have signed this header: a request's or an event's
    client; an event acknowledgement's recipient (the subscriber); a response's provider."""
    if h.kind != bus_pb2.MESSAGE_KIND_RESPONSE:
        return _member_text(h.client.member)
    if h.HasField("recipient"):
        return _member_text(h.recipient.member)
    return _member_text(h.service.subsystem.member)


def signed_values(header: bytes) -> dict[str, Any] | None:
    """The record columns as the signed header states them; None if it does not decode.

    A call's service is the header's service; an event's (and its acknowledgement's)
    is ``<publisher>/<topic>``, as the gateways log it. ``signer`` is the member whose
    signing key must have sealed it (no column holds it).
    """
    try:
        h = bus_pb2.MessageHeader.FromString(header)
    except DecodeError:
        return None
    client = _subsystem_text(h.client)
    if h.topic:
        service = f"{client}/{h.topic}"
    else:
        sv = h.service
        service = f"{_subsystem_text(sv.subsystem)}/{sv.grpc_service}/{sv.method}"
    return {
        "message_id": h.message_id,
        "kind": _KIND_NAMES.get(h.kind, f"unknown({h.kind})"),
        "client": client,
        "service": service,
        "data_subject": h.data_subject,
        "user_id": h.user_id,
        "purpose": h.purpose,
        "issued_at_ms": h.issued_at_unix_ms,
        "status_code": h.status_code,
        # An answer's own words on a non-zero status (an event receiver's refusal, say).
        "status_message": h.status_message,
        "signer": _signer_text(h),
    }


def check_record(columns: Mapping[str, Any], header: bytes, body: bytes) -> RecordCheck:
    """Compare a record's columns with its signed header and bytes. Pure; no signature check.

    ``signed_digest`` is recomputed from the header and body (the digest of the bytes
    the signature covers), so a changed body or header byte shows up even when the
    readable columns were left alone. Whether the signature itself is valid, and by
    whom, is not checked here: a party holding the signing key could rewrite both.
    """
    signed = signed_values(header)
    if signed is None:
        return RecordCheck(None, ("header",))
    mismatch = [name for name in SIGNED_FIELDS if columns[name] != signed[name]]
    payload_type = _PAYLOAD_TYPES.get(signed["kind"])
    expected = columns["signed_digest"]
    signed_bytes = None
    if payload_type is None:
        mismatch.append("signed_digest")
    else:
        signed_bytes = message_signed_bytes(payload_type, header, body)
        if hashlib.sha256(signed_bytes).hexdigest() != expected:
            mismatch.append("signed_digest")
    return RecordCheck(signed, tuple(mismatch), signed_bytes)


# A consistent copy of a live log.


@dataclass(frozen=True, slots=True)
class SnapshotSummary:
    records: int
    last_seq: int | None  # None: the log is empty


def snapshot(source: Path, out: Path) -> SnapshotSummary:
    """Copy the log at ``source`` to the new file ``out``, consistently, while it is written.

    SQLite's online backup copies the whole database in one read transaction of a
    read-only connection: the copy holds every record committed before it started
    (those still in the ``-wal`` file too) and none half-written. The copy is one
    self-contained file in rollback-journal mode, created with mode 0600 (it holds
    personal data). Raises FileExistsError if ``out`` exists (it is never
    overwritten), FileNotFoundError when there is no log at ``source``, and
    sqlite3.Error or OSError when either side fails; a failed copy is removed.
    """
    out = Path(out)
    src = _connect_ro(source)
    try:
        # O_EXCL claims the name: no existing file is ever overwritten, not even in a race.
        fd = os.open(out, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            os.fchmod(fd, 0o600)  # the umask may have narrowed it; it must be exactly 0600
        finally:
            os.close(fd)
        try:
            summary = _copy(src, out)
        except BaseException:
            with contextlib.suppress(OSError):
                out.unlink()
            raise
    finally:
        src.close()
    return summary


def _copy(src: sqlite3.Connection, out: Path) -> SnapshotSummary:
    dst = sqlite3.connect(out, isolation_level=None)
    try:
        src.backup(dst)  # every page in one step: one read transaction on the source
        # The source's WAL mode comes with its header; the copy must not need a -wal file.
        mode = dst.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
        if str(mode).lower() != "delete":
            raise sqlite3.OperationalError(f"the copy stayed in journal mode {mode}")
        count, last = dst.execute("SELECT COUNT(*), MAX(seq) FROM messages").fetchone()
    finally:
        dst.close()
    return SnapshotSummary(int(count), None if last is None else int(last))
