"""``zhol adapter pension claim-burial``: an operator of the pension centre records the
claim of the person who arranged a burial for the budget's burial payment.

    zhol adapter pension claim-burial --target HOST:PORT --claimant IIN --deceased IIN
        [--json]

The command calls the running pension system's own ``PensionClaims/ClaimBurialBenefit``
at ``--target`` (its ``--listen`` address, plain gRPC as the demo runs it), so every
check of the RPC applies (population read over the bus for the death and the living
claimant; once per death). Exit codes: 0 decided; 2 a bad argument (INVALID_ARGUMENT);
1 refused (FAILED_PRECONDITION, ALREADY_EXISTS, NOT_FOUND); 3 the system could not be
asked.
"""

from __future__ import annotations

import argparse
from typing import Any

import grpc
from google.protobuf import json_format

from zhol.adapters.runtime.cli import exit_of_refused_call
from zhol.core.exitcodes import EXIT_OK
from zhol.pension.v1 import claims_pb2 as cpb
from zhol.pension.v1 import claims_pb2_grpc as cpb_grpc

TIMEOUT_S = 30.0


def add_claim_parser(commands: Any) -> None:
    """Register ``claim-burial`` under ``zhol adapter pension``."""
    claim = commands.add_parser(
        "claim-burial",
        help="record the funeral arranger's claim for the budget's burial payment",
        description="Record the claim of the person who arranged a burial for the"
        " budget's burial payment (35 MCI of the death date's MCI, when the deceased"
        " received a pension or a state social benefit on the death date). Refused when"
        " population records no death, the claimant is not a living person it knows,"
        " nothing was due, or a burial payment was already decided for this death.",
    )
    claim.add_argument("--target", required=True, metavar="HOST:PORT",
                       help="the pension system's own listen address")
    claim.add_argument("--claimant", required=True, metavar="IIN",
                       help="the IIN of the person who arranged the burial")
    claim.add_argument("--deceased", required=True, metavar="IIN",
                       help="the IIN of the deceased")
    claim.add_argument("--json", action="store_true", help="print the decision as JSON")
    claim.set_defaults(func=claim_command)


def claim_command(args: argparse.Namespace) -> int:
    request = cpb.ClaimBurialBenefitRequest(claimant_iin=args.claimant,
                                            deceased_iin=args.deceased)
    try:
        with grpc.insecure_channel(args.target) as channel:
            benefit = cpb_grpc.PensionClaimsStub(channel).ClaimBurialBenefit(
                request, timeout=TIMEOUT_S)
    except grpc.RpcError as err:
        return exit_of_refused_call(err.code().name, err.details() or "")
    if args.json:
        print(json_format.MessageToJson(benefit, indent=None))
        return EXIT_OK
    print(f"{benefit.benefit_id} {benefit.kind}: {benefit.amount} KZT to {benefit.recipient_iin}"
          f" for the death of {benefit.subject_iin}")
    for payment in benefit.payments:
        print(f"  payable {payment.month.year:04d}-{payment.month.month:02d}:"
              f" {payment.amount} KZT")
    return EXIT_OK
