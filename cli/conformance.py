"""`zhol conformance`: run the IS-facing conformance cases against a running gateway.

The cases ship with the package (zhol/cli/conformance_cases/, read by
zhol.cli.conformance_runner), so a pip-installed zhol runs them; the format is in
tests/conformance/README.md. Only the cases an IS can send run here: the peer
cases need a gateway's private keys and are reported as skipped, never as passed.
Exit codes (those of docs/operators.md): 0 every case run passed, 1 a case failed,
2 usage (bad arguments or a malformed case file), 3 the gateway could not be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc

from zhol.cli.conformance_runner import (
    CASES_DIR,
    PROFILE_CLIENT,
    Case,
    CaseFileError,
    Limits,
    call_is,
    find_known_iin,
    judge,
    load_cases,
)
from zhol.core.errors import ZholError
from zhol.core.exitcodes import EXIT_CANNOT_CHECK, EXIT_FAILED, EXIT_OK, EXIT_USAGE
from zhol.core.grpcerr import trailer_value
from zhol.core.metadata import ERROR_KEY

DEFAULT_CASES = CASES_DIR


@dataclass(frozen=True, slots=True)
class Verdict:
    id: str
    verdict: str  # PASS, FAIL or SKIP
    description: str
    why: tuple[str, ...] = ()


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "conformance",
        help="run the IS-facing conformance cases against a running gateway",
        description="Send every IS-facing conformance case to a gateway's IS port and "
        "check the answer against the contract (zhol-* metadata, zhol-error trailers). "
        "Exit 0 when every case run passed, 1 when one failed, 2 for a usage error "
        "(bad arguments or a malformed case file), 3 when the gateway cannot be reached.",
    )
    p.add_argument("--federation", default="demo-data/federation.json",
                   help="federation.json written by zhol demo (default %(default)s)")
    p.add_argument("--gateway", help="gateway id to test (default: the one serving "
                   "the profile client KZ/GOV/MLSPP/pension)")
    p.add_argument("--cases", type=Path, default=DEFAULT_CASES,
                   help="directory of *.toml case files (default: the cases shipped "
                   "with zhol, %(default)s)")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds per call and for connecting (default %(default)s)")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        fed = json.loads(Path(args.federation).read_text())
    except (OSError, ValueError) as exc:
        print(f"cannot read federation {args.federation}: {exc}", file=sys.stderr)
        return EXIT_CANNOT_CHECK
    try:
        cases = load_cases(args.cases)
    except CaseFileError as exc:
        print(f"malformed case file: {exc}", file=sys.stderr)
        return EXIT_USAGE
    gateway_id = args.gateway or _profile_gateway(fed, PROFILE_CLIENT)
    address = next(
        (g.get("is_address") for g in fed.get("gateways", ()) if g.get("id") == gateway_id), None
    )
    if not address:
        print(f"no gateway {gateway_id!r} in {args.federation}", file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(_run(fed, str(gateway_id), str(address), cases, args))


def _profile_gateway(fed: dict[str, Any], client: str) -> str | None:
    return next((s.get("gateway") for s in fed.get("subsystems", ()) if s.get("id") == client),
                None)


async def _limits(fed: dict[str, Any]) -> Limits | None:
    """The federation's tunables from the registry's configuration, verified against the
    anchor; None when the registry cannot be asked (cases needing them are skipped)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from zhol.registry.client import fetch_global_conf
    from zhol.security.globalconf import verify_global_conf
    from zhol.security.keystore import read_certificate

    try:
        anchor = read_certificate(Path(fed["anchor"])).public_bytes(Encoding.DER)
        signed = await fetch_global_conf(fed["registry"]["address"])
        tunables = verify_global_conf(signed, anchor).tunables
    except (KeyError, OSError, ValueError, TypeError, ZholError):
        return None
    return Limits(tunables.max_message_bytes, tunables.clock_skew_s)


async def _run(
    fed: dict[str, Any], gateway_id: str, address: str, cases: tuple[Case, ...],
    args: argparse.Namespace,
) -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            await asyncio.wait_for(channel.channel_ready(), args.timeout)
            variables = {"known_iin": await find_known_iin(channel, args.timeout)}
        except (TimeoutError, grpc.aio.AioRpcError, LookupError) as exc:
            print(f"cannot use gateway {gateway_id} at {address} as {PROFILE_CLIENT}: "
                  f"{_why(exc, args.timeout)}", file=sys.stderr)
            return EXIT_CANNOT_CHECK
        limits = await _limits(fed)
        verdicts = [await _one(channel, case, variables, limits, args.timeout)
                    for case in cases]
    counts = {
        word: sum(1 for v in verdicts if v.verdict == verdict)
        for word, verdict in (("passed", "PASS"), ("failed", "FAIL"), ("skipped", "SKIP"))
    }
    if args.json:
        print(json.dumps({"gateway": gateway_id, "is_address": address, **counts,
                          "cases": [asdict(v) for v in verdicts]}, indent=2))
    else:
        for v in verdicts:
            why = f" ({'; '.join(v.why)})" if v.why else ""
            print(f"{v.verdict} {v.id}{why}")
        print(f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped "
              f"against {gateway_id} at {address}")
    return EXIT_FAILED if counts["failed"] else EXIT_OK


def _why(exc: Exception, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no connection within {timeout:g} s"
    if isinstance(exc, grpc.aio.AioRpcError):
        error = trailer_value(exc.trailing_metadata(), ERROR_KEY)
        return f"{exc.code().name}" + (f" {error}" if error else "")
    return str(exc)


async def _one(
    channel: grpc.aio.Channel, case: Case, variables: dict[str, str],
    limits: Limits | None, timeout: float,
) -> Verdict:
    if case.is_peer:
        return Verdict(case.id, "SKIP", case.description, ("skipped: needs gateway keys",))
    try:
        got = await call_is(channel, case, variables, limits, timeout)
    except LookupError as exc:
        return Verdict(case.id, "SKIP", case.description, (f"skipped: {exc}",))
    problems = judge(case, got, variables)
    return Verdict(case.id, "FAIL" if problems else "PASS", case.description, problems)
