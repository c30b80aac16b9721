"""The education system's SQLite schema: tables, indexes and connection settings.

Dates are ISO strings (``YYYY-MM-DD``), which sort and compare as dates. Enumerated
columns are checked with ``a = 'x' OR a = 'y'`` (see the population schema for why).

Once-only: no table holds a citizen's name, birth date, sex or address. Tables about
citizens (``queue_entries``, ``school_enrolments``) hold the IIN and education's own
facts; where a place is (its district) is a reference to ``districts``, the list of
districts education serves, which holds no IIN. Kindergartens and schools carry their
own name and district: institutions, not citizens.

- districts: the region and district names education organises its queue by.
- kindergartens, schools: institutions, with capacity and languages of instruction
  (comma-separated ISO 639-1 codes).
- queue_entries: the kindergarten queue. At most one active (waiting or placed) entry
  per child and at most one entry queued because of the birth, enforced by partial
  unique indexes. ``queued_on`` is the child's seniority; the position is derived
  (waiting entries of the district ordered by ``queued_on`` then ``queue_entry_id``).
- queue_moves: each move of an entry to another district, with the date and reason.
- school_enrolments: at most one active enrolment per child (partial unique index).
- institutions: colleges and universities (vocational and higher education), with
  their district; studies: one person's study at one of them (level, form, first and
  last day, ``ended_on`` NULL while studying; at most one open study per person and
  institution, partial unique index). Both are created by ``CREATE TABLE IF NOT
  EXISTS`` on any version 1 file too (no upgrade step: new tables only).
- the bus library's outbox (events decided here, published later) and inbox (event
  deliveries already handled), in the same file so that a decision, its event and the
  record of the delivery that caused it commit in one transaction.
"""

from __future__ import annotations

import sqlite3

from zhol.adapters.bus.inbox import INBOX_INDEX, INBOX_SCHEMA
from zhol.adapters.bus.outbox import OUTBOX_INDEX, OUTBOX_SCHEMA
from zhol.adapters.runtime.store import connect as connect  # the shared connection

SCHEMA_VERSION = 1

