"""`zhol catalogue --dir G`: what ``zhol.bus.v1.Discovery/ListMembers`` answers at gateway G,
read from the global configuration G holds (verified against its anchor; no network).
``--methods P``: what ``ListMethods`` answers about provider P, from the same file.
``--allowed P --client C``: ``AllowedMethods``, asked of P's gateway through G while G
runs (an exchange, logged at both gateways; G's IS port must be plaintext)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding
from google.protobuf.json_format import MessageToDict

from zhol.bus.v1 import discovery_pb2
from zhol.core.busclient import BusCallError, BusClient, BusIdentity
from zhol.core.clock import SystemClock
from zhol.core.errors import ZholError, parse_full_code
from zhol.core.exitcodes import EXIT_OK, report
from zhol.core.ids import GatewayId, SubsystemId
from zhol.gateway.discovery import ALLOWED_METHODS_PATH, list_members, list_methods
from zhol.gateway.settings import SETTINGS_FILE, load_gateway_settings
from zhol.security.globalconf import GlobalConf, verify_global_conf
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
        "--json",
        action="store_true",
        help="one JSON document: the answer's fields (ListMembersResponse, or "
        "ListMethodsResponse / AllowedMethodsResponse with --methods / --allowed)",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--methods",
        metavar="PROVIDER",
        help="the methods the provider subsystem (KZ/GOV/MJ/population) offers, with their "
        "request and response types (what Discovery/ListMethods answers; no network)",
    )
    which.add_argument(
        "--allowed",
        metavar="PROVIDER",
        help="the methods --client may call at the provider subsystem: asked of the "
        "provider's gateway through the running gateway of --dir (Discovery/"
        "AllowedMethods, an exchange logged at both gateways)",
    )
    p.add_argument(
        "--service",
        default="",
        help="with --methods: only this gRPC service (zhol.population.v1.PopulationRegistry)",
    )
    p.add_argument(
        "--client",
        help="with --allowed: the asking subsystem, one the gateway of --dir serves",
    )
    p.add_argument(
        "--gateway-address",
        help="with --allowed: the gateway's IS address (default: is_listen in gateway.toml)",
    )
    p.add_argument(
        "--user-id", default="operator", help="with --allowed: zhol-user-id (default operator)"
    )
    p.add_argument(
        "--purpose",
        default="service discovery",
        help="with --allowed: zhol-purpose (default 'service discovery')",
    )
    p.set_defaults(func=run)


def read_conf(data_dir: Path) -> tuple[GlobalConf, GatewayId]:
    """The verified configuration the gateway in ``data_dir`` holds, and its id."""
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
    return conf, GatewayId.parse(settings.gateway_id)


def read_catalogue(data_dir: Path) -> discovery_pb2.ListMembersResponse:
    """The Discovery answer of the gateway in ``data_dir`` (NotConfigured, InvalidGlobalConf)."""
    return list_members(*read_conf(data_dir))


async def ask_allowed(
    address: str, client: str, provider: str, user_id: str, purpose: str
) -> discovery_pb2.AllowedMethodsResponse:
    """AllowedMethods through the gateway at ``address`` (raises BusCallError)."""
    bus = BusClient(BusIdentity(address, client, user_id))
    try:
        return await bus.call(
            ALLOWED_METHODS_PATH,
            discovery_pb2.AllowedMethodsRequest(),
            discovery_pb2.AllowedMethodsResponse,
            purpose=purpose,
            provider=provider,
            timeout=15.0,
        )
    finally:
        await bus.close()


def _allowed(args: argparse.Namespace) -> discovery_pb2.AllowedMethodsResponse:
    if not args.client:
        raise ZholError("InvalidRequest", "--allowed needs --client")
    SubsystemId.parse(args.client)
    SubsystemId.parse(args.allowed)
    if not (args.dir / SETTINGS_FILE).exists():
        raise ZholError("NotConfigured", f"no gateway in {args.dir}")
    settings = load_gateway_settings(args.dir)
    address = args.gateway_address or settings.is_listen
    if not args.gateway_address and settings.is_tls != "plaintext":
        raise ZholError(
            "NotConfigured",
            f"the IS port is {settings.is_tls}: call Discovery/AllowedMethods from an IS "
            "with its credentials (docs/protocol.md)",
        )
    if address.endswith(":0"):
        raise ZholError("NotConfigured", "is_listen has no fixed port: pass --gateway-address")
    try:
        return asyncio.run(
            ask_allowed(address, args.client, args.allowed, args.user_id, args.purpose)
        )
    except BusCallError as err:
        try:
            hop, code = parse_full_code(err.zhol_error or "")
        except (KeyError, ValueError):  # no bus error: the gateway was not reached
            raise ZholError("NetworkError", f"{address}: {err.details}") from None
        raise ZholError(code.name, err.details.partition(": ")[2], hop=hop) from None


def format_methods(answer: discovery_pb2.ListMethodsResponse) -> str:
    lines = [f"{answer.provider}, as configuration v{answer.configuration_version} lists it"]
    for service in answer.services:
        described = "" if service.descriptor_set else " (registered without descriptors)"
        lines.append(f"  {service.grpc_service}{described}")
        for m in service.methods:
            types = f"({m.request_type}) returns ({m.response_type})" if m.request_type else ""
            lines.append(f"    {m.name}{types}")
    return "\n".join(lines)


def format_allowed(answer: discovery_pb2.AllowedMethodsResponse) -> str:
    lines = [f"{answer.client} may call at {answer.provider} (answered by {answer.gateway}):"]
    lines += [f"  {s.grpc_service}: {', '.join(s.methods)}" for s in answer.services]
    if not answer.services:
        lines.append("  nothing")
    return "\n".join(lines)


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
    answer: discovery_pb2.ListMembersResponse | discovery_pb2.ListMethodsResponse
    answer_allowed: discovery_pb2.AllowedMethodsResponse | None = None
    try:
        if args.allowed:
            answer_allowed = _allowed(args)
        elif args.methods:
            conf, gateway = read_conf(args.dir)
            answer = list_methods(conf, gateway, SubsystemId.parse(args.methods), args.service)
        else:
            answer = read_catalogue(args.dir)
    except ZholError as err:
        return report(err)
    if answer_allowed is not None:
        text = format_allowed(answer_allowed)
        document = MessageToDict(answer_allowed, preserving_proto_field_name=True)
    elif isinstance(answer, discovery_pb2.ListMethodsResponse):
        text = format_methods(answer)
        document = MessageToDict(answer, preserving_proto_field_name=True)
    else:
        text = format_catalogue(answer, SystemClock().now_ms())
        document = MessageToDict(answer, preserving_proto_field_name=True)
    print(json.dumps(document, indent=2) if args.json else text)
    return EXIT_OK
