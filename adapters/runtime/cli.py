"""``zhol adapter AGENCY seed|serve``: the arguments and handlers every adapter shares.

An adapter's cli.py registers its group with ``add_agency_parser``, its ``seed``
command with ``add_seed_parser`` (``--db``, then its own options, then ``--seed``,
``--replace``, ``--json``) and ``seed_command`` (the checks before seeding, the report
as JSON or one line), and its ``serve`` command with ``add_serve_parser`` (``--db``,
``--listen``, ``--port-file``, ``--gateway``, ``--config``, ``--tls-cert``, ``--tls-key``,
``--tls-client-ca``, handled by
``serve_command``).

Exit codes (core/exitcodes.py): 0 ok, 1 failed, 2 usage or configuration (no such
database, database already exists, bad settings).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from zhol.adapters.runtime.server import AdapterSettings, SettingsLoader
from zhol.core.exitcodes import EXIT_CANNOT_CHECK, EXIT_FAILED, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from _typeshed import DataclassInstance  # typing only: no such module at run time

Progress = Callable[[str], None]
S = TypeVar("S", bound=AdapterSettings)
R = TypeVar("R", bound="DataclassInstance")  # a report: printed through dataclasses.asdict


def add_agency_parser(subparsers: Any, agency: str, *, help: str, description: str) -> Any:
    """``zhol adapter AGENCY``; returns its COMMAND subparsers (one is required)."""
    parser = subparsers.add_parser(agency, help=help, description=description)
    commands = parser.add_subparsers(dest=f"{agency}_command", metavar="COMMAND")
    commands.required = True
    return commands


def add_seed_parser(
    commands: Any,
    func: Callable[[argparse.Namespace], int],
    *,
    help: str,
    description: str | None = None,
    options: Callable[[argparse.ArgumentParser], object] = lambda _parser: None,
) -> argparse.ArgumentParser:
    """``seed --db PATH [the agency's options] [--seed N] [--replace] [--json]``."""
    seed = commands.add_parser("seed", help=help, description=description)
    seed.add_argument("--db", type=Path, required=True, help="SQLite file to create")
    options(seed)
    seed.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    seed.add_argument("--replace", action="store_true", help="delete an existing file first")
    seed.add_argument("--json", action="store_true", help="print the report as JSON")
    seed.set_defaults(func=func)
    return seed


def seed_command(
    args: argparse.Namespace,
    *,
    seed: Callable[[Progress | None], R],
    summary: Callable[[Path, R], str],
    population: Path | None = None,
    json_extra: Mapping[str, object] | None = None,
) -> int:
    """Refuse a directory, a missing ``population`` file or an existing ``args.db``
    (unless ``--replace``), then ``seed(progress)`` and print its report: as JSON
    (``db``, ``json_extra``, the report's fields) with ``--json``, else
    ``summary(db, report)``."""
    db: Path = args.db
    if db.is_dir():
        return _usage(f"{db} is a directory")
    if population is not None and not population.is_file():
        return _usage(f"no population database at {population}")
    if db.exists():
        if not args.replace:
            return _usage(f"{db} already exists (use --replace)")
        remove_database(db)
    # Progress lines only for a person watching, never into a script's JSON.
    progress = _stderr if sys.stderr.isatty() and not args.json else None
    report = seed(progress)
    if args.json:
        print(json.dumps({"db": str(db), **(json_extra or {}), **dataclasses.asdict(report)}))
    else:
        print(summary(db, report))
    return EXIT_OK


def seed_with_population(
    seed_database: Callable[..., R], summary: Callable[[Path, R], str]
) -> Callable[[argparse.Namespace], int]:
    """The seed command of an agency seeded from an optional ``--population-db``:
    ``seed_database(db, population_db, seed, progress=...)``."""

    def command(args: argparse.Namespace) -> int:
        return seed_command(
            args, population=args.population_db,
            seed=lambda progress: seed_database(
                args.db, args.population_db, args.seed, progress=progress
            ),
            summary=summary,
        )

    return command


def add_serve_parser(
    commands: Any,
    agency: str,
    *,
    help: str,
    gateway_help: str,
    load: SettingsLoader[S],
    run: Callable[[S], int],
    seed_usage: str = "--db PATH",
) -> argparse.ArgumentParser:
    """``serve [--db] [--listen] [--port-file] [--gateway] [--config] [--tls-*]``, handled by
    ``serve_command`` with the agency's settings loader and ``run``."""
    serve = commands.add_parser("serve", help=help)
    serve.add_argument("--db", type=Path, help="the seeded SQLite file")
    serve.add_argument("--listen", help="HOST:PORT (default 127.0.0.1:0, an ephemeral port)")
    serve.add_argument("--port-file", type=Path, help="write the bound port to this file")
    serve.add_argument("--gateway", metavar="HOST:PORT", help=gateway_help)
    serve.add_argument(
        "--config", type=Path, help=f"TOML settings (ZHOL_{agency.upper()}_* override)"
    )
    serve.add_argument("--tls-cert", type=Path, metavar="PEM",
                       help="serve TLS with this certificate (with --tls-key)")
    serve.add_argument("--tls-key", type=Path, metavar="PEM", help="the certificate's key")
    serve.add_argument("--tls-client-ca", type=Path, metavar="PEM",
                       help="mutual TLS: admit only clients whose certificate chains to this "
                       "(e.g. the gateway's is-server.pem)")
    serve.set_defaults(func=functools.partial(
        serve_command, agency=agency, load=load, run=run, seed_usage=seed_usage,
    ))
    return serve


def serve_command(
    args: argparse.Namespace,
    *,
    agency: str,
    load: SettingsLoader[S],
    run: Callable[[S], int],
    seed_usage: str = "--db PATH",
) -> int:
    """Settings from ``--config``, the environment and the flags; then ``run`` them."""
    overrides = {"db_path": args.db, "listen": args.listen, "port_file": args.port_file,
                 "gateway_address": args.gateway, "tls_cert": args.tls_cert,
                 "tls_key": args.tls_key, "tls_client_ca": args.tls_client_ca}
    if args.config is not None and not args.config.is_file():
        return _usage(f"no settings file {args.config}")
    try:
        settings = load(args.config, overrides=overrides)
    except (TypeError, ValueError) as err:
        return _usage(f"bad {agency} settings: {err}")
    if not settings.db_path.is_file():
        return _usage(f"no database at {settings.db_path}"
                      f" (create it with: zhol adapter {agency} seed {seed_usage})")
    try:
        return run(settings)
    except (OSError, RuntimeError) as err:  # grpc reports a failed bind as RuntimeError
        print(f"error: cannot serve: {err}", file=sys.stderr)
        return EXIT_FAILED


def remove_database(db: Path) -> None:
    """The SQLite file and its WAL companions."""
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        path.unlink(missing_ok=True)


def _usage(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# A call to an adapter's own port that could not be made at all (as opposed to refused).
_CANNOT_ASK = ("UNAVAILABLE", "DEADLINE_EXCEEDED")


def exit_of_refused_call(code_name: str, details: str) -> int:
    """The exit code of an operator command whose call to an adapter's own port failed
    with gRPC status ``code_name``, the reason printed on stderr: 2 a bad argument
    (INVALID_ARGUMENT), 3 the adapter could not be asked, 1 refused (anything else)."""
    print(f"error: {code_name}: {details}", file=sys.stderr)
    if code_name == "INVALID_ARGUMENT":
        return EXIT_USAGE
    return EXIT_CANNOT_CHECK if code_name in _CANNOT_ASK else EXIT_FAILED
