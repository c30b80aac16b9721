"""The registry's frozen settings: DATA_DIR/registry.toml, then ZHOL_REGISTRY_* variables.

The key passphrase is never written to the TOML file: the file may only name the
environment variable that holds it (``key_passphrase_env``), and
``read_key_passphrase`` reads it. This module and core.settings are the only
places that look at the environment.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from zhol.core.errors import Hop, ZholError
from zhol.core.settings import dump_toml, load_settings
from zhol.registry.client import MAX_CONF_BYTES
from zhol.registry.registration import MAX_CONTRACT_BYTES, MAX_CONTRACTS_TOTAL_BYTES
from zhol.security.globalconf import MAX_CLOCK_SKEW_S, MAX_MESSAGE_BYTES, TimestampAuthority
from zhol.security.timestamp import TimestampError, check_authority_certificate

SETTINGS_FILE = "registry.toml"
ENV_PREFIX = "ZHOL_REGISTRY_"

# The global configuration's other parts (gateways, certificates) need room beside the
# contracts within the MAX_CONF_BYTES a gateway reads.
MAX_CONTRACTS_LIMIT = MAX_CONF_BYTES - 16 * 1024 * 1024
_INSTANCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Fields that belong in registry.toml (data_dir is where the file lives; port_file and
# the passphrase itself are per run).
_PERSISTED = (
    "instance",
    "listen",
    "auto_approve",
    "refresh_interval_s",
    "validity_s",
    "clock_skew_s",
    "max_message_bytes",
    "cert_validity_days",
    "registration_skew_s",
    "key_passphrase_env",
    "timestamp_authorities",
    "max_contract_bytes",
    "max_contracts_total_bytes",
)


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    data_dir: Path
    instance: str = "KZ"
    listen: str = "127.0.0.1:0"
    # Approve every well-formed registration at once (demo); otherwise an operator decides.
    auto_approve: bool = False
    # Tunables published in the global configuration.
    refresh_interval_s: int = 60
    validity_s: int = 600
    clock_skew_s: int = 60
    max_message_bytes: int = 4194304
    # Validity of the authentication and signing certificates the CA issues.
    cert_validity_days: int = 365
    # How far a signed SUBSYSTEM request's issued-at may be from the registry's clock.
    registration_skew_s: int = 300
    # Where `serve` writes the bound port (the demo launcher reads it).
    port_file: Path | None = None
    # Name of the environment variable holding the key passphrase ("" = keys unencrypted).
    key_passphrase_env: str = ""
    # Approved RFC 3161 timestamping authorities, published in the global configuration
    # in this order: each "URL CERT_FILE", the certificate file (PEM, relative to the
    # data directory) holding the authority's certificate, then the CA that issued it
    # when that is not the federation CA. See load_timestamp_authorities.
    timestamp_authorities: tuple[str, ...] = ()
    # Bounds on service contracts (FileDescriptorSets): one service's, and all of them
    # together, which every global configuration carries (gateways read at most
    # MAX_CONF_BYTES of it, so the total stays well below that).
    max_contract_bytes: int = MAX_CONTRACT_BYTES
    max_contracts_total_bytes: int = MAX_CONTRACTS_TOTAL_BYTES

    def __post_init__(self) -> None:
        if not _INSTANCE.match(self.instance):
            raise ValueError(f"invalid instance code {self.instance!r}")
        if self.refresh_interval_s <= 0 or self.clock_skew_s < 0:
            raise ValueError("refresh_interval_s must be positive and clock_skew_s not negative")
        if self.validity_s <= self.refresh_interval_s:
            raise ValueError("validity_s must be longer than refresh_interval_s")
        if self.max_message_bytes <= 0 or self.cert_validity_days <= 0:
            raise ValueError("max_message_bytes and cert_validity_days must be positive")
        if self.clock_skew_s > MAX_CLOCK_SKEW_S:
            raise ValueError(f"clock_skew_s must be at most {MAX_CLOCK_SKEW_S}")
        if self.max_message_bytes > MAX_MESSAGE_BYTES:
            raise ValueError(f"max_message_bytes must be at most {MAX_MESSAGE_BYTES}")
        if not 0 < self.max_contract_bytes <= self.max_contracts_total_bytes:
            raise ValueError("max_contract_bytes must be positive and within the total")
        if self.max_contracts_total_bytes > MAX_CONTRACTS_LIMIT:
            raise ValueError(f"max_contracts_total_bytes must be at most {MAX_CONTRACTS_LIMIT}")
        if self.registration_skew_s <= 0:
            raise ValueError("registration_skew_s must be positive")
        if self.key_passphrase_env and not _ENV_NAME.match(self.key_passphrase_env):
            raise ValueError(f"invalid environment variable name {self.key_passphrase_env!r}")
        for entry in self.timestamp_authorities:
            _split_authority(entry)
        host, sep, port = self.listen.rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ValueError(f"listen must be host:port, got {self.listen!r}")

    @property
    def settings_path(self) -> Path:
        return self.data_dir / SETTINGS_FILE


def _split_authority(entry: str) -> tuple[str, str]:
    """An authority entry's URL and certificate file; ValueError if it is not one."""
    parts = entry.split()
    if len(parts) != 2 or not parts[0].startswith(("http://", "https://")):
        raise ValueError(f"a timestamp authority is 'http(s)://URL CERT_FILE', got {entry!r}")
    return parts[0], parts[1]


