"""``zhol adapter pension seed|serve|recalculate``: the pension system's command line.

    zhol adapter pension seed --db pension.db --population-db population.db [--as-of DATE]
    zhol adapter pension serve --db pension.db [--listen HOST:PORT] [--gateway HOST:PORT]
    zhol adapter pension recalculate --db pension.db [--as-of DATE] [--dry-run] [--json]

The seed reads the population file read-only, once, to give its citizens synthetic
careers (seeding only; at run time population is read through the bus).

The arguments, checks and exit codes every adapter shares are adapters.runtime.cli.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from zhol.adapters.pension import recalculating
from zhol.adapters.pension.claims_cli import add_claim_parser
from zhol.adapters.pension.model import InvalidInput
from zhol.adapters.pension.seed import SeedReport, seed_database
from zhol.adapters.pension.server import load_pension_settings, run
from zhol.adapters.pension.store import PensionStore
from zhol.adapters.runtime import cli as runtime_cli
from zhol.adapters.runtime.store import today_in_kz
from zhol.core.clock import SystemClock
from zhol.pension.v1 import recalculation_pb2 as rpb


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
    add_recalculate_parser(commands)
    add_claim_parser(commands)


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


# -- recalculate -------------------------------------------------------------------------


def add_recalculate_parser(commands: Any) -> None:
    recalc = commands.add_parser(
        "recalculate",
        help="recalculate active benefits, survivor and age pensions with the rules in force",
        description="Recompute every active child-care allowance, disability benefit, "
        "carer's benefit, survivor and age pension with the rules in force; each whose payments "
        "change gets a recalculation decision (old and new amount, the rules that changed "
        "and their sources, arrears for months paid too little, paid once in the run's "
        "month), its unpaid schedule "
        "replaced, and a BenefitRecalculated event in the outbox (published by the running "
        "adapter). A burial decided under the earlier rule gets the payment from the "
        "deceased's savings it lacks (BenefitAssigned). A second run changes nothing.",
    )
    recalc.add_argument("--db", type=Path, required=True, help="the pension SQLite file")
    recalc.add_argument("--as-of", type=_date,
                        help="YYYY-MM-DD, not after today (default today): months before "
                        "its month are taken as paid")
    recalc.add_argument("--dry-run", action="store_true",
                        help="show what would be recalculated; write and publish nothing")
    recalc.add_argument("--json", action="store_true", help="print the answer as JSON")
    recalc.set_defaults(func=recalculate_command)


def recalculate_command(args: argparse.Namespace) -> int:
    """Exit 0 when the run finished (whatever it recalculated), 2 on a bad argument or
    a missing database (nothing changed)."""
    clock = SystemClock()
    db: Path = args.db
    if not db.is_file():
        print(f"error: no pension database at {db}", file=sys.stderr)
        return 2
    pension = PensionStore.open(db, clock)
    try:
        as_of: dt.date = args.as_of or pension.today()
        try:
            report = recalculating.run(pension, as_of, dry_run=args.dry_run,
                                       now_ms=clock.now_ms)
        except InvalidInput as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        answer = recalculating.report_pb(report, pension.today())
    finally:
        pension.close()
    if args.json:
        print(json_format.MessageToJson(answer, indent=None,
                                        always_print_fields_with_no_presence=True))
        return 0
    what = "would recalculate" if report.dry_run else "recalculated"
    print(f"as of {as_of}: examined {report.examined}, {what} {len(report.recalculated)},"
          f" unchanged {report.unchanged}, skipped {len(report.skipped)}")
    if answer.arrears_scheduled:
        print(f"  arrears recorded earlier, now scheduled: {answer.arrears_scheduled}")
    for r in answer.recalculated:
        # A burial's is a one-off payment from the savings, not a monthly amount.
        per = "" if r.kind == recalculating.BURIAL else " a month"
        print(f"  {r.decision_id} {r.kind}: {r.old_amount} -> {r.new_amount} KZT{per}"
              f" from {r.change_from.year:04d}-{r.change_from.month:02d},"
              f" arrears {r.arrears_total}{_paid_in(r)}; {r.reason}")
        for rule in r.rules:
            print(f"    rule {rule.table}: {rule.source}")
    for s in answer.skipped:
        print(f"  skipped {s.decision_id} {s.kind}: {s.reason}")
    return 0


def _paid_in(r: rpb.Recalculation) -> str:
    month = r.arrears_paid_in
    return f" paid in {month.year:04d}-{month.month:02d}" if r.arrears_total else ""
