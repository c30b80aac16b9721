"""`zhol catalogue --dir G`: what ``zhol.bus.v1.Discovery/ListMembers`` answers at gateway G,
read from the global configuration G holds (verified against its anchor; no network)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding
from google.protobuf.json_format import MessageToDict

from zhol.bus.v1 import discovery_pb2
from zhol.core.clock import SystemClock
from zhol.core.errors import ZholError
from zhol.core.exitcodes import EXIT_OK, report
from zhol.core.ids import GatewayId
from zhol.gateway.discovery import list_members
from zhol.gateway.settings import SETTINGS_FILE, load_gateway_settings
from zhol.security.globalconf import verify_global_conf
from zhol.security.keystore import read_certificate


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "catalogue",
        help="the federation's members, subsystems, gateways, services and topics, as a "
        "gateway's global configuration lists them (what zhol.bus.v1.Discovery answers)",
    )
    p.add_argument(
        "--dir",
        type=Path,
        required=True,
        help="the gateway's data directory: its cached global configuration is read and "
        "verified against its anchor (nothing is sent anywhere)",
    )
    p.add_argument(
        "--json", action="store_true", help="one JSON document: ListMembersResponse's fields"
    )
    p.set_defaults(func=run)


def read_catalogue(data_dir: Path) -> discovery_pb2.ListMembersResponse:
    """The Discovery answer of the gateway in ``data_dir`` (NotConfigured, InvalidGlobalConf)."""
    if not (data_dir / SETTINGS_FILE).exists():
        raise ZholError("NotConfigured", f"no gateway in {data_dir}")
    settings = load_gateway_settings(data_dir)
    if not settings.conf_cache_path.exists():
        raise ZholError("NotConfigured", f"{data_dir} holds no global configuration yet")
    try:
        anchor = read_certificate(settings.anchor_path)
    except (OSError, ValueError) as exc:
        raise ZholError("NotConfigured", f"anchor {settings.anchor_path}: {exc}") from None
    conf = verify_global_conf(
        settings.conf_cache_path.read_bytes(), anchor.public_bytes(Encoding.DER)
    )
    return list_members(conf, GatewayId.parse(settings.gateway_id))


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")


def format_catalogue(answer: discovery_pb2.ListMembersResponse, now_ms: int) -> str:
    expired = (
        " (expired: the gateway refuses to work with it)"
        if now_ms >= answer.expires_at_unix_ms
        else ""
    )
    lines = [
        f"global configuration v{answer.configuration_version} of {answer.instance}, held by "
        f"{answer.gateway}: generated {_when(answer.generated_at_unix_ms)}, expires "
        f"{_when(answer.expires_at_unix_ms)}{expired}"
    ]
    for member in answer.members:
        lines.append(f"{member.id}  {member.name}".rstrip())
        for subsystem in member.subsystems:
            lines.append(f"  {subsystem.id}  gateways: {', '.join(subsystem.gateways) or '-'}")
            lines += [f"    {s.grpc_service}: {', '.join(s.methods)}" for s in subsystem.services]
            if subsystem.topics:
                lines.append(f"    topics: {', '.join(subsystem.topics)}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        answer = read_catalogue(args.dir)
    except ZholError as err:
        return report(err)
    if args.json:
        print(json.dumps(MessageToDict(answer, preserving_proto_field_name=True), indent=2))
    else:
        print(format_catalogue(answer, SystemClock().now_ms()))
    return EXIT_OK
