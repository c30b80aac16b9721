"""A message log write that fails says why in the log: SQLite's own words, no data."""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from pathlib import Path

import pytest

from tests.unit.test_messagelog import SUBJECT, record
from zhol.core.clock import FixedClock
from zhol.core.errors import ZholError
from zhol.core.jsonlog import JsonFormatter
from zhol.gateway.messagelog import MessageLog

SECRET_BODY = b"body-bytes-that-must-not-reach-the-log"


class FullMessageLog(MessageLog):
    """A fault injected at the SQLite layer: the writer's database cannot grow any more,
    so an insert fails as on a full disk (SQLITE_FULL, "database or disk is full")."""

    def _connect_writer(self) -> sqlite3.Connection:
        conn = super()._connect_writer()
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        conn.execute(f"PRAGMA max_page_count = {pages}")
        return conn


async def test_a_full_disk_is_logged_with_its_cause_and_nothing_personal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="zhol.gateway.messagelog")
    message_log = FullMessageLog(tmp_path / "messagelog.db", FixedClock())
    message_log.open()
    try:
        with pytest.raises(ZholError) as caught:
            await message_log.append([record(str(uuid.uuid4()), body=SECRET_BODY * 500)])
        assert caught.value.code.name == "LoggingFailed"
    finally:
        message_log.close()
    (failed,) = [r for r in caplog.records if r.getMessage() == "message log write failed"]
    line = JsonFormatter().format(failed)
    entry = json.loads(line)
    assert entry["error"] == "OperationalError"
    assert entry["error_detail"] == "database or disk is full"
    assert entry["sqlite_error"] == "SQLITE_FULL"
    assert entry["records"] == 1
    assert SUBJECT not in line and SECRET_BODY.decode() not in line
