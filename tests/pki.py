"""Test certificate authorities and certificates, made with the real security/ca.py."""

from __future__ import annotations

import datetime as dt

from cryptography.hazmat.primitives.serialization import Encoding

from zhol.security.ca import (
    CertificateAuthority,
    CertProfile,
    create_csr,
    create_root_ca,
    issue_certificate,
)
from zhol.security.keys import PrivateKey, generate_private_key


def new_ca(common_name: str, now: dt.datetime, validity_days: int = 3650) -> CertificateAuthority:
    """A fresh root CA (its own new key) valid from ``now``."""
    key = generate_private_key()
    return CertificateAuthority(key, create_root_ca(key, common_name, now, validity_days))


def issue_der(
    ca: CertificateAuthority,
    key: PrivateKey,
    profile: CertProfile,
    identity: str,
    now: dt.datetime,
    validity_days: int = 365,
) -> bytes:
    """A certificate of ``profile`` for ``key`` (proven by its CSR), DER-encoded."""
    cert = issue_certificate(ca, create_csr(key, identity), profile, identity, now, validity_days)
    return cert.public_bytes(Encoding.DER)
