"""The IS-facing side's TLS material: the server certificate and pinned IS clients.

docs/operators.md, 'TLS between a gateway and its ISs': an IS connects to its own
gateway over plaintext (loopback development only), TLS, or mutual TLS with its
client certificate pinned at the gateway. Files, all under DATA_DIR/keys/:

- ``is-server.key`` / ``is-server.pem``: the IS listener's key (0600; encrypted
  with the gateway's key passphrase when ``key_passphrase_env`` is set, and then
  decrypted in memory only) and self-signed certificate (``zhol gateway is-cert``).
  The gateway also presents them to ISs it calls over mtls, unless a dedicated
  ``is-client.key`` / ``is-client.pem`` pair exists.
- ``is-clients/<sha256-hex>.pem``: a pinned IS client certificate
  (``zhol gateway pin-is``), and optionally ``<sha256-hex>.json``
  (``{"clients": ["KZ/GOV/MLSPP/pension", ...]}``): the only subsystems an IS
  holding that certificate may name in ``zhol-client``. Without it the IS may
  name any subsystem this gateway serves.

With ``is_tls = "mtls"`` the TLS layer trusts every certificate in is-clients/
as a root, which only proves a chain (a certificate issued under a pinned CA
certificate passes the handshake too). The pin itself is exact: the consumer
pipeline's first stage admits a call only when the SHA-256 of the peer
certificate's DER encoding is pinned here.

The gateway reads the pins when it starts: ``pin-is`` and ``unpin-is`` take
effect at the next restart (the TLS layer's roots are fixed when the port binds).
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from zhol.core.errors import ZholError
from zhol.core.ids import SubsystemId
from zhol.security.keystore import read_private_key_for_tls, write_public_file
from zhol.security.validation import cert_sha256

IS_SERVER_KEY = "is-server.key"
IS_SERVER_CERT = "is-server.pem"
# What the gateway presents to an IS it calls over mtls; is-server.* when these are absent.
IS_CLIENT_KEY = "is-client.key"
IS_CLIENT_CERT = "is-client.pem"
IS_CLIENTS_DIR = "is-clients"
IS_TLS_MODES = ("plaintext", "tls", "mtls")

_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class IsPin:
    """One pinned IS client certificate."""

    sha256: bytes
    subject: str
    not_after: datetime.datetime
    # None: any subsystem this gateway serves; otherwise only these.
    clients: frozenset[SubsystemId] | None
    path: Path

    @property
    def sha256_hex(self) -> str:
        return self.sha256.hex()


def is_client_identity_files(keys_dir: Path) -> tuple[Path, Path] | None:
    """(key, certificate) files the gateway presents to an IS it calls over mtls.

    A dedicated is-client pair when there is one, else the IS-facing server pair
    (its certificate allows both TLS roles); None when neither exists.
    """
    for key_name, cert_name in ((IS_CLIENT_KEY, IS_CLIENT_CERT), (IS_SERVER_KEY, IS_SERVER_CERT)):
        key_path, cert_path = keys_dir / key_name, keys_dir / cert_name
        if key_path.exists() and cert_path.exists():
            return key_path, cert_path
    return None


def read_tls_key(path: Path, passphrase: bytes | None) -> bytes:
    """An IS-facing key as unencrypted PEM in memory; NotConfigured if it cannot be read."""
    try:
        return read_private_key_for_tls(path, passphrase)
    except (OSError, ValueError) as exc:
        hint = "" if passphrase else " (an encrypted key needs key_passphrase_env)"
        raise ZholError("NotConfigured", f"{path}: {exc}{hint}") from None


def is_client_identity(keys_dir: Path, passphrase: bytes | None) -> tuple[bytes, bytes] | None:
    """(key, certificate) PEM from ``is_client_identity_files``, the key decrypted."""
    files = is_client_identity_files(keys_dir)
    if files is None:
        return None
    key_path, cert_path = files
    return read_tls_key(key_path, passphrase), cert_path.read_bytes()


def pem_sha256_hexes(pem: bytes) -> list[str]:
    """SHA-256 (hex) of the DER of every certificate in a PEM bundle."""
    return [
        cert_sha256(c.public_bytes(Encoding.DER)).hex()
        for c in x509.load_pem_x509_certificates(pem)
    ]


def cert_pem_sha256(pem: bytes) -> bytes:
    """SHA-256 of the DER encoding of the (first) certificate in a PEM."""
    der = x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    return cert_sha256(der)


def normalize_sha256_hex(text: str) -> str:
    """Accept 'AB:CD:...' or 'abcd...'; return 64 lowercase hex digits."""
    hex_text = text.strip().lower().replace(":", "")
    if not _HEX.match(hex_text):
        raise ZholError("InvalidRequest", f"not a SHA-256 in hex: {text!r}")
    return hex_text


def pin_is_client(
    keys_dir: Path, cert_pem: bytes, clients: Iterable[SubsystemId] | None = None
) -> IsPin:
    """Pin one IS client certificate, replacing any earlier pin of the same certificate.

    ``clients`` restricts the subsystems that certificate may act as; None lifts
    any restriction. The restriction is written before the certificate, so a
    crash in between never leaves the certificate pinned without it.
    """
    try:
        certs = x509.load_pem_x509_certificates(cert_pem)
    except ValueError as exc:
        raise ZholError("InvalidRequest", f"not a PEM certificate: {exc}") from None
    if len(certs) != 1:
        raise ZholError("InvalidRequest", f"expected one certificate, found {len(certs)}")
    cert = certs[0]
    der = cert.public_bytes(Encoding.DER)
    hex_digest = cert_sha256(der).hex()
    directory = keys_dir / IS_CLIENTS_DIR
    restriction = frozenset(clients) if clients is not None else None
    if restriction is not None and not restriction:
        raise ZholError("InvalidRequest", "--clients names no subsystem")
    rules = directory / f"{hex_digest}.json"
    if restriction is not None:
        text = json.dumps({"clients": sorted(str(c) for c in restriction)}, indent=2)
        write_public_file(rules, text.encode() + b"\n")
    else:
        rules.unlink(missing_ok=True)
    pem_path = directory / f"{hex_digest}.pem"
    write_public_file(pem_path, cert.public_bytes(Encoding.PEM))
    return _pin(cert, restriction, pem_path)


def unpin_is_client(keys_dir: Path, sha256_hex: str) -> IsPin:
    """Remove a pin (the certificate file, then its restriction)."""
    wanted = bytes.fromhex(normalize_sha256_hex(sha256_hex))
    for pin in pinned_is_clients(keys_dir):
        if pin.sha256 == wanted:
            pin.path.unlink()
            pin.path.with_suffix(".json").unlink(missing_ok=True)
            return pin
    raise ZholError("InvalidRequest", f"no pinned IS certificate has sha256 {wanted.hex()}")


def pinned_is_clients(keys_dir: Path) -> list[IsPin]:
    """Every pinned certificate, by its actual hash (whatever its file is called).

    An unreadable certificate or restriction is an error, never skipped: the
    gateway refuses to start rather than guess what the operator meant.
    """
    directory = keys_dir / IS_CLIENTS_DIR
    if not directory.is_dir():
        return []
    pins: list[IsPin] = []
    for path in sorted(directory.glob("*.pem")):
        try:
            certs = x509.load_pem_x509_certificates(path.read_bytes())
        except ValueError as exc:
            raise ZholError("NotConfigured", f"{path}: not a PEM certificate: {exc}") from None
        clients = _read_restriction(path.with_suffix(".json"))
        pins.extend(_pin(cert, clients, path) for cert in certs)
    return pins


def load_is_pins(keys_dir: Path) -> dict[bytes, IsPin]:
    """The pinned certificates by SHA-256, as the consumer pipeline checks them."""
    return {pin.sha256: pin for pin in pinned_is_clients(keys_dir)}


def _pin(cert: x509.Certificate, clients: frozenset[SubsystemId] | None, path: Path) -> IsPin:
    return IsPin(
        sha256=cert_sha256(cert.public_bytes(Encoding.DER)),
        subject=cert.subject.rfc4514_string(),
        not_after=cert.not_valid_after_utc,
        clients=clients,
        path=path,
    )


def _read_restriction(path: Path) -> frozenset[SubsystemId] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        names = data["clients"]
        if not isinstance(names, list) or not names:
            raise ValueError("'clients' must be a non-empty list")
        return frozenset(SubsystemId.parse(str(name)) for name in names)
    except (ValueError, KeyError, TypeError, ZholError) as exc:
        raise ZholError("NotConfigured", f"{path}: unreadable client restriction: {exc}") from None


def restriction_text(clients: frozenset[SubsystemId] | None) -> str:
    return ",".join(sorted(str(c) for c in clients)) if clients is not None else "*"
