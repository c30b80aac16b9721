"""A gateway's log key: the dedicated Ed25519 key that signs its checkpoints.

Checkpoints are C2SP signed notes, which standard verifiers check with a raw
32-byte Ed25519 public key; so the log key is Ed25519 and travels raw, never as a
certificate. The registry accepts a log key only with a proof of possession: the
key's own signature over PAE(LOG_KEY_TYPE, gateway id, public key), so a gateway
cannot register a key it does not hold, and a proof made for one gateway is
worthless for another. Pure functions: bytes in, values out.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId
from zhol.security.sealing import LOG_KEY_TYPE, pae

LOG_PUBLIC_KEY_BYTES = 32
LOG_KEY_PROOF_BYTES = 64

_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def log_public_key_bytes(key: ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey) -> bytes:
    """The raw 32-byte public key, as registered and published."""
    public = key.public_key() if isinstance(key, ed25519.Ed25519PrivateKey) else key
    return public.public_bytes(*_RAW)


def log_key_proof_bytes(gateway: GatewayId, public_key: bytes) -> bytes:
    """What a proof of possession signs."""
    return pae(LOG_KEY_TYPE, str(gateway).encode("utf-8"), public_key)


def prove_log_key(key: ed25519.Ed25519PrivateKey, gateway: GatewayId) -> tuple[bytes, bytes]:
    """(raw public key, proof of possession) for a registration naming ``gateway``."""
    public = log_public_key_bytes(key)
    return public, key.sign(log_key_proof_bytes(gateway, public))


def verify_log_key_proof(gateway: GatewayId, public_key: bytes, proof: bytes) -> None:
    """Raise unless ``proof`` shows possession of ``public_key`` for ``gateway``.

    InvalidRequest: not a 32-byte Ed25519 key; MissingSignature: no proof;
    InvalidSignature: a proof that does not verify (another key, another gateway).
    """
    if len(public_key) != LOG_PUBLIC_KEY_BYTES:
        raise ZholError(
            "InvalidRequest", f"a log public key is {LOG_PUBLIC_KEY_BYTES} bytes of Ed25519"
        )
    if not proof:
        raise ZholError("MissingSignature", "the log key comes without its proof of possession")
    try:
        key = ed25519.Ed25519PublicKey.from_public_bytes(public_key)
        key.verify(proof, log_key_proof_bytes(gateway, public_key))
    except (InvalidSignature, ValueError):
        raise ZholError("InvalidSignature", "the log key's proof of possession fails") from None


def log_key_fingerprint(public_key: bytes) -> str:
    """A short, printable identity of a log key (for operators): SHA-256, hex, 16 bytes."""
    return hashlib.sha256(public_key).hexdigest()[:32]
