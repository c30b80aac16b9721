"""The checks of ``zhol audit log``, as pure functions over values (no file, no database).

``cli/audit.py`` reads the evidence (a gateway's log, its checkpoint files, the
signed configuration) and hands it here; every check returns :class:`Failure`
values with a stable ``reason`` (tests and scripts match reasons, never text).
What each check covers is in docs/audit.md.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from zhol.core.errors import ZholError
from zhol.core.ids import GatewayId
from zhol.gateway.checkpoints import parse_proof_text
from zhol.gateway.messagelog import check_record
from zhol.gateway.timestamping import trusted_cas_for
from zhol.security.evidence_build import CheckpointFiles, Row
from zhol.security.globalconf import GlobalConf
from zhol.security.keys import PublicKey
from zhol.security.logleaf import LeafError, LogLeaf
from zhol.security.logleaf import encode as encode_leaf
from zhol.security.merkle import MerkleError, TreeState, leaf_hash, verify_consistency
from zhol.security.sealing import (
    EVENT_TYPE,
    REQUEST_TYPE,
    RESPONSE_TYPE,
    message_signed_bytes,
    verify_bytes,
)
from zhol.security.signednote import (
    Checkpoint,
    NoteError,
    Verifier,
    ed25519_verifier,
    gateway_origin,
    open_note,
    parse_checkpoint,
    parse_note,
    verify_cosignature,
)
from zhol.security.timestamp import TimestampError, VerifiedTimestamp, verify_response
from zhol.security.validation import CertificateValidator

_PAYLOAD_TYPES = {"request": REQUEST_TYPE, "response": RESPONSE_TYPE, "event": EVENT_TYPE}

# What the audit does not check, said in every report (never passed silently).
NOT_CHECKED = (
    (
        "revocation-time",
        "the configuration lists revoked certificates without a time, so a certificate"
        " revoked after it signed fails its old records too (fail closed)",
    ),
)


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed check: which part of the evidence, a stable reason, a detail for people."""

    reason: str
    detail: str
    seq: int | None = None
    checkpoint: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "detail": self.detail,
            "seq": self.seq,
            "checkpoint": self.checkpoint,
        }


@dataclass(frozen=True, slots=True)
class SignerKeys:
    """Each distinct signer certificate validated once: hash -> key, or why it is refused."""

    keys: Mapping[bytes, PublicKey]
    refused: Mapping[bytes, Failure]  # seq left empty: one per certificate, not per record
    members: Mapping[bytes, str]  # the member each valid certificate vouches for


def validate_signers(
    certs: Mapping[bytes, bytes],
    first_use_ms: Mapping[bytes, tuple[int, int]],
    validator: CertificateValidator,
) -> SignerKeys:
    """Validate each certificate the records use, at the earliest and latest time of the
    records it signed (``first_use_ms``: hash -> (min, max); see :func:`evidence_times`).
    Validity is an interval and revocation has no time, so the two ends decide."""
    keys: dict[bytes, PublicKey] = {}
    refused: dict[bytes, Failure] = {}
    members: dict[bytes, str] = {}
    for digest, (first_ms, last_ms) in first_use_ms.items():
        der = certs.get(digest)
        if der is None:
            refused[digest] = Failure("certificate-missing", f"no certificate {digest.hex()[:16]}")
            continue
        if not hmac.compare_digest(hashlib.sha256(der).digest(), digest):
            refused[digest] = Failure("certificate-hash-mismatch", f"{digest.hex()[:16]}")
            continue
        try:
            for ms in sorted({first_ms, last_ms}):
                member, key = validator.verify_signing_cert(der, _utc(ms))
        except ZholError as err:
            reason = (
                "certificate-revoked" if err.code.name == "RevokedCertificate"
                else "certificate-invalid"
            )  # fmt: skip
            refused[digest] = Failure(reason, f"{digest.hex()[:16]}: {err.detail}")
            continue
        keys[digest] = key
        members[digest] = str(member)
    return SignerKeys(keys, refused, members)


