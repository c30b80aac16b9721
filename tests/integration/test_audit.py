"""`zhol audit log` on a real gateway's log: an untouched log verifies, every tampering is
caught with exit 1 and its own reason, unreadable evidence exits 3.

One federation per module: the consumer gateway logs some calls, signs periodic
checkpoints (so proofs link them) and a last one when it stops; each test tampers
with its own copy of the stopped gateway's directory.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import secrets
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding

from tests.integration.bus_federation import get_person
from tests.integration.test_bus import some_iin
from tests.integration.test_checkpoint_timestamps import TsaServer, start_federation_with_tsa
from tests.integration.test_tsa import post
from tests.pki import new_ca
from tests.waiting import until
from zhol.cli.demo import CONSUMER_GATEWAY
from zhol.cli.main import main
from zhol.cli.ports import free_port
from zhol.cli.tsa import TsaPaths, init_tsa
from zhol.gateway.checkpoints import CheckpointStore, parse_proof_text, proof_text
from zhol.gateway.credentials import LOG_KEY, SIGN_CERT, SIGN_KEY
from zhol.registry.provision import init_registry
from zhol.security import merkle
from zhol.security.keystore import read_certificate, read_private_key
from zhol.security.logleaf import LogLeaf
from zhol.security.logleaf import encode as encode_leaf
from zhol.security.merkle import TreeState, leaf_hash
from zhol.security.sealing import REQUEST_TYPE, message_signed_bytes, sign_bytes
from zhol.security.signednote import (
    Checkpoint,
    NoteSigner,
    format_checkpoint,
    gateway_origin,
    open_note,
    parse_note,
    parse_vkey,
    sign_note,
)
from zhol.security.timestamp import build_request


@dataclass(frozen=True)
class Evidence:
    gateway: Path  # the stopped consumer gateway's data directory
    anchor: Path
    registry: Path  # the stopped registry's data directory (its CA issues a second TSA)


async def _write_evidence(root: Path) -> Evidence:
    fed, tsa = await start_federation_with_tsa(root)
    try:
        data = fed.layout.gateway(CONSUMER_GATEWAY)
        await fed.restart_gateway(
            CONSUMER_GATEWAY, "checkpoint_interval_s = 0.3\ntimestamp_interval_s = 0.2\n"
        )
        store = CheckpointStore(data / "checkpoints")
        for _ in range(4):
            await get_person(fed.is_address(), some_iin(fed))
        await until(lambda: bool(store.sizes()), timeout=15, what="a periodic checkpoint")
        for _ in range(4):
            await get_person(fed.is_address(), some_iin(fed))
        await until(lambda: any(True for _ in store.directory.glob("*.cosig")), timeout=15,
                    what="a checkpoint cosigned by the registry's witness")  # fmt: skip
        await until(lambda: any(True for _ in store.directory.glob("*.tsr")), timeout=15,
                    what="a checkpoint timestamped by the authority")  # fmt: skip
        await fed.gateways.pop(CONSUMER_GATEWAY).stop(0)  # the last checkpoint
    finally:
        await fed.stop()
        await tsa.stop()
    return Evidence(data, fed.layout.anchor, fed.layout.registry)


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> Evidence:
    return asyncio.run(_write_evidence(tmp_path_factory.mktemp("audit")))


@pytest.fixture
def gateway(evidence: Evidence, tmp_path: Path) -> Path:
    """A copy of the stopped gateway's directory, free to tamper with."""
    copy = tmp_path / "gateway"
    shutil.copytree(evidence.gateway, copy)
    return copy


def audit(
    capsys: pytest.CaptureFixture[str], gateway: Path, anchor: Path, *extra: str
) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main(
        ["audit", "log", "--gateway", str(gateway), "--anchor", str(anchor), "--json", *extra]
    )
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def reasons(report: dict[str, Any]) -> set[str]:
    return {f["reason"] for f in report["failures"]}


def tamper(gateway: Path, *sql: str, params: tuple[Any, ...] = ()) -> None:
    """What an operator can do to its own log: drop the append-only triggers, then edit."""
    db = sqlite3.connect(gateway / "messagelog.db")
    try:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='trigger'")]
        for name in names:
            db.execute(f"DROP TRIGGER {name}")
        for statement in sql:
            db.execute(statement, params if "?" in statement else ())
        db.commit()
    finally:
        db.close()


