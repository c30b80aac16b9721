"""Re-derive the known-answer vectors in this folder (see README.md).

    .venv/bin/python -m tests.vectors.generate          # rewrite the JSON files
    .venv/bin/python -m tests.vectors.generate --check  # exit 1 if they differ

Everything but the ECDSA signatures is deterministic: fixed keys (derived from a
label), fixed header and body bytes, the PAE encoding and its digests. ECDSA
signatures are randomized, so a stored signature is kept as long as it still
verifies; only a vector whose signed bytes changed gets a new one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from zhol.bus.v1 import bus_pb2
from zhol.core.ids import GatewayId, ServiceId, SubsystemId
from zhol.security.globalconf import gateway_to_pb, service_to_pb, subsystem_to_pb
from zhol.security.sealing import (
    EVENT_TYPE,
    GLOBALCONF_TYPE,
    REQUEST_TYPE,
    RESPONSE_TYPE,
    message_signed_bytes,
    pae,
)

HERE = Path(__file__).parent
PAE_FILE = HERE / "pae.json"
REQUEST_FILE = HERE / "request_seal.json"
RESPONSE_FILE = HERE / "response_binding.json"

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
CONSUMER_KEY_LABEL = "zhol test vector key: consumer KZ/GOV/MLSPP"
PROVIDER_KEY_LABEL = "zhol test vector key: provider KZ/GOV/MJ"
ISSUED_AT_MS = 1_790_000_000_000
MESSAGE_ID = "01a0c450-6c00-7000-8000-000000000001"


def fixed_key(label: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 test key anyone can re-derive: scalar = SHA-256(label) mod n (never 0 here)."""
    scalar = int.from_bytes(hashlib.sha256(label.encode()).digest(), "big") % _P256_ORDER
    return ec.derive_private_key(scalar, ec.SECP256R1())


def key_json(label: str) -> dict[str, str]:
    key = fixed_key(label)
    public = key.public_key()
    return {
        "curve": "P-256",
        "derivation": f"scalar = SHA-256(UTF-8 label) mod n, label = {label!r}",
        "private_scalar_hex": f"{key.private_numbers().private_value:064x}",
        "public_key_sec1_uncompressed_hex": public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        ).hex(),
        "public_key_spki_pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode(),
    }


def public_key_from(vector_key: dict[str, str]) -> ec.EllipticCurvePublicKey:
    return ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(), bytes.fromhex(vector_key["public_key_sec1_uncompressed_hex"])
    )


PAE_CASES: tuple[tuple[str, str, tuple[bytes, ...]], ...] = (
    ("empty type, no parts", "", ()),
    ("empty type, one empty part", "", (b"",)),
    ("two empty parts", "t", (b"", b"")),
    ("ab|c", "t", (b"ab", b"c")),
    ("a|bc (must differ from ab|c)", "t", (b"a", b"bc")),
    ("request, empty header, SHA-256 of empty body", REQUEST_TYPE,
     (b"", hashlib.sha256(b"").digest())),
    ("response, short header and digest", RESPONSE_TYPE, (b"\x0a\x01x", bytes(32))),
    ("event", EVENT_TYPE, (b"header", hashlib.sha256(b"body").digest())),
    ("global configuration (one part)", GLOBALCONF_TYPE, (b"\x08\x01",)),
    ("binary part with every byte value", "t", (bytes(range(256)),)),
)


def pae_vectors() -> dict[str, Any]:
    return {
        "description": "PAE(type, parts...) as in security/sealing.py pae(); see README.md",
        "cases": [
            {
                "name": name,
                "payload_type": payload_type,
                "parts_hex": [p.hex() for p in parts],
                "pae_hex": pae(payload_type, *parts).hex(),
            }
            for name, payload_type, parts in PAE_CASES
        ],
    }


