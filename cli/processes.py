"""Start the federation's components as their own processes, and stop every one of them."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from zhol.core.settings import child_environment


@dataclass
class Supervisor:
    """Owns the processes it started; stops them (and only them) by process id."""

    log_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    commands: dict[str, tuple[list[str], dict[str, str] | None, str]] = field(
        default_factory=dict
    )

    def start(
        self, name: str, args: list[str], env: dict[str, str] | None = None,
        *, module: str = "zhol.cli.main",
    ) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.commands[name] = (args, env, module)
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_environment(env),
            start_new_session=True,  # Ctrl-C in the terminal reaches only the demo, which stops us
        )
        log.close()

    def check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with code {proc.returncode}; see {self.log_dir / name}.log"
                )

    def pid(self, name: str) -> int:
        return self.processes[name].pid

    def stop(self, name: str, timeout: float = 5.0) -> None:
        proc = self.processes.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self, name: str) -> None:
        """SIGKILL, no goodbye: what a crash looks like (tests of recovery)."""
        proc = self.processes.pop(name)
        proc.kill()
        proc.wait()

    def restart(self, name: str) -> None:
        args, env, module = self.commands[name]
        self.start(name, args, env, module=module)

    def stop_all(self) -> None:
        for name in reversed(list(self.processes)):
            self.stop(name)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


def wait_for_port(host: str, port: int, timeout: float, supervisor: Supervisor) -> None:
    """Wait until something accepts connections on host:port, or a component died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        supervisor.check_alive()
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f}s")


def rss_peak_mb(pid: int) -> float:
    """Peak resident set size of a running process (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def machine_cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat; None elsewhere."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a running process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
