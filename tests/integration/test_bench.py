"""`zhol bench --json`: the direct-versus-bus part runs on real processes and reports
every figure the README quotes. A smoke run: it checks the report, not the speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One small bench run, shared by the tests below."""
    tmp_path = tmp_path_factory.mktemp("bench")
    result = subprocess.run(
        # Runs of 1.1 s: each spans a tick of the gateways' checkpointer (1 s).
        [sys.executable, "-m", "zhol.cli.main", "bench", "--json", "--rounds", "2",
         "--seconds", "1.1", "--sequential", "5", "--concurrency", "4", "--births", "0",
         "--portal-seconds", "1", "--usage-entries", "400", "--usage-loads", "5",
         "--data-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout)
    return figures


def test_bench_reports_direct_bus_and_floor_from_the_same_run(figures: dict[str, Any]) -> None:
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


def test_bench_reports_evidence_on_and_off_and_the_audit_of_its_own_logs(
    figures: dict[str, Any],
) -> None:
    """The bus with the log's evidence on and off from the same run, and `zhol audit log`
    over the records the run sealed: present, positive, and the logs verify."""
    for key in ("bus_rps_evidence_off", "ratio_evidence_on", "ratio_evidence_off",
                "evidence_cost_ratio", "audit_records_per_s", "audit_check_records_per_s"):
        assert isinstance(figures[key], int | float) and figures[key] > 0, key
    assert figures["ratio_evidence_on"] == figures["ratio"]
    assert len(figures["evidence_cost_ratio_rounds"]) == 2
    assert figures["cpu_ms_per_call_bus_evidence_off"]["mj-gw1"] > 0
    # "Off" is off: no checkpoint, timestamp or cosignature while the bus ran without them.
    assert figures["evidence_made_during_runs"]["off"] == {
        "checkpoints": 0, "timestamps": 0, "cosignatures": 0
    }
    # Every record of both path gateways was audited and verified; their logs have
    # checkpoints (one at each restart) that the run's TSA timestamped.
    assert figures["audit_records"] > 0 and figures["audit_failures"] == []
    assert figures["audit_checkpoints"] > 0 and figures["audit_timestamped"] > 0


def test_bench_reports_the_portal_pages_over_http_from_the_same_run(
    figures: dict[str, Any],
) -> None:
    """The citizen portal's "me" (16 signed-in citizens at once) and "who used my data"
    over real HTTP, every registry's part and every gateway's answer read: the figures
    are there and positive (their speed is the bench's report, not a test's)."""
    for key in ("portal_account_p50_ms", "portal_account_p95_ms", "portal_account_pages",
                "portal_account_p50_ms_c1", "portal_usage_p50_ms", "portal_usage_p95_ms"):
        assert isinstance(figures[key], int | float) and figures[key] > 0, key
    assert figures["portal_citizens"] == 16
    assert figures["portal_account_incomplete"] == 0 and figures["portal_usage_incomplete"] == 0
    # Real exchanges about the citizen filled the gateways' logs before "who used my data".
    assert figures["portal_usage_log_entries"] >= 400 and figures["portal_usage_loads"] == 5
    cpu = figures["cpu_ms_per_account_page"]
    assert cpu["portal"] > 0 and cpu["mddiai-gw1"] > 0 and cpu["population"] > 0