@dataclass(frozen=True, slots=True)
class EvidenceTimes:
    """When each signer certificate must have been valid: hash -> (earliest, latest) ms."""

    by_cert: Mapping[bytes, tuple[int, int]]
    timestamped: int  # records whose time is a timestamp's over a checkpoint covering them
    logged: int  # records not yet covered by a timestamped checkpoint: their logged time


def evidence_times(rows: Sequence[Row], timestamp_ms: Mapping[int, int]) -> EvidenceTimes:
    """Each record's time is the time an RFC 3161 token vouches for over the first
    checkpoint that covers it (``timestamp_ms``: checkpoint size -> token time): the
    record existed then, so its signer certificate must have been valid then. A record
    no timestamped checkpoint covers yet falls back to its logged time (the gateway's
    own clock)."""
    sizes = sorted(timestamp_ms)
    use: dict[bytes, tuple[int, int]] = {}
    stamped = 0
    for row in rows:
        at = bisect.bisect_left(sizes, row.seq)
        if at < len(sizes):
            ms = timestamp_ms[sizes[at]]
            stamped += 1
        else:
            ms = int(row.columns["logged_at_ms"])
        first, last = use.get(row.signer_cert_sha256, (ms, ms))
        use[row.signer_cert_sha256] = (min(first, ms), max(last, ms))
    return EvidenceTimes(use, stamped, len(rows) - stamped)


def _utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


@dataclass(frozen=True, slots=True)
class ChunkResult:
    failures: tuple[Failure, ...]
    leaves: tuple[bytes, ...]  # one leaf hash per row, in order


def check_rows(rows: Sequence[Row], signers: SignerKeys) -> ChunkResult:
    """Per record: its signature over the exact bytes, its signed digest and columns
    against its signed header, and its Merkle leaf hash. Safe to run in threads."""
    failures: list[Failure] = []
    leaves: list[bytes] = []
    for row in rows:
        seq = row.seq
        check = check_record(row.columns, row.header, row.body)  # read, never changed
        kind = check.signed["kind"] if check.signed is not None else row.columns["kind"]
        for name in check.mismatch:
            if name == "header":
                failures.append(Failure("header-malformed", "not a MessageHeader", seq=seq))
            elif name == "signed_digest":
                failures.append(
                    Failure("signed-digest-mismatch", "not the digest of header and body", seq=seq)
                )
            else:
                failures.append(
                    Failure("column-mismatch", f"{name} differs from the signed header", seq=seq)
                )
        refused = signers.refused.get(row.signer_cert_sha256)
        key = signers.keys.get(row.signer_cert_sha256)
        payload_type = _PAYLOAD_TYPES.get(kind)
        if refused is not None:
            failures.append(Failure(refused.reason, refused.detail, seq=seq))
        elif key is not None and payload_type is not None:
            signed = check.signed_bytes  # built for the signed kind's payload type
            if signed is None:  # the header did not decode: the column's kind
                signed = message_signed_bytes(payload_type, row.header, row.body)
            try:
                verify_bytes(key, signed, row.signature)
            except ZholError:
                failures.append(Failure("bad-signature", "the signature does not verify", seq=seq))
            else:
                member = signers.members.get(row.signer_cert_sha256)
                if check.signed is not None and member != check.signed["signer"]:
                    failures.append(
                        Failure(
                            "signer-mismatch",
                            f"signed by {member}; the header needs {check.signed['signer']}",
                            seq=seq,
                        )
                    )
        leaves.append(_leaf(row, failures))
    return ChunkResult(tuple(failures), tuple(leaves))


def _leaf(row: Row, failures: list[Failure]) -> bytes:
    c = row.columns
    try:
        leaf = LogLeaf.of(
            kind=c["kind"], direction=c["direction"], logged_at_ms=c["logged_at_ms"],
            peer=c["peer"], header=row.header, body=row.body, signature=row.signature,
            signer_cert_sha256=row.signer_cert_sha256,
        )  # fmt: skip
        return leaf_hash(encode_leaf(leaf))
    except LeafError as err:
        failures.append(Failure("leaf-unencodable", str(err), seq=row.seq))
        return b"\x00" * 32  # a hash no checkpoint matches: the tree check fails too


