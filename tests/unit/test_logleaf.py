"""The canonical Merkle leaf of a message-log record (security/logleaf.py)."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from zhol.security.logleaf import LeafError, LogLeaf, decode, encode

LEAF = LogLeaf.of(
    kind="response",
    direction="in",
    logged_at_ms=1_790_000_000_123,
    peer="KZ/GOV/MJ/gw1",
    header=b"\x0a\x24header bytes",
    body=b"body bytes",
    signature=b"\x30\x45signature",
    signer_cert_sha256=hashlib.sha256(b"certificate").digest(),
)

# A known answer, so another implementation can check its encoding byte for byte.
LEAF_HEX = (
    "7a686f6c2d6c6f672d6c6561662f7631"  # magic "zhol-log-leaf/v1"
    "0201"  # response, in
    "000001a0c4506c7b"  # logged_at_ms
    "000d"
    + b"KZ/GOV/MJ/gw1".hex()  # peer
    + "00000e"
    + b"\x0a\x24header bytes".hex()  # header
    + hashlib.sha256(b"body bytes").hexdigest()
    + "000b"
    + b"\x30\x45signature".hex()
    + hashlib.sha256(b"certificate").hexdigest()
)


def test_the_encoding_is_the_documented_layout() -> None:
    assert encode(LEAF).hex() == LEAF_HEX
    assert decode(bytes.fromhex(LEAF_HEX)) == LEAF


def test_every_kind_and_direction_round_trips() -> None:
    for kind in ("request", "response", "event"):
        for direction in ("in", "out"):
            leaf = dataclasses.replace(LEAF, kind=kind, direction=direction, peer="")
            assert decode(encode(leaf)) == leaf


def test_a_leaf_holds_the_body_only_as_its_digest() -> None:
    assert LEAF.body_sha256 == hashlib.sha256(b"body bytes").digest()
    assert b"body bytes" not in encode(LEAF)


@pytest.mark.parametrize("cut", [1, 16, 17, 30, 60, 100])
def test_truncated_data_is_refused(cut: int) -> None:
    data = encode(LEAF)
    with pytest.raises(LeafError):
        decode(data[: len(data) - cut])


def test_trailing_bytes_wrong_magic_and_unknown_codes_are_refused() -> None:
    data = encode(LEAF)
    for bad in (
        data + b"\x00",
        b"zhol-log-leaf/v2" + data[16:],
        data[:16] + b"\x04" + data[17:],  # no kind 4
        data[:17] + b"\x03" + data[18:],  # no direction 3
        data[:26] + b"\x00\x01\xff" + data[28 + 13 :],  # a peer that is not UTF-8
    ):
        with pytest.raises(LeafError):
            decode(bad)


def test_values_without_an_encoding_are_refused() -> None:
    for bad in (
        dataclasses.replace(LEAF, kind="ack"),
        dataclasses.replace(LEAF, direction="both"),
        dataclasses.replace(LEAF, body_sha256=b"short"),
        dataclasses.replace(LEAF, logged_at_ms=-1),
        dataclasses.replace(LEAF, signature=b"x" * 70_000),
    ):
        with pytest.raises(LeafError):
            encode(bad)
