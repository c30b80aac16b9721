"""The health system's SQLite schema: tables, indexes and connection settings.

Once-only: no table holds a citizen's name, birth date, sex or address. A person
appears only as an IIN next to health's own facts; the region and district columns
belong to ``clinics`` and describe the clinic. Dates are ISO strings
(``YYYY-MM-DD``), which sort and compare as dates.

- clinics: the directory of primary-care clinics (id, name, region, district,
  capacity).
- attachments: a person's attachments to clinics; the open one has
  ``detached_on IS NULL``; ``basis`` is the place whose district the clinic served
  when it was made (rules.ATTACHMENT.bases; "" on older rows: the registered address),
  so that a move keeps an attachment by a place of work or study (added by
  ``add_columns``). One open attachment per person (a partial unique index),
  and one newborn attachment per person ever, so a birth delivered twice attaches the
  child once.
- insurance_periods: state-paid insurance periods (social category, first and last
  day inclusive, NULL last day: open-ended) and what each rests on (``source``); one
  row per (person, category, first day), so recording a period twice changes nothing.
  ``category`` is ``state_paid`` for everything the system decides itself;
  contributions are pension's records and are asked over the bus, not copied here.
- disability_conclusions: the medical advisory commission's conclusions (group 1..3,
  period, decision day, disabled since childhood: 0/1, added to an older file by
  ``add_columns``).
- state_insured_grounds: facts other agencies hold that make a person state-insured
  (rules.RECORDED_GROUNDS: a carer of a person with a group-1 disability, kandas,
  prisoners, detainees), recorded by an operator: social category, first and last
  day (NULL: until ended), the basis, the IIN of the person cared for (carers only),
  the day recorded and the day ended. The category is derived from them when asked.
- the bus outbox (events decided here, published by ``OutboxPublisher``) and inbox
  (events received, deduplicated by message id), from ``adapters.bus``.
"""

from __future__ import annotations

import sqlite3

from zhol.adapters.bus.inbox import INBOX_SCHEMA
from zhol.adapters.bus.outbox import OUTBOX_SCHEMA
from zhol.adapters.runtime.store import connect as connect  # the shared connection

SCHEMA_VERSION = 1

TABLES: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS clinics (
        clinic_id TEXT PRIMARY KEY,
        name      TEXT NOT NULL,
        region    TEXT NOT NULL,
        district  TEXT NOT NULL,
        capacity  INTEGER NOT NULL CHECK (capacity > 0)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS attachments (
        id            INTEGER PRIMARY KEY,
        iin           TEXT NOT NULL CHECK (length(iin) = 12),
        clinic_id     TEXT NOT NULL REFERENCES clinics (clinic_id),
        attached_on   TEXT NOT NULL,
        reason        TEXT NOT NULL CHECK (
            reason = 'request' OR reason = 'newborn' OR reason = 'address_change'
        ),
        detached_on   TEXT,
        detach_reason TEXT CHECK (
            detach_reason = 'request' OR detach_reason = 'address_change'
            OR detach_reason = 'death'
        ),
        CHECK ((detached_on IS NULL) = (detach_reason IS NULL)),
        CHECK (detached_on IS NULL OR detached_on >= attached_on)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS insurance_periods (
        id              INTEGER PRIMARY KEY,
        iin             TEXT NOT NULL CHECK (length(iin) = 12),
        category        TEXT NOT NULL CHECK (
            category = 'state_paid' OR category = 'contributions'
        ),
        social_category TEXT NOT NULL,
        valid_from      TEXT NOT NULL,
        valid_to        TEXT,
        source          TEXT NOT NULL,
        recorded_on     TEXT NOT NULL,
        CHECK (valid_to IS NULL OR valid_to >= valid_from)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS disability_conclusions (
        conclusion_id    TEXT PRIMARY KEY,
        iin              TEXT NOT NULL CHECK (length(iin) = 12),
        disability_group INTEGER NOT NULL CHECK (disability_group BETWEEN 1 AND 3),
        valid_from       TEXT NOT NULL,
        valid_to         TEXT,
        decided_on       TEXT NOT NULL,
        CHECK (valid_to IS NULL OR valid_to >= valid_from)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS state_insured_grounds (
        id              INTEGER PRIMARY KEY,
        iin             TEXT NOT NULL CHECK (length(iin) = 12),
        social_category TEXT NOT NULL,
        valid_from      TEXT NOT NULL,
        valid_to        TEXT,
        basis           TEXT NOT NULL,
        cared_for_iin   TEXT CHECK (cared_for_iin IS NULL OR length(cared_for_iin) = 12),
        recorded_on     TEXT NOT NULL,
        ended_on        TEXT,
        CHECK (valid_to IS NULL OR valid_to >= valid_from)
    )
    """,
)

INDEXES: tuple[str, ...] = (
    "CREATE INDEX IF NOT EXISTS clinics_by_district ON clinics (region, district)",
    # One open attachment per person.
    "CREATE UNIQUE INDEX IF NOT EXISTS attachments_open ON attachments (iin) "
    "WHERE detached_on IS NULL",
    # A person is attached as a newborn at most once (a redelivered birth does nothing).
    "CREATE UNIQUE INDEX IF NOT EXISTS attachments_newborn ON attachments (iin) "
    "WHERE reason = 'newborn'",
    "CREATE INDEX IF NOT EXISTS attachments_by_iin ON attachments (iin, attached_on)",
    "CREATE INDEX IF NOT EXISTS attachments_open_by_clinic ON attachments (clinic_id) "
    "WHERE detached_on IS NULL",
    "CREATE UNIQUE INDEX IF NOT EXISTS insurance_periods_once "
    "ON insurance_periods (iin, social_category, valid_from)",
    "CREATE INDEX IF NOT EXISTS disability_conclusions_by_iin "
    "ON disability_conclusions (iin, valid_from)",
    "CREATE UNIQUE INDEX IF NOT EXISTS state_insured_grounds_once "
    "ON state_insured_grounds (iin, social_category, valid_from)",
)

# The health system's own tables (the bus's outbox and inbox tables come on top).
TABLE_NAMES: tuple[str, ...] = (
    "clinics", "attachments", "insurance_periods", "disability_conclusions",
    "state_insured_grounds",
)


# Columns added to a table of the current version: ``add_columns`` adds those missing
# (ALTER TABLE ADD COLUMN keeps the rows, with the default), so a file made before a
# column existed gains it without a new version.
ADDED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("disability_conclusions", "since_childhood INTEGER NOT NULL DEFAULT 0"
     " CHECK (since_childhood IN (0, 1))"),
    # rules.ATTACHMENT.bases; "" on rows made before the basis was stored (treated as
    # the registered address)
    ("attachments", "basis TEXT NOT NULL DEFAULT '' CHECK (basis IN ('',"
     " 'registered_address', 'temporary_address', 'school', 'workplace',"
     " 'college_or_university'))"),
)


def add_columns(conn: sqlite3.Connection) -> None:
    for table, column in ADDED_COLUMNS:
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column.split()[0] not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")


def create_tables(conn: sqlite3.Connection) -> None:
    for ddl in TABLES:
        conn.execute(ddl)
    add_columns(conn)
    conn.executescript(OUTBOX_SCHEMA)
    conn.executescript(INBOX_SCHEMA)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def create_indexes(conn: sqlite3.Connection) -> None:
    for ddl in INDEXES:
        conn.execute(ddl)


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create whatever is missing; refuse a file written by another schema version."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version not in (0, SCHEMA_VERSION):
        raise RuntimeError(f"health database schema {version}, expected {SCHEMA_VERSION}")
    create_tables(conn)
    create_indexes(conn)
