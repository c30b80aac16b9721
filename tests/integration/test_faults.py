"""`zhol faults --quick`: a gateway SIGKILLed under load and a full message-log disk, on a
federation of real processes; nothing answered OK goes unlogged, no decision is made twice."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_quick_fault_scenarios_lose_and_double_nothing(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "zhol.cli.main", "faults", "--quick", "--json",
         "--data-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=170,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["violations"] == []
    by_name = {s["scenario"]: s for s in report["scenarios"]}
    assert set(by_name) == {"kill-provider-gateway", "full-disk-consumer"}
    killed = by_name["kill-provider-gateway"]
    for figures in report["scenarios"]:
        if "not_run" in figures:  # no tmpfs mount allowed here: said, not faked
            assert figures["scenario"] == "full-disk-consumer"
            assert figures["not_run"].startswith("cannot mount tmpfs")
            continue
        assert figures["calls_sent"] == figures["answered_ok"] + figures["failed"]
        assert figures["failed"] == sum(figures["failed_by_code"].values())
        assert figures["answered_ok"] > 0
        assert figures["ok_not_logged"] == {"consumer": 0, "provider": 0}
        assert figures["births"] > 0 and figures["decisions_twice"] == 0
        assert figures["serving_again_s"] is not None
    assert killed["failed"] > 0  # the kill landed under load
    full = by_name["full-disk-consumer"]
    if "not_run" not in full:
        assert full["failed"] > 0  # the full disk refused calls
