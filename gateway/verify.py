"""Opening a sealed message: certificate, signature, then (only then) the header."""

from __future__ import annotations

import datetime as dt
import hmac

from google.protobuf.message import DecodeError

from zhol.bus.v1 import bus_pb2
from zhol.core.errors import ZholError
from zhol.core.ids import MemberId
from zhol.gateway.confsource import TrustedConf
from zhol.security.sealing import Seal, verify_seal
from zhol.security.validation import cert_sha256


def open_verified(
    seal: Seal, payload_type: str, trusted: TrustedConf, now: dt.datetime
) -> tuple[MemberId, bus_pb2.MessageHeader, bytes]:
    """Verify the signer certificate and the signature; return signer, header and digest.

    Raises MissingSignature, InvalidCertificate, RevokedCertificate,
    InvalidSignature or InvalidMessage. The header is parsed only after the
    signature over its exact bytes has verified.
    """
    if not seal.signature:
        raise ZholError("MissingSignature")
    if not seal.signer_cert_der:
        raise ZholError("InvalidCertificate", "no signer certificate")
    if seal.signer_cert_sha256 and not hmac.compare_digest(
        cert_sha256(seal.signer_cert_der), seal.signer_cert_sha256
    ):
        raise ZholError("InvalidCertificate", "signer certificate hash mismatch")
    member, public_key = trusted.validator.verify_signing_cert(seal.signer_cert_der, now)
    digest = verify_seal(seal, payload_type, public_key)
    try:
        header = bus_pb2.MessageHeader.FromString(seal.header)
    except DecodeError:
        raise ZholError("InvalidMessage", "header is not a MessageHeader") from None
    if header.protocol_version != 1:
        raise ZholError("InvalidMessage", "unsupported protocol version")
    return member, header, digest
