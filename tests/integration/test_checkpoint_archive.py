"""Archiving a real gateway's checkpoints (`zhol gateway archive-checkpoints`): the audit
and the bundles say the same before and after, a crash that left the originals beside
the archive audits clean, a changed archived member is caught, and `tar -x` gives back
files openssl verifies."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.bus_federation import get_person
from tests.integration.test_audit import audit
from tests.integration.test_bus import some_iin
from tests.integration.test_checkpoint_timestamps import start_federation_with_tsa
from tests.waiting import until
from zhol.cli.demo import CONSUMER_GATEWAY
from zhol.cli.main import main
from zhol.cli.tsa import TsaPaths
from zhol.gateway.checkpoint_archive import DAY_MS, archive_paths
from zhol.gateway.messagelog import tree_head

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Logged:
    gateway: Path  # the stopped gateway's data directory
    anchor: Path
    tsa: TsaPaths


async def _write_log(root: Path) -> Logged:
    """A gateway's log with several timestamped, cosigned checkpoints, then stopped."""
    fed, tsa = await start_federation_with_tsa(root)
    try:
        data = fed.layout.gateway(CONSUMER_GATEWAY)
        await fed.restart_gateway(
            CONSUMER_GATEWAY, "checkpoint_interval_s = 0.3\ntimestamp_interval_s = 0.2\n"
        )
        folder = data / "checkpoints"
        for round_ in range(1, 5):
            for _ in range(2):
                await get_person(fed.is_address(), some_iin(fed))
            logged = tree_head(data / "messagelog.db").size

            def complete(size: int = logged) -> bool:
                name = f"{size:020d}"
                return (folder / f"{name}.cosig").exists() and (folder / f"{name}.tsr").exists()

            await until(complete, timeout=20, what=f"round {round_}: a finished checkpoint")
        await fed.gateways.pop(CONSUMER_GATEWAY).stop(0)
    finally:
        await fed.stop()
        await tsa.stop()
    return Logged(data, fed.layout.anchor, tsa.paths)


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Logged:
    return asyncio.run(_write_log(tmp_path_factory.mktemp("archive")))


@pytest.fixture
def gateway(logged: Logged, tmp_path: Path) -> Path:
    """A copy of the gateway whose checkpoints were all written eight days ago (so the
    ones without a cosignature may be packed too)."""
    copy = tmp_path / "gateway"
    shutil.copytree(logged.gateway, copy)
    old_ns = (int(time.time() * 1000) - 8 * DAY_MS) * 1_000_000
    for path in (copy / "checkpoints").iterdir():
        os.utime(path, ns=(old_ns, old_ns))
    return copy


def archive(capsys: pytest.CaptureFixture[str], gateway: Path, *extra: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["gateway", "archive-checkpoints", "--dir", str(gateway), "--json", *extra]) == 0
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc


def export_and_verify(
    capsys: pytest.CaptureFixture[str], gateway: Path, anchor: Path, out: Path
) -> tuple[int, dict[str, Any]]:
    with sqlite3.connect(gateway / "messagelog.db") as db:
        (first,) = db.execute("SELECT message_id FROM messages ORDER BY seq LIMIT 1").fetchone()
    # The first record: a timestamped, cosigned checkpoint covers it (not the last ones).
    assert main(["audit", "export", "--gateway", str(gateway), "--message-id", first,
                 "--out", str(out)]) == 0  # fmt: skip
    capsys.readouterr()
    code = main(["audit", "verify", str(out), "--anchor", str(anchor), "--json"])
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    report.pop("generated_at_ms", None)
    return code, report


def _verdict(report: dict[str, Any]) -> tuple[Any, ...]:
    return report["result"], report["failures"], report["counts"]


def test_archived_checkpoints_audit_and_export_as_before(
    logged: Logged, gateway: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, before = audit(capsys, gateway, logged.anchor)
    assert (code, before["failures"]) == (0, [])
    exported_before = export_and_verify(capsys, gateway, logged.anchor, tmp_path / "a.json")
    assert exported_before[0] == 0

    dry = archive(capsys, gateway, "--dry-run")
    assert dry["archives"] and dry["files_after"] == dry["files_before"]
    done = archive(capsys, gateway)
    folder = gateway / "checkpoints"
    assert [a["archive"] for a in done["archives"]] == [p.name for p in archive_paths(folder)]
    assert done["files_after"] < done["files_before"]
    assert sum(1 for p in folder.glob("*.note")) >= 1  # the newest stays loose

    code, after = audit(capsys, gateway, logged.anchor)
    assert code == 0 and _verdict(after) == _verdict(before)
    exported_after = export_and_verify(capsys, gateway, logged.anchor, tmp_path / "b.json")
    assert exported_after == exported_before


def test_a_crash_before_the_originals_were_removed_audits_clean(
    logged: Logged, gateway: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, before = audit(capsys, gateway, logged.anchor)
    kept = gateway.parent / "kept"
    shutil.copytree(gateway / "checkpoints", kept)
    archive(capsys, gateway)
    for path in kept.iterdir():  # the originals back beside the archive
        shutil.copy2(path, gateway / "checkpoints" / path.name)
    code, after = audit(capsys, gateway, logged.anchor)
    assert code == 0 and _verdict(after) == _verdict(before)
    # The next run finishes the job.
    assert archive(capsys, gateway)["files_after"] < len(list(kept.iterdir()))
    assert _verdict(audit(capsys, gateway, logged.anchor)[1]) == _verdict(before)


def test_a_changed_archived_note_is_caught(
    logged: Logged, gateway: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive(capsys, gateway)
    (path,) = archive_paths(gateway / "checkpoints")[:1]
    with tarfile.open(path) as tar:
        note = next(m for m in tar.getmembers() if m.name.endswith(".note"))
        offset, size = note.offset_data, note.size
    data = bytearray(path.read_bytes())
    # The signature line's last base64 character: same length, other signature bytes.
    i = offset + size - 2
    data[i] = ord("A") if data[i] != ord("A") else ord("B")
    path.write_bytes(bytes(data))
    code, report = audit(capsys, gateway, logged.anchor)
    assert code == 1
    found = {(f["reason"], f["checkpoint"]) for f in report["failures"]}
    checkpoint = int(note.name.split(".")[0])
    assert ("checkpoint-bad-signature", checkpoint) in found


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")
def test_tar_x_gives_files_openssl_verifies(
    logged: Logged, gateway: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive(capsys, gateway)
    out = tmp_path / "out"
    out.mkdir()
    tokens = 0
    for path in archive_paths(gateway / "checkpoints"):
        subprocess.run(["tar", "-xf", str(path), "-C", str(out)], check=True, timeout=60)
    for tsr in sorted(out.glob("*.tsr")):
        run = subprocess.run(
            ["openssl", "ts", "-verify", "-data", str(tsr.with_suffix(".note")), "-in", str(tsr),
             "-CAfile", str(logged.tsa.ca_cert), "-untrusted", str(logged.tsa.cert)],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert run.returncode == 0 and "Verification: OK" in run.stdout, run.stderr
        tokens += 1
    assert tokens >= 1
