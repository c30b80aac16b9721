"""The known-answer vectors in tests/vectors/ against the code: a change to the signed
encoding (PAE, the body digest, the response binding) fails here."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.vectors import generate
from tests.vectors.spec import load, spec_pae, spec_signed_bytes
from zhol.bus.v1 import bus_pb2
from zhol.core.errors import ZholError
from zhol.security.sealing import (
    REQUEST_TYPE,
    RESPONSE_TYPE,
    Seal,
    Signer,
    message_signed_bytes,
    pae,
    seal,
    verify_bytes,
    verify_seal,
)

PAE = load("pae.json")
REQUEST = load("request_seal.json")
RESPONSE = load("response_binding.json")
SEALS = {"request": REQUEST, "response": RESPONSE}


def h(text: str) -> bytes:
    return bytes.fromhex(text)


@pytest.mark.parametrize("case", PAE["cases"], ids=[c["name"] for c in PAE["cases"]])
def test_pae_matches_the_vector(case: dict[str, Any]) -> None:
    parts = [h(p) for p in case["parts_hex"]]
    assert pae(case["payload_type"], *parts) == h(case["pae_hex"])
    assert spec_pae(case["payload_type"], parts) == h(case["pae_hex"])  # the README's words


def test_the_pae_vectors_include_empty_inputs_and_are_distinct() -> None:
    encodings = [c["pae_hex"] for c in PAE["cases"]]
    assert len(set(encodings)) == len(encodings)
    assert any(c["payload_type"] == "" and c["parts_hex"] == [] for c in PAE["cases"])
    assert any("" in c["parts_hex"] for c in PAE["cases"])


@pytest.mark.parametrize("kind", SEALS)
def test_the_signed_bytes_and_digests_match(kind: str) -> None:
    v = SEALS[kind]
    header, body = h(v["header_hex"]), h(v["body_hex"])
    assert hashlib.sha256(body).digest() == h(v["body_sha256_hex"])
    signed = message_signed_bytes(v["payload_type"], header, body)
    assert signed == h(v["signed_bytes_hex"])
    assert spec_signed_bytes(v["payload_type"], header, body) == signed
    assert hashlib.sha256(signed).digest() == h(v["signed_bytes_sha256_hex"])


@pytest.mark.parametrize("kind", SEALS)
def test_the_recorded_signature_verifies_with_the_given_key(kind: str) -> None:
    v = SEALS[kind]
    public = generate.public_key_from(v["key"])
    derived = ec.derive_private_key(int(v["key"]["private_scalar_hex"], 16), ec.SECP256R1())
    assert derived.public_key() == public
    sealed = Seal(h(v["header_hex"]), h(v["body_hex"]), h(v["signature_der_hex"]), b"", b"")
    assert verify_seal(sealed, v["payload_type"], public) == h(v["signed_bytes_sha256_hex"])
    verify_bytes(public, h(v["signed_bytes_hex"]), h(v["signature_der_hex"]))
    # ... and nothing else: another payload type, or one flipped bit, does not verify.
    other = RESPONSE_TYPE if v["payload_type"] == REQUEST_TYPE else REQUEST_TYPE
    with pytest.raises(ZholError):
        verify_seal(sealed, other, public)
    flipped = h(v["signature_der_hex"])[:-1] + bytes([h(v["signature_der_hex"])[-1] ^ 1])
    with pytest.raises(ZholError):
        verify_bytes(public, h(v["signed_bytes_hex"]), flipped)


def test_sealing_with_the_vector_key_gives_the_vector_digest() -> None:
    """seal()'s digest is what a response must carry: the SHA-256 of the signed bytes."""
    key = ec.derive_private_key(int(REQUEST["key"]["private_scalar_hex"], 16), ec.SECP256R1())
    sealed, digest = seal(
        Signer(key, b"cert"), REQUEST_TYPE, h(REQUEST["header_hex"]), h(REQUEST["body_hex"])
    )
    assert digest == h(REQUEST["signed_bytes_sha256_hex"])
    assert verify_seal(sealed, REQUEST_TYPE, key.public_key()) == digest


def test_the_response_is_bound_to_the_request() -> None:
    request_digest = h(REQUEST["signed_bytes_sha256_hex"])
    assert h(RESPONSE["request_signed_bytes_sha256_hex"]) == request_digest
    header = bus_pb2.MessageHeader.FromString(h(RESPONSE["header_hex"]))
    assert header.kind == bus_pb2.MESSAGE_KIND_RESPONSE
    assert header.request_digest == request_digest
    request = bus_pb2.MessageHeader.FromString(h(REQUEST["header_hex"]))
    assert header.message_id == request.message_id and header.client == request.client
    number = bus_pb2.MessageHeader.DESCRIPTOR.fields_by_name["request_digest"].number
    assert RESPONSE["request_digest_field_number"] == number


def test_the_generator_reproduces_the_stored_files() -> None:
    for path, content in generate.build().items():
        assert path.read_text() == generate.render(content), f"{path.name} is stale"
