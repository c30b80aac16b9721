"""Assembling an evidence bundle from a log's records, as pure functions (docs/audit.md,
"Evidence bundles").

The values in are what the gateway's edge read (gateway/evidence.py): the records, the
signer certificates, the checkpoint files, the signed configuration and each record's
inclusion proof. Both ``zhol audit export`` and the gateway's
``zhol.bus.v1.Usage/GetEvidence`` build their bundles here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from zhol.core.ids import GatewayId
from zhol.security.evidence_bundle import Bundle, BundleCheckpoint, BundleRecord, Selection
from zhol.security.globalconf import GlobalConf
from zhol.security.logleaf import LeafError, LogLeaf
from zhol.security.logleaf import encode as encode_leaf
from zhol.security.signednote import ed25519_verifier, format_vkey, gateway_origin


class EvidenceUnavailable(Exception):
    """Evidence that cannot be given: unreadable files, or no record matches."""


class NotCoveredYet(EvidenceUnavailable):
    """A record is in no timestamped, cosigned checkpoint yet: retry after the next one."""


@dataclass(frozen=True, slots=True)
class Row:
    """One stored record, exactly as read from the log."""

    columns: Mapping[str, Any]  # as zhol.gateway.messagelog describes a row (hex digests)
    header: bytes
    body: bytes
    signature: bytes
    signer_cert_sha256: bytes

    @property
    def seq(self) -> int:
        return int(self.columns["seq"])


@dataclass(frozen=True, slots=True)
class CheckpointFiles:
    """One checkpoint's files as read: the note, and the proof (None if absent)."""

    size: int  # from the file name
    note: bytes
    proof: str | None
    cosignature: str | None = None  # the witness's line (<size>.cosig), if it cosigned
    timestamp: bytes | None = None  # the RFC 3161 TimeStampResp (<size>.tsr), if any


def pem(der: bytes) -> str:
    return x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM).decode("ascii")


@dataclass(frozen=True, slots=True)
class Published:
    """What the configuration says, as the bundle copies it for other tools."""

    ca_certificates: tuple[str, ...]
    tsa_certificates: tuple[str, ...]
    vkeys: tuple[str, ...]


def published(conf: GlobalConf, gateway_id: str) -> Published:
    """The federation CAs, the approved TSAs' certificates (then their own CAs), the
    gateway's log keys and the witness key, from a verified configuration."""
    tsa: list[str] = []
    for authority in conf.timestamp_authorities:
        tsa.append(pem(authority.cert_der))
        if authority.ca_cert_der:
            tsa.append(pem(authority.ca_cert_der))
    vkeys: list[str] = []
    entry = conf.gateways.get(GatewayId.parse(gateway_id))
    if entry is not None and entry.log_public_key:
        origin = gateway_origin(gateway_id)
        keys = (entry.log_public_key, *entry.previous_log_public_keys)
        vkeys += [format_vkey(ed25519_verifier(origin, k)) for k in dict.fromkeys(keys)]
    witness = conf.witness_verifier()
    if witness is not None:
        vkeys.append(format_vkey(witness))
    return Published(
        tuple(pem(der) for der in conf.ca_certs_der), tuple(dict.fromkeys(tsa)), tuple(vkeys)
    )


def all_about(rows: Sequence[Row], data_subject: str) -> bool:
    """Whether there are records and every one of them is logged about ``data_subject``."""
    return bool(rows) and all(r.columns["data_subject"] == data_subject for r in rows)


def covering(rows: Sequence[Row], checkpoints: Sequence[CheckpointFiles]) -> dict[int, int]:
    """For each record, the smallest checkpoint covering it that is timestamped and
    cosigned: the earliest time a token vouches for, and the witness's word on it.
    NotCoveredYet when one is in no such checkpoint yet."""
    complete = sorted(
        cp.size for cp in checkpoints if cp.timestamp is not None and cp.cosignature is not None
    )
    waiting = [row.seq for row in rows if not complete or row.seq > complete[-1]]
    if waiting:
        raise NotCoveredYet(
            f"{len(waiting)} of the records (seq {min(waiting)}..{max(waiting)}) are in no"
            " timestamped, cosigned checkpoint yet; retry after the gateway's next checkpoint"
        )
    return {row.seq: next(size for size in complete if size >= row.seq) for row in rows}


def bundle_record(row: Row, tree_size: int, proof: tuple[bytes, ...]) -> BundleRecord:
    """The record as a bundle carries it: its columns, exact signed bytes, leaf and proof."""
    c = row.columns
    try:
        leaf = encode_leaf(
            LogLeaf.of(
                kind=c["kind"], direction=c["direction"], logged_at_ms=c["logged_at_ms"],
                peer=c["peer"], header=row.header, body=row.body, signature=row.signature,
                signer_cert_sha256=row.signer_cert_sha256,
            )
        )  # fmt: skip
    except LeafError as err:
        raise EvidenceUnavailable(f"record {row.seq} cannot be encoded as a leaf: {err}") from None
    return BundleRecord(
        columns=dict(c), header=row.header, body=row.body, signature=row.signature,
        signer_cert_sha256=row.signer_cert_sha256, leaf_input=leaf, tree_size=tree_size,
        audit_path=proof,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class LogEvidence:
    """What the gateway's edge read for one selection, consistently."""

    rows: tuple[Row, ...]
    certs: Mapping[bytes, bytes]  # signer certificates: SHA-256 -> DER
    checkpoints: tuple[CheckpointFiles, ...]  # those the log's tree had reached
    chosen: Mapping[int, int]  # seq -> the checkpoint proving it (covering())
    proofs: Mapping[int, tuple[bytes, ...]]  # seq -> its audit path in that checkpoint


def assemble(
    gateway_id: str,
    selection: Selection,
    now_ms: int,
    signed_conf: bytes,
    conf: GlobalConf,
    evidence: LogEvidence,
) -> Bundle:
    """The bundle: ``conf`` is ``signed_conf`` already verified against the anchor."""
    by_size = {cp.size: cp for cp in evidence.checkpoints}
    copies = published(conf, gateway_id)
    return Bundle(
        gateway=gateway_id,
        selection=selection,
        exported_at_ms=now_ms,
        configuration=signed_conf,
        ca_certificates=copies.ca_certificates,
        tsa_certificates=copies.tsa_certificates,
        vkeys=copies.vkeys,
        certificates={
            r.signer_cert_sha256: evidence.certs[r.signer_cert_sha256]
            for r in evidence.rows
            if r.signer_cert_sha256 in evidence.certs
        },  # fmt: skip
        checkpoints=tuple(
            BundleCheckpoint(s, by_size[s].note, by_size[s].cosignature, by_size[s].timestamp)
            for s in sorted(set(evidence.chosen.values()))
        ),
        records=tuple(
            bundle_record(r, evidence.chosen[r.seq], evidence.proofs[r.seq]) for r in evidence.rows
        ),
    )
