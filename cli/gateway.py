"""`zhol gateway ...`: provision, serve and administer a security-server gateway."""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import uvloop

from zhol.core.clock import SystemClock
from zhol.core.cpupolicy import check_cpu_policy
from zhol.core.errors import ZholError
from zhol.core.exitcodes import report
from zhol.core.grpcruntime import ensure_grpc_experiments
from zhol.core.ids import GatewayId, SubsystemId
from zhol.gateway.ispins import IS_TLS_MODES, is_client_identity_files, pem_sha256_hexes
from zhol.gateway.localconf import IsEndpoint, LocalConfStore, check_is_tls, parse_service_target
from zhol.gateway.settings import GatewaySettings, load_gateway_settings

if TYPE_CHECKING:
    from zhol.gateway.provision import ServiceOffer


DIR_HELP = "the gateway's data folder (the one `zhol gateway init --dir` made)"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    gateway = subparsers.add_parser("gateway", help="run and administer a gateway")
    sub = gateway.add_subparsers(dest="gateway_command", required=True)

    init = sub.add_parser(
        "init",
        help="create keys and register the gateway with the registry",
        description="Create the gateway's data folder (gateway.toml, anchor.pem, private "
        "keys in keys/) and send a signed registration request to the registry.",
        epilog="While the request awaits approval, init prints its request id and waits "
        "(--timeout) for the registry's decision; the registry's operator approves it with "
        "`zhol registry approve --dir REGISTRY_DIR REQUEST_ID` (or the registry approves "
        "automatically). The request id is kept in DIR/registrations.json, so running the "
        "same command again after a timeout waits on the same request instead of sending a "
        "new one. Once approved, init stores the certificates in DIR/keys; a rejection "
        "ends with the operator's reason, and the next run sends a new request. Nothing is "
        "served until `zhol gateway serve --dir DIR`.",
    )
    init.add_argument(
        "--dir",
        type=Path,
        required=True,
        help="the gateway's data folder to create (or to resume a pending registration in)",
    )
    init.add_argument("--id", required=True, help="gateway id, e.g. KZ/GOV/MJ/gw1")
    init.add_argument("--registry", required=True, help="registry address host:port")
    init.add_argument("--anchor", type=Path, required=True, help="the registry's anchor.pem")
    init.add_argument("--peer-address", required=True, help="host:port other gateways dial")
    init.add_argument(
        "--is-listen",
        default="127.0.0.1:0",
        metavar="HOST:PORT",
        help="where the gateway listens for its own information systems (ISs); port 0: "
        "any free port, written to --port-file by serve (default %(default)s)",
    )
    init.add_argument(
        "--member-name",
        default="",
        metavar="TEXT",
        help="the member's display name in the catalogue, e.g. 'State Revenue Committee' "
        "(default: the member code)",
    )
    init.add_argument(
        "--passphrase-env",
        default="",
        metavar="NAME",
        help="encrypt the private keys with the passphrase in environment variable NAME "
        "(the gateway reads NAME again when it starts)",
    )
    add_wait_option(init)
    init.set_defaults(func=_init)

    renew = sub.add_parser(
        "renew",
        help="new keys and certificates from the registry (auth, sign, or both by default; "
        "every renewal also replaces the log key); the gateway uses them after a restart",
    )
    renew.add_argument("--dir", type=Path, required=True, help=DIR_HELP)
    renew.add_argument("--auth", action="store_true", help="renew the TLS authentication cert")
    renew.add_argument("--sign", action="store_true", help="renew the member signing cert")
    renew.add_argument(
        "--log-key",
        action="store_true",
        help="a new log key (signs checkpoints); alone: the log key only, no certificate "
        "changes; with --auth/--sign: the same as without it",
    )
    add_wait_option(renew)
    renew.add_argument("--json", action="store_true", help="one JSON object")
    renew.set_defaults(func=_renew)

    subsystem = sub.add_parser(
        "add-subsystem",
        help="register a subsystem served here, with its services' contracts",
        description="Register a subsystem served by this gateway. A service's contract "
        "(--proto or --descriptor-set) is sent in the signed registration; the registry "
        "checks the methods against it and publishes it in the global configuration.",
    )
    subsystem.add_argument("--dir", type=Path, required=True, help="the gateway's data folder")
    subsystem.add_argument(
        "--subsystem", required=True, help="the subsystem, e.g. KZ/GOV/MJ/population"
    )
    subsystem.add_argument(
        "--service",
        action="append",
        default=[],
        metavar="SERVICE=HOST:PORT[:METHODS]",
        help="pkg.Service=host:port:Method1,Method2 offered by the IS at host:port; with a "
        "contract (--proto or --descriptor-set) the methods may be left out: all the "
        "contract declares; repeatable",
    )
    contract = subsystem.add_mutually_exclusive_group()
    contract.add_argument(
        "--proto",
        type=Path,
        metavar="FILE",
        help="the .proto declaring the --service services, compiled with its imports "
        "into the contract the registry publishes (zhol/bus/v1/options.proto and "
        "google/protobuf/ resolve without --proto-path); gateways then bind each "
        "request's zhol-data-subject to its fields marked (zhol.bus.v1.data_subject)",
    )
    contract.add_argument(
        "--descriptor-set",
        type=Path,
        metavar="FILE",
        help="instead of --proto: a FileDescriptorSet declaring the --service services "
        "(protoc --include_imports --descriptor_set_out=FILE)",
    )
    subsystem.add_argument(
        "--proto-path",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="a folder --proto's imports are relative to (protoc -I); repeatable; "
        "default: the folder of --proto",
    )
    subsystem.add_argument(
        "--topic",
        action="append",
        default=[],
        metavar="NAME",
        help="an event topic the subsystem publishes (fully qualified event message name, "
        "e.g. zhol.population.v1.BirthRegistered); repeatable",
    )
    add_is_tls_options(subsystem)  # applies to every --service; default plaintext
    add_wait_option(subsystem)
    subsystem.set_defaults(func=_add_subsystem)

    serve = sub.add_parser("serve", help="run the gateway until interrupted")
    serve.add_argument("--dir", type=Path, required=True, help=DIR_HELP)
    serve.add_argument(
        "--port-file",
        type=Path,
        metavar="FILE",
        help="write the IS port bound here (useful with --is-listen port 0; default: none)",
    )
    serve.set_defaults(func=_serve)

    for name, func, text in (
        ("allow", _allow, "grant a client a service (or one method)"),
        ("deny", _deny, "withdraw a grant"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--dir", type=Path, required=True, help=DIR_HELP)
        p.add_argument(
            "--client", required=True, help="client subsystem, e.g. KZ/GOV/MLSPP/pension"
        )
        p.add_argument(
            "--service",
            required=True,
            help="KZ/GOV/MJ/population/zhol.population.v1.PopulationRegistry[/Method]",
        )
        p.set_defaults(func=func)

    service = sub.add_parser(
        "service", help="how the gateway reaches an exposed service's IS (plaintext, tls, mtls)"
    )
    service.add_argument("--dir", type=Path, required=True, help=DIR_HELP)
    service.add_argument(
        "--service",
        required=True,
        help="KZ/GOV/MJ/population/zhol.population.v1.PopulationRegistry (exposed here)",
    )
    service.add_argument("--address", metavar="HOST:PORT", help="move the IS (default: keep)")
    add_is_tls_options(service)
    service.set_defaults(func=_service)

    services = sub.add_parser("services", help="list exposed services and how ISs are reached")
    services.add_argument("--dir", type=Path, required=True, help=DIR_HELP)
    services.add_argument("--json", action="store_true", help="one JSON object a line")
    services.set_defaults(func=_services)

    rights = sub.add_parser("rights", help="list access rights")
    rights.add_argument("--dir", type=Path, required=True, help=DIR_HELP)
    rights.add_argument("--json", action="store_true", help="one JSON object a line")
    rights.set_defaults(func=_rights)

    is_cert = sub.add_parser(
        "is-cert", help="create the IS-facing TLS key and self-signed certificate"
    )
    is_cert.add_argument("--dir", type=Path, required=True, help=DIR_HELP)
    is_cert.add_argument(
        "--host",
        action="append",
        default=[],
        metavar="NAME",
        help="DNS name or IP address ISs dial (repeatable; localhost and 127.0.0.1 always)",
    )
    is_cert.add_argument("--days", type=int, default=365, help="validity in days")
    is_cert.add_argument("--force", action="store_true", help="replace an existing key and cert")
    is_cert.set_defaults(func=_is_cert)

    pin = sub.add_parser(
        "pin-is", help="pin an IS client certificate for is_tls = mtls (applied at restart)"
    )
    pin.add_argument("--dir", type=Path, required=True, help=DIR_HELP)
    pin.add_argument(
        "--cert", type=Path, required=True, metavar="PEM_FILE", help="the IS's client certificate"
    )
    pin.add_argument(
        "--clients",
        metavar="SUBSYSTEM,...",
        help="only these client subsystems may be named in zhol-client (default: any served here)",
    )
    pin.set_defaults(func=_pin_is)

    unpin = sub.add_parser("unpin-is", help="remove a pinned IS certificate (applied at restart)")
    unpin.add_argument("--dir", type=Path, required=True, help=DIR_HELP)
    unpin.add_argument(
        "--sha256", required=True, metavar="HEX", help="its fingerprint, as pinned-is lists it"
    )
    unpin.set_defaults(func=_unpin_is)

    pinned = sub.add_parser("pinned-is", help="list pinned IS certificates")
    pinned.add_argument("--dir", type=Path, required=True, help=DIR_HELP)
    pinned.add_argument(
        "--json", action="store_true", help='one object a line ("clients": null means any)'
    )
    pinned.set_defaults(func=_pinned_is)

    _add_health_parser(sub)

    from zhol.cli import (
        gateway_status as statuscli,  # its own module: it reads every file of the gateway
    )

    statuscli.add_parser(sub)

    from zhol.cli import gateway_refresh

    gateway_refresh.add_parser(sub)

    from zhol.cli import gateway_archive

    gateway_archive.add_parser(sub)

    from zhol.cli import gateway_usage

    gateway_usage.add_gateway_parsers(sub)

    from zhol.cli import gateway_access

    gateway_access.add_gateway_parsers(sub)


def add_wait_option(parser: argparse.ArgumentParser) -> None:
    """--timeout: how long a registering command waits for the registry's decision."""
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="wait this long for the decision; rerun to keep waiting on the same request "
        "(default %(default)s)",
    )


def add_is_tls_options(parser: argparse.ArgumentParser) -> None:
    """--tls-mode and --server-cert: how the gateway connects to an IS it calls."""
    parser.add_argument(
        "--tls-mode",
        choices=IS_TLS_MODES,
        help="plaintext; tls: verify the IS against --server-cert; mtls: also present "
        "keys/is-client.pem (or is-server.pem) so the IS can pin the gateway "
        "(default: keep the current mode; plaintext where none is set yet)",
    )
    parser.add_argument(
        "--server-cert",
        type=Path,
        metavar="PEM_FILE",
        help="the IS's certificate, or the CA that issued it (required for tls and mtls)",
    )


def read_is_tls_options(args: argparse.Namespace, data_dir: Path) -> tuple[str | None, bytes]:
    """(mode or None to keep it, pinned PEM) from the flags, refused now rather than at
    the first call."""
    pem = b""
    if args.server_cert is not None:
        try:
            pem = args.server_cert.read_bytes()
        except OSError as exc:
            raise ZholError(
                "InvalidRequest", f"cannot read {args.server_cert}: {exc.strerror}"
            ) from None
    if args.tls_mode is None:
        if pem:
            raise ZholError("InvalidRequest", "--server-cert needs --tls-mode tls or mtls")
        return None, b""
    pem = check_is_tls(args.tls_mode, pem)
    if args.tls_mode == "mtls" and is_client_identity_files(data_dir / "keys") is None:
        raise ZholError(
            "NotConfigured", "mtls needs the gateway's IS-facing certificate (zhol gateway is-cert)"
        )
    return args.tls_mode, pem


def endpoint_fields(endpoint: IsEndpoint) -> dict[str, object]:
    hashes = pem_sha256_hexes(endpoint.server_cert_pem) if endpoint.server_cert_pem else None
    return {
        "address": endpoint.address,
        "tls_mode": endpoint.tls_mode,
        "server_cert_sha256": hashes,
    }


def endpoint_text(endpoint: IsEndpoint) -> str:
    text = f"{endpoint.address} tls={endpoint.tls_mode}"
    if endpoint.server_cert_pem:
        text += f" server_cert_sha256={','.join(pem_sha256_hexes(endpoint.server_cert_pem))}"
    return text


def _fail(err: ZholError) -> int:
    return report(err)


def _waiting(request_id: str, timeout_s: float) -> None:
    """What an operator needs while the command waits for the registry's decision."""
    print(
        f"registration request {request_id} is with the registry; waiting up to "
        f"{timeout_s:.0f} s for a decision (the registry's operator runs "
        f"`zhol registry approve --dir REGISTRY_DIR {request_id}` unless it approves "
        "automatically). If this times out, run the same command again to keep waiting.",
        file=sys.stderr,
        flush=True,
    )


def _init(args: argparse.Namespace) -> int:
    from zhol.gateway.provision import init_gateway

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
                passphrase_env=args.passphrase_env,
                timeout_s=args.timeout,
                on_wait=_waiting,
            )
        )
    except ZholError as err:
        return _fail(err)
    print(f"gateway {gateway_id} registered; certificates in {args.dir / 'keys'}")
    return 0