def check_sequence(seqs: Sequence[int]) -> list[Failure]:
    """Records numbered 1, 2, 3, ... with no gap (leaf n is seq n + 1)."""
    failures: list[Failure] = []
    expected = 1
    for seq in seqs:
        if seq != expected:
            failures.append(Failure("seq-gap", f"seq {seq} where {expected} was expected", seq=seq))
        expected = seq + 1
    return failures


@dataclass(frozen=True, slots=True)
class RebuiltTree:
    size: int
    root: bytes
    roots: Mapping[int, bytes]  # the root at each size asked for (sizes <= size)


def rebuild_tree(leaves: Sequence[bytes], sizes: Sequence[int]) -> RebuiltTree:
    """The tree over ``leaves``, and its root at each of ``sizes`` it reaches."""
    wanted = set(sizes)
    roots: dict[int, bytes] = {}
    tree = TreeState()
    for leaf in leaves:
        tree = tree.append(leaf)
        if tree.size in wanted:
            roots[tree.size] = tree.root()
    return RebuiltTree(tree.size, tree.root(), roots)


def check_tree_state(rebuilt: RebuiltTree, stored: bytes | None) -> list[Failure]:
    """The tree state the gateway stored equals the tree rebuilt from the records."""
    if stored is None:
        if rebuilt.size == 0:
            return []
        return [Failure("tree-state-missing", "no stored tree state")]
    try:
        state = TreeState.from_bytes(stored)
    except MerkleError as err:
        return [Failure("tree-state-malformed", err.detail)]
    if state.size != rebuilt.size or state.root() != rebuilt.root:
        return [
            Failure(
                "tree-state-mismatch",
                f"stored tree of {state.size} records differs from the rebuilt tree of"
                f" {rebuilt.size}",
            )
        ]
    return []


@dataclass(frozen=True, slots=True)
class CheckpointReport:
    checked: int
    verified_roots: Mapping[int, bytes]
    failures: tuple[Failure, ...]


@dataclass(frozen=True, slots=True)
class CosignatureReport:
    cosigned: int
    not_cosigned: tuple[int, ...]  # sizes the witness has not cosigned (yet)
    failures: tuple[Failure, ...]


@dataclass(frozen=True, slots=True)
class TimestampReport:
    timestamped: int
    not_timestamped: tuple[int, ...]
    failures: tuple[Failure, ...]
    times_ms: Mapping[int, int]  # checkpoint size -> the time its verified token vouches for


def verify_checkpoint_timestamp(
    tsr: bytes, note: bytes, conf: GlobalConf
) -> VerifiedTimestamp | str:
    """The token ``tsr`` verified over the exact ``note`` bytes, signed by an authority
    the configuration approves (its certificate, issued by its CA, valid at the token's
    time); else the failure reason (``imprint-mismatch``, ``bad-signature``, ...)."""
    reasons: list[str] = []
    for authority in conf.timestamp_authorities:
        try:
            cert = x509.load_der_x509_certificate(authority.cert_der)
            verified = verify_response(
                tsr, note, trusted_cas_for(authority, conf), tsa_certs=[cert]
            )
        except (TimestampError, ValueError) as err:
            reasons.append(getattr(err, "reason", "malformed"))
            continue
        if verified.tsa_cert_der == authority.cert_der:
            return verified
        reasons.append("untrusted_signer")
    reason = reasons[0] if len(set(reasons)) == 1 else "untrusted"
    return reason.replace("_", "-")


