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

from zhol.cli.audit_checks import Failure
from zhol.core.errors import ZholError
from zhol.gateway.evidence import select_rows, snapshot_log
from zhol.gateway.messagelog import SCHEMA_VERSION
from zhol.security.evidence_build import EvidenceUnavailable, Row
from zhol.security.globalconf import GlobalConf, verify_global_conf
from zhol.security.validation import CertificateValidator

LOG_FILE = "messagelog.db"
CONF_FILE = "globalconf.bin"
SETTINGS_FILE = "gateway.toml"
CHECKPOINTS_DIR = "checkpoints"


# Evidence that could not be read at all (exit 3): missing or unreadable files. The
# same exception as the gateway's reading (gateway/evidence.py) raises.
CannotCheck = EvidenceUnavailable


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


def load_log(conn: sqlite3.Connection) -> LogContents:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version != SCHEMA_VERSION:
        raise CannotCheck(f"message log schema {version}, this auditor reads {SCHEMA_VERSION}")
    rows = select_rows(conn)
    certs = {bytes(h): bytes(d) for h, d in conn.execute("SELECT sha256, der FROM certs")}
    state = conn.execute("SELECT state FROM tree_state WHERE id = 1").fetchone()
    return LogContents(rows, certs, None if state is None else bytes(state[0]))


def validator_for(conf: GlobalConf) -> CertificateValidator:
    try:
        return CertificateValidator(conf.ca_certs_der, conf.revoked_cert_sha256)
    except ValueError as exc:
        raise CannotCheck(f"the configuration's CA certificates are unusable: {exc}") from None
