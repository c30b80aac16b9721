"""``zhol audit``: the auditor's offline checks of a gateway's evidence (docs/audit.md).

``zhol audit log`` verifies a whole message log against the federation's anchor
alone; ``zhol audit keys`` prints the gateways' log keys as C2SP verifier keys;
``zhol audit consistency`` proves from the log that one checkpoint extends another;
``zhol audit pair`` compares the two ends of every exchange between two gateways.
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
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zhol.cli.audit_bundle import add_parsers as add_bundle_parsers
from zhol.cli.audit_checks import (
    NOT_CHECKED,
    ChunkResult,
    Failure,
    check_checkpoints,
    check_cosignatures,
    check_pair,
    check_rows,
    check_sequence,
    check_timestamps,
    check_tree_state,
    check_witnessed,
    chunked,
    evidence_times,
    log_verifiers,
    open_witnessed,
    rebuild_tree,
    validate_signers,
)
from zhol.cli.audit_files import (
    CHECKPOINTS_DIR,
    CONF_FILE,
    LOG_FILE,
    CannotCheck,
    gateway_id_of,
    read_bytes,
    read_log,
    validator_for,
    verified_conf,
)
from zhol.core.exitcodes import EXIT_CANNOT_CHECK, EXIT_FAILED, EXIT_OK, EXIT_USAGE
from zhol.core.ids import GatewayId
from zhol.gateway.evidence import read_checkpoints, snapshot_log
from zhol.gateway.messagelog import log_consistency_proof, tree_head
from zhol.security.globalconf import GlobalConf
from zhol.security.merkle import MerkleError, TreeState, verify_consistency
from zhol.security.signednote import (
    Checkpoint,
    NoteError,
    Verifier,
    ed25519_verifier,
    format_vkey,
    gateway_origin,
    open_note,
    parse_checkpoint,
)

# Records per unit of work for the signature threads (cryptography releases the GIL).
CHUNK_ROWS = 2000
PROGRESS_EVERY_S = 2.0

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


_CONSISTENCY_HELP = """\
Proves offline that NEW_CHECKPOINT extends OLD_CHECKPOINT: both notes signed by the
gateway's log key from the configuration verified against the anchor, for its origin;
the log in DIR holds at least NEW's size; a consistency proof computed from the log's
stored tree proves NEW extends OLD; the log's tree at NEW's size has NEW's root.
The records themselves are checked by `zhol audit log`.
Exit codes: 0 verified, 1 evidence invalid, 2 usage, 3 could not check.
"""

_PAIR_HELP = """\
Compares two gateways' logs offline: for every message id both logged, each record
one sent to the other has the same header, body, signature and signed digest at the
other end. Records logged by one side only are counted, not failed (a request
refused before the other end logged it is legitimate). Both configurations verify
against the anchor. Exit codes: 0 verified, 1 evidence invalid, 2 usage, 3 could not check.
"""


def add_parser(subparsers: Any) -> None:
    """Add ``audit`` (log, keys, consistency, pair) to the ``zhol`` command's subparsers."""
    audit = subparsers.add_parser("audit", help="verify a gateway's evidence offline")
    audit.set_defaults(func=lambda _args: _usage(audit))
    sub = audit.add_subparsers(dest="audit_command", metavar="COMMAND")

    log = sub.add_parser(
        "log",
        help="verify a whole message log and its checkpoints against the anchor",
        description=_LOG_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_gateway_arguments(log)
    log.add_argument(
        "--witnessed",
        action="append",
        type=Path,
        metavar="NOTE",
        help="a checkpoint from the witness (zhol registry witness-checkpoint) the log must hold",
    )
    log.add_argument(
        "--progress",
        action="store_true",
        help="report progress on stderr every few seconds (the default on a terminal)",
    )
    log.set_defaults(func=run_log)

    keys = sub.add_parser(
        "keys",
        help="print every gateway's log keys from the verified configuration (C2SP vkeys)",
    )
    _add_anchor_argument(keys)
    keys.add_argument(
        "--conf", required=True, type=Path, metavar="FILE", help="a signed global configuration"
    )
    keys.add_argument("--json", action="store_true", help="one JSON object per key")
    keys.set_defaults(func=run_keys)

    consistency = sub.add_parser(
        "consistency",
        help="prove from a gateway's log that one signed checkpoint extends another",
        description=_CONSISTENCY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    consistency.add_argument("old", type=Path, metavar="OLD_CHECKPOINT", help="the older .note")
    consistency.add_argument("new", type=Path, metavar="NEW_CHECKPOINT", help="the newer .note")
    _add_gateway_arguments(consistency)
    consistency.set_defaults(func=run_consistency)

    pair = sub.add_parser(
        "pair",
        help="compare the two ends of every exchange between two gateways' logs",
        description=_PAIR_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pair.add_argument(
        "--gateway",
        required=True,
        action="append",
        type=Path,
        metavar="DIR",
        help="a gateway's data directory (give exactly two)",
    )
    _add_anchor_argument(pair)
    pair.add_argument("--json", action="store_true", help="the report as one JSON object")
    pair.set_defaults(func=run_pair)

    add_bundle_parsers(sub)


def _add_gateway_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a command that checks one gateway's evidence (log, consistency)."""
    parser.add_argument(
        "--gateway", required=True, type=Path, metavar="DIR", help="the gateway's data directory"
    )
    _add_anchor_argument(parser)
    parser.add_argument(
        "--conf",
        type=Path,
        metavar="FILE",
        help="signed configuration (default DIR/globalconf.bin)",
    )
    parser.add_argument(
        "--gateway-id", metavar="ID", help="the gateway's id (default: from DIR/gateway.toml)"
    )
    parser.add_argument("--json", action="store_true", help="the report as one JSON object")


def _add_anchor_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--anchor", required=True, type=Path, metavar="PEM", help="the federation's anchor.pem"
    )


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_usage(sys.stderr)
    return EXIT_USAGE


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
            gateway_id_of(args, directory),
            [Path(p) for p in args.witnessed or ()],
            _print_progress if args.progress or sys.stderr.isatty() else None,
        )
    except CannotCheck as exc:
        print(f"zhol audit log: could not check: {exc}", file=sys.stderr)
        return EXIT_CANNOT_CHECK
    if args.json:
        print(json.dumps(report.as_json(), sort_keys=True))
    else:
        _print_report(report)
    return EXIT_FAILED if report.failures else EXIT_OK


def _print_progress(done: int, total: int) -> None:
    print(f"zhol audit log: {done}/{total} records checked", file=sys.stderr, flush=True)


def audit_log(
    directory: Path,
    anchor: Path,
    conf_path: Path,
    gateway_id: str,
    witnessed_paths: Sequence[Path] = (),
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Every check of ``zhol audit log``; raises CannotCheck when evidence is unreadable."""
    report = Report(gateway_id, str(directory))
    conf, untrusted = verified_conf(conf_path, anchor)
    if conf is None:
        assert untrusted is not None
        report.failures.append(untrusted)
        return report  # nothing is trustworthy without a trusted configuration
    report.checked.append(f"configuration v{conf.version} verified against the anchor")
    origin, verifiers = _log_verifiers(conf, gateway_id)
    contents = read_log(directory / LOG_FILE)
    checkpoints = read_checkpoints(directory / CHECKPOINTS_DIR)
    stamps = check_timestamps(checkpoints, conf)
    started = time.perf_counter()
    rows = contents.rows
    report.failures.extend(check_sequence([r.seq for r in rows]))
    times = evidence_times(rows, stamps.times_ms)
    signers = validate_signers(contents.certs, times.by_cert, validator_for(conf))
    results: list[ChunkResult] = []
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        done, shown = 0, time.perf_counter()
        chunks = chunked(rows, CHUNK_ROWS)
        for result in pool.map(lambda chunk: check_rows(chunk, signers), chunks):
            results.append(result)
            done += len(result.leaves)
            if progress is not None and time.perf_counter() - shown >= PROGRESS_EVERY_S:
                progress(done, len(rows))
                shown = time.perf_counter()
    leaves = [leaf for result in results for leaf in result.leaves]
    for result in results:
        report.failures.extend(result.failures)
    elapsed = time.perf_counter() - started
    report.records_per_s = round(len(rows) / elapsed) if rows and elapsed > 0 else None
    report.checked.append(
        f"{len(rows)} records: signature, signer is the member the signed header names,"
        " signed digest, columns against the signed header"
    )
    report.checked.append(
        f"{len(signers.keys) + len(signers.refused)} signer certificates, each validated once"
        " against the configuration's CA: at the time a timestamp vouches for"
        f" ({times.timestamped} records)"
        + (
            f", at the logged time where no timestamped checkpoint covers the record yet"
            f" ({times.logged} records)"
            if times.logged
            else ""
        )
    )
    report.checked.append("seq numbered 1..n without gaps")
    witnessed = [
        open_witnessed(read_bytes(path, "the witnessed checkpoint"), origin,
                       verifiers if isinstance(verifiers, list) else [], conf.witness_verifier())
        for path in witnessed_paths
    ]  # fmt: skip
    rebuilt = rebuild_tree(
        leaves,
        [cp.size for cp in checkpoints] + [w.size for w in witnessed if isinstance(w, Checkpoint)],
    )
    for w in witnessed:
        report.failures.extend(check_witnessed(w, rebuilt) if isinstance(w, Checkpoint) else [w])
    if witnessed:
        report.checked.append(
            f"{len(witnessed)} checkpoints the witness handed out: gateway signature, witness"
            " cosignature, the log holds them (size and root)"
        )
    report.failures.extend(check_tree_state(rebuilt, contents.tree_state))
    report.checked.append(f"Merkle tree of {rebuilt.size} records rebuilt, equal to the stored one")
    if isinstance(verifiers, Failure):
        report.failures.append(verifiers)
    else:
        cps = check_checkpoints(checkpoints, origin, verifiers, rebuilt)
        report.failures.extend(cps.failures)
        report.checked.append(
            f"{cps.checked} checkpoints: log-key signature, root against the rebuilt tree,"
            " consistency proof from the previous one, log no shorter than each"
        )
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
        conf, untrusted = verified_conf(Path(args.conf), Path(args.anchor))
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


# ``zhol audit consistency`` and ``zhol audit pair``.


@dataclass(slots=True)
class SmallReport:
    """The report of ``consistency`` and ``pair``: what was checked, counts, failures."""

    command: str
    gateways: list[str]
    checked: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "result": "invalid" if self.failures else "verified",
            "gateways": self.gateways,
            "counts": self.counts,
            "checked": self.checked,
            "failures": [f.as_json() for f in self.failures],
        }


def _finish(report: SmallReport, as_json: bool) -> int:
    if as_json:
        print(json.dumps(report.as_json(), sort_keys=True))
    else:
        print(f"zhol audit {report.command}: {', '.join(report.gateways)}")
        for line in report.checked:
            print(f"  checked: {line}")
        for name, value in report.counts.items():
            print(f"  {name}: {value}")
        for f in report.failures:
            where = (
                f"seq {f.seq}"
                if f.seq is not None
                else (f"checkpoint {f.checkpoint}" if f.checkpoint is not None else "log")
            )
            print(f"  FAILED {where}: {f.reason}: {f.detail}")
        print(
            f"RESULT: evidence invalid ({len(report.failures)} failures)"
            if report.failures
            else "RESULT: verified"
        )
    return EXIT_FAILED if report.failures else EXIT_OK


def _log_verifiers(conf: GlobalConf, gateway_id: str) -> tuple[str, list[Verifier] | Failure]:
    try:
        return log_verifiers(conf, gateway_id)
    except ValueError as exc:
        raise CannotCheck(str(exc)) from None


def _open_checkpoint(
    path: Path, origin: str, verifiers: Sequence[Verifier]
) -> Checkpoint | Failure:
    note = read_bytes(path, "the checkpoint")
    try:
        checkpoint = parse_checkpoint(open_note(note, verifiers).text)
    except NoteError as err:
        return Failure(f"checkpoint-{err.reason}", f"{path.name}: {err.detail}")
    if checkpoint.origin != origin:
        return Failure("checkpoint-origin", f"{path.name}: origin {checkpoint.origin!r}")
    return checkpoint


def run_consistency(args: argparse.Namespace) -> int:
    """``zhol audit consistency``: NEW extends OLD, proved from the gateway's log."""
    directory = Path(args.gateway)
    try:
        report = audit_consistency(
            directory,
            Path(args.old),
            Path(args.new),
            Path(args.anchor),
            Path(args.conf) if args.conf else directory / CONF_FILE,
            gateway_id_of(args, directory),
        )
    except CannotCheck as exc:
        print(f"zhol audit consistency: could not check: {exc}", file=sys.stderr)
        return EXIT_CANNOT_CHECK
    return _finish(report, args.json)


def audit_consistency(
    directory: Path, old_path: Path, new_path: Path, anchor: Path, conf_path: Path, gateway_id: str
) -> SmallReport:
    """Every check of ``zhol audit consistency``; raises CannotCheck when unreadable."""
    report = SmallReport("consistency", [gateway_id])
    conf, untrusted = verified_conf(conf_path, anchor)
    if conf is None:
        assert untrusted is not None
        report.failures.append(untrusted)
        return report
    report.checked.append(f"configuration v{conf.version} verified against the anchor")
    origin, verifiers = _log_verifiers(conf, gateway_id)
    if isinstance(verifiers, Failure):
        report.failures.append(verifiers)
        return report
    old = _open_checkpoint(old_path, origin, verifiers)
    new = _open_checkpoint(new_path, origin, verifiers)
    bad = [c for c in (old, new) if isinstance(c, Failure)]
    if bad or isinstance(old, Failure) or isinstance(new, Failure):
        report.failures.extend(bad)
        return report
    report.checked.append(
        f"checkpoints of {old.size} and {new.size} records signed by the gateway's log key"
    )
    report.counts = {"old_size": old.size, "new_size": new.size}
    if old.size > new.size:
        report.failures.append(
            Failure("checkpoint-order", f"OLD has {old.size} records, NEW only {new.size}")
        )
        return report
    with tempfile.TemporaryDirectory(prefix="zhol-audit-") as tmp:
        copy = Path(tmp) / LOG_FILE
        snapshot_log(directory / LOG_FILE, str(copy)).close()
        report.failures.extend(_prove_from_log(copy, old, new, report))
    return report


def _prove_from_log(
    copy: Path, old: Checkpoint, new: Checkpoint, report: SmallReport
) -> list[Failure]:
    try:
        head = tree_head(copy)
        report.counts["log_size"] = head.size
        if head.size < new.size:
            return [
                Failure(
                    "log-truncated",
                    f"the log has {head.size} records, the checkpoint {new.size}",
                    checkpoint=new.size,
                )
            ]
        failures: list[Failure] = []
        if old.size > 0:  # every tree extends the empty one
            proof = log_consistency_proof(copy, old.size, new.size)
            try:
                verify_consistency(old.size, new.size, proof, old.root_hash, new.root_hash)
            except MerkleError as err:
                failures.append(
                    Failure("not-consistent", f"{err.reason}: {err.detail}", checkpoint=new.size)
                )
        report.checked.append(
            f"consistency proof from {old.size} to {new.size} computed from the log's tree"
        )
        if new.size == head.size:
            ok = new.root_hash == head.root_hash
        elif new.size == 0:
            ok = new.root_hash == TreeState().root()
        else:
            try:
                proof = log_consistency_proof(copy, new.size, head.size)
                verify_consistency(new.size, head.size, proof, new.root_hash, head.root_hash)
                ok = True
            except MerkleError:
                ok = False
        if not ok:
            failures.append(
                Failure(
                    "log-root-mismatch",
                    f"the log's tree at {new.size} records has another root",
                    checkpoint=new.size,
                )
            )
        report.checked.append(f"the log's tree at {new.size} records has NEW's root")
        return failures
    except (sqlite3.Error, MerkleError) as exc:
        raise CannotCheck(f"cannot read the log's tree: {exc}") from None


def run_pair(args: argparse.Namespace) -> int:
    """``zhol audit pair``: the two ends of every exchange carry the same signed bytes."""
    if len(args.gateway) != 2:
        print("zhol audit pair: give --gateway exactly twice", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = audit_pair(Path(args.gateway[0]), Path(args.gateway[1]), Path(args.anchor))
    except CannotCheck as exc:
        print(f"zhol audit pair: could not check: {exc}", file=sys.stderr)
        return EXIT_CANNOT_CHECK
    return _finish(report, args.json)


def audit_pair(first: Path, second: Path, anchor: Path) -> SmallReport:
    """Every check of ``zhol audit pair``; raises CannotCheck when unreadable."""
    ids = [gateway_id_of(argparse.Namespace(), d) for d in (first, second)]
    report = SmallReport("pair", ids)
    if ids[0] == ids[1]:
        raise CannotCheck(f"both directories are gateway {ids[0]}")
    for directory, gateway_id in zip((first, second), ids, strict=True):
        conf, untrusted = verified_conf(directory / CONF_FILE, anchor)
        if conf is None:
            assert untrusted is not None
            report.failures.append(untrusted)
            continue
        if GatewayId.parse(gateway_id) not in conf.gateways:
            report.failures.append(
                Failure("gateway-unknown", f"{gateway_id} is not in the configuration")
            )
    if report.failures:
        return report
    report.checked.append("both configurations verified against the anchor")
    pair = check_pair(
        read_log(first / LOG_FILE).rows, ids[0], read_log(second / LOG_FILE).rows, ids[1]
    )
    report.failures.extend(pair.failures)
    report.checked.append(
        "every record one gateway sent the other, for message ids both logged:"
        " header, body, signature and signed digest equal at both ends"
    )
    report.counts = {
        "matched": pair.matched,
        f"only_{ids[0]}": pair.only_first,
        f"only_{ids[1]}": pair.only_second,
        "failures": len(report.failures),
    }
    return report
