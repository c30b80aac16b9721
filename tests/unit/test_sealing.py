"""Sealing: every tampered variant of a sealed message fails verification."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from zhol.core.errors import ZholError
from zhol.security.keys import generate_private_key
from zhol.security.sealing import (
    EVENT_TYPE,
    REQUEST_TYPE,
    RESPONSE_TYPE,
    PublicKey,
    Seal,
    Signer,
    message_signed_bytes,
    pae,
    seal,
    verify_seal,
)

HEADER = b"\x0a\x24header-bytes-as-they-travel"
BODY = b"\x08\x96\x01opaque protobuf body"


@pytest.fixture(params=["ec-p256", "ed25519"])
def signer(request: pytest.FixtureRequest) -> Signer:
    return Signer(generate_private_key(request.param), b"certificate-der")


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def assert_code(sealed: Seal, payload_type: str, public_key: PublicKey, code: str) -> None:
    with pytest.raises(ZholError) as excinfo:
        verify_seal(sealed, payload_type, public_key)
    assert excinfo.value.code.name == code


def test_round_trip(signer: Signer) -> None:
    sealed, digest = seal(signer, REQUEST_TYPE, HEADER, BODY)
    assert verify_seal(sealed, REQUEST_TYPE, signer.key.public_key()) == digest
    assert digest == hashlib.sha256(message_signed_bytes(REQUEST_TYPE, HEADER, BODY)).digest()
    assert sealed.signer_cert_sha256 == hashlib.sha256(b"certificate-der").digest()


@pytest.mark.parametrize("field", ["header", "body", "signature"])
@pytest.mark.parametrize("position", [0, -1])
def test_bit_flip_fails(signer: Signer, field: str, position: int) -> None:
    sealed, _ = seal(signer, REQUEST_TYPE, HEADER, BODY)
    value = getattr(sealed, field)
    tampered = dataclasses.replace(sealed, **{field: flip(value, position % len(value))})
    assert_code(tampered, REQUEST_TYPE, signer.key.public_key(), "InvalidSignature")


@pytest.mark.parametrize("other_type", [RESPONSE_TYPE, EVENT_TYPE])
def test_payload_type_is_bound(signer: Signer, other_type: str) -> None:
    sealed, _ = seal(signer, REQUEST_TYPE, HEADER, BODY)
    assert_code(sealed, other_type, signer.key.public_key(), "InvalidSignature")


def test_header_body_boundary_is_bound(signer: Signer) -> None:
    sealed, _ = seal(signer, REQUEST_TYPE, HEADER, BODY)
    moved = dataclasses.replace(sealed, header=HEADER + BODY[:1], body=BODY[1:])
    assert_code(moved, REQUEST_TYPE, signer.key.public_key(), "InvalidSignature")


def test_truncated_signature_fails(signer: Signer) -> None:
    sealed, _ = seal(signer, REQUEST_TYPE, HEADER, BODY)
    for cut in (1, len(sealed.signature) // 2):
        truncated = dataclasses.replace(sealed, signature=sealed.signature[:-cut])
        assert_code(truncated, REQUEST_TYPE, signer.key.public_key(), "InvalidSignature")


def test_signature_by_another_key_fails(signer: Signer) -> None:
    sealed, _ = seal(signer, REQUEST_TYPE, HEADER, BODY)
    same_kind = "ed25519" if isinstance(signer.key, ed25519.Ed25519PrivateKey) else "ec-p256"
    other = generate_private_key(same_kind)
    assert_code(sealed, REQUEST_TYPE, other.public_key(), "InvalidSignature")


def test_key_of_other_algorithm_fails(signer: Signer) -> None:
    sealed, _ = seal(signer, REQUEST_TYPE, HEADER, BODY)
    for algorithm in ("ec-p256", "ed25519"):
        other = generate_private_key(algorithm)
        assert_code(sealed, REQUEST_TYPE, other.public_key(), "InvalidSignature")


def test_empty_signature_is_missing(signer: Signer) -> None:
    sealed, _ = seal(signer, REQUEST_TYPE, HEADER, BODY)
    unsigned = dataclasses.replace(sealed, signature=b"")
    assert_code(unsigned, REQUEST_TYPE, signer.key.public_key(), "MissingSignature")


def test_signer_hashes_its_certificate_once(
    signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The certificate is hashed when the Signer is made, not again for each message."""
    hashed: list[bytes] = []
    real_sha256 = hashlib.sha256

    def counting_sha256(data: bytes = b"", **kwargs: bool) -> hashlib._Hash:
        hashed.append(bytes(data))
        return real_sha256(data, **kwargs)

    monkeypatch.setattr(hashlib, "sha256", counting_sha256)
    made = Signer(signer.key, b"another-certificate-der")
    assert hashed.count(b"another-certificate-der") == 1
    for body in (b"one", b"two", b"three"):
        sealed, _ = seal(made, REQUEST_TYPE, b"header", body)
        assert sealed.signer_cert_sha256 == real_sha256(b"another-certificate-der").digest()
    assert hashed.count(b"another-certificate-der") == 1
    assert b"three" in hashed  # the counter does see what sealing hashes
    assert Signer(signer.key, signer.cert_der) == signer


def test_pae_is_injective() -> None:
    assert pae("t", b"ab", b"c") != pae("t", b"a", b"bc")
    assert pae("t", b"ab") != pae("t", b"a", b"b")
    assert pae("t", b"", b"x") != pae("t", b"x", b"")
    assert pae("t", b"x") != pae("t", b"x", b"")
    assert pae("ab", b"c") != pae("a", b"bc")
    assert pae(REQUEST_TYPE, b"h", b"d") != pae(RESPONSE_TYPE, b"h", b"d")
    assert pae("t", b"a", b"b") == pae("t", b"a", b"b")
