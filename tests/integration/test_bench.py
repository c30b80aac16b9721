"""`zhol bench --json`: the direct-versus-bus part runs on real processes and reports
every figure the README quotes. A smoke run: it checks the report, not the speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_bench_reports_direct_bus_and_floor_from_the_same_run(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "zhol.cli.main", "bench", "--json", "--rounds", "2",
         "--seconds", "0.3", "--sequential", "5", "--concurrency", "4", "--births", "0",
         "--data-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout)
    for key in ("direct_rps", "bus_rps", "bare_proxy_rps"):
        assert figures[key] > 0
    assert figures["ratio"] == pytest.approx(figures["bus_rps"] / figures["direct_rps"], abs=1e-3)
    assert len(figures["ratio_rounds"]) == 2 and all(r > 0 for r in figures["ratio_rounds"])
    assert figures["added_p50_ms"] == pytest.approx(
        figures["bus_p50_ms"] - figures["direct_p50_ms"], abs=2e-3
    )
    # Both gateways on the path did the work of every bus call, and were measured.
    assert set(figures["gateway_peak_rss_mb"]) == {"KZ/GOV/MJ/gw1", "KZ/GOV/MLSPP/gw1"}
    cpu = figures["cpu_ms_per_call_bus"]
    assert cpu["mj-gw1"] > 0 and cpu["mlspp-gw1"] > 0 and cpu["population"] > 0
    assert figures["concurrency"] == 4 and figures["rounds"] == 2
    assert "births" not in figures  # --births 0 skips the births part
