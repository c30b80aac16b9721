"""Reading a test's SQLite file directly, to check what a store really wrote."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any


def rows(db: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    """Every row ``sql`` selects from the database file ``db`` (its own connection)."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def one(db: Path, sql: str, *args: object) -> tuple[Any, ...]:
    """The first row ``sql`` selects from ``db`` (None if there is none)."""
    conn = sqlite3.connect(db)
    try:
        row: tuple[Any, ...] = conn.execute(sql, args).fetchone()
        return row
    finally:
        conn.close()
