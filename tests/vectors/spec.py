"""The signed-bytes encoding written again from README.md alone, independent of
security/sealing.py: what another implementation does, and what the conformance case
``peer.sealed-per-vectors`` seals with. Checked against the vectors in test_vectors.py."""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
PREFIX = b"ZholPAEv1"


def load(name: str) -> dict[str, Any]:
    """One vector file of this folder, e.g. load("pae.json")."""
    return json.loads((HERE / name).read_text())  # type: ignore[no-any-return]


def spec_pae(payload_type: str, parts: Sequence[bytes]) -> bytes:
    """"ZholPAEv1" || u64be(len(parts)) || u64be(len(type)) || type || (u64be(len(p)) || p)*"""
    encoded = payload_type.encode("ascii")
    out = PREFIX + struct.pack(">QQ", len(parts), len(encoded)) + encoded
    for part in parts:
        out += struct.pack(">Q", len(part)) + part
    return out


def spec_signed_bytes(payload_type: str, header: bytes, body: bytes) -> bytes:
    """What a message signature covers: PAE(type, header bytes, SHA-256(body bytes))."""
    return spec_pae(payload_type, (header, hashlib.sha256(body).digest()))
