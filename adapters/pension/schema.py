"""The pension system's SQLite schema: tables, indexes and connection settings.

Once-only: no table holds a citizen's name, birth date, sex or address. A person is an
IIN; everything else about them is read from the population registry over the bus when
a decision needs it, and the reads are kept with the decision (``sources_read``).
Employers are legal entities (BIN) and their title is the pension system's own fact.

Dates are ISO text (``YYYY-MM-DD``), months ``YYYY-MM``; both sort as they should.
Money is whole tenge (INTEGER).

- employers: the legal entities that report contributions, with the region and
  district they are registered in (added columns, ``ADDED_COLUMNS``; '' when unknown).
- employment_periods: (iin, employer, started_on, ended_on); ``ended_on`` NULL while
  employed, inclusive otherwise.
- contributions: one employer's report for one person and month: income, mandatory
  pension contribution, social contribution, the employer's pension contribution (OPVR)
  (PRIMARY KEY iin, month, employer).
- pension_savings: the accumulative fund balance per IIN.
- pension_assignments: one row per decision, with its calculation (JSON) and basis; one
  age pension per person, one survivor pension per (child, deceased breadwinner) (partial
  unique indexes). ``ends_on`` (inclusive) is the last day a pension is due, NULL for
  life (a survivor pension ends the day before the child turns 18);
  ``breadwinner_iin`` is the deceased a survivor pension is paid for, NULL otherwise.
- benefits: one row per decision with its calculation (JSON). Once only, in the schema:
  UNIQUE(kind, subject_iin) for the childbirth lump sum, the child-care allowance, the
  burial benefit and the burial payment from pension savings; UNIQUE(kind, basis) (the
  commission's conclusion) for a disability benefit and the carer's benefit for a
  disabled child (subject: the child, recipient: the parent).
- sources_read: the reads over the bus a decision rests on (decision id, order).
- payments: the payment schedule of an assignment or a benefit, one row per month.
- bus_outbox / bus_inbox: the transactional outbox and the inbox of the bus library.
- recalculations: one row per recalculation decision of a benefit or pension (old and
  new amount, the change month, the rule rows with their sources as JSON, the reason,
  the replaced and the new unpaid schedule); recalculation_arrears: its supplementary
  payments, one per month paid below what was due (adapters/pension/recalculation.py).
  Created by ``CREATE TABLE IF NOT EXISTS`` on any version 3 file (no upgrade step).
- arrears_payments: the one-off payment of a recalculation's arrears (their total), one
  per recalculation decision (its primary key: never paid twice), in the month of the
  run (the first month not taken as paid). Created likewise on any version 4 file.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from zhol.adapters.bus.inbox import INBOX_INDEX, INBOX_SCHEMA
from zhol.adapters.bus.outbox import OUTBOX_INDEX, OUTBOX_SCHEMA
from zhol.adapters.runtime.store import connect as connect  # the shared connection

# 2: pension_assignments.ends_on and breadwinner_iin (survivor pensions);
# 3: benefits.kind 'carer_of_disabled_child' (the CHECK and the partial unique indexes);
# 4: benefits.kind 'burial_savings_payment' (the CHECK; the same rebuild as version 3).
SCHEMA_VERSION = 4

# Added to pension_assignments by version 2: the same text creates a new table and
# migrates a version 1 file (ALTER TABLE ADD COLUMN keeps the existing rows, NULL in both).
ASSIGNMENT_COLUMNS_V2: tuple[str, ...] = (
    "ends_on TEXT",
    "breadwinner_iin TEXT CHECK (breadwinner_iin IS NULL OR length(breadwinner_iin) = 12)",
)

# The benefits table, by name: version 3 rebuilds a file's table under a new name (SQLite
# cannot alter a CHECK) and renames it.
BENEFITS = """
    CREATE TABLE IF NOT EXISTS {name} (
        benefit_id    TEXT PRIMARY KEY,
        kind          TEXT NOT NULL CHECK (
            kind = 'childbirth_lump_sum' OR kind = 'child_care_allowance'
            OR kind = 'disability_benefit' OR kind = 'burial_benefit'
            OR kind = 'carer_of_disabled_child'
            OR kind = 'burial_savings_payment'
        ),
        recipient_iin TEXT NOT NULL CHECK (length(recipient_iin) = 12),
        subject_iin   TEXT NOT NULL CHECK (length(subject_iin) = 12),
        amount        INTEGER NOT NULL CHECK (amount >= 0),
        frequency     TEXT NOT NULL CHECK (frequency = 'monthly' OR frequency = 'one_off'),
        period_from   TEXT NOT NULL,
        period_to     TEXT,
        status        TEXT NOT NULL DEFAULT 'active' CHECK (
            status = 'active' OR status = 'completed' OR status = 'stopped'
            OR status = 'superseded'
        ),
        assigned_on   TEXT NOT NULL,
        stopped_on    TEXT,
        stop_reason   TEXT NOT NULL DEFAULT '',
        basis         TEXT NOT NULL,
        calculation   TEXT NOT NULL
    ) WITHOUT ROWID
    """

TABLES: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS employers (
        bin           TEXT PRIMARY KEY CHECK (length(bin) = 12),
        title         TEXT NOT NULL,
        registered_on TEXT NOT NULL
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS employment_periods (
        id           INTEGER PRIMARY KEY,
        iin          TEXT NOT NULL CHECK (length(iin) = 12),
        employer_bin TEXT NOT NULL REFERENCES employers (bin),
        started_on   TEXT NOT NULL,
        ended_on     TEXT CHECK (ended_on IS NULL OR ended_on >= started_on)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS contributions (
        iin            TEXT NOT NULL CHECK (length(iin) = 12),
        month          TEXT NOT NULL CHECK (length(month) = 7),
        employer_bin   TEXT NOT NULL REFERENCES employers (bin),
        income         INTEGER NOT NULL CHECK (income > 0),
        pension_amount INTEGER NOT NULL CHECK (pension_amount >= 0),
        social_amount  INTEGER NOT NULL CHECK (social_amount >= 0),
        recorded_on    TEXT NOT NULL,
        PRIMARY KEY (iin, month, employer_bin)
    ) WITHOUT ROWID
    """,
    # The employer's pension contribution (OPVR) is added by ``add_columns`` (also to
    # a file made before it), never in the CREATE TABLE: one definition of the column.
    """
    CREATE TABLE IF NOT EXISTS pension_savings (
        iin        TEXT PRIMARY KEY CHECK (length(iin) = 12),
        balance    INTEGER NOT NULL CHECK (balance >= 0),
        updated_on TEXT NOT NULL
    ) WITHOUT ROWID
    """,
    f"""
    CREATE TABLE IF NOT EXISTS pension_assignments (
        assignment_id  TEXT PRIMARY KEY,
        iin            TEXT NOT NULL CHECK (length(iin) = 12),
        kind           TEXT NOT NULL CHECK (
            kind = 'age' OR kind = 'disability' OR kind = 'survivor'
        ),
        monthly_amount INTEGER NOT NULL CHECK (monthly_amount >= 0),
        effective_from TEXT NOT NULL,
        assigned_on    TEXT NOT NULL,
        status         TEXT NOT NULL DEFAULT 'active' CHECK (
            status = 'active' OR status = 'stopped'
        ),
        stopped_on     TEXT,
        stop_reason    TEXT NOT NULL DEFAULT '',
        basis          TEXT NOT NULL,
        calculation    TEXT NOT NULL,
        {ASSIGNMENT_COLUMNS_V2[0]},
        {ASSIGNMENT_COLUMNS_V2[1]}
    ) WITHOUT ROWID
    """,
    BENEFITS.format(name="benefits"),
    """
    CREATE TABLE IF NOT EXISTS sources_read (
        decision_id  TEXT NOT NULL,
        seq          INTEGER NOT NULL,
        service      TEXT NOT NULL,
        provider     TEXT NOT NULL,
        purpose      TEXT NOT NULL,
        data_subject TEXT NOT NULL DEFAULT '',
        fact         TEXT NOT NULL,
        read_at_ms   INTEGER NOT NULL,
        PRIMARY KEY (decision_id, seq)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS payments (
        id            INTEGER PRIMARY KEY,
        assignment_id TEXT REFERENCES pension_assignments (assignment_id),
        benefit_id    TEXT REFERENCES benefits (benefit_id),
        month         TEXT NOT NULL CHECK (length(month) = 7),
        amount        INTEGER NOT NULL CHECK (amount >= 0),
        status        TEXT NOT NULL DEFAULT 'scheduled' CHECK (
            status = 'scheduled' OR status = 'paid' OR status = 'stopped'
        ),
        CHECK ((assignment_id IS NULL) != (benefit_id IS NULL))
    )
    """,
    OUTBOX_SCHEMA,
    INBOX_SCHEMA,
    """
    CREATE TABLE IF NOT EXISTS recalculations (
        recalculation_id TEXT PRIMARY KEY,
        benefit_id       TEXT REFERENCES benefits (benefit_id),
        assignment_id    TEXT REFERENCES pension_assignments (assignment_id),
        decided_on       TEXT NOT NULL,
        as_of            TEXT NOT NULL,
        change_from      TEXT NOT NULL CHECK (length(change_from) = 7),
        old_amount       INTEGER NOT NULL CHECK (old_amount >= 0),
        new_amount       INTEGER NOT NULL CHECK (new_amount >= 0),
        old_ends_on      TEXT,
        new_ends_on      TEXT,
        arrears_total    INTEGER NOT NULL CHECK (arrears_total >= 0),
        reason           TEXT NOT NULL,
        rules            TEXT NOT NULL,
        replaced         TEXT NOT NULL,
        schedule         TEXT NOT NULL,
        old_calculation  TEXT NOT NULL,
        new_calculation  TEXT NOT NULL,
        CHECK ((assignment_id IS NULL) != (benefit_id IS NULL))
    ) WITHOUT ROWID
    """,
    # Created on opening any version 4 file (no version step: a new table, no row changes).
    """
    CREATE TABLE IF NOT EXISTS arrears_payments (
        recalculation_id TEXT PRIMARY KEY REFERENCES recalculations (recalculation_id),
        month            TEXT NOT NULL CHECK (length(month) = 7),
        amount           INTEGER NOT NULL CHECK (amount > 0),
        status           TEXT NOT NULL DEFAULT 'scheduled' CHECK (
            status = 'scheduled' OR status = 'paid' OR status = 'stopped'
        )
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS recalculation_arrears (
        recalculation_id TEXT NOT NULL REFERENCES recalculations (recalculation_id),
        month            TEXT NOT NULL CHECK (length(month) = 7),
        due              INTEGER NOT NULL,
        paid             INTEGER NOT NULL,
        amount           INTEGER NOT NULL CHECK (amount > 0),
        PRIMARY KEY (recalculation_id, month)
    ) WITHOUT ROWID
    """,
)