def _renew(args: argparse.Namespace) -> int:
    from zhol.gateway.provision import renew_gateway

    roles = tuple(r for r, chosen in (("auth", args.auth), ("sign", args.sign)) if chosen)
    if not roles and not args.log_key:
        roles = ("auth", "sign")
    if not (args.dir / "gateway.toml").exists():
        return _fail(ZholError("NotConfigured", f"no gateway in {args.dir}"))
    try:
        done = asyncio.run(
            renew_gateway(
                args.dir,
                roles,
                timeout_s=args.timeout,
                on_wait=_waiting,
                log_key_only=args.log_key,
            )
        )
    except ZholError as err:
        return _fail(err)
    not_after = {r: t.isoformat(timespec="seconds") for r, t in done.not_after.items()}
    log_key = base64.b64encode(done.log_public_key).decode() if done.log_public_key else None
    kept = str(done.kept_log_public_key) if done.kept_log_public_key else None
    if args.json:
        doc = {
            "renewed": list(done.roles),
            "not_after": not_after,
            "log_public_key": log_key,
            "previous_log_public_key_file": kept,
            "previous_dir": str(done.previous_dir),
            "restart_required": True,
        }
        print(json.dumps(doc))
        return 0
    for role in done.roles:
        print(f"renewed the {role} certificate: valid until {not_after[role]}")
    if log_key:
        print(
            f"new log key {log_key} (raw Ed25519, base64)"
            + (f"; previous one: {kept}" if kept else "")
        )
    print(f"the replaced keys are in {done.previous_dir}")
    print(
        "restart the gateway to use them (no hot reload): until then it keeps the previous "
        "ones; peers accept the previous auth certificate until it expires or `zhol registry "
        "end-overlap`, and checkpoints the previous log key signs stay verifiable"
    )
    return 0