def edit_blob(gateway: Path, column: str, seq: int, change: Callable[[bytes], bytes]) -> None:
    with sqlite3.connect(gateway / "messagelog.db") as db:
        (value,) = db.execute(f"SELECT {column} FROM messages WHERE seq = ?", (seq,)).fetchone()
    tamper(gateway, f"UPDATE messages SET {column} = ? WHERE seq = {seq}", params=(change(value),))


def flip_last(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 1])


def record_count(gateway: Path) -> int:
    with sqlite3.connect(gateway / "messagelog.db") as db:
        return int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])


def test_an_untouched_log_verifies(
    evidence: Evidence, gateway: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = audit(capsys, gateway, evidence.anchor)
    assert (code, report["failures"]) == (0, [])
    assert report["result"] == "verified"
    assert report["counts"]["records"] == record_count(gateway) > 0
    assert report["counts"]["checkpoints"] >= 2  # so a consistency proof was checked
    assert report["counts"]["cosigned"] >= 1
    assert report["counts"]["timestamped"] >= 1
    # The people's report says the same, and what is not checked.
    assert main(["audit", "log", "--gateway", str(gateway), "--anchor", str(evidence.anchor)]) == 0
    out = capsys.readouterr().out
    assert "RESULT: verified" in out and "not checked: the configuration lists revoked" in out
    assert "RFC 3161 timestamps" in out


@pytest.mark.parametrize(
    ("column", "reason"),
    [("body", "bad-signature"), ("header", "bad-signature"), ("signature", "bad-signature")],
)
def test_a_changed_byte_is_caught(
    evidence: Evidence,
    gateway: Path,
    capsys: pytest.CaptureFixture[str],
    column: str,
    reason: str,
) -> None:
    edit_blob(gateway, column, 3, flip_last)
    code, report = audit(capsys, gateway, evidence.anchor)
    assert code == 1
    assert {(f["reason"], f["seq"]) for f in report["failures"]} >= {(reason, 3)}
    # The leaf changed too: the signed checkpoints no longer match the records.
    assert "checkpoint-root-mismatch" in reasons(report)


def test_a_changed_header_field_re_encoded_is_caught(
    evidence: Evidence, gateway: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit_blob(gateway, "header", 2, lambda h: h.replace(b"integration test", b"integration TEST"))
    code, report = audit(capsys, gateway, evidence.anchor)
    assert code == 1
    assert {(f["reason"], f["seq"]) for f in report["failures"]} >= {
        ("bad-signature", 2),
        ("column-mismatch", 2),  # the purpose column no longer says what the header says
        ("signed-digest-mismatch", 2),
    }


def test_a_changed_column_is_caught(
    evidence: Evidence, gateway: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper(gateway, "UPDATE messages SET purpose = 'something else' WHERE seq = 4")
    code, report = audit(capsys, gateway, evidence.anchor)
    assert code == 1
    assert [(f["reason"], f["seq"]) for f in report["failures"]] == [("column-mismatch", 4)]


def test_a_record_deleted_in_the_middle_is_caught(
    evidence: Evidence, gateway: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper(gateway, "DELETE FROM messages WHERE seq = 3")
    code, report = audit(capsys, gateway, evidence.anchor)
    assert code == 1
    assert {(f["reason"], f["seq"]) for f in report["failures"]} >= {("seq-gap", 4)}


def test_a_record_deleted_and_the_rest_renumbered_is_caught(
    evidence: Evidence, gateway: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper(
        gateway,
        "DELETE FROM messages WHERE seq = 2",
        "UPDATE messages SET seq = seq - 1 WHERE seq > 2",
    )
    code, report = audit(capsys, gateway, evidence.anchor)
    assert code == 1
    assert "seq-gap" not in reasons(report)  # the numbering looks fine...
    assert {"checkpoint-root-mismatch", "log-truncated"} <= reasons(report)  # ...the tree not


def test_a_deleted_tail_is_caught_even_with_the_tree_state_rewritten(
    evidence: Evidence, gateway: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = record_count(gateway) - 2
    tamper(gateway, f"DELETE FROM messages WHERE seq > {kept}")
    tamper(gateway, "UPDATE tree_state SET state = ?", params=(_rebuilt_state(gateway),))
    code, report = audit(capsys, gateway, evidence.anchor)
    assert code == 1
    assert reasons(report) == {"log-truncated"}


def _rebuilt_state(gateway: Path) -> bytes:
    """The tree state over the records as they now are: a careful operator's cover-up."""
    return TreeState().extend(_leaves(gateway)).to_bytes()


def _leaves(gateway: Path) -> list[bytes]:
    """The Merkle leaf hashes of the records as they now are, in seq order."""
    leaves: list[bytes] = []
    with sqlite3.connect(gateway / "messagelog.db") as db:
        for row in db.execute(
            "SELECT kind, direction, logged_at_ms, peer, header, body, signature,"
            " signer_cert_sha256 FROM messages ORDER BY seq"
        ):
            leaf = LogLeaf.of(
                kind=row[0], direction=row[1], logged_at_ms=row[2], peer=row[3], header=row[4],
                body=row[5], signature=row[6], signer_cert_sha256=row[7],
            )  # fmt: skip
            leaves.append(leaf_hash(encode_leaf(leaf)))
    return leaves


def test_reordered_records_are_caught(
    evidence: Evidence, gateway: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper(
        gateway,
        "UPDATE messages SET seq = -1 WHERE seq = 1",
        "UPDATE messages SET seq = 1 WHERE seq = 2",
        "UPDATE messages SET seq = 2 WHERE seq = -1",
    )
    tamper(gateway, "UPDATE tree_state SET state = ?", params=(_rebuilt_state(gateway),))
    code, report = audit(capsys, gateway, evidence.anchor)
    assert code == 1
    assert reasons(report) == {"checkpoint-root-mismatch"}


def test_a_checkpoint_with_a_broken_signature_is_caught(
    evidence: Evidence, gateway: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = CheckpointStore(gateway / "checkpoints")
    size = store.sizes()[0]
    text, (sig,) = parse_note(store.note_path(size).read_bytes())
    raw = sig.key_id.to_bytes(4, "big") + flip_last(sig.signature)
    line = f"\u2014 {sig.name} {base64.b64encode(raw).decode()}\n"
    store.note_path(size).write_bytes(f"{text}\n{line}".encode())
    code, report = audit(capsys, gateway, evidence.anchor)
    assert code == 1
    reasons = {(f["reason"], f["checkpoint"]) for f in report["failures"]}
    assert ("checkpoint-bad-signature", size) in reasons
    # The note's bytes changed, so its timestamp (over those exact bytes) no longer
    # matches either; nothing else fails.
    assert reasons <= {("checkpoint-bad-signature", size), ("timestamp-imprint-mismatch", size)}


def test_a_proof_with_a_changed_hash_is_caught(
    evidence: Evidence, gateway: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = CheckpointStore(gateway / "checkpoints")
    size = store.sizes()[1]
    old, hashes = parse_proof_text(store.proof_path(size).read_text())
    store.proof_path(size).write_text(proof_text(old, [flip_last(hashes[0]), *hashes[1:]]))
    code, report = audit(capsys, gateway, evidence.anchor)
    assert code == 1
    assert [(f["reason"], f["checkpoint"]) for f in report["failures"]] == [
        ("proof-root-mismatch", size)
    ]


def test_a_malformed_checkpoint_note_is_evidence_invalid(
    evidence: Evidence, gateway: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = CheckpointStore(gateway / "checkpoints")
    store.note_path(store.sizes()[-1]).write_bytes(b"\x00 not a note")
    code, report = audit(capsys, gateway, evidence.anchor)
    assert code == 1
    assert "checkpoint-malformed" in reasons(report)


def test_the_wrong_anchor_is_evidence_invalid(
    evidence: Evidence, gateway: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other-anchor.pem"
    other.write_bytes(new_ca("other", dt.datetime.now(dt.UTC)).cert.public_bytes(Encoding.PEM))
    code, report = audit(capsys, gateway, other)
    assert code == 1
    assert reasons(report) == {"configuration-untrusted"}


@pytest.mark.parametrize("broken", ["no-log", "garbage-log", "no-conf", "garbage-anchor"])
def test_unreadable_evidence_cannot_be_checked(
    evidence: Evidence, gateway: Path, capsys: pytest.CaptureFixture[str], broken: str
) -> None:
    anchor = gateway / "given-anchor.pem"
    shutil.copyfile(evidence.anchor, anchor)
    if broken == "no-log":
        (gateway / "messagelog.db").unlink()
    elif broken == "garbage-log":
        for suffix in ("", "-wal", "-shm"):
            (gateway / f"messagelog.db{suffix}").unlink(missing_ok=True)
        (gateway / "messagelog.db").write_bytes(b"not a database" * 100)
    elif broken == "no-conf":
        (gateway / "globalconf.bin").unlink()
    else:
        anchor.write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    capsys.readouterr()
    args = ["audit", "log", "--gateway", str(gateway), "--anchor", str(anchor), "--json"]
    assert main(args) == 3
    out, err = capsys.readouterr()
    assert out == "" and "could not check" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit"]) == 2
    with pytest.raises(SystemExit) as exit_:
        main(["audit", "log", "--anchor", "a.pem"])
    assert exit_.value.code == 2


def test_audit_keys_prints_the_log_key_that_opens_the_checkpoints(
    evidence: Evidence, gateway: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    conf = gateway / "globalconf.bin"
    assert main(["audit", "keys", "--anchor", str(evidence.anchor), "--conf", str(conf)]) == 0
    verifiers = [parse_vkey(line) for line in capsys.readouterr().out.splitlines()]
    store = CheckpointStore(gateway / "checkpoints")
    opened = open_note(store.note_path(store.sizes()[-1]).read_bytes(), verifiers)
    assert opened.verified[0].name == f"zhol/{CONSUMER_GATEWAY}"


def test_a_stored_tree_state_that_differs_from_the_records_is_caught(
    evidence: Evidence, gateway: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper(gateway, "UPDATE tree_state SET state = ?", params=(TreeState().to_bytes(),))
    code, report = audit(capsys, gateway, evidence.anchor)
    assert code == 1
    assert reasons(report) == {"tree-state-mismatch"}


def _cosigs(gateway: Path) -> list[Path]:
    return sorted((gateway / "checkpoints").glob("*.cosig"))


def test_a_broken_cosignature_is_caught(
    evidence: Evidence, gateway: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cosig = _cosigs(gateway)[0]
    line = cosig.read_text()
    name, _, sig = line.rstrip("\n").rpartition(" ")
    flipped = sig[:-3] + ("A" if sig[-3] != "A" else "B") + sig[-2:]
    cosig.write_text(f"{name} {flipped}\n")
    code, report = audit(capsys, gateway, evidence.anchor)
    assert code == 1
    assert any(f["reason"].startswith("cosignature-") for f in report["failures"])


def test_a_cosignature_moved_to_another_checkpoint_is_caught(
    evidence: Evidence, gateway: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cosig = _cosigs(gateway)[0]
    notes = sorted((gateway / "checkpoints").glob("*.note"))
    other = next(n for n in notes if n.with_suffix(".cosig") != cosig)
    other.with_suffix(".cosig").write_text(cosig.read_text())
    code, report = audit(capsys, gateway, evidence.anchor)
    assert code == 1
    assert any(f["reason"].startswith("cosignature-") for f in report["failures"])


def _tokens(gateway: Path) -> list[Path]:
    return sorted((gateway / "checkpoints").glob("*.tsr"))


def test_a_broken_timestamp_is_caught(
    evidence: Evidence, gateway: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tsr = _tokens(gateway)[0]
    data = bytearray(tsr.read_bytes())
    data[-10] ^= 0x01  # inside the token's signature
    tsr.write_bytes(bytes(data))
    code, report = audit(capsys, gateway, evidence.anchor)
    assert code == 1
    assert any(f["reason"].startswith("timestamp-") for f in report["failures"])


def test_a_timestamp_for_other_data_is_caught(
    evidence: Evidence, gateway: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tsr = _tokens(gateway)[0]
    notes = sorted((gateway / "checkpoints").glob("*.note"))
    other = next(n for n in notes if n.with_suffix(".tsr") != tsr)
    other.with_suffix(".tsr").write_bytes(tsr.read_bytes())
    code, report = audit(capsys, gateway, evidence.anchor)
    assert code == 1
    assert any(f["reason"].startswith("timestamp-") for f in report["failures"])


# An operator rewriting its own evidence with every key it holds.


def _log_signer(gateway: Path) -> NoteSigner:
    key = read_private_key(gateway / "keys" / LOG_KEY)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return NoteSigner(gateway_origin(CONSUMER_GATEWAY), key)


def _resign_checkpoints(gateway: Path) -> None:
    """Every checkpoint note signed again with the gateway's log key over the records as
    they now are, and every consistency proof recomputed: all but the witness's and the
    authority's signatures, which the operator cannot make."""
    store = CheckpointStore(gateway / "checkpoints")
    leaves = _leaves(gateway)
    nodes = merkle.nodes_from_leaves(leaves)
    signer = _log_signer(gateway)
    previous = 0
    for size in store.sizes():
        text = format_checkpoint(Checkpoint(signer.name, size, merkle.root(leaves[:size])))
        store.note_path(size).write_bytes(sign_note(text, [signer]))
        if previous:
            proof = merkle.consistency_proof(previous, size, nodes)
            store.proof_path(size).write_text(proof_text(previous, proof))
        previous = size


def test_a_record_re_signed_by_the_operator_after_it_was_cosigned_is_caught(
    evidence: Evidence, gateway: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sign_cert = read_certificate(gateway / "keys" / SIGN_CERT).public_bytes(Encoding.DER)
    with sqlite3.connect(gateway / "messagelog.db") as db:
        seq, header, body = db.execute(
            "SELECT seq, header, body FROM messages WHERE kind = 'request' AND direction = 'out'"
            " AND signer_cert_sha256 = ? ORDER BY seq LIMIT 1",
            (hashlib.sha256(sign_cert).digest(),),
        ).fetchone()
    # Another body (the request now names someone else), validly signed by the
    # gateway's own member signing key, with its digest and the tree state to match.
    body = flip_last(body)
    signed = message_signed_bytes(REQUEST_TYPE, header, body)
    key = read_private_key(gateway / "keys" / SIGN_KEY)
    tamper(
        gateway,
        f"UPDATE messages SET body = ?, signature = ?, signed_digest = ? WHERE seq = {seq}",
        params=(body, sign_bytes(key, signed), hashlib.sha256(signed).digest()),
    )
    tamper(gateway, "UPDATE tree_state SET state = ?", params=(_rebuilt_state(gateway),))
    _resign_checkpoints(gateway)
    cosigned = {int(p.stem) for p in _cosigs(gateway)}
    timestamped = {int(p.stem) for p in _tokens(gateway)}
    assert cosigned and seq <= min(cosigned)  # the record was cosigned before the rewrite

    code, report = audit(capsys, gateway, evidence.anchor)
    assert code == 1
    failures = {(f["reason"], f["checkpoint"]) for f in report["failures"]}
    # Every record and checkpoint is consistent and validly signed by the gateway's own
    # keys; only the witness's cosignatures (and the authority's tokens, over the old
    # note bytes) no longer match.
    assert failures == {("cosignature-bad-signature", s) for s in cosigned} | {
        ("timestamp-imprint-mismatch", s) for s in timestamped
    }


def test_a_forked_checkpoint_signed_with_the_log_key_is_caught(
    evidence: Evidence, gateway: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = CheckpointStore(gateway / "checkpoints")
    size = int(_cosigs(gateway)[0].stem)
    signer = _log_signer(gateway)
    forged_root = merkle.leaf_hash(b"another history")
    fork = sign_note(format_checkpoint(Checkpoint(signer.name, size, forged_root)), [signer])
    store.note_path(size).write_bytes(fork)
    code, report = audit(capsys, gateway, evidence.anchor)
    assert code == 1
    failures = {(f["reason"], f["checkpoint"]) for f in report["failures"]}
    assert {("checkpoint-root-mismatch", size), ("cosignature-bad-signature", size)} <= failures
    # The proofs to and from the forked root fail too; nothing else does.
    assert {f for f in failures if f[1] != size} <= {
        ("proof-root-mismatch", s) for s in store.sizes() if s > size
    }


async def _token_from(tsa: TsaPaths, data: bytes) -> bytes:
    """A granted token over ``data`` from a running authority with ``tsa``'s key."""
    server = TsaServer(tsa, free_port())
    await server.start()
    try:
        return await post(server.url, build_request(data, nonce=secrets.randbits(64)))
    finally:
        await server.stop()


@pytest.mark.parametrize(
    ("issuer", "reason"),
    [
        # An authority of its own, with a CA the configuration does not know.
        ("own-ca", "timestamp-untrusted-signer"),
        # An authority the federation CA certified, but not the one the configuration approves.
        ("federation-ca", "timestamp-untrusted-signer"),
    ],
)
def test_a_timestamp_from_an_unapproved_authority_is_caught(
    evidence: Evidence,
    gateway: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    issuer: str,
    reason: str,
) -> None:
    if issuer == "own-ca":
        registry = tmp_path / "other-registry"
        init_registry(registry, "KZ", True)
    else:
        registry = evidence.registry
    rogue = init_tsa(tmp_path / "rogue-tsa", registry, "KZ-rogue-tsa")
    tsr = _tokens(gateway)[0]
    note = tsr.with_suffix(".note").read_bytes()
    tsr.write_bytes(asyncio.run(_token_from(rogue, note)))
    code, report = audit(capsys, gateway, evidence.anchor)
    assert code == 1
    assert [(f["reason"], f["checkpoint"]) for f in report["failures"]] == [(reason, int(tsr.stem))]


@pytest.mark.parametrize(
    ("suffix", "content", "reason"),
    [
        (".note", b"", "checkpoint-malformed"),
        (".proof", b"not a proof\n", "proof-malformed"),
        (".proof", b"", "proof-malformed"),
        (".cosig", b"not a cosignature\n", "cosignature-malformed"),
        (".cosig", b"", "cosignature-malformed"),
        (".tsr", b"\x30\x03\x02\x01\x00", "timestamp-malformed"),
        (".tsr", b"not DER at all", "timestamp-malformed"),
        (".tsr", b"", "timestamp-malformed"),
    ],
)
def test_a_malformed_checkpoint_file_is_evidence_invalid(
    evidence: Evidence,
    gateway: Path,
    capsys: pytest.CaptureFixture[str],
    suffix: str,
    content: bytes,
    reason: str,
) -> None:
    store = CheckpointStore(gateway / "checkpoints")
    # The newest checkpoint with a file of that kind (every kind exists in the evidence).
    path = next(
        p
        for size in reversed(store.sizes())
        if (p := store.note_path(size).with_suffix(suffix)).exists()
    )
    path.write_bytes(content)
    code, report = audit(capsys, gateway, evidence.anchor)
    assert code == 1
    assert (reason, int(path.stem)) in {(f["reason"], f["checkpoint"]) for f in report["failures"]}


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        # Read, and not signed by the federation: evidence invalid.
        ("garbage-conf", 1),
        ("empty-conf", 1),
        # Not what the auditor can read: could not check.
        ("log-of-another-schema", 3),
        ("undecodable-cosig", 3),
    ],
)
def test_more_broken_evidence_is_refused_without_a_traceback(
    evidence: Evidence,
    gateway: Path,
    capsys: pytest.CaptureFixture[str],
    broken: str,
    expected: int,
) -> None:
    if broken in ("garbage-conf", "empty-conf"):
        garbage = b"\x0a\xff garbage" if broken == "garbage-conf" else b""
        (gateway / "globalconf.bin").write_bytes(garbage)
    elif broken == "log-of-another-schema":
        for suffix in ("", "-wal", "-shm"):
            (gateway / f"messagelog.db{suffix}").unlink(missing_ok=True)
        with sqlite3.connect(gateway / "messagelog.db") as db:
            db.execute("CREATE TABLE messages (seq INTEGER)")
    else:
        _cosigs(gateway)[0].write_bytes(b"\xff\xfe not utf-8\n")
    capsys.readouterr()
    code = main(
        ["audit", "log", "--gateway", str(gateway), "--anchor", str(evidence.anchor), "--json"]
    )
    out, err = capsys.readouterr()
    assert code == expected
    if expected == 1:
        assert reasons(json.loads(out)) == {"configuration-untrusted"}
    else:
        assert out == "" and err.startswith("zhol audit log: could not check: ")
        assert "Traceback" not in err


def _witnessed(evidence: Evidence, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """The last checkpoint the registry's witness cosigned for the gateway, from the registry."""
    note = tmp_path / "witnessed.note"
    assert main(["registry", "witness-checkpoint", "--dir", str(evidence.registry),
                 "--gateway", CONSUMER_GATEWAY, "--out", str(note)]) == 0  # fmt: skip
    assert main(["registry", "witness-checkpoint", "--dir", str(evidence.registry),
                 "--gateway", CONSUMER_GATEWAY, "--out", str(note)]) == 3  # fmt: skip  (exists)
    capsys.readouterr()
    return note


def test_the_witness_checkpoint_catches_a_rewrite_whose_cosignatures_were_deleted(
    evidence: Evidence, gateway: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    witnessed = _witnessed(evidence, tmp_path, capsys)
    code, report = audit(capsys, gateway, evidence.anchor, "--witnessed", str(witnessed))
    assert (code, report["failures"]) == (0, [])
    # The operator rewrites an unsigned part of a record cosigned long ago (the peer its
    # leaf binds), rebuilds the tree, re-signs every checkpoint with its log key and
    # deletes the cosignatures and tokens it cannot forge.
    with sqlite3.connect(gateway / "messagelog.db") as db:
        (seq,) = db.execute("SELECT MIN(seq) FROM messages WHERE kind = 'request'").fetchone()
    tamper(gateway, f"UPDATE messages SET peer = 'x' WHERE seq = {seq}")
    tamper(gateway, "UPDATE tree_state SET state = ?", params=(_rebuilt_state(gateway),))
    _resign_checkpoints(gateway)
    for path in [*_cosigs(gateway), *_tokens(gateway)]:
        path.unlink()
    code, report = audit(capsys, gateway, evidence.anchor)
    assert "witnessed-root-mismatch" not in reasons(report)  # its own files cannot show it
    code, report = audit(capsys, gateway, evidence.anchor, "--witnessed", str(witnessed))
    assert code == 1 and "witnessed-root-mismatch" in reasons(report)


def test_the_witness_checkpoint_catches_a_truncated_log(
    evidence: Evidence, gateway: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    witnessed = _witnessed(evidence, tmp_path, capsys)
    tamper(gateway, "DELETE FROM messages WHERE seq > 1", "DELETE FROM tree_nodes")
    tamper(gateway, "UPDATE tree_state SET state = ?", params=(_rebuilt_state(gateway),))
    shutil.rmtree(gateway / "checkpoints")
    code, report = audit(capsys, gateway, evidence.anchor, "--witnessed", str(witnessed))
    assert code == 1 and "witnessed-log-truncated" in reasons(report)
    # A note that is not the witness's is refused as such.
    forged = tmp_path / "forged.note"
    forged.write_bytes(witnessed.read_bytes().rsplit(b"\n\xe2\x80\x94", 1)[0] + b"\n")
    code, report = audit(capsys, gateway, evidence.anchor, "--witnessed", str(forged))
    assert code == 1 and "witnessed-not-cosigned" in reasons(report)


def test_progress_is_reported_on_long_runs(
    evidence: Evidence,
    gateway: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import zhol.cli.audit as audit_cli

    # Every chunk of one record reports (the interval is the only thing changed).
    monkeypatch.setattr(audit_cli, "CHUNK_ROWS", 1)
    monkeypatch.setattr(audit_cli, "PROGRESS_EVERY_S", 0.0)
    code = main(["audit", "log", "--gateway", str(gateway), "--anchor", str(evidence.anchor),
                 "--json", "--progress"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0 and json.loads(captured.out)["result"] == "verified"
    total = record_count(gateway)
    assert f"{total}/{total} records checked" in captured.err
