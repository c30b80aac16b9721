"""``zhol audit export``, ``verify`` and ``unpack``: evidence bundles (docs/audit.md).

``export`` reads a gateway's log consistently (SQLite's backup API into a private
temporary copy, one read transaction, safe next to a running gateway) and writes the
records asked for, each with its inclusion proof against the first checkpoint covering
it that is timestamped and cosigned, as one JSON file (security/evidence_bundle.py,
built by gateway/evidence.py, as the gateway's GetEvidence does) and/or
as standard files (cli/evidence_unpack.py). ``verify`` checks a bundle offline against
the anchor alone (cli/bundle_checks.py). Exit codes: 0 verified or written, 1 evidence
invalid, 2 usage, 3 could not check or export.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from zhol.cli.audit_checks import NOT_CHECKED, Failure
from zhol.cli.audit_files import (
    CHECKPOINTS_DIR,
    CONF_FILE,
    LOG_FILE,
    CannotCheck,
    anchor_der,
    gateway_id_of,
    read_bytes,
)
from zhol.cli.bundle_checks import BUNDLE_NOT_CHECKED, BundleReport, verify_bundle
from zhol.cli.evidence_unpack import unpack
from zhol.core.errors import ZholError
from zhol.core.exitcodes import EXIT_CANNOT_CHECK, EXIT_FAILED, EXIT_OK, EXIT_USAGE
from zhol.core.iin import Iin
from zhol.gateway.evidence import export_bundle as build_bundle
from zhol.security.evidence_bundle import Bundle, BundleError, Selection, decode, encode
from zhol.security.globalconf import verify_global_conf

_EXPORT_HELP = """\
Writes the evidence for one message (--message-id), one data subject (--data-subject
IIN) or a time range of logging (--since, --until; ISO 8601 with a UTC offset) from a
gateway's log: the records' exact signed bytes, their signer certificates, an inclusion
proof for each against the first checkpoint covering it that is timestamped and
cosigned, that checkpoint with the gateway's signature, the witness's cosignature and
its RFC 3161 token, and the signed configuration (CAs, TSAs, keys). --out writes one
JSON file, --unpack DIR the same as standard files (JSON, signed notes, .tsr, PEM).
Both are created mode 0600/0700 and never overwrite. A record whose covering
checkpoint is not timestamped and cosigned yet cannot be proven: the export stops
(exit 3) and says so; retry after the gateway's next checkpoint.
Exit codes: 0 written, 2 usage, 3 could not export.
"""

_VERIFY_HELP = """\
Verifies an evidence bundle offline, trusting only the anchor given: the configuration
against the anchor; each checkpoint's signature by the gateway's log key, its witness
cosignature and its RFC 3161 token (approved authority, exact note bytes); each
record's signature over its exact bytes, its signer certificate (chained to the
federation CA, valid at the time the timestamp vouches for), that the signer is the
member its signed header names, its columns against the signed header, its leaf and
its inclusion proof against the signed checkpoint.
Exit codes: 0 verified, 1 evidence invalid, 2 usage, 3 could not check.
"""


def add_parsers(sub: Any) -> None:
    """``zhol audit export|verify|unpack``."""
    export = sub.add_parser(
        "export",
        help="write the evidence for a message, a data subject or a time range",
        description=_EXPORT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument(
        "--gateway", required=True, type=Path, metavar="DIR", help="the gateway's data directory"
    )
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--message-id", metavar="ID", help="one exchange's records")
    which.add_argument("--data-subject", metavar="IIN", help="every record about this person")
    which.add_argument("--since", metavar="TIME", help="records logged at or after TIME")
    export.add_argument("--until", metavar="TIME", help="with --since: logged before TIME")
    export.add_argument("--out", type=Path, metavar="FILE", help="the bundle file to create")
    export.add_argument(
        "--unpack", type=Path, metavar="DIR", help="also (or only) as standard files in DIR"
    )
    export.add_argument(
        "--anchor",
        type=Path,
        metavar="PEM",
        help="anchor for the configuration (default DIR/anchor.pem)",
    )
    export.add_argument(
        "--gateway-id", metavar="ID", help="the gateway's id (default: from DIR/gateway.toml)"
    )
    export.set_defaults(func=run_export)

    verify = sub.add_parser(
        "verify",
        help="verify an evidence bundle offline against the anchor",
        description=_VERIFY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verify.add_argument("bundle", type=Path, metavar="FILE", help="a bundle from zhol audit export")
    verify.add_argument(
        "--anchor", required=True, type=Path, metavar="PEM", help="the federation's anchor.pem"
    )
    verify.add_argument("--json", action="store_true", help="the report as one JSON object")
    verify.set_defaults(func=run_verify)

    unpacker = sub.add_parser(
        "unpack",
        help="write a bundle's evidence as standard files (no verification)",
    )
    unpacker.add_argument(
        "bundle", type=Path, metavar="FILE", help="a bundle from zhol audit export"
    )
    unpacker.add_argument("directory", type=Path, metavar="DIR", help="a new or empty directory")
    unpacker.set_defaults(func=run_unpack)


class _Usage(Exception):
    pass


def _selection(args: argparse.Namespace) -> Selection:
    if args.until is not None and args.since is None:
        raise _Usage("--until needs --since")
    if args.message_id is not None:
        if not args.message_id.strip():
            raise _Usage("--message-id is empty")
        return Selection(message_id=args.message_id)
    if args.data_subject is not None:
        try:
            Iin.parse(args.data_subject)
        except ZholError as err:
            raise _Usage(f"--data-subject: {err.detail}") from None
        return Selection(data_subject=args.data_subject)
    since = _time_ms(args.since, "--since")
    until = None if args.until is None else _time_ms(args.until, "--until")
    if until is not None and until <= since:
        raise _Usage("--until is not after --since")
    return Selection(since_ms=since, until_ms=until)


def _time_ms(text: str, option: str) -> int:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise _Usage(f"{option}: not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        raise _Usage(f"{option}: give a UTC offset, e.g. {text}+05:00 or {text}Z")
    return int(moment.timestamp() * 1000)


def run_export(args: argparse.Namespace) -> int:
    """``zhol audit export``: write a bundle; exit 0, 2 or 3."""
    if args.out is None and args.unpack is None:
        print("zhol audit export: give --out FILE, --unpack DIR or both", file=sys.stderr)
        return EXIT_USAGE
    try:
        selection = _selection(args)
    except _Usage as exc:
        print(f"zhol audit export: {exc}", file=sys.stderr)
        return EXIT_USAGE
    directory = Path(args.gateway)
    for target in (args.out, args.unpack):
        if (
            target is not None
            and Path(target).exists()
            and not (Path(target).is_dir() and not any(Path(target).iterdir()))
        ):
            print(f"zhol audit export: {target} exists; nothing is overwritten", file=sys.stderr)
            return EXIT_CANNOT_CHECK
    try:
        bundle = export_bundle(
            directory,
            gateway_id_of(args, directory),
            Path(args.anchor) if args.anchor else directory / "anchor.pem",
            selection,
            int(time.time() * 1000),
        )
        if args.out is not None:
            _create(Path(args.out), encode(bundle))
        if args.unpack is not None:
            unpack(bundle, Path(args.unpack))
    except CannotCheck as exc:
        print(f"zhol audit export: could not export: {exc}", file=sys.stderr)
        return EXIT_CANNOT_CHECK
    except OSError as exc:
        print(f"zhol audit export: could not write: {exc}", file=sys.stderr)
        return EXIT_CANNOT_CHECK
    seqs = [r.seq for r in bundle.records]
    print(
        f"zhol audit export: {len(seqs)} records (seq {min(seqs)}..{max(seqs)}),"
        f" {len(bundle.checkpoints)} checkpoints"
        + (f" -> {args.out}" if args.out else "")
        + (f" -> {args.unpack}/" if args.unpack else ""),
        file=sys.stderr,
    )
    return EXIT_OK


def _create(path: Path, data: bytes) -> None:
    """A new file, mode 0600 (a bundle holds personal data); never an existing one."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def export_bundle(
    directory: Path, gateway_id: str, anchor: Path, selection: Selection, now_ms: int
) -> Bundle:
    """The bundle for ``selection`` from the gateway's log and checkpoints; CannotCheck
    when the evidence cannot be read, nothing matches, or a record is not provable yet."""
    signed_conf = read_bytes(directory / CONF_FILE, "the configuration")
    try:
        conf = verify_global_conf(signed_conf, anchor_der(anchor))
    except ZholError as err:
        raise CannotCheck(
            f"the configuration does not verify against {anchor}: {err.detail}"
        ) from None
    return build_bundle(
        directory / LOG_FILE, directory / CHECKPOINTS_DIR, signed_conf, conf, gateway_id,
        selection, now_ms,
    )  # fmt: skip


