"""The gateway's own keys and certificates, as laid out in DATA_DIR/keys/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from security.keys import private_key_to_pem
from security.keystore import read_certificate, read_private_key
from security.sealing import Signer

AUTH_KEY = "auth.key"
AUTH_CERT = "auth.pem"
SIGN_KEY = "sign.key"
SIGN_CERT = "sign.pem"
CA_CERT = "ca.pem"


@dataclass(frozen=True)
class GatewayCredentials:
    signer: Signer
    auth_key_pem: bytes  # unencrypted, held in memory only for the TLS stack
    auth_cert_pem: bytes
    ca_pem: bytes


def load_credentials(keys_dir: Path, passphrase: bytes | None) -> GatewayCredentials:
    sign_key = read_private_key(keys_dir / SIGN_KEY, passphrase)
    sign_cert = read_certificate(keys_dir / SIGN_CERT)
    auth_key = read_private_key(keys_dir / AUTH_KEY, passphrase)
    return GatewayCredentials(
        signer=Signer(sign_key, sign_cert.public_bytes(Encoding.DER)),
        auth_key_pem=private_key_to_pem(auth_key),
        auth_cert_pem=(keys_dir / AUTH_CERT).read_bytes(),
        ca_pem=(keys_dir / CA_CERT).read_bytes(),
    )
