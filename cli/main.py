"""The one `zhol` entry point: subcommands from each package's own cli module."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
from collections.abc import Sequence

# What a shell reports for a process that SIGPIPE ended.
EXIT_READER_GONE = 141


def installed_version() -> str:
    """The installed distribution's version (the one in pyproject.toml)."""
    try:
        return importlib.metadata.version("zhol")
    except importlib.metadata.PackageNotFoundError:  # run from a tree that is not installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    from zhol.adapters.education import cli as education_cli
    from zhol.adapters.health import cli as health_cli
    from zhol.adapters.pension import cli as pension_cli
    from zhol.adapters.population import cli as population_cli
    from zhol.cli import audit as audit_cli
    from zhol.cli import (
        bench,
        catalogue,
        conformance,
        demo,
        faults,
        health,
        new_agency,
        scenario,
        tsa,
    )
    from zhol.cli import gateway as gateway_cli
    from zhol.cli import gateway_events as eventscli
    from zhol.cli import gateway_log as logcli
    from zhol.portal import cli as portal_cli
    from zhol.registry import cli as registry_cli

    parser = argparse.ArgumentParser(prog="zhol", description="Zhol data-exchange bus")
    parser.add_argument("--version", action="version", version=f"zhol {installed_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo.add_parser(sub)
    registry_cli.add_parser(sub)
    gateway_cli.add_parser(sub)
    logcli.add_parser(sub)
    eventscli.add_parser(sub)
    adapter = sub.add_parser("adapter", help="agency information systems")
    adapter_sub = adapter.add_subparsers(dest="adapter", required=True)
    population_cli.add_parser(adapter_sub)
    pension_cli.add_parser(adapter_sub)
    health_cli.add_parser(adapter_sub)
    education_cli.add_parser(adapter_sub)
    bench.add_parser(sub)
    faults.add_parser(sub)
    scenario.add_parser(sub)
    health.add_parser(sub)
    conformance.add_parser(sub)
    tsa.add_parser(sub)
    audit_cli.add_parser(sub)
    portal_cli.add_parser(sub)
    catalogue.add_parser(sub)
    new_agency.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # here, so a reader gone early is caught below
    except BrokenPipeError:
        # The reader went away (`zhol catalogue | head`): stop quietly, as a process
        # killed by SIGPIPE would (exit 128+13), without a traceback; stdout goes to
        # /dev/null so the interpreter's last flush does not complain again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_READER_GONE
    return code


if __name__ == "__main__":
    sys.exit(main())
