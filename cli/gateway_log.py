"""``zhol log``: read a gateway's message log from the command line.

Reads DIR/messagelog.db through a read-only connection, so it is safe to run
next to a live gateway. Exit codes (those of docs/operators.md): 0 ok, 2 usage,
3 could not check.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from zhol.gateway.messagelog import list_records

LOG_FILE = "messagelog.db"
EXIT_OK = 0
EXIT_USAGE = 2
EXIT_CANNOT_CHECK = 3

_TABLE_COLUMNS = (
    ("seq", "SEQ"),
    ("logged_at", "LOGGED AT (UTC)"),
    ("kind", "KIND"),
    ("direction", "DIR"),
    ("message_id", "MESSAGE ID"),
    ("client", "CLIENT"),
    ("service", "SERVICE"),
    ("data_subject", "SUBJECT"),
    ("status_code", "STATUS"),
    ("purpose", "PURPOSE"),
)


def add_parser(subparsers: Any) -> None:
    """Add ``log`` (with ``list``) to the ``zhol`` command's subparsers."""
    log_parser = subparsers.add_parser("log", help="read a gateway's message log")
    log_parser.set_defaults(func=lambda _args: _usage(log_parser))
    log_sub = log_parser.add_subparsers(dest="log_command", metavar="COMMAND")

    list_parser = log_sub.add_parser("list", help="list logged messages (no bodies)")
    list_parser.add_argument(
        "--gateway", required=True, type=Path, metavar="DIR", help="the gateway's data directory"
    )
    list_parser.add_argument("--json", action="store_true", help="one JSON object per line")
    list_parser.add_argument("--limit", type=int, metavar="N", help="only the newest N records")
    list_parser.add_argument("--message-id", metavar="ID", help="only this exchange")
    list_parser.add_argument("--data-subject", metavar="IIN", help="only records about IIN")
    list_parser.add_argument(
        "--since", metavar="ISO", help="only records logged at or after this time (UTC if naive)"
    )
    list_parser.set_defaults(func=run_list)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_usage(sys.stderr)
    return EXIT_USAGE


def parse_since(text: str) -> int:
    """ISO-8601 time to Unix milliseconds; a time without an offset is taken as UTC."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def run_list(args: argparse.Namespace) -> int:
    """``zhol log list``: print the matching records, as a table or JSON lines."""
    limit: int | None = getattr(args, "limit", None)
    if limit is not None and limit < 0:
        print("zhol log list: --limit must not be negative", file=sys.stderr)
        return EXIT_USAGE
    since_ms: int | None = None
    since: str | None = getattr(args, "since", None)
    if since:
        try:
            since_ms = parse_since(since)
        except ValueError:
            print(f"zhol log list: --since {since!r} is not an ISO-8601 time", file=sys.stderr)
            return EXIT_USAGE
    path = Path(args.gateway) / LOG_FILE
    if not path.is_file():
        print(f"zhol log list: no message log at {path}", file=sys.stderr)
        return EXIT_CANNOT_CHECK
    try:
        records = list_records(
            path,
            limit=limit,
            message_id=getattr(args, "message_id", None),
            data_subject=getattr(args, "data_subject", None),
            since_ms=since_ms,
        )
    except (OSError, sqlite3.Error) as exc:
        print(f"zhol log list: cannot read the message log at {path}: {exc}", file=sys.stderr)
        return EXIT_CANNOT_CHECK
    if getattr(args, "json", False):
        for record in records:
            print(json.dumps(record, sort_keys=True))
    else:
        _print_table(records)
    return EXIT_OK


def _print_table(records: list[dict[str, Any]]) -> None:
    rows = [[str(r[key]) if r[key] != "" else "-" for key, _ in _TABLE_COLUMNS] for r in records]
    headings = [title for _, title in _TABLE_COLUMNS]
    widths = [max(len(cell) for cell in column) for column in zip(headings, *rows, strict=True)]
    for line in [headings, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        print("  ".join(cells).rstrip())
    if not rows:
        print("(no records)")
