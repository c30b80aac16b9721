"""`zhol gateway archive-checkpoints`: pack closed days' checkpoint files into one tar each.

gateway/checkpoint_archive.py says what is packed and how. Safe beside the running
gateway (run it daily from cron). Exit 0: done (or nothing to do); 1: a day could not be
archived (a loose file differs from its archived copy, or the archive did not read back
the same: its originals were kept); 2: a bad --before; 3: not a gateway's data
directory, or its checkpoint folder could not be read. A gateway that has logged
nothing yet has no checkpoint folder: nothing to do, exit 0 (a daily cron job on a new
gateway succeeds).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from zhol.cli.audit_files import CHECKPOINTS_DIR
from zhol.core.clock import SystemClock
from zhol.core.exitcodes import EXIT_CANNOT_CHECK, EXIT_FAILED, EXIT_OK, EXIT_USAGE
from zhol.gateway.checkpoint_archive import (
    DAY_MS,
    INCOMPLETE_AFTER_DAYS,
    ArchiveError,
    archive_checkpoints,
    day_of,
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "archive-checkpoints",
        help="pack each closed UTC day's finished checkpoint files into "
        "checkpoints/checkpoints-YYYY-MM-DD.tar and remove the packed originals",
    )
    p.add_argument("--dir", type=Path, required=True, help="the gateway's data directory")
    p.add_argument(
        "--before",
        metavar="YYYY-MM-DD",
        help="only days before this one (default and latest: today, UTC)",
    )
    p.add_argument(
        "--incomplete-after",
        type=int,
        default=INCOMPLETE_AFTER_DAYS,
        metavar="DAYS",
        help="pack a checkpoint still without its token or cosignature once it is this "
        f"many days old (default {INCOMPLETE_AFTER_DAYS})",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="say what would be packed; change nothing"
    )
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=_archive)


def _count(directory: Path) -> int:
    return sum(1 for _ in directory.iterdir())


def _archive(args: argparse.Namespace) -> int:
    directory: Path = args.dir / CHECKPOINTS_DIR
    now_ms = SystemClock().now_ms()
    try:
        before = date.fromisoformat(args.before) if args.before else day_of(now_ms)
    except ValueError:
        print(f"--before: not a date YYYY-MM-DD: {args.before!r}", file=sys.stderr)
        return EXIT_USAGE
    if args.incomplete_after < 1:
        print("--incomplete-after: at least 1 day", file=sys.stderr)
        return EXIT_USAGE
    if not (args.dir / "gateway.toml").is_file():
        print(f"{args.dir} is not a gateway's data directory (no gateway.toml)",
              file=sys.stderr)
        return EXIT_CANNOT_CHECK
    if not directory.exists():  # no checkpoint written yet (no message logged): nothing
        doc = {"dry_run": args.dry_run, "archives": [], "files_before": 0, "files_after": 0}
        print(json.dumps(doc, sort_keys=True) if args.json
              else f"nothing to pack: no checkpoint written yet in {args.dir}")
        return EXIT_OK
    if not directory.is_dir():
        print(f"{directory} is not a folder", file=sys.stderr)
        return EXIT_CANNOT_CHECK
    try:
        files_before = _count(directory)
        packed = archive_checkpoints(
            directory,
            now_ms=now_ms,
            before=before,
            incomplete_after_ms=args.incomplete_after * DAY_MS,
            dry_run=args.dry_run,
        )
        files_after = _count(directory)
    except ArchiveError as exc:
        print(f"archiving stopped, originals kept: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"cannot archive the checkpoints in {directory}: {exc}", file=sys.stderr)
        return EXIT_CANNOT_CHECK
    doc = {
        "dry_run": args.dry_run,
        "archives": [
            {
                "day": p.day.isoformat(),
                "archive": p.archive,
                "checkpoints": p.checkpoints,
                "files": p.files,
            }
            for p in packed
        ],  # fmt: skip
        "files_before": files_before,
        "files_after": files_after,
    }
    if args.json:
        print(json.dumps(doc, sort_keys=True))
        return EXIT_OK
    verb = "would pack" if args.dry_run else "packed"
    for p in packed:
        print(f"{p.archive}: {verb} {p.checkpoints} checkpoints ({p.files} files)")
    if not packed:
        print("nothing to archive")
    print(f"{directory}: {files_before} files before, {files_after} after")
    return EXIT_OK
