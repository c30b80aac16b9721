"""C2SP signed notes, tlog checkpoints, Ed25519 cosignatures (docs/protocol.md, 'Checkpoints').

Pure formats, no I/O, following the specifications byte for byte so that standard
verifiers (golang.org/x/mod/sumdb/note, transparency-dev/formats) accept what we sign
and we accept what they sign:

- c2sp.org/signed-note: text ending in a newline, a blank line, then lines
  ``— <key name> base64(4-byte key ID || signature)``; verifier keys (vkeys)
  ``<name>+<hex key ID>+base64(type || public key)``.
- c2sp.org/tlog-checkpoint: the note text is origin, decimal tree size, base64 root
  hash, then optional extension lines.
- c2sp.org/tlog-cosignature: the Ed25519 ``cosignature/v1`` signature (type 0x04), a
  big-endian u64 timestamp then an Ed25519 signature over
  ``"cosignature/v1\\ntime <T>\\n" || checkpoint text``.

Every refusal is a :class:`NoteError` with a stable ``reason`` (one of
:data:`REASONS`); callers map reasons to catalogued codes, never the text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

__all__ = [
    "MAX_SIGNATURES",
    "ORIGIN_PREFIX",
    "REASONS",
    "SIG_TYPE_COSIGNATURE_V1",
    "SIG_TYPE_ED25519",
    "Checkpoint",
    "NoteError",
    "NoteSignature",
    "NoteSigner",
    "OpenedNote",
    "Reason",
    "Verifier",
    "cosign",
    "cosignature_message",
    "cosignature_timestamp",
    "cosigner_verifier",
    "ed25519_verifier",
    "format_checkpoint",
    "format_signature_line",
    "format_skey",
    "format_vkey",
    "gateway_origin",
    "is_valid_key_name",
    "join_note",
    "key_id",
    "open_note",
    "parse_checkpoint",
    "parse_note",
    "parse_skey",
    "parse_vkey",
    "sign_note",
    "verify_cosignature",
]

Reason = Literal[
    "malformed",  # the note, checkpoint or signature line breaks the grammar
    "bad-key",  # a vkey/skey text is invalid (syntax, key ID, type, length)
    "unknown-key",  # a signature line is not from the key it was checked against
    "ambiguous-key",  # two configured verifiers share one name and key ID
    "bad-signature",  # a known key's signature does not verify
    "no-verified-signature",  # no known key signed the note
]
REASONS: Final[tuple[Reason, ...]] = (
    "malformed",
    "bad-key",
    "unknown-key",
    "ambiguous-key",
    "bad-signature",
    "no-verified-signature",
)

SIG_TYPE_ED25519: Final = 0x01
SIG_TYPE_COSIGNATURE_V1: Final = 0x04
_SIG_TYPES: Final = (SIG_TYPE_ED25519, SIG_TYPE_COSIGNATURE_V1)

# The spec asks verifiers to accept at least 16 signatures; x/mod refuses more than 100.
MAX_SIGNATURES: Final = 100

_SIG_PREFIX: Final = "\u2014 "  # em dash, space
_COSIG_HEADER: Final = "cosignature/v1\n"
_MAX_TIMESTAMP: Final = 2**63 - 1
_MAX_TREE_SIZE: Final = 2**64 - 1  # a uint64 everywhere else (x/mod, tlog-tiles)
_ED25519_SIG_LEN: Final = 64
_ED25519_KEY_LEN: Final = 32
_HASH_LEN: Final = 32

# Go's unicode.IsSpace (Unicode White_Space), which x/mod's isValidName refuses in names.
_UNICODE_SPACES: Final = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_DECIMAL: Final = re.compile(r"0|[1-9][0-9]*")
_HEX_KEY_ID: Final = re.compile(r"[0-9a-f]{8}")


class NoteError(ValueError):
    """A refused note, checkpoint, signature or key text; ``reason`` is stable."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: Reason = reason
        self.detail = detail


# --- names, key IDs, base64 -------------------------------------------------------