def parse_service_option(text: str) -> tuple[str, str, tuple[str, ...]]:
    """'pkg.Svc=127.0.0.1:5000:GetA,GetB' -> ('pkg.Svc', '127.0.0.1:5000', ('GetA', 'GetB'));
    'pkg.Svc=127.0.0.1:5000' -> ('pkg.Svc', '127.0.0.1:5000', ()) (methods from the contract)."""
    name, sep, rest = text.partition("=")
    host, _, tail = rest.rpartition(":")
    if tail.isdigit():  # no methods: a method name never starts with a digit
        host, tail = rest, ""
    address, _, port = host.rpartition(":")
    if not sep or not address or not port.isdigit():
        raise ZholError(
            "InvalidRequest", f"--service {text!r}: expected SERVICE=HOST:PORT[:METHODS]"
        )
    return name, f"{address}:{port}", tuple(m for m in tail.split(",") if m)


def _contract(args: argparse.Namespace) -> bytes:
    """The contract the options give (compiled from --proto, or read), or b""."""
    from zhol.cli.contract import compile_proto, read_descriptor_set

    if args.proto_path and args.proto is None:
        raise ZholError("InvalidRequest", "--proto-path applies to --proto; none given")
    if args.proto is not None:
        return compile_proto(args.proto, args.proto_path)
    if args.descriptor_set is not None:
        return read_descriptor_set(args.descriptor_set)
    return b""


