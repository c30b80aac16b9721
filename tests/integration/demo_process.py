"""`zhol demo` as a subprocess: start it, wait for its ready line, read its output, stop it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Demo:
    proc: subprocess.Popen[str]
    data_dir: Path
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_line(self, fragment: str, timeout: float) -> str:
        """The first output line holding ``fragment``; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            found = next((line for line in list(self.lines) if fragment in line), None)
            if found is not None:
                return found
            assert self.proc.poll() is None, f"demo exited early:\n{self.output}"
            assert time.monotonic() < deadline, f"no {fragment!r} in {timeout} s:\n{self.output}"
            time.sleep(0.05)

    def stop(self, sig: signal.Signals = signal.SIGINT) -> int | None:
        """Stop as Ctrl-C (or ``sig``) does; kill it should it hang. Its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.reader is not None:
            self.reader.join(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode


def start_demo(data_dir: Path, persons: int = 1500) -> Demo:
    proc = subprocess.Popen(
        [sys.executable, "-m", "zhol.cli.main", "demo", "--data-dir", str(data_dir),
         "--persons", str(persons)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    demo = Demo(proc, data_dir)

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            demo.lines.append(line)

    demo.reader = threading.Thread(target=pump, daemon=True)
    demo.reader.start()
    return demo


def wait_ready(demo: Demo, timeout: float = 60) -> str:
    """The ready line, once federation.json is written too."""
    line = demo.wait_for_line("zhol demo ready", timeout)
    assert (demo.data_dir / "federation.json").exists(), demo.output
    return line