def load_timestamp_authorities(
    settings: RegistrySettings, federation_ca: x509.Certificate, now: dt.datetime
) -> tuple[TimestampAuthority, ...]:
    """The approved authorities with their certificates, each checked as a token's signer
    must be (critical EKU timeStamping only, issued by its CA, valid now).

    A certificate that is not fit is refused with InvalidCertificate and an unreadable
    file with NotConfigured: the registry does not start rather than publish it.
    """
    out: list[TimestampAuthority] = []
    for entry in settings.timestamp_authorities:
        url, name = _split_authority(entry)
        path = settings.data_dir / name
        try:
            certs = x509.load_pem_x509_certificates(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise ZholError(
                "NotConfigured", f"timestamp authority certificate {path}: {exc}", hop=Hop.REGISTRY
            ) from None
        cert, *chain = certs
        issuer = chain[0] if chain else federation_ca
        try:
            check_authority_certificate(cert, [issuer], now)
        except TimestampError as err:
            raise ZholError(
                "InvalidCertificate",
                f"timestamp authority {url}: {err.reason}: {err.detail}",
                hop=Hop.REGISTRY,
            ) from None
        ca_der = issuer.public_bytes(Encoding.DER) if chain else b""
        out.append(TimestampAuthority(url, cert.public_bytes(Encoding.DER), ca_der))
    return tuple(out)


def load_registry_settings(
    data_dir: Path,
    *,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> RegistrySettings:
    """Settings for the registry in data_dir: its TOML, then ZHOL_REGISTRY_*, then overrides."""
    data_dir = Path(data_dir)
    merged: dict[str, Any] = dict(overrides or {})
    merged["data_dir"] = data_dir
    return load_settings(
        RegistrySettings,
        data_dir / SETTINGS_FILE,
        prefix=ENV_PREFIX,
        overrides=merged,
        environ=environ,
    )


def read_key_passphrase(
    settings: RegistrySettings, environ: Mapping[str, str] | None = None
) -> bytes | None:
    """The key passphrase from the environment variable the settings name, if any."""
    return read_passphrase_env(settings.key_passphrase_env, environ)


def read_passphrase_env(name: str, environ: Mapping[str, str] | None = None) -> bytes | None:
    """The value of environment variable ``name`` as bytes, or None when unnamed or unset."""
    if not name:
        return None
    environ = os.environ if environ is None else environ
    value = environ.get(name)
    return value.encode("utf-8") if value else None


def settings_toml(settings: RegistrySettings) -> str:
    """registry.toml content for these settings (never a secret)."""
    return dump_toml({name: getattr(settings, name) for name in _PERSISTED})
