"""``zhol audit``: the auditor's offline checks of a gateway's evidence (docs/audit.md).

``zhol audit log`` verifies a whole message log against the federation's anchor
alone; ``zhol audit keys`` prints the gateways' log keys as C2SP verifier keys.
This module reads the files (read-only; the log through SQLite's backup API into
memory, one read transaction) and prints; the checks are in ``cli/audit_checks.py``.
Exit codes: 0 verified, 1 evidence invalid, 2 usage, 3 could not check.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
import tomllib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from zhol.cli.audit_checks import (
    NOT_CHECKED,
    CheckpointFiles,
    Failure,
    Row,
    check_checkpoints,
    check_cosignatures,
    check_rows,
    check_sequence,
    check_timestamps,
    check_tree_state,
    chunked,
    rebuild_tree,
    validate_signers,
)
from zhol.core.errors import ZholError
from zhol.core.exitcodes import EXIT_CANNOT_CHECK, EXIT_FAILED, EXIT_OK, EXIT_USAGE
from zhol.core.ids import GatewayId
from zhol.gateway.checkpoints import CheckpointStore
from zhol.gateway.messagelog import SCHEMA_VERSION
from zhol.security.globalconf import GlobalConf, verify_global_conf
from zhol.security.signednote import NoteError, ed25519_verifier, format_vkey, gateway_origin
from zhol.security.validation import CertificateValidator

LOG_FILE = "messagelog.db"
CONF_FILE = "globalconf.bin"
SETTINGS_FILE = "gateway.toml"
CHECKPOINTS_DIR = "checkpoints"
# Records per unit of work for the signature threads (cryptography releases the GIL).
CHUNK_ROWS = 2000

_LOG_HELP = """\
Verifies a gateway's message log offline, trusting only the anchor given: the
signed configuration (DIR/globalconf.bin or --conf) against the anchor; every
record's signature over its exact bytes, its signer certificate (chained to the
federation CA, valid at the record's logged time), its signed digest and its columns
against its signed header; seq without gaps; the Merkle tree rebuilt from the
records against the stored tree state and every checkpoint; every checkpoint's
signature by the gateway's log key (from the configuration) and each consistency
proof between consecutive checkpoints; the log no shorter than the last checkpoint.
What is not checked yet is listed in the output.
Exit codes: 0 verified, 1 evidence invalid, 2 usage, 3 could not check.
"""


class CannotCheck(Exception):
    """Evidence that could not be read at all (exit 3): missing or unreadable files."""


def add_parser(subparsers: Any) -> None:
    """Add ``audit`` (``log``, ``keys``) to the ``zhol`` command's subparsers."""
    audit = subparsers.add_parser("audit", help="verify a gateway's evidence offline")
    audit.set_defaults(func=lambda _args: _usage(audit))
    sub = audit.add_subparsers(dest="audit_command", metavar="COMMAND")

    log = sub.add_parser(
        "log",
        help="verify a whole message log and its checkpoints against the anchor",
        description=_LOG_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    log.add_argument(
        "--gateway", required=True, type=Path, metavar="DIR", help="the gateway's data directory"
    )
    log.add_argument(
        "--anchor", required=True, type=Path, metavar="PEM", help="the federation's anchor.pem"
    )
    log.add_argument(
        "--conf",
        type=Path,
        metavar="FILE",
        help="signed configuration (default DIR/globalconf.bin)",
    )
    log.add_argument(
        "--gateway-id", metavar="ID", help="the gateway's id (default: from DIR/gateway.toml)"
    )
    log.add_argument("--json", action="store_true", help="the report as one JSON object")
    log.set_defaults(func=run_log)

    keys = sub.add_parser(
        "keys",
        help="print every gateway's log keys from the verified configuration (C2SP vkeys)",
    )
    keys.add_argument(
        "--anchor", required=True, type=Path, metavar="PEM", help="the federation's anchor.pem"
    )
    keys.add_argument(
        "--conf", required=True, type=Path, metavar="FILE", help="a signed global configuration"
    )
    keys.add_argument("--json", action="store_true", help="one JSON object per key")
    keys.set_defaults(func=run_keys)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_usage(sys.stderr)
    return EXIT_USAGE


# Reading the evidence.


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CannotCheck(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _anchor_der(path: Path) -> bytes:
    data = _read_bytes(path, "the anchor")
    try:
        return x509.load_pem_x509_certificate(data).public_bytes(Encoding.DER)
    except ValueError:
        raise CannotCheck(f"the anchor {path} is not a PEM certificate") from None


def _verified_conf(conf_path: Path, anchor_path: Path) -> tuple[GlobalConf | None, Failure | None]:
    """The configuration verified against the anchor (no expiry check: an audit looks
    at the past), or the failure that says why it is not trusted."""
    anchor = _anchor_der(anchor_path)
    signed = _read_bytes(conf_path, "the configuration")
    try:
        return verify_global_conf(signed, anchor), None
    except ZholError as err:
        return None, Failure("configuration-untrusted", f"{conf_path}: {err.detail}")


def _gateway_id(args: argparse.Namespace, directory: Path) -> str:
    given: str | None = getattr(args, "gateway_id", None)
    if given:
        return given
    path = directory / SETTINGS_FILE
    try:
        value = tomllib.loads(_read_bytes(path, "the settings").decode("utf-8"))["gateway_id"]
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, KeyError):
        raise CannotCheck(f"no gateway_id in {path}; give --gateway-id") from None
    if not isinstance(value, str):
        raise CannotCheck(f"no gateway_id in {path}; give --gateway-id")
    return value


@dataclass(slots=True)
class LogContents:
    rows: list[Row]
    certs: dict[bytes, bytes]
    tree_state: bytes | None


def _read_log(path: Path) -> LogContents:
    """Everything in the log, read in one read transaction (the backup API) into memory:
    a live gateway's later commits and its -wal file cannot change what is checked."""
    if not path.is_file():
        raise CannotCheck(f"no message log at {path}")
    try:
        src = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        mem = sqlite3.connect(":memory:")
        try:
            src.backup(mem)
        finally:
            src.close()
        try:
            return _load(mem)
        finally:
            mem.close()
    except sqlite3.Error as exc:
        raise CannotCheck(f"cannot read the message log {path}: {exc}") from None


def _load(conn: sqlite3.Connection) -> LogContents:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version != SCHEMA_VERSION:
        raise CannotCheck(f"message log schema {version}, this auditor reads {SCHEMA_VERSION}")
    rows: list[Row] = []
    for r in conn.execute(
        "SELECT seq, message_id, kind, direction, client, service, data_subject, user_id,"
        " purpose, issued_at_ms, logged_at_ms, peer, status_code, signed_digest,"
        " signer_cert_sha256, header, body, signature FROM messages ORDER BY rowid"
    ):
        columns = {
            "seq": r[0], "message_id": r[1], "kind": r[2], "direction": r[3], "client": r[4],
            "service": r[5], "data_subject": r[6], "user_id": r[7], "purpose": r[8],
            "issued_at_ms": r[9], "logged_at_ms": r[10], "peer": r[11], "status_code": r[12],
            "signed_digest": bytes(r[13]).hex(),
        }  # fmt: skip
        rows.append(Row(columns, bytes(r[15]), bytes(r[16]), bytes(r[17]), bytes(r[14])))
    certs = {bytes(h): bytes(d) for h, d in conn.execute("SELECT sha256, der FROM certs")}
    state = conn.execute("SELECT state FROM tree_state WHERE id = 1").fetchone()
    return LogContents(rows, certs, None if state is None else bytes(state[0]))


def _read_checkpoints(directory: Path) -> list[CheckpointFiles]:
    store = CheckpointStore(directory)
    files: list[CheckpointFiles] = []
    try:
        for size in store.sizes():
            proof_path = store.proof_path(size)
            proof = proof_path.read_text("ascii") if proof_path.exists() else None
            cosig_path = store.note_path(size).with_suffix(".cosig")
            cosig = cosig_path.read_text("utf-8") if cosig_path.exists() else None
            note = store.note_path(size).read_bytes()
            tsr_path = store.note_path(size).with_suffix(".tsr")
            tsr = tsr_path.read_bytes() if tsr_path.exists() else None
            files.append(CheckpointFiles(size, note, proof, cosig, tsr))
    except (OSError, UnicodeDecodeError) as exc:
        raise CannotCheck(f"cannot read the checkpoints in {directory}: {exc}") from None
    return files


# ``zhol audit log``.


@dataclass(slots=True)
class Report:
    gateway: str
    directory: str
    checked: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    records_per_s: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "result": "invalid" if self.failures else "verified",
            "gateway": self.gateway,
            "directory": self.directory,
            "counts": self.counts,
            "checked": self.checked,
            "not_checked": [{"what": w, "why": why} for w, why in NOT_CHECKED],
            "failures": [f.as_json() for f in self.failures],
            "records_per_s": self.records_per_s,
        }


