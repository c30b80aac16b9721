"""`zhol scenario birth` against a real `zhol demo` started as a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _start_demo(
    data_dir: Path,
) -> tuple[subprocess.Popen[str], list[str], threading.Thread]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "zhol.cli.main", "demo", "--data-dir", str(data_dir),
         "--persons", "1500"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    return proc, lines, reader


def test_birth_scenario_passes(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    proc, lines, reader = _start_demo(data_dir)
    try:
        deadline = time.monotonic() + 60
        while not ((data_dir / "federation.json").exists()
                   and any("ready" in line for line in lines)):
            assert proc.poll() is None, "demo exited early:\n" + "".join(lines)
            assert time.monotonic() < deadline, "demo not ready in 60 s:\n" + "".join(lines)
            time.sleep(0.2)
        result = subprocess.run(
            [sys.executable, "-m", "zhol.cli.main", "scenario", "birth",
             "--federation", str(data_dir / "federation.json")],
            cwd=ROOT, capture_output=True, text=True, timeout=90,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "every decision made exactly once" in result.stdout
        assert "BirthRegistered" in result.stdout
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        reader.join(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
