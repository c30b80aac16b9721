"""'Who used my data' on the command line (docs/operators.md).

``zhol gateway allow-usage|deny-usage|usage-rights``: the local right to call
zhol.bus.v1.Usage on this gateway. ``zhol log usage``: the same entries FindUsage
answers, read from a local message log (read-only, safe next to a live gateway).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict

from zhol.bus.v1 import usage_pb2
from zhol.core.clock import SystemClock
from zhol.core.errors import ZholError
from zhol.core.exitcodes import EXIT_OK, EXIT_USAGE, report
from zhol.core.ids import SubsystemId
from zhol.gateway.localconf import LocalConfStore
from zhol.gateway.messagelog import format_ms
from zhol.gateway.usage import MAX_LIMIT, find_usage, parse_query

# A local read has no message to fit into; pages are bounded by --limit alone.
_NO_SIZE_LIMIT = 1 << 40


def add_gateway_parsers(sub: Any) -> None:
    """``zhol gateway allow-usage``, ``deny-usage`` and ``usage-rights``."""
    for name, func, text in (
        ("allow-usage", _allow, "let a client ask this gateway who used a subject's data"),
        ("deny-usage", _deny, "withdraw that right"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--dir", type=Path, required=True, help="the gateway's data folder")
        p.add_argument(
            "--client", required=True, help="client subsystem, e.g. KZ/GOV/MDDIAI/portal"
        )
        p.set_defaults(func=func)
    rights = sub.add_parser("usage-rights", help="list the clients allowed to ask for usage")
    rights.add_argument("--dir", type=Path, required=True, help="the gateway's data folder")
    rights.add_argument("--json", action="store_true", help="one JSON string a line")
    rights.set_defaults(func=_rights)


def add_log_parser(log_sub: Any) -> None:
    """``zhol log usage``."""
    p = log_sub.add_parser(
        "usage",
        help="who used a data subject's data: this log's entries about IIN, newest first",
    )
    p.add_argument(
        "--gateway", type=Path, required=True, metavar="DIR", help="the gateway's data folder"
    )
    p.add_argument("--data-subject", required=True, metavar="IIN", help="the person's 12-digit IIN")
    p.add_argument("--limit", type=int, default=100, help=f"at most N entries (<= {MAX_LIMIT})")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=_log_usage)


def _store(args: argparse.Namespace) -> LocalConfStore:
    if not (args.dir / "gateway.toml").exists():
        raise ZholError("NotConfigured", f"no gateway in {args.dir}")
    return LocalConfStore(args.dir / "local.db")


def _allow(args: argparse.Namespace) -> int:
    try:
        client = SubsystemId.parse(args.client)
        store = _store(args)
        store.allow_usage(client, SystemClock().now_ms())
        store.close()
    except ZholError as err:
        return report(err)
    print(f"allowed: {client} -> usage")
    return EXIT_OK


def _deny(args: argparse.Namespace) -> int:
    try:
        client = SubsystemId.parse(args.client)
        store = _store(args)
        removed = store.deny_usage(client)
        store.close()
    except ZholError as err:
        return report(err)
    print(f"denied: removed {removed} grant(s)")
    return EXIT_OK


def _rights(args: argparse.Namespace) -> int:
    try:
        store = _store(args)
        clients = store.usage_rights()
        store.close()
    except ZholError as err:
        return report(err)
    for client in clients:
        print(json.dumps(str(client)) if args.json else f"{client} -> usage")
    return EXIT_OK


def _log_usage(args: argparse.Namespace) -> int:
    if not 0 < args.limit <= MAX_LIMIT:
        print(f"zhol log usage: --limit must be 1..{MAX_LIMIT}", file=sys.stderr)
        return EXIT_USAGE
    request = usage_pb2.FindUsageRequest(data_subject=args.data_subject, limit=args.limit)
    try:
        query = parse_query(request.SerializeToString())
        answer = find_usage(args.gateway / "messagelog.db", query, _NO_SIZE_LIMIT)
    except ZholError as err:
        return report(err)
    for e in answer.entries:
        if args.json:
            print(
                json.dumps(
                    MessageToDict(
                        e,
                        preserving_proto_field_name=True,
                        always_print_fields_with_no_presence=True,
                    )
                )
            )
        else:
            access = usage_pb2.UsageAccess.Name(e.access).removeprefix("USAGE_ACCESS_").lower()
            print(
                f"{format_ms(e.logged_at_unix_ms)}  {access:<6} {e.kind:<8} {e.direction:<3} "
                f"{e.client}  {e.user_id}  {e.service}  {e.purpose!r}  {e.message_id}"
            )
    return EXIT_OK