def is_valid_key_name(name: str) -> bool:
    """Non-empty, no Unicode space, no '+' (and no control character: none can appear
    in a note, so such a name could never match a signature line)."""
    return name != "" and "+" not in name and not any(c in _UNICODE_SPACES or c < " " for c in name)


def key_id(name: str, sig_type: int, public_key: bytes) -> int:
    """SHA-256(name || 0x0A || type || public key)[:4], as a big-endian uint32."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _b64decode(text: str) -> bytes | None:
    """Standard padded base64 in its one canonical spelling, or None.

    Canonical only (re-encoding must give the same text): a signature line has exactly
    one valid spelling, so a flipped padding bit is refused rather than ignored.
    """
    if not text.isascii():
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if base64.b64encode(raw).decode() != text:
        return None
    return raw


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


# --- keys -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verifier:
    """A public key trusted under a name: verifies signatures of one type (0x01 or 0x04)."""

    name: str
    sig_type: int
    public_key: bytes
    _key: ed25519.Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise NoteError("bad-key", "invalid key name")
        if self.sig_type not in _SIG_TYPES:
            raise NoteError("bad-key", f"unsupported signature type 0x{self.sig_type:02x}")
        if len(self.public_key) != _ED25519_KEY_LEN:
            raise NoteError("bad-key", "an Ed25519 public key is 32 bytes")
        try:
            key = ed25519.Ed25519PublicKey.from_public_bytes(self.public_key)
        except ValueError:
            raise NoteError("bad-key", "invalid Ed25519 public key") from None
        object.__setattr__(self, "_key", key)

    @property
    def key_id(self) -> int:
        return key_id(self.name, self.sig_type, self.public_key)

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (without the 4-byte key ID) signs note ``text``."""
        if self.sig_type == SIG_TYPE_COSIGNATURE_V1:
            if len(signature) != 8 + _ED25519_SIG_LEN:
                return False
            timestamp = int.from_bytes(signature[:8], "big")
            if timestamp > _MAX_TIMESTAMP:
                return False
            message = cosignature_message(text, timestamp)
            signature = signature[8:]
        else:
            if len(signature) != _ED25519_SIG_LEN:
                return False
            message = text
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