def _read_bundle(path: Path) -> Bundle | BundleError:
    data = read_bytes(path, "the bundle")
    try:
        return decode(data)
    except BundleError as err:
        return err


def run_verify(args: argparse.Namespace) -> int:
    """``zhol audit verify``: check a bundle against the anchor; print the report."""
    try:
        anchor = anchor_der(Path(args.anchor))
        bundle = _read_bundle(Path(args.bundle))
    except CannotCheck as exc:
        print(f"zhol audit verify: could not check: {exc}", file=sys.stderr)
        return EXIT_CANNOT_CHECK
    if isinstance(bundle, BundleError):
        report = BundleReport(gateway="")
        report.failures.append(_failure(bundle))
    else:
        report = verify_bundle(bundle, anchor)
    if args.json:
        print(json.dumps(_report_json(report, bundle), sort_keys=True))
    else:
        _print_report(report, bundle, Path(args.bundle))
    return EXIT_FAILED if report.failures else EXIT_OK


def _failure(err: BundleError) -> Failure:
    return Failure(err.reason, err.detail)


def _not_checked() -> list[dict[str, str]]:
    seen = dict(BUNDLE_NOT_CHECKED)
    seen.update(NOT_CHECKED)
    return [{"what": w, "why": why} for w, why in seen.items()]


