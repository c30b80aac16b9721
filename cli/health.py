"""`zhol health ADDRESS`: ask a server's standard gRPC health service (grpc.health.v1).

Works against gateways (IS and peer ports), the registry and the adapters, and
against any other server that speaks the protocol. Exit codes (docs/operators.md,
'Health checks'):
0 SERVING; 1 NOT_SERVING, UNKNOWN or SERVICE_UNKNOWN; 2 usage; 3 could not check
(unreachable, timeout, no health service, TLS handshake refused).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from zhol.core.errors import ZholError
from zhol.core.exitcodes import EXIT_CANNOT_CHECK, EXIT_FAILED, EXIT_OK, report

DEFAULT_TIMEOUT_S = 5.0
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.ServingStatus.Name(
    health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
)


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files for the check's channel: ``ca`` alone is TLS; with cert and key, mutual."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    server_name: str | None = None  # the name to verify instead of the address's host


@dataclass(frozen=True, slots=True)
class HealthResult:
    address: str
    service: str
    status: str | None  # a ServingStatus name; None when the check could not be made
    error: str | None = None  # the gRPC status code name when it could not

    @property
    def exit_code(self) -> int:
        if self.status is None:
            return EXIT_CANNOT_CHECK
        return EXIT_OK if self.status == "SERVING" else EXIT_FAILED


def add_tls_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tls-ca", type=Path, metavar="PEM", help="trust this CA/certificate")
    parser.add_argument("--tls-cert", type=Path, metavar="PEM", help="client certificate (mTLS)")
    parser.add_argument("--tls-key", type=Path, metavar="PEM", help="client key (mTLS)")
    parser.add_argument(
        "--tls-server-name",
        metavar="NAME",
        help="verify the server's certificate for NAME (a gateway's peer port: its auth name)",
    )


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--service", default="", help='service name ("" = the whole server)')
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help="give up after this long (default %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    health = subparsers.add_parser(
        "health",
        help="ask a server's gRPC health service (exit 0 SERVING, 1 not, 3 could not check)",
    )
    health.add_argument("address", help="host:port")
    add_output_arguments(health)
    add_tls_arguments(health)
    health.set_defaults(func=_health)


def tls_files(args: argparse.Namespace, default_ca: Path | None = None) -> TlsFiles | None:
    """The --tls-* flags as TlsFiles (None: plaintext); InvalidRequest when half given."""
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ZholError("InvalidRequest", "--tls-cert and --tls-key go together")
    ca = args.tls_ca or default_ca
    if ca is None and args.tls_cert is None:
        if args.tls_server_name:
            raise ZholError("InvalidRequest", "--tls-server-name needs TLS (--tls-ca)")
        return None
    return TlsFiles(ca, args.tls_cert, args.tls_key, args.tls_server_name or None)


def _credentials(tls: TlsFiles) -> grpc.ChannelCredentials:
    def read(path: Path | None) -> bytes | None:
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ZholError("InvalidRequest", f"cannot read {path}: {exc.strerror}") from None

    return grpc.ssl_channel_credentials(
        root_certificates=read(tls.ca), private_key=read(tls.key), certificate_chain=read(tls.cert)
    )


def check_health(
    address: str, service: str = "", tls: TlsFiles | None = None, timeout: float = DEFAULT_TIMEOUT_S
) -> HealthResult:
    """One Health/Check call. Blocking (a command-line tool; tests run it in a thread)."""
    if tls is None:
        channel = grpc.insecure_channel(address)
    else:
        options = [("grpc.ssl_target_name_override", tls.server_name)] if tls.server_name else []
        channel = grpc.secure_channel(address, _credentials(tls), options=options)
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as err:
            code = err.code()
            if code == grpc.StatusCode.NOT_FOUND:  # the protocol's "no such service"
                return HealthResult(address, service, SERVICE_UNKNOWN)
            return HealthResult(address, service, None, code.name)
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    return HealthResult(address, service, status)


def print_result(result: HealthResult, as_json: bool) -> int:
    """Print the outcome (could-not-check on stderr unless --json); return its exit code."""
    if as_json:
        print(json.dumps({"address": result.address, "service": result.service,
                          "status": result.status, "error": result.error}))
    elif result.status is not None:
        print(result.status)
    else:
        print(f"could not check {result.address}: {result.error}", file=sys.stderr)
    return result.exit_code


def _health(args: argparse.Namespace) -> int:
    try:
        tls = tls_files(args)
        result = check_health(args.address, args.service, tls, args.timeout)
    except ZholError as err:
        return report(err)
    return print_result(result, args.json)
