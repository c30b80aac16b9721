"""The registry's SQLite store: one file, DATA_DIR/registry.db, in WAL mode.

Only the registry imports this module. Every operation opens its own
connection and runs in one transaction (``BEGIN IMMEDIATE`` for writes), so it
is safe from worker threads and from a second process (the ``zhol registry``
operator commands run while ``serve`` is up). Integrity checks that depend on
the current state (is the request still pending, is the gateway already
active) run inside the writing transaction; a failed check raises a ZholError
and rolls everything back: bad input changes nothing.

A change counter is bumped by every mutation that changes what the global
configuration contains (members, gateways, subsystems, services, event topics,
revocations).
Recording a registration request or a rejection does not change the
configuration, and publishing a configuration version must not itself count
as a change, so those leave the counter alone.
"""

from __future__ import annotations

import json
import operator
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from zhol.core.errors import ErrorName, Hop, ZholError
from zhol.core.ids import GatewayId, MemberId, SubsystemId
from zhol.registry.model import (
    ConfVersion,
    Gateway,
    Member,
    PreviousCert,
    PreviousLogKey,
    Registration,
    RegistrationKind,
    RegistrationState,
    RevokedCert,
    Service,
    Snapshot,
    Subsystem,
    Topic,
    WitnessedCheckpoint,
    WitnessRefusal,
)

