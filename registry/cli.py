"""``zhol registry ...``: initialise, serve and operate the central registry.

Exit codes: 0 ok, 1 failed (a refused operation), 2 usage, 3 could not check
(directory not initialised, keys unreadable, database unavailable). Errors are
printed on stderr as their full code and a message. Never prompts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from zhol.core.clock import SystemClock
from zhol.core.errors import ErrorName, Hop, ZholError
from zhol.core.ids import GatewayId
from zhol.registry.model import Registration, RegistrationKind, RegistrationState, Snapshot
from zhol.registry.provision import (
    RegistryKeys,
    RegistryPaths,
    init_registry,
    is_initialised,
    load_keys,
    require_initialised,
)
from zhol.registry.registration import Registrar, reject_registration, revoke_gateway
from zhol.registry.settings import (
    RegistrySettings,
    load_registry_settings,
    read_key_passphrase,
    read_passphrase_env,
)
from zhol.registry.store import Store
from zhol.registry.v1 import registry_pb2
from zhol.registry.witness import witness_name
from zhol.security.globalconf import verify_global_conf
from zhol.security.keystore import read_certificate
from zhol.security.signednote import cosign, gateway_origin, join_note, parse_note
from zhol.security.validation import cert_sha256

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANNOT_CHECK = 0, 1, 2, 3
# How listings flag a gateway registered before log keys (stable: scripts grep for it).
NO_LOG_KEY = "NO-LOG-KEY"

Handler = Callable[[argparse.Namespace], int]


class _Exit(Exception):
    def __init__(self, exit_code: int, err: ZholError) -> None:
        super().__init__(err.full_code)
        self.exit_code = exit_code
        self.err = err


def _registry_error(code: ErrorName, detail: str) -> ZholError:
    return ZholError(code, detail, hop=Hop.REGISTRY)


def _guarded(fn: Handler) -> Handler:
    """Map every failure to its exit code and one line on stderr."""

    @functools.wraps(fn)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except _Exit as exc:
            _print_error(exc.err)
            return exc.exit_code
        except ZholError as err:
            _print_error(err)
            return EXIT_USAGE if err.code.name == "InvalidIdentifier" else EXIT_FAILED
        except BrokenPipeError:
            raise  # the output's reader went away: zhol's entry point ends quietly
        except (OSError, sqlite3.Error) as exc:
            _print_error(_registry_error("InternalError", f"{type(exc).__name__}: {exc}"))
            return EXIT_CANNOT_CHECK

    return wrapper


def _print_error(err: ZholError) -> None:
    print(f"{err.full_code}: {err.detail}", file=sys.stderr)


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="seconds")


def _now_ms() -> int:
    return SystemClock().now_ms()


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=False))


# -- opening a registry ------------------------------------------------------------------------


def _settings(args: argparse.Namespace, **overrides: Any) -> RegistrySettings:
    try:
        return load_registry_settings(Path(args.dir), overrides=overrides)
    except (ValueError, TypeError) as exc:
        raise _Exit(EXIT_USAGE, _registry_error("InvalidRequest", f"bad settings: {exc}")) from None


def _paths(args: argparse.Namespace) -> RegistryPaths:
    try:
        return require_initialised(Path(args.dir))
    except ZholError as err:
        raise _Exit(EXIT_CANNOT_CHECK, err) from None


def _store(args: argparse.Namespace) -> Store:
    return Store.open(_paths(args).db)


def _keys(args: argparse.Namespace, settings: RegistrySettings) -> RegistryKeys:
    paths = _paths(args)
    try:
        return load_keys(paths, read_key_passphrase(settings))
    except (ValueError, OSError) as exc:
        err = _registry_error("NotConfigured", f"cannot load the registry keys: {exc}")
        raise _Exit(EXIT_CANNOT_CHECK, err) from None


# -- commands --------------------------------------------------------------------------------


@_guarded
def cmd_init(args: argparse.Namespace) -> int:
    passphrase = None
    if args.passphrase_env:
        passphrase = read_passphrase_env(args.passphrase_env)
        if passphrase is None:
            err = _registry_error(
                "InvalidRequest", f"environment variable {args.passphrase_env} is not set"
            )
            raise _Exit(EXIT_USAGE, err)
    data_dir = Path(args.dir)
    already = is_initialised(data_dir)
    try:
        paths = init_registry(
            data_dir,
            instance=args.instance,
            auto_approve=args.auto_approve,
            passphrase=passphrase,
            passphrase_env=args.passphrase_env or "",
        )
    except ValueError as exc:
        raise _Exit(EXIT_USAGE, _registry_error("InvalidRequest", str(exc))) from None
    anchor_sha256 = cert_sha256(_cert_der(paths.anchor)).hex()
    result = {
        "data_dir": str(paths.root),
        "created": not already,
        "anchor": str(paths.anchor),
        "anchor_sha256": anchor_sha256,
        "ca_cert": str(paths.ca_cert),
    }
    if args.json:
        _print_json(result)
    else:
        verb = "already initialised" if already else "initialised"
        print(f"registry {verb} in {paths.root}")
        print(f"anchor (hand out of band): {paths.anchor}")
        print(f"anchor SHA-256: {anchor_sha256}")
        print(f"federation CA: {paths.ca_cert}")
    return EXIT_OK


def _cert_der(path: Path) -> bytes:
    return read_certificate(path).public_bytes(serialization.Encoding.DER)


@_guarded
def cmd_serve(args: argparse.Namespace) -> int:
    from zhol.registry.server import run

    _paths(args)
    overrides: dict[str, Any] = {}
    if args.listen:
        overrides["listen"] = args.listen
    if args.port_file:
        overrides["port_file"] = Path(args.port_file)
    settings = _settings(args, **overrides)
    _keys(args, settings)  # fail early, with exit 3, on a wrong passphrase
    return run(settings)


def _registration_view(reg: Registration) -> dict[str, Any]:
    request = registry_pb2.RegistrationRequest.FromString(reg.request)
    view: dict[str, Any] = {
        "id": reg.id,
        "kind": reg.kind.value,
        "state": reg.state.value,
        "gateway": str(reg.gateway),
        "subsystem": str(reg.subsystem) if reg.subsystem else None,
        "created_at": _iso(reg.created_at_ms),
        "decided_at": _iso(reg.decided_at_ms),
        "reason": reg.reason,
    }
    if reg.kind is RegistrationKind.RENEWAL:
        body = registry_pb2.RenewalRegistration.FromString(request.renewal_registration)
        view["renews"] = [
            role for role, csr in (("auth", body.auth_csr_pem), ("sign", body.sign_csr_pem)) if csr
        ]
        view["signer_cert_sha256"] = cert_sha256(request.signer_cert_der).hex()
        view["log_key"] = bool(body.log_public_key)
    elif reg.subsystem is None:
        view["address"] = request.gateway_address
        view["member_name"] = request.member_name
        # False only for a request stored before log keys were required: not approvable.
        view["log_key"] = bool(request.log_public_key)
    else:
        # Signed requests carry their body as bytes; requests stored before signing
        # was required carry it inline (and can no longer be approved).
        listing = (
            registry_pb2.SubsystemRegistration.FromString(request.subsystem_registration)
            if request.subsystem_registration
            else request
        )
        view["services"] = [s.grpc_service for s in listing.services]
        view["topics"] = [t.topic for t in listing.topics]
        view["signer_cert_sha256"] = (
            cert_sha256(request.signer_cert_der).hex() if request.signer_cert_der else None
        )
    return view


@_guarded
def cmd_requests(args: argparse.Namespace) -> int:
    state = RegistrationState(args.state.upper()) if args.state else None
    registrations = _store(args).list_registrations(state)
    views = [_registration_view(r) for r in registrations]
    if args.json:
        _print_json({"registrations": views})
        return EXIT_OK
    if not views:
        print("no registration requests")
    for v in views:
        if "renews" in v:
            target = f"{v['gateway']} renews {'+'.join(v['renews'])}"
        else:
            target = v["subsystem"] or f"{v['gateway']} at {v.get('address', '')}"
        line = f"{v['id']}  {v['state']:<8}  {v['kind']:<9}  {target}  {v['created_at']}"
        if v.get("log_key") is False:
            line += f"  {NO_LOG_KEY}"
        if v["reason"]:
            line += f"  reason: {v['reason']}"
        print(line)
    return EXIT_OK


@_guarded
def cmd_approve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    keys = _keys(args, settings)
    registrar = Registrar(
        store=_store(args),
        ca=keys.ca,
        instance=settings.instance,
        auto_approve=False,
        cert_validity_days=settings.cert_validity_days,
        max_contract_bytes=settings.max_contract_bytes,
        max_contracts_total_bytes=settings.max_contracts_total_bytes,
    )
    reg = registrar.approve(args.request_id, _now_ms())
    print(f"approved {reg.id} ({reg.kind.value} {reg.subsystem or reg.gateway})")
    return EXIT_OK


@_guarded
def cmd_reject(args: argparse.Namespace) -> int:
    if not args.reason.strip():
        raise _Exit(EXIT_USAGE, _registry_error("InvalidRequest", "--reason must not be empty"))
    reg = reject_registration(_store(args), args.request_id, args.reason, _now_ms())
    print(f"rejected {reg.id} ({reg.kind.value} {reg.subsystem or reg.gateway})")
    return EXIT_OK


@_guarded
def cmd_revoke(args: argparse.Namespace) -> int:
    gateway_id = GatewayId.parse(args.gateway)
    gateway, changed = revoke_gateway(_store(args), gateway_id, _now_ms())
    if changed:
        print(f"revoked {gateway.id}; effective with the next configuration version")
    else:
        print(f"{gateway.id} was already revoked at {_iso(gateway.revoked_at_ms)}")
    return EXIT_OK


@_guarded
def cmd_end_overlap(args: argparse.Namespace) -> int:
    gateway_id = GatewayId.parse(args.gateway)
    ended = _store(args).end_auth_overlap(gateway_id, _now_ms())
    if ended:
        print(
            f"{gateway_id}: {ended} previous auth certificate(s) no longer accepted; "
            "effective with the next configuration version"
        )
    else:
        print(f"{gateway_id}: no previous auth certificate was still accepted")
    return EXIT_OK


def _members_view(snapshot: Snapshot) -> list[dict[str, Any]]:
    out = []
    for member in snapshot.members:
        gateways = [
            {
                "id": str(g.id),
                "address": g.address,
                "auth_cert_sha256": g.auth_cert_sha256.hex(),
                "sign_cert_sha256": g.sign_cert_sha256.hex(),
                "registered_at": _iso(g.registered_at_ms),
                "revoked_at": _iso(g.revoked_at_ms),
                # None: registered before log keys; its checkpoints cannot be verified.
                "log_public_key": g.log_public_key.hex() or None,
                "previous_certs": [
                    {
                        "role": p.role,
                        "sha256": p.sha256.hex(),
                        "not_after": _iso(p.not_after_ms),
                        "replaced_at": _iso(p.replaced_at_ms),
                        "overlap_ended_at": _iso(p.overlap_ended_at_ms),
                    }
                    for p in snapshot.previous_certs
                    if p.gateway == g.id
                ],
            }
            for g in snapshot.gateways
            if g.member == member.id
        ]
        subsystems = [
            {
                "id": str(s.id),
                "gateways": [str(g) for g in s.gateways],
                "services": [
                    {
                        "grpc_service": svc.grpc_service,
                        "methods": list(svc.methods),
                        "descriptor_set_bytes": len(svc.descriptor_set),
                    }
                    for svc in snapshot.services
                    if svc.provider == s.id
                ],
                "topics": sorted(t.topic for t in snapshot.topics if t.publisher == s.id),
            }
            for s in snapshot.subsystems
            if s.id.member == member.id
        ]
        out.append(
            {
                "id": str(member.id),
                "name": member.name,
                "gateways": gateways,
                "subsystems": subsystems,
            }
        )
    return out


@_guarded
def cmd_members(args: argparse.Namespace) -> int:
    members = _members_view(_store(args).snapshot())
    if args.json:
        _print_json({"members": members})
        return EXIT_OK
    if not members:
        print("no members")
    for m in members:
        print(f"{m['id']}  {m['name']}")
        for g in m["gateways"]:
            state = f"revoked {g['revoked_at']}" if g["revoked_at"] else "active"
            flag = "" if g["log_public_key"] or g["revoked_at"] else f"  {NO_LOG_KEY}"
            print(f"  gateway {g['id']}  {g['address']}  {state}{flag}")
        for s in m["subsystems"]:
            print(f"  subsystem {s['id']}  gateways: {', '.join(s['gateways']) or '-'}")
            for svc in s["services"]:
                print(f"    service {svc['grpc_service']}: {', '.join(svc['methods'])}")
            for topic in s["topics"]:
                print(f"    topic {topic}")
    _warn_no_log_key(
        [g["id"] for m in members for g in m["gateways"]
         if not g["log_public_key"] and not g["revoked_at"]]
    )  # fmt: skip
    return EXIT_OK


def _warn_no_log_key(gateway_ids: list[str]) -> None:
    """Gateways from before log keys: served, but nobody can verify their logs."""
    if gateway_ids:
        print(
            f"WARNING {len(gateway_ids)} active gateway(s) without a log key: their "
            "checkpoints cannot be verified or witnessed until `zhol gateway renew --log-key` on "
            f"each adds one: {', '.join(gateway_ids)}"
        )


@_guarded
def cmd_conf(args: argparse.Namespace) -> int:
    paths = _paths(args)
    store = Store.open(paths.db)
    latest = store.latest_conf()
    if latest is None:
        if args.json:
            _print_json({"version": None})
        else:
            print("no configuration published yet (it is published when the registry serves)")
        return EXIT_OK
    anchor_der = _cert_der(paths.anchor)
    conf = verify_global_conf(latest.signed, anchor_der)  # what gateways will check
    now_ms = _now_ms()
    view: dict[str, Any] = {
        "instance": conf.instance,
        "version": conf.version,
        "generated_at": _iso(conf.generated_at_ms),
        "expires_at": _iso(conf.expires_at_ms),
        "expired": now_ms >= conf.expires_at_ms,
        "pending_changes": store.change_counter() != latest.change_counter,
        "anchor_sha256": cert_sha256(anchor_der).hex(),
        "members": len(conf.members),
        "subsystems": len(conf.subsystem_gateways),
        "services": sum(len(m) for m in conf.methods.values()),
        "topics": sum(len(t) for t in conf.topics.values()),
        "gateways": [
            {
                "id": str(g.id),
                "address": g.address,
                "auth_cert_sha256": g.auth_cert_sha256.hex(),
                "previous_auth_cert_sha256": [h.hex() for h in g.previous_auth_cert_sha256],
                "log_public_key": g.log_public_key.hex() or None,
            }
            for g in sorted(conf.gateways.values(), key=lambda g: g.id)
        ],
        "revoked_cert_sha256": sorted(h.hex() for h in conf.revoked_cert_sha256),
    }
    if args.json:
        _print_json(view)
        return EXIT_OK
    print(f"configuration v{view['version']} of {view['instance']}")
    print(f"  generated {view['generated_at']}, expires {view['expires_at']}")
    if view["expired"]:
        print("  EXPIRED: gateways fail closed until the registry publishes a new one")
    if view["pending_changes"]:
        print("  changes pending: published with the next version")
    print(
        f"  {view['members']} members, {view['subsystems']} subsystems,"
        f" {view['services']} service methods, {view['topics']} topics,"
        f" {len(view['revoked_cert_sha256'])} revoked certs"
    )
    for g in view["gateways"]:
        flag = "" if g["log_public_key"] else f"  {NO_LOG_KEY}"
        print(f"  gateway {g['id']}  {g['address']}  auth {g['auth_cert_sha256'][:16]}...{flag}")
        for h in g["previous_auth_cert_sha256"]:
            print(f"    also accepted (previous auth) {h[:16]}...")
    _warn_no_log_key([g["id"] for g in view["gateways"] if not g["log_public_key"]])
    return EXIT_OK


@_guarded
def cmd_witness_refusals(args: argparse.Namespace) -> int:
    refusals = _store(args).witness_refusals(args.origin or None)
    views = [
        {
            "refused_at": _iso(r.refused_at_ms),
            "origin": r.origin,
            "size": r.size,
            "code": r.code,
            "reason": r.reason,
        }
        for r in refusals
    ]
    if args.json:
        _print_json({"refusals": views})
        return EXIT_OK
    if not views:
        print("no refused checkpoints")
    for v in views:
        size = "-" if v["size"] is None else v["size"]
        print(f"{v['refused_at']}  {v['origin']}  size {size}  {v['code']}  {v['reason']}")
    return EXIT_OK


@_guarded
def cmd_witness_checkpoint(args: argparse.Namespace) -> int:
    """The last checkpoint the witness cosigned for a gateway, cosigned afresh: what an
    auditor checks the gateway's own files against (``zhol audit log --witnessed``)."""
    gateway = GatewayId.parse(args.gateway)  # InvalidIdentifier: exit 2
    origin = gateway_origin(str(gateway))
    store = _store(args)
    latest = store.witness_latest(origin)
    if latest is None:
        raise _Exit(
            EXIT_FAILED,
            _registry_error("UnknownMember", f"the witness cosigned no checkpoint of {gateway}"),
        )
    keys = _keys(args, _settings(args))
    if keys.witness_key is None:
        raise _Exit(EXIT_CANNOT_CHECK, _registry_error("NotConfigured", "no witness.key"))
    text, signatures = parse_note(latest.note)
    line = cosign(text, keys.witness_key, witness_name(_settings(args).instance), _now_ms() // 1000)
    cosigned = join_note(text, [*signatures, line])
    out = Path(args.out)
    try:
        fd = os.open(out, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        raise _Exit(
            EXIT_CANNOT_CHECK, _registry_error("InvalidRequest", f"{out} exists; not overwritten")
        ) from None
    with os.fdopen(fd, "wb") as f:
        f.write(cosigned)
    print(f"{origin}: checkpoint of {latest.size} records, cosigned {_iso(latest.cosigned_at_ms)}")
    return EXIT_OK


# -- parser ------------------------------------------------------------------------------------


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``registry`` and its subcommands to a ``zhol`` parser's subparsers."""
    registry = subparsers.add_parser(
        "registry", help="the central registry: CA, registration, global configuration"
    )
    sub = registry.add_subparsers(dest="registry_command", required=True, metavar="COMMAND")

    def command(name: str, func: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--dir", required=True, help="the registry's data directory")
        p.set_defaults(func=func)
        return p

    p = command("init", cmd_init, "create a registry: CA, anchor, database, settings")
    p.add_argument("--instance", default="KZ", help="federation instance code (default KZ)")
    p.add_argument("--auto-approve", action="store_true", help="approve registrations at once")
    p.add_argument(
        "--passphrase-env",
        default="",
        metavar="NAME",
        help="encrypt the private keys with the passphrase in environment variable NAME",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = command("serve", cmd_serve, "serve the registry until SIGTERM/SIGINT")
    p.add_argument("--listen", default="", help="host:port (default from registry.toml)")
    p.add_argument("--port-file", default="", help="write the bound port to this file")

    p = command("requests", cmd_requests, "list registration requests")
    p.add_argument(
        "--state",
        choices=("pending", "approved", "rejected"),
        default=None,
        help="only requests in this state (default: all)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = command("approve", cmd_approve, "approve a pending registration request")
    p.add_argument("request_id", metavar="REQUEST_ID", help="as `zhol registry requests` lists it")

    p = command("reject", cmd_reject, "reject a pending request; the requester sees the reason")
    p.add_argument("request_id", metavar="REQUEST_ID", help="as `zhol registry requests` lists it")
    p.add_argument("--reason", required=True, help="why (shown to the requester)")

    p = command("revoke", cmd_revoke, "revoke a gateway's certificates")
    p.add_argument("--gateway", required=True, metavar="GATEWAY_ID", help="e.g. KZ/GOV/MJ/gw1")

    p = command(
        "end-overlap",
        cmd_end_overlap,
        "stop accepting a renewed gateway's previous auth certificates",
    )
    p.add_argument("--gateway", required=True, metavar="GATEWAY_ID", help="e.g. KZ/GOV/MJ/gw1")

    p = command("members", cmd_members, "members, their gateways, subsystems, services and topics")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = command("conf", cmd_conf, "the current global configuration")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = command(
        "witness-refusals",
        cmd_witness_refusals,
        "checkpoints the witness refused (oldest first): time (UTC), origin, size, code, reason",
    )
    p.add_argument("--origin", default="", help="only this log, e.g. zhol/KZ/GOV/MJ/gw1")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = command(
        "witness-checkpoint",
        cmd_witness_checkpoint,
        "write the last checkpoint the witness cosigned for a gateway (a cosigned C2SP note)",
    )
    p.add_argument("--gateway", required=True, metavar="GATEWAY_ID", help="e.g. KZ/GOV/MJ/gw1")
    p.add_argument("--out", required=True, metavar="FILE", help="the note file to create")


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point (``python -m zhol.registry.cli registry ...``)."""
    parser = argparse.ArgumentParser(prog="zhol")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
