"""The checks of ``zhol audit verify`` on an evidence bundle, as pure functions.

Trusts only the anchor: the bundle's configuration must verify against it, and every
other key, certificate authority and timestamping authority comes from that
configuration. What each check covers is in docs/audit.md, "Evidence bundles".
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from zhol.cli.audit_checks import (
    Failure,
    check_cosignatures,
    check_rows,
    check_timestamps,
    log_verifiers,
    open_checkpoint,
    validate_signers,
)
from zhol.core.errors import ZholError
from zhol.security.evidence_build import CheckpointFiles, Row, published
from zhol.security.evidence_bundle import Bundle, BundleRecord
from zhol.security.globalconf import GlobalConf, verify_global_conf
from zhol.security.logleaf import LeafError, LogLeaf
from zhol.security.logleaf import encode as encode_leaf
from zhol.security.merkle import MerkleError, verify_inclusion
from zhol.security.validation import CertificateValidator

# Said in every report: what a bundle cannot show (never passed silently).
BUNDLE_NOT_CHECKED = (
    (
        "completeness",
        "that the bundle holds every record of its selection: a bundle proves the records"
        " it holds; `zhol audit log` on the gateway's whole log checks the rest",
    ),
    (
        "revocation-time",
        "the configuration lists revoked certificates without a time, so a certificate"
        " revoked after it signed fails its old records too (fail closed)",
    ),
)


@dataclass(frozen=True, slots=True)
class RecordFinding:
    """What a verified record shows: who signed it, and by when it existed."""

    seq: int
    message_id: str
    kind: str
    direction: str
    signer: str | None
    tree_size: int
    existed_by: dt.datetime | None  # the timestamp over its checkpoint

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "message_id": self.message_id,
            "kind": self.kind,
            "direction": self.direction,
            "signer": self.signer,
            "checkpoint": self.tree_size,
            "existed_by": None if self.existed_by is None else self.existed_by.isoformat(),
        }


@dataclass(slots=True)
class BundleReport:
    gateway: str
    checked: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    records: list[RecordFinding] = field(default_factory=list)


def verify_bundle(bundle: Bundle, anchor_der: bytes) -> BundleReport:
    """Every check of ``zhol audit verify``: nothing in the bundle is taken on trust."""
    report = BundleReport(bundle.gateway)
    try:
        conf = verify_global_conf(bundle.configuration, anchor_der)
    except ZholError as err:
        report.failures.append(Failure("configuration-untrusted", err.detail))
        return report  # every other check depends on the configuration
    report.checked.append(f"configuration v{conf.version} verified against the anchor")
    try:
        origin, verifiers = log_verifiers(conf, bundle.gateway)
    except ValueError as exc:
        report.failures.append(Failure("bundle-malformed", str(exc)))
        return report
    if isinstance(verifiers, Failure):
        report.failures.append(verifiers)
        return report
    report.failures.extend(_check_published(bundle, conf))
    report.checked.append("the CA, TSA and key copies in the bundle equal the configuration's")

    files = [CheckpointFiles(c.size, c.note, None, c.cosignature, c.timestamp)
             for c in bundle.checkpoints]  # fmt: skip
    roots: dict[int, bytes] = {}
    for cp in files:
        checkpoint = open_checkpoint(cp.note, cp.size, origin, verifiers)
        if isinstance(checkpoint, Failure):
            report.failures.append(checkpoint)
        else:
            roots[cp.size] = checkpoint.root_hash
    stamps = check_timestamps(files, conf)
    cosigs = check_cosignatures(files, conf.witness_verifier())
    report.failures.extend(stamps.failures)
    report.failures.extend(cosigs.failures)
    report.failures.extend(
        Failure("timestamp-missing", "no RFC 3161 token over this checkpoint", checkpoint=size)
        for size in stamps.not_timestamped
    )
    report.failures.extend(
        Failure("cosignature-missing", "the witness's cosignature is missing", checkpoint=size)
        for size in cosigs.not_cosigned
    )
    report.checked.append(
        f"{len(files)} checkpoints: the gateway's log-key signature, origin and size;"
        f" {stamps.timestamped} RFC 3161 tokens by approved authorities over the exact notes;"
        f" {cosigs.cosigned} witness cosignatures"
    )

    report.failures.extend(_check_records(bundle, conf, roots, stamps.times_ms, report))
    report.counts = {
        "records": len(bundle.records),
        "checkpoints": len(files),
        "timestamped": stamps.timestamped,
        "cosigned": cosigs.cosigned,
        "failures": len(report.failures),
    }
    return report


def _check_published(bundle: Bundle, conf: GlobalConf) -> list[Failure]:
    expected = published(conf, bundle.gateway)
    failures = []
    for name in ("ca_certificates", "tsa_certificates", "vkeys"):
        if getattr(bundle, name) != getattr(expected, name):
            failures.append(
                Failure("copy-mismatch", f"{name} differ from what the configuration says")
            )
    return failures


def _check_records(
    bundle: Bundle,
    conf: GlobalConf,
    roots: Mapping[int, bytes],
    times_ms: Mapping[int, int],
    report: BundleReport,
) -> list[Failure]:
    failures: list[Failure] = []
    rows = [_row(r) for r in bundle.records]
    # A record existed by the time the token over the checkpoint proving it vouches
    # for: its certificate must have been valid then (else at its logged time).
    use: dict[bytes, tuple[int, int]] = {}
    for r in bundle.records:
        ms = times_ms.get(r.tree_size, int(r.columns["logged_at_ms"]))
        first, last = use.get(r.signer_cert_sha256, (ms, ms))
        use[r.signer_cert_sha256] = (min(first, ms), max(last, ms))
    try:
        validator = CertificateValidator(conf.ca_certs_der, conf.revoked_cert_sha256)
    except ValueError as exc:
        return [Failure("configuration-unusable", f"its CA certificates: {exc}")]
    signers = validate_signers(bundle.certificates, use, validator)
    checked = check_rows(rows, signers)
    failures.extend(checked.failures)
    for record, leaf in zip(bundle.records, checked.leaves, strict=True):
        failures.extend(_check_inclusion(record, leaf, roots))
        if not bundle.selection.matches(record.columns):
            failures.append(
                Failure("selection-mismatch", "not a record the bundle's selection names",
                        seq=record.seq)
            )  # fmt: skip
        stamp = times_ms.get(record.tree_size)
        report.records.append(
            RecordFinding(
                seq=record.seq, message_id=str(record.columns["message_id"]),
                kind=str(record.columns["kind"]), direction=str(record.columns["direction"]),
                signer=signers.members.get(record.signer_cert_sha256),
                tree_size=record.tree_size,
                existed_by=None if stamp is None else dt.datetime.fromtimestamp(
                    stamp / 1000, tz=dt.UTC),
            )
        )  # fmt: skip
    report.checked.append(
        f"{len(rows)} records: signature over the exact signed bytes, signer certificate"
        " (chained to the federation CA, valid when the timestamp says the record existed),"
        " signer is the member the signed header names, signed digest, columns against the"
        " signed header, leaf encoding, inclusion proof against its signed checkpoint"
    )
    return failures


def _row(r: BundleRecord) -> Row:
    return Row(dict(r.columns), r.header, r.body, r.signature, r.signer_cert_sha256)


def _check_inclusion(
    record: BundleRecord, leaf: bytes, roots: Mapping[int, bytes]
) -> list[Failure]:
    seq = record.seq
    try:
        expected = encode_leaf(
            LogLeaf.of(
                kind=str(record.columns["kind"]), direction=str(record.columns["direction"]),
                logged_at_ms=int(record.columns["logged_at_ms"]), peer=str(record.columns["peer"]),
                header=record.header, body=record.body, signature=record.signature,
                signer_cert_sha256=record.signer_cert_sha256,
            )
        )  # fmt: skip
    except LeafError:
        expected = b""  # check_rows reports the record as unencodable
    if not hmac.compare_digest(expected, record.leaf_input):
        return [Failure("leaf-mismatch", "leaf_input is not the record's leaf", seq=seq)]
    root = roots.get(record.tree_size)
    if root is None:
        return [
            Failure(
                "inclusion-unproven",
                f"no verified checkpoint of size {record.tree_size} in the bundle",
                seq=seq,
            )
        ]
    try:
        verify_inclusion(leaf, seq - 1, record.tree_size, record.audit_path, root)
    except MerkleError as err:
        return [Failure(f"inclusion-{err.reason}", err.detail, seq=seq)]
    return []
