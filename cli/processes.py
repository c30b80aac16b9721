"""Start the federation's components as their own processes, and stop every one of them."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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


# ---------------------------------------------------------------- restart policy
# Pure: times are parameters, nothing sleeps. ``Keeper`` below applies it to processes.


@dataclass(frozen=True)
class RestartPolicy:
    """When a component that exited is started again, after what delay, and when to
    give up (as systemd's RestartSec, StartLimitBurst and StartLimitIntervalSec)."""

    first_delay_s: float = 0.5
    max_delay_s: float = 15.0
    # A run this long counts as healthy: the next exit starts the backoff afresh.
    stable_after_s: float = 60.0
    # More than ``burst`` exits within ``interval_s`` and the component is given up.
    burst: int = 5
    interval_s: float = 60.0

    def delay_s(self, failures: int) -> float:
        """The wait before restarting after the ``failures``-th exit in a row (1-based)."""
        return min(self.max_delay_s, self.first_delay_s * 2 ** max(0, failures - 1))


@dataclass(frozen=True)
class RestartState:
    """One component's record: when it last started and how it has been exiting."""

    started_at: float
    failures: int = 0  # exits in a row, each after a run shorter than stable_after_s
    restarts: int = 0  # restarts so far (numbers the restart lines)
    exits: tuple[float, ...] = ()  # exit times within the policy's interval


@dataclass(frozen=True)
class Restart:
    delay_s: float
    number: int


@dataclass(frozen=True)
class GiveUp:
    exits: int
    interval_s: float


def on_exit(
    policy: RestartPolicy, state: RestartState, exited_at: float
) -> tuple[RestartState, Restart | GiveUp]:
    """What to do about a component that exited at ``exited_at``, and its new record."""
    exits = (*[t for t in state.exits if exited_at - t < policy.interval_s], exited_at)
    stable = exited_at - state.started_at >= policy.stable_after_s
    failures = 1 if stable else state.failures + 1
    state = replace(state, failures=failures, exits=exits)
    if len(exits) > policy.burst:
        return state, GiveUp(len(exits), policy.interval_s)
    state = replace(state, restarts=state.restarts + 1)
    return state, Restart(policy.delay_s(failures), state.restarts)


def describe_exit(returncode: int) -> str:
    """How a process ended, from Popen's returncode (negative: the signal)."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


class ComponentGaveUp(RuntimeError):
    """A component kept dying: the caller stops everything."""


@dataclass
class Keeper:
    """Restarts the supervisor's components that exit, as ``policy`` says; ``say``
    prints one line for each exit and each restart. Call ``tick`` periodically."""

    supervisor: Supervisor
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    say: Callable[[str], None] = print
    clock: Callable[[], float] = time.monotonic
    states: dict[str, RestartState] = field(default_factory=dict)
    due: dict[str, float] = field(default_factory=dict)  # name -> when to restart

    def __post_init__(self) -> None:
        now = self.clock()
        for name in self.supervisor.processes:
            self.states[name] = RestartState(started_at=now)

    def tick(self) -> None:
        """Notice exits, restart what is due; ComponentGaveUp if one keeps dying."""
        now = self.clock()
        for name, proc in list(self.supervisor.processes.items()):
            if name in self.due or proc.poll() is None:
                continue
            state = self.states.get(name) or RestartState(started_at=now)
            self.states[name], decision = on_exit(self.policy, state, now)
            how = describe_exit(proc.returncode)
            log = self.supervisor.log_dir / f"{name}.log"
            if isinstance(decision, GiveUp):
                raise ComponentGaveUp(
                    f"{name} keeps dying: {decision.exits} exits within "
                    f"{decision.interval_s:.0f}s, the last {how}; see {log}"
                )
            self.say(
                f"demo: {name} {how}; restart {decision.number} in {decision.delay_s:.1f}s "
                f"(see {log})"
            )
            self.due[name] = now + decision.delay_s
        for name, at in list(self.due.items()):
            if at <= now:
                del self.due[name]
                self.supervisor.restart(name)
                self.states[name] = replace(self.states[name], started_at=self.clock())
                self.say(f"demo: {name} restarted (pid {self.supervisor.pid(name)})")


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