TABLES: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS districts (
        district_id INTEGER PRIMARY KEY,
        region      TEXT NOT NULL,
        name        TEXT NOT NULL,
        UNIQUE (region, name)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS kindergartens (
        kindergarten_id TEXT PRIMARY KEY,
        name            TEXT NOT NULL,
        district_id     INTEGER NOT NULL REFERENCES districts (district_id),
        capacity        INTEGER NOT NULL CHECK (capacity > 0),
        languages       TEXT NOT NULL
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS schools (
        school_id   TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        district_id INTEGER NOT NULL REFERENCES districts (district_id),
        capacity    INTEGER NOT NULL CHECK (capacity > 0),
        languages   TEXT NOT NULL
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS queue_entries (
        queue_entry_id    INTEGER PRIMARY KEY,
        iin               TEXT NOT NULL CHECK (length(iin) = 12),
        district_id       INTEGER NOT NULL REFERENCES districts (district_id),
        kindergarten_id   TEXT REFERENCES kindergartens (kindergarten_id),
        queued_on         TEXT NOT NULL,
        status            TEXT NOT NULL CHECK (
            status = 'waiting' OR status = 'placed' OR status = 'withdrawn'
        ),
        reason            TEXT NOT NULL CHECK (
            reason = 'newborn' OR reason = 'request' OR reason = 'address_change'
        ),
        placed_in         TEXT REFERENCES kindergartens (kindergarten_id),
        status_changed_on TEXT NOT NULL,
        withdrawn_because TEXT CHECK (
            withdrawn_because IS NULL OR withdrawn_because = 'death'
            OR withdrawn_because = 'request' OR withdrawn_because = 'school'
        ),
        CHECK ((status = 'placed') = (placed_in IS NOT NULL)),
        CHECK ((status = 'withdrawn') = (withdrawn_because IS NOT NULL))
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS queue_moves (
        move_id          INTEGER PRIMARY KEY,
        queue_entry_id   INTEGER NOT NULL REFERENCES queue_entries (queue_entry_id),
        from_district_id INTEGER NOT NULL REFERENCES districts (district_id),
        to_district_id   INTEGER NOT NULL REFERENCES districts (district_id),
        moved_on         TEXT NOT NULL,
        reason           TEXT NOT NULL CHECK (reason = 'address_change' OR reason = 'request'),
        CHECK (from_district_id <> to_district_id)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS school_enrolments (
        enrolment_id      INTEGER PRIMARY KEY,
        iin               TEXT NOT NULL CHECK (length(iin) = 12),
        school_id         TEXT NOT NULL REFERENCES schools (school_id),
        grade             INTEGER NOT NULL CHECK (grade BETWEEN 1 AND 11),
        enrolled_on       TEXT NOT NULL,
        school_year_start TEXT NOT NULL,
        status            TEXT NOT NULL CHECK (
            status = 'active' OR status = 'transferred' OR status = 'left'
        ),
        ended_on          TEXT,
        CHECK ((status = 'active') = (ended_on IS NULL))
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS institutions (
        institution_id TEXT PRIMARY KEY,
        name           TEXT NOT NULL,
        kind           TEXT NOT NULL CHECK (kind = 'college' OR kind = 'university'),
        district_id    INTEGER NOT NULL REFERENCES districts (district_id)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS studies (
        study_id       INTEGER PRIMARY KEY,
        iin            TEXT NOT NULL CHECK (length(iin) = 12),
        institution_id TEXT NOT NULL REFERENCES institutions (institution_id),
        level          TEXT NOT NULL CHECK (
            level = 'vocational' OR level = 'bachelor' OR level = 'master'
            OR level = 'doctoral'
        ),
        form           TEXT NOT NULL CHECK (form = 'full_time' OR form = 'part_time'),
        started_on     TEXT NOT NULL,
        ended_on       TEXT CHECK (ended_on IS NULL OR ended_on >= started_on)
    )
    """,
)

INDEXES: tuple[str, ...] = (
    "CREATE INDEX IF NOT EXISTS kindergartens_by_district ON kindergartens (district_id)",
    "CREATE INDEX IF NOT EXISTS schools_by_district ON schools (district_id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS queue_one_active ON queue_entries (iin)"
    " WHERE status <> 'withdrawn'",
    "CREATE UNIQUE INDEX IF NOT EXISTS queue_one_newborn ON queue_entries (iin)"
    " WHERE reason = 'newborn'",
    "CREATE INDEX IF NOT EXISTS queue_by_iin ON queue_entries (iin, queue_entry_id)",
    "CREATE INDEX IF NOT EXISTS queue_waiting ON queue_entries"
    " (district_id, queued_on, queue_entry_id) WHERE status = 'waiting'",
    "CREATE INDEX IF NOT EXISTS queue_placed ON queue_entries (placed_in)"
    " WHERE status = 'placed'",
    "CREATE INDEX IF NOT EXISTS queue_moves_by_entry ON queue_moves (queue_entry_id, move_id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS enrolment_one_active ON school_enrolments (iin)"
    " WHERE status = 'active'",
    "CREATE INDEX IF NOT EXISTS enrolments_by_iin ON school_enrolments (iin, enrolment_id)",
    "CREATE INDEX IF NOT EXISTS enrolments_active_by_school ON school_enrolments (school_id)"
    " WHERE status = 'active'",
    "CREATE INDEX IF NOT EXISTS institutions_by_district ON institutions (district_id)",
    "CREATE INDEX IF NOT EXISTS studies_by_iin ON studies (iin, study_id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS study_one_open ON studies (iin, institution_id)"
    " WHERE ended_on IS NULL",
    "CREATE INDEX IF NOT EXISTS studies_open_by_institution ON studies (institution_id)"
    " WHERE ended_on IS NULL",
    OUTBOX_INDEX,
    INBOX_INDEX,
)

TABLE_NAMES: tuple[str, ...] = (
    "districts", "kindergartens", "schools", "queue_entries", "queue_moves",
    "school_enrolments", "institutions", "studies",
)


def create_tables(conn: sqlite3.Connection) -> None:
    for ddl in TABLES:
        conn.execute(ddl)
    conn.execute(OUTBOX_SCHEMA)
    conn.execute(INBOX_SCHEMA)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def create_indexes(conn: sqlite3.Connection) -> None:
    for ddl in INDEXES:
        conn.execute(ddl)


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create whatever is missing; refuse a file written by another schema version."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version not in (0, SCHEMA_VERSION):
        raise RuntimeError(f"education database schema {version}, expected {SCHEMA_VERSION}")
    create_tables(conn)
    create_indexes(conn)
