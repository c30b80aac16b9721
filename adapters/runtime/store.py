"""What every agency's store shares: Kazakhstan's time, the SQLite connection, open/close.

- ``KZ_TIME``, ``date_in_kz`` and ``today_in_kz``: the one time zone the agencies keep
  their dates in (UTC+5), and today's date by an injected clock.
- ``connect``: a connection in autocommit mode (explicit BEGIN), WAL journal, foreign
  keys on; an agency's ``schema.connect`` passes its own tuning.
- ``AgencyStore``: a store over one connection and a clock, opened over an agency's
  schema module (``connect``, ``ensure_schema``, ``TABLE_NAMES``); the agency's
  subclass keeps its own reads and writes.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import ClassVar, Protocol, Self

from zhol.core.clock import Clock

# Kazakhstan has kept one time zone (UTC+5) since 1 March 2024.
KZ_TIME = dt.timezone(dt.timedelta(hours=5), "Asia/Almaty")


def date_in_kz(unix_ms: int) -> dt.date:
    """The date in Kazakhstan at ``unix_ms`` (milliseconds since the epoch)."""
    return dt.datetime.fromtimestamp(unix_ms / 1000, KZ_TIME).date()


def today_in_kz(clock: Clock) -> dt.date:
    """Today's date in Kazakhstan by ``clock``."""
    return date_in_kz(clock.now_ms())


def connect(
    path: Path, *, read_only: bool = False, cache_kib: int = 0, mmap_bytes: int = 0
) -> sqlite3.Connection:
    """A connection in autocommit mode (explicit BEGIN), WAL journal, foreign keys on.

    ``read_only`` sets ``query_only`` (any write through it fails) and leaves the journal
    mode as the file has it; ``cache_kib`` (0: SQLite's default) sizes the page cache;
    ``mmap_bytes`` maps that much of the file into memory on a read-only connection. The
    connection may be used from another thread than the one that opened it, one thread
    at a time.
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    if not read_only and conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    if cache_kib:
        conn.execute(f"PRAGMA cache_size = {-int(cache_kib)}")
    if read_only:
        conn.execute("PRAGMA query_only = 1")
        if mmap_bytes:
            conn.execute(f"PRAGMA mmap_size = {int(mmap_bytes)}")
    return conn


class StoreSchema(Protocol):
    """What ``AgencyStore.open`` needs of an agency's schema module."""

    TABLE_NAMES: tuple[str, ...]

    def connect(self, path: Path, *, read_only: bool = False) -> sqlite3.Connection: ...

    def ensure_schema(self, conn: sqlite3.Connection) -> None: ...


class AgencyStore:
    """One connection to an agency's database and the clock its dates come from.

    A subclass names its agency (for messages) and its schema module:
    ``class HealthStore(AgencyStore, agency="health", schema=schema)``.
    """

    AGENCY: ClassVar[str]
    SCHEMA: ClassVar[StoreSchema]

    def __init_subclass__(
        cls, *, agency: str = "", schema: StoreSchema | None = None, **kwargs: object
    ) -> None:
        super().__init_subclass__(**kwargs)
        if agency:
            cls.AGENCY = agency
        if schema is not None:
            cls.SCHEMA = schema

    def __init__(self, conn: sqlite3.Connection, clock: Clock) -> None:
        self._conn = conn
        self._clock = clock

    @classmethod
    def open(cls, path: Path, clock: Clock, *, read_only: bool = False) -> Self:
        """Open an existing database (``FileNotFoundError`` when there is none); a writer
        creates what the schema misses, or upgrades it. A refused or failed upgrade leaves
        no connection open."""
        if not path.is_file():
            raise FileNotFoundError(f"no {cls.AGENCY} database at {path}")
        conn = cls.SCHEMA.connect(path, read_only=read_only)
        if not read_only:
            try:
                cls.SCHEMA.ensure_schema(conn)
            except BaseException:
                conn.close()
                raise
        return cls(conn, clock)

    def close(self) -> None:
        self._conn.close()

    def today(self) -> dt.date:
        """Today's date in Kazakhstan by the injected clock."""
        return today_in_kz(self._clock)

    def counts(self) -> dict[str, int]:
        """Rows per table of the agency's own (for reports and tests)."""
        return {
            table: self._conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in self.SCHEMA.TABLE_NAMES
        }


__all__ = [
    "KZ_TIME",
    "AgencyStore",
    "StoreSchema",
    "connect",
    "date_in_kz",
    "today_in_kz",
]
