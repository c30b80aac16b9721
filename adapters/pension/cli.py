"""``zhol adapter pension seed|serve``: the pension system's command line.

    zhol adapter pension seed --db pension.db --population-db population.db [--as-of DATE]
    zhol adapter pension serve --db pension.db [--listen HOST:PORT] [--gateway HOST:PORT]

The seed reads the population file read-only, once, to give its citizens synthetic
careers (seeding only; at run time population is read through the bus).

The arguments, checks and exit codes every adapter shares are adapters.runtime.cli.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from zhol.adapters.pension.seed import SeedReport, seed_database
from zhol.adapters.pension.server import load_pension_settings, run
from zhol.adapters.runtime import cli as runtime_cli
from zhol.adapters.runtime.store import today_in_kz
from zhol.core.clock import SystemClock


def add_parser(subparsers: Any) -> None:
    """Register ``pension`` under the ``zhol adapter`` command group."""
    commands = runtime_cli.add_agency_parser(
        subparsers, "pension",
        help="pensions, benefits and contributions (KZ/GOV/MLSPP/pension)",
        description="The Ministry of Labour and Social Protection pension and benefits "
        "system adapter.",
    )
    runtime_cli.add_seed_parser(
        commands, seed_command,
        help="create a database of synthetic careers for a population database",
        options=_seed_options,
    )
    runtime_cli.add_serve_parser(
        commands, "pension", help="serve the pension system over gRPC",
        gateway_help="our gateway's IS-facing HOST:PORT (default: bus off)",
        load=load_pension_settings, run=run, seed_usage="--db PATH --population-db PATH",
    )


def _seed_options(seed: argparse.ArgumentParser) -> None:
    seed.add_argument("--population-db", type=Path, required=True,
                      help="the seeded population SQLite file (read-only, seeding only)")
    seed.add_argument("--as-of", type=_date, help="the seed's date YYYY-MM-DD (default today)")


def seed_command(args: argparse.Namespace) -> int:
    as_of: dt.date = args.as_of or today_in_kz(SystemClock())

    def summary(db: Path, report: SeedReport) -> str:
        return (
            f"seeded {db} as of {as_of}: {report.employers} employers,"
            f" {report.employment_periods} employment periods, {report.contributions}"
            f" contributions, {report.pensions} pensions for {report.persons_read} persons"
            f" in {report.seconds:.1f} s"
        )

    return runtime_cli.seed_command(
        args, population=args.population_db,
        seed=lambda _progress: seed_database(
            args.db, args.population_db, as_of=as_of, seed=args.seed
        ),
        summary=summary, json_extra={"as_of": as_of.isoformat()},
    )


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a date is YYYY-MM-DD") from None
