"""Private keys: generation and PEM encoding (docs/operators.md, 'Setting up a federation').

Keys are generated where they are used (a gateway never receives a private key
from anyone) and are encrypted at rest when the operator sets a passphrase.
Only the key types that sealing can use are accepted: ECDSA (P-256 by default)
and Ed25519.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from zhol.security.sealing import PrivateKey, PublicKey

__all__ = [
    "ALGORITHMS",
    "PrivateKey",
    "PublicKey",
    "generate_private_key",
    "load_private_key_pem",
    "private_key_to_pem",
    "public_key_to_pem",
    "require_supported_public_key",
]

ALGORITHMS = ("ec-p256", "ed25519")

# Curves whose signatures the certificate verifier and sealing both accept.
_EC_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)


def generate_private_key(algorithm: str = "ec-p256") -> PrivateKey:
    """A fresh signing key; P-256 is the federation default, Ed25519 the compact option."""
    if algorithm == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unsupported key algorithm {algorithm!r}; expected one of {ALGORITHMS}")


def private_key_to_pem(key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    """PKCS#8 PEM, encrypted with the best available scheme when a passphrase is given."""
    _require_supported_private_key(key)
    encryption: serialization.KeySerializationEncryption
    if passphrase:
        encryption = serialization.BestAvailableEncryption(passphrase)
    else:
        encryption = serialization.NoEncryption()
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=encryption,
    )


def load_private_key_pem(data: bytes, passphrase: bytes | None = None) -> PrivateKey:
    """Parse a PEM private key; raise ValueError on a wrong or missing passphrase or bad type.

    cryptography reports a missing/unexpected passphrase as TypeError; it is folded
    into ValueError here so callers have one failure to handle.
    """
    try:
        key = serialization.load_pem_private_key(data, password=passphrase or None)
    except TypeError as exc:
        raise ValueError(f"cannot load private key: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"cannot load private key (wrong passphrase?): {exc}") from None
    return _require_supported_private_key(key)


def public_key_to_pem(key: PublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM, for display and out-of-band comparison."""
    return key.public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )


def _require_supported_private_key(key: object) -> PrivateKey:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, _EC_CURVES):
        return key
    raise ValueError(f"unsupported private key type {type(key).__name__}")


def require_supported_public_key(key: object) -> PublicKey:
    """Return key if sealing can verify with it, else raise ValueError."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, _EC_CURVES):
        return key
    raise ValueError(f"unsupported public key type {type(key).__name__}")
