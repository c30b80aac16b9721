"""The population registry's SQLite schema: tables, indexes and connection settings.

Tables are created without secondary indexes so a bulk load can fill them first and
index afterwards (``create_indexes``); ``ensure_schema`` does both for a fresh file.
Dates are ISO strings (``YYYY-MM-DD``), which sort and compare as dates. Enumerated
columns are checked with ``a = 'x' OR a = 'y'``: SQLite evaluates ``IN (...)`` in a CHECK
several times slower, which a bulk load of millions of rows notices.

- persons: one row per IIN (a WITHOUT ROWID table: a point lookup is one B-tree search).
- addresses: registration history; the current address has ``valid_to IS NULL``
  (at most one per person, enforced by a partial unique index), older ones keep the
  date they ended.
- temporary_addresses: registrations at a place of temporary residence, beside the
  permanent address; the current one has ``valid_to IS NULL`` (it may still have
  passed its ``until``, its own last day). Created with IF NOT EXISTS, so a file from
  before it gets the table when opened.
- family_links: directed links, stored both ways (child->mother 'mother',
  mother->child 'child', ...), so a person's family is one index range.
- civil_acts: birth, death, marriage and name-change acts; ``iin`` is the subject
  (child, deceased, husband, renamed person), ``related_iin`` the other party (mother,
  -, wife, -), ``details`` JSON (a name change keeps the previous and the new name).
- bus_outbox: events to publish (BirthRegistered, DeathRegistered, AddressChanged),
  written in the transaction of the act they announce (adapters/bus/outbox.py).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from zhol.adapters.bus.outbox import OUTBOX_INDEX, OUTBOX_SCHEMA
from zhol.adapters.runtime import store as runtime_store

SCHEMA_VERSION = 2  # 2: civil_acts may hold name_change acts

CIVIL_ACTS = """
    CREATE TABLE IF NOT EXISTS civil_acts (
        act_id        TEXT PRIMARY KEY,
        kind          TEXT NOT NULL CHECK (
            kind = 'birth' OR kind = 'death' OR kind = 'marriage' OR kind = 'name_change'
        ),
        iin           TEXT NOT NULL REFERENCES persons (iin),
        related_iin   TEXT REFERENCES persons (iin),
        registered_on TEXT NOT NULL,
        details       TEXT NOT NULL DEFAULT '{}'
    )
"""

TABLES: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS persons (
        iin         TEXT PRIMARY KEY CHECK (length(iin) = 12),
        last_name   TEXT NOT NULL,
        first_name  TEXT NOT NULL,
        patronymic  TEXT NOT NULL DEFAULT '',
        sex         TEXT NOT NULL CHECK (sex = 'M' OR sex = 'F'),
        birth_date  TEXT NOT NULL,
        citizenship TEXT NOT NULL DEFAULT 'KAZ',
        death_date  TEXT
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS addresses (
        id            INTEGER PRIMARY KEY,
        iin           TEXT NOT NULL REFERENCES persons (iin),
        region        TEXT NOT NULL,
        district      TEXT NOT NULL,
        locality      TEXT NOT NULL,
        street        TEXT NOT NULL,
        building      TEXT NOT NULL,
        apartment     TEXT NOT NULL DEFAULT '',
        registered_on TEXT NOT NULL,
        valid_to      TEXT
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS temporary_addresses (
        id            INTEGER PRIMARY KEY,
        iin           TEXT NOT NULL REFERENCES persons (iin),
        region        TEXT NOT NULL,
        district      TEXT NOT NULL,
        locality      TEXT NOT NULL,
        street        TEXT NOT NULL,
        building      TEXT NOT NULL,
        apartment     TEXT NOT NULL DEFAULT '',
        registered_on TEXT NOT NULL,
        until         TEXT,
        valid_to      TEXT
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS family_links (
        iin          TEXT NOT NULL REFERENCES persons (iin),
        relative_iin TEXT NOT NULL REFERENCES persons (iin),
        relation     TEXT NOT NULL CHECK (
            relation = 'mother' OR relation = 'father' OR relation = 'spouse'
            OR relation = 'child'
        )
    )
    """,
    CIVIL_ACTS,
    OUTBOX_SCHEMA,
)

INDEXES: tuple[str, ...] = (
    "CREATE UNIQUE INDEX IF NOT EXISTS addresses_current ON addresses (iin) "
    "WHERE valid_to IS NULL",
    "CREATE UNIQUE INDEX IF NOT EXISTS temporary_addresses_current"
    " ON temporary_addresses (iin) WHERE valid_to IS NULL",
    "CREATE UNIQUE INDEX IF NOT EXISTS family_links_by_iin "
    "ON family_links (iin, relative_iin)",
    "CREATE INDEX IF NOT EXISTS civil_acts_by_iin ON civil_acts (iin, kind)",
    OUTBOX_INDEX,
)

TABLE_NAMES: tuple[str, ...] = (
    "persons", "addresses", "temporary_addresses", "family_links", "civil_acts",
)


def create_tables(conn: sqlite3.Connection) -> None:
    for ddl in TABLES:
        conn.execute(ddl)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def create_indexes(conn: sqlite3.Connection) -> None:
    for ddl in INDEXES:
        conn.execute(ddl)


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create whatever is missing, upgrade a version 1 file; refuse any other version."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version not in (0, 1, SCHEMA_VERSION):
        raise RuntimeError(f"population database schema {version}, expected {SCHEMA_VERSION}")
    if version == 1:
        _allow_name_change_acts(conn)
    create_tables(conn)
    create_indexes(conn)


def _allow_name_change_acts(conn: sqlite3.Connection) -> None:
    """Version 1 to 2: rebuild civil_acts with the wider kind CHECK (SQLite cannot alter
    a CHECK in place), in one transaction; no table references civil_acts."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("ALTER TABLE civil_acts RENAME TO civil_acts_v1")
        conn.execute(CIVIL_ACTS)
        conn.execute("INSERT INTO civil_acts SELECT * FROM civil_acts_v1")
        conn.execute("DROP TABLE civil_acts_v1")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """The shared connection (adapters.runtime.store.connect) with a 64 MiB page cache;
    ``read_only`` also maps the file into memory, which makes random point lookups on a
    large file about a third faster."""
    return runtime_store.connect(path, read_only=read_only, cache_kib=65536, mmap_bytes=1 << 30)
