"""``zhol adapter education seed|serve``: the education system's command line.

Exit codes follow the project's convention: 0 ok, 1 failed, 2 usage or configuration
(no such database, database already exists, bad settings).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from adapters.education.seed import seed_database
from adapters.education.server import EducationSettings, load_education_settings, run

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parser(subparsers: Any) -> None:
    """Register ``education`` under the ``zhol adapter`` command group."""
    parser = subparsers.add_parser(
        "education",
        help="kindergarten queue and schools database (KZ/GOV/MES/education)",
        description="The Ministry of Education's kindergarten queue and schools adapter.",
    )
    commands = parser.add_subparsers(dest="education_command", metavar="COMMAND")
    commands.required = True

    seed = commands.add_parser(
        "seed", help="create a database of kindergartens, schools, queue and enrolments"
    )
    seed.add_argument("--db", type=Path, required=True, help="SQLite file to create")
    seed.add_argument(
        "--population-db", type=Path,
        help="a seeded population database, read-only, to queue and enrol its children",
    )
    seed.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    seed.add_argument("--replace", action="store_true", help="delete an existing file first")
    seed.add_argument("--json", action="store_true", help="print the report as JSON")
    seed.set_defaults(func=seed_command)

    serve = commands.add_parser("serve", help="serve the education system over gRPC")
    serve.add_argument("--db", type=Path, help="the seeded SQLite file")
    serve.add_argument("--listen", help="HOST:PORT (default 127.0.0.1:0, an ephemeral port)")
    serve.add_argument("--port-file", type=Path, help="write the bound port to this file")
    serve.add_argument("--gateway", metavar="HOST:PORT",
                       help="our gateway's IS side (default: bus off)")
    serve.add_argument("--config", type=Path, help="TOML settings (ZHOL_EDUCATION_* override)")
    serve.set_defaults(func=serve_command)


def seed_command(args: argparse.Namespace) -> int:
    db: Path = args.db
    if db.is_dir():
        print(f"error: {db} is a directory", file=sys.stderr)
        return EXIT_USAGE
    population: Path | None = args.population_db
    if population is not None and not population.is_file():
        print(f"error: no population database at {population}", file=sys.stderr)
        return EXIT_USAGE
    if db.exists():
        if not args.replace:
            print(f"error: {db} already exists (use --replace)", file=sys.stderr)
            return EXIT_USAGE
        _remove_database(db)
    progress = _stderr if sys.stderr.isatty() and not args.json else None
    report = seed_database(db, population, args.seed, progress=progress)
    if args.json:
        print(json.dumps({"db": str(db), **dataclasses.asdict(report)}))
    else:
        print(
            f"seeded {db}: {report.districts} districts, {report.kindergartens} kindergartens,"
            f" {report.schools} schools, {report.queue_entries} queue entries"
            f" ({report.placed} placed), {report.enrolments} enrolments"
            f" in {report.seconds:.1f} s"
        )
    return EXIT_OK


def serve_command(args: argparse.Namespace) -> int:
    overrides = {"db_path": args.db, "listen": args.listen, "port_file": args.port_file,
                 "gateway_address": args.gateway}
    if args.config is not None and not args.config.is_file():
        print(f"error: no settings file {args.config}", file=sys.stderr)
        return EXIT_USAGE
    try:
        settings: EducationSettings = load_education_settings(args.config, overrides=overrides)
    except (TypeError, ValueError) as err:
        print(f"error: bad education settings: {err}", file=sys.stderr)
        return EXIT_USAGE
    if not settings.db_path.is_file():
        print(
            f"error: no database at {settings.db_path}"
            " (create it with: zhol adapter education seed --db PATH)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        return run(settings)
    except (OSError, RuntimeError) as err:
        print(f"error: cannot serve: {err}", file=sys.stderr)
        return EXIT_FAILED


def _remove_database(db: Path) -> None:
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        path.unlink(missing_ok=True)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
