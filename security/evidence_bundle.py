"""The evidence bundle: one self-contained JSON file (docs/audit.md, "Evidence bundles").

Pure: values in, bytes out, and back. Nothing here is trusted: :func:`decode` only
checks that a file has the documented shape (``BundleError`` ``bundle-malformed``
otherwise); ``cli/bundle_checks.py`` decides whether the evidence holds, and
``security/evidence_build.py`` assembles one from a log's records.

Binary values are base64 (RFC 4648, padded), SHA-256 identifiers lowercase hex. Each
record carries what RFC 6962 tooling needs on its own: ``leaf_input`` (the canonical
leaf, docs/protocol.md "Evidence: the Merkle tree"), ``leaf_index``, ``tree_size``
and ``audit_path``, against the root in the signed checkpoint of that size.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FORMAT = "zhol-evidence-bundle/v1"

# The record columns a bundle carries, as ``zhol.gateway.messagelog`` names them.
COLUMNS = (
    "seq", "message_id", "kind", "direction", "client", "service", "data_subject", "user_id",
    "purpose", "issued_at_ms", "logged_at_ms", "peer", "status_code", "signed_digest",
)  # fmt: skip
_INT_COLUMNS = frozenset({"seq", "issued_at_ms", "logged_at_ms", "status_code"})


class BundleError(ValueError):
    """A file that is not an evidence bundle of this format."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.reason = "bundle-malformed"
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Selection:
    """Which records were asked for: one message, one data subject, or a time range."""

    message_id: str | None = None
    data_subject: str | None = None
    since_ms: int | None = None  # logged at or after
    until_ms: int | None = None  # logged before

    def matches(self, columns: Mapping[str, Any]) -> bool:
        if self.message_id is not None and columns["message_id"] != self.message_id:
            return False
        if self.data_subject is not None and columns["data_subject"] != self.data_subject:
            return False
        logged = int(columns["logged_at_ms"])
        if self.since_ms is not None and logged < self.since_ms:
            return False
        return self.until_ms is None or logged < self.until_ms

    def as_json(self) -> dict[str, Any]:
        fields = {
            "message_id": self.message_id,
            "data_subject": self.data_subject,
            "since_ms": self.since_ms,
            "until_ms": self.until_ms,
        }
        return {k: v for k, v in fields.items() if v is not None}


@dataclass(frozen=True, slots=True)
class BundleRecord:
    columns: Mapping[str, Any]  # COLUMNS; signed_digest as hex
    header: bytes  # the exact signed header bytes
    body: bytes
    signature: bytes
    signer_cert_sha256: bytes
    leaf_input: bytes  # the canonical leaf; its RFC 6962 leaf hash is in the tree
    tree_size: int  # the checkpoint it is proven in
    audit_path: tuple[bytes, ...]  # the inclusion proof (leaf index = seq - 1)

    @property
    def seq(self) -> int:
        return int(self.columns["seq"])


@dataclass(frozen=True, slots=True)
class BundleCheckpoint:
    size: int
    note: bytes  # the exact bytes the gateway signed and the TSA timestamped
    cosignature: str | None  # the witness's signature line
    timestamp: bytes | None  # the RFC 3161 TimeStampResp, DER