def run_log(args: argparse.Namespace) -> int:
    """``zhol audit log``: verify a whole log; print the report."""
    directory = Path(args.gateway)
    try:
        report = audit_log(
            directory,
            Path(args.anchor),
            Path(args.conf) if args.conf else directory / CONF_FILE,
            _gateway_id(args, directory),
        )
    except CannotCheck as exc:
        print(f"zhol audit log: could not check: {exc}", file=sys.stderr)
        return EXIT_CANNOT_CHECK
    if args.json:
        print(json.dumps(report.as_json(), sort_keys=True))
    else:
        _print_report(report)
    return EXIT_FAILED if report.failures else EXIT_OK


def audit_log(directory: Path, anchor: Path, conf_path: Path, gateway_id: str) -> Report:
    """Every check of ``zhol audit log``; raises CannotCheck when evidence is unreadable."""
    report = Report(gateway_id, str(directory))
    conf, untrusted = _verified_conf(conf_path, anchor)
    if conf is None:
        assert untrusted is not None
        report.failures.append(untrusted)
        return report  # nothing is trustworthy without a trusted configuration
    report.checked.append(f"configuration v{conf.version} verified against the anchor")
    try:
        origin = gateway_origin(gateway_id)
        entry = conf.gateways.get(GatewayId.parse(gateway_id))
    except (NoteError, ValueError, ZholError):
        raise CannotCheck(f"{gateway_id!r} is not a gateway id") from None
    contents = _read_log(directory / LOG_FILE)
    checkpoints = _read_checkpoints(directory / CHECKPOINTS_DIR)
    started = time.perf_counter()
    rows = contents.rows
    report.failures.extend(check_sequence([r.seq for r in rows]))
    signers = validate_signers(contents.certs, _cert_use(rows), _validator(conf))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = list(
            pool.map(lambda chunk: check_rows(chunk, signers), chunked(rows, CHUNK_ROWS))
        )
    leaves = [leaf for result in results for leaf in result.leaves]
    for result in results:
        report.failures.extend(result.failures)
    elapsed = time.perf_counter() - started
    report.records_per_s = round(len(rows) / elapsed) if rows and elapsed > 0 else None
    report.checked.append(
        f"{len(rows)} records: signature, signed digest, columns against the signed header"
    )
    report.checked.append(
        f"{len(signers.keys) + len(signers.refused)} signer certificates, each validated once"
        " against the configuration's CA at the records' logged times"
    )
    report.checked.append("seq numbered 1..n without gaps")
    rebuilt = rebuild_tree(leaves, [cp.size for cp in checkpoints])
    report.failures.extend(check_tree_state(rebuilt, contents.tree_state))
    report.checked.append(f"Merkle tree of {rebuilt.size} records rebuilt, equal to the stored one")
    if entry is None:
        report.failures.append(
            Failure("gateway-unknown", f"{gateway_id} is not in the configuration")
        )
    elif not entry.log_public_key:
        report.failures.append(Failure("log-key-missing", f"{gateway_id} has no log key"))
    else:
        keys = (entry.log_public_key, *entry.previous_log_public_keys)
        verifiers = [ed25519_verifier(origin, key) for key in dict.fromkeys(keys)]
        cps = check_checkpoints(checkpoints, origin, verifiers, rebuilt)
        report.failures.extend(cps.failures)
        report.checked.append(
            f"{cps.checked} checkpoints: log-key signature, root against the rebuilt tree,"
            " consistency proof from the previous one, log no shorter than each"
        )
    stamps = check_timestamps(checkpoints, conf)
    report.failures.extend(stamps.failures)
    report.checked.append(
        f"{stamps.timestamped} RFC 3161 timestamps, each by an authority the configuration"
        " approves, over the exact checkpoint note"
        + (
            f"; not timestamped (yet): {len(stamps.not_timestamped)}"
            if stamps.not_timestamped
            else ""
        )
    )
    cosigs = check_cosignatures(checkpoints, conf.witness_verifier())
    report.failures.extend(cosigs.failures)
    report.checked.append(
        f"{cosigs.cosigned} witness cosignatures, by the configuration's witness key"
        + (f"; not cosigned (yet): {len(cosigs.not_cosigned)}" if cosigs.not_cosigned else "")
    )
    if not checkpoints and rows:
        report.failures.append(Failure("checkpoint-missing", "records but no checkpoint"))
    report.counts = {
        "records": len(rows),
        "checkpoints": len(checkpoints),
        "cosigned": cosigs.cosigned,
        "timestamped": stamps.timestamped,
        "signer_certificates": len(signers.keys) + len(signers.refused),
        "failures": len(report.failures),
    }
    return report


