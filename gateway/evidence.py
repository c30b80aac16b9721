"""Reading a gateway's evidence for a bundle: the edge of security/evidence_build.py.

The log is read through SQLite's backup API (one read transaction on a read-only
connection, the ``-wal`` file's records included, safe next to the running gateway),
the checkpoint files as they are. ``zhol audit export`` (cli/audit_bundle.py) and the
gateway's own ``zhol.bus.v1.Usage/GetEvidence`` (gateway/usage.py) both build their
bundles with :func:`export_bundle`. Anything unreadable raises EvidenceUnavailable.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from zhol.gateway.checkpoint_archive import ArchiveError, checkpoint_files, file_name
from zhol.gateway.checkpoints import NOTE_SUFFIX, size_in_name
from zhol.gateway.messagelog import SCHEMA_VERSION, record_inclusion_proof, tree_head
from zhol.security.evidence_build import (
    CheckpointFiles,
    EvidenceUnavailable,
    LogEvidence,
    Row,
    all_about,
    assemble,
    covering,
)
from zhol.security.evidence_bundle import Bundle, Selection
from zhol.security.globalconf import GlobalConf
from zhol.security.merkle import MerkleError


class NotAboutSubject(EvidenceUnavailable):
    """No record matches, or one is not about the data subject asked for: refused alike."""


def snapshot_log(path: Path, target: str) -> sqlite3.Connection:
    """A copy of the log at ``target`` (a file or ":memory:") through the backup API:
    one read transaction on a read-only connection, the -wal file's records included."""
    if not path.is_file():
        raise EvidenceUnavailable(f"no message log at {path}")
    try:
        src = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        copy = sqlite3.connect(target)
        try:
            src.backup(copy)
        finally:
            src.close()
        version = copy.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error as exc:
        raise EvidenceUnavailable(f"cannot read the message log {path}: {exc}") from None
    if version != SCHEMA_VERSION:
        copy.close()
        raise EvidenceUnavailable(
            f"message log schema {version}, this auditor reads {SCHEMA_VERSION}"
        )
    return copy


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
    """Every checkpoint in ``directory``, loose or packed in a day's archive
    (gateway/checkpoint_archive.py), smallest first."""
    try:
        files = checkpoint_files(directory)
        found: list[CheckpointFiles] = []
        for name in sorted(files):
            size = size_in_name(name, NOTE_SUFFIX)
            if size is None:
                continue
            proof = files.get(file_name(size, ".proof"))
            cosig = files.get(file_name(size, ".cosig"))
            found.append(
                CheckpointFiles(
                    size,
                    files[name],
                    proof.decode("ascii") if proof is not None else None,
                    cosig.decode("utf-8") if cosig is not None else None,
                    files.get(file_name(size, ".tsr")),
                )
            )
    except (OSError, UnicodeDecodeError, ArchiveError) as exc:
        raise EvidenceUnavailable(f"cannot read the checkpoints in {directory}: {exc}") from None
    return found


def _where(selection: Selection) -> tuple[str, tuple[object, ...]]:
    if selection.message_id is not None:
        return "WHERE message_id = ?", (selection.message_id,)
    if selection.data_subject is not None:
        return "WHERE data_subject = ?", (selection.data_subject,)
    until = selection.until_ms if selection.until_ms is not None else 2**63 - 1
    return "WHERE logged_at_ms >= ? AND logged_at_ms < ?", (selection.since_ms, until)


def export_bundle(
    log_path: Path,
    checkpoints_dir: Path,
    signed_conf: bytes,
    conf: GlobalConf,
    gateway_id: str,
    selection: Selection,
    now_ms: int,
    *,
    only_about: str | None = None,
) -> Bundle:
    """The bundle for ``selection`` from the log and checkpoints (``conf``: ``signed_conf``
    verified). EvidenceUnavailable when unreadable or nothing matches; NotAboutSubject
    when ``only_about`` is given and a record is not about that data subject (checked
    before anything else is said of them); NotCoveredYet when one is not provable yet."""
    where, params = _where(selection)
    with tempfile.TemporaryDirectory(prefix="zhol-export-") as tmp:
        copy = Path(tmp) / log_path.name  # the directory is private (0700): personal data
        conn = snapshot_log(log_path, str(copy))
        try:
            rows = select_rows(conn, where, params)
            certs = {bytes(h): bytes(d) for h, d in conn.execute("SELECT sha256, der FROM certs")}
        except sqlite3.Error as exc:
            raise EvidenceUnavailable(f"cannot read the message log: {exc}") from None
        finally:
            conn.close()
        if only_about is not None and not all_about(rows, only_about):
            raise NotAboutSubject("no record of this data subject matches")
        if not rows:
            raise EvidenceUnavailable("no record in the log matches")
        try:
            size = tree_head(copy).size
            checkpoints = tuple(cp for cp in read_checkpoints(checkpoints_dir) if cp.size <= size)
            chosen = covering(rows, checkpoints)
            proofs = {r.seq: record_inclusion_proof(copy, r.seq, chosen[r.seq]) for r in rows}
        except (sqlite3.Error, MerkleError) as exc:  # a tree that cannot give a proof
            raise EvidenceUnavailable(f"cannot read the log's tree: {exc}") from None
    evidence = LogEvidence(tuple(rows), certs, checkpoints, chosen, proofs)
    return assemble(gateway_id, selection, now_ms, signed_conf, conf, evidence)
