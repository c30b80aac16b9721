"""``zhol adapter population seed|serve``: the population registry's command line.

Here: its seed option (``--count``) and report line. The arguments, checks and exit
codes every adapter shares are in adapters.runtime.cli.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from zhol.adapters.population.seed import SeedReport, seed_database
from zhol.adapters.population.server import load_population_settings, run
from zhol.adapters.runtime import cli as runtime_cli


def add_parser(subparsers: Any) -> None:
    """Register ``population`` under the ``zhol adapter`` command group."""
    commands = runtime_cli.add_agency_parser(
        subparsers, "population",
        help="population and civil-status registry (KZ/GOV/MJ/population)",
        description="The Ministry of Justice population and civil-status registry adapter.",
    )
    runtime_cli.add_seed_parser(
        commands, seed_command, help="create a database of synthetic citizens",
        options=lambda seed: seed.add_argument(
            "--count", type=_count, default=10_000, help="persons (default 10000)"
        ),
    )
    runtime_cli.add_serve_parser(
        commands, "population", help="serve the registry over gRPC",
        gateway_help="our gateway's IS side, to publish the registry's events (default: off)",
        load=load_population_settings, run=run,
    )


def seed_command(args: argparse.Namespace) -> int:
    return runtime_cli.seed_command(
        args,
        seed=lambda progress: seed_database(args.db, args.count, args.seed, progress=progress),
        summary=_summary,
    )


def _summary(db: Path, report: SeedReport) -> str:
    return (
        f"seeded {db}: {report.persons} persons, {report.addresses} addresses,"
        f" {report.family_links} family links, {report.civil_acts} civil acts"
        f" in {report.seconds:.1f} s"
    )


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("count must not be negative")
    return value
