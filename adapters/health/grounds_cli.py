"""``zhol adapter health ground record|end|list``: an operator records state-insured grounds.

    zhol adapter health ground record --target HOST:PORT --iin IIN --category CATEGORY
        --from DATE [--to DATE] --basis TEXT [--cared-for IIN] [--json]
    zhol adapter health ground end --target HOST:PORT --iin IIN --category CATEGORY
        --from DATE --to DATE [--json]
    zhol adapter health ground list --target HOST:PORT --iin IIN [--json]

The facts (a carer of a person with a group-1 disability, kandas status, a house arrest,
a sentence or a detention: rules.RECORDED_GROUNDS) are held by agencies that are not on the bus; the
Social Health Insurance Fund's operator records them from their lists. The command
calls the running health system's own ``HealthRegistry`` at ``--target`` (its
``--listen`` address, plain gRPC as the demo runs it), so every check of the RPC
applies. Exit codes: 0 done; 2 a bad argument (locally or INVALID_ARGUMENT); 1
refused (FAILED_PRECONDITION, NOT_FOUND, ALREADY_EXISTS); 3 the system could not be
asked.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

import grpc
from google.protobuf import json_format

from zhol.adapters.health import rules
from zhol.adapters.runtime.cli import exit_of_refused_call
from zhol.core.exitcodes import EXIT_OK
from zhol.health.v1 import health_pb2 as pb
from zhol.health.v1 import health_pb2_grpc as pb_grpc

TIMEOUT_S = 30.0


def add_ground_parser(commands: Any) -> None:
    """Register ``ground record|end|list`` under ``zhol adapter health``."""
    ground = commands.add_parser(
        "ground",
        help="record state-insured grounds other agencies hold (carer, kandas, house"
        " arrest, prisoner, detainee)",
        description=(
            "Record, end and list the facts from other agencies' lists that make a person"
            " state-insured: " + ", ".join(sorted(rules.RECORDED_GROUNDS)) + ". The"
            " category is derived when the insurance status is asked (the carer and kandas"
            " only in months without contributions; the carer only while the person cared"
            " for has a group-1 conclusion in force and is alive)."
        ),
    )
    actions = ground.add_subparsers(dest="ground_command", required=True)
    record = actions.add_parser("record", help="record a fact (RecordStateInsuredGround)")
    _common(record)
    record.add_argument("--category", required=True, choices=sorted(rules.RECORDED_GROUNDS),
                        help="the state-paid social category the fact gives")
    record.add_argument("--from", dest="from_date", type=_date, required=True,
                        help="first day YYYY-MM-DD")
    record.add_argument("--to", dest="to_date", type=_date,
                        help="last day YYYY-MM-DD (default: until ended)")
    record.add_argument("--basis", required=True,
                        help="the list or document it rests on, e.g. 'MIA CEC list 2025-06'")
    record.add_argument("--cared-for", metavar="IIN",
                        help=f"the person cared for ({rules.CARER_OF_GROUP_1} only)")
    record.set_defaults(func=_record)
    end = actions.add_parser("end", help="set the last day of a recorded period")
    _common(end)
    end.add_argument("--category", required=True, choices=sorted(rules.RECORDED_GROUNDS),
                     help="the recorded period's category")
    end.add_argument("--from", dest="from_date", type=_date, required=True,
                     help="the recorded period's first day YYYY-MM-DD")
    end.add_argument("--to", dest="to_date", type=_date, required=True,
                     help="its last day YYYY-MM-DD (only shortens)")
    end.set_defaults(func=_end)
    listing = actions.add_parser("list", help="the person's recorded periods")
    _common(listing)
    listing.set_defaults(func=_list)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", required=True, metavar="HOST:PORT",
                        help="the health system's own listen address")
    parser.add_argument("--iin", required=True, help="the person's IIN")
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a date is YYYY-MM-DD") from None


def _pb_date(day: dt.date | None) -> pb.Date | None:
    return None if day is None else pb.Date(year=day.year, month=day.month, day=day.day)


def _record(args: argparse.Namespace) -> int:
    request = pb.RecordStateInsuredGroundRequest(
        iin=args.iin, social_category=args.category, from_date=_pb_date(args.from_date),
        to_date=_pb_date(args.to_date), basis=args.basis, cared_for_iin=args.cared_for or "",
    )
    return _call(args, lambda stub: stub.RecordStateInsuredGround(request, timeout=TIMEOUT_S))


def _end(args: argparse.Namespace) -> int:
    request = pb.EndStateInsuredGroundRequest(
        iin=args.iin, social_category=args.category, from_date=_pb_date(args.from_date),
        to_date=_pb_date(args.to_date),
    )
    return _call(args, lambda stub: stub.EndStateInsuredGround(request, timeout=TIMEOUT_S))


def _list(args: argparse.Namespace) -> int:
    request = pb.ListStateInsuredGroundsRequest(iin=args.iin)
    return _call(args, lambda stub: stub.ListStateInsuredGrounds(request, timeout=TIMEOUT_S))


def _call(args: argparse.Namespace, call: Any) -> int:
    try:
        with grpc.insecure_channel(args.target) as channel:
            answer = call(pb_grpc.HealthRegistryStub(channel))
    except grpc.RpcError as err:
        return exit_of_refused_call(err.code().name, err.details() or "")
    if args.json:
        print(json_format.MessageToJson(answer, indent=None))
        return EXIT_OK
    grounds = answer.grounds if isinstance(answer, pb.ListStateInsuredGroundsResponse) else [
        answer
    ]
    for ground in grounds:
        print(_line(ground))
    return EXIT_OK


def _line(ground: pb.StateInsuredGround) -> str:
    def day(d: pb.Date) -> str:
        return "open" if d.year == 0 else f"{d.year:04d}-{d.month:02d}-{d.day:02d}"

    cared = f", caring for {ground.cared_for_iin}" if ground.cared_for_iin else ""
    return (f"{ground.iin} {ground.social_category} {day(ground.from_date)} to"
            f" {day(ground.to_date)}{cared}: {ground.basis}"
            f" (recorded {day(ground.recorded_on)})")
