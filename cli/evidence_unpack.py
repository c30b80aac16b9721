"""An evidence bundle as standard files, for tools nobody on this project wrote.

Records and proofs as JSON, checkpoints and cosignatures as signed-note text, timestamp
tokens as DER ``.tsr``, certificates as PEM, and the exact bytes each signature covers,
so openssl checks the timestamps, the certificate chains and the record signatures on
its own (the commands are in the ``README.txt`` written with them; docs/audit.md).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from zhol.security.evidence_bundle import Bundle, BundleRecord
from zhol.security.sealing import EVENT_TYPE, REQUEST_TYPE, RESPONSE_TYPE, message_signed_bytes
from zhol.security.signednote import NoteError, join_note, parse_note

_PAYLOAD_TYPES = {"request": REQUEST_TYPE, "response": RESPONSE_TYPE, "event": EVENT_TYPE}


def unpack(bundle: Bundle, directory: Path) -> list[Path]:
    """Write the bundle's evidence under ``directory`` (created, mode 0700; it must not
    exist or be empty: nothing is overwritten). Files are 0600: records hold personal
    data. Returns the files written."""
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise FileExistsError(f"{directory} is not empty")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    out = _Writer(directory)
    out.write("configuration/globalconf.bin", bundle.configuration)
    out.write("keys/vkeys.txt", "".join(v + "\n" for v in bundle.vkeys).encode())
    out.write("certs/ca.pem", "".join(bundle.ca_certificates).encode())
    out.write("certs/tsa.pem", "".join(bundle.tsa_certificates).encode())
    for digest, der in sorted(bundle.certificates.items()):
        out.write(f"certs/signer-{digest.hex()}.pem", _pem(der))
        public = x509.load_der_x509_certificate(der).public_key()
        out.write(
            f"certs/signer-{digest.hex()}.pubkey.pem",
            public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
        )
    for cp in bundle.checkpoints:
        name = f"checkpoints/{cp.size:020d}"
        out.write(f"{name}.note", cp.note)
        if cp.timestamp is not None:
            out.write(f"{name}.tsr", cp.timestamp)
        if cp.cosignature is not None:
            out.write(f"{name}.cosig", cp.cosignature.encode())
            cosigned = _cosigned(cp.note, cp.cosignature)
            if cosigned is not None:
                out.write(f"{name}.cosigned.note", cosigned)
    for record in bundle.records:
        _write_record(out, record)
    meta = {
        "format": "zhol-evidence-unpacked/v1",
        "gateway": bundle.gateway,
        "selection": bundle.selection.as_json(),
        "exported_at_ms": bundle.exported_at_ms,
        "records": [r.seq for r in bundle.records],
        "checkpoints": [cp.size for cp in bundle.checkpoints],
    }
    out.write("bundle.json", _json(meta))
    out.write("README.txt", _readme(bundle).encode())
    return out.written


class _Writer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.written: list[Path] = []

    def write(self, relative: str, data: bytes) -> None:
        path = self.root / relative
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(
            path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0), 0o600
        )
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        self.written.append(path)


def _pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)


def _json(value: object) -> bytes:
    return (json.dumps(value, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode()


def _cosigned(note: bytes, cosignature: str) -> bytes | None:
    """The checkpoint with the gateway's and the witness's signature lines together, as
    tlog-witness clients hold it; None if either part is unreadable (not evidence here)."""
    try:
        text, signatures = parse_note(note)
        return join_note(text, [*signatures, cosignature])
    except NoteError:
        return None


def _write_record(out: _Writer, r: BundleRecord) -> None:
    name = f"records/{r.seq:020d}"
    out.write(f"{name}.header", r.header)
    out.write(f"{name}.body", r.body)
    out.write(f"{name}.sig", r.signature)
    payload_type = _PAYLOAD_TYPES.get(str(r.columns["kind"]))
    if payload_type is not None:
        out.write(f"{name}.signed", message_signed_bytes(payload_type, r.header, r.body))
    doc = {
        "columns": dict(r.columns),
        "signer_certificate": f"certs/signer-{r.signer_cert_sha256.hex()}.pem",
        "signer_cert_sha256": r.signer_cert_sha256.hex(),
        "payload_type": payload_type,
        "leaf_input": base64.b64encode(r.leaf_input).decode("ascii"),
        "leaf_index": r.seq - 1,
        "tree_size": r.tree_size,
        "audit_path": [base64.b64encode(h).decode("ascii") for h in r.audit_path],
        "checkpoint": f"checkpoints/{r.tree_size:020d}.note",
    }
    out.write(f"{name}.json", _json(doc))


def _readme(bundle: Bundle) -> str:
    first_cp = next((cp for cp in bundle.checkpoints if cp.timestamp is not None), None)
    first_record = bundle.records[0] if bundle.records else None
    lines = [
        f"Evidence exported from gateway {bundle.gateway} (zhol audit export).",
        "Check it all with: zhol audit verify <bundle file> --anchor anchor.pem",
        "",
        "Files:",
        "  configuration/globalconf.bin  the signed global configuration the gateway held",
        "  keys/vkeys.txt                the gateway's log keys and the witness key (C2SP vkeys)",
        "  certs/ca.pem                  the federation CA(s), as the configuration lists them",
        "  certs/tsa.pem                 the approved timestamping authorities' certificates",
        "  certs/signer-<sha256>.pem     the certificates that signed the records",
        "  checkpoints/<size>.note       a checkpoint signed by the gateway (C2SP signed note)",
        "  checkpoints/<size>.cosig      the witness's cosignature line over it",
        "  checkpoints/<size>.cosigned.note  the note with both signature lines",
        "  checkpoints/<size>.tsr        the RFC 3161 TimeStampResp over the exact .note bytes",
        "  records/<seq>.json            columns, leaf_input, leaf_index, tree_size, audit_path",
        "  records/<seq>.header|.body    the exact signed header and body bytes",
        "  records/<seq>.signed|.sig     the exact bytes the signature covers, and the signature",
        "",
        "Independent checks with openssl (compare the copies above with the configuration",
        "only through zhol audit verify, or trust them as far as you trust their source):",
    ]
    if first_cp is not None:
        note = f"checkpoints/{first_cp.size:020d}"
        lines.append(
            f"  openssl ts -verify -data {note}.note -in {note}.tsr -CAfile certs/ca.pem"
            " -untrusted certs/tsa.pem"
        )
        lines.append("    (an authority with its own CA: give that CA as -CAfile)")
    if first_record is not None:
        seq = f"records/{first_record.seq:020d}"
        cert = f"certs/signer-{first_record.signer_cert_sha256.hex()}"
        lines += [
            f"  openssl verify -CAfile certs/ca.pem -attime <the token's time, unix> {cert}.pem",
            "    (openssl ts -reply -in <size>.tsr -text shows the token's time; without"
            " -attime openssl checks validity now)",
            f"  openssl dgst -sha256 -verify {cert}.pubkey.pem -signature {seq}.sig {seq}.signed",
            "    (an ECDSA P-256 signer; for an Ed25519 signer:",
            f"     openssl pkeyutl -verify -pubin -inkey {cert}.pubkey.pem -rawin"
            f" -in {seq}.signed -sigfile {seq}.sig)",
        ]
    return "\n".join(lines) + "\n"
