"""`zhol demo` restarts a component that dies, and `zhol scenario` waits for it.

The real demo as a subprocess: SIGKILL of the provider gateway and (four times in a
row) of the population adapter; the demo says so, restarts each on its own ports with a
growing delay, and keeps running; a scenario started while population is down still
passes; SIGTERM then stops every process, the restarted ones included.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.integration.demo_process import ROOT, Demo, start_demo, wait_ready
from zhol.cli.processes import ComponentGaveUp, Keeper, RestartPolicy, Supervisor

pytestmark = pytest.mark.integration

PROVIDER_GATEWAY = "KZ/GOV/MJ/gw1"


def pids_in(ready_line: str) -> dict[str, int]:
    listed = re.search(r"\(pids: (.*)\)", ready_line)
    assert listed, ready_line
    return {name: int(pid) for name, pid in (p.split("=") for p in listed[1].split(", "))}


def kill_and_see_restart(demo: Demo, name: str, pid: int, number: int) -> tuple[str, int]:
    """SIGKILL ``pid``; the demo's exit line for it and the pid it was restarted as."""
    os.kill(pid, signal.SIGKILL)
    exit_line = demo.wait_for_line(f"demo: {name} killed by SIGKILL; restart {number} in", 30)
    restarted = [line for line in list(demo.lines) if f"demo: {name} restarted (pid" in line]
    deadline = time.monotonic() + 60
    while len(restarted) < number:
        assert demo.proc.poll() is None, demo.output
        assert time.monotonic() < deadline, demo.output
        time.sleep(0.05)
        restarted = [line for line in list(demo.lines) if f"demo: {name} restarted (pid" in line]
    new_pid = re.search(r"\(pid (\d+)\)", restarted[number - 1])
    assert new_pid, restarted
    return exit_line, int(new_pid[1])


def health_status(address: str) -> int | None:
    with grpc.insecure_channel(address) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=2
            )
        except grpc.RpcError:
            return None
    return int(answer.status)


def wait_serving(address: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while health_status(address) != health_pb2.HealthCheckResponse.SERVING:
        assert time.monotonic() < deadline, f"{address} not SERVING within {timeout} s"
        time.sleep(0.2)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie still answers kill(0): it has exited, only not been reaped.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_demo_restarts_a_killed_component_and_a_scenario_waits_for_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    demo = start_demo(data_dir)
    all_pids: set[int] = set()
    try:
        pids = pids_in(wait_ready(demo))
        all_pids.update(pids.values())
        fed = json.loads((data_dir / "federation.json").read_text())
        gateway = next(g for g in fed["gateways"] if g["id"] == PROVIDER_GATEWAY)
        gateway_name = Path(gateway["data_dir"]).name

        # The provider gateway: restarted once, on its own IS port, SERVING again.
        line, new_pid = kill_and_see_restart(demo, gateway_name, pids[gateway_name], 1)
        assert "restart 1 in 0.5s" in line
        all_pids.add(new_pid)
        wait_serving(gateway["is_address"], 30)
        assert demo.proc.poll() is None, demo.output

        # Population, killed each time it is restarted: the delay doubles.
        pid = pids["population"]
        for number, delay in ((1, "0.5s"), (2, "1.0s"), (3, "2.0s"), (4, "4.0s")):
            line, pid = kill_and_see_restart(demo, "population", pid, number)
            assert f"restart {number} in {delay}" in line
            all_pids.add(pid)
            if number == 3:
                # Killed again at once, then down for 4 s: the scenario starts meanwhile.
                scenario = subprocess.Popen(
                    [sys.executable, "-m", "zhol.cli.main", "scenario", "birth",
                     "--federation", str(data_dir / "federation.json")],
                    cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                )  # fmt: skip
        try:
            out, _ = scenario.communicate(timeout=90)
        finally:
            if scenario.poll() is None:
                scenario.kill()
                scenario.wait()
        assert scenario.returncode == 0, out
        assert "population: UNAVAILABLE" in out, out
        assert "every decision made exactly once" in out, out
        wait_serving(fed["adapters"]["population"]["address"], 30)
        assert demo.proc.poll() is None, demo.output
    finally:
        code = demo.stop(signal.SIGTERM)
    assert code == 0, demo.output
    assert "zhol demo stopped" in demo.output
    assert all(gone(pid) for pid in all_pids), demo.output


def test_a_component_that_keeps_dying_is_given_up(tmp_path: Path) -> None:
    """Real processes, a hand-moved clock: restarts with the policy's delays, then the
    keeper gives up, naming the component and how it last ended."""
    now = [0.0]
    said: list[str] = []
    policy = RestartPolicy(first_delay_s=0.5, max_delay_s=15.0, burst=3, interval_s=60.0)
    with Supervisor(tmp_path / "logs") as supervisor:
        # json.tool on a missing file: a component that exits with code 2 at once.
        supervisor.start("dies", [str(tmp_path / "missing.json")], module="json.tool")
        keeper = Keeper(supervisor, policy, say=said.append, clock=lambda: now[0])
        with pytest.raises(ComponentGaveUp) as gave_up:
            for _ in range(10):
                supervisor.processes["dies"].wait(timeout=30)
                keeper.tick()  # notices the exit, schedules the restart
                now[0] += 5.0  # past each delay (0.5, 1, 2 s), all within the interval
                keeper.tick()  # the delay has passed: restarts it
    why = str(gave_up.value)
    assert "dies keeps dying: 4 exits within 60s, the last exited with code 2" in why
    exits = [line for line in said if "exited with code 2; restart" in line]
    assert [line.split("; ")[1].split(" (")[0] for line in exits] == [
        "restart 1 in 0.5s", "restart 2 in 1.0s", "restart 3 in 2.0s",
    ]  # fmt: skip
    assert len([line for line in said if "dies restarted (pid" in line]) == 3