def check_timestamps(files: Sequence[CheckpointFiles], conf: GlobalConf) -> TimestampReport:
    """Each ``.tsr`` a granted RFC 3161 token over the exact note bytes, signed by an
    authority the verified configuration approves (its certificate, issued by its CA,
    valid at the token's time). A checkpoint without one is counted, not failed: the
    gateway timestamps off the message path, and fails closed itself once one waits
    longer than its limit."""
    failures: list[Failure] = []
    times: dict[int, int] = {}
    missing: list[int] = []
    for cp in sorted(files, key=lambda f: f.size):
        if cp.timestamp is None:
            missing.append(cp.size)
            continue
        verified = verify_checkpoint_timestamp(cp.timestamp, cp.note, conf)
        if isinstance(verified, str):
            failures.append(
                Failure(
                    f"timestamp-{verified}",
                    "no approved authority's token over this checkpoint"
                    if conf.timestamp_authorities
                    else "the configuration approves no timestamping authority",
                    checkpoint=cp.size,
                )
            )
            continue
        times[cp.size] = int(verified.gen_time.timestamp() * 1000)
    return TimestampReport(len(times), tuple(missing), tuple(failures), times)


def check_cosignatures(
    files: Sequence[CheckpointFiles], witness: Verifier | None
) -> CosignatureReport:
    """Each ``.cosig`` a valid cosignature/v1 by the configuration's witness over its
    checkpoint (the note's text). A checkpoint without one is reported, not failed:
    the last one a gateway signs at its stop is cosigned when it next starts."""
    failures: list[Failure] = []
    cosigned = 0
    missing: list[int] = []
    for cp in sorted(files, key=lambda f: f.size):
        if cp.cosignature is None:
            missing.append(cp.size)
            continue
        if witness is None:
            failures.append(
                Failure("witness-unknown", "the configuration names no witness", checkpoint=cp.size)
            )
            continue
        try:
            text = cp.note.decode("utf-8").split("\n\n")[0] + "\n"
            verify_cosignature(text, cp.cosignature, witness)
        except (NoteError, UnicodeDecodeError) as err:
            reason = err.reason if isinstance(err, NoteError) else "malformed"
            failures.append(Failure(f"cosignature-{reason}", str(err), checkpoint=cp.size))
            continue
        cosigned += 1
    return CosignatureReport(cosigned, tuple(missing), tuple(failures))


def open_checkpoint(
    note: bytes, size: int, origin: str, verifiers: Sequence[Verifier]
) -> Checkpoint | Failure:
    """The checkpoint in ``note`` if the gateway's log key signed it, for its origin and
    the ``size`` it is filed under; else why not."""
    try:
        checkpoint = parse_checkpoint(open_note(note, verifiers).text)
    except NoteError as err:
        return Failure(f"checkpoint-{err.reason}", err.detail, checkpoint=size)
    if checkpoint.origin != origin:
        return Failure("checkpoint-origin", f"origin {checkpoint.origin!r}", checkpoint=size)
    if checkpoint.size != size:
        return Failure("checkpoint-size", f"note says {checkpoint.size}", checkpoint=size)
    return checkpoint


def open_witnessed(
    note: bytes, origin: str, verifiers: Sequence[Verifier], witness: Verifier | None
) -> Checkpoint | Failure:
    """A checkpoint the witness hands out (``zhol registry witness-checkpoint``): signed by
    the gateway's log key and cosigned by the configuration's witness, or why not."""
    try:
        checkpoint = parse_checkpoint(open_note(note, verifiers).text)
        if checkpoint.origin != origin:
            return Failure("witnessed-origin", f"origin {checkpoint.origin!r}")
        if witness is None:
            return Failure("witness-unknown", "the configuration names no witness")
        text, signatures = parse_note(note)
        lines = [s.line for s in signatures if (s.name, s.key_id) == (witness.name, witness.key_id)]
        if not lines:
            return Failure("witnessed-not-cosigned", "no cosignature by the witness's key")
        for line in lines:
            verify_cosignature(text, line, witness)
    except NoteError as err:
        return Failure(f"witnessed-{err.reason}", err.detail)
    return checkpoint


