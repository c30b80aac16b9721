"""Reading a test's SQLite file directly, to check what a store really wrote."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def rows(db: Path, sql: str, *args: object) -> list[tuple]:
    """Every row ``sql`` selects from the database file ``db`` (its own connection)."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def one(db: Path, sql: str, *args: object) -> tuple:
    """The first row ``sql`` selects from ``db`` (None if there is none)."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchone()
    finally:
        conn.close()
