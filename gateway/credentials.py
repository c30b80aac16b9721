"""The gateway's own keys and certificates, as laid out in DATA_DIR/keys/."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from core.errors import ZholError
from security.keys import private_key_to_pem
from security.keystore import read_certificate, read_private_key
from security.sealing import Signer

AUTH_KEY = "auth.key"
AUTH_CERT = "auth.pem"
SIGN_KEY = "sign.key"
SIGN_CERT = "sign.pem"
CA_CERT = "ca.pem"

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class GatewayCredentials:
    signer: Signer
    auth_key_pem: bytes  # unencrypted, held in memory only for the TLS stack
    auth_cert_pem: bytes
    ca_pem: bytes


def key_passphrase(env_name: str) -> bytes:
    """The private keys' passphrase, from the environment variable named env_name.

    Only the variable's name is ever stored (gateway.toml) or reported; its value is not.
    """
    if not _ENV_NAME.match(env_name):
        # Not echoed: it may be the passphrase itself, given by mistake.
        raise ZholError(
            "InvalidRequest", "the passphrase variable must be named [A-Za-z_][A-Za-z0-9_]*"
        )
    value = os.environ.get(env_name, "")
    if not value:
        raise ZholError(
            "NotConfigured",
            f"environment variable {env_name} must hold the passphrase of the gateway's keys",
        )
    return value.encode()


def load_credentials(keys_dir: Path, passphrase: bytes | None) -> GatewayCredentials:
    try:
        sign_key = read_private_key(keys_dir / SIGN_KEY, passphrase)
        auth_key = read_private_key(keys_dir / AUTH_KEY, passphrase)
    except ValueError as exc:
        hint = "" if passphrase else " (encrypted keys need key_passphrase_env in gateway.toml)"
        raise ZholError("NotConfigured", f"keys in {keys_dir}: {exc}{hint}") from None
    sign_cert = read_certificate(keys_dir / SIGN_CERT)
    return GatewayCredentials(
        signer=Signer(sign_key, sign_cert.public_bytes(Encoding.DER)),
        auth_key_pem=private_key_to_pem(auth_key),
        auth_cert_pem=(keys_dir / AUTH_CERT).read_bytes(),
        ca_pem=(keys_dir / CA_CERT).read_bytes(),
    )
