"""The registry's witness: the pure decision (consistent -> cosign; fork, truncation, bad
proof, wrong old size -> refused) and the Witness over a real store (bad signature,
unknown origin, a renewal's previous key), each refusal recorded and changing nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.registry_signing import drop_log_key
from tests.unit.test_registry_logkey import GW1, GW2, gateway_request
from zhol.core.errors import ZholError
from zhol.registry.model import WitnessedCheckpoint
from zhol.registry.provision import init_registry, load_keys
from zhol.registry.registration import Registrar
from zhol.registry.store import Store
from zhol.registry.witness import Refusal, Witness, decide, witness_name
from zhol.security import merkle
from zhol.security.logkey import prove_log_key
from zhol.security.signednote import (
    Checkpoint,
    NoteSigner,
    cosigner_verifier,
    format_checkpoint,
    gateway_origin,
    sign_note,
    verify_cosignature,
)

NOW_MS = 1_790_000_000_000
NOW = dt.datetime.fromtimestamp(NOW_MS / 1000, tz=dt.UTC)
ORIGIN = gateway_origin(str(GW1))
LEAVES = [merkle.leaf_hash(b"record %d" % i) for i in range(20)]


def head(size: int, leaves: list[bytes] = LEAVES) -> Checkpoint:
    return Checkpoint(ORIGIN, size, merkle.root(leaves[:size]))


def proof(old: int, new: int, leaves: list[bytes] = LEAVES) -> tuple[bytes, ...]:
    return merkle.consistency_proof(old, new, merkle.nodes_from_leaves(leaves))


def cosigned(size: int) -> WitnessedCheckpoint:
    return WitnessedCheckpoint(ORIGIN, size, merkle.root(LEAVES[:size]), b"note", NOW_MS)


# -- the decision (pure) --------------------------------------------------------------------


def test_a_consistent_checkpoint_is_cosigned() -> None:
    assert decide(None, head(5), 0, ()) is None  # the first: nothing to extend
    assert decide(cosigned(5), head(13), 5, proof(5, 13)) is None
    assert decide(cosigned(8), head(8), 8, ()) is None  # the latest again: idempotent
    assert decide(cosigned(8), head(8), 3, ()) is None  # ... whatever the old size


def test_a_rewrite_of_the_log_is_refused_as_inconsistent() -> None:
    other = [*LEAVES[:4], merkle.leaf_hash(b"rewritten"), *LEAVES[5:]]
    fork = Refusal("InconsistentCheckpoint", "fork")
    assert decide(cosigned(8), head(8, other), 8, ()) == fork
    assert decide(cosigned(8), head(5), 8, ()) == Refusal("InconsistentCheckpoint", "truncation")
    assert decide(cosigned(8), head(5), 5, ()) == Refusal("InconsistentCheckpoint", "truncation")
    bad = Refusal("InconsistentCheckpoint", "bad-proof")
    # Record 5 rewritten, then the log grew: the proof from the cosigned 8 cannot verify.
    assert decide(cosigned(8), head(13, other), 8, proof(8, 13, other)) == bad
    assert decide(cosigned(5), head(13), 5, proof(6, 13)) == bad  # a proof for other sizes
    assert decide(cosigned(5), head(13), 5, ()) == bad
    tampered = proof(5, 13)
    tampered = (bytes(32), *tampered[1:])
    assert decide(cosigned(5), head(13), 5, tampered) == bad
    assert decide(None, head(5), 0, proof(3, 5)) == bad  # nothing cosigned: no proof


def test_a_proof_from_a_size_the_witness_did_not_cosign_is_a_conflict() -> None:
    mismatch = Refusal("CheckpointOldSizeMismatch", "old-size")
    assert decide(cosigned(5), head(13), 8, proof(8, 13)) == mismatch
    assert decide(None, head(13), 5, proof(5, 13)) == mismatch


# -- the witness over a real store -----------------------------------------------------------


class Env:
    def __init__(self, tmp_path: Path) -> None:
        paths = init_registry(tmp_path / "registry", "KZ", False, NOW)
        keys = load_keys(paths)
        assert keys.witness_key is not None
        assert paths.witness_key.stat().st_mode & 0o777 == 0o600
        self.store = Store.open(paths.db)
        registrar = Registrar(self.store, keys.ca, "KZ", auto_approve=True)
        self.log_key = ed25519.Ed25519PrivateKey.generate()
        registrar.submit(gateway_request(GW1, *prove_log_key(self.log_key, GW1)), NOW_MS)
        registrar.submit(
            gateway_request(GW2, *prove_log_key(ed25519.Ed25519PrivateKey.generate(), GW2)),
            NOW_MS,
        )
        drop_log_key(self.store, GW2)  # registered before log keys: none
        self.witness = Witness(self.store, keys.witness_key, witness_name("KZ"))
        self.verifier = cosigner_verifier(witness_name("KZ"), keys.witness_key.public_key())

    def note(self, checkpoint: Checkpoint, key: ed25519.Ed25519PrivateKey | None = None) -> bytes:
        signer = NoteSigner(checkpoint.origin, key or self.log_key)
        return sign_note(format_checkpoint(checkpoint), [signer])

    def refused(self, note: bytes, old: int, hashes: tuple[bytes, ...] = ()) -> str:
        before = self.store.witness_latest(ORIGIN)
        count = len(self.store.witness_refusals())
        with pytest.raises(ZholError) as info:
            self.witness.add_checkpoint(note, old, hashes, NOW_MS)
        assert self.store.witness_latest(ORIGIN) == before  # nothing changed
        refusals = self.store.witness_refusals()
        assert len(refusals) == count + 1 and refusals[-1].code == info.value.code.name
        return info.value.code.name


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def test_the_witness_cosigns_a_consistent_chain_and_remembers_the_latest(env: Env) -> None:
    line = env.witness.add_checkpoint(env.note(head(5)), 0, (), NOW_MS)
    assert verify_cosignature(format_checkpoint(head(5)), line, env.verifier) == NOW_MS // 1000
    line = env.witness.add_checkpoint(env.note(head(13)), 5, proof(5, 13), NOW_MS + 1000)
    assert verify_cosignature(format_checkpoint(head(13)), line, env.verifier)
    again = env.witness.add_checkpoint(env.note(head(13)), 5, (), NOW_MS + 2000)
    assert verify_cosignature(format_checkpoint(head(13)), again, env.verifier)
    latest = env.store.witness_latest(ORIGIN)
    assert latest is not None and (latest.size, latest.root_hash) == (13, head(13).root_hash)
    assert env.store.witness_refusals() == ()


def test_the_witness_refuses_rewrites_bad_signatures_and_unknown_origins(env: Env) -> None:
    env.witness.add_checkpoint(env.note(head(8)), 0, (), NOW_MS)
    other = [*LEAVES[:4], merkle.leaf_hash(b"rewritten"), *LEAVES[5:]]
    assert env.refused(env.note(head(8, other)), 8) == "InconsistentCheckpoint"
    assert env.refused(env.note(head(5)), 8) == "InconsistentCheckpoint"
    assert env.refused(env.note(head(13, other)), 8, proof(8, 13, other)) == (
        "InconsistentCheckpoint"
    )
    assert env.refused(env.note(head(13)), 5, proof(5, 13)) == "CheckpointOldSizeMismatch"
    # Signed by another key under the gateway's name: not the registered log key.
    stranger = ed25519.Ed25519PrivateKey.generate()
    assert env.refused(env.note(head(13), stranger), 8, proof(8, 13)) == "InvalidSignature"
    # The gateway's own signature moved onto another tree head.
    signature_block = env.note(head(13)).split(b"\n\n", 1)[1]
    moved = format_checkpoint(head(14)).encode() + b"\n" + signature_block
    assert env.refused(moved, 8, proof(8, 14)) == "InvalidSignature"
    # A gateway without a log key, an unregistered one, an origin that names no gateway.
    for origin in (gateway_origin(str(GW2)), gateway_origin("KZ/GOV/MJ/gw9"), "example.com/log"):
        note = env.note(Checkpoint(origin, 3, merkle.root(LEAVES[:3])))
        assert env.refused(note, 0) == "NotConfigured"
    assert env.refused(b"not a note", 0) == "InvalidRequest"
    # After all that, the honest next checkpoint is still cosigned.
    env.witness.add_checkpoint(env.note(head(13)), 8, proof(8, 13), NOW_MS)
