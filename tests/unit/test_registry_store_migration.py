"""registry.db written by earlier schemas (1: before renewals, 2: before log keys) is
upgraded in place."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from zhol.core.ids import GatewayId
from zhol.registry.model import RegistrationKind, RegistrationState
from zhol.registry.store import SCHEMA_VERSION, TABLES, Store

GW1 = GatewayId.parse("KZ/GOV/MJ/gw1")

# The schema of registry.db version 1, verbatim (as released before certificate renewal).
SCHEMA_V1 = """
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
    revoked_at_ms INTEGER
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
CREATE TABLE IF NOT EXISTS registrations (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('GATEWAY', 'SUBSYSTEM')),
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
CREATE INDEX IF NOT EXISTS registrations_by_state ON registrations (state, created_at_ms);
CREATE TABLE IF NOT EXISTS revoked_certs (
    sha256 BLOB PRIMARY KEY,
    gateway TEXT NOT NULL,
    revoked_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS conf_versions (
    version INTEGER PRIMARY KEY,
    generated_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    change_counter INTEGER NOT NULL,
    signed BLOB NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('change_counter', 0);
"""


def make_v1_database(path: Path) -> None:
    """A version 1 database with a member, a gateway and two decided registrations."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(
            "BEGIN;"
            + SCHEMA_V1
            + "INSERT INTO meta (key, value) VALUES ('schema_version', 1);"
            "UPDATE meta SET value = 7 WHERE key = 'change_counter';"
            "INSERT INTO members VALUES ('KZ/GOV/MJ', 'Ministry of Justice', 1);"
            "INSERT INTO gateways VALUES ('KZ/GOV/MJ/gw1', 'KZ/GOV/MJ', '127.0.0.1:7001',"
            " x'01', x'aa', x'02', x'bb', 1, NULL);"
            "INSERT INTO registrations (id, kind, gateway, subsystem, request, state, reason,"
            " created_at_ms, decided_at_ms) VALUES"
            " ('r1', 'GATEWAY', 'KZ/GOV/MJ/gw1', NULL, x'08', 'APPROVED', '', 1, 2),"
            " ('r2', 'SUBSYSTEM', 'KZ/GOV/MJ/gw1', 'KZ/GOV/MJ/population', x'08', 'REJECTED',"
            " 'not yet', 3, 4);"
            "COMMIT;"
        )


def test_a_version_1_database_is_upgraded_in_place_keeping_everything(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    make_v1_database(path)
    store = Store.open(path)
    assert store.schema_version() == SCHEMA_VERSION == 4
    assert store.change_counter() == 7  # the upgrade is not a configuration change
    regs = store.list_registrations()
    assert [(r.id, r.kind, r.state, r.reason) for r in regs] == [
        ("r1", RegistrationKind.GATEWAY, RegistrationState.APPROVED, ""),
        ("r2", RegistrationKind.SUBSYSTEM, RegistrationState.REJECTED, "not yet"),
    ]
    gateway = store.get_gateway(GW1)
    assert gateway is not None and gateway.auth_cert_sha256 == b"\xaa"
    assert gateway.log_public_key == b""  # registered before log keys: none yet
    assert set(store.counts()) == set(TABLES) and store.counts()["previous_certs"] == 0
    assert store.counts()["previous_log_keys"] == 0
    # The widened kind check: a RENEWAL request can be stored now.
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(
            "INSERT INTO registrations (id, kind, gateway, request, state, created_at_ms)"
            " VALUES ('r3', 'RENEWAL', 'KZ/GOV/MJ/gw1', x'08', 'PENDING', 5)"
        )
        conn.commit()
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "registrations_by_state" in indexes
    assert store.get_registration("r3").kind is RegistrationKind.RENEWAL
    # Opening again is a no-op.
    assert Store.open(path).list_registrations() == store.list_registrations()


# What schema 2 added to schema 1, verbatim (as released before log keys).
SCHEMA_V2_ADDITIONS = """
CREATE TABLE registrations_v2 (
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
INSERT INTO registrations_v2 SELECT * FROM registrations;
DROP TABLE registrations;
ALTER TABLE registrations_v2 RENAME TO registrations;
CREATE INDEX registrations_by_state ON registrations (state, created_at_ms);
CREATE TABLE previous_certs (
    sha256 BLOB PRIMARY KEY,
    gateway TEXT NOT NULL REFERENCES gateways(id),
    role TEXT NOT NULL CHECK (role IN ('auth', 'sign')),
    cert_der BLOB NOT NULL,
    not_after_ms INTEGER NOT NULL,
    replaced_at_ms INTEGER NOT NULL,
    overlap_ended_at_ms INTEGER
);
UPDATE meta SET value = 2 WHERE key = 'schema_version';
"""


def test_a_version_2_database_gains_log_keys_keeping_everything(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    make_v1_database(path)
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.executescript("BEGIN;" + SCHEMA_V2_ADDITIONS + "COMMIT;")
    store = Store.open(path)
    assert store.schema_version() == SCHEMA_VERSION
    assert store.change_counter() == 7
    gateway = store.get_gateway(GW1)
    assert gateway is not None and gateway.auth_cert_sha256 == b"\xaa"
    assert gateway.log_public_key == b""
    assert [r.id for r in store.list_registrations()] == ["r1", "r2"]
    # The new column and its uniqueness: one gateway per log key, empty ones exempt.
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("UPDATE gateways SET log_public_key = ? WHERE id = ?", (b"k" * 32, str(GW1)))
        conn.execute(
            "INSERT INTO gateways VALUES ('KZ/GOV/MJ/gw2', 'KZ/GOV/MJ', '127.0.0.1:7002',"
            " x'03', x'cc', x'04', x'dd', 1, NULL, x'')"
        )
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(
                "UPDATE gateways SET log_public_key = ? WHERE id = 'KZ/GOV/MJ/gw2'", (b"k" * 32,)
            )
        conn.commit()
    assert store.log_key_in_use(b"k" * 32) and not store.log_key_in_use(b"j" * 32)
    assert Store.open(path).get_gateway(GW1) == store.get_gateway(GW1)


def test_a_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    Store.open(path)
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("UPDATE meta SET value = 99 WHERE key = 'schema_version'")
        conn.commit()
    with pytest.raises(RuntimeError, match="unsupported schema version 99"):
        Store.open(path)