def check_witnessed(checkpoint: Checkpoint, rebuilt: RebuiltTree) -> list[Failure]:
    """The log holds the witness's checkpoint: at least its size, and the same root there.
    Unlike the gateway's own files, an operator cannot delete it."""
    if checkpoint.size > rebuilt.size:
        return [
            Failure(
                "witnessed-log-truncated",
                f"the log has {rebuilt.size} records, the witnessed checkpoint {checkpoint.size}",
                checkpoint=checkpoint.size,
            )
        ]
    if checkpoint.size and rebuilt.roots.get(checkpoint.size) != checkpoint.root_hash:
        return [
            Failure(
                "witnessed-root-mismatch",
                "the records do not rebuild the root the witness cosigned",
                checkpoint=checkpoint.size,
            )
        ]
    return []


def log_verifiers(conf: GlobalConf, gateway_id: str) -> tuple[str, list[Verifier] | Failure]:
    """The gateway's checkpoint origin and its log keys (current, then previous ones,
    which older checkpoints verify with) from the verified configuration, or why there
    are none. ValueError if ``gateway_id`` is not a gateway id."""
    try:
        origin = gateway_origin(gateway_id)
        entry = conf.gateways.get(GatewayId.parse(gateway_id))
    except (ValueError, ZholError):  # NoteError is a ValueError
        raise ValueError(f"{gateway_id!r} is not a gateway id") from None
    if entry is None:
        return origin, Failure("gateway-unknown", f"{gateway_id} is not in the configuration")
    if not entry.log_public_key:
        return origin, Failure("log-key-missing", f"{gateway_id} has no log key")
    keys = (entry.log_public_key, *entry.previous_log_public_keys)
    return origin, [ed25519_verifier(origin, key) for key in dict.fromkeys(keys)]


def check_checkpoints(
    files: Sequence[CheckpointFiles],
    origin: str,
    verifiers: Sequence[Verifier],
    rebuilt: RebuiltTree,
) -> CheckpointReport:
    """Every checkpoint signed by the gateway's log key, for its origin and file size,
    matching the rebuilt tree at that size; each proof linking it to the previous one;
    and the log no shorter than any checkpoint."""
    failures: list[Failure] = []
    roots: dict[int, bytes] = {}
    for cp in sorted(files, key=lambda f: f.size):
        checkpoint = open_checkpoint(cp.note, cp.size, origin, verifiers)
        if isinstance(checkpoint, Failure):
            failures.append(checkpoint)
            continue
        roots[cp.size] = checkpoint.root_hash
        if cp.size > rebuilt.size:
            failures.append(
                Failure(
                    "log-truncated",
                    f"the log has {rebuilt.size} records, the checkpoint {cp.size}",
                    checkpoint=cp.size,
                )
            )
        elif rebuilt.roots.get(cp.size) != checkpoint.root_hash:
            failures.append(
                Failure(
                    "checkpoint-root-mismatch",
                    "the records do not rebuild the signed root",
                    checkpoint=cp.size,
                )
            )
    failures.extend(_check_proofs(files, roots))
    return CheckpointReport(len(files), roots, tuple(failures))


def _check_proofs(files: Sequence[CheckpointFiles], roots: Mapping[int, bytes]) -> list[Failure]:
    ordered = sorted(files, key=lambda f: f.size)
    links: list[Failure | None] = []
    if ordered and ordered[0].proof is not None:
        # The first checkpoint kept links to nothing: an earlier one was removed.
        links.append(_proof_link(ordered[0], None, roots))
    for previous, cp in zip(ordered, ordered[1:], strict=False):
        links.append(_proof_link(cp, previous.size, roots))
    return [f for f in links if f is not None]


def _proof_link(
    cp: CheckpointFiles, previous: int | None, roots: Mapping[int, bytes]
) -> Failure | None:
    def fail(reason: str, detail: str) -> Failure:
        return Failure(reason, detail, checkpoint=cp.size)

    if cp.proof is None:
        return fail("proof-missing", f"no consistency proof from checkpoint {previous}")
    try:
        old, hashes = parse_proof_text(cp.proof)
    except ValueError as err:
        return fail("proof-malformed", str(err))
    if previous is None or old != previous:
        return fail("proof-old-size", f"proof from {old}, previous checkpoint {previous}")
    if old not in roots or cp.size not in roots:
        return None  # a checkpoint that did not verify is reported on its own
    try:
        verify_consistency(old, cp.size, hashes, roots[old], roots[cp.size])
    except MerkleError as err:
        return fail(f"proof-{err.reason}", err.detail)
    return None