def _cert_use(rows: Sequence[Row]) -> dict[bytes, tuple[int, int]]:
    use: dict[bytes, tuple[int, int]] = {}
    for row in rows:
        ms = int(row.columns["logged_at_ms"])
        first, last = use.get(row.signer_cert_sha256, (ms, ms))
        use[row.signer_cert_sha256] = (min(first, ms), max(last, ms))
    return use


def _validator(conf: GlobalConf) -> CertificateValidator:
    try:
        return CertificateValidator(conf.ca_certs_der, conf.revoked_cert_sha256)
    except ValueError as exc:
        raise CannotCheck(f"the configuration's CA certificates are unusable: {exc}") from None


def _print_report(report: Report) -> None:
    print(f"zhol audit log: gateway {report.gateway} ({report.directory})")
    for line in report.checked:
        print(f"  checked: {line}")
    for _, why in NOT_CHECKED:
        print(f"  not checked: {why}")
    if report.records_per_s is not None:
        print(f"  speed: {report.records_per_s} records/s")
    for f in report.failures:
        where = (
            f"seq {f.seq}" if f.seq is not None
            else f"checkpoint {f.checkpoint}" if f.checkpoint is not None
            else "log"
        )  # fmt: skip
        print(f"  FAILED {where}: {f.reason}: {f.detail}")
    if report.failures:
        print(f"RESULT: evidence invalid ({len(report.failures)} failures)")
    else:
        print("RESULT: verified")


# ``zhol audit keys``.


def run_keys(args: argparse.Namespace) -> int:
    """``zhol audit keys``: the log keys of every gateway, as C2SP vkeys."""
    try:
        conf, untrusted = _verified_conf(Path(args.conf), Path(args.anchor))
    except CannotCheck as exc:
        print(f"zhol audit keys: could not check: {exc}", file=sys.stderr)
        return EXIT_CANNOT_CHECK
    if conf is None:
        assert untrusted is not None
        print(f"zhol audit keys: {untrusted.reason}: {untrusted.detail}", file=sys.stderr)
        return EXIT_FAILED
    for gateway_id in sorted(conf.gateways, key=str):
        entry = conf.gateways[gateway_id]
        keys = [(entry.log_public_key, "current")] if entry.log_public_key else []
        keys += [(key, "previous") for key in entry.previous_log_public_keys]
        for key, which in keys:
            vkey = format_vkey(ed25519_verifier(gateway_origin(str(gateway_id)), key))
            if args.json:
                print(json.dumps({"gateway": str(gateway_id), "key": which, "vkey": vkey}))
            else:
                print(vkey)  # previous keys too: old checkpoints verify with them
    return EXIT_OK