def _report_json(report: BundleReport, bundle: Bundle | BundleError) -> dict[str, Any]:
    return {
        "result": "invalid" if report.failures else "verified",
        "gateway": report.gateway,
        "selection": bundle.selection.as_json() if isinstance(bundle, Bundle) else None,
        "counts": report.counts,
        "checked": report.checked,
        "not_checked": _not_checked(),
        "failures": [f.as_json() for f in report.failures],
        "records": [r.as_json() for r in report.records],
    }


def _print_report(report: BundleReport, bundle: Bundle | BundleError, path: Path) -> None:
    print(f"zhol audit verify: {path}, gateway {report.gateway or '?'}")
    for line in report.checked:
        print(f"  checked: {line}")
    for item in _not_checked():
        print(f"  not checked: {item['why']}")
    failed = {f.seq for f in report.failures if f.seq is not None}
    for r in report.records:
        if r.seq in failed:
            continue
        when = r.existed_by.isoformat() if r.existed_by else "?"
        print(
            f"  record {r.seq}: {r.kind} {r.direction} message {r.message_id},"
            f" signed by {r.signer}, existed by {when} (checkpoint {r.tree_size})"
        )
    for f in report.failures:
        where = (
            f"seq {f.seq}" if f.seq is not None
            else f"checkpoint {f.checkpoint}" if f.checkpoint is not None
            else "bundle"
        )  # fmt: skip
        print(f"  FAILED {where}: {f.reason}: {f.detail}")
    print(
        f"RESULT: evidence invalid ({len(report.failures)} failures)"
        if report.failures
        else "RESULT: verified"
    )


def run_unpack(args: argparse.Namespace) -> int:
    """``zhol audit unpack``: a bundle's evidence as standard files (nothing verified)."""
    try:
        bundle = _read_bundle(Path(args.bundle))
    except CannotCheck as exc:
        print(f"zhol audit unpack: could not read: {exc}", file=sys.stderr)
        return EXIT_CANNOT_CHECK
    if isinstance(bundle, BundleError):
        print(f"zhol audit unpack: {bundle.reason}: {bundle.detail}", file=sys.stderr)
        return EXIT_FAILED
    try:
        written = unpack(bundle, Path(args.directory))
    except OSError as exc:
        print(f"zhol audit unpack: could not write: {exc}", file=sys.stderr)
        return EXIT_CANNOT_CHECK
    print(f"zhol audit unpack: {len(written)} files in {args.directory}", file=sys.stderr)
    return EXIT_OK
