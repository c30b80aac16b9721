"""Signed checkpoints of a message log (gateway/checkpoints.py), on a real log, no sockets."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.unit.test_messagelog import exchange
from zhol.core.clock import FixedClock
from zhol.gateway.checkpoints import (
    Checkpointer,
    CheckpointPolicy,
    CheckpointStore,
    parse_proof_text,
    proof_text,
)
from zhol.gateway.messagelog import MessageLog, tree_head
from zhol.security import merkle
from zhol.security.signednote import (
    NoteError,
    NoteSigner,
    ed25519_verifier,
    gateway_origin,
    open_note,
    parse_checkpoint,
)

GATEWAY = "KZ/GOV/MJ/gw1"


def test_a_checkpoint_is_due_when_the_log_grew_and_time_or_records_say_so() -> None:
    policy = CheckpointPolicy(interval_s=10, every_records=100)
    assert not policy.due(size=5, last_size=5, now_ms=99_000, last_ms=0)  # no growth
    assert policy.due(size=1, last_size=0, now_ms=0, last_ms=None)  # none yet
    assert not policy.due(size=50, last_size=0, now_ms=9_999, last_ms=0)
    assert policy.due(size=50, last_size=0, now_ms=10_000, last_ms=0)
    assert policy.due(size=100, last_size=0, now_ms=1, last_ms=0)
    with pytest.raises(ValueError):
        CheckpointPolicy(interval_s=0)


def test_a_proof_file_round_trips_and_refuses_what_it_is_not() -> None:
    hashes = (b"\x01" * 32, b"\x02" * 32)
    assert parse_proof_text(proof_text(7, hashes)) == (7, hashes)
    for bad in ("", "old 7", "new 7\n", "old 07\n", "old 7\nnot base64!\n"):
        with pytest.raises(ValueError):
            parse_proof_text(bad)


def test_checkpoints_are_signed_notes_chained_by_consistency_proofs(tmp_path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    origin = gateway_origin(GATEWAY)
    verifier = ed25519_verifier(origin, key.public_key())
    log_path = tmp_path / "messagelog.db"
    log = MessageLog(log_path, FixedClock(1_790_000_000_000))
    log.open()
    store = CheckpointStore(tmp_path / "checkpoints")
    checkpointer = Checkpointer(
        gateway_id=GATEWAY, log_path=log_path, store=store,
        signer_key=NoteSigner(origin, key), policy=CheckpointPolicy(), now_ms=lambda: 0,
    )  # fmt: skip
    try:
        assert checkpointer.checkpoint_now() is None  # an empty log: nothing to sign
        roots = {}
        for batch in (3, 1, 5):
            for _ in range(batch):
                asyncio.run(log.append(exchange()))
            head = checkpointer.checkpoint_now()
            assert head is not None and head == tree_head(log_path)
            roots[head.size] = head.root_hash
        assert checkpointer.checkpoint_now() is None  # no growth, no new checkpoint
    finally:
        log.close()
    assert store.sizes() == [6, 8, 18]
    for size in store.sizes():
        opened = open_note(store.note_path(size).read_bytes(), [verifier])
        checkpoint = parse_checkpoint(opened.text)
        assert (checkpoint.origin, checkpoint.size, checkpoint.root_hash) == (
            origin, size, roots[size],
        )  # fmt: skip
    assert not store.proof_path(6).exists()
    for old, new in ((6, 8), (8, 18)):
        old_size, proof = parse_proof_text(store.proof_path(new).read_text())
        assert old_size == old
        merkle.verify_consistency(old, new, proof, roots[old], roots[new])
    # Another key (another gateway's, say) does not open them.
    stranger = ed25519_verifier(origin, ed25519.Ed25519PrivateKey.generate().public_key())
    with pytest.raises(NoteError):
        open_note(store.note_path(8).read_bytes(), [stranger])


def test_a_restarted_checkpointer_continues_the_chain(tmp_path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    origin = gateway_origin(GATEWAY)
    log_path = tmp_path / "messagelog.db"
    store = CheckpointStore(tmp_path / "checkpoints")
    for _ in range(2):
        log = MessageLog(log_path, FixedClock(1_790_000_000_000))
        log.open()
        asyncio.run(log.append(exchange()))
        log.close()
        Checkpointer(
            gateway_id=GATEWAY, log_path=log_path, store=store,
            signer_key=NoteSigner(origin, key), policy=CheckpointPolicy(), now_ms=lambda: 0,
        ).checkpoint_now()  # fmt: skip
    assert store.sizes() == [2, 4]
    assert parse_proof_text(store.proof_path(4).read_text())[0] == 2