def _header(kind: int, issued_at_ms: int, sender: str, request_digest: bytes = b"") -> bytes:
    """A header's exact bytes (fixed once; a verifier never re-serialises)."""
    return bus_pb2.MessageHeader(
        message_id=MESSAGE_ID,
        protocol_version=1,
        kind=kind,  # type: ignore[arg-type]
        client=subsystem_to_pb(SubsystemId.parse("KZ/GOV/MLSPP/pension")),
        service=service_to_pb(
            ServiceId.parse("KZ/GOV/MJ/population/zhol.population.v1.PopulationRegistry/GetPerson")
        ),
        user_id="KZ:officer-7",
        purpose="pension case 17",
        data_subject="900101400013",
        issued_at_unix_ms=issued_at_ms,
        sender_gateway=gateway_to_pb(GatewayId.parse(sender)),
        request_digest=request_digest,
    ).SerializeToString()


def request_header() -> bytes:
    return _header(bus_pb2.MESSAGE_KIND_REQUEST, ISSUED_AT_MS, "KZ/GOV/MLSPP/gw1")


REQUEST_BODY = b"\x0a\x0c900101400013"  # GetPersonRequest{iin: "900101400013"}
RESPONSE_BODY = b"\x0a\x0c900101400013\x12\x04Asel"


def response_header(request_digest: bytes) -> bytes:
    return _header(
        bus_pb2.MESSAGE_KIND_RESPONSE, ISSUED_AT_MS + 25, "KZ/GOV/MJ/gw1",
        request_digest=request_digest,
    )


def _seal_vector(
    payload_type: str, header: bytes, body: bytes, label: str, old: dict[str, Any] | None
) -> dict[str, Any]:
    signed = message_signed_bytes(payload_type, header, body)
    key = fixed_key(label)
    signature = bytes.fromhex(old["signature_der_hex"]) if old else b""
    try:
        key.public_key().verify(signature, signed, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        signature = key.sign(signed, ec.ECDSA(hashes.SHA256()))
    return {
        "payload_type": payload_type,
        "key": key_json(label),
        "header_hex": header.hex(),
        "body_hex": body.hex(),
        "body_sha256_hex": hashlib.sha256(body).hexdigest(),
        "signed_bytes_hex": signed.hex(),
        "signed_bytes_sha256_hex": hashlib.sha256(signed).hexdigest(),
        "signature_algorithm": "ECDSA P-256 with SHA-256 over signed_bytes, DER signature",
        "signature_der_hex": signature.hex(),
    }


def request_vector(old: dict[str, Any] | None = None) -> dict[str, Any]:
    vector = _seal_vector(REQUEST_TYPE, request_header(), REQUEST_BODY, CONSUMER_KEY_LABEL, old)
    vector["description"] = "A request seal: header bytes and SHA-256(body) under PAE"
    return vector


def response_vector(
    request: dict[str, Any], old: dict[str, Any] | None = None
) -> dict[str, Any]:
    request_digest = bytes.fromhex(request["signed_bytes_sha256_hex"])
    header = response_header(request_digest)
    vector = _seal_vector(RESPONSE_TYPE, header, RESPONSE_BODY, PROVIDER_KEY_LABEL, old)
    vector["description"] = (
        "A response bound to request_seal.json: header field 10 (request_digest) holds "
        "SHA-256 of the request's signed bytes"
    )
    vector["request_signed_bytes_sha256_hex"] = request_digest.hex()
    vector["request_digest_field_number"] = 10
    return vector


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def build() -> dict[Path, dict[str, Any]]:
    """Every vector file's content, keeping stored signatures that still verify."""
    request = request_vector(_load(REQUEST_FILE))
    return {
        PAE_FILE: pae_vectors(),
        REQUEST_FILE: request,
        RESPONSE_FILE: response_vector(request, _load(RESPONSE_FILE)),
    }


def render(content: dict[str, Any]) -> str:
    return json.dumps(content, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file would change")
    args = parser.parse_args(argv)
    stale = []
    for path, content in build().items():
        text = render(content)
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path.name)
        if not args.check:
            path.write_text(text)
    if args.check and stale:
        print(f"stale vectors: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
