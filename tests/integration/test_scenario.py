"""`zhol scenario birth` against a real `zhol demo` started as a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.demo_process import ROOT, start_demo, wait_ready

pytestmark = pytest.mark.integration


def test_birth_scenario_passes(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    demo = start_demo(data_dir)
    try:
        wait_ready(demo)
        result = subprocess.run(
            [sys.executable, "-m", "zhol.cli.main", "scenario", "birth",
             "--federation", str(data_dir / "federation.json")],
            cwd=ROOT, capture_output=True, text=True, timeout=90,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert "every decision made exactly once" in result.stdout
        assert "BirthRegistered" in result.stdout
    finally:
        demo.stop()
