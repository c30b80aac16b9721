"""``zhol adapter pension seed|serve``: the pension system's command line.

    zhol adapter pension seed --db pension.db --population-db population.db [--as-of DATE]
    zhol adapter pension serve --db pension.db [--listen HOST:PORT] [--gateway HOST:PORT]

The seed reads the population file read-only, once, to give its citizens synthetic
careers (seeding only; at run time population is read through the bus).

Exit codes follow the project's convention: 0 ok, 1 failed, 2 usage or configuration
(no such database, database already exists, bad settings).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from adapters.pension.model import KZ_TIME
from adapters.pension.seed import seed_database
from adapters.pension.server import PensionSettings, load_pension_settings, run

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parser(subparsers: Any) -> None:
    """Register ``pension`` under the ``zhol adapter`` command group."""
    parser = subparsers.add_parser(
        "pension",
        help="pensions, benefits and contributions (KZ/GOV/MLSPP/pension)",
        description="The Ministry of Labour and Social Protection pension and benefits "
        "system adapter.",
    )
    commands = parser.add_subparsers(dest="pension_command", metavar="COMMAND")
    commands.required = True

    seed = commands.add_parser(
        "seed", help="create a database of synthetic careers for a population database"
    )
    seed.add_argument("--db", type=Path, required=True, help="SQLite file to create")
    seed.add_argument("--population-db", type=Path, required=True,
                      help="the seeded population SQLite file (read-only, seeding only)")
    seed.add_argument("--as-of", type=_date, help="the seed's date YYYY-MM-DD (default today)")
    seed.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    seed.add_argument("--replace", action="store_true", help="delete an existing file first")
    seed.add_argument("--json", action="store_true", help="print the report as JSON")
    seed.set_defaults(func=seed_command)

    serve = commands.add_parser("serve", help="serve the pension system over gRPC")
    serve.add_argument("--db", type=Path, help="the seeded SQLite file")
    serve.add_argument("--listen", help="HOST:PORT (default 127.0.0.1:0, an ephemeral port)")
    serve.add_argument("--port-file", type=Path, help="write the bound port to this file")
    serve.add_argument("--gateway", help="our gateway's IS-facing HOST:PORT (default: bus off)")
    serve.add_argument("--config", type=Path, help="TOML settings (ZHOL_PENSION_* override)")
    serve.set_defaults(func=serve_command)


def seed_command(args: argparse.Namespace) -> int:
    db: Path = args.db
    if db.is_dir():
        print(f"error: {db} is a directory", file=sys.stderr)
        return EXIT_USAGE
    if not args.population_db.is_file():
        print(f"error: no population database at {args.population_db}", file=sys.stderr)
        return EXIT_USAGE
    if db.exists():
        if not args.replace:
            print(f"error: {db} already exists (use --replace)", file=sys.stderr)
            return EXIT_USAGE
        _remove_database(db)
    as_of = args.as_of or dt.datetime.now(KZ_TIME).date()
    report = seed_database(db, args.population_db, as_of=as_of, seed=args.seed)
    if args.json:
        print(json.dumps({"db": str(db), "as_of": as_of.isoformat(),
                          **dataclasses.asdict(report)}))
    else:
        print(
            f"seeded {db} as of {as_of}: {report.employers} employers,"
            f" {report.employment_periods} employment periods, {report.contributions}"
            f" contributions, {report.pensions} pensions for {report.persons_read} persons"
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
        settings: PensionSettings = load_pension_settings(args.config, overrides=overrides)
    except (TypeError, ValueError) as err:
        print(f"error: bad pension settings: {err}", file=sys.stderr)
        return EXIT_USAGE
    if not settings.db_path.is_file():
        print(
            f"error: no database at {settings.db_path}"
            " (create it with: zhol adapter pension seed --db PATH --population-db PATH)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        return run(settings)
    except (OSError, RuntimeError) as err:
        print(f"error: cannot serve: {err}", file=sys.stderr)
        return EXIT_FAILED


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a date is YYYY-MM-DD") from None


def _remove_database(db: Path) -> None:
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        path.unlink(missing_ok=True)