BENEFIT_INDEXES: tuple[str, ...] = (
    "CREATE UNIQUE INDEX IF NOT EXISTS benefit_once_per_subject ON benefits (kind, subject_iin)"
    " WHERE kind != 'disability_benefit' AND kind != 'carer_of_disabled_child'",
    "CREATE UNIQUE INDEX IF NOT EXISTS benefit_once_per_conclusion ON benefits (kind, basis)"
    " WHERE kind = 'disability_benefit' OR kind = 'carer_of_disabled_child'",
    "CREATE INDEX IF NOT EXISTS benefit_by_recipient ON benefits (recipient_iin)",
    "CREATE INDEX IF NOT EXISTS benefit_by_subject ON benefits (subject_iin)",
)

INDEXES: tuple[str, ...] = (
    "CREATE INDEX IF NOT EXISTS employment_by_iin ON employment_periods (iin, started_on)",
    "CREATE UNIQUE INDEX IF NOT EXISTS pension_once_age ON pension_assignments (iin)"
    " WHERE kind = 'age'",
    "CREATE UNIQUE INDEX IF NOT EXISTS pension_once_survivor"
    " ON pension_assignments (iin, breadwinner_iin) WHERE kind = 'survivor'",
    "CREATE INDEX IF NOT EXISTS pension_by_iin ON pension_assignments (iin)",
    *BENEFIT_INDEXES,
    "CREATE UNIQUE INDEX IF NOT EXISTS payment_of_assignment ON payments (assignment_id, month)"
    " WHERE assignment_id IS NOT NULL",
    "CREATE UNIQUE INDEX IF NOT EXISTS payment_of_benefit ON payments (benefit_id, month)"
    " WHERE benefit_id IS NOT NULL",
    OUTBOX_INDEX,
    INBOX_INDEX,
    "CREATE INDEX IF NOT EXISTS recalculation_of_benefit ON recalculations (benefit_id)",
    "CREATE INDEX IF NOT EXISTS recalculation_of_assignment ON recalculations (assignment_id)",
)

