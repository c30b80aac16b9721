"""`zhol gateway ...`: provision, serve and administer a security-server gateway."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import uvloop

from core.clock import SystemClock
from core.errors import ZholError
from core.exitcodes import report
from core.ids import GatewayId, SubsystemId
from gateway.localconf import LocalConfStore
from gateway.settings import load_gateway_settings


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    gateway = subparsers.add_parser("gateway", help="run and administer a gateway")
    sub = gateway.add_subparsers(dest="gateway_command", required=True)

    init = sub.add_parser("init", help="create keys and register the gateway with the registry")
    init.add_argument("--dir", type=Path, required=True)
    init.add_argument("--id", required=True, help="gateway id, e.g. KZ/GOV/MJ/gw1")
    init.add_argument("--registry", required=True, help="registry address host:port")
    init.add_argument("--anchor", type=Path, required=True, help="the registry's anchor.pem")
    init.add_argument("--peer-address", required=True, help="host:port other gateways dial")
    init.add_argument("--is-listen", default="127.0.0.1:0")
    init.add_argument("--member-name", default="")
    init.set_defaults(func=_init)

    subsystem = sub.add_parser("add-subsystem", help="register a subsystem served here")
    subsystem.add_argument("--dir", type=Path, required=True)
    subsystem.add_argument("--subsystem", required=True, help="e.g. KZ/GOV/MJ/population")
    subsystem.add_argument(
        "--service",
        action="append",
        default=[],
        metavar="SERVICE=ADDRESS:METHOD,METHOD",
        help="pkg.Service=host:port:Method1,Method2 offered by the IS at host:port",
    )
    subsystem.set_defaults(func=_add_subsystem)

    serve = sub.add_parser("serve", help="run the gateway until interrupted")
    serve.add_argument("--dir", type=Path, required=True)
    serve.add_argument("--port-file", type=Path)
    serve.set_defaults(func=_serve)

    for name, func, text in (
        ("allow", _allow, "grant a client a service (or one method)"),
        ("deny", _deny, "withdraw a grant"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--dir", type=Path, required=True)
        p.add_argument(
            "--client", required=True, help="client subsystem, e.g. KZ/GOV/MLSPP/pension"
        )
        p.add_argument(
            "--service",
            required=True,
            help="KZ/GOV/MJ/population/zhol.population.v1.PopulationRegistry[/Method]",
        )
        p.set_defaults(func=func)

    rights = sub.add_parser("rights", help="list access rights")
    rights.add_argument("--dir", type=Path, required=True)
    rights.add_argument("--json", action="store_true")
    rights.set_defaults(func=_rights)


def _fail(err: ZholError) -> int:
    return report(err)


def _init(args: argparse.Namespace) -> int:
    from gateway.provision import init_gateway

    try:
        gateway_id = GatewayId.parse(args.id)
        asyncio.run(
            init_gateway(
                args.dir,
                gateway_id,
                args.registry,
                args.anchor,
                args.peer_address,
                member_name=args.member_name,
                is_listen=args.is_listen,
            )
        )
    except ZholError as err:
        return _fail(err)
    print(f"gateway {gateway_id} registered; certificates in {args.dir / 'keys'}")
    return 0


def parse_service_option(text: str) -> tuple[str, str, tuple[str, ...]]:
    """'pkg.Svc=127.0.0.1:5000:GetA,GetB' -> ('pkg.Svc', '127.0.0.1:5000', ('GetA', 'GetB'))."""
    name, sep, rest = text.partition("=")
    host, _, tail = rest.rpartition(":")
    address, _, port = host.rpartition(":")
    if not sep or not address or not port.isdigit() or not tail:
        raise ZholError("InvalidRequest", f"--service {text!r}: expected SERVICE=HOST:PORT:METHODS")
    return name, f"{address}:{port}", tuple(m for m in tail.split(",") if m)


def _add_subsystem(args: argparse.Namespace) -> int:
    from gateway.provision import ServiceOffer, register_subsystem

    try:
        settings = load_gateway_settings(args.dir)
        offers = []
        for text in args.service:
            name, address, methods = parse_service_option(text)
            offers.append(ServiceOffer(name, methods, address))
        asyncio.run(
            register_subsystem(
                args.dir,
                GatewayId.parse(settings.gateway_id),
                settings.registry_address,
                SubsystemId.parse(args.subsystem),
                offers,
            )
        )
    except ZholError as err:
        return _fail(err)
    print(f"subsystem {args.subsystem} registered")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from gateway.server import configure_logging, run_gateway

    configure_logging()
    overrides = {"port_file": args.port_file} if args.port_file else {}
    settings = load_gateway_settings(args.dir, **overrides)
    # uvloop cuts the event loop's share of each exchange by about a fifth (measured).
    runner = uvloop.run if settings.event_loop == "uvloop" else asyncio.run
    runner(run_gateway(settings))
    return 0


def _open_local(args: argparse.Namespace) -> LocalConfStore:
    if not (args.dir / "gateway.toml").exists():
        raise ZholError("NotConfigured", f"no gateway in {args.dir}")
    return LocalConfStore(args.dir / "local.db")


def _allow(args: argparse.Namespace) -> int:
    try:
        local = _open_local(args)
        right = local.allow(SubsystemId.parse(args.client), args.service, SystemClock().now_ms())
        local.close()
    except ZholError as err:
        return _fail(err)
    print(f"allowed: {right}")
    return 0


def _deny(args: argparse.Namespace) -> int:
    try:
        local = _open_local(args)
        removed = local.deny(SubsystemId.parse(args.client), args.service)
        local.close()
    except ZholError as err:
        return _fail(err)
    print(f"denied: removed {removed} grant(s)")
    return 0


def _rights(args: argparse.Namespace) -> int:
    try:
        local = _open_local(args)
        rights = local.rights()
        local.close()
    except ZholError as err:
        return _fail(err)
    for right in rights:
        if args.json:
            print(
                json.dumps(
                    {
                        "client": str(right.client),
                        "provider": str(right.provider),
                        "grpc_service": right.grpc_service,
                        "method": right.method or "*",
                    }
                )
            )
        else:
            print(right)
    return 0
