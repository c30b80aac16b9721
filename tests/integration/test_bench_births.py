"""`zhol bench --births-only`: a few births end to end through a real four-agency federation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_births_bench_reports_every_decision_exactly_once(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "zhol.cli.main", "bench", "--births-only", "--births", "5",
         "--birth-concurrency", "3", "--json", "--data-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout)
    assert figures["births"] == 5
    assert figures["births_exactly_once"] is True
    assert figures["births_missing"] == [] and figures["births_duplicates"] == []
    assert figures["births_dead_letters"] == 0
    assert figures["births_unpublished_events"] == 0
    assert figures["births_per_s"] > 0
    # At least the three BirthRegistered deliveries, each logged on both gateways
    # (request and acknowledgement), and one read of population per deciding agency.
    assert figures["messages_per_birth"] >= 3 * 4 + 3 * 4
    assert set(figures["cpu_ms_per_birth"]) >= {"mj-gw1", "population", "pension"}
    assert "direct_rps" not in figures  # --births-only skips the direct-vs-bus part