TABLE_NAMES: tuple[str, ...] = (
    "employers", "employment_periods", "contributions", "pension_savings",
    "pension_assignments", "benefits", "sources_read", "payments", "bus_outbox", "bus_inbox",
    "recalculations", "recalculation_arrears", "arrears_payments",
)


# Columns added to a table of the current version: ``add_columns`` adds those missing
# (ALTER TABLE ADD COLUMN keeps the rows, with the default), so a file made before a
# column existed gains it without a new version.
ADDED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("contributions", "employer_pension_amount INTEGER NOT NULL DEFAULT 0"
     " CHECK (employer_pension_amount >= 0)"),
    # Where the employer is registered (health: clinic attachment by the place of work);
    # '' for an employer recorded before the columns (no place known).
    ("employers", "region TEXT NOT NULL DEFAULT ''"),
    ("employers", "district TEXT NOT NULL DEFAULT ''"),
)


def create_tables(conn: sqlite3.Connection) -> None:
    for ddl in TABLES:
        conn.execute(ddl)
    add_columns(conn)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def add_columns(conn: sqlite3.Connection) -> None:
    for table, column in ADDED_COLUMNS:
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column.split()[0] not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")


def create_indexes(conn: sqlite3.Connection) -> None:
    for ddl in INDEXES:
        conn.execute(ddl)


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create whatever is missing, upgrade a version 1, 2 or 3 file; refuse any other."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version not in (0, 1, 2, 3, SCHEMA_VERSION):
        raise RuntimeError(f"pension database schema {version}, expected {SCHEMA_VERSION}")
    if version in (1, 2, 3):
        _upgrade(conn, version)
    create_tables(conn)
    create_indexes(conn)


