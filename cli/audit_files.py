"""Reading a gateway's evidence for ``zhol audit``: read-only, never trusted.

The log is read through SQLite's backup API (one read transaction on a read-only
connection, the ``-wal`` file's records included), the checkpoint files as they are,
the configuration only once it verifies against the anchor the auditor gives.
Anything unreadable raises :class:`CannotCheck` (exit 3).
"""

from __future__ import annotations

import argparse
import sqlite3
import tomllib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from zhol.cli.audit_checks import CheckpointFiles, Failure, Row
from zhol.core.errors import ZholError
from zhol.gateway.checkpoints import CheckpointStore
from zhol.gateway.messagelog import SCHEMA_VERSION
from zhol.security.globalconf import GlobalConf, verify_global_conf
from zhol.security.validation import CertificateValidator

LOG_FILE = "messagelog.db"
CONF_FILE = "globalconf.bin"
SETTINGS_FILE = "gateway.toml"
CHECKPOINTS_DIR = "checkpoints"


class CannotCheck(Exception):
    """Evidence that could not be read at all (exit 3): missing or unreadable files."""


def read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CannotCheck(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def anchor_der(path: Path) -> bytes:
    data = read_bytes(path, "the anchor")
    try:
        return x509.load_pem_x509_certificate(data).public_bytes(Encoding.DER)
    except ValueError:
        raise CannotCheck(f"the anchor {path} is not a PEM certificate") from None


def verified_conf(conf_path: Path, anchor_path: Path) -> tuple[GlobalConf | None, Failure | None]:
    """The configuration verified against the anchor (no expiry check: an audit looks
    at the past), or the failure that says why it is not trusted."""
    anchor = anchor_der(anchor_path)
    signed = read_bytes(conf_path, "the configuration")
    try:
        return verify_global_conf(signed, anchor), None
    except ZholError as err:
        return None, Failure("configuration-untrusted", f"{conf_path}: {err.detail}")


def gateway_id_of(args: argparse.Namespace, directory: Path) -> str:
    given: str | None = getattr(args, "gateway_id", None)
    if given:
        return given
    path = directory / SETTINGS_FILE
    try:
        value = tomllib.loads(read_bytes(path, "the settings").decode("utf-8"))["gateway_id"]
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


def read_log(path: Path) -> LogContents:
    """Everything in the log, read in one read transaction (the backup API) into memory:
    a live gateway's later commits and its -wal file cannot change what is checked."""
    mem = snapshot_log(path, ":memory:")
    try:
        return load_log(mem)
    except sqlite3.Error as exc:
        raise CannotCheck(f"cannot read the message log {path}: {exc}") from None
    finally:
        mem.close()


def snapshot_log(path: Path, target: str) -> sqlite3.Connection:
    """A copy of the log at ``target`` (a file or ":memory:") through the backup API:
    one read transaction on a read-only connection, the -wal file's records included."""
    if not path.is_file():
        raise CannotCheck(f"no message log at {path}")
    try:
        src = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        copy = sqlite3.connect(target)
        try:
            src.backup(copy)
        finally:
            src.close()
        version = copy.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error as exc:
        raise CannotCheck(f"cannot read the message log {path}: {exc}") from None
    if version != SCHEMA_VERSION:
        copy.close()
        raise CannotCheck(f"message log schema {version}, this auditor reads {SCHEMA_VERSION}")
    return copy


def load_log(conn: sqlite3.Connection) -> LogContents:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version != SCHEMA_VERSION:
        raise CannotCheck(f"message log schema {version}, this auditor reads {SCHEMA_VERSION}")
    rows = select_rows(conn)
    certs = {bytes(h): bytes(d) for h, d in conn.execute("SELECT sha256, der FROM certs")}
    state = conn.execute("SELECT state FROM tree_state WHERE id = 1").fetchone()
    return LogContents(rows, certs, None if state is None else bytes(state[0]))


def select_rows(
    conn: sqlite3.Connection, where: str = "", params: tuple[object, ...] = ()
) -> list[Row]:
    """The records (all, or those ``where`` selects), in log order."""
    rows: list[Row] = []
    for r in conn.execute(
        "SELECT seq, message_id, kind, direction, client, service, data_subject, user_id,"
        " purpose, issued_at_ms, logged_at_ms, peer, status_code, signed_digest,"
        f" signer_cert_sha256, header, body, signature FROM messages {where} ORDER BY rowid",
        params,
    ):
        columns = {
            "seq": r[0], "message_id": r[1], "kind": r[2], "direction": r[3], "client": r[4],
            "service": r[5], "data_subject": r[6], "user_id": r[7], "purpose": r[8],
            "issued_at_ms": r[9], "logged_at_ms": r[10], "peer": r[11], "status_code": r[12],
            "signed_digest": bytes(r[13]).hex(),
        }  # fmt: skip
        rows.append(Row(columns, bytes(r[15]), bytes(r[16]), bytes(r[17]), bytes(r[14])))
    return rows


def read_checkpoints(directory: Path) -> list[CheckpointFiles]:
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


def validator_for(conf: GlobalConf) -> CertificateValidator:
    try:
        return CertificateValidator(conf.ca_certs_der, conf.revoked_cert_sha256)
    except ValueError as exc:
        raise CannotCheck(f"the configuration's CA certificates are unusable: {exc}") from None
