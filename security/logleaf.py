"""The Merkle leaf of a message-log record: one canonical encoding of what it asserts.

Leaf ``n`` of a gateway's log tree is the record with ``seq = n + 1``; its leaf hash is
SHA-256(0x00 || leaf data) (RFC 9162), the leaf data being the encoding below. It
holds everything the record asserts and nothing that can be derived from it:

- the exact signed header bytes: message id, kind, client, service, user, purpose,
  data subject and the sender's times are read from there, never from columns;
- the SHA-256 of the exact body bytes (the body itself stays in the log; a bundle
  carries it, and the digest binds it), the signature and the signer certificate's
  SHA-256;
- what only this gateway asserts: the record's kind and direction, when it logged
  it, and the peer gateway (empty for a request logged before it was sent).

The layout is in the presentation language of RFC 8446 section 3 (big-endian
integers; ``opaque x<a..b>`` is a length in the fewest bytes that hold ``b``, then
the bytes)::

    struct {
        opaque   magic[16] = "zhol-log-leaf/v1";
        uint8    kind;              /* 1 request, 2 response, 3 event */
        uint8    direction;         /* 1 in, 2 out */
        uint64   logged_at_ms;      /* Unix time, milliseconds */
        opaque   peer<0..2^16-1>;   /* UTF-8 gateway id, or empty */
        opaque   header<0..2^24-1>; /* the exact signed header bytes */
        opaque   body_sha256[32];
        opaque   signature<0..2^16-1>;
        opaque   signer_cert_sha256[32];
    } LogLeaf;

An encoding is canonical: ``decode`` refuses anything ``encode`` would not have
produced (unknown kind or direction, trailing bytes, a short field), so one record
has exactly one leaf. Pure functions over bytes.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

MAGIC = b"zhol-log-leaf/v1"
KINDS = {"request": 1, "response": 2, "event": 3}
DIRECTIONS = {"in": 1, "out": 2}
_KIND_NAMES = {v: k for k, v in KINDS.items()}
_DIRECTION_NAMES = {v: k for k, v in DIRECTIONS.items()}
_MAX_PEER = 2**16 - 1
_MAX_HEADER = 2**24 - 1
_MAX_SIGNATURE = 2**16 - 1


class LeafError(ValueError):
    """Bytes that are not the canonical encoding of a leaf, or a value that has none."""


@dataclass(frozen=True, slots=True)
class LogLeaf:
    kind: str  # "request" | "response" | "event"
    direction: str  # "in" | "out"
    logged_at_ms: int
    peer: str
    header: bytes
    body_sha256: bytes
    signature: bytes
    signer_cert_sha256: bytes

    @classmethod
    def of(
        cls,
        *,
        kind: str,
        direction: str,
        logged_at_ms: int,
        peer: str,
        header: bytes,
        body: bytes,
        signature: bytes,
        signer_cert_sha256: bytes,
    ) -> LogLeaf:
        """The leaf of a record, from its stored fields (the body is digested here)."""
        return cls(
            kind, direction, logged_at_ms, peer, header, hashlib.sha256(body).digest(),
            signature, signer_cert_sha256,
        )  # fmt: skip


def encode(leaf: LogLeaf) -> bytes:
    """The leaf data (hash it with ``zhol.security.merkle``'s leaf hash)."""
    if leaf.kind not in KINDS or leaf.direction not in DIRECTIONS:
        raise LeafError(f"no encoding for kind {leaf.kind!r} / direction {leaf.direction!r}")
    if not 0 <= leaf.logged_at_ms < 2**64:
        raise LeafError("logged_at_ms out of range")
    if len(leaf.body_sha256) != 32 or len(leaf.signer_cert_sha256) != 32:
        raise LeafError("a digest is not 32 bytes")
    peer = leaf.peer.encode("utf-8")
    if len(peer) > _MAX_PEER or len(leaf.header) > _MAX_HEADER:
        raise LeafError("peer or header too long")
    if len(leaf.signature) > _MAX_SIGNATURE:
        raise LeafError("signature too long")
    return b"".join(
        (
            MAGIC,
            struct.pack(">BBQ", KINDS[leaf.kind], DIRECTIONS[leaf.direction], leaf.logged_at_ms),
            struct.pack(">H", len(peer)),
            peer,
            len(leaf.header).to_bytes(3, "big"),
            leaf.header,
            leaf.body_sha256,
            struct.pack(">H", len(leaf.signature)),
            leaf.signature,
            leaf.signer_cert_sha256,
        )
    )


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def take(self, n: int) -> bytes:
        if n > len(self._data) - self._at:
            raise LeafError("leaf data ends early")
        part = self._data[self._at : self._at + n]
        self._at += n
        return part

    def number(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def done(self) -> None:
        if self._at != len(self._data):
            raise LeafError("trailing bytes after the leaf")


def decode(data: bytes) -> LogLeaf:
    """The leaf encoded in ``data``; LeafError unless ``data`` is exactly a canonical leaf."""
    r = _Reader(data)
    if r.take(len(MAGIC)) != MAGIC:
        raise LeafError("not a zhol-log-leaf/v1")
    kind = _KIND_NAMES.get(r.number(1))
    direction = _DIRECTION_NAMES.get(r.number(1))
    if kind is None or direction is None:
        raise LeafError("unknown kind or direction")
    logged_at_ms = r.number(8)
    try:
        peer = r.take(r.number(2)).decode("utf-8")
    except UnicodeDecodeError:
        raise LeafError("peer is not UTF-8") from None
    header = r.take(r.number(3))
    body_sha256 = r.take(32)
    signature = r.take(r.number(2))
    signer_cert_sha256 = r.take(32)
    r.done()
    return LogLeaf(
        kind, direction, logged_at_ms, peer, header, body_sha256, signature, signer_cert_sha256
    )