def chunked(items: Sequence[Row], size: int) -> list[Sequence[Row]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# ``zhol audit pair``: the two ends of each exchange.


@dataclass(frozen=True, slots=True)
class PairReport:
    matched: int  # records that crossed and are byte-identical at both ends
    only_first: int  # crossing records the first gateway logged, the second did not
    only_second: int
    failures: tuple[Failure, ...]


_SIGNED_PARTS = ("header", "body", "signature", "signed_digest")


def _signed_bytes(row: Row) -> tuple[bytes, bytes, bytes, str]:
    return (row.header, row.body, row.signature, str(row.columns["signed_digest"]))


def crossing_rows(rows: Sequence[Row], other: str) -> list[Row]:
    """The records of exchanges with gateway ``other``: those whose peer names it, and a
    request sent before any peer was chosen whose response names it."""
    answered = {
        r.columns["message_id"]
        for r in rows
        if r.columns["kind"] == "response" and r.columns["peer"] == other
    }
    return [
        r
        for r in rows
        if r.columns["peer"] == other
        or (
            not r.columns["peer"]
            and r.columns["kind"] == "request"
            and r.columns["message_id"] in answered
        )
    ]


def _by_key(rows: Sequence[Row], direction: str) -> dict[tuple[str, str], list[Row]]:
    grouped: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        if r.columns["direction"] == direction:
            grouped.setdefault((r.columns["message_id"], r.columns["kind"]), []).append(r)
    return grouped


def check_pair(
    first: Sequence[Row], first_id: str, second: Sequence[Row], second_id: str
) -> PairReport:
    """For every message id both gateways logged, each record one sent to the other
    (``out``) has a byte-identical record at the other end (``in``, same message id and
    kind): header, body, signature, signed digest. A record with no counterpart at all is
    counted (an exchange refused before the other end logged it is legitimate); records
    left over at both ends for the same message id and kind differ: ``pair-mismatch``."""
    a = crossing_rows(first, second_id)
    b = crossing_rows(second, first_id)
    shared = {r.columns["message_id"] for r in first} & {r.columns["message_id"] for r in second}
    failures: list[Failure] = []
    matched = only_first = only_second = 0
    for sender, receiver, sender_id, receiver_id, sender_is_first in (
        (a, b, first_id, second_id, True),
        (b, a, second_id, first_id, False),
    ):
        received = _by_key(receiver, "in")
        sent_by = _by_key(sender, "out")
        for key in sorted(set(sent_by) | set(received)):
            if key[0] not in shared:
                continue
            sent = sent_by.get(key, [])
            left = list(received.get(key, ()))
            unmatched: list[Row] = []
            for row in sent:
                same = next((r for r in left if _signed_bytes(r) == _signed_bytes(row)), None)
                if same is None:
                    unmatched.append(row)
                else:
                    left.remove(same)
                    matched += 1
            if unmatched and left:
                differ = [
                    name
                    for name, x, y in zip(
                        _SIGNED_PARTS,
                        _signed_bytes(unmatched[0]),
                        _signed_bytes(left[0]),
                        strict=True,
                    )
                    if x != y
                ]
                failures.append(
                    Failure(
                        "pair-mismatch",
                        f"message {key[0]} {key[1]} {sender_id} -> {receiver_id}:"
                        f" {', '.join(differ)} differ between the two logs",
                        seq=unmatched[0].seq if sender_is_first else left[0].seq,
                    )
                )
                continue
            sent_only, received_only = len(unmatched), len(left)
            if sender_is_first:
                only_first, only_second = only_first + sent_only, only_second + received_only
            else:
                only_first, only_second = only_first + received_only, only_second + sent_only
    return PairReport(matched, only_first, only_second, tuple(failures))
