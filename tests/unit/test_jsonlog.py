"""zhol.core.jsonlog: every record is one valid JSON object on one line."""

from __future__ import annotations

import io
import json
import logging
import sqlite3

from zhol.core.jsonlog import JsonFormatter, error_fields


def _record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    logger = logging.getLogger("zhol.test.jsonlog")
    return logger.makeRecord(
        logger.name, logging.WARNING, __file__, 1, message, args, None, extra=extra
    )


def test_quotes_backslashes_and_newlines_stay_inside_one_valid_line() -> None:
    text = 'a "quoted" word,\\ a backslash\nand a second line'
    line = JsonFormatter().format(_record("said: %s", text))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == f"said: {text}"
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "zhol.test.jsonlog"
    assert entry["time"].endswith("+00:00")


def test_extra_fields_are_fields_of_their_own() -> None:
    entry = json.loads(
        JsonFormatter().format(_record("delivered", topic="a.b.v1.Born", attempts=3, when=object))
    )
    assert entry["topic"] == "a.b.v1.Born"
    assert entry["attempts"] == 3
    assert entry["when"] == str(object)  # what JSON cannot hold, as text
    assert "args" not in entry and "msg" not in entry and "levelno" not in entry


def test_a_traceback_is_one_field() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("zhol.test.jsonlog.traceback")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("it failed")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["message"] == "it failed"
    assert entry["exc_info"].startswith("Traceback (most recent call last):")
    assert "ValueError: boom" in entry["exc_info"]


def test_error_fields_name_the_cause_and_never_quote_data() -> None:
    disk = OSError(28, "No space left on device", "/var/lib/zhol/900101300123.db")
    assert error_fields(disk) == {"error": "OSError", "error_detail": "No space left on device"}
    assert error_fields(ValueError("900101300123 is not valid")) == {"error": "ValueError"}
    fields = error_fields(sqlite3.OperationalError("disk I/O error"))
    assert fields["error"] == "OperationalError" and fields["error_detail"] == "disk I/O error"
