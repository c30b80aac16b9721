"""Sealing and verifying messages (docs/protocol.md, 'The signed message' and 'What is
signed'; byte for byte in tests/vectors/README.md).

The signed unit is never a re-serialised protobuf: it is a domain-separated
pre-authentication encoding (DSSE style) of the exact header bytes and the
SHA-256 of the exact body bytes. Pure functions: bytes in, values out.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from zhol.core.errors import ZholError

REQUEST_TYPE = "application/vnd.zhol.request+proto"
RESPONSE_TYPE = "application/vnd.zhol.response+proto"
EVENT_TYPE = "application/vnd.zhol.event+proto"
GLOBALCONF_TYPE = "application/vnd.zhol.globalconf+proto"
CHECKPOINT_TYPE = "application/vnd.zhol.checkpoint"
# A gateway's signed SUBSYSTEM registration: never valid as a message seal, nor vice versa.
REGISTRATION_TYPE = "application/vnd.zhol.registration+proto"
# A gateway's signed RENEWAL request (new CSRs): its own domain, so a signed SUBSYSTEM
# body can never be replayed as a renewal, nor the reverse.
RENEWAL_TYPE = "application/vnd.zhol.renewal+proto"
# A log key's proof of possession (security/logkey.py): the key signs its gateway's id
# and itself, in a domain no message, registration or checkpoint signature shares.
LOG_KEY_TYPE = "application/vnd.zhol.logkey"

_PAE_PREFIX = b"ZholPAEv1"
# The signature algorithm object is immutable: build it once, not per message.
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


def pae(payload_type: str, *parts: bytes) -> bytes:
    """Pre-authentication encoding: prefix, then type and each part with an 8-byte length.

    Lengths make the encoding injective, and the type separates domains: a signed
    request can never be replayed as a response or a configuration.
    """
    type_bytes = payload_type.encode("ascii")
    out = [_PAE_PREFIX, len(parts).to_bytes(8, "big"), len(type_bytes).to_bytes(8, "big")]
    out.append(type_bytes)
    for part in parts:
        out.append(len(part).to_bytes(8, "big"))
        out.append(part)
    return b"".join(out)


def message_signed_bytes(payload_type: str, header: bytes, body: bytes) -> bytes:
    """PAE(type, header_bytes, SHA-256(body)): exactly what a message signature covers."""
    return pae(payload_type, header, hashlib.sha256(body).digest())


def sign_bytes(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    return key.sign(data, _ECDSA_SHA256)


def verify_bytes(
    public_key: CertificatePublicKeyTypes, data: bytes, signature: bytes
) -> None:
    """Raise ZholError(InvalidSignature) unless signature is valid for data (and the key
    one sealing uses: any other key of a certificate is refused the same way)."""
    if not signature:
        raise ZholError("MissingSignature")
    try:
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, data)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, _ECDSA_SHA256)
        else:
            raise ZholError("InvalidSignature", "unsupported signer key type")
    except InvalidSignature:
        raise ZholError("InvalidSignature") from None


def cert_sha256(cert_der: bytes) -> bytes:
    """The certificate's identity everywhere in Zhol: SHA-256 of its DER encoding.

    Defined here, where a signer's certificate is hashed, and used everywhere else as
    ``zhol.security.validation.cert_sha256`` (this module is below validation's imports).
    """
    return hashlib.sha256(cert_der).digest()


@dataclass(frozen=True, slots=True)
class Signer:
    """A private key with the DER certificate that vouches for it."""

    key: PrivateKey
    cert_der: bytes
    # Travels with every sealed message: hashed once here, not per message.
    cert_sha256: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cert_sha256", cert_sha256(self.cert_der))


@dataclass(frozen=True, slots=True)
class Seal:
    header: bytes
    body: bytes
    signature: bytes
    signer_cert_sha256: bytes
    signer_cert_der: bytes


def seal(signer: Signer, payload_type: str, header: bytes, body: bytes) -> tuple[Seal, bytes]:
    """Sign a message; returns the seal and the SHA-256 of its signed bytes."""
    signed = message_signed_bytes(payload_type, header, body)
    sealed = Seal(
        header=header,
        body=body,
        signature=sign_bytes(signer.key, signed),
        signer_cert_sha256=signer.cert_sha256,
        signer_cert_der=signer.cert_der,
    )
    return sealed, hashlib.sha256(signed).digest()


def verify_seal(sealed: Seal, payload_type: str, public_key: PublicKey) -> bytes:
    """Verify a seal with an already-validated signer key; return its signed-bytes digest.

    Raises MissingSignature or InvalidSignature. The caller parses the header
    only after this returns.
    """
    signed = message_signed_bytes(payload_type, sealed.header, sealed.body)
    verify_bytes(public_key, signed, sealed.signature)
    return hashlib.sha256(signed).digest()
