"""``zhol adapter health seed|serve``: the health system's command line.

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

from adapters.health.seed import seed_database
from adapters.health.server import HealthSettings, load_health_settings, run

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parser(subparsers: Any) -> None:
    """Register ``health`` under the ``zhol adapter`` command group."""
    parser = subparsers.add_parser(
        "health",
        help="clinics, attachment, insurance, disability (KZ/GOV/MOH/health)",
        description=(
            "The Ministry of Health system: e-Health clinic attachment, the Social Health"
            " Insurance Fund and the medical advisory commission."
        ),
    )
    commands = parser.add_subparsers(dest="health_command", metavar="COMMAND")
    commands.required = True

    seed = commands.add_parser(
        "seed",
        help="create a database with the clinic directory (and synthetic attachments)",
        description=(
            "Create a health database with the clinic directory. With --population-db,"
            " also seed synthetic attachments and state-paid insurance periods for that"
            " population: the file is opened read-only, once, to learn which living"
            " persons exist and their registered district (to pick a clinic there);"
            " only IINs and clinic ids are stored. This is synthetic seeding, not a copy"
            " of personal data: at run time health reads population over the bus."
        ),
    )
    seed.add_argument("--db", type=Path, required=True, help="SQLite file to create")
    seed.add_argument("--population-db", type=Path, help="a seeded population SQLite file")
    seed.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    seed.add_argument("--replace", action="store_true", help="delete an existing file first")
    seed.add_argument("--json", action="store_true", help="print the report as JSON")
    seed.set_defaults(func=seed_command)

    serve = commands.add_parser("serve", help="serve the health system over gRPC")
    serve.add_argument("--db", type=Path, help="the seeded SQLite file")
    serve.add_argument("--listen", help="HOST:PORT (default 127.0.0.1:0, an ephemeral port)")
    serve.add_argument("--port-file", type=Path, help="write the bound port to this file")
    serve.add_argument(
        "--gateway", dest="gateway_address",
        help="HOST:PORT of our gateway's IS side (default: bus off)",
    )
    serve.add_argument("--config", type=Path, help="TOML settings (ZHOL_HEALTH_* override)")
    serve.set_defaults(func=serve_command)


def seed_command(args: argparse.Namespace) -> int:
    db: Path = args.db
    population: Path | None = args.population_db
    if db.is_dir():
        print(f"error: {db} is a directory", file=sys.stderr)
        return EXIT_USAGE
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
            f"seeded {db}: {report.clinics} clinics, {report.attachments} attachments"
            f" of {report.persons_read} persons, {report.insurance_periods} state-paid"
            f" insurance periods in {report.seconds:.1f} s"
        )
    return EXIT_OK


def serve_command(args: argparse.Namespace) -> int:
    overrides = {
        "db_path": args.db,
        "listen": args.listen,
        "port_file": args.port_file,
        "gateway_address": args.gateway_address,
    }
    if args.config is not None and not args.config.is_file():
        print(f"error: no settings file {args.config}", file=sys.stderr)
        return EXIT_USAGE
    try:
        settings: HealthSettings = load_health_settings(args.config, overrides=overrides)
    except (TypeError, ValueError) as err:
        print(f"error: bad health settings: {err}", file=sys.stderr)
        return EXIT_USAGE
    if not settings.db_path.is_file():
        print(
            f"error: no database at {settings.db_path}"
            " (create it with: zhol adapter health seed --db PATH)",
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