def _upgrade(conn: sqlite3.Connection, version: int) -> None:
    """Version 1, 2 or 3 to 4 in one transaction, every row kept: version 1 gains the two
    survivor columns (NULL: its pensions are age pensions, for life, no breadwinner);
    the benefits table is rebuilt with the new CHECK and its indexes recreated.

    Rebuilding a table that payments reference is SQLite's documented procedure:
    foreign keys off (outside the transaction: the pragma is a no-op inside one), the new
    table, the rows copied, the old one dropped, the new one renamed, then
    ``foreign_key_check`` before the commit (a dangling payment refuses the upgrade).
    """
    enforced = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if version == 1:
                _add_survivor_columns(conn)
            _rebuild_benefits(conn)
            for ddl in BENEFIT_INDEXES:
                conn.execute(ddl)
            broken = conn.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"pension database upgrade: {len(broken)} rows refer to "
                                   f"missing rows (first in {broken[0][0]})")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.execute(f"PRAGMA foreign_keys = {'ON' if enforced else 'OFF'}")


def _add_survivor_columns(conn: sqlite3.Connection) -> None:
    have = {row[1] for row in conn.execute("PRAGMA table_info(pension_assignments)")}
    for column in ASSIGNMENT_COLUMNS_V2:
        if column.split()[0] not in have:
            conn.execute(f"ALTER TABLE pension_assignments ADD COLUMN {column}")


def _rebuild_benefits(conn: sqlite3.Connection) -> None:
    """The benefits table under the current DDL, with the same rows (its indexes go with
    the old table: the caller recreates them, ``BENEFIT_INDEXES``)."""
    columns = ", ".join(row[1] for row in conn.execute("PRAGMA table_info(benefits)"))
    conn.execute("DROP TABLE IF EXISTS benefits_rebuilt")
    conn.execute(BENEFITS.format(name="benefits_rebuilt"))
    conn.execute(f"INSERT INTO benefits_rebuilt ({columns}) SELECT {columns} FROM benefits")
    conn.execute("DROP TABLE benefits")
    conn.execute("ALTER TABLE benefits_rebuilt RENAME TO benefits")


def create_database(path: Path) -> None:
    """A new, empty database file with the whole schema."""
    if path.exists():
        raise FileExistsError(f"{path} already exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    try:
        ensure_schema(conn)
    finally:
        conn.close()