def _raw_public(key: ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def ed25519_verifier(name: str, public_key: ed25519.Ed25519PublicKey | bytes) -> Verifier:
    """A verifier of plain Ed25519 note signatures (type 0x01), e.g. a gateway's log key."""
    raw = public_key if isinstance(public_key, bytes) else _raw_public(public_key)
    return Verifier(name, SIG_TYPE_ED25519, raw)


def cosigner_verifier(name: str, public_key: ed25519.Ed25519PublicKey | bytes) -> Verifier:
    """A verifier of a witness's timestamped cosignatures (type 0x04)."""
    raw = public_key if isinstance(public_key, bytes) else _raw_public(public_key)
    return Verifier(name, SIG_TYPE_COSIGNATURE_V1, raw)


def format_vkey(verifier: Verifier) -> str:
    """``<name>+<hex key ID>+base64(type || public key)``."""
    material = bytes([verifier.sig_type]) + verifier.public_key
    return f"{verifier.name}+{verifier.key_id:08x}+{_b64(material)}"


def parse_vkey(vkey: str) -> Verifier:
    """A verifier key text; refuses (reason 'bad-key') anything x/mod's NewVerifier would,
    and also uppercase hex and non-canonical base64."""
    # Only the first two '+' separate: base64 itself may contain '+'.
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise NoteError("bad-key", "a vkey has three '+'-separated parts")
    name, hex_id, key64 = parts
    material = _b64decode(key64)
    if not is_valid_key_name(name) or not _HEX_KEY_ID.fullmatch(hex_id) or not material:
        raise NoteError("bad-key", "malformed vkey")
    if int(hex_id, 16) != int.from_bytes(
        hashlib.sha256(name.encode() + b"\n" + material).digest()[:4], "big"
    ):
        raise NoteError("bad-key", "the key ID does not match the key")
    return Verifier(name, material[0], material[1:])


@dataclass(frozen=True, slots=True)
class NoteSigner:
    """An Ed25519 private key signing notes (type 0x01) under ``name``."""

    name: str
    private_key: ed25519.Ed25519PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise NoteError("bad-key", "invalid key name")

    @property
    def verifier(self) -> Verifier:
        return ed25519_verifier(self.name, self.private_key.public_key())

    @property
    def key_id(self) -> int:
        return self.verifier.key_id


def format_skey(signer: NoteSigner) -> str:
    """x/mod's secret signer key text ``PRIVATE+KEY+<name>+<hex ID>+base64(0x01 || seed)``."""
    seed = signer.private_key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    material = bytes([SIG_TYPE_ED25519]) + seed
    return f"PRIVATE+KEY+{signer.name}+{signer.key_id:08x}+{_b64(material)}"


def parse_skey(skey: str) -> NoteSigner:
    """x/mod's signer key text (Ed25519, type 0x01 only); reason 'bad-key' otherwise."""
    parts = skey.split("+", 4)
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise NoteError("bad-key", "a signer key starts with PRIVATE+KEY+")
    _, _, name, hex_id, key64 = parts
    material = _b64decode(key64)
    if not is_valid_key_name(name) or not _HEX_KEY_ID.fullmatch(hex_id) or not material:
        raise NoteError("bad-key", "malformed signer key")
    if material[0] != SIG_TYPE_ED25519 or len(material) != 1 + _ED25519_KEY_LEN:
        raise NoteError("bad-key", "not an Ed25519 signer key")
    signer = NoteSigner(name, ed25519.Ed25519PrivateKey.from_private_bytes(material[1:]))
    # The ID is of the public key, so it can only be checked after deriving that.
    if signer.key_id != int(hex_id, 16):
        raise NoteError("bad-key", "the key ID does not match the key")
    return signer


# --- notes ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: its key name, key ID and signature bytes (ID stripped)."""

    name: str
    key_id: int
    signature: bytes

    @property
    def line(self) -> str:
        return format_signature_line(self.name, self.key_id, self.signature)


@dataclass(frozen=True, slots=True)
class OpenedNote:
    """A note whose signatures by known keys all verified (at least one of them)."""

    text: str
    verified: tuple[NoteSignature, ...]
    unverified: tuple[NoteSignature, ...]  # from keys the caller does not know


def format_signature_line(name: str, key_id_: int, signature: bytes) -> str:
    """``— <name> base64(key ID || signature)`` and its newline."""
    if not is_valid_key_name(name):
        raise NoteError("bad-key", "invalid key name")
    if not 0 <= key_id_ < 2**32:
        raise NoteError("bad-key", "a key ID is a uint32")
    return f"{_SIG_PREFIX}{name} {_b64(key_id_.to_bytes(4, 'big') + signature)}\n"


def _check_text(text: str) -> None:
    """The note text's own rules: ends in a newline, no control character but newline."""
    if not text.endswith("\n"):
        raise NoteError("malformed", "the note text must end in a newline")
    if any(c < " " and c != "\n" for c in text):
        raise NoteError("malformed", "control character in the note")


def parse_note(note: bytes) -> tuple[str, tuple[NoteSignature, ...]]:
    """The text and signature lines of a note, syntax only (nothing is verified).

    The text is everything up to and including the newline before the *last* blank
    line; every line after it must be a signature line.
    """
    try:
        decoded = note.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise NoteError("malformed", "the note is not UTF-8") from None
    if any(c < " " and c != "\n" for c in decoded):
        raise NoteError("malformed", "control character in the note")
    split = decoded.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed", "no blank line before the signatures")
    text, block = decoded[: split + 1], decoded[split + 2 :]
    if block == "" or not block.endswith("\n"):
        raise NoteError("malformed", "the signature block must end in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError("malformed", f"more than {MAX_SIGNATURES} signatures")
    return text, tuple(_parse_signature_line(line) for line in lines)


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(_SIG_PREFIX):
        raise NoteError("malformed", "a signature line starts with an em dash and a space")
    name, sep, b64 = line[len(_SIG_PREFIX) :].partition(" ")
    raw = _b64decode(b64) if sep else None
    # At least one signature byte after the key ID, as x/mod requires.
    if raw is None or len(raw) < 5 or not is_valid_key_name(name):
        raise NoteError("malformed", "bad signature line")
    return NoteSignature(name, int.from_bytes(raw[:4], "big"), raw[4:])


def join_note(text: str, signatures: Iterable[NoteSignature | str]) -> bytes:
    """A note from its text and signature lines (NoteSignature or already formatted line)."""
    _check_text(text)
    lines = [s.line if isinstance(s, NoteSignature) else s for s in signatures]
    if not lines:
        raise NoteError("malformed", "a note has at least one signature")
    for line in lines:
        if not line.endswith("\n") or "\n" in line[:-1]:
            raise NoteError("malformed", "a signature line is one newline-terminated line")
        _parse_signature_line(line[:-1])
    return (text + "\n" + "".join(lines)).encode()


def sign_note(text: str, signers: Sequence[NoteSigner]) -> bytes:
    """``text``, a blank line and one Ed25519 signature line per signer."""
    if not signers:
        raise NoteError("malformed", "a note has at least one signature")
    _check_text(text)
    message = text.encode()
    lines = [format_signature_line(s.name, s.key_id, s.private_key.sign(message)) for s in signers]
    return join_note(text, lines)


def open_note(note: bytes, verifiers: Iterable[Verifier]) -> OpenedNote:
    """Parse ``note`` and verify every signature from a known key.

    Per c2sp.org/signed-note: signatures whose (name, key ID) matches no verifier are
    ignored (returned as ``unverified``); every signature from a known key must verify
    (else 'bad-signature', stricter than x/mod, which checks only the first of repeated
    signatures by one key); at least one must (else 'no-verified-signature').
    """
    text, signatures = parse_note(note)
    known: dict[tuple[str, int], list[Verifier]] = {}
    for v in verifiers:
        known.setdefault((v.name, v.key_id), []).append(v)
    message = text.encode()
    verified: list[NoteSignature] = []
    unverified: list[NoteSignature] = []
    for sig in signatures:
        candidates = known.get((sig.name, sig.key_id))
        if candidates is None:
            if sig not in unverified:
                unverified.append(sig)
            continue
        if len(candidates) > 1:
            raise NoteError("ambiguous-key", f"two verifiers for {sig.name}+{sig.key_id:08x}")
        if not candidates[0].verify(message, sig.signature):
            raise NoteError("bad-signature", f"bad signature by {sig.name}+{sig.key_id:08x}")
        if all((s.name, s.key_id) != (sig.name, sig.key_id) for s in verified):
            verified.append(sig)
    if not verified:
        raise NoteError("no-verified-signature", "no known key signed the note")
    return OpenedNote(text, tuple(verified), tuple(unverified))


# --- checkpoints ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A c2sp.org/tlog-checkpoint note text: the tree head a log signs."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.origin == "" or not _valid_line(self.origin):
            raise NoteError("malformed", "the origin is a non-empty line")
        if not 0 <= self.size <= _MAX_TREE_SIZE:
            raise NoteError("malformed", "the tree size is out of range")
        if len(self.root_hash) != _HASH_LEN:
            raise NoteError("malformed", "the root hash is 32 bytes")
        if any(line == "" or not _valid_line(line) for line in self.extensions):
            raise NoteError("malformed", "extension lines are non-empty lines")


def _valid_line(line: str) -> bool:
    return not any(c < " " for c in line)


def format_checkpoint(checkpoint: Checkpoint) -> str:
    """The note text: origin, size, base64 root hash, extension lines, each ending in \\n."""
    lines = [checkpoint.origin, str(checkpoint.size), _b64(checkpoint.root_hash)]
    return "".join(line + "\n" for line in (*lines, *checkpoint.extensions))


def parse_checkpoint(text: str) -> Checkpoint:
    """A checkpoint note text, refused ('malformed') unless exactly as the spec writes it:
    decimal size without leading zeros, canonical base64 of a 32-byte hash, no empty line."""
    _check_text(text)
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("malformed", "a checkpoint has at least three lines")
    origin, size, root64, *extensions = lines
    if not _DECIMAL.fullmatch(size):
        raise NoteError("malformed", "the tree size is a decimal without leading zeros")
    root = _b64decode(root64)
    if root is None:
        raise NoteError("malformed", "the root hash is not base64")
    return Checkpoint(origin, int(size), root, tuple(extensions))


ORIGIN_PREFIX: Final = "zhol/"


def gateway_origin(gateway_id: str) -> str:
    """The origin (and log key name) of a gateway's log: ``zhol/<gateway id>``, e.g.
    ``zhol/KZ/GOV/MJ/gw1`` (docs/protocol.md, 'Checkpoints and cosignatures')."""
    origin = ORIGIN_PREFIX + gateway_id
    if gateway_id == "" or not is_valid_key_name(origin):
        raise NoteError("bad-key", "a gateway id has no space, '+' or control character")
    return origin


# --- cosignatures -----------------------------------------------------------------


def cosignature_message(checkpoint_text: bytes, timestamp: int) -> bytes:
    """What a cosignature/v1 signs: header line, time line, the checkpoint text."""
    return f"{_COSIG_HEADER}time {timestamp}\n".encode() + checkpoint_text


def cosign(
    checkpoint_text: str, witness_key: ed25519.Ed25519PrivateKey, name: str, time_s: int
) -> str:
    """The witness's signature line (with its newline) over a checkpoint at ``time_s``.

    Only a well-formed checkpoint is cosigned: a cosignature is a statement about a
    tree head, so signing anything else would be a statement nobody can interpret.
    """
    parse_checkpoint(checkpoint_text)
    if not 0 <= time_s <= _MAX_TIMESTAMP:
        raise NoteError("malformed", "the timestamp is out of range")
    verifier = cosigner_verifier(name, witness_key.public_key())
    signed = witness_key.sign(cosignature_message(checkpoint_text.encode(), time_s))
    return format_signature_line(name, verifier.key_id, time_s.to_bytes(8, "big") + signed)


def cosignature_timestamp(signature: NoteSignature) -> int:
    """The POSIX time a cosignature/v1 signature states (not verified by this call)."""
    if len(signature.signature) != 8 + _ED25519_SIG_LEN:
        raise NoteError("malformed", "not an Ed25519 cosignature/v1 signature")
    timestamp = int.from_bytes(signature.signature[:8], "big")
    if timestamp > _MAX_TIMESTAMP:
        raise NoteError("malformed", "the timestamp is out of range")
    return timestamp


def verify_cosignature(checkpoint_text: str, line: str, witness: Verifier) -> int:
    """Check one cosignature line (as :func:`cosign` returns it) by ``witness`` over
    ``checkpoint_text``; return the time it states."""
    if witness.sig_type != SIG_TYPE_COSIGNATURE_V1:
        raise NoteError("bad-key", "not a cosignature/v1 verifier")
    parse_checkpoint(checkpoint_text)
    if not line.endswith("\n") or "\n" in line[:-1]:
        raise NoteError("malformed", "a signature line is one newline-terminated line")
    if any(c < " " for c in line[:-1]):
        raise NoteError("malformed", "control character in the signature line")
    sig = _parse_signature_line(line[:-1])
    if (sig.name, sig.key_id) != (witness.name, witness.key_id):
        raise NoteError("unknown-key", f"signed by {sig.name}+{sig.key_id:08x}, not the witness")
    timestamp = cosignature_timestamp(sig)
    if not witness.verify(checkpoint_text.encode(), sig.signature):
        raise NoteError("bad-signature", "the cosignature does not verify")
    return timestamp