DB_FILE = "registry.db"
SCHEMA_VERSION = 4  # 2: RENEWAL registrations and previous_certs; 3: log keys; 4: witness
# Published configurations kept for inspection; older ones are pruned.
KEEP_CONF_VERSIONS = 50

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS gateways (
    id TEXT PRIMARY KEY,
    member TEXT NOT NULL REFERENCES members(id),
    address TEXT NOT NULL,
    auth_cert_der BLOB NOT NULL,
    auth_cert_sha256 BLOB NOT NULL UNIQUE,
    sign_cert_der BLOB NOT NULL,
    sign_cert_sha256 BLOB NOT NULL,
    registered_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER,
    log_public_key BLOB NOT NULL DEFAULT x''
);
CREATE TABLE IF NOT EXISTS subsystems (
    id TEXT PRIMARY KEY,
    member TEXT NOT NULL REFERENCES members(id),
    created_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS subsystem_gateways (
    subsystem TEXT NOT NULL REFERENCES subsystems(id),
    gateway TEXT NOT NULL REFERENCES gateways(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (subsystem, gateway)
);
CREATE TABLE IF NOT EXISTS services (
    provider TEXT NOT NULL REFERENCES subsystems(id),
    grpc_service TEXT NOT NULL,
    methods TEXT NOT NULL,
    descriptor_set BLOB NOT NULL,
    PRIMARY KEY (provider, grpc_service)
);
CREATE TABLE IF NOT EXISTS topics (
    publisher TEXT NOT NULL REFERENCES subsystems(id),
    topic TEXT NOT NULL,
    PRIMARY KEY (publisher, topic)
);
{registrations}
CREATE INDEX IF NOT EXISTS registrations_by_state ON registrations (state, created_at_ms);
CREATE TABLE IF NOT EXISTS revoked_certs (
    sha256 BLOB PRIMARY KEY,
    gateway TEXT NOT NULL,
    revoked_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS previous_certs (
    sha256 BLOB PRIMARY KEY,
    gateway TEXT NOT NULL REFERENCES gateways(id),
    role TEXT NOT NULL CHECK (role IN ('auth', 'sign')),
    cert_der BLOB NOT NULL,
    not_after_ms INTEGER NOT NULL,
    replaced_at_ms INTEGER NOT NULL,
    overlap_ended_at_ms INTEGER
);
CREATE TABLE IF NOT EXISTS previous_log_keys (
    public_key BLOB PRIMARY KEY,
    gateway TEXT NOT NULL REFERENCES gateways(id),
    replaced_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS conf_versions (
    version INTEGER PRIMARY KEY,
    generated_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    change_counter INTEGER NOT NULL,
    signed BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS witness_checkpoints (
    origin TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    root_hash BLOB NOT NULL,
    note BLOB NOT NULL,
    cosigned_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS witness_refusals (
    id INTEGER PRIMARY KEY,
    origin TEXT NOT NULL,
    size INTEGER,
    code TEXT NOT NULL,
    reason TEXT NOT NULL,
    refused_at_ms INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('change_counter', 0);
"""

# Kept apart: schema 2 rebuilds the table to widen its kind CHECK (SQLite cannot alter one).
_REGISTRATIONS = """
CREATE TABLE IF NOT EXISTS {name} (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('GATEWAY', 'SUBSYSTEM', 'RENEWAL')),
    gateway TEXT NOT NULL,
    subsystem TEXT,
    request BLOB NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('PENDING', 'APPROVED', 'REJECTED')),
    reason TEXT NOT NULL DEFAULT '',
    auth_cert_der BLOB NOT NULL DEFAULT x'',
    sign_cert_der BLOB NOT NULL DEFAULT x'',
    created_at_ms INTEGER NOT NULL,
    decided_at_ms INTEGER
);
"""
_SCHEMA = _SCHEMA.format(registrations=_REGISTRATIONS.format(name="registrations"))

_REG_COPY_COLS = (
    "id, kind, gateway, subsystem, request, state, reason, auth_cert_der, sign_cert_der,"
    " created_at_ms, decided_at_ms"
)
# Schema 1 -> 2 (certificate renewal): RENEWAL requests, and previous_certs (created by
# _SCHEMA). Runs in the transaction that checks the version, so a second process that
# opens the same file meanwhile finds version 2 and does nothing.
_MIGRATE_1_TO_2 = (
    _REGISTRATIONS.format(name="registrations_v2"),
    f"INSERT INTO registrations_v2 ({_REG_COPY_COLS}) SELECT {_REG_COPY_COLS} FROM registrations",
    "DROP TABLE registrations",
    "ALTER TABLE registrations_v2 RENAME TO registrations",
    "CREATE INDEX IF NOT EXISTS registrations_by_state ON registrations (state, created_at_ms)",
)

# Schema 2 -> 3 (log keys): the gateways' log key column; previous_log_keys comes from
# _SCHEMA. Same transaction as the version check, as for 1 -> 2.
_MIGRATE_2_TO_3 = ("ALTER TABLE gateways ADD COLUMN log_public_key BLOB NOT NULL DEFAULT x''",)
# Schema 3 -> 4 (witness): witness_checkpoints and witness_refusals come from _SCHEMA;
# nothing else changes.
# After any migration (the column must exist first): one gateway per log key.
_LOG_KEY_INDEX = (
    "CREATE UNIQUE INDEX IF NOT EXISTS gateways_by_log_key ON gateways (log_public_key)"
    " WHERE log_public_key != x''"
)

TABLES = (
    "members",
    "gateways",
    "subsystems",
    "subsystem_gateways",
    "services",
    "topics",
    "registrations",
    "revoked_certs",
    "previous_certs",
    "previous_log_keys",
    "conf_versions",
    "witness_checkpoints",
    "witness_refusals",
)


def _err(code: ErrorName, detail: str) -> ZholError:
    return ZholError(code, detail, hop=Hop.REGISTRY)


class Store:
    """Access to registry.db. Cheap to construct; holds no open connection."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def open(cls, path: Path) -> Store:
        """The store at path, creating the file and its schema when missing."""
        store = cls(path)
        with closing(store._connect()) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
        with store._write() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
                )
            elif row[0] in (1, 2, 3):
                # Upgraded in place, in one transaction: all of it or none of it.
                steps = (_MIGRATE_1_TO_2 if row[0] == 1 else ()) + (
                    _MIGRATE_2_TO_3 if row[0] < 3 else ()
                )
                for statement in steps:
                    conn.execute(statement)
                conn.execute(
                    "UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION,)
                )
            elif row[0] != SCHEMA_VERSION:
                raise RuntimeError(f"{path}: unsupported schema version {row[0]}")
            conn.execute(_LOG_KEY_INDEX)
        return store

    def schema_version(self) -> int:
        with self._read() as conn:
            return int(
                conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
            )

    # -- plumbing ---------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as conn:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("ROLLBACK")

    @staticmethod
    def _bump(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'change_counter'")

    # -- inspection -------------------------------------------------------------------------

    def change_counter(self) -> int:
        with self._read() as conn:
            return _counter(conn)

    def counts(self) -> dict[str, int]:
        """Row count per table (operators and tests)."""
        with self._read() as conn:
            return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}

    def snapshot(self) -> Snapshot:
        """Everything the global configuration is built from, consistently."""
        with self._read() as conn:
            members = tuple(
                Member(MemberId.parse(r[0]), r[1])
                for r in conn.execute("SELECT id, name FROM members ORDER BY id")
            )
            gateways = tuple(
                _gateway(r) for r in conn.execute(f"SELECT {_GW_COLS} FROM gateways ORDER BY id")
            )
            order: dict[str, list[GatewayId]] = {}
            for sub, gw in conn.execute(
                "SELECT subsystem, gateway FROM subsystem_gateways ORDER BY subsystem, position"
            ):
                order.setdefault(sub, []).append(GatewayId.parse(gw))
            subsystems = tuple(
                Subsystem(SubsystemId.parse(r[0]), tuple(order.get(r[0], ())))
                for r in conn.execute("SELECT id FROM subsystems ORDER BY id")
            )
            services = _services(conn)
            revoked = tuple(
                bytes(r[0])
                for r in conn.execute("SELECT sha256 FROM revoked_certs ORDER BY sha256")
            )
            topics = tuple(
                Topic(SubsystemId.parse(r[0]), r[1])
                for r in conn.execute(
                    "SELECT publisher, topic FROM topics ORDER BY publisher, topic"
                )
            )
            previous = tuple(
                _previous(r)
                for r in conn.execute(
                    f"SELECT {_PREV_COLS} FROM previous_certs ORDER BY gateway, replaced_at_ms"
                )
            )
            previous_log_keys = tuple(
                PreviousLogKey(GatewayId.parse(r[0]), bytes(r[1]), r[2])
                for r in conn.execute(
                    "SELECT gateway, public_key, replaced_at_ms FROM previous_log_keys"
                    " ORDER BY gateway, replaced_at_ms, rowid"
                )
            )
            return Snapshot(
                _counter(conn),
                members,
                gateways,
                subsystems,
                services,
                revoked,
                topics,
                previous,
                previous_log_keys,
            )

    def get_member(self, member: MemberId) -> Member | None:
        with self._read() as conn:
            row = conn.execute("SELECT id, name FROM members WHERE id = ?", (str(member),))
            found = row.fetchone()
            return Member(MemberId.parse(found[0]), found[1]) if found else None

    def get_gateway(self, gateway: GatewayId) -> Gateway | None:
        with self._read() as conn:
            return _get_gateway(conn, gateway)

    def services(self) -> tuple[Service, ...]:
        """Every published service, with its contract."""
        with self._read() as conn:
            return _services(conn)

    def previous_certs(self, gateway: GatewayId) -> tuple[PreviousCert, ...]:
        """Certificates renewals replaced for this gateway, oldest first."""
        with self._read() as conn:
            return tuple(
                _previous(r)
                for r in conn.execute(
                    f"SELECT {_PREV_COLS} FROM previous_certs WHERE gateway = ?"
                    " ORDER BY replaced_at_ms, sha256",
                    (str(gateway),),
                )
            )

    def revoked_certs(self) -> tuple[RevokedCert, ...]:
        with self._read() as conn:
            return tuple(
                RevokedCert(bytes(r[0]), GatewayId.parse(r[1]), r[2])
                for r in conn.execute(
                    "SELECT sha256, gateway, revoked_at_ms FROM revoked_certs "
                    "ORDER BY revoked_at_ms, sha256"
                )
            )

    # -- registrations ----------------------------------------------------------------------

    def add_pending_registration(
        self, reg: Registration, same_request: Callable[[bytes, bytes], bool] = operator.eq
    ) -> Registration:
        """Record a new pending request, unless one is pending for the same target.

        Returns the stored request: ``reg`` itself, or the pending one when
        ``same_request(pending bytes, new bytes)`` (a resubmission; by default, identical
        bytes). A different pending request for the same gateway (and subsystem) raises
        AlreadyRegistered.
        """
        with self._write() as conn:
            row = conn.execute(
                f"SELECT {_REG_COLS} FROM registrations WHERE state = 'PENDING' AND kind = ?"
                " AND gateway = ? AND subsystem IS ? ORDER BY created_at_ms LIMIT 1",
                (reg.kind.value, str(reg.gateway), str(reg.subsystem) if reg.subsystem else None),
            ).fetchone()
            if row is not None:
                pending = _registration(row)
                if same_request(pending.request, reg.request):
                    return pending
                raise _err("AlreadyRegistered", f"registration {pending.id} is already pending")
            _insert_registration(conn, reg)
            return reg

    def get_registration(self, request_id: str) -> Registration:
        """The request with this id, or UnknownRegistration."""
        with self._read() as conn:
            return _get_registration(conn, request_id)

    def list_registrations(
        self, state: RegistrationState | None = None
    ) -> tuple[Registration, ...]:
        """Requests, oldest first, optionally only those in one state."""
        sql = f"SELECT {_REG_COLS} FROM registrations"
        args: tuple[str, ...] = ()
        if state is not None:
            sql += " WHERE state = ?"
            args = (state.value,)
        with self._read() as conn:
            rows = conn.execute(sql + " ORDER BY created_at_ms, id", args).fetchall()
            return tuple(_registration(r) for r in rows)

    def complete_gateway_registration(
        self, request_id: str, member: Member, gateway: Gateway, decided_at_ms: int
    ) -> Registration:
        """Approve a pending GATEWAY request: member (if new), gateway and its certificates.

        A gateway whose earlier registration was revoked is replaced (new address and
        certificates; its old certificates stay on the revoked list).
        """
        with self._write() as conn:
            reg = _get_pending(conn, request_id, RegistrationKind.GATEWAY)
            if reg.gateway != gateway.id:
                raise _err("InvalidRequest", "gateway does not match the request")
            existing = _get_gateway(conn, gateway.id)
            if existing is not None and not existing.revoked:
                raise _err("AlreadyRegistered", f"gateway {gateway.id} is already registered")
            clash = conn.execute(
                "SELECT 1 FROM gateways WHERE auth_cert_sha256 = ? AND id != ?",
                (gateway.auth_cert_sha256, str(gateway.id)),
            ).fetchone()
            if clash:
                raise _err("AlreadyRegistered", "authentication certificate already in use")
            _check_log_key_unused(conn, gateway.log_public_key)
            if existing is not None and existing.log_public_key:
                # A re-registered gateway's earlier log key: what it signed stays verifiable.
                _retire_log_key(conn, existing, decided_at_ms)
            conn.execute(
                "INSERT INTO members (id, name, created_at_ms) VALUES (?, ?, ?)"
                " ON CONFLICT (id) DO NOTHING",
                (str(member.id), member.name, decided_at_ms),
            )
            conn.execute(
                "INSERT INTO gateways (id, member, address, auth_cert_der, auth_cert_sha256,"
                " sign_cert_der, sign_cert_sha256, registered_at_ms, revoked_at_ms,"
                " log_public_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)"
                " ON CONFLICT (id) DO UPDATE SET address = excluded.address,"
                " auth_cert_der = excluded.auth_cert_der,"
                " auth_cert_sha256 = excluded.auth_cert_sha256,"
                " sign_cert_der = excluded.sign_cert_der,"
                " sign_cert_sha256 = excluded.sign_cert_sha256,"
                " registered_at_ms = excluded.registered_at_ms, revoked_at_ms = NULL,"
                " log_public_key = excluded.log_public_key",
                (
                    str(gateway.id),
                    str(gateway.member),
                    gateway.address,
                    gateway.auth_cert_der,
                    gateway.auth_cert_sha256,
                    gateway.sign_cert_der,
                    gateway.sign_cert_sha256,
                    gateway.registered_at_ms,
                    gateway.log_public_key,
                ),
            )
            # A re-registered gateway starts afresh: nothing of its revoked past overlaps.
            conn.execute(
                "UPDATE previous_certs SET overlap_ended_at_ms = ?"
                " WHERE gateway = ? AND overlap_ended_at_ms IS NULL",
                (decided_at_ms, str(gateway.id)),
            )
            _decide(
                conn,
                request_id,
                RegistrationState.APPROVED,
                decided_at_ms,
                auth_cert_der=gateway.auth_cert_der,
                sign_cert_der=gateway.sign_cert_der,
            )
            self._bump(conn)
            return _get_registration(conn, request_id)

    def complete_subsystem_registration(
        self,
        request_id: str,
        subsystem: SubsystemId,
        gateway: GatewayId,
        services: tuple[Service, ...],
        decided_at_ms: int,
        topics: tuple[Topic, ...] = (),
        signer_cert_sha256: bytes | None = None,
        check_services: Callable[[tuple[Service, ...]], None] | None = None,
    ) -> Registration:
        """Approve a pending SUBSYSTEM request.

        Creates the subsystem if new, appends the gateway to its failover list if it is
        not on it yet, adds its services (a service already offered by the subsystem
        is replaced by the new description) and the event topics it publishes (a topic
        already listed stays as it is). With ``signer_cert_sha256``, the gateway's
        current signing certificate must be that one (else SignerMismatch).
        ``check_services`` is called with every service published, in the writing
        transaction, and may refuse (raise) before anything is written.
        """
        with self._write() as conn:
            reg = _get_pending(conn, request_id, RegistrationKind.SUBSYSTEM)
            if check_services is not None:
                check_services(_services(conn))
            if reg.gateway != gateway or reg.subsystem != subsystem:
                raise _err("InvalidRequest", "subsystem or gateway does not match the request")
            serving = _require_serving_gateway(conn, gateway, subsystem)
            if signer_cert_sha256 is not None and serving.sign_cert_sha256 != signer_cert_sha256:
                raise _err("SignerMismatch", f"not the current signing certificate of {gateway}")
            conn.execute(
                "INSERT INTO subsystems (id, member, created_at_ms) VALUES (?, ?, ?)"
                " ON CONFLICT (id) DO NOTHING",
                (str(subsystem), str(subsystem.member), decided_at_ms),
            )
            conn.execute(
                "INSERT INTO subsystem_gateways (subsystem, gateway, position)"
                " SELECT ?1, ?2, COALESCE(MAX(position) + 1, 0) FROM subsystem_gateways"
                " WHERE subsystem = ?1 ON CONFLICT (subsystem, gateway) DO NOTHING",
                (str(subsystem), str(gateway)),
            )
            for service in services:
                if service.provider != subsystem:
                    raise _err("InvalidRequest", "service provider is not the subsystem")
                conn.execute(
                    "INSERT INTO services (provider, grpc_service, methods, descriptor_set)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (provider, grpc_service) DO UPDATE SET"
                    " methods = excluded.methods, descriptor_set = excluded.descriptor_set",
                    (
                        str(subsystem),
                        service.grpc_service,
                        json.dumps(list(service.methods)),
                        service.descriptor_set,
                    ),
                )
            for topic in topics:
                if topic.publisher != subsystem:
                    raise _err("InvalidRequest", "topic publisher is not the subsystem")
                conn.execute(
                    "INSERT INTO topics (publisher, topic) VALUES (?, ?)"
                    " ON CONFLICT (publisher, topic) DO NOTHING",
                    (str(subsystem), topic.topic),
                )
            _decide(conn, request_id, RegistrationState.APPROVED, decided_at_ms)
            self._bump(conn)
            return _get_registration(conn, request_id)

    def complete_renewal(
        self,
        request_id: str,
        gateway: GatewayId,
        signer_cert_sha256: bytes,
        new_auth: tuple[bytes, bytes] | None,
        new_sign: tuple[bytes, bytes] | None,
        previous_not_after_ms: tuple[int, int],
        decided_at_ms: int,
        new_log_key: bytes = b"",
    ) -> Registration:
        """Approve a pending RENEWAL: the new certificates become the gateway's current ones.

        ``new_log_key`` (raw Ed25519, proven at submission) replaces the gateway's log
        key; the replaced one is kept in previous_log_keys. A log key in use by any
        gateway, now or before, is refused (AlreadyRegistered).

        ``new_auth`` / ``new_sign`` are (DER, SHA-256) or None to keep that certificate;
        ``previous_not_after_ms`` the (auth, sign) expiry of the certificates replaced.
        The replaced ones go to previous_certs (the auth one still accepted during the
        changeover). The gateway must still be registered, unrevoked, and hold the
        signing certificate that signed the request (else NotConfigured, SignerMismatch).
        """
        with self._write() as conn:
            reg = _get_pending(conn, request_id, RegistrationKind.RENEWAL)
            if reg.gateway != gateway:
                raise _err("InvalidRequest", "gateway does not match the request")
            current = _get_gateway(conn, gateway)
            if current is None or current.revoked:
                raise _err("NotConfigured", f"gateway {gateway} is not registered and unrevoked")
            if current.sign_cert_sha256 != signer_cert_sha256:
                raise _err("SignerMismatch", f"not the current signing certificate of {gateway}")
            replaced = (
                ("auth", new_auth, current.auth_cert_der, current.auth_cert_sha256),
                ("sign", new_sign, current.sign_cert_der, current.sign_cert_sha256),
            )
            for (role, new, old_der, old_sha256), not_after_ms in zip(
                replaced, previous_not_after_ms, strict=True
            ):
                if new is None:
                    continue
                conn.execute(
                    "INSERT INTO previous_certs (sha256, gateway, role, cert_der, not_after_ms,"
                    " replaced_at_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING",
                    (old_sha256, str(gateway), role, old_der, not_after_ms, decided_at_ms),
                )
                conn.execute(
                    f"UPDATE gateways SET {role}_cert_der = ?, {role}_cert_sha256 = ? WHERE id = ?",
                    (new[0], new[1], str(gateway)),
                )
            if new_log_key:
                _check_log_key_unused(conn, new_log_key)
                if current.log_public_key:
                    _retire_log_key(conn, current, decided_at_ms)
                conn.execute(
                    "UPDATE gateways SET log_public_key = ? WHERE id = ?",
                    (new_log_key, str(gateway)),
                )
            _decide(
                conn,
                request_id,
                RegistrationState.APPROVED,
                decided_at_ms,
                auth_cert_der=new_auth[0] if new_auth else b"",
                sign_cert_der=new_sign[0] if new_sign else b"",
            )
            self._bump(conn)
            return _get_registration(conn, request_id)

    def end_auth_overlap(self, gateway: GatewayId, now_ms: int) -> int:
        """Stop accepting the gateway's previous auth certificates; returns how many ended."""
        with self._write() as conn:
            if _get_gateway(conn, gateway) is None:
                raise _err("NotConfigured", f"no registered gateway {gateway}")
            ended = conn.execute(
                "UPDATE previous_certs SET overlap_ended_at_ms = ? WHERE gateway = ?"
                " AND role = 'auth' AND overlap_ended_at_ms IS NULL AND not_after_ms > ?",
                (now_ms, str(gateway), now_ms),
            ).rowcount
            if ended:
                self._bump(conn)
            return ended

    def reject_registration(self, request_id: str, reason: str, decided_at_ms: int) -> Registration:
        """Reject a pending request with a reason the requester will see."""
        with self._write() as conn:
            _get_pending(conn, request_id, None)
            _decide(conn, request_id, RegistrationState.REJECTED, decided_at_ms, reason=reason)
            return _get_registration(conn, request_id)

    def log_key_in_use(self, public_key: bytes) -> bool:
        """Whether a gateway holds this log key, or held it before a renewal."""
        with self._read() as conn:
            return _log_key_in_use(conn, public_key)

    def previous_log_keys(self, gateway: GatewayId) -> tuple[bytes, ...]:
        """The gateway's replaced log keys, oldest first."""
        with self._read() as conn:
            return tuple(
                bytes(r[0])
                for r in conn.execute(
                    "SELECT public_key FROM previous_log_keys WHERE gateway = ?"
                    " ORDER BY replaced_at_ms, rowid",
                    (str(gateway),),
                )
            )

    def check_serving_gateway(self, gateway: GatewayId, subsystem: SubsystemId) -> Gateway:
        """The gateway, if registered, unrevoked and subsystem's member's; else raise."""
        with self._read() as conn:
            return _require_serving_gateway(conn, gateway, subsystem)

    # -- revocation -------------------------------------------------------------------------

    def revoke_gateway(self, gateway: GatewayId, now_ms: int) -> tuple[Gateway, bool]:
        """Revoke a gateway and its certificates; returns (gateway, changed).

        Revoking an already revoked gateway changes nothing (changed is False).
        """
        with self._write() as conn:
            existing = _get_gateway(conn, gateway)
            if existing is None:
                raise _err("NotConfigured", f"no registered gateway {gateway}")
            if existing.revoked:
                return existing, False
            conn.execute(
                "UPDATE gateways SET revoked_at_ms = ? WHERE id = ?", (now_ms, str(gateway))
            )
            # Its earlier certificates too: a revoked gateway signs and connects with none.
            earlier = [
                bytes(r[0])
                for r in conn.execute(
                    "SELECT sha256 FROM previous_certs WHERE gateway = ?", (str(gateway),)
                )
            ]
            for digest in (existing.auth_cert_sha256, existing.sign_cert_sha256, *earlier):
                conn.execute(
                    "INSERT INTO revoked_certs (sha256, gateway, revoked_at_ms) VALUES (?, ?, ?)"
                    " ON CONFLICT (sha256) DO NOTHING",
                    (digest, str(gateway), now_ms),
                )
            self._bump(conn)
            revoked = _get_gateway(conn, gateway)
            assert revoked is not None
            return revoked, True

    # -- the witness ------------------------------------------------------------------------

    def witness_latest(self, origin: str) -> WitnessedCheckpoint | None:
        """The last checkpoint the witness cosigned for ``origin``."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT origin, size, root_hash, note, cosigned_at_ms FROM witness_checkpoints"
                " WHERE origin = ?",
                (origin,),
            ).fetchone()
            return (
                WitnessedCheckpoint(row[0], row[1], bytes(row[2]), bytes(row[3]), row[4])
                if row
                else None
            )

    def witness_advance(self, new: WitnessedCheckpoint, expected_size: int | None) -> bool:
        """Store ``new`` as the origin's latest if the stored one still has
        ``expected_size`` (None: none stored); False if another request moved it."""
        with self._write() as conn:
            row = conn.execute(
                "SELECT size FROM witness_checkpoints WHERE origin = ?", (new.origin,)
            ).fetchone()
            if (row[0] if row else None) != expected_size:
                return False
            conn.execute(
                "INSERT INTO witness_checkpoints (origin, size, root_hash, note, cosigned_at_ms)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (origin) DO UPDATE SET size = excluded.size,"
                " root_hash = excluded.root_hash, note = excluded.note,"
                " cosigned_at_ms = excluded.cosigned_at_ms",
                (new.origin, new.size, new.root_hash, new.note, new.cosigned_at_ms),
            )
            return True

    def witness_refuse(self, refusal: WitnessRefusal) -> None:
        """Record a refused checkpoint (kept: the evidence of an attempted rewrite)."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO witness_refusals (origin, size, code, reason, refused_at_ms)"
                " VALUES (?, ?, ?, ?, ?)",
                (refusal.origin, refusal.size, refusal.code, refusal.reason, refusal.refused_at_ms),
            )

    def witness_refusals(self, origin: str | None = None) -> tuple[WitnessRefusal, ...]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT origin, size, code, reason, refused_at_ms FROM witness_refusals"
                " WHERE ?1 IS NULL OR origin = ?1 ORDER BY id",
                (origin,),
            ).fetchall()
            return tuple(WitnessRefusal(r[0], r[1], r[2], r[3], r[4]) for r in rows)

    # -- published configurations -----------------------------------------------------------

    def latest_conf(self) -> ConfVersion | None:
        with self._read() as conn:
            row = conn.execute(
                "SELECT version, generated_at_ms, expires_at_ms, change_counter, signed"
                " FROM conf_versions ORDER BY version DESC LIMIT 1"
            ).fetchone()
            return ConfVersion(row[0], row[1], row[2], row[3], bytes(row[4])) if row else None

    def save_conf(self, conf: ConfVersion, keep: int = KEEP_CONF_VERSIONS) -> None:
        """Persist a newly published version; it must be newer than every stored one."""
        with self._write() as conn:
            latest = conn.execute("SELECT MAX(version) FROM conf_versions").fetchone()[0]
            if latest is not None and conf.version <= latest:
                raise ValueError(f"configuration version {conf.version} is not after {latest}")
            conn.execute(
                "INSERT INTO conf_versions (version, generated_at_ms, expires_at_ms,"
                " change_counter, signed) VALUES (?, ?, ?, ?, ?)",
                (
                    conf.version,
                    conf.generated_at_ms,
                    conf.expires_at_ms,
                    conf.change_counter,
                    conf.signed,
                ),
            )
            conn.execute(
                "DELETE FROM conf_versions WHERE version <= ?", (conf.version - max(keep, 1),)
            )


# -- row mapping ----------------------------------------------------------------------------

_GW_COLS = (
    "id, address, auth_cert_der, auth_cert_sha256, sign_cert_der, sign_cert_sha256,"
    " registered_at_ms, revoked_at_ms, log_public_key"
)
_PREV_COLS = "sha256, gateway, role, not_after_ms, replaced_at_ms, overlap_ended_at_ms"
_REG_COLS = (
    "id, kind, state, gateway, subsystem, request, created_at_ms, reason, auth_cert_der,"
    " sign_cert_der, decided_at_ms"
)


def _counter(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT value FROM meta WHERE key = 'change_counter'").fetchone()[0])


def _gateway(r: sqlite3.Row | tuple[Any, ...]) -> Gateway:
    return Gateway(
        id=GatewayId.parse(r[0]),
        address=r[1],
        auth_cert_der=bytes(r[2]),
        auth_cert_sha256=bytes(r[3]),
        sign_cert_der=bytes(r[4]),
        sign_cert_sha256=bytes(r[5]),
        registered_at_ms=r[6],
        revoked_at_ms=r[7],
        log_public_key=bytes(r[8]),
    )


def _previous(r: sqlite3.Row | tuple[Any, ...]) -> PreviousCert:
    return PreviousCert(
        sha256=bytes(r[0]),
        gateway=GatewayId.parse(r[1]),
        role=r[2],
        not_after_ms=r[3],
        replaced_at_ms=r[4],
        overlap_ended_at_ms=r[5],
    )


def _registration(r: sqlite3.Row | tuple[Any, ...]) -> Registration:
    return Registration(
        id=r[0],
        kind=RegistrationKind(r[1]),
        state=RegistrationState(r[2]),
        gateway=GatewayId.parse(r[3]),
        subsystem=SubsystemId.parse(r[4]) if r[4] else None,
        request=bytes(r[5]),
        created_at_ms=r[6],
        reason=r[7],
        auth_cert_der=bytes(r[8]),
        sign_cert_der=bytes(r[9]),
        decided_at_ms=r[10],
    )


def _insert_registration(conn: sqlite3.Connection, reg: Registration) -> None:
    conn.execute(
        "INSERT INTO registrations (id, kind, gateway, subsystem, request, state, reason,"
        " auth_cert_der, sign_cert_der, created_at_ms, decided_at_ms)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            reg.id,
            reg.kind.value,
            str(reg.gateway),
            str(reg.subsystem) if reg.subsystem else None,
            reg.request,
            reg.state.value,
            reg.reason,
            reg.auth_cert_der,
            reg.sign_cert_der,
            reg.created_at_ms,
            reg.decided_at_ms,
        ),
    )


def _get_gateway(conn: sqlite3.Connection, gateway: GatewayId) -> Gateway | None:
    row = conn.execute(f"SELECT {_GW_COLS} FROM gateways WHERE id = ?", (str(gateway),)).fetchone()
    return _gateway(row) if row else None


def _get_registration(conn: sqlite3.Connection, request_id: str) -> Registration:
    row = conn.execute(
        f"SELECT {_REG_COLS} FROM registrations WHERE id = ?", (request_id,)
    ).fetchone()
    if row is None:
        raise _err("UnknownRegistration", f"no registration request {request_id[:64]!r}")
    return _registration(row)


def _get_pending(
    conn: sqlite3.Connection, request_id: str, kind: RegistrationKind | None
) -> Registration:
    reg = _get_registration(conn, request_id)
    if reg.state is RegistrationState.APPROVED:
        raise _err("AlreadyRegistered", f"registration {request_id} was already approved")
    if reg.state is not RegistrationState.PENDING:
        raise _err("InvalidRequest", f"registration {request_id} was already {reg.state.value}")
    if kind is not None and reg.kind is not kind:
        raise _err("InvalidRequest", f"registration {request_id} is a {reg.kind.value} request")
    return reg


def _decide(
    conn: sqlite3.Connection,
    request_id: str,
    state: RegistrationState,
    decided_at_ms: int,
    *,
    reason: str = "",
    auth_cert_der: bytes = b"",
    sign_cert_der: bytes = b"",
) -> None:
    conn.execute(
        "UPDATE registrations SET state = ?, reason = ?, auth_cert_der = ?, sign_cert_der = ?,"
        " decided_at_ms = ? WHERE id = ? AND state = 'PENDING'",
        (state.value, reason, auth_cert_der, sign_cert_der, decided_at_ms, request_id),
    )


def _require_serving_gateway(
    conn: sqlite3.Connection, gateway: GatewayId, subsystem: SubsystemId
) -> Gateway:
    if gateway.member != subsystem.member:
        raise _err("InvalidRequest", f"gateway {gateway} does not belong to {subsystem.member}")
    found = _get_gateway(conn, gateway)
    if found is None or found.revoked:
        raise _err("NotConfigured", f"gateway {gateway} is not a registered, unrevoked gateway")
    return found


def _log_key_in_use(conn: sqlite3.Connection, public_key: bytes) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM gateways WHERE log_public_key = ?1"
            " UNION ALL SELECT 1 FROM previous_log_keys WHERE public_key = ?1 LIMIT 1",
            (public_key,),
        ).fetchone()
        is not None
    )


def _check_log_key_unused(conn: sqlite3.Connection, public_key: bytes) -> None:
    """A log key names one gateway for ever: its checkpoints must not verify as another's."""
    if public_key and _log_key_in_use(conn, public_key):
        raise _err("AlreadyRegistered", "this log key is already registered")


def _retire_log_key(conn: sqlite3.Connection, gateway: Gateway, now_ms: int) -> None:
    conn.execute(
        "INSERT INTO previous_log_keys (public_key, gateway, replaced_at_ms) VALUES (?, ?, ?)"
        " ON CONFLICT (public_key) DO NOTHING",
        (gateway.log_public_key, str(gateway.id), now_ms),
    )


def _services(conn: sqlite3.Connection) -> tuple[Service, ...]:
    """Every published service, by provider and name."""
    return tuple(
        Service(SubsystemId.parse(r[0]), r[1], tuple(json.loads(r[2])), bytes(r[3]))
        for r in conn.execute(
            "SELECT provider, grpc_service, methods, descriptor_set FROM services "
            "ORDER BY provider, grpc_service"
        )
    )
