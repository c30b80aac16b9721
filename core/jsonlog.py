"""Structured logs: one JSON object per record, one record per line.

``JsonFormatter`` writes ``time`` (UTC, ISO 8601, milliseconds), ``level``, ``logger``
and ``message``, then every field the call passed with ``extra=`` (whatever the record
holds beyond the standard LogRecord attributes), then ``exc_info`` (the formatted
traceback, one string) and ``stack_info`` when present. Values JSON cannot hold are
written as their ``str``. What goes into a log is the caller's choice: never secrets or
payloads.

``error_fields`` names a failure's cause for ``extra=``: its type and, for SQLite and
OS errors, their own message ("database or disk is full"), never the data involved.

``configure_json_logging`` installs it on the root logger (stderr), unless the process
already configured logging.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
import sys
from typing import Any, TextIO

# The attributes every LogRecord has (and the ones formatting adds): not "extra" fields.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))
) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON; see the module docstring for the fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry.setdefault(key, value)
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


def error_fields(exc: BaseException) -> dict[str, str]:
    """``extra=`` fields naming ``exc``: ``error`` (its type) and, when it says what failed
    without quoting data, ``error_detail`` and ``sqlite_error`` (e.g. SQLITE_FULL).

    SQLite's messages name the fault and at most a table or column ("database or disk is
    full", "UNIQUE constraint failed: messages.message_id"); an OSError gives its strerror
    only, not the file name. Other exceptions may carry anything: only their type.
    """
    fields = {"error": type(exc).__name__}
    if isinstance(exc, sqlite3.Error):
        fields["error_detail"] = str(exc)
        name = getattr(exc, "sqlite_errorname", None)
        if name:
            fields["sqlite_error"] = str(name)
    elif isinstance(exc, OSError) and exc.strerror:
        fields["error_detail"] = exc.strerror
    return fields


def configure_json_logging(level: int | str = "INFO", stream: TextIO | None = None) -> None:
    """JSON lines on ``stream`` (stderr) from the root logger at ``level``; does nothing
    when the root logger already has a handler (as ``logging.basicConfig``)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level, handlers=[handler])


__all__ = ["JsonFormatter", "configure_json_logging", "error_fields"]