@dataclass(frozen=True, slots=True)
class Bundle:
    gateway: str
    selection: Selection
    exported_at_ms: int
    configuration: bytes  # the signed global configuration, as the gateway held it
    # Copies of what the configuration says, for tools that cannot read it (PEM text):
    # the federation CAs, the approved TSAs' certificates and CAs, the gateway's log
    # keys and the witness key as C2SP vkeys. The verifier checks they agree with it.
    ca_certificates: tuple[str, ...]
    tsa_certificates: tuple[str, ...]
    vkeys: tuple[str, ...]
    certificates: Mapping[bytes, bytes]  # signer certificates: SHA-256 -> DER
    checkpoints: tuple[BundleCheckpoint, ...]
    records: tuple[BundleRecord, ...]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def encode(bundle: Bundle) -> bytes:
    """The bundle as UTF-8 JSON, keys sorted, one record per line group."""
    doc = {
        "format": FORMAT,
        "gateway": bundle.gateway,
        "selection": bundle.selection.as_json(),
        "exported_at_ms": bundle.exported_at_ms,
        "configuration": _b64(bundle.configuration),
        "ca_certificates": list(bundle.ca_certificates),
        "tsa_certificates": list(bundle.tsa_certificates),
        "vkeys": list(bundle.vkeys),
        "certificates": [
            {"sha256": digest.hex(), "der": _b64(der)}
            for digest, der in sorted(bundle.certificates.items())
        ],
        "checkpoints": [
            {
                "size": cp.size,
                "note": _b64(cp.note),
                "cosignature": cp.cosignature,
                "timestamp": None if cp.timestamp is None else _b64(cp.timestamp),
            }
            for cp in bundle.checkpoints
        ],
        "records": [
            {
                "columns": {name: r.columns[name] for name in COLUMNS},
                "header": _b64(r.header),
                "body": _b64(r.body),
                "signature": _b64(r.signature),
                "signer_cert_sha256": r.signer_cert_sha256.hex(),
                "leaf_input": _b64(r.leaf_input),
                "leaf_index": r.seq - 1,
                "tree_size": r.tree_size,
                "audit_path": [_b64(h) for h in r.audit_path],
            }
            for r in bundle.records
        ],
    }
    return (json.dumps(doc, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def decode(data: bytes) -> Bundle:
    """Parse a bundle, checking only its shape; BundleError if it is not one."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"not JSON: {exc}") from None
    top = _obj(doc, "the bundle")
    if top.get("format") != FORMAT:
        raise BundleError(f"format is not {FORMAT!r}")
    checkpoints = tuple(_checkpoint(c) for c in _list(top, "checkpoints"))
    sizes = [cp.size for cp in checkpoints]
    if len(set(sizes)) != len(sizes):
        raise BundleError("a checkpoint size appears twice")
    records = tuple(_record(r) for r in _list(top, "records"))
    seqs = [r.seq for r in records]
    if len(set(seqs)) != len(seqs):
        raise BundleError("a record seq appears twice")
    certificates: dict[bytes, bytes] = {}
    for item in _list(top, "certificates"):
        cert = _obj(item, "a certificate")
        certificates[_hex(cert, "sha256")] = _bytes(cert, "der")
    selection = _obj(top.get("selection"), "selection")
    return Bundle(
        gateway=_str(top, "gateway"),
        selection=Selection(
            message_id=_opt_str(selection, "message_id"),
            data_subject=_opt_str(selection, "data_subject"),
            since_ms=_opt_int(selection, "since_ms"),
            until_ms=_opt_int(selection, "until_ms"),
        ),
        exported_at_ms=_int(top, "exported_at_ms"),
        configuration=_bytes(top, "configuration"),
        ca_certificates=_strs(top, "ca_certificates"),
        tsa_certificates=_strs(top, "tsa_certificates"),
        vkeys=_strs(top, "vkeys"),
        certificates=certificates,
        checkpoints=checkpoints,
        records=records,
    )


def _checkpoint(value: Any) -> BundleCheckpoint:
    cp = _obj(value, "a checkpoint")
    timestamp = cp.get("timestamp")
    return BundleCheckpoint(
        size=_int(cp, "size"),
        note=_bytes(cp, "note"),
        cosignature=_opt_str(cp, "cosignature"),
        timestamp=None if timestamp is None else _bytes(cp, "timestamp"),
    )


def _record(value: Any) -> BundleRecord:
    r = _obj(value, "a record")
    raw = _obj(r.get("columns"), "a record's columns")
    columns: dict[str, Any] = {}
    for name in COLUMNS:
        columns[name] = _int(raw, name) if name in _INT_COLUMNS else _str(raw, name)
    if columns["seq"] < 1:
        raise BundleError("a record's seq is below 1")
    record = BundleRecord(
        columns=columns,
        header=_bytes(r, "header"),
        body=_bytes(r, "body"),
        signature=_bytes(r, "signature"),
        signer_cert_sha256=_hex(r, "signer_cert_sha256"),
        leaf_input=_bytes(r, "leaf_input"),
        tree_size=_int(r, "tree_size"),
        audit_path=tuple(_b64decode(h, "audit_path") for h in _list(r, "audit_path")),
    )
    if _int(r, "leaf_index") != record.seq - 1:
        raise BundleError(f"record {record.seq}: leaf_index is not seq - 1")
    return record


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BundleError(f"{what} is not a JSON object")
    return value


def _list(obj: Mapping[str, Any], name: str) -> list[Any]:
    value = obj.get(name)
    if not isinstance(value, list):
        raise BundleError(f"{name!r} is not a list")
    return value


def _str(obj: Mapping[str, Any], name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise BundleError(f"{name!r} is not a string")
    return value


def _opt_str(obj: Mapping[str, Any], name: str) -> str | None:
    return None if obj.get(name) is None else _str(obj, name)


def _strs(obj: Mapping[str, Any], name: str) -> tuple[str, ...]:
    values = _list(obj, name)
    if not all(isinstance(v, str) for v in values):
        raise BundleError(f"{name!r} is not a list of strings")
    return tuple(values)


def _int(obj: Mapping[str, Any], name: str) -> int:
    value = obj.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BundleError(f"{name!r} is not a non-negative integer")
    return value


def _opt_int(obj: Mapping[str, Any], name: str) -> int | None:
    return None if obj.get(name) is None else _int(obj, name)


def _b64decode(value: Any, name: str) -> bytes:
    if not isinstance(value, str):
        raise BundleError(f"{name!r} is not base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise BundleError(f"{name!r} is not base64") from None


def _bytes(obj: Mapping[str, Any], name: str) -> bytes:
    return _b64decode(obj.get(name), name)


def _hex(obj: Mapping[str, Any], name: str) -> bytes:
    value = _str(obj, name)
    try:
        digest = bytes.fromhex(value)
    except ValueError:
        raise BundleError(f"{name!r} is not hex") from None
    if len(digest) != 32 or value != digest.hex():
        raise BundleError(f"{name!r} is not a lowercase hex SHA-256")
    return digest
