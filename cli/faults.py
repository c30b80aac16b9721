"""`zhol faults`: inject one fault per scenario into a federation of real processes
under load, and print the figures a reviewer needs (docs/faults.md).

One four-agency federation (the demo's) runs in a temporary directory for the whole
run, with a short global-configuration expiry so an outage can pass it in seconds, and
the consumer's and the provider's gateway directories (message logs included) on small
tmpfs mounts where this machine allows mounting. During each scenario the load
generator calls GetPerson through the consumer gateway (pension's, to population's)
and births are registered at population, whose decisions three agencies make on the
BirthRegistered event; the scenario's fault is injected and lifted, then the calls are
compared with both gateways' message logs and each birth's decisions are counted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import grpc

from zhol.cli import bench_births
from zhol.cli.faults_figures import ScenarioFigures, verdict
from zhol.cli.faults_run import (
    FULL_PACE,
    QUICK_PACE,
    SCENARIOS,
    Federation,
    run_scenarios,
)

QUICK_SCENARIOS = ("kill-provider-gateway", "full-disk-consumer")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    faults = subparsers.add_parser(
        "faults", help="inject faults into a local federation under load and print the figures"
    )
    faults.add_argument("--json", action="store_true", help="print one JSON object")
    faults.add_argument(
        "--scenario", action="append", choices=SCENARIOS, metavar="NAME",
        help=f"run this scenario (repeatable; default all): {', '.join(SCENARIOS)}",
    )  # fmt: skip
    faults.add_argument(
        "--quick", action="store_true",
        help=f"shorter phases; without --scenario only {' and '.join(QUICK_SCENARIOS)}",
    )  # fmt: skip
    faults.add_argument("--data-dir", type=Path, help="default: a temporary directory")
    faults.set_defaults(func=run_faults)


def run_faults(args: argparse.Namespace) -> int:
    names = tuple(args.scenario or (QUICK_SCENARIOS if args.quick else SCENARIOS))
    pace = QUICK_PACE if args.quick else FULL_PACE
    started = time.monotonic()
    try:
        with (
            _data_dir(args.data_dir) as root,
            Federation.start(root, bench_births.PERSONS) as federation,
        ):
            figures = asyncio.run(run_scenarios(federation, names, pace, uuid.uuid4().hex[:8]))
    except (RuntimeError, TimeoutError, OSError, ValueError, grpc.RpcError) as exc:
        print(f"zhol faults failed: {exc}", file=sys.stderr)
        return 1
    violations = verdict(figures)
    if args.json:
        print(json.dumps(report(figures, violations, time.monotonic() - started)))
    else:
        print(table(figures))
        for line in violations:
            print(f"VIOLATION {line}")
        print(f"{'FAIL' if violations else 'OK'} in {time.monotonic() - started:.0f} s")
    return 1 if violations else 0


def report(
    figures: Sequence[ScenarioFigures], violations: Sequence[str], seconds: float
) -> dict[str, object]:
    from zhol.cli.bench import _machine

    return {
        "scenarios": [f.as_json() for f in figures],
        "violations": list(violations),
        "ok": not violations,
        "seconds": round(seconds, 1),
        "machine": _machine(),
    }


def table(figures: Sequence[ScenarioFigures]) -> str:
    """The figures as a plain table, then each scenario's failure codes and notes."""
    head = (
        f"{'scenario':<22} {'sent':>5} {'ok':>5} {'failed':>6} {'ok-unlogged c/p':>15} "
        f"{'one-side c/p':>12} {'births':>6} {'twice':>5} {'missing':>7} {'serving s':>9}"
    )
    lines = [head, "-" * len(head)]
    details = []
    for f in figures:
        if f.not_run:
            lines.append(f"{f.scenario:<22} not run: {f.not_run}")
            continue
        serving = "-" if f.serving_again_s is None else f"{f.serving_again_s:.1f}"
        lines.append(
            f"{f.scenario:<22} {f.calls_sent:>5} {f.answered_ok:>5} "
            f"{sum(f.failed_by_code.values()):>6} "
            f"{f'{f.ok_not_logged_consumer}/{f.ok_not_logged_provider}':>15} "
            f"{f'{f.logged_consumer_only}/{f.logged_provider_only}':>12} "
            f"{f.births:>6} {f.decisions_twice:>5} {f.decisions_missing:>7} {serving:>9}"
        )
        codes = ", ".join(f"{code} {n}" for code, n in sorted(f.failed_by_code.items()))
        first_ok = "-" if f.first_ok_after_s is None else f"{f.first_ok_after_s:.1f} s"
        details.append(f"{f.scenario}: failed {codes or '-'}")
        details.append(
            f"  failed but answer logged c/p {f.failed_answer_logged_consumer}/"
            f"{f.failed_answer_logged_provider}, failed after deadline "
            f"{f.failed_after_deadline}, first OK after the fault {first_ok}"
        )
        details += [f"  {note}" for note in f.notes]
    return "\n".join(lines + [""] + details)


@contextlib.contextmanager
def _data_dir(given: Path | None) -> Iterator[Path]:
    if given is not None:
        # A federation left by an earlier run would be provisioned over (and its gateway
        # directories hidden under new mounts): always a fresh one.
        if given.exists() and any(given.iterdir()):
            raise ValueError(f"--data-dir {given} is not empty")
        given.mkdir(parents=True, exist_ok=True)
        yield given.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="zhol-faults-") as tmp:
        yield Path(tmp).resolve()
