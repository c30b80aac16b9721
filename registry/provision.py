"""Creating and opening a registry's data directory.

Layout (DATA_DIR is 0700)::

    DATA_DIR/registry.toml      settings (never a secret; may name the passphrase variable)
    DATA_DIR/registry.db        SQLite store (WAL: also registry.db-wal, registry.db-shm)
    DATA_DIR/ca/ca.key          federation root CA private key (0600, encrypted if a passphrase)
    DATA_DIR/ca/ca.pem          federation root CA certificate (the trust list entry)
    DATA_DIR/conf-signing.key   configuration-signing private key (0600)
    DATA_DIR/anchor.pem         configuration-signing certificate, issued by the CA with
                                profile "config": the anchor handed to gateways out of band
    DATA_DIR/witness.key        the witness's Ed25519 key (0600): cosigns gateways'
                                checkpoints; its public key is in the global configuration
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from zhol.core.errors import Hop, ZholError
from zhol.registry.settings import SETTINGS_FILE, RegistrySettings, settings_toml
from zhol.registry.store import DB_FILE, Store
from zhol.security.ca import CertificateAuthority, create_csr, create_root_ca, issue_certificate
from zhol.security.keys import PrivateKey, generate_private_key
from zhol.security.keystore import (
    read_certificate,
    read_private_key,
    write_certificate,
    write_private_key,
    write_public_file,
)
from zhol.security.validation import cert_sha256

ANCHOR_VALIDITY_DAYS = 3650


@dataclass(frozen=True, slots=True)
class RegistryPaths:
    root: Path

    @property
    def settings(self) -> Path:
        return self.root / SETTINGS_FILE

    @property
    def db(self) -> Path:
        return self.root / DB_FILE

    @property
    def ca_key(self) -> Path:
        return self.root / "ca" / "ca.key"

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca" / "ca.pem"

    @property
    def conf_key(self) -> Path:
        return self.root / "conf-signing.key"

    @property
    def anchor(self) -> Path:
        return self.root / "anchor.pem"

    @property
    def witness_key(self) -> Path:
        return self.root / "witness.key"


@dataclass(frozen=True)
class RegistryKeys:
    """The CA and the configuration-signing key with its certificate (the anchor)."""

    ca: CertificateAuthority
    conf_key: PrivateKey
    anchor_der: bytes
    # The witness's key; None for a registry directory made before the witness existed
    # (serve creates it: ensure_witness_key).
    witness_key: ed25519.Ed25519PrivateKey | None = None

    @property
    def ca_cert_der(self) -> bytes:
        return self.ca.cert.public_bytes(serialization.Encoding.DER)

    @property
    def anchor_sha256(self) -> bytes:
        return cert_sha256(self.anchor_der)


def is_initialised(data_dir: Path) -> bool:
    """True once init_registry completed in data_dir (registry.toml is written last)."""
    paths = RegistryPaths(Path(data_dir))
    return all(
        p.exists()
        for p in (
            paths.settings,
            paths.db,
            paths.ca_key,
            paths.ca_cert,
            paths.conf_key,
            paths.anchor,
        )
    )


def require_initialised(data_dir: Path) -> RegistryPaths:
    """The paths of an initialised registry, or ZholError NotConfigured."""
    if not is_initialised(data_dir):
        raise ZholError(
            "NotConfigured",
            f"{data_dir} is not an initialised registry (run: zhol registry init --dir ...)",
            hop=Hop.REGISTRY,
        )
    return RegistryPaths(Path(data_dir))


def init_registry(
    data_dir: Path,
    instance: str = "KZ",
    auto_approve: bool = False,
    now: dt.datetime | None = None,
    passphrase: bytes | None = None,
    *,
    passphrase_env: str = "",
) -> RegistryPaths:
    """Create a registry in data_dir: CA, configuration-signing key and anchor, store, settings.

    Idempotent: on an initialised directory it changes nothing and returns. An
    interrupted earlier run is resumed (existing keys are kept, missing files made).
    ``passphrase`` encrypts both private keys; ``passphrase_env`` is the name of the
    environment variable ``serve`` will read it from (only the name is written).
    """
    data_dir = Path(data_dir)
    paths = RegistryPaths(data_dir)
    if paths.settings.exists():
        return paths
    # Validates instance and passphrase_env before anything is created.
    settings = RegistrySettings(
        data_dir=data_dir,
        instance=instance,
        auto_approve=auto_approve,
        key_passphrase_env=passphrase_env,
    )
    now = now or dt.datetime.now(dt.UTC)
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)

    ca_key = _load_or_create_key(paths.ca_key, passphrase)
    if paths.ca_cert.exists():
        ca_cert = read_certificate(paths.ca_cert)
        _require_same_key(ca_cert, ca_key, paths.ca_cert)
    else:
        ca_cert = create_root_ca(ca_key, f"Zhol {instance} Root CA", now)
        write_certificate(paths.ca_cert, ca_cert)
    ca = CertificateAuthority(ca_key, ca_cert)

    conf_key = _load_or_create_key(paths.conf_key, passphrase)
    if paths.anchor.exists():
        _require_same_key(read_certificate(paths.anchor), conf_key, paths.anchor)
    else:
        anchor = issue_certificate(
            ca, create_csr(conf_key, instance), "config", instance, now, ANCHOR_VALIDITY_DAYS
        )
        write_certificate(paths.anchor, anchor)

    ensure_witness_key(paths, passphrase)
    Store.open(paths.db)
    os.chmod(paths.db, 0o600)
    write_public_file(paths.settings, settings_toml(settings).encode("utf-8"))
    return paths


def load_keys(paths: RegistryPaths, passphrase: bytes | None = None) -> RegistryKeys:
    """Read the CA and configuration-signing keys and certificates.

    Raises ValueError (wrong passphrase, mismatched files), PermissionError (a key
    readable by others) or FileNotFoundError.
    """
    ca_key = read_private_key(paths.ca_key, passphrase)
    ca_cert = read_certificate(paths.ca_cert)
    _require_same_key(ca_cert, ca_key, paths.ca_cert)
    conf_key = read_private_key(paths.conf_key, passphrase)
    anchor = read_certificate(paths.anchor)
    _require_same_key(anchor, conf_key, paths.anchor)
    witness_key = None
    if paths.witness_key.exists():
        witness_key = _require_ed25519(read_private_key(paths.witness_key, passphrase))
    return RegistryKeys(
        ca=CertificateAuthority(ca_key, ca_cert),
        conf_key=conf_key,
        anchor_der=anchor.public_bytes(serialization.Encoding.DER),
        witness_key=witness_key,
    )


def ensure_witness_key(
    paths: RegistryPaths, passphrase: bytes | None = None
) -> ed25519.Ed25519PrivateKey:
    """The witness's Ed25519 key, created (0600, encrypted like the others) if missing."""
    if paths.witness_key.exists():
        return _require_ed25519(read_private_key(paths.witness_key, passphrase))
    key = ed25519.Ed25519PrivateKey.generate()
    write_private_key(paths.witness_key, key, passphrase)
    return key


def _require_ed25519(key: PrivateKey) -> ed25519.Ed25519PrivateKey:
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ValueError("the witness key is not an Ed25519 key")
    return key


def _load_or_create_key(path: Path, passphrase: bytes | None) -> PrivateKey:
    if path.exists():
        return read_private_key(path, passphrase)
    key = generate_private_key("ec-p256")
    write_private_key(path, key, passphrase)
    return key


def _require_same_key(cert: x509.Certificate, key: PrivateKey, where: Path) -> None:
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
        raise ValueError(f"{where} does not belong to its private key")
