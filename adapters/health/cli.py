"""``zhol adapter health seed|serve|ground``: the health system's command line.

Here: its seed option (``--population-db``, optional) and report line. The
arguments, checks and exit codes every adapter shares are in adapters.runtime.cli.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zhol.adapters.health.grounds_cli import add_ground_parser
from zhol.adapters.health.seed import SeedReport, seed_database
from zhol.adapters.health.server import load_health_settings, run
from zhol.adapters.runtime import cli as runtime_cli
from zhol.core.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_USAGE

# The exit codes stay importable from here (tests/unit/test_health_cli.py reads them).
__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "add_parser", "seed_command"]


def _summary(db: Path, report: SeedReport) -> str:
    return (
        f"seeded {db}: {report.clinics} clinics, {report.attachments} attachments"
        f" of {report.persons_read} persons, {report.insurance_periods} state-paid"
        f" insurance periods in {report.seconds:.1f} s"
    )


seed_command = runtime_cli.seed_with_population(seed_database, _summary)


def add_parser(subparsers: Any) -> None:
    """Register ``health`` under the ``zhol adapter`` command group."""
    commands = runtime_cli.add_agency_parser(
        subparsers, "health",
        help="clinics, attachment, insurance, disability (KZ/GOV/MOH/health)",
        description=(
            "The Ministry of Health system: e-Health clinic attachment, the Social Health"
            " Insurance Fund and the medical advisory commission."
        ),
    )
    runtime_cli.add_seed_parser(
        commands, seed_command,
        help="create a database with the clinic directory (and synthetic attachments)",
        description=(
            "Create a health database with the clinic directory. With --population-db,"
            " also seed synthetic attachments and state-paid insurance periods for that"
            " population: the file is opened read-only, once, to learn which living"
            " persons exist and their registered district (to pick a clinic there);"
            " only IINs and clinic ids are stored. This is synthetic seeding, not a copy"
            " of personal data: at run time health reads population over the bus."
        ),
        options=lambda seed: seed.add_argument(
            "--population-db", type=Path, help="a seeded population SQLite file"
        ),
    )
    runtime_cli.add_serve_parser(
        commands, "health", help="serve the health system over gRPC",
        gateway_help="HOST:PORT of our gateway's IS side (default: bus off)",
        load=load_health_settings, run=run,
    )
    add_ground_parser(commands)
