"""`zhol tsa`: the federation's RFC 3161 timestamping authority.

``zhol tsa init --dir DIR --registry-dir REGISTRY_DIR`` makes the authority's key and
has the federation CA (in the registry's directory) issue its certificate;
``zhol tsa serve --dir DIR`` answers timestamp requests over the RFC 3161 HTTP
transport (POST, ``application/timestamp-query`` in, ``application/timestamp-reply``
out; the aiohttp application is in zhol.cli.tsa_server). The tokens themselves are
made by zhol.security.timestamp.

Layout (DIR is 0700)::

    DIR/tsa.key   the authority's ECDSA P-256 private key (0600)
    DIR/tsa.pem   its certificate, issued by the federation CA (critical EKU timeStamping)
    DIR/ca.pem    the federation CA certificate it chains to (for auditors and openssl)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from zhol.core.errors import Hop, ZholError
from zhol.core.exitcodes import EXIT_CANNOT_CHECK, EXIT_OK, EXIT_USAGE
from zhol.core.jsonlog import configure_json_logging
from zhol.registry.provision import load_keys, require_initialised
from zhol.registry.settings import load_registry_settings, read_key_passphrase
from zhol.security.ca import create_csr, issue_tsa_certificate
from zhol.security.keys import generate_private_key
from zhol.security.keystore import (
    read_certificate,
    read_private_key,
    write_certificate,
    write_private_key,
)
from zhol.security.timestamp import TsaSigner

DEFAULT_LISTEN = "127.0.0.1:3318"


@dataclass(frozen=True, slots=True)
class TsaPaths:
    root: Path

    @property
    def key(self) -> Path:
        return self.root / "tsa.key"

    @property
    def cert(self) -> Path:
        return self.root / "tsa.pem"

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.pem"


def init_tsa(
    data_dir: Path,
    registry_dir: Path,
    name: str,
    now: dt.datetime | None = None,
    passphrase: bytes | None = None,
) -> TsaPaths:
    """Create the authority's key and have the registry's CA issue its certificate.

    Idempotent: an existing key is kept, and a certificate already issued for it is
    kept. ``passphrase`` unlocks the registry's CA key when it is encrypted.
    """
    paths = TsaPaths(Path(data_dir))
    now = now or dt.datetime.now(dt.UTC)
    keys = load_keys(require_initialised(Path(registry_dir)), passphrase)
    paths.root.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.root, 0o700)
    if paths.key.exists():
        key = read_private_key(paths.key)
    else:
        key = generate_private_key("ec-p256")
        write_private_key(paths.key, key)
    if not paths.cert.exists() or read_certificate(paths.cert).public_key() != key.public_key():
        cert = issue_tsa_certificate(keys.ca, create_csr(key, name), name, now)
        write_certificate(paths.cert, cert)
    write_certificate(paths.ca_cert, keys.ca.cert)
    return paths


def load_signer(data_dir: Path) -> TsaSigner:
    """The authority's key and certificate from its directory (ValueError if they differ)."""
    paths = TsaPaths(Path(data_dir))
    key = read_private_key(paths.key)
    cert = read_certificate(paths.cert)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{paths.key} is not an ECDSA key")
    if cert.public_key() != key.public_key():
        raise ValueError(f"{paths.cert} is not the certificate of {paths.key}")
    return TsaSigner(key, cert)


# -- commands --------------------------------------------------------------------------------


def _fail(err: ZholError) -> int:
    print(f"{err.full_code}: {err.detail}", file=sys.stderr)
    return EXIT_USAGE if err.code.name == "InvalidIdentifier" else EXIT_CANNOT_CHECK


def _not_configured(detail: str) -> int:
    return _fail(ZholError("NotConfigured", detail, hop=Hop.REGISTRY))


def cmd_init(args: argparse.Namespace) -> int:
    registry_dir = Path(args.registry_dir)
    try:
        settings = load_registry_settings(registry_dir)
        passphrase = read_key_passphrase(settings)
        name = args.name or f"{settings.instance}-tsa"
        paths = init_tsa(Path(args.dir), registry_dir, name, passphrase=passphrase)
    except ZholError as err:
        return _fail(err)
    except (ValueError, TypeError, OSError) as exc:
        return _not_configured(f"cannot create the TSA: {exc}")
    cert = read_certificate(paths.cert)
    view = {
        "dir": str(paths.root),
        "certificate": str(paths.cert),
        "ca": str(paths.ca_cert),
        "subject": cert.subject.rfc4514_string(),
        "not_after": cert.not_valid_after_utc.isoformat(),
    }
    if args.json:
        print(json.dumps(view, indent=2))
    else:
        print(f"TSA {view['subject']} in {view['dir']}, certificate valid to {view['not_after']}")
        print(f"  certificate {view['certificate']} issued by the federation CA {view['ca']}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    # aiohttp is imported only here: it would add 0.2 s to every other zhol command.
    from zhol.cli.tsa_server import serve

    configure_json_logging(logging.INFO)
    try:
        load_signer(Path(args.dir))
    except (ValueError, OSError) as exc:
        return _not_configured(f"{args.dir} is not a TSA (run zhol tsa init): {exc}")
    port_file = Path(args.port_file) if args.port_file else None
    try:
        return asyncio.run(serve(Path(args.dir), args.listen, port_file))
    except OSError as exc:
        return _not_configured(f"cannot listen on {args.listen}: {exc}")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``tsa`` and its subcommands to a ``zhol`` parser's subparsers."""
    tsa = subparsers.add_parser("tsa", help="the RFC 3161 timestamping authority")
    sub = tsa.add_subparsers(dest="tsa_command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", help="make the TSA's key and certificate (issued by the CA)")
    p.add_argument("--dir", required=True, help="the TSA's data directory")
    p.add_argument(
        "--registry-dir", required=True, help="the registry's data directory (holds the CA)"
    )
    p.add_argument(
        "--name", default="", help="certificate subject name (default INSTANCE-tsa, e.g. KZ-tsa)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("serve", help="answer RFC 3161 requests over HTTP until SIGTERM/SIGINT")
    p.add_argument("--dir", required=True, help="the TSA's data directory")
    p.add_argument("--listen", default=DEFAULT_LISTEN, help=f"host:port (default {DEFAULT_LISTEN})")
    p.add_argument("--port-file", default="", help="write the bound port to this file")
    p.set_defaults(func=cmd_serve)
