"""``zhol log``: read a gateway's message log from the command line.

Reads DIR/messagelog.db through a read-only connection, so it is safe to run
next to a live gateway. Exit codes (those of docs/operators.md): 0 ok, 1 a record's
columns disagree with its signed header (``list``), 2 usage (``snapshot``: the
output file exists), 3 could not check.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from zhol.core.exitcodes import EXIT_CANNOT_CHECK, EXIT_FAILED, EXIT_OK, EXIT_USAGE
from zhol.gateway.messagelog import list_records, snapshot

LOG_FILE = "messagelog.db"
# Exit code of ``list`` when a record's columns disagree with its signed header.
EXIT_MISMATCH = EXIT_FAILED
_LIST_HELP = """\
The columns shown are the values each record's signed header states (its
seq, logged time, direction and peer are not signed). A record whose database
columns disagree with its signed header, or whose signed_digest does not match its
header and body, is flagged (CHECK column; "mismatch" in --json) and the exit
code is 1. Signatures are NOT verified (that is `zhol audit log`), nor
are deleted or reordered records noticed: an operator holding the signing key could
rewrite a record and re-sign it. Filters select on the stored columns.
Exit codes: 0 every record agrees, 1 some do not, 2 usage, 3 could not read the log.
"""
_SNAPSHOT_HELP = """\
A consistent copy of a log, safe while the gateway runs and writes: SQLite's
online backup from a read-only connection holds every record committed before it
started. The copy is one self-contained file (no -wal), mode 0600, that
`zhol log list --log FILE` reads. A plain file copy of messagelog.db is not: a
running gateway's newest records are in messagelog.db-wal. FILE must not exist.
"""

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

    list_parser = log_sub.add_parser(
        "list",
        help="list logged messages (no bodies); flags any that disagree with their signed header",
        description=_LIST_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = list_parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--gateway", type=Path, metavar="DIR", help="the gateway's data directory")
    source.add_argument(
        "--log", type=Path, metavar="FILE", help="a message log file (say, a snapshot)"
    )
    list_parser.add_argument("--json", action="store_true", help="one JSON object per line")
    list_parser.add_argument("--limit", type=int, metavar="N", help="only the newest N records")
    list_parser.add_argument("--message-id", metavar="ID", help="only this exchange")
    list_parser.add_argument("--data-subject", metavar="IIN", help="only records about IIN")
    list_parser.add_argument(
        "--since", metavar="ISO", help="only records logged at or after this time (UTC if naive)"
    )
    list_parser.set_defaults(func=run_list)

    snap_parser = log_sub.add_parser(
        "snapshot",
        help="a consistent copy of a (running) gateway's message log",
        description=_SNAPSHOT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    snap_parser.add_argument(
        "--gateway", required=True, type=Path, metavar="DIR", help="the gateway's data directory"
    )
    snap_parser.add_argument(
        "--out", required=True, type=Path, metavar="FILE", help="the copy to write (must not exist)"
    )
    snap_parser.add_argument("--json", action="store_true", help="the summary as one JSON object")
    snap_parser.set_defaults(func=run_snapshot)

    from zhol.cli import gateway_usage

    gateway_usage.add_log_parser(log_sub)


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
    path = _log_path(args)
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
    flagged = [r["seq"] for r in records if r["mismatch"]]
    if not flagged:
        return EXIT_OK
    shown = ", ".join(str(seq) for seq in flagged[:20]) + (", ..." if len(flagged) > 20 else "")
    print(
        f"zhol log list: {len(flagged)} record(s) disagree with their signed header"
        f" (seq {shown}); signatures were not checked",
        file=sys.stderr,
    )
    return EXIT_MISMATCH


def _log_path(args: argparse.Namespace) -> Path:
    log: Path | None = getattr(args, "log", None)
    if log is not None:
        return Path(log)
    return Path(args.gateway) / LOG_FILE


def run_snapshot(args: argparse.Namespace) -> int:
    """``zhol log snapshot``: a consistent, self-contained copy of a live message log."""
    source = Path(args.gateway) / LOG_FILE
    out = Path(args.out)
    if out.exists() or out.is_symlink():
        print(f"zhol log snapshot: {out} exists; not overwriting it", file=sys.stderr)
        return EXIT_USAGE
    if not source.is_file():
        print(f"zhol log snapshot: no message log at {source}", file=sys.stderr)
        return EXIT_CANNOT_CHECK
    try:
        summary = snapshot(source, out)
    except FileExistsError:  # created since the check above
        print(f"zhol log snapshot: {out} exists; not overwriting it", file=sys.stderr)
        return EXIT_USAGE
    except (OSError, sqlite3.Error) as exc:
        print(f"zhol log snapshot: cannot copy {source} to {out}: {exc}", file=sys.stderr)
        return EXIT_CANNOT_CHECK
    if getattr(args, "json", False):
        fields = {"out": str(out), "records": summary.records, "last_seq": summary.last_seq}
        print(json.dumps(fields, sort_keys=True))
    else:
        last = "-" if summary.last_seq is None else str(summary.last_seq)
        print(f"copied {summary.records} records (last seq {last}) from {source} to {out}")
    return EXIT_OK


def _shown(record: dict[str, Any], key: str) -> str:
    """A table cell: the signed value where the header states one, else the column."""
    signed = record["signed"]
    value = signed[key] if signed is not None and key in signed else record[key]
    return str(value) if value != "" else "-"


def _check_cell(record: dict[str, Any]) -> str:
    mismatch = record["mismatch"]
    return "MISMATCH:" + ",".join(mismatch) if mismatch else "ok"


def _print_table(records: list[dict[str, Any]]) -> None:
    rows = [[*(_shown(r, key) for key, _ in _TABLE_COLUMNS), _check_cell(r)] for r in records]
    headings = [*(title for _, title in _TABLE_COLUMNS), "CHECK"]
    widths = [max(len(cell) for cell in column) for column in zip(headings, *rows, strict=True)]
    for line in [headings, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        print("  ".join(cells).rstrip())
    if not rows:
        print("(no records)")