def _offers(args: argparse.Namespace, contract: bytes) -> list[ServiceOffer]:
    """The --service offers, checked as the registry will check them (same codes)."""
    from zhol.cli.contract import check_offer
    from zhol.gateway.provision import ServiceOffer

    offers: list[ServiceOffer] = []
    for text in args.service:
        name, address, methods = parse_service_option(text)
        if any(o.grpc_service == name for o in offers):
            raise ZholError("DuplicateService", f"--service {name} given twice")
        if contract:
            methods = check_offer(contract, name, methods)
        elif not methods:
            raise ZholError(
                "InvalidRequest", f"--service {text!r}: list its methods or give its contract"
            )
        offers.append(ServiceOffer(name, methods, address, contract))
    if contract and not offers:
        raise ZholError("InvalidRequest", "--proto and --descriptor-set apply to --service")
    return offers


def _add_subsystem(args: argparse.Namespace) -> int:
    from zhol.gateway.provision import register_subsystem

    try:
        settings = load_gateway_settings(args.dir)
        offers = _offers(args, _contract(args))
        # Refused here, before the registry hears of the subsystem.
        tls_mode, server_pem = read_is_tls_options(args, args.dir)
        if tls_mode is not None and not offers:
            raise ZholError("InvalidRequest", "--tls-mode applies to --service; none given")
        subsystem_id = SubsystemId.parse(args.subsystem)
        asyncio.run(
            register_subsystem(
                args.dir,
                GatewayId.parse(settings.gateway_id),
                settings.registry_address,
                subsystem_id,
                offers,
                topics=args.topic,
                timeout_s=args.timeout,
                on_wait=_waiting,
            )
        )
        if tls_mode is not None:
            local = _open_local(args)
            try:
                for offer in offers:
                    local.set_service_tls(subsystem_id, offer.grpc_service, tls_mode, server_pem)
            finally:
                local.close()
    except ZholError as err:
        return _fail(err)
    print(f"subsystem {args.subsystem} registered")
    for offer in offers:
        print(f"  {offer.grpc_service}: {', '.join(offer.methods)}")
    if tls_mode is not None:
        print(f"its services are reached with tls={tls_mode}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from zhol.gateway.server import configure_logging, run_gateway

    configure_logging()
    overrides = {"port_file": args.port_file} if args.port_file else {}
    settings = load_gateway_settings(args.dir, **overrides)
    ensure_grpc_experiments(settings.grpc_experiments)  # may restart the process, same pid
    try:
        check_cpu_policy(settings.cpu_policy)  # applied once the gateway serves
    except ZholError as err:
        return _fail(err)
    # uvloop cuts the event loop's share of each exchange by about a fifth (measured).
    runner = uvloop.run if settings.event_loop == "uvloop" else asyncio.run
    try:
        runner(run_gateway(settings))
    except ZholError as err:
        return _fail(err)
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


def _service(args: argparse.Namespace) -> int:
    try:
        local = _open_local(args)
        try:
            provider, grpc_service, method = parse_service_target(args.service)
            if method:
                raise ZholError("InvalidRequest", "name the gRPC service, not one method")
            mode, pem = read_is_tls_options(args, args.dir)
            exposed = local.set_service_tls(
                provider, grpc_service, mode, pem, is_address=args.address
            )
        finally:
            local.close()
    except ZholError as err:
        return _fail(err)
    print(f"{provider}/{grpc_service} -> {endpoint_text(exposed.endpoint)}")
    print("the running gateway applies it within a second")
    return 0


def _services(args: argparse.Namespace) -> int:
    try:
        local = _open_local(args)
        services = sorted(local.services(), key=lambda s: (str(s.subsystem), s.grpc_service))
        local.close()
    except ZholError as err:
        return _fail(err)
    for s in services:
        if args.json:
            print(json.dumps({
                "subsystem": str(s.subsystem), "grpc_service": s.grpc_service,
                "methods": list(s.methods), **endpoint_fields(s.endpoint),
            }))  # fmt: skip
        else:
            methods = ",".join(s.methods) or "*"
            print(f"{s.subsystem}/{s.grpc_service} [{methods}] -> {endpoint_text(s.endpoint)}")
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


def _require_gateway(data_dir: Path) -> None:
    if not (data_dir / "gateway.toml").exists():
        raise ZholError("NotConfigured", f"no gateway in {data_dir}")


def _is_cert(args: argparse.Namespace) -> int:
    from zhol.gateway.ispins import IS_SERVER_CERT, IS_SERVER_KEY, cert_pem_sha256, read_tls_key
    from zhol.gateway.settings import key_passphrase
    from zhol.security.ca import create_self_signed_tls_cert
    from zhol.security.keys import generate_private_key, load_private_key_pem
    from zhol.security.keystore import write_certificate, write_private_key

    keys = args.dir / "keys"
    key_path, cert_path = keys / IS_SERVER_KEY, keys / IS_SERVER_CERT
    try:
        _require_gateway(args.dir)
        if args.days < 1:
            raise ZholError("InvalidRequest", "--days must be at least 1")
        if key_path.exists() and cert_path.exists() and not args.force:
            digest = cert_pem_sha256(cert_path.read_bytes()).hex()
            print(f"{cert_path} exists (sha256 {digest}); --force replaces it")
            return 0
        # Encrypted like the gateway's other keys when it has a passphrase; the
        # gateway decrypts it in memory for the TLS stack. Owner-only (0600).
        env = load_gateway_settings(args.dir).key_passphrase_env
        passphrase = key_passphrase(env) if env else None
        if key_path.exists() and not args.force:
            # A run interrupted before the certificate.
            key = load_private_key_pem(read_tls_key(key_path, passphrase))
        else:
            key = generate_private_key()
            write_private_key(key_path, key, passphrase)
        now = datetime.datetime.now(datetime.UTC)
        cert = create_self_signed_tls_cert(key, args.host, now, args.days)
        write_certificate(cert_path, cert)
    except ZholError as err:
        return _fail(err)
    digest = cert_pem_sha256(cert_path.read_bytes()).hex()
    print(f"IS-facing TLS certificate {cert_path} (sha256 {digest})")
    print('ISs trust it as their root certificate; set is_tls = "tls" or "mtls" and restart')
    return 0


def _pin_is(args: argparse.Namespace) -> int:
    from zhol.gateway.ispins import pin_is_client, restriction_text

    try:
        _require_gateway(args.dir)
        clients = None
        if args.clients is not None:
            clients = [SubsystemId.parse(c.strip()) for c in args.clients.split(",") if c.strip()]
            if not clients:
                raise ZholError("InvalidRequest", "--clients names no subsystem")
        try:
            cert_pem = args.cert.read_bytes()
        except OSError as exc:
            raise ZholError("InvalidRequest", f"cannot read {args.cert}: {exc.strerror}") from None
        pin = pin_is_client(args.dir / "keys", cert_pem, clients)
    except ZholError as err:
        return _fail(err)
    try:
        is_tls = load_gateway_settings(args.dir).is_tls
    except (ValueError, TypeError):  # only for the hint below; serve reports a bad file
        is_tls = "mtls"
    if pin.not_after < datetime.datetime.now(datetime.UTC):
        print(f"warning: the certificate expired at {pin.not_after.isoformat()}", file=sys.stderr)
    print(f"pinned {pin.sha256_hex} {pin.subject} clients={restriction_text(pin.clients)}")
    note = "" if is_tls == "mtls" else f' (is_tls is "{is_tls}": pins apply with "mtls")'
    print(f"restart the gateway to apply{note}")
    return 0


def _unpin_is(args: argparse.Namespace) -> int:
    from zhol.gateway.ispins import unpin_is_client

    try:
        _require_gateway(args.dir)
        pin = unpin_is_client(args.dir / "keys", args.sha256)
    except ZholError as err:
        return _fail(err)
    print(f"unpinned {pin.sha256_hex} {pin.subject}; restart the gateway to apply")
    return 0


def _pinned_is(args: argparse.Namespace) -> int:
    from zhol.gateway.ispins import pinned_is_clients, restriction_text

    try:
        _require_gateway(args.dir)
        pins = pinned_is_clients(args.dir / "keys")
    except ZholError as err:
        return _fail(err)
    for pin in pins:
        if args.json:
            clients = sorted(str(c) for c in pin.clients) if pin.clients is not None else None
            print(
                json.dumps(
                    {
                        "sha256": pin.sha256_hex,
                        "subject": pin.subject,
                        "not_after": pin.not_after.isoformat(),
                        "clients": clients,
                    }
                )
            )
        else:
            print(
                f"{pin.sha256_hex} {pin.subject} not_after={pin.not_after.isoformat()} "
                f"clients={restriction_text(pin.clients)}"
            )
    return 0


def _add_health_parser(sub: argparse._SubParsersAction) -> None:
    from zhol.cli.health import add_output_arguments, add_tls_arguments

    health = sub.add_parser(
        "health",
        help="ask this gateway's IS-facing health service (exit 0 SERVING, 1 not, 3 could not "
        "check); tls trusts keys/is-server.pem, mtls also needs --tls-cert/--tls-key of a "
        "pinned IS certificate",
    )
    health.add_argument("--dir", type=Path, required=True, help=DIR_HELP)
    add_output_arguments(health)
    add_tls_arguments(health)
    health.set_defaults(func=_health)


def _is_address(settings: GatewaySettings) -> str:
    """Where this gateway's IS side listens: is_listen, or port_file when it says port 0."""
    host, _, port = settings.is_listen.rpartition(":")
    if port == "0":
        if settings.port_file is None or not settings.port_file.exists():
            raise ZholError("NotConfigured", "is_listen has port 0 and no port_file to read")
        port = str(json.loads(settings.port_file.read_text())["is_port"])
    if host in ("", "0.0.0.0", "[::]", "::"):
        host = "127.0.0.1"  # listening everywhere: ask over loopback
    return f"{host}:{port}"


def _health(args: argparse.Namespace) -> int:
    from zhol.cli.health import check_health, print_result, tls_files
    from zhol.gateway.ispins import IS_SERVER_CERT

    try:
        _require_gateway(args.dir)
        settings = load_gateway_settings(args.dir)
        address = _is_address(settings)
        default_ca = None if settings.is_tls == "plaintext" else args.dir / "keys" / IS_SERVER_CERT
        tls = tls_files(args, default_ca)
        if settings.is_tls == "mtls" and (tls is None or tls.cert is None):
            raise ZholError(
                "InvalidRequest", "is_tls = mtls: give --tls-cert and --tls-key of a pinned IS"
            )
        result = check_health(address, args.service, tls, args.timeout)
    except ZholError as err:
        return _fail(err)
    return print_result(result, args.json)
