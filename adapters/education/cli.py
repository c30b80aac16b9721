"""``zhol adapter education seed|serve|...``: the education system's command line.

Here: its seed option (``--population-db``, optional) and report line; the operator's
commands for colleges, universities and studies are in ``studies_cli``. The
arguments, checks and exit codes every adapter shares are in adapters.runtime.cli.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zhol.adapters.education import studies_cli
from zhol.adapters.education.seed import SeedReport, seed_database
from zhol.adapters.education.server import load_education_settings, run
from zhol.adapters.runtime import cli as runtime_cli


def _summary(db: Path, report: SeedReport) -> str:
    return (
        f"seeded {db}: {report.districts} districts, {report.kindergartens} kindergartens,"
        f" {report.schools} schools, {report.queue_entries} queue entries"
        f" ({report.placed} placed), {report.enrolments} enrolments,"
        f" {report.institutions} colleges and universities, {report.studies} studies"
        f" in {report.seconds:.1f} s"
    )


seed_command = runtime_cli.seed_with_population(seed_database, _summary)


def add_parser(subparsers: Any) -> None:
    """Register ``education`` under the ``zhol adapter`` command group."""
    commands = runtime_cli.add_agency_parser(
        subparsers, "education",
        help="kindergarten queue and schools database (KZ/GOV/MES/education)",
        description="The Ministry of Education's kindergarten queue and schools adapter.",
    )
    runtime_cli.add_seed_parser(
        commands, seed_command,
        help="create a database of kindergartens, schools, queue and enrolments",
        options=lambda seed: seed.add_argument(
            "--population-db", type=Path,
            help="a seeded population database, read-only, to queue and enrol its children",
        ),
    )
    runtime_cli.add_serve_parser(
        commands, "education", help="serve the education system over gRPC",
        gateway_help="our gateway's IS side (default: bus off)",
        load=load_education_settings, run=run,
    )
    studies_cli.add_parsers(commands)
