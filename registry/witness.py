"""The registry as a witness of the gateways' logs (C2SP tlog-witness; docs/protocol.md,
'Witness').

A gateway submits each new signed checkpoint with a consistency proof from the last
checkpoint the witness cosigned for its origin. The witness checks that the note is
signed by the log key the registry holds for the gateway the origin names (its current
or a previous one: that signature is what authenticates the request, only the gateway
holds the key), that the proof shows the new tree extends the cosigned one, then stores
the new checkpoint as the origin's latest and returns its cosignature. Anything else is
refused with a catalogued code, recorded in ``witness_refusals`` and logged (origin,
size, code, reason: a checkpoint holds no personal data). A refused checkpoint changes
nothing: a gateway whose history was rewritten gets no cosignature any more.

:func:`decide` is the whole decision, pure; :class:`Witness` does the I/O around it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

from cryptography.hazmat.primitives.asymmetric import ed25519

from zhol.core.errors import ErrorName, Hop, ZholError
from zhol.core.ids import GatewayId
from zhol.registry.model import WitnessedCheckpoint, WitnessRefusal
from zhol.registry.store import Store
from zhol.security.merkle import MerkleError, verify_consistency
from zhol.security.signednote import (
    ORIGIN_PREFIX,
    Checkpoint,
    NoteError,
    cosign,
    ed25519_verifier,
    open_note,
    parse_checkpoint,
    parse_note,
)

log = logging.getLogger("zhol.registry")

# The most hashes a consistency proof between two u64 sizes can need (2 x 64).
MAX_PROOF_HASHES = 128


def witness_name(instance: str) -> str:
    """The witness's note key name, published in the global configuration."""
    return f"zhol-witness/{instance}"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a checkpoint is not cosigned: a catalogued code and a stable short reason."""

    code: ErrorName
    reason: str


def decide(
    latest: WitnessedCheckpoint | None,
    new: Checkpoint,
    old_size: int,
    proof: Sequence[bytes],
) -> Refusal | None:
    """None to cosign ``new``, else why not; ``latest`` is the origin's last cosigned.

    - the latest again (same size and root): cosigned again, the proof is not needed;
    - the same size with another root: a fork; a smaller size: a truncation;
    - ``old_size`` must be the latest's size (0 when none): else the gateway proves
      from a checkpoint the witness did not cosign (a conflict, not a rewrite);
    - from a cosigned checkpoint the proof must verify; the first one needs none.
    """
    if latest is not None:
        if new.size == latest.size and new.root_hash != latest.root_hash:
            return Refusal("InconsistentCheckpoint", "fork")
        if new.size == latest.size:
            return None
        if new.size < latest.size:
            return Refusal("InconsistentCheckpoint", "truncation")
    latest_size = latest.size if latest is not None else 0
    if old_size != latest_size:
        return Refusal("CheckpointOldSizeMismatch", "old-size")
    if latest is None or latest.size == 0:  # nothing to extend: no proof
        return None if not proof else Refusal("InconsistentCheckpoint", "bad-proof")
    try:
        verify_consistency(latest.size, new.size, proof, latest.root_hash, new.root_hash)
    except MerkleError:
        return Refusal("InconsistentCheckpoint", "bad-proof")
    return None


class Witness:
    """Checks, records and cosigns checkpoints; thread-safe (the store serialises)."""

    def __init__(self, store: Store, key: ed25519.Ed25519PrivateKey, name: str) -> None:
        self._store = store
        self._key = key
        self.name = name

    def add_checkpoint(
        self, note: bytes, old_size: int, proof: Sequence[bytes], now_ms: int
    ) -> str:
        """The cosignature line for ``note``, or a ZholError (recorded) saying why not."""
        origin, size = "", None
        try:
            text, _ = parse_note(note)
            checkpoint = parse_checkpoint(text)
            origin, size = checkpoint.origin, checkpoint.size
            if len(proof) > MAX_PROOF_HASHES:
                raise _Refused(Refusal("InvalidRequest", "proof-too-long"))
            self._verify_signature(note, checkpoint.origin)
            latest = self._store.witness_latest(origin)
            refusal = decide(latest, checkpoint, old_size, proof)
            if refusal is not None:
                raise _Refused(refusal)
            if latest is None or checkpoint.size != latest.size:
                stored = WitnessedCheckpoint(origin, size, checkpoint.root_hash, note, now_ms)
                # Compare-and-set: a concurrent submission for this origin moved it.
                if not self._store.witness_advance(stored, latest.size if latest else None):
                    raise _Refused(Refusal("CheckpointOldSizeMismatch", "concurrent"))
        except NoteError as exc:
            self._refuse(origin, size, Refusal("InvalidRequest", f"note-{exc.reason}"), now_ms)
        except _Refused as refused:
            self._refuse(origin, size, refused.refusal, now_ms)
        log.info(
            "registry.checkpoint_cosigned",
            extra={"event": "registry.checkpoint_cosigned", "origin": origin, "size": size},
        )
        return cosign(text, self._key, self.name, now_ms // 1000)

    def _verify_signature(self, note: bytes, origin: str) -> None:
        gateway = None
        if origin.startswith(ORIGIN_PREFIX):
            try:
                gateway = self._store.get_gateway(GatewayId.parse(origin[len(ORIGIN_PREFIX) :]))
            except ZholError:
                gateway = None
        if gateway is None or gateway.revoked or not gateway.log_public_key:
            raise _Refused(Refusal("NotConfigured", "unknown-origin"))
        keys = (gateway.log_public_key, *self._store.previous_log_keys(gateway.id))
        try:
            open_note(note, [ed25519_verifier(origin, k) for k in keys])
        except NoteError as exc:
            raise _Refused(Refusal("InvalidSignature", exc.reason)) from None

    def _refuse(self, origin: str, size: int | None, refusal: Refusal, now_ms: int) -> NoReturn:
        self._store.witness_refuse(
            WitnessRefusal(origin, size, refusal.code, refusal.reason, now_ms)
        )
        log.warning(
            "registry.checkpoint_refused",
            extra={
                "event": "registry.checkpoint_refused",
                "origin": origin,
                "size": size,
                "code": refusal.code,
                "reason": refusal.reason,
            },
        )
        raise ZholError(
            refusal.code,
            f"checkpoint of {origin or '?'} refused: {refusal.reason}",
            hop=Hop.REGISTRY,
        )


class _Refused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.reason)
        self.refusal = refusal
